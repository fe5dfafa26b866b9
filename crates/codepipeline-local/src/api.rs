//! The job-API operations: parse an awsJson1.1 request, validate it the way
//! CodePipeline does, and apply it to the recorded results.
//!
//! Everything here is synchronous and free of I/O so that it can be unit tested
//! without a socket; the server in `lib.rs` only moves bytes in and out.
//!
//! Validation follows the CodePipeline API reference (constraints of the service
//! model) and the AWS (Coral) error conventions:
//! - a syntactically bad body, a body that is not a JSON object, or a member of the
//!   wrong JSON type (for example a `message` that is an object) is a
//!   `SerializationException`;
//! - missing required members and violated constraints are collected into one
//!   `ValidationException` whose message reads
//!   `N validation error(s) detected: Value '…' at 'path' failed to satisfy constraint: …`;
//! - patterns must match the whole value; lengths count UTF-16 code units, as the
//!   Java-based service does, so a string is never accepted here that AWS rejects;
//! - unknown members are ignored, `null` is the same as absent.
//!
//! Service rules checked after validation: `outputVariables` sent together with a
//! `continuationToken` (even an empty map) is a `ValidationException`; more than
//! [`OUTPUT_VARIABLES_MAX_BYTES`] of keys plus values is an
//! `OutputVariablesSizeExceededException`; a second result for a job id that already
//! has one is an `InvalidJobStateException`. Job ids are not looked up anywhere, so
//! `JobNotFoundException` is never returned.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::model::{CurrentRevision, ExecutionDetails, Outcome, RecordedResult, FAILURE_TYPES};

/// The `X-Amz-Target` prefix of every CodePipeline operation.
pub(crate) const TARGET_PREFIX: &str = "CodePipeline_20150709.";

/// The largest total size, in bytes, of all output variable keys and values of one
/// action.
pub const OUTPUT_VARIABLES_MAX_BYTES: usize = 122_880;

const JOB_ID_PATTERN: &str = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}";
const VARIABLE_KEY_PATTERN: &str = r"[A-Za-z0-9@\-_]+";

/// The answer to one job-API request.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) body: String,
    pub(crate) error_type: Option<String>,
    /// True when a result was added to the store.
    pub(crate) recorded: bool,
}

impl Reply {
    fn ok(body: String, recorded: bool) -> Self {
        Self {
            status: 200,
            body,
            error_type: None,
            recorded,
        }
    }

    pub(crate) fn error(status: u16, error_type: &str, message: &str) -> Self {
        Self {
            status,
            body: serde_json::json!({ "__type": error_type, "message": message }).to_string(),
            error_type: Some(error_type.to_owned()),
            recorded: false,
        }
    }
}

/// An AWS error answered with HTTP 400.
#[derive(Debug)]
struct ApiError {
    code: &'static str,
    message: String,
}

impl ApiError {
    fn serialization(message: impl Into<String>) -> Self {
        Self {
            code: "SerializationException",
            message: message.into(),
        }
    }

    fn validation(message: impl Into<String>) -> Self {
        Self {
            code: "ValidationException",
            message: message.into(),
        }
    }
}

/// The operation name of an `X-Amz-Target` header, for logs and [`crate::RecordedCall`].
pub(crate) fn operation_name(target: Option<&str>) -> String {
    match target {
        Some(t) => t.strip_prefix(TARGET_PREFIX).unwrap_or(t).to_owned(),
        None => String::new(),
    }
}

/// The string `jobId` of a request body, if it has one.
pub(crate) fn job_id_of(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    value.get("jobId")?.as_str().map(str::to_owned)
}

/// Handles one request with the given `X-Amz-Target` and body against `results`.
pub(crate) fn handle(
    target: Option<&str>,
    body: &[u8],
    results: &mut Vec<RecordedResult>,
) -> Reply {
    match dispatch(target, body, results) {
        Ok(reply) => reply,
        Err(e) => Reply::error(400, e.code, &e.message),
    }
}

fn dispatch(
    target: Option<&str>,
    body: &[u8],
    results: &mut Vec<RecordedResult>,
) -> Result<Reply, ApiError> {
    match target.and_then(|t| t.strip_prefix(TARGET_PREFIX)) {
        Some("PutJobSuccessResult") => {
            put_job_success_result(parse(body)?, results)?;
            Ok(Reply::ok("{}".to_owned(), true))
        }
        Some("PutJobFailureResult") => {
            put_job_failure_result(parse(body)?, results)?;
            Ok(Reply::ok("{}".to_owned(), true))
        }
        Some("AcknowledgeJob") => {
            let status = acknowledge_job(parse(body)?, results)?;
            Ok(Reply::ok(
                serde_json::json!({ "status": status }).to_string(),
                false,
            ))
        }
        _ => Err(ApiError {
            code: "UnknownOperationException",
            message: match target {
                Some(t) => format!("Unknown operation {t}"),
                None => "Missing X-Amz-Target header".to_owned(),
            },
        }),
    }
}

/// Parses a JSON object body (empty means `{}`) into an input shape.
fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let value = if body.iter().all(u8::is_ascii_whitespace) {
        serde_json::Value::Object(serde_json::Map::new())
    } else {
        serde_json::from_slice(body).map_err(|e| ApiError::serialization(e.to_string()))?
    };
    if !value.is_object() {
        return Err(ApiError::serialization(
            "The request body must be a JSON object",
        ));
    }
    serde_json::from_value(value).map_err(|e| ApiError::serialization(e.to_string()))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PutJobSuccessResultInput {
    job_id: Option<String>,
    continuation_token: Option<String>,
    output_variables: Option<BTreeMap<String, String>>,
    execution_details: Option<ExecutionDetails>,
    current_revision: Option<CurrentRevisionInput>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CurrentRevisionInput {
    revision: Option<String>,
    change_identifier: Option<String>,
    created: Option<f64>,
    revision_summary: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PutJobFailureResultInput {
    job_id: Option<String>,
    failure_details: Option<FailureDetailsInput>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FailureDetailsInput {
    #[serde(rename = "type")]
    type_: Option<String>,
    message: Option<String>,
    external_execution_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AcknowledgeJobInput {
    job_id: Option<String>,
    nonce: Option<String>,
}

fn put_job_success_result(
    input: PutJobSuccessResultInput,
    results: &mut Vec<RecordedResult>,
) -> Result<(), ApiError> {
    let mut v = Violations::default();
    v.job_id(input.job_id.as_deref());
    if let Some(token) = &input.continuation_token {
        v.length("continuationToken", token, 1, 2048);
    }
    if let Some(vars) = &input.output_variables {
        for key in vars.keys().filter(|k| !is_variable_key(k)) {
            v.push(format!(
                "Value '{}' at 'outputVariables' failed to satisfy constraint: Map keys must \
                 satisfy constraint: [Member must satisfy regular expression pattern: \
                 {VARIABLE_KEY_PATTERN}]",
                show(key)
            ));
        }
    }
    if let Some(details) = &input.execution_details {
        v.execution_details(details);
    }
    if let Some(revision) = &input.current_revision {
        if let Some(r) = v.required("currentRevision.revision", revision.revision.as_deref()) {
            v.length("currentRevision.revision", r, 1, 1500);
        }
        if let Some(c) = v.required(
            "currentRevision.changeIdentifier",
            revision.change_identifier.as_deref(),
        ) {
            v.length("currentRevision.changeIdentifier", c, 1, 100);
        }
        if let Some(s) = &revision.revision_summary {
            v.length("currentRevision.revisionSummary", s, 1, 2048);
        }
    }
    v.finish()?;
    let job_id = input.job_id.unwrap_or_default();

    if input.continuation_token.is_some() && input.output_variables.is_some() {
        return Err(ApiError::validation(
            "outputVariables can be included only when there is no continuation token on the \
             request",
        ));
    }
    let output_variables = input.output_variables.unwrap_or_default();
    let size: usize = output_variables
        .iter()
        .map(|(k, v)| k.len() + v.len())
        .sum();
    if size > OUTPUT_VARIABLES_MAX_BYTES {
        return Err(ApiError {
            code: "OutputVariablesSizeExceededException",
            message: format!(
                "The output variables of the action total {size} bytes (keys and values), \
                 more than the limit of {OUTPUT_VARIABLES_MAX_BYTES} bytes"
            ),
        });
    }
    ensure_open(&job_id, results)?;
    results.push(RecordedResult {
        job_id,
        outcome: Outcome::Success {
            continuation_token: input.continuation_token,
            output_variables,
            execution_details: input.execution_details,
            current_revision: input.current_revision.map(|r| CurrentRevision {
                revision: r.revision.unwrap_or_default(),
                change_identifier: r.change_identifier.unwrap_or_default(),
                created: r.created,
                revision_summary: r.revision_summary,
            }),
        },
    });
    Ok(())
}

fn put_job_failure_result(
    input: PutJobFailureResultInput,
    results: &mut Vec<RecordedResult>,
) -> Result<(), ApiError> {
    let mut v = Violations::default();
    v.job_id(input.job_id.as_deref());
    if let Some(details) = v.required("failureDetails", input.failure_details.as_ref()) {
        if let Some(t) = v.required("failureDetails.type", details.type_.as_deref()) {
            if !FAILURE_TYPES.contains(&t) {
                v.push(format!(
                    "Value '{}' at 'failureDetails.type' failed to satisfy constraint: Member \
                     must satisfy enum value set: [{}]",
                    show(t),
                    FAILURE_TYPES.join(", ")
                ));
            }
        }
        if let Some(m) = v.required("failureDetails.message", details.message.as_deref()) {
            v.length("failureDetails.message", m, 1, 5000);
        }
        if let Some(id) = &details.external_execution_id {
            v.length("failureDetails.externalExecutionId", id, 1, 1500);
        }
    }
    v.finish()?;
    let job_id = input.job_id.unwrap_or_default();
    let Some(details) = input.failure_details else {
        unreachable!("validated above");
    };
    ensure_open(&job_id, results)?;
    results.push(RecordedResult {
        job_id,
        outcome: Outcome::Failure {
            type_: details.type_.unwrap_or_default(),
            message: details.message.unwrap_or_default(),
            external_execution_id: details.external_execution_id,
        },
    });
    Ok(())
}

/// Returns the job status: `InProgress` until a result was recorded.
fn acknowledge_job(
    input: AcknowledgeJobInput,
    results: &[RecordedResult],
) -> Result<&'static str, ApiError> {
    let mut v = Violations::default();
    v.job_id(input.job_id.as_deref());
    if let Some(nonce) = v.required("nonce", input.nonce.as_deref()) {
        v.length("nonce", nonce, 1, 50);
    }
    v.finish()?;
    let job_id = input.job_id.unwrap_or_default();
    Ok(match results.iter().find(|r| r.job_id == job_id) {
        None => "InProgress",
        Some(r) if r.is_success() => "Succeeded",
        Some(_) => "Failed",
    })
}

/// Fails with `InvalidJobStateException` when `job_id` already has a result.
fn ensure_open(job_id: &str, results: &[RecordedResult]) -> Result<(), ApiError> {
    match results.iter().find(|r| r.job_id == job_id) {
        None => Ok(()),
        Some(previous) => Err(ApiError {
            code: "InvalidJobStateException",
            message: format!(
                "Job {job_id} is already {}; a result cannot be reported for it again",
                if previous.is_success() {
                    "Succeeded"
                } else {
                    "Failed"
                }
            ),
        }),
    }
}

/// Constraint violations of one request, reported together like AWS does.
#[derive(Default)]
struct Violations(Vec<String>);

impl Violations {
    fn push(&mut self, message: String) {
        self.0.push(message);
    }

    /// Records a violation when `value` is absent; returns it otherwise.
    fn required<'a, T: ?Sized>(&mut self, path: &str, value: Option<&'a T>) -> Option<&'a T> {
        if value.is_none() {
            self.push(format!(
                "Value null at '{path}' failed to satisfy constraint: Member must not be null"
            ));
        }
        value
    }

    fn length(&mut self, path: &str, value: &str, min: usize, max: usize) {
        let len = value.encode_utf16().count();
        if len < min {
            self.push(format!(
                "Value '{}' at '{path}' failed to satisfy constraint: Member must have length \
                 greater than or equal to {min}",
                show(value)
            ));
        }
        if len > max {
            self.push(format!(
                "Value '{}' at '{path}' failed to satisfy constraint: Member must have length \
                 less than or equal to {max}",
                show(value)
            ));
        }
    }

    fn range(&mut self, path: &str, value: i32, min: i32, max: i32) {
        if value < min {
            self.push(format!(
                "Value '{value}' at '{path}' failed to satisfy constraint: Member must have \
                 value greater than or equal to {min}"
            ));
        }
        if value > max {
            self.push(format!(
                "Value '{value}' at '{path}' failed to satisfy constraint: Member must have \
                 value less than or equal to {max}"
            ));
        }
    }

    fn job_id(&mut self, job_id: Option<&str>) {
        if let Some(id) = self.required("jobId", job_id) {
            if !is_job_id(id) {
                self.push(format!(
                    "Value '{}' at 'jobId' failed to satisfy constraint: Member must satisfy \
                     regular expression pattern: {JOB_ID_PATTERN}",
                    show(id)
                ));
            }
        }
    }

    fn execution_details(&mut self, details: &ExecutionDetails) {
        if let Some(s) = &details.summary {
            self.length("executionDetails.summary", s, 1, 2048);
        }
        if let Some(id) = &details.external_execution_id {
            self.length("executionDetails.externalExecutionId", id, 1, 1500);
        }
        if let Some(p) = details.percent_complete {
            self.range("executionDetails.percentComplete", p, 0, 100);
        }
    }

    fn finish(self) -> Result<(), ApiError> {
        match self.0.len() {
            0 => Ok(()),
            1 => Err(ApiError::validation(format!(
                "1 validation error detected: {}",
                self.0[0]
            ))),
            n => Err(ApiError::validation(format!(
                "{n} validation errors detected: {}",
                self.0.join("; ")
            ))),
        }
    }
}

/// `[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`, whole value.
fn is_job_id(id: &str) -> bool {
    let bytes = id.as_bytes();
    bytes.len() == 36
        && bytes.iter().enumerate().all(|(i, &b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
        })
}

/// `[A-Za-z0-9@\-_]+`, whole value.
fn is_variable_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'@' | b'-' | b'_'))
}

/// A value as quoted in an error message, cut short when long.
fn show(value: &str) -> String {
    const MAX: usize = 80;
    match value.char_indices().nth(MAX) {
        None => value.to_owned(),
        Some((end, _)) => format!("{}...", &value[..end]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JOB: &str = "0123abcd-4567-89ef-0123-456789abcdef";

    fn call(op: &str, body: serde_json::Value, results: &mut Vec<RecordedResult>) -> Reply {
        handle(
            Some(&format!("{TARGET_PREFIX}{op}")),
            body.to_string().as_bytes(),
            results,
        )
    }

    fn error_of(reply: &Reply) -> (String, String) {
        let body: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
        assert_eq!(reply.status, 400, "{body}");
        assert_eq!(reply.error_type.as_deref(), body["__type"].as_str());
        (
            body["__type"].as_str().unwrap().to_owned(),
            body["message"].as_str().unwrap().to_owned(),
        )
    }

    #[test]
    fn job_id_pattern() {
        assert!(is_job_id(JOB));
        assert!(!is_job_id(&JOB.to_uppercase()));
        assert!(!is_job_id(&JOB[1..]));
        assert!(!is_job_id(&format!("{JOB}0")));
        assert!(!is_job_id("0123abcd04567-89ef-0123-456789abcdef"));
        assert!(!is_job_id("0123abcg-4567-89ef-0123-456789abcdef"));
    }

    #[test]
    fn variable_key_pattern() {
        assert!(is_variable_key("Ab9@-_"));
        assert!(!is_variable_key(""));
        assert!(!is_variable_key("a b"));
        assert!(!is_variable_key("a.b"));
        assert!(!is_variable_key("é"));
    }

    #[test]
    fn success_is_recorded_and_second_result_rejected() {
        let mut results = Vec::new();
        let reply = call(
            "PutJobSuccessResult",
            serde_json::json!({
                "jobId": JOB,
                "outputVariables": {"Count": "3"},
                "executionDetails": {"summary": "ok", "percentComplete": 100},
                "unknownMember": 1,
            }),
            &mut results,
        );
        assert_eq!((reply.status, reply.body.as_str()), (200, "{}"));
        assert!(reply.recorded);
        assert_eq!(results.len(), 1);
        assert_eq!(
            results[0].outcome,
            Outcome::Success {
                continuation_token: None,
                output_variables: BTreeMap::from([("Count".into(), "3".into())]),
                execution_details: Some(ExecutionDetails {
                    summary: Some("ok".into()),
                    external_execution_id: None,
                    percent_complete: Some(100),
                }),
                current_revision: None,
            }
        );

        let reply = call(
            "PutJobFailureResult",
            serde_json::json!({"jobId": JOB, "failureDetails": {"type": "JobFailed", "message": "x"}}),
            &mut results,
        );
        let (code, message) = error_of(&reply);
        assert_eq!(code, "InvalidJobStateException");
        assert!(message.contains("Succeeded"), "{message}");
        assert_eq!(results.len(), 1);
    }

    #[test]
    fn validation_errors_are_collected() {
        let mut results = Vec::new();
        let reply = call(
            "PutJobSuccessResult",
            serde_json::json!({
                "jobId": "not-a-job",
                "continuationToken": "",
                "executionDetails": {"summary": "", "externalExecutionId": "x".repeat(1501), "percentComplete": 101},
                "currentRevision": {"revision": "r"},
            }),
            &mut results,
        );
        let (code, message) = error_of(&reply);
        assert_eq!(code, "ValidationException");
        assert!(
            message.starts_with("6 validation errors detected: "),
            "{message}"
        );
        for needle in [
            "Value 'not-a-job' at 'jobId' failed to satisfy constraint: Member must satisfy regular expression pattern",
            "at 'continuationToken' failed to satisfy constraint: Member must have length greater than or equal to 1",
            "at 'executionDetails.summary'",
            "at 'executionDetails.externalExecutionId' failed to satisfy constraint: Member must have length less than or equal to 1500",
            "Value '101' at 'executionDetails.percentComplete'",
            "Value null at 'currentRevision.changeIdentifier' failed to satisfy constraint: Member must not be null",
        ] {
            assert!(message.contains(needle), "{needle} not in {message}");
        }
        assert!(results.is_empty());
    }

    #[test]
    fn missing_job_id_and_failure_details() {
        let mut results = Vec::new();
        let (code, message) = error_of(&call(
            "PutJobFailureResult",
            serde_json::json!({}),
            &mut results,
        ));
        assert_eq!(code, "ValidationException");
        assert_eq!(
            message,
            "2 validation errors detected: Value null at 'jobId' failed to satisfy constraint: \
             Member must not be null; Value null at 'failureDetails' failed to satisfy \
             constraint: Member must not be null"
        );
    }

    #[test]
    fn failure_type_must_be_known() {
        let mut results = Vec::new();
        let (code, message) = error_of(&call(
            "PutJobFailureResult",
            serde_json::json!({"jobId": JOB, "failureDetails": {"type": "Oops", "message": "m"}}),
            &mut results,
        ));
        assert_eq!(code, "ValidationException");
        assert!(
            message.contains("Member must satisfy enum value set: [JobFailed, ConfigurationError, PermissionError, RevisionOutOfSync, RevisionUnavailable, SystemUnavailable]"),
            "{message}"
        );
    }

    #[test]
    fn message_length_counts_utf16_units() {
        let mut results = Vec::new();
        // 2500 characters outside the BMP are 5000 UTF-16 units: accepted.
        let ok = "😀".repeat(2500);
        let reply = call(
            "PutJobFailureResult",
            serde_json::json!({"jobId": JOB, "failureDetails": {"type": "JobFailed", "message": ok}}),
            &mut results,
        );
        assert_eq!(reply.status, 200, "{}", reply.body);
        let other = JOB.replace('0', "1");
        let (code, message) = error_of(&call(
            "PutJobFailureResult",
            serde_json::json!({"jobId": other, "failureDetails": {"type": "JobFailed", "message": "😀".repeat(2501)}}),
            &mut results,
        ));
        assert_eq!(code, "ValidationException");
        assert!(message.contains("less than or equal to 5000"), "{message}");
        // Quoted values are cut short.
        assert!(message.len() < 600, "{message}");
    }

    #[test]
    fn wrong_json_types_are_serialization_errors() {
        let mut results = Vec::new();
        for (op, body) in [
            (
                "PutJobFailureResult",
                serde_json::json!({"jobId": JOB, "failureDetails": {"type": "JobFailed", "message": {"error": "x"}}}),
            ),
            ("PutJobFailureResult", serde_json::json!({"jobId": 7})),
            (
                "PutJobSuccessResult",
                serde_json::json!({"jobId": JOB, "executionDetails": {"percentComplete": 50.5}}),
            ),
            (
                "PutJobSuccessResult",
                serde_json::json!({"jobId": JOB, "outputVariables": {"a": 1}}),
            ),
            ("PutJobSuccessResult", serde_json::json!([JOB])),
        ] {
            let (code, _) = error_of(&call(op, body.clone(), &mut results));
            assert_eq!(code, "SerializationException", "{body}");
        }
        let (code, _) = error_of(&handle(
            Some("CodePipeline_20150709.PutJobSuccessResult"),
            b"{\"jobId\":",
            &mut results,
        ));
        assert_eq!(code, "SerializationException");
        assert!(results.is_empty());
    }

    #[test]
    fn unknown_operation() {
        let mut results = Vec::new();
        for target in [
            Some("CodePipeline_20150709.DeletePipeline"),
            Some("PutJobSuccessResult"),
            None,
        ] {
            let (code, _) = error_of(&handle(target, b"{}", &mut results));
            assert_eq!(code, "UnknownOperationException", "{target:?}");
        }
    }

    #[test]
    fn output_variables_rules() {
        let mut results = Vec::new();
        let (code, message) = error_of(&call(
            "PutJobSuccessResult",
            serde_json::json!({"jobId": JOB, "outputVariables": {"ok": "1", "bad key": "2"}}),
            &mut results,
        ));
        assert_eq!(code, "ValidationException");
        assert!(
            message.contains("Value 'bad key' at 'outputVariables'"),
            "{message}"
        );

        let (code, _) = error_of(&call(
            "PutJobSuccessResult",
            serde_json::json!({"jobId": JOB, "continuationToken": "t", "outputVariables": {}}),
            &mut results,
        ));
        assert_eq!(code, "ValidationException");

        // Exactly at the limit: accepted.
        let at_limit = "v".repeat(OUTPUT_VARIABLES_MAX_BYTES - 1);
        let reply = call(
            "PutJobSuccessResult",
            serde_json::json!({"jobId": JOB, "outputVariables": {"k": at_limit}}),
            &mut results,
        );
        assert_eq!(reply.status, 200, "{}", reply.body);
        let other = JOB.replace('a', "b");
        let over = "é".repeat(OUTPUT_VARIABLES_MAX_BYTES / 2);
        let (code, _) = error_of(&call(
            "PutJobSuccessResult",
            serde_json::json!({"jobId": other, "outputVariables": {"k": over}}),
            &mut results,
        ));
        assert_eq!(code, "OutputVariablesSizeExceededException");
        assert_eq!(results.len(), 1);
    }

    #[test]
    fn acknowledge_job_reports_status() {
        let mut results = Vec::new();
        let ack = |results: &mut Vec<RecordedResult>| {
            call(
                "AcknowledgeJob",
                serde_json::json!({"jobId": JOB, "nonce": "1"}),
                results,
            )
        };
        assert_eq!(ack(&mut results).body, r#"{"status":"InProgress"}"#);
        let (code, _) = error_of(&call(
            "AcknowledgeJob",
            serde_json::json!({"jobId": JOB}),
            &mut results,
        ));
        assert_eq!(code, "ValidationException");
        call(
            "PutJobFailureResult",
            serde_json::json!({"jobId": JOB, "failureDetails": {"type": "ConfigurationError", "message": "m", "externalExecutionId": "e"}}),
            &mut results,
        );
        assert_eq!(ack(&mut results).body, r#"{"status":"Failed"}"#);
        assert_eq!(
            results[0].outcome,
            Outcome::Failure {
                type_: "ConfigurationError".into(),
                message: "m".into(),
                external_execution_id: Some("e".into()),
            }
        );
    }

    #[test]
    fn recorded_result_json_shape() {
        let result = RecordedResult {
            job_id: JOB.into(),
            outcome: Outcome::Failure {
                type_: "JobFailed".into(),
                message: "m".into(),
                external_execution_id: None,
            },
        };
        let json = serde_json::to_value(&result).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"jobId": JOB, "outcome": "failure", "type": "JobFailed", "message": "m", "externalExecutionId": null})
        );
        let back: RecordedResult = serde_json::from_value(json).unwrap();
        assert_eq!(back, result);
    }
}
