//! Runs CodePipeline Lambda-invoke jobs that transform zip artifacts.
//!
//! Data flows one way: event ([`event`]) → plan (`artifact_engine::plan`) → source
//! ([`source`], ranged reads) → entry processing on rayon ([`pipeline`], [`bridge`]) →
//! zip writer (`artifact_engine::zip`) → sink ([`sink`], multipart upload) → report
//! ([`report`]). [`job::Worker`] ties it together; binaries only build clients and
//! call [`job::Worker::handle`].

pub mod alloc;
pub mod bridge;
pub mod clients;
pub mod config;
pub mod continuation;
pub mod error;
pub mod event;
pub mod job;
pub mod kms;
pub mod pipeline;
pub mod report;
pub mod sink;
pub mod source;
pub mod stats;
pub mod store;

pub use artifact_engine::plan::{CustomStep, StepRegistry};
pub use config::Settings;
pub use error::{FailureType, JobError};
pub use event::{Event, Job};
pub use job::{HandleError, Handled, JobSuccess, Worker};
