//! Reporting the job to CodePipeline: PutJobSuccessResult with output variables and
//! execution details, or PutJobFailureResult with a typed, bounded message.
//!
//! Limits enforced before sending (see REFERENCE.md): variable keys
//! `[A-Za-z0-9@\-_]+`, all variables together ≤ 122,880 bytes, summary ≤ 2,048
//! characters, failure message ≤ 5,000 characters, external id ≤ 1,500.
//! `InvalidJobStateException` on a report means the job was already reported (a
//! duplicate delivery or a retried call whose first attempt got through): that is
//! success, not an error.

use std::collections::BTreeMap;

use aws_sdk_codepipeline::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_codepipeline::types::{
    ExecutionDetails, FailureDetails, FailureType as WireFailureType,
};

use crate::error::{truncate_chars, FailureType};

/// Total size allowed for all output variables of an action.
pub const OUTPUT_VARIABLES_MAX_BYTES: usize = 122_880;

/// Outcome of a report call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reported {
    /// The result was recorded.
    Sent,
    /// CodePipeline already had a result for this job.
    AlreadyReported,
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

impl Reporter {
    /// A reporter on `client`.
    pub fn new(client: aws_sdk_codepipeline::Client) -> Self {
        Reporter { client }
    }

    /// PutJobSuccessResult.
    pub async fn success(
        &self,
        job_id: &str,
        variables: &BTreeMap<String, String>,
        summary: &str,
        external_id: &str,
    ) -> Result<Reported, ReportError> {
        let details = ExecutionDetails::builder()
            .summary(truncate_chars(summary, 2048))
            .external_execution_id(truncate_chars(external_id, 1500))
            .percent_complete(100)
            .build();
        let mut req = self
            .client
            .put_job_success_result()
            .job_id(job_id)
            .execution_details(details);
        if !variables.is_empty() {
            req = req.set_output_variables(Some(variables.clone().into_iter().collect()));
        }
        classify(req.send().await.map(|_| ()), "PutJobSuccessResult", job_id)
    }

    /// PutJobFailureResult.
    pub async fn failure(
        &self,
        job_id: &str,
        kind: FailureType,
        message: &str,
        external_id: &str,
    ) -> Result<Reported, ReportError> {
        let message = if message.trim().is_empty() {
            "job failed"
        } else {
            message
        };
        let details = FailureDetails::builder()
            .r#type(WireFailureType::from(kind.as_str()))
            .message(truncate_chars(message, 5000))
            .external_execution_id(truncate_chars(external_id, 1500))
            .build()
            .map_err(|e| ReportError {
                op: "PutJobFailureResult",
                job_id: job_id.to_string(),
                message: e.to_string(),
            })?;
        let res = self
            .client
            .put_job_failure_result()
            .job_id(job_id)
            .failure_details(details)
            .send()
            .await;
        classify(res.map(|_| ()), "PutJobFailureResult", job_id)
    }
}

fn classify<E>(
    res: Result<(), SdkError<E, aws_smithy_runtime_api::client::orchestrator::HttpResponse>>,
    op: &'static str,
    job_id: &str,
) -> Result<Reported, ReportError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match res {
        Ok(()) => Ok(Reported::Sent),
        Err(SdkError::ServiceError(se)) if se.err().code() == Some("InvalidJobStateException") => {
            Ok(Reported::AlreadyReported)
        }
        Err(e) => Err(ReportError {
            op,
            job_id: job_id.to_string(),
            message: aws_smithy_types::error::display::DisplayErrorContext(&e).to_string(),
        }),
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
