//! `cairn node`: the nodes of a cluster and their membership in the metadata group, through
//! any node's admin API (`GET /admin/cluster`, `POST /admin/nodes`,
//! `POST /admin/nodes/{id}/remove`; changes are carried out by the leader).

use anyhow::bail;

use super::client::Connection;

#[derive(clap::Args, Debug, Clone)]
pub struct NodeArgs {
    #[command(flatten)]
    pub conn: Connection,
    #[command(subcommand)]
    pub action: NodeAction,
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum NodeAction {
    /// Every node: id, roles, metadata membership (voter/learner), leader, reachability.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Add a node to the metadata group (or update its address). The node must be running
    /// with that id and its cluster listener at ADDR. `cairn server --join` does this itself.
    Add {
        id: u64,
        /// The node's cluster address (`host:port`).
        addr: String,
        /// Add it as a learner (a replica that does not vote) instead of a voter.
        #[arg(long)]
        learner: bool,
    },
    /// Remove a node from the metadata group (its data stays where it is).
    Remove { id: u64 },
}

pub fn run(args: NodeArgs) -> anyhow::Result<()> {
    match args.action {
        NodeAction::List { json } => {
            let reply = args.conn.call("GET", "/admin/cluster", "")?;
            if !reply.ok() {
                bail!("listing nodes failed: {}", reply.body.trim());
            }
            let v: serde_json::Value = reply.json()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(());
            }
            print!("{}", list_text(&v));
        }
        NodeAction::Add { id, addr, learner } => {
            let body = serde_json::json!({"id": id, "addr": addr, "voter": !learner}).to_string();
            let reply = args.conn.call("POST", "/admin/nodes", &body)?;
            if !reply.ok() {
                bail!("adding node {id} failed: {}", reply.body.trim());
            }
            println!(
                "node {id} ({addr}) is now a {}",
                if learner { "learner" } else { "voter" }
            );
        }
        NodeAction::Remove { id } => {
            let reply = args
                .conn
                .call("POST", &format!("/admin/nodes/{id}/remove"), "")?;
            if !reply.ok() {
                bail!("removing node {id} failed: {}", reply.body.trim());
            }
            println!("node {id} removed from the metadata group");
        }
    }
    Ok(())
}

/// The table `cairn node list` prints.
pub fn list_text(v: &serde_json::Value) -> String {
    let raft = &v["raft"];
    let mut out = format!(
        "metadata leader: {}  term {}  (asked node {}, {})\n",
        raft["leader"]
            .as_u64()
            .map_or("none".to_string(), |l| format!("node{l}")),
        raft["term"],
        raft["id"],
        raft["state"].as_str().unwrap_or("?"),
    );
    if let Some(nodes) = v["nodes"].as_array() {
        out.push_str(&nodes_table(nodes));
    }
    out.push_str(&ring_line(&v["ring"]));
    out.push('\n');
    out
}

/// The asked gateway's ring in one line (`cairn node list` and `cairn status`): its epoch
/// (equal on every gateway that sees the same membership) and its datanodes.
pub fn ring_line(ring: &serde_json::Value) -> String {
    let ids = |k: &str| -> String {
        let ids: Vec<String> = ring[k]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| x.as_u64())
            .map(|x| format!("dn{x}"))
            .collect();
        if ids.is_empty() {
            "none".into()
        } else {
            ids.join(",")
        }
    };
    format!(
        "ring: epoch {}, {} datanodes ({} placeable), drained: {}, down: {}",
        ring["epoch"].as_u64().map_or("?".into(), |e| e.to_string()),
        ring["datanodes"],
        ring["placeable"],
        ids("drained"),
        ids("down"),
    )
}

/// One line per node: id, roles, metadata membership, leader, reachability, addresses
/// (`cairn node list` and `cairn status`).
pub fn nodes_table(nodes: &[serde_json::Value]) -> String {
    let mut out = format!(
        "{:<8} {:<20} {:<9} {:<7} {:<6} {:<22} {}\n",
        "node", "roles", "metadata", "leader", "state", "cluster address", "s3"
    );
    for n in nodes {
        out.push_str(&format!(
            "{:<8} {:<20} {:<9} {:<7} {:<6} {:<22} {}\n",
            format!("node{}", n["id"]),
            n["roles"].as_str().unwrap_or(""),
            n["metadata"].as_str().unwrap_or("?"),
            if n["leader"].as_bool() == Some(true) {
                "yes"
            } else {
                ""
            },
            if n["reachable"].as_bool() == Some(true) {
                "up"
            } else {
                "down"
            },
            n["cluster_addr"].as_str().unwrap_or("?"),
            n["s3_addr"].as_str().unwrap_or("-"),
        ));
    }
    out
}
