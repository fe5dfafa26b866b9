//! Steps written in Rust by library users and registered by name, so that
//! `{"custom": {"name": "minify-json", "files": ["**/*.json"], "options": {...}}}` in
//! `UserParameters` runs them. A custom step declares the files it touches through
//! `files`; every other entry stays a raw copy.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// A content transformation of one entry. Runs on the transform pool, in parallel
/// with other entries: it must not depend on other entries.
pub trait CustomStep: Send + Sync + 'static {
    /// Returns the new content of `path`, or a message explaining why it cannot
    /// (the job then fails with a ConfigurationError naming the entry).
    fn apply(&self, path: &str, data: Vec<u8>) -> Result<Vec<u8>, String>;
}

/// Builds a step from its `options`; an `Err` message becomes a ConfigurationError at
/// `steps[i].custom.options`.
pub type StepFactory =
    dyn Fn(&serde_json::Value) -> Result<Arc<dyn CustomStep>, String> + Send + Sync;

/// Custom steps by name.
#[derive(Clone, Default)]
pub struct StepRegistry {
    factories: BTreeMap<String, Arc<StepFactory>>,
}

impl fmt::Debug for StepRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.factories.keys()).finish()
    }
}

impl StepRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `factory` under `name` (replacing an earlier one).
    pub fn register<F>(&mut self, name: &str, factory: F) -> &mut Self
    where
        F: Fn(&serde_json::Value) -> Result<Arc<dyn CustomStep>, String> + Send + Sync + 'static,
    {
        self.factories.insert(name.to_string(), Arc::new(factory));
        self
    }

    /// Registered names.
    pub fn names(&self) -> Vec<&str> {
        self.factories.keys().map(String::as_str).collect()
    }

    pub(crate) fn build(
        &self,
        name: &str,
        options: &serde_json::Value,
    ) -> Option<Result<Arc<dyn CustomStep>, String>> {
        self.factories.get(name).map(|f| f(options))
    }
}

/// Any `Fn(&str, Vec<u8>) -> Result<Vec<u8>, String>` is a step.
impl<F> CustomStep for F
where
    F: Fn(&str, Vec<u8>) -> Result<Vec<u8>, String> + Send + Sync + 'static,
{
    fn apply(&self, path: &str, data: Vec<u8>) -> Result<Vec<u8>, String> {
        self(path, data)
    }
}
