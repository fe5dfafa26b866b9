//! The `CodePipeline.job` event a Lambda invoke action receives, as our own serde
//! types (the `aws_lambda_events` crate lacks `encryptionKey` and misspells outputs).
//!
//! Every documented field is modelled; unknown fields are tolerated (AWS adds fields).
//! [`Job::validate`] enforces what the action guarantees: 0..=5 inputs and outputs,
//! `S3` locations with non-empty bucket and key, unique artifact names.
//! Credentials never appear in `Debug` output.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The whole event: `{"CodePipeline.job": {...}}`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Event {
    /// The job.
    #[serde(rename = "CodePipeline.job")]
    pub job: Job,
}

/// One job.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    /// Job id (a UUID); every report names it.
    pub id: String,
    /// The pipeline's account.
    #[serde(default)]
    pub account_id: String,
    /// Everything else.
    pub data: JobData,
}

/// `data` of a job.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobData {
    /// The action's configuration.
    #[serde(default)]
    pub action_configuration: ActionConfiguration,
    /// Input artifacts.
    #[serde(default)]
    pub input_artifacts: Vec<Artifact>,
    /// Output artifacts the job must write.
    #[serde(default)]
    pub output_artifacts: Vec<Artifact>,
    /// Temporary credentials for the artifact bucket.
    pub artifact_credentials: ArtifactCredentials,
    /// Present when this invocation continues an earlier one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continuation_token: Option<String>,
    /// The artifact store's key; absent means the bucket default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_key: Option<EncryptionKey>,
}

/// `actionConfiguration`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct ActionConfiguration {
    /// `FunctionName` and `UserParameters`.
    #[serde(default)]
    pub configuration: Configuration,
}

/// `actionConfiguration.configuration`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Configuration {
    /// The invoked function.
    #[serde(rename = "FunctionName", default)]
    pub function_name: String,
    /// The transform plan (JSON), after CodePipeline resolved `#{...}` variables.
    #[serde(
        rename = "UserParameters",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub user_parameters: Option<String>,
}

/// An input or output artifact.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Artifact {
    /// Artifact name, unique within inputs and within outputs.
    pub name: String,
    /// Revision (commit id, S3 version...), often `null`.
    #[serde(default)]
    pub revision: Option<String>,
    /// Where it is.
    pub location: Location,
}

/// `location` of an artifact.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Location {
    /// Always `S3` today.
    #[serde(rename = "type")]
    pub kind: String,
    /// Bucket and key.
    #[serde(rename = "s3Location", default)]
    pub s3_location: Option<S3Location>,
}

/// `s3Location`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct S3Location {
    /// Bucket.
    pub bucket_name: String,
    /// Object key.
    pub object_key: String,
}

impl fmt::Display for S3Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}/{}", self.bucket_name, self.object_key)
    }
}

/// Temporary STS credentials for the artifact bucket. `Debug` shows only the first
/// four characters of the key id; the secret and token never.
#[derive(Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactCredentials {
    /// Access key id (`ASIA…`).
    pub access_key_id: String,
    /// Secret key.
    pub secret_access_key: String,
    /// Session token.
    #[serde(default)]
    pub session_token: Option<String>,
    /// Expiry, epoch milliseconds (real events carry it; the doc example does not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration_time: Option<i64>,
}

impl fmt::Debug for ArtifactCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prefix: String = self.access_key_id.chars().take(4).collect();
        f.debug_struct("ArtifactCredentials")
            .field("access_key_id", &format_args!("{prefix}…"))
            .field("secret_access_key", &"** redacted **")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "** redacted **"),
            )
            .field("expiration_time", &self.expiration_time)
            .finish()
    }
}

/// `encryptionKey`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct EncryptionKey {
    /// Key id, key ARN or alias ARN.
    pub id: String,
    /// `KMS`.
    #[serde(rename = "type")]
    pub kind: String,
}

/// Why an event is not a valid job.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("invalid CodePipeline job event: {0}")]
pub struct EventError(pub String);

/// Most artifacts a Lambda invoke action has on either side.
pub const MAX_ARTIFACTS: usize = 5;

impl Event {
    /// Parses an event; on failure, also returns the job id if one could be read, so
    /// that the broken job can still be reported.
    pub fn parse(value: serde_json::Value) -> Result<Event, (EventError, Option<String>)> {
        let job_id = value
            .pointer("/CodePipeline.job/id")
            .and_then(|v| v.as_str())
            .map(str::to_owned);
        let ev: Event = serde_json::from_value(value)
            .map_err(|e| (EventError(e.to_string()), job_id.clone()))?;
        ev.job.validate().map_err(|e| (e, job_id))?;
        Ok(ev)
    }
}

impl Job {
    /// Refuses outputs written where an input lives or where another output goes:
    /// the second write would silently replace the first (and its reported SHA-256
    /// would describe an object that no longer exists).
    fn check_output_locations(&self) -> Result<(), EventError> {
        fn loc(a: &Artifact) -> Option<(&str, &str)> {
            a.location
                .s3_location
                .as_ref()
                .map(|l| (l.bucket_name.as_str(), l.object_key.as_str()))
        }
        let outputs = &self.data.output_artifacts;
        for (i, o) in outputs.iter().enumerate() {
            let here = loc(o);
            if let Some(a) = self.data.input_artifacts.iter().find(|a| loc(a) == here) {
                return Err(EventError(format!(
                    "output artifact {:?} would overwrite input artifact {:?} at {}: \
                     outputs must go to their own S3 locations",
                    o.name,
                    a.name,
                    Job::location(o)
                )));
            }
            if let Some(b) = outputs[..i].iter().find(|b| loc(b) == here) {
                return Err(EventError(format!(
                    "output artifacts {:?} and {:?} both go to {}: the second would \
                     overwrite the first",
                    b.name,
                    o.name,
                    Job::location(o)
                )));
            }
        }
        Ok(())
    }

    /// Checks the guarantees the worker relies on.
    pub fn validate(&self) -> Result<(), EventError> {
        if self.id.trim().is_empty() {
            return Err(EventError("job id is empty".into()));
        }
        for (side, list) in [
            ("inputArtifacts", &self.data.input_artifacts),
            ("outputArtifacts", &self.data.output_artifacts),
        ] {
            if list.len() > MAX_ARTIFACTS {
                return Err(EventError(format!(
                    "{side} has {} artifacts; the action allows at most {MAX_ARTIFACTS}",
                    list.len()
                )));
            }
            let mut names = std::collections::HashSet::new();
            for (i, a) in list.iter().enumerate() {
                if a.name.is_empty() {
                    return Err(EventError(format!("{side}[{i}].name is empty")));
                }
                if !names.insert(a.name.as_str()) {
                    return Err(EventError(format!(
                        "{side}[{i}].name {:?} is used twice",
                        a.name
                    )));
                }
                if a.location.kind != "S3" {
                    return Err(EventError(format!(
                        "{side}[{i}] ({}) has location type {:?}; only \"S3\" is supported",
                        a.name, a.location.kind
                    )));
                }
                match &a.location.s3_location {
                    Some(l) if !l.bucket_name.is_empty() && !l.object_key.is_empty() => {}
                    _ => {
                        return Err(EventError(format!(
                            "{side}[{i}] ({}) has no bucket or object key",
                            a.name
                        )))
                    }
                }
            }
        }
        self.check_output_locations()?;
        if let Some(k) = &self.data.encryption_key {
            if k.kind != "KMS" {
                return Err(EventError(format!(
                    "encryptionKey.type is {:?}; only \"KMS\" is supported",
                    k.kind
                )));
            }
            if k.id.is_empty() || k.id.len() > 400 {
                return Err(EventError(
                    "encryptionKey.id must be 1..400 characters".into(),
                ));
            }
        }
        let c = &self.data.artifact_credentials;
        if c.access_key_id.is_empty() || c.secret_access_key.is_empty() {
            return Err(EventError("artifactCredentials are empty".into()));
        }
        Ok(())
    }

    /// The S3 location of an artifact (validated to exist).
    pub fn location(a: &Artifact) -> &S3Location {
        a.location
            .s3_location
            .as_ref()
            .expect("validated: every artifact has an s3Location")
    }
}
