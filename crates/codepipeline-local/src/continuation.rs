//! What CodePipeline does with a continuation result: when a job's success result
//! carries a `continuationToken`, the service starts a **new job** (a new job id,
//! fresh artifact credentials) for the same action execution, with the token in
//! `data.continuationToken`, and invokes the function again; it stops following when
//! a result without a token (or a failure) is recorded.
//!
//! [`next_job_event`] builds that next event from the previous one and the recorded
//! result, so a local runner can drive a job through its continuations exactly as
//! the service would (credentials are carried over: a local store has no STS to
//! mint new ones).

use serde_json::Value;

use crate::model::{Outcome, RecordedResult};

/// The event CodePipeline would send next after `result` of the job in `event`:
/// `Some` only when `result` is a success with a continuation token.
pub fn next_job_event(event: &Value, result: &RecordedResult) -> Option<Value> {
    let Outcome::Success {
        continuation_token: Some(token),
        ..
    } = &result.outcome
    else {
        return None;
    };
    let mut next = event.clone();
    let job = next.get_mut("CodePipeline.job")?.as_object_mut()?;
    job.insert("id".into(), Value::String(new_job_id()));
    let data = job.get_mut("data")?.as_object_mut()?;
    data.insert("continuationToken".into(), Value::String(token.clone()));
    Some(next)
}

/// A fresh job id in CodePipeline's format (a lowercase UUID, version 4 layout).
pub fn new_job_id() -> String {
    let hex: String = (0..32)
        .map(|_| char::from_digit(fastrand::u32(..16), 16).expect("a hex digit"))
        .collect();
    format!(
        "{}-{}-4{}-a{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ExecutionDetails;

    fn result(token: Option<&str>) -> RecordedResult {
        RecordedResult {
            job_id: "0123abcd-4567-89ef-0123-456789abcdef".into(),
            outcome: Outcome::Success {
                continuation_token: token.map(str::to_string),
                output_variables: Default::default(),
                execution_details: None::<ExecutionDetails>,
                current_revision: None,
            },
        }
    }

    #[test]
    fn a_continuation_starts_a_new_job_with_the_token() {
        let event = serde_json::json!({"CodePipeline.job": {"id": "old", "data": {"x": 1}}});
        let next = next_job_event(&event, &result(Some("tok"))).unwrap();
        let job = &next["CodePipeline.job"];
        let id = job["id"].as_str().unwrap();
        assert_ne!(id, "old");
        assert_eq!(id.len(), 36);
        assert!(id.bytes().all(|b| b == b'-' || b.is_ascii_hexdigit()));
        assert_eq!(job["data"]["continuationToken"], "tok");
        assert_eq!(job["data"]["x"], 1);
        assert!(next_job_event(&event, &result(None)).is_none());
    }
}
