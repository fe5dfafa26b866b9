//! Drives the local endpoint with the real `aws-sdk-codepipeline` client.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_credential_types::Credentials;
use aws_sdk_codepipeline::config::retry::RetryConfig;
use aws_sdk_codepipeline::config::{BehaviorVersion, Region};
use aws_sdk_codepipeline::error::ProvideErrorMetadata;
use aws_sdk_codepipeline::types::{
    CurrentRevision as SdkCurrentRevision, ExecutionDetails as SdkExecutionDetails, FailureDetails,
    FailureType,
};
use aws_sdk_codepipeline::Client;
use codepipeline_local::{
    CurrentRevision, ExecutionDetails, Fault, LocalCodePipeline, Outcome, RecordedCall,
    RecordedResult, OUTPUT_VARIABLES_MAX_BYTES,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const JOB: &str = "11111111-2222-4333-8444-555555555555";
const OTHER_JOB: &str = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee";

fn start() -> LocalCodePipeline {
    LocalCodePipeline::start("127.0.0.1:0".parse().unwrap()).expect("server starts")
}

/// The SDK's default configuration pointed at `server`, with static test credentials.
fn config(server: &LocalCodePipeline) -> aws_sdk_codepipeline::config::Builder {
    aws_sdk_codepipeline::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            "AKIDLOCALTEST",
            "local-test-secret",
            None,
            None,
            "codepipeline-local-test",
        ))
        .endpoint_url(server.endpoint_url())
}

/// A client with a short retry backoff so the retry tests stay fast (standard retry
/// mode and its error classification, as by default).
fn client(server: &LocalCodePipeline) -> Client {
    Client::from_conf(
        config(server)
            .retry_config(
                RetryConfig::standard()
                    .with_initial_backoff(Duration::from_millis(5))
                    .with_max_backoff(Duration::from_millis(20)),
            )
            .build(),
    )
}

async fn report_failure(
    client: &Client,
    job_id: &str,
    message: &str,
) -> Result<
    aws_sdk_codepipeline::operation::put_job_failure_result::PutJobFailureResultOutput,
    aws_sdk_codepipeline::operation::put_job_failure_result::PutJobFailureResultError,
> {
    client
        .put_job_failure_result()
        .job_id(job_id)
        .failure_details(
            FailureDetails::builder()
                .r#type(FailureType::ConfigurationError)
                .message(message)
                .external_execution_id("exec-1")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .map_err(|e| e.into_service_error())
}

#[tokio::test]
async fn success_is_recorded_with_variables_and_details() {
    let server = start();
    let client = client(&server);
    client
        .put_job_success_result()
        .job_id(JOB)
        .output_variables("ArtifactSha256", "abc123")
        .output_variables("Entries", "42")
        .execution_details(
            SdkExecutionDetails::builder()
                .summary("Transformed 42 entries")
                .external_execution_id("run-7")
                .percent_complete(100)
                .build(),
        )
        .current_revision(
            SdkCurrentRevision::builder()
                .revision("rev-1")
                .change_identifier("change-1")
                .created(aws_sdk_codepipeline::primitives::DateTime::from_secs(
                    1_700_000_000,
                ))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("PutJobSuccessResult succeeds");

    let expected = RecordedResult {
        job_id: JOB.to_owned(),
        outcome: Outcome::Success {
            continuation_token: None,
            output_variables: BTreeMap::from([
                ("ArtifactSha256".to_owned(), "abc123".to_owned()),
                ("Entries".to_owned(), "42".to_owned()),
            ]),
            execution_details: Some(ExecutionDetails {
                summary: Some("Transformed 42 entries".to_owned()),
                external_execution_id: Some("run-7".to_owned()),
                percent_complete: Some(100),
            }),
            current_revision: Some(CurrentRevision {
                revision: "rev-1".to_owned(),
                change_identifier: "change-1".to_owned(),
                created: Some(1_700_000_000.0),
                revision_summary: None,
            }),
        },
    };
    assert_eq!(server.result_for(JOB), Some(expected.clone()));
    assert_eq!(server.results(), vec![expected]);
    assert_eq!(server.result_for(OTHER_JOB), None);
}

#[tokio::test]
async fn continuation_token_is_recorded() {
    let server = start();
    let client = client(&server);
    client
        .put_job_success_result()
        .job_id(JOB)
        .continuation_token("{\"previousJobId\":\"x\",\"part\":3}")
        .send()
        .await
        .expect("PutJobSuccessResult succeeds");
    let result = server.result_for(JOB).unwrap();
    assert!(matches!(
        result.outcome,
        Outcome::Success { continuation_token: Some(ref t), ref output_variables, .. }
            if t.contains("part") && output_variables.is_empty()
    ));

    // Variables together with a continuation token are refused.
    let err = client
        .put_job_success_result()
        .job_id(OTHER_JOB)
        .continuation_token("t")
        .output_variables("k", "v")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_validation_exception(), "{err:?}");
}

#[tokio::test]
async fn failure_is_recorded_with_type_and_message() {
    let server = start();
    let client = client(&server);
    report_failure(
        &client,
        JOB,
        "Input artifact 'Src' is not a zip: re-run the source action",
    )
    .await
    .expect("PutJobFailureResult succeeds");
    let result = server.result_for(JOB).unwrap();
    assert!(result.is_failure());
    assert_eq!(
        result.outcome,
        Outcome::Failure {
            type_: "ConfigurationError".to_owned(),
            message: "Input artifact 'Src' is not a zip: re-run the source action".to_owned(),
            external_execution_id: Some("exec-1".to_owned()),
        }
    );
}

#[tokio::test]
async fn second_report_is_invalid_job_state() {
    let server = start();
    let client = client(&server);
    client
        .put_job_success_result()
        .job_id(JOB)
        .send()
        .await
        .unwrap();

    let err = client
        .put_job_success_result()
        .job_id(JOB)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_invalid_job_state_exception(), "{err:?}");
    assert_eq!(err.code(), Some("InvalidJobStateException"));

    let err = report_failure(&client, JOB, "late failure")
        .await
        .unwrap_err();
    assert!(err.is_invalid_job_state_exception(), "{err:?}");

    // The first result stands.
    assert_eq!(server.results().len(), 1);
    assert!(server.result_for(JOB).unwrap().is_success());
}

#[tokio::test]
async fn oversize_output_variables_are_refused() {
    let server = start();
    let client = client(&server);
    let big = "x".repeat(OUTPUT_VARIABLES_MAX_BYTES / 2);
    let err = client
        .put_job_success_result()
        .job_id(JOB)
        .output_variables("A", big.clone())
        .output_variables("B", big)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_output_variables_size_exceeded_exception(), "{err:?}");
    assert!(server.results().is_empty());
}

#[tokio::test]
async fn bad_variable_key_and_long_message_are_validation_errors() {
    let server = start();
    let client = client(&server);
    let err = client
        .put_job_success_result()
        .job_id(JOB)
        .output_variables("not allowed!", "v")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_validation_exception(), "{err:?}");
    assert!(
        err.message()
            .unwrap()
            .contains("Value 'not allowed!' at 'outputVariables'"),
        "{err:?}"
    );

    let err = report_failure(&client, JOB, &"m".repeat(5001))
        .await
        .unwrap_err();
    assert!(err.is_validation_exception(), "{err:?}");
    assert!(
        err.message()
            .unwrap()
            .contains("'failureDetails.message' failed to satisfy constraint: Member must have length less than or equal to 5000"),
        "{err:?}"
    );

    let err = report_failure(&client, "NOT-A-JOB-ID", "m")
        .await
        .unwrap_err();
    assert!(err.is_validation_exception(), "{err:?}");

    // Nothing was recorded, so a valid report still goes through.
    report_failure(&client, JOB, &"m".repeat(5000))
        .await
        .expect("a 5000-character message is accepted");
}

#[tokio::test]
async fn injected_throttle_is_retried_by_the_sdk() {
    let server = start();
    let client = client(&server);
    server.fail_next(1, Fault::throttling());
    client
        .put_job_success_result()
        .job_id(JOB)
        .send()
        .await
        .expect("the SDK retries a throttled call");
    assert!(server.result_for(JOB).is_some());
    assert_eq!(
        server.calls(),
        vec![
            RecordedCall {
                operation: "PutJobSuccessResult".to_owned(),
                job_id: Some(JOB.to_owned()),
                status: 400,
                error_type: Some("ThrottlingException".to_owned()),
            },
            RecordedCall {
                operation: "PutJobSuccessResult".to_owned(),
                job_id: Some(JOB.to_owned()),
                status: 200,
                error_type: None,
            },
        ]
    );
}

#[tokio::test]
async fn default_retry_config_retries_a_throttle() {
    let server = start();
    let client = Client::from_conf(config(&server).build());
    server.fail_next(1, Fault::throttling());
    client
        .put_job_success_result()
        .job_id(JOB)
        .send()
        .await
        .expect("the default retry config retries a throttled call");
    let statuses: Vec<u16> = server.calls().iter().map(|c| c.status).collect();
    assert_eq!(statuses, [400, 200]);
}

#[tokio::test]
async fn injected_internal_failure_is_retried_by_the_sdk() {
    let server = start();
    let client = client(&server);
    server.fail_next(1, Fault::internal_failure());
    report_failure(&client, JOB, "boom")
        .await
        .expect("the SDK retries a 500");
    let statuses: Vec<u16> = server.calls().iter().map(|c| c.status).collect();
    assert_eq!(statuses, [500, 200]);
    assert!(server.result_for(JOB).unwrap().is_failure());
}

#[tokio::test]
async fn persistent_throttling_exhausts_the_sdk_retries() {
    let server = start();
    let client = client(&server);
    server.fail_next(10, Fault::throttling());
    let err = client
        .put_job_success_result()
        .job_id(JOB)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(err.code(), Some("ThrottlingException"));
    // Standard retry mode: three attempts in all.
    assert_eq!(server.calls().len(), 3);
    assert!(server.results().is_empty());
}

#[tokio::test]
async fn lost_response_makes_the_retry_see_invalid_job_state() {
    // The service records the result but the response is lost (500): the SDK retries
    // and the retry is told the job is no longer in progress. A reporter must treat
    // that as "already reported", not as a failure of the job.
    let server = start();
    let client = client(&server);
    server.fail_next(1, Fault::internal_failure().after_processing());
    let err = client
        .put_job_success_result()
        .job_id(JOB)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_invalid_job_state_exception(), "{err:?}");
    assert!(server.result_for(JOB).unwrap().is_success());
    let statuses: Vec<u16> = server.calls().iter().map(|c| c.status).collect();
    assert_eq!(statuses, [500, 400]);
}

#[tokio::test]
async fn acknowledge_job_works() {
    let server = start();
    let client = client(&server);
    let out = client
        .acknowledge_job()
        .job_id(JOB)
        .nonce("1")
        .send()
        .await
        .unwrap();
    assert_eq!(
        out.status(),
        Some(&aws_sdk_codepipeline::types::JobStatus::InProgress)
    );
}

#[tokio::test]
async fn wait_for_sees_a_later_result_and_times_out_otherwise() {
    let server = start();
    let client = client(&server);
    let reporter = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(20)).await;
        client
            .put_job_success_result()
            .job_id(JOB)
            .send()
            .await
            .unwrap();
    });
    let result = server.wait_for(JOB, Duration::from_secs(30)).await;
    assert_eq!(result.map(|r| r.job_id), Some(JOB.to_owned()));
    reporter.await.unwrap();
    assert_eq!(
        server.wait_for(OTHER_JOB, Duration::from_millis(10)).await,
        None
    );
}

/// Sends a raw HTTP/1.1 request and returns (status, body).
async fn raw(server: &LocalCodePipeline, request: String) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test]
async fn results_endpoint_and_raw_protocol_errors() {
    let server = start();
    let client = client(&server);
    report_failure(&client, JOB, "m").await.unwrap();

    let (status, body) = raw(
        &server,
        "GET /_results HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_owned(),
    )
    .await;
    assert_eq!(status, 200);
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json[0]["jobId"], JOB);
    assert_eq!(json[0]["outcome"], "failure");
    assert_eq!(json[0]["type"], "ConfigurationError");

    // A failure message sent as an object (a common mistake of hand-written
    // reporters) is not a string: SerializationException.
    let body = format!(
        r#"{{"jobId":"{OTHER_JOB}","failureDetails":{{"type":"JobFailed","message":{{"error":"x"}}}}}}"#
    );
    let (status, response) = raw(
        &server,
        format!(
            "POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
             Content-Type: application/x-amz-json-1.1\r\n\
             X-Amz-Target: CodePipeline_20150709.PutJobFailureResult\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
    .await;
    assert_eq!(status, 400);
    let json: serde_json::Value = serde_json::from_str(&response).unwrap();
    assert_eq!(json["__type"], "SerializationException");
    assert!(server.result_for(OTHER_JOB).is_none());
}

#[tokio::test]
async fn shutdown_stops_serving_but_keeps_results() {
    let mut server = start();
    let client = client(&server);
    client
        .put_job_success_result()
        .job_id(JOB)
        .send()
        .await
        .unwrap();
    let addr = server.local_addr();
    server.shutdown().await;
    server.shutdown().await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    assert_eq!(server.results().len(), 1);
}

#[test]
fn start_outside_a_runtime_is_an_error() {
    let err = LocalCodePipeline::start("127.0.0.1:0".parse().unwrap()).unwrap_err();
    assert!(err.to_string().contains("tokio runtime"), "{err}");
}
