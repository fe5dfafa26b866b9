//! Reporting the job to CodePipeline: PutJobSuccessResult with output variables and
//! execution details, or PutJobFailureResult with a typed, bounded message.
//!
//! Invariants:
//! - Limits are enforced before sending (see REFERENCE.md): variable keys
//!   `[A-Za-z0-9@\-_]+`, all variables together ≤ 122,880 bytes; summary ≤ 2,048,
//!   failure message ≤ 5,000 and external id ≤ 1,500 **UTF-16 units** (what the API
//!   counts), cut on a character boundary.
//! - `InvalidJobStateException` means the job already has a result (a duplicate
//!   delivery, or a retried call whose first attempt got through): success.
//!   `JobNotFoundException` is final too: retrying cannot make the job exist, and an
//!   error would only make Lambda redeliver the event into the same wall.
//! - A report rejected for good (validation, output-variable size) is
//!   [`ReportErrorKind::Rejected`]; the caller turns a rejected success into a failure
//!   report that says why. Throttling, 5xx and network errors are retried here, with
//!   exponential backoff and jitter, until the report deadline; only then is the error
//!   returned (and the Lambda invocation fails, so Lambda redelivers the event).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_sdk_codepipeline::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_codepipeline::types::{
    ExecutionDetails, FailureDetails, FailureType as WireFailureType,
};

use crate::error::{truncate_utf16, FailureType};

/// Total size allowed for all output variables of an action.
pub const OUTPUT_VARIABLES_MAX_BYTES: usize = 122_880;

/// Outcome of a report call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reported {
    /// The result was recorded.
    Sent,
    /// CodePipeline already had a result for this job.
    AlreadyReported,
    /// CodePipeline does not know the job (expired, or from another account or
    /// region); nothing more can be done for it.
    JobNotFound,
}

/// Why a report was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportErrorKind {
    /// CodePipeline refused this request for good (validation, output-variable size).
    Rejected,
    /// CodePipeline could not be reached or kept throttling until the deadline.
    Unavailable,
}

/// A report could not be delivered (the handler then returns an error so Lambda
/// retries the invocation).
#[derive(Debug, thiserror::Error)]
#[error("{op} for job {job_id} failed: {message}")]
pub struct ReportError {
    /// The API call.
    pub op: &'static str,
    /// The job.
    pub job_id: String,
    /// Rejected for good, or unavailable.
    pub kind: ReportErrorKind,
    /// Why.
    pub message: String,
}

/// Checks output variables against CodePipeline's rules.
pub fn validate_variables(vars: &BTreeMap<String, String>) -> Result<(), String> {
    let mut total = 0usize;
    for (k, v) in vars {
        if k.is_empty()
            || !k
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'@' || b == b'-' || b == b'_')
        {
            return Err(format!(
                "output variable name {k:?} must match [A-Za-z0-9@\\-_]+"
            ));
        }
        total += k.len() + v.len();
    }
    if total > OUTPUT_VARIABLES_MAX_BYTES {
        return Err(format!(
            "output variables total {total} bytes; CodePipeline allows {OUTPUT_VARIABLES_MAX_BYTES}"
        ));
    }
    Ok(())
}

/// Makes an artifact name usable inside a variable key.
pub fn variable_key_part(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '@' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Sends reports with the function's own credentials.
#[derive(Debug, Clone)]
pub struct Reporter {
    client: aws_sdk_codepipeline::Client,
}

/// One attempt's outcome, before retry decisions.
enum Attempt {
    Done(Reported),
    Failed(ReportErrorKind, String),
}

impl Reporter {
    /// A reporter on `client`.
    pub fn new(client: aws_sdk_codepipeline::Client) -> Self {
        Reporter { client }
    }

    /// PutJobSuccessResult, retried on throttling and outages until `deadline`.
    /// With `continuation` (token, percent complete) the job goes on in a new job:
    /// the token and progress are sent, and no output variables (CodePipeline
    /// accepts them only on the final result).
    pub async fn success(
        &self,
        job_id: &str,
        variables: &BTreeMap<String, String>,
        summary: &str,
        external_id: &str,
        continuation: Option<(&str, i32)>,
        deadline: Instant,
    ) -> Result<Reported, ReportError> {
        let details = ExecutionDetails::builder()
            .summary(truncate_utf16(summary, 2048))
            .external_execution_id(truncate_utf16(external_id, 1500))
            .percent_complete(continuation.map_or(100, |(_, p)| p.clamp(0, 100)))
            .build();
        let send = || {
            let mut req = self
                .client
                .put_job_success_result()
                .job_id(job_id)
                .execution_details(details.clone());
            if let Some((token, _)) = continuation {
                req = req.continuation_token(token);
            } else if !variables.is_empty() {
                req = req.set_output_variables(Some(variables.clone().into_iter().collect()));
            }
            async move { classify(req.send().await.map(|_| ())) }
        };
        with_retries("PutJobSuccessResult", job_id, deadline, send).await
    }

    /// PutJobFailureResult, retried on throttling and outages until `deadline`.
    pub async fn failure(
        &self,
        job_id: &str,
        kind: FailureType,
        message: &str,
        external_id: &str,
        deadline: Instant,
    ) -> Result<Reported, ReportError> {
        let message = if message.trim().is_empty() {
            "job failed"
        } else {
            message
        };
        let details = FailureDetails::builder()
            .r#type(WireFailureType::from(kind.as_str()))
            .message(truncate_utf16(message, 5000))
            .external_execution_id(truncate_utf16(external_id, 1500))
            .build()
            .map_err(|e| ReportError {
                op: "PutJobFailureResult",
                job_id: job_id.to_string(),
                kind: ReportErrorKind::Rejected,
                message: e.to_string(),
            })?;
        let send = || {
            let req = self
                .client
                .put_job_failure_result()
                .job_id(job_id)
                .failure_details(details.clone());
            async move { classify(req.send().await.map(|_| ())) }
        };
        with_retries("PutJobFailureResult", job_id, deadline, send).await
    }
}

/// Calls `send` until it is done, rejected for good, or the next backoff would end
/// after `deadline`. Backoff doubles from 100 ms to 5 s, with full jitter.
async fn with_retries<F, Fut>(
    op: &'static str,
    job_id: &str,
    deadline: Instant,
    mut send: F,
) -> Result<Reported, ReportError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Attempt>,
{
    let mut backoff = Duration::from_millis(100);
    let mut attempt = 1u32;
    loop {
        let (kind, message) = match send().await {
            Attempt::Done(r) => return Ok(r),
            Attempt::Failed(kind, message) => (kind, message),
        };
        let wait = backoff.mul_f64(0.5 + fastrand::f64() / 2.0);
        if kind == ReportErrorKind::Rejected || Instant::now() + wait >= deadline {
            return Err(ReportError {
                op,
                job_id: job_id.to_string(),
                kind,
                message: format!("{message} (after {attempt} attempt(s))"),
            });
        }
        tracing::warn!(op, attempt, error = %message, "report not taken; retrying");
        tokio::time::sleep(wait).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
        attempt += 1;
    }
}

fn classify<E>(
    res: Result<(), SdkError<E, aws_smithy_runtime_api::client::orchestrator::HttpResponse>>,
) -> Attempt
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let err = match res {
        Ok(()) => return Attempt::Done(Reported::Sent),
        Err(e) => e,
    };
    let SdkError::ServiceError(se) = &err else {
        // Timeouts, connection failures, unreadable responses: worth another try.
        let message = aws_smithy_types::error::display::DisplayErrorContext(&err).to_string();
        return Attempt::Failed(ReportErrorKind::Unavailable, message);
    };
    let status = se.raw().status().as_u16();
    // The service's code and message (the SDK's context would add the raw response).
    let message = format!(
        "{}: {} (HTTP {status})",
        se.err().code().unwrap_or("UnknownError"),
        se.err().message().unwrap_or("no message")
    );
    match se.err().code() {
        Some("InvalidJobStateException") => Attempt::Done(Reported::AlreadyReported),
        Some("JobNotFoundException") => Attempt::Done(Reported::JobNotFound),
        Some("ThrottlingException" | "ServiceUnavailableException" | "InternalFailure") => {
            Attempt::Failed(ReportErrorKind::Unavailable, message)
        }
        _ if status == 429 || status >= 500 => {
            Attempt::Failed(ReportErrorKind::Unavailable, message)
        }
        _ => Attempt::Failed(ReportErrorKind::Rejected, message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variable_rules() {
        let ok = BTreeMap::from([("Out_entries".to_string(), "3".to_string())]);
        assert!(validate_variables(&ok).is_ok());
        let bad = BTreeMap::from([("a.b".to_string(), "3".to_string())]);
        assert!(validate_variables(&bad).is_err());
        let big = BTreeMap::from([("k".to_string(), "x".repeat(OUTPUT_VARIABLES_MAX_BYTES))]);
        assert!(validate_variables(&big).is_err());
        assert_eq!(variable_key_part("My.Art ifact"), "My_Art_ifact");
    }
}
