//! Command-line arguments, one module per subcommand.

pub mod admin;
pub mod client;
pub mod config;
pub mod key;
pub mod node;
pub mod presign;
pub mod scrub;
pub mod server;
