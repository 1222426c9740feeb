//! End-to-end tests: real `cairn server` processes driven by real S3 clients.
//! One test binary with modules, to save link time.

mod common;

mod acl;
mod acl_objects;
mod admin;
mod authz_fuzz;
mod authz_matrix;
mod basic;
mod bench;
mod bucket_config;
mod cluster;
mod cluster_tls;
mod compat;
mod conditional_put;
mod console;
mod copy;
mod crash;
mod degraded;
mod docker;
mod ec;
mod errors;
mod hostile;
mod hostile_bodies;
mod indeterminate;
mod inflight_budget;
mod keys;
mod lifecycle;
mod listing;
mod memory;
mod multipart;
mod multipart_checksums;
mod multipart_durability;
mod object_lock;
mod orphans;
mod policies;
mod post_object;
mod quotas;
mod rate_limits;
mod scripted;
mod scrub;
mod streaming;
mod tagging;
mod versioning;
mod versioning_ops;
mod workers;
