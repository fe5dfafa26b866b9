//! A small local endpoint for the CodePipeline job API.
//!
//! [`LocalCodePipeline`] is an HTTP/1.1 server that speaks the real wire protocol of
//! CodePipeline (awsJson1.1: `POST /` with `Content-Type: application/x-amz-json-1.1`
//! and `X-Amz-Target: CodePipeline_20150709.<Operation>`), so the real
//! `aws-sdk-codepipeline` client can be pointed at it with `endpoint_url`, in tests
//! and by the local runner. moto and other local stacks do not implement these
//! operations.
//!
//! Operations:
//! - `PutJobSuccessResult` and `PutJobFailureResult` are validated like CodePipeline
//!   does (see the `api` module for the exact rules and error shapes) and, when
//!   accepted, recorded as a [`RecordedResult`] and answered with HTTP 200 `{}`.
//!   A second result for the same job id is rejected with `InvalidJobStateException`,
//!   as the service does for a job that is no longer in progress.
//! - `AcknowledgeJob` is validated and answers `{"status": "InProgress"}` (or
//!   `Succeeded` / `Failed` once a result was recorded).
//! - Any other target is an `UnknownOperationException`. `GetJobDetails` and
//!   `PollForJobs` are not implemented: a Lambda worker gets its job in the event.
//!
//! Errors use the AWS shape: HTTP 400 (or the status of an injected [`Fault`]), body
//! `{"__type": "<Code>", "message": "…"}` and an `x-amzn-ErrorType` header. Every
//! response carries an `x-amzn-RequestId`.
//!
//! [`next_job_event`] turns a continuation result into the next job's event, as the
//! service does (a new job id, the token in `data.continuationToken`).
//!
//! `GET /_results` returns the recorded results as a JSON array (see
//! [`RecordedResult`] for the shape), for debugging and external scripts.
//!
//! Limits: requests are not authenticated (any SigV4 signature is accepted), job ids
//! are not looked up (any well-formed id is accepted, `JobNotFoundException` is
//! never returned), state lives in memory, and request bodies over 4 MiB are refused
//! with HTTP 413.
//!
//! ```no_run
//! # async fn example() -> std::io::Result<()> {
//! use std::time::Duration;
//! use codepipeline_local::{Fault, LocalCodePipeline};
//!
//! let server = LocalCodePipeline::start("127.0.0.1:0".parse().unwrap())?;
//! server.fail_next(1, Fault::throttling()); // the SDK retries it
//! // ... build an aws_sdk_codepipeline::Client with endpoint_url(server.endpoint_url())
//! // and run the worker ...
//! let result = server
//!     .wait_for("0123abcd-4567-89ef-0123-456789abcdef", Duration::from_secs(5))
//!     .await;
//! assert!(result.is_some_and(|r| r.is_success()));
//! # Ok(())
//! # }
//! ```

mod api;
mod continuation;
mod model;

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

pub use api::OUTPUT_VARIABLES_MAX_BYTES;
pub use continuation::{new_job_id, next_job_event};
pub use model::{
    CurrentRevision, ExecutionDetails, Fault, Outcome, RecordedCall, RecordedResult, FAILURE_TYPES,
};

/// The largest request body accepted.
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

const AWS_JSON: &str = "application/x-amz-json-1.1";

/// A running local CodePipeline job-API endpoint.
///
/// The server runs as a task on the tokio runtime it was started on and stops when
/// this value is dropped or [`shutdown`](Self::shutdown) is called. Recorded results
/// stay readable after a shutdown.
#[derive(Debug)]
pub struct LocalCodePipeline {
    addr: SocketAddr,
    state: Arc<State>,
    task: Option<JoinHandle<()>>,
}

#[derive(Debug)]
struct State {
    inner: Mutex<Inner>,
    /// Bumped whenever a result is recorded, to wake [`LocalCodePipeline::wait_for`].
    recorded: watch::Sender<u64>,
    request_ids: AtomicU64,
}

#[derive(Debug, Default)]
struct Inner {
    results: Vec<RecordedResult>,
    calls: Vec<RecordedCall>,
    faults: VecDeque<Fault>,
}

impl State {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave `Inner` half-updated in a way
        // that matters to a test double; keep serving.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl LocalCodePipeline {
    /// Binds `addr` (port 0 picks a free port) and starts serving on the current
    /// tokio runtime.
    ///
    /// Fails when called outside a tokio runtime or when the address cannot be bound.
    pub fn start(addr: SocketAddr) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            std::io::Error::other("LocalCodePipeline::start must be called within a tokio runtime")
        })?;
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let listener = {
            let _guard = runtime.enter();
            TcpListener::from_std(listener)?
        };
        let state = Arc::new(State {
            inner: Mutex::new(Inner::default()),
            recorded: watch::Sender::new(0),
            request_ids: AtomicU64::new(0),
        });
        let task = runtime.spawn(accept_loop(listener, Arc::clone(&state)));
        tracing::debug!(%addr, "local CodePipeline endpoint started");
        Ok(Self {
            addr,
            state,
            task: Some(task),
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL to give the SDK as `endpoint_url`, e.g. `http://127.0.0.1:41234`.
    ///
    /// An unspecified bind address (`0.0.0.0`, `::`) is replaced by loopback.
    pub fn endpoint_url(&self) -> String {
        let mut addr = self.addr;
        match addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => addr.set_ip(Ipv4Addr::LOCALHOST.into()),
            IpAddr::V6(ip) if ip.is_unspecified() => addr.set_ip(Ipv6Addr::LOCALHOST.into()),
            _ => {}
        }
        format!("http://{addr}")
    }

    /// Every accepted result, in the order they were recorded.
    pub fn results(&self) -> Vec<RecordedResult> {
        self.state.lock().results.clone()
    }

    /// The result recorded for `job_id`, if any (there is at most one).
    pub fn result_for(&self, job_id: &str) -> Option<RecordedResult> {
        self.state
            .lock()
            .results
            .iter()
            .find(|r| r.job_id == job_id)
            .cloned()
    }

    /// Waits until a result for `job_id` is recorded, for at most `timeout`.
    ///
    /// Returns `None` on timeout.
    pub async fn wait_for(&self, job_id: &str, timeout: Duration) -> Option<RecordedResult> {
        let deadline = tokio::time::Instant::now() + timeout;
        // Subscribe before looking, so that a result recorded in between wakes us.
        let mut recorded = self.state.recorded.subscribe();
        loop {
            if let Some(result) = self.result_for(job_id) {
                return Some(result);
            }
            match tokio::time::timeout_at(deadline, recorded.changed()).await {
                Ok(Ok(())) => {}
                // The sender lives in `self.state`, so it cannot be dropped while we
                // hold `self`; treat it like a timeout anyway.
                Ok(Err(_)) | Err(_) => return self.result_for(job_id),
            }
        }
    }

    /// Every job-API request answered so far (accepted, rejected or faulted), in
    /// arrival order. Use it to count the SDK's attempts.
    pub fn calls(&self) -> Vec<RecordedCall> {
        self.state.lock().calls.clone()
    }

    /// Makes the next `n` job-API requests (any operation) fail with `fault`.
    ///
    /// Faults queue up behind any already pending ones. `GET /_results` is not
    /// affected.
    pub fn fail_next(&self, n: usize, fault: Fault) {
        self.state
            .lock()
            .faults
            .extend(std::iter::repeat_n(fault, n));
    }

    /// Stops serving: the listener is closed and open connections are dropped.
    /// Idempotent; recorded results stay readable.
    pub async fn shutdown(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            // The task only ends by being aborted; the error says so.
            let _ = task.await;
            tracing::debug!(addr = %self.addr, "local CodePipeline endpoint stopped");
        }
    }
}

impl Drop for LocalCodePipeline {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Accepts connections until aborted; aborting drops the `JoinSet`, which aborts
/// every connection task.
async fn accept_loop(listener: TcpListener, state: Arc<State>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let state = Arc::clone(&state);
                    connections.spawn(async move {
                        let service = service_fn(move |req| serve(Arc::clone(&state), req));
                        if let Err(error) = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await
                        {
                            tracing::debug!(%peer, %error, "connection ended with an error");
                        }
                    });
                }
                Err(error) => {
                    // For example EMFILE: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn serve(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let request_id = {
        let n = state.request_ids.fetch_add(1, Ordering::Relaxed) + 1;
        format!("00000000-0000-4000-8000-{n:012x}")
    };
    let (status, content_type, error_type, body) = match (req.method(), req.uri().path()) {
        (&Method::GET, "/_results") => {
            let body =
                serde_json::to_string(&state.lock().results).expect("recorded results serialize");
            (200, "application/json", None, body)
        }
        (&Method::POST, _) => {
            let reply = job_api(&state, req).await;
            (reply.status, AWS_JSON, reply.error_type, reply.body)
        }
        _ => (404, "text/plain", None, "not found\n".to_owned()),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(id) = HeaderValue::from_str(&request_id) {
        headers.insert("x-amzn-requestid", id);
    }
    if let Some(Ok(error_type)) = error_type.as_deref().map(HeaderValue::from_str) {
        headers.insert("x-amzn-errortype", error_type);
    }
    Ok(response)
}

/// Handles one job-API request: injected faults first, then the operation.
async fn job_api(state: &State, req: Request<Incoming>) -> api::Reply {
    let target = req
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let operation = api::operation_name(target.as_deref());
    let body = match Limited::new(req.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(error) => {
            let reply = if error.is::<http_body_util::LengthLimitError>() {
                api::Reply::error(
                    413,
                    "SerializationException",
                    &format!("Request body larger than {MAX_BODY_BYTES} bytes"),
                )
            } else {
                api::Reply::error(400, "SerializationException", &error.to_string())
            };
            record_call(state, operation, None, &reply);
            return reply;
        }
    };
    let job_id = api::job_id_of(&body);

    let mut inner = state.lock();
    let fault = inner.faults.pop_front();
    let reply = match fault {
        Some(fault) if !fault.after_processing => {
            api::Reply::error(fault.status, &fault.error_type, &fault.message)
        }
        fault => {
            let reply = api::handle(target.as_deref(), &body, &mut inner.results);
            if reply.recorded {
                state.recorded.send_modify(|n| *n += 1);
            }
            match fault {
                Some(fault) => api::Reply::error(fault.status, &fault.error_type, &fault.message),
                None => reply,
            }
        }
    };
    tracing::debug!(
        operation,
        job_id = job_id.as_deref().unwrap_or(""),
        status = reply.status,
        error_type = reply.error_type.as_deref().unwrap_or(""),
        "job API call"
    );
    inner.calls.push(RecordedCall {
        operation,
        job_id,
        status: reply.status,
        error_type: reply.error_type.clone(),
    });
    reply
}

fn record_call(state: &State, operation: String, job_id: Option<String>, reply: &api::Reply) {
    state.lock().calls.push(RecordedCall {
        operation,
        job_id,
        status: reply.status,
        error_type: reply.error_type.clone(),
    });
}
