//! Command-line arguments, one module per subcommand.

pub mod admin;
pub mod key;
pub mod server;
