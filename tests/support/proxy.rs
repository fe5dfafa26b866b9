//! A fault-injecting HTTP proxy to put in front of the real S3 server (SeaweedFS).
//!
//! Requests are forwarded unchanged (the `Host` header included, so SigV4 signatures
//! still verify upstream). A [`Rule`] matches requests by method, a query-string
//! fragment and whether a `Range` header is present, and applies its [`Action`] to
//! the next `times` matching requests: cut the response body after some bytes (a
//! connection reset mid-body), stall it, answer with an S3 error status without
//! forwarding, or damage the request body on its way. Requests are recorded
//! ([`FaultProxy::requests`]) with their `x-amz-*` headers. Everything stays on loopback; the proxy stops when dropped.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

/// What to do to a matching request.
#[derive(Debug, Clone)]
pub enum Action {
    /// Forward, then send only the first `after` bytes of the body and break the
    /// connection.
    CutBody {
        /// Bytes delivered before the cut.
        after: usize,
    },
    /// Forward, then send `after` bytes and go silent for `pause` before the rest.
    Stall {
        /// Bytes delivered before the stall.
        after: usize,
        /// How long nothing is sent.
        pause: Duration,
    },
    /// Forward the request (the server acts on it), then answer with this status
    /// and S3 error code instead of the server's response: a response lost after
    /// the server acted.
    LoseResponse {
        /// HTTP status.
        status: u16,
        /// S3 error code, e.g. `InternalError`.
        code: &'static str,
    },
    /// Flip one byte in the middle of the request body, then forward it: data
    /// damaged on the way to the server, which it must refuse.
    CorruptRequestBody,
    /// Answer with this status and S3 error code; the server never sees the request.
    Status {
        /// HTTP status.
        status: u16,
        /// S3 error code, e.g. `SlowDown`.
        code: &'static str,
    },
}

/// Which requests a fault applies to, and how many times. Rules matching the same
/// requests apply in the order they were added, each for its `times`.
#[derive(Debug, Clone)]
pub struct Rule {
    /// HTTP method, e.g. `GET`.
    pub method: &'static str,
    /// A fragment the query string must contain (e.g. `partNumber=`), or empty.
    pub query_has: &'static str,
    /// Only requests with (true) or without (false) a `Range` header; `None`: both.
    pub ranged: Option<bool>,
    /// Body faults apply only to responses with more bytes than this.
    pub min_body: usize,
    /// Matching requests still to fault.
    pub times: usize,
    /// The fault.
    pub action: Action,
}

/// A request the proxy saw: method, query string, and its `x-amz-*` (but the session
/// token), `content-encoding` and `content-length` headers (lower-case names).
#[derive(Debug, Clone)]
pub struct Seen {
    /// HTTP method.
    pub method: String,
    /// The query string.
    pub query: String,
    /// Selected headers.
    pub headers: Vec<(String, String)>,
}

impl Seen {
    /// The value of header `name` (lower case), if it was sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Default)]
struct State {
    rules: Vec<Rule>,
    faults_applied: usize,
    seen: Vec<Seen>,
}

/// A running proxy.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

type ProxyBody = BoxBody<Bytes, std::io::Error>;

impl FaultProxy {
    /// Starts a proxy on a free loopback port forwarding to `upstream`
    /// (`http://127.0.0.1:PORT`).
    pub async fn start(upstream: &str) -> FaultProxy {
        let upstream: SocketAddr = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .expect("upstream is http://IP:PORT");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let st = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let st = st.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        let st = st.clone();
                        async move { Ok::<_, Infallible>(handle(req, upstream, st).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        FaultProxy { addr, state, task }
    }

    /// The endpoint URL to give clients.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Adds a rule (rules are tried in the order added).
    pub fn add(&self, rule: Rule) {
        self.state.lock().unwrap().rules.push(rule);
    }

    /// Faults applied so far.
    pub fn faults_applied(&self) -> usize {
        self.state.lock().unwrap().faults_applied
    }

    /// Every request seen so far, in arrival order.
    pub fn requests(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn take_rule(
    state: &Mutex<State>,
    method: &str,
    query: &str,
    ranged: bool,
    body_len: Option<usize>,
) -> Option<Action> {
    let mut st = state.lock().unwrap();
    // Only the first live rule for a request applies (rules for the same requests
    // run in sequence), at its phase: before forwarding for `Status`, after it for
    // the others.
    let i = st.rules.iter().position(|r| {
        r.times > 0
            && r.method == method
            && query.contains(r.query_has)
            && r.ranged.is_none_or(|want| want == ranged)
    })?;
    let r = &st.rules[i];
    let applies = match (&r.action, body_len) {
        (Action::Status { .. } | Action::CorruptRequestBody, None) => true,
        (Action::Status { .. } | Action::CorruptRequestBody, Some(_)) => false,
        (_, None) => false,
        (_, Some(n)) => n > r.min_body,
    };
    if !applies {
        return None;
    }
    st.rules[i].times -= 1;
    st.faults_applied += 1;
    Some(st.rules[i].action.clone())
}

async fn handle(
    req: Request<Incoming>,
    upstream: SocketAddr,
    state: Arc<Mutex<State>>,
) -> Response<ProxyBody> {
    let method = req.method().as_str().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let ranged = req.headers().contains_key(hyper::header::RANGE);
    let headers = req
        .headers()
        .iter()
        .filter(|(n, _)| {
            (n.as_str().starts_with("x-amz-") && n.as_str() != "x-amz-security-token")
                || n.as_str() == "content-encoding"
                || n.as_str() == "content-length"
        })
        .map(|(n, v)| (n.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    state.lock().unwrap().seen.push(Seen {
        method: method.clone(),
        query: query.clone(),
        headers,
    });
    let before = take_rule(&state, &method, &query, ranged, None);
    if let Some(Action::Status { status, code }) = before {
        return s3_error(status, code);
    }
    let (parts, body) = req.into_parts();
    let mut body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    if matches!(before, Some(Action::CorruptRequestBody)) && !body.is_empty() {
        let mut damaged = body.to_vec();
        let mid = damaged.len() / 2;
        damaged[mid] ^= 0x01;
        body = Bytes::from(damaged);
    }
    let Ok(resp) = forward(upstream, Request::from_parts(parts, Full::new(body))).await else {
        return s3_error(502, "BadGateway");
    };
    let (parts, body) = resp.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let action = take_rule(&state, &method, &query, ranged, Some(body.len()));
    let out = match action {
        Some(Action::CutBody { after }) => {
            let head = body.slice(..after);
            let frames = futures::stream::iter(vec![
                Ok(Frame::data(head)),
                Err(std::io::Error::other("connection reset by the fault proxy")),
            ]);
            BoxBody::new(StreamBody::new(frames))
        }
        Some(Action::LoseResponse { status, code }) => return s3_error(status, code),
        Some(Action::Stall { after, pause }) => {
            let (head, rest) = (body.slice(..after), body.slice(after..));
            let frames = futures::stream::unfold(0u8, move |step| {
                let (head, rest) = (head.clone(), rest.clone());
                async move {
                    match step {
                        0 => Some((Ok(Frame::data(head)), 1)),
                        1 => {
                            tokio::time::sleep(pause).await;
                            Some((Ok(Frame::data(rest)), 2))
                        }
                        _ => None,
                    }
                }
            });
            BoxBody::new(StreamBody::new(frames))
        }
        _ => Full::new(body).map_err(|e: Infallible| match e {}).boxed(),
    };
    Response::from_parts(parts, out)
}

async fn forward(
    upstream: SocketAddr,
    req: Request<Full<Bytes>>,
) -> Result<Response<Incoming>, Box<dyn std::error::Error + Send + Sync>> {
    let stream = TcpStream::connect(upstream).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    Ok(sender.send_request(req).await?)
}

fn s3_error(status: u16, code: &str) -> Response<ProxyBody> {
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code>\
         <Message>injected by the fault proxy</Message></Error>"
    );
    Response::builder()
        .status(status)
        .header("content-type", "application/xml")
        .body(
            Full::new(Bytes::from(xml))
                .map_err(|e: Infallible| match e {})
                .boxed(),
        )
        .unwrap()
}
