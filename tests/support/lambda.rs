//! The Lambda Runtime API for tests: `cargo lambda watch --only-lambda-apis` (from
//! `scripts/lambda-tools`) serves the runtime API and the invoke endpoint, and the
//! built `bootstrap` runs under it as a separate process, as Lambda runs it.
//!
//! Invariant: every process started here is killed when its handle drops, so a
//! failing test leaves no emulator or function behind.

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::repo_root;

/// The function name `cargo lambda watch --only-lambda-apis` serves.
pub const FUNCTION_NAME: &str = "_";

/// The `bin/` of the Lambda tool venv (installed on first use).
pub fn lambda_tools_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let out = Command::new("bash")
            .arg(repo_root().join("scripts/lambda-tools"))
            .arg("bin")
            .stderr(Stdio::inherit())
            .output()
            .expect("running scripts/lambda-tools bin");
        assert!(out.status.success(), "scripts/lambda-tools bin failed");
        PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
    })
    .clone()
}

/// A free loopback port (released before use; the race is harmless here).
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running runtime-API emulator.
pub struct Emulator {
    child: Child,
    /// Its port (runtime API under `/.rt`, invocations under `/2015-03-31`).
    pub port: u16,
}

impl Emulator {
    /// Starts `cargo lambda watch --only-lambda-apis` on a free port and waits until
    /// it accepts connections.
    pub fn start() -> Emulator {
        let bin = lambda_tools_bin();
        let port = free_port();
        let child = Command::new(bin.join("cargo-lambda"))
            .args(["lambda", "watch", "--only-lambda-apis", "-A", "127.0.0.1"])
            .args(["-P", &port.to_string()])
            .current_dir(repo_root())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting cargo lambda watch");
        let emulator = Emulator { child, port };
        let until = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
            assert!(Instant::now() < until, "cargo lambda watch did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        emulator
    }

    /// `AWS_LAMBDA_RUNTIME_API` as the emulator prints it.
    pub fn runtime_api(&self) -> String {
        format!("http://127.0.0.1:{}/.rt", self.port)
    }

    /// Invokes the function with `payload` through the emulator's invoke endpoint
    /// (as `aws lambda invoke` would); returns the HTTP status and the JSON body.
    pub fn invoke(&self, payload: &Value) -> (u16, Value) {
        let url = format!(
            "http://127.0.0.1:{}/2015-03-31/functions/{FUNCTION_NAME}/invocations",
            self.port
        );
        let out = Command::new("curl")
            .args(["-sS", "-m", "120", "-X", "POST", "-w", "\n%{http_code}"])
            .args([
                "-H",
                "content-type: application/json",
                "--data-binary",
                "@-",
            ])
            .arg(&url)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write;
                c.stdin
                    .take()
                    .unwrap()
                    .write_all(payload.to_string().as_bytes())?;
                c.wait_with_output()
            })
            .expect("curl");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let (body, status) = text.rsplit_once('\n').expect("curl printed a status");
        let body = serde_json::from_str(body).unwrap_or(Value::String(body.to_string()));
        (status.trim().parse().expect("HTTP status"), body)
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A function process under an [`Emulator`], with its stdout and stderr lines.
pub struct Function {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Function {
    /// Starts `binary` with the runtime variables of `emulator` plus `env`.
    pub fn start(binary: &PathBuf, emulator: &Emulator, env: &[(&str, &str)]) -> Function {
        let mut cmd = Command::new(binary);
        cmd.env("AWS_LAMBDA_RUNTIME_API", emulator.runtime_api())
            .env("AWS_LAMBDA_FUNCTION_NAME", FUNCTION_NAME)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("starting the function");
        let lines = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    lines.lock().unwrap().push(line);
                }
            });
        }
        Function { child, lines }
    }

    /// Lines printed so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Waits (up to 10 s) until some line satisfies `f`.
    pub fn wait_for_line(&self, f: impl Fn(&str) -> bool) -> bool {
        let until = Instant::now() + Duration::from_secs(10);
        while Instant::now() < until {
            if self.lines().iter().any(|l| f(l)) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
