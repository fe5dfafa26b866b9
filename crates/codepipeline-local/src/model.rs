//! What the server records and how tests steer it.
//!
//! [`RecordedResult`] is one accepted `PutJobSuccessResult` / `PutJobFailureResult`
//! call, in the shape the worker sent it (after validation). It serializes to JSON with
//! the AWS wire names (`jobId`, `outputVariables`, ...) plus an `outcome` tag
//! (`"success"` or `"failure"`); that is what `GET /_results` returns.
//!
//! [`RecordedCall`] is one job-API request of any outcome (accepted, rejected or
//! failed by an injected [`Fault`]), in arrival order, so tests can count the SDK's
//! attempts.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One job result accepted by the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordedResult {
    /// The job id the result was reported for.
    pub job_id: String,
    /// Success or failure, with the details the worker sent.
    #[serde(flatten)]
    pub outcome: Outcome,
}

impl RecordedResult {
    /// True for a `PutJobSuccessResult`.
    pub fn is_success(&self) -> bool {
        matches!(self.outcome, Outcome::Success { .. })
    }

    /// True for a `PutJobFailureResult`.
    pub fn is_failure(&self) -> bool {
        matches!(self.outcome, Outcome::Failure { .. })
    }
}

/// The reported outcome of a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "outcome",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum Outcome {
    /// `PutJobSuccessResult`.
    Success {
        /// Set when the worker asked CodePipeline to continue the action in a new job.
        continuation_token: Option<String>,
        /// Output variables (empty when none were sent; never set together with a
        /// continuation token).
        #[serde(default)]
        output_variables: BTreeMap<String, String>,
        /// Optional execution details shown in the console.
        execution_details: Option<ExecutionDetails>,
        /// Source actions only.
        current_revision: Option<CurrentRevision>,
    },
    /// `PutJobFailureResult`.
    Failure {
        /// `failureDetails.type`: one of [`FAILURE_TYPES`].
        #[serde(rename = "type")]
        type_: String,
        /// `failureDetails.message` (1..=5000 characters).
        message: String,
        /// `failureDetails.externalExecutionId`.
        external_execution_id: Option<String>,
    },
}

/// The values CodePipeline accepts for `failureDetails.type`.
pub const FAILURE_TYPES: [&str; 6] = [
    "JobFailed",
    "ConfigurationError",
    "PermissionError",
    "RevisionOutOfSync",
    "RevisionUnavailable",
    "SystemUnavailable",
];

/// `executionDetails` of `PutJobSuccessResult` (every field optional).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionDetails {
    /// 1..=2048 characters.
    pub summary: Option<String>,
    /// 1..=1500 characters.
    pub external_execution_id: Option<String>,
    /// 0..=100.
    pub percent_complete: Option<i32>,
}

/// `currentRevision` of `PutJobSuccessResult`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CurrentRevision {
    /// 1..=1500 characters.
    pub revision: String,
    /// 1..=100 characters.
    pub change_identifier: String,
    /// Epoch seconds, as the awsJson1.1 protocol sends timestamps.
    pub created: Option<f64>,
    /// 1..=2048 characters.
    pub revision_summary: Option<String>,
}

/// One job-API request the server answered, in arrival order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordedCall {
    /// The operation named by `X-Amz-Target` without the service prefix
    /// (e.g. `PutJobSuccessResult`), or the raw header value when it was not understood.
    pub operation: String,
    /// The `jobId` of the request body, when it had a string one.
    pub job_id: Option<String>,
    /// The HTTP status sent back.
    pub status: u16,
    /// The `__type` of an error response.
    pub error_type: Option<String>,
}

/// An error the server returns instead of handling a call (see
/// [`LocalCodePipeline::fail_next`](crate::LocalCodePipeline::fail_next)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// HTTP status, e.g. 400 for throttling or 500 for an internal failure.
    pub status: u16,
    /// The AWS error code sent as `__type` and `x-amzn-ErrorType`.
    pub error_type: String,
    /// The error message.
    pub message: String,
    /// When true the call is handled (and a result recorded) first and only the
    /// response is replaced by the fault: a response lost after the service acted.
    pub after_processing: bool,
}

impl Fault {
    /// A fault answering with `status` and `{"__type": error_type, "message": message}`.
    pub fn new(status: u16, error_type: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            status,
            error_type: error_type.into(),
            message: message.into(),
            after_processing: false,
        }
    }

    /// HTTP 400 `ThrottlingException` ("Rate exceeded"), which the SDK retries.
    pub fn throttling() -> Self {
        Self::new(400, "ThrottlingException", "Rate exceeded")
    }

    /// HTTP 500 `InternalFailure`, which the SDK retries.
    pub fn internal_failure() -> Self {
        Self::new(
            500,
            "InternalFailure",
            "The request processing has failed because of an unknown error, exception or failure.",
        )
    }

    /// Handles the call first, then answers with this fault (sets the field of the
    /// same name): the worker sees an error although its result was recorded.
    pub fn after_processing(mut self) -> Self {
        self.after_processing = true;
        self
    }
}
