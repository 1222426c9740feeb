//! The standalone `cairn-bench` binary: the bench options directly, without a subcommand
//! (so its null-server child is started with no argument prefix).

use clap::Parser;

/// An S3 load generator and null S3 server.
#[derive(Parser)]
#[command(name = "cairn-bench", version)]
struct Cli {
    #[command(flatten)]
    args: cairn_bench::BenchArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    cairn_bench::run_with_self_args(cli.args, &[]).await
}
