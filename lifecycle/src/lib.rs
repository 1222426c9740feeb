//! Bucket lifecycle: the rules (`rules`), their S3 XML (`xml`), when a rule's action falls
//! due (`schedule`: [`DayLength`], the `x-amz-expiration` answer, the plan for one key's
//! versions) and the worker that carries the plans out (`worker`).
//!
//! Seams: the S3 front end parses and validates configurations here and stores them as JSON
//! in the bucket's `Lifecycle` configuration; the worker reads them back and acts only
//! through [`cairn_objects::ObjectService`] — the same deletes, delete markers and aborts as
//! user requests, so versioning, Object Lock (which the metadata state machine enforces) and
//! garbage collection of shards apply unchanged.

pub mod rules;
pub mod schedule;
pub mod worker;
pub mod xml;

pub use rules::{Candidate, Expiration, Filter, LifecycleConfig, NoncurrentExpiration, Rule};
pub use schedule::{expiration_header, plan_key, Action, DayLength, Plan};
pub use worker::{LifecycleJob, LifecycleStats};

/// Errors of lifecycle configurations (mapped to S3 errors by the front end).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LifecycleError {
    #[error("{0}")]
    MalformedXml(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0}")]
    NotImplemented(String),
    /// A stored configuration that does not read (written by another version).
    #[error("{0}")]
    Stored(String),
}
