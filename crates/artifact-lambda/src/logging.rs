//! Log output as Lambda's advanced logging controls configure it.
//!
//! - `AWS_LAMBDA_LOG_FORMAT`: `JSON` (also the default: one JSON object per line,
//!   event fields at the top level, the invocation's `request_id` and `job_id` under
//!   `span`) or `Text`.
//! - `AWS_LAMBDA_LOG_LEVEL` (`TRACE`, `DEBUG`, `INFO`, `WARN`, `ERROR`, `FATAL`)
//!   takes precedence over `RUST_LOG` (any `EnvFilter` directives); the default is
//!   `INFO`.
//!
//! Lines go to stdout, which Lambda sends to CloudWatch Logs.

use tracing_subscriber::EnvFilter;

/// The log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable text.
    Text,
}

impl LogFormat {
    /// From `AWS_LAMBDA_LOG_FORMAT` (case-insensitive); anything but `Text` is JSON.
    pub fn from_env_value(value: Option<&str>) -> LogFormat {
        match value {
            Some(v) if v.trim().eq_ignore_ascii_case("text") => LogFormat::Text,
            _ => LogFormat::Json,
        }
    }
}

/// The filter directives: `AWS_LAMBDA_LOG_LEVEL`, else `RUST_LOG`, else `info`.
/// Lambda's `FATAL` has no tracing level and maps to `error`.
pub fn filter_directives(lambda_level: Option<&str>, rust_log: Option<&str>) -> String {
    let level = lambda_level.map(str::trim).filter(|l| !l.is_empty());
    if let Some(level) = level {
        return match level.to_ascii_lowercase().as_str() {
            "fatal" => "error".to_string(),
            l @ ("trace" | "debug" | "info" | "warn" | "error") => l.to_string(),
            _ => "info".to_string(),
        };
    }
    match rust_log.map(str::trim).filter(|l| !l.is_empty()) {
        Some(directives) => directives.to_string(),
        None => "info".to_string(),
    }
}

/// Installs the global subscriber from the environment (once, at process start).
pub fn init_from_env() {
    let var = |k: &str| std::env::var(k).ok();
    let format = LogFormat::from_env_value(var("AWS_LAMBDA_LOG_FORMAT").as_deref());
    let directives = filter_directives(
        var("AWS_LAMBDA_LOG_LEVEL").as_deref(),
        var("RUST_LOG").as_deref(),
    );
    let filter = EnvFilter::try_new(&directives).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(false)
        .without_time();
    match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .init(),
        LogFormat::Text => builder.init(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_and_level_from_the_lambda_variables() {
        assert_eq!(LogFormat::from_env_value(None), LogFormat::Json);
        assert_eq!(LogFormat::from_env_value(Some("JSON")), LogFormat::Json);
        assert_eq!(LogFormat::from_env_value(Some("Text")), LogFormat::Text);
        assert_eq!(filter_directives(None, None), "info");
        assert_eq!(filter_directives(Some("WARN"), Some("debug")), "warn");
        assert_eq!(filter_directives(Some("FATAL"), None), "error");
        assert_eq!(
            filter_directives(None, Some("artifact_core=debug")),
            "artifact_core=debug"
        );
        assert_eq!(filter_directives(Some(" "), Some("trace")), "trace");
    }
}
