//! The `cairn` binary: parses the command line and runs a subcommand. Everything it runs
//! lives in the library crates; this crate only wires concrete types together.

use clap::{Parser, Subcommand};

/// mimalloc instead of glibc's allocator (see docs/architecture.md, "Memory per request").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod admin;
mod cli;
mod cluster;
mod credentials;
mod datanodes;
mod in_flight;
mod listeners;
mod logging;
mod loopback_tls;
mod pki;
mod retry;
mod server;
mod sys_records;

#[derive(Parser)]
#[command(
    name = "cairn",
    version,
    args_override_self = true,
    about = "Cairn: an S3-compatible, erasure-coded, self-healing object store"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a Cairn server (by default: every role in one process, data under ./cairn-data).
    Server(Box<cli::server::ServerArgs>),
    /// Operator actions on a running server (datanodes), through its admin API.
    Admin(cli::admin::AdminArgs),
    /// Compare what datanodes hold with what metadata says (and repair with --repair).
    Scrub(cli::scrub::ScrubArgs),
    /// Find and repair damage (missing, corrupt, misplaced, orphaned shards).
    Repair(cli::scrub::RepairArgs),
    /// Metadata, datanodes, last scrubs, repair backlog and rebalancing.
    Status(cli::scrub::StatusArgs),
    /// Access keys of a running server: create one, list them (through its admin API).
    Key(cli::key::KeyArgs),
    /// The nodes of a cluster: list them, add or remove metadata members.
    Node(cli::node::NodeArgs),
    /// Sign a browser upload form (POST Object) with an access key: prints the URL and
    /// fields as JSON, or an HTML page with the form (`--html`). Nothing is sent.
    PresignPost(cli::presign::PresignPostArgs),
    /// Load-test any S3 endpoint (PUT/GET/mixed/LIST/DELETE): throughput, ops/s, latency
    /// percentiles, CPU per GiB; `--baseline-null` measures this client's ceiling in the
    /// same run, `--serve-null` serves that ceiling.
    Bench(Box<cairn_bench::BenchArgs>),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse_from(cli::config::expand_args(std::env::args_os().collect())?);
    logging::init();
    match cli.command {
        Command::Server(args) => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            rt.block_on(server::run(*args))
        }
        Command::Admin(args) => cli::admin::run(args),
        Command::Scrub(args) => cli::scrub::run_scrub(args),
        Command::Repair(args) => cli::scrub::run_repair(args),
        Command::Status(args) => cli::scrub::run_status(args),
        Command::Key(args) => cli::key::run(args),
        Command::Node(args) => cli::node::run(args),
        Command::PresignPost(args) => cli::presign::run(args),
        Command::Bench(args) => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            rt.block_on(cairn_bench::run(*args))
        }
    }
}
