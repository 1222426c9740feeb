//! Command-line arguments, one module per subcommand.

pub mod admin;
pub mod client;
pub mod key;
pub mod scrub;
pub mod server;
