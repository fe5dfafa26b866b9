//! A custom Lambda binary with one extra transform step, `strip-comments`, usable in
//! UserParameters as
//! `{"custom": {"name": "strip-comments", "files": ["*.sh"], "options": {"marker": "#"}}}`.
//! Build it like the main binary: `cargo build --release -p artifact-lambda --example custom_step`.

use std::sync::Arc;

use artifact_core::{CustomStep, StepRegistry};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let mut steps = StepRegistry::new();
    steps.register("strip-comments", |options: &serde_json::Value| {
        let marker = options
            .get("marker")
            .and_then(|m| m.as_str())
            .unwrap_or("#")
            .to_string();
        if marker.is_empty() {
            return Err("`marker` must not be empty".into());
        }
        Ok(Arc::new(move |path: &str, data: Vec<u8>| {
            let text = String::from_utf8(data).map_err(|_| format!("{path} is not UTF-8 text"))?;
            let kept: Vec<&str> = text
                .lines()
                .filter(|l| !l.trim_start().starts_with(marker.as_str()))
                .collect();
            Ok((kept.join("\n") + "\n").into_bytes())
        }) as Arc<dyn CustomStep>)
    });
    artifact_lambda::run(steps).await
}
