//! End-to-end tests: real `cairn server` processes driven by real S3 clients.
//! One test binary with modules, to save link time.

mod common;

mod basic;
mod crash;
mod ec;
mod errors;
mod listing;
mod memory;
mod multipart;
mod scripted;
mod streaming;
