//! Command-line arguments, one module per subcommand.

pub mod admin;
pub mod server;
