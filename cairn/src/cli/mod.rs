//! Command-line arguments, one module per subcommand.

pub mod server;
