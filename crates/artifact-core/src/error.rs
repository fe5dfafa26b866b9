//! Job errors and their CodePipeline failure types.
//!
//! Each error's `Display` says what failed and where; the cause is chained with
//! `#[source]`. [`JobError::report_message`] joins the chain into the message sent to
//! PutJobFailureResult.

use artifact_engine::entry::EntryError;
use artifact_engine::{PlanError, ZipError};

use crate::event::{EventError, S3Location};
use crate::store::{StoreError, StoreErrorKind};

/// `failureDetails.type` of PutJobFailureResult.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureType {
    /// Generic failure (bad input artifact, internal error).
    JobFailed,
    /// The job is configured wrongly (UserParameters, event, key, routes).
    ConfigurationError,
    /// Credentials or a policy denied access (S3 or KMS), or credentials expired.
    PermissionError,
    /// The revision changed while the job ran.
    RevisionOutOfSync,
    /// An input artifact is missing.
    RevisionUnavailable,
    /// A service was unavailable or throttled past retries, or time ran out.
    SystemUnavailable,
}

impl FailureType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureType::JobFailed => "JobFailed",
            FailureType::ConfigurationError => "ConfigurationError",
            FailureType::PermissionError => "PermissionError",
            FailureType::RevisionOutOfSync => "RevisionOutOfSync",
            FailureType::RevisionUnavailable => "RevisionUnavailable",
            FailureType::SystemUnavailable => "SystemUnavailable",
        }
    }
}

/// Which side of the job an artifact error is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Reading an input.
    Input,
    /// Writing an output.
    Output,
}

/// What went wrong with one artifact.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactCause {
    /// A store call failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The zip is broken or hostile.
    #[error(transparent)]
    Zip(#[from] ZipError),
    /// An entry could not be processed.
    #[error(transparent)]
    Entry(#[from] EntryError),
    /// The output failed verification before completion.
    #[error("{0}")]
    Verify(String),
    /// Two entries would get the same name in an output.
    #[error("{0}")]
    NameClash(String),
    /// A problem with a member of a zip entry an `unzip` step unpacks.
    #[error("inner zip {zip:?}: {cause}")]
    Inner {
        /// The zip entry's name in its input.
        zip: String,
        /// What went wrong with the member.
        cause: Box<ArtifactCause>,
    },
}

impl ArtifactCause {
    /// The CodePipeline failure type for this cause on `side`.
    fn failure_type(&self, side: Side) -> FailureType {
        use FailureType::*;
        match self {
            ArtifactCause::Store(s) => match (s.kind, side) {
                (StoreErrorKind::NotFound, Side::Input) => RevisionUnavailable,
                (StoreErrorKind::NotFound, Side::Output) => ConfigurationError,
                (StoreErrorKind::AccessDenied, _) => PermissionError,
                (StoreErrorKind::Unavailable, _) => SystemUnavailable,
                (StoreErrorKind::Changed, _) => RevisionOutOfSync,
                (StoreErrorKind::Invalid, _) => JobFailed,
            },
            ArtifactCause::Entry(EntryError::Transform(_) | EntryError::Plan(_)) => {
                ConfigurationError
            }
            ArtifactCause::NameClash(_) => ConfigurationError,
            ArtifactCause::Inner { cause, .. } => cause.failure_type(side),
            _ => JobFailed,
        }
    }
}

/// Why a job failed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The event is not a valid job.
    #[error(transparent)]
    Event(#[from] EventError),
    /// `UserParameters` are invalid.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// An input or output artifact failed.
    #[error("{} artifact {name:?} ({location})", match side { Side::Input => "input", Side::Output => "output" })]
    Artifact {
        /// Input or output.
        side: Side,
        /// Artifact name.
        name: String,
        /// Its S3 location.
        location: S3Location,
        /// The cause (boxed: it is large, and errors travel through every stage).
        #[source]
        cause: Box<ArtifactCause>,
    },
    /// The job's KMS key is unusable.
    #[error("encryption key {key:?}: {message}")]
    Kms {
        /// The key id from the event.
        key: String,
        /// What is wrong and what to check.
        message: String,
        /// Classification.
        kind: StoreErrorKind,
    },
    /// `artifactCredentials.expirationTime` has passed.
    #[error("the job's artifact credentials expired {0} ms ago; retry the action")]
    CredentialsExpired(i64),
    /// Not enough time left to finish and report.
    #[error("stopped before the Lambda deadline: {0}")]
    Deadline(String),
    /// A bug (panic) — reported rather than leaving the pipeline hanging.
    #[error("internal error: {0}")]
    Internal(String),
    /// A continued job could not go on from its checkpoint.
    #[error(transparent)]
    Continuation(#[from] crate::continuation::ContinuationError),
}

impl JobError {
    /// An artifact error.
    pub fn artifact(
        side: Side,
        name: &str,
        location: &S3Location,
        cause: impl Into<ArtifactCause>,
    ) -> Self {
        JobError::Artifact {
            side,
            name: name.to_string(),
            location: location.clone(),
            cause: Box::new(cause.into()),
        }
    }

    /// The CodePipeline failure type.
    pub fn failure_type(&self) -> FailureType {
        use FailureType::*;
        match self {
            JobError::Event(_) | JobError::Plan(_) => ConfigurationError,
            JobError::Kms { kind, .. } => match kind {
                StoreErrorKind::AccessDenied => PermissionError,
                StoreErrorKind::Unavailable => SystemUnavailable,
                _ => ConfigurationError,
            },
            JobError::CredentialsExpired(_) => PermissionError,
            JobError::Deadline(_) => SystemUnavailable,
            JobError::Internal(_) => JobFailed,
            JobError::Continuation(e) => e.failure_type(),
            JobError::Artifact { side, cause, .. } => cause.failure_type(*side),
        }
    }

    /// The message for PutJobFailureResult: the error and its causes, joined.
    pub fn report_message(&self) -> String {
        let mut msg = self.to_string();
        let mut src = std::error::Error::source(self);
        while let Some(s) = src {
            let text = s.to_string();
            if !msg.contains(&text) {
                msg.push_str(": ");
                msg.push_str(&text);
            }
            src = s.source();
        }
        msg
    }
}

/// Cuts `s` to at most `max` UTF-16 code units (what the CodePipeline API counts:
/// a character outside the Basic Multilingual Plane counts twice), on a character
/// boundary, marking the cut with `…`.
pub fn truncate_utf16(s: &str, max: usize) -> String {
    if s.encode_utf16().count() <= max {
        return s.to_string();
    }
    let budget = max.saturating_sub(1); // room for the one-unit `…`
    let mut used = 0;
    let mut end = 0;
    for (i, c) in s.char_indices() {
        if used + c.len_utf16() > budget {
            break;
        }
        used += c.len_utf16();
        end = i + c.len_utf8();
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_counts_utf16_units() {
        let s = "é".repeat(6000);
        let t = truncate_utf16(&s, 5000);
        assert_eq!(t.encode_utf16().count(), 5000);
        assert!(t.ends_with('…'));
        assert_eq!(truncate_utf16("abc", 5), "abc");
        // Astral characters count two units each: a cut by chars would send 5,000
        // chars = 10,000 units and be rejected.
        let astral = "𝄞".repeat(3000);
        let t = truncate_utf16(&astral, 5000);
        assert!(
            t.encode_utf16().count() <= 5000,
            "{}",
            t.encode_utf16().count()
        );
        assert_eq!(t.encode_utf16().count(), 4999); // 2,499 clefs and the mark
        let exact = "𝄞".repeat(2500);
        assert_eq!(truncate_utf16(&exact, 5000), exact);
    }

    #[test]
    fn types_follow_causes() {
        let loc = S3Location {
            bucket_name: "b".into(),
            object_key: "k".into(),
        };
        let e = |side, kind| {
            JobError::artifact(
                side,
                "A",
                &loc,
                StoreError::new(kind, "GetObject", &loc, "x"),
            )
        };
        assert_eq!(
            e(Side::Input, StoreErrorKind::NotFound).failure_type(),
            FailureType::RevisionUnavailable
        );
        assert_eq!(
            e(Side::Input, StoreErrorKind::AccessDenied).failure_type(),
            FailureType::PermissionError
        );
        assert_eq!(
            e(Side::Output, StoreErrorKind::Unavailable).failure_type(),
            FailureType::SystemUnavailable
        );
        let m = e(Side::Input, StoreErrorKind::NotFound).report_message();
        assert!(
            m.contains("input artifact \"A\" (s3://b/k): GetObject s3://b/k: x"),
            "{m}"
        );
    }
}
