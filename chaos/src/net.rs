//! The network of the cluster under test: one network namespace per node, joined by a
//! bridge in the campaign's own namespace, so that faults apply between nodes and not only
//! to processes. Node `i` is `10.77.0.{i+1}`; the campaign's clients reach every node
//! from `10.77.0.254` and are never cut off.
//!
//! Faults are iptables rules and tc queueing disciplines inside a node's namespace
//! (partitions and one-way loss drop packets from chosen peers; random loss uses the
//! `statistic` match; a slow link is a token bucket on the node's interface). The kernels
//! this runs on may lack `netem`, so delay comes from the token bucket and there is no
//! reordering.

use std::process::Command;

use anyhow::{bail, Context};

const BRIDGE: &str = "cchaos-br";
const CLIENT_IP: &str = "10.77.0.254";

pub struct Net {
    nodes: usize,
}

fn run(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .with_context(|| format!("running {}", args.join(" ")))?;
    if !out.status.success() {
        bail!(
            "{} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Runs a command and ignores its failure (for teardown of what may not exist).
fn try_run(args: &[&str]) {
    let _ = Command::new(args[0]).args(&args[1..]).output();
}

impl Net {
    pub fn ns(i: usize) -> String {
        format!("cchaos-n{}", i + 1)
    }

    pub fn ip(i: usize) -> String {
        format!("10.77.0.{}", i + 1)
    }

    /// Creates the bridge and `nodes` namespaces (after removing any a crashed campaign
    /// left behind).
    pub fn create(nodes: usize) -> anyhow::Result<Net> {
        Self::teardown(nodes + 4);
        run(&["ip", "link", "add", BRIDGE, "type", "bridge"])?;
        run(&[
            "ip",
            "addr",
            "add",
            &format!("{CLIENT_IP}/24"),
            "dev",
            BRIDGE,
        ])?;
        run(&["ip", "link", "set", BRIDGE, "up"])?;
        // The host may forward bridged packets through iptables with a DROP policy (Docker
        // sets one); let the nodes talk.
        run(&[
            "iptables", "-I", "FORWARD", "-i", BRIDGE, "-o", BRIDGE, "-j", "ACCEPT",
        ])?;
        let net = Net { nodes };
        for i in 0..nodes {
            net.add_ns(i)?;
        }
        Ok(net)
    }

    fn add_ns(&self, i: usize) -> anyhow::Result<()> {
        let ns = Self::ns(i);
        let host = format!("cchaos-v{}", i + 1);
        run(&["ip", "netns", "add", &ns])?;
        run(&[
            "ip", "link", "add", &host, "type", "veth", "peer", "name", "eth0", "netns", &ns,
        ])?;
        run(&["ip", "link", "set", &host, "master", BRIDGE, "up"])?;
        run(&[
            "ip",
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{}/24", Self::ip(i)),
            "dev",
            "eth0",
        ])?;
        run(&["ip", "-n", &ns, "link", "set", "eth0", "up"])?;
        run(&["ip", "-n", &ns, "link", "set", "lo", "up"])?;
        Ok(())
    }

    /// Removes what [`Net::create`] made (idempotent).
    pub fn teardown(nodes: usize) {
        for i in 0..nodes {
            try_run(&["ip", "netns", "del", &Self::ns(i)]);
            // Deleting the namespace deletes the pair, unless the namespace went first.
            try_run(&["ip", "link", "del", &format!("cchaos-v{}", i + 1)]);
        }
        while Command::new("iptables")
            .args(["-D", "FORWARD", "-i", BRIDGE, "-o", BRIDGE, "-j", "ACCEPT"])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
        {}
        try_run(&["ip", "link", "del", BRIDGE]);
    }

    fn iptables(&self, node: usize, rule: &[&str]) -> anyhow::Result<()> {
        let ns = Self::ns(node);
        let mut args = vec!["ip", "netns", "exec", &ns, "iptables"];
        args.extend_from_slice(rule);
        run(&args)
    }

    /// Packets from `from` no longer reach `to` (the other direction still flows).
    pub fn drop_from(&self, from: usize, to: usize) -> anyhow::Result<()> {
        self.iptables(to, &["-A", "INPUT", "-s", &Self::ip(from), "-j", "DROP"])
    }

    /// Cuts the nodes into `groups`: nodes of different groups cannot talk at all; nodes
    /// in no group keep talking to everyone they did.
    pub fn partition(&self, groups: &[Vec<usize>]) -> anyhow::Result<()> {
        for (g, a) in groups.iter().enumerate() {
            for (h, b) in groups.iter().enumerate() {
                if g == h {
                    continue;
                }
                for &x in a {
                    for &y in b {
                        self.drop_from(y, x)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// `node` loses `percent` of the packets other nodes send it.
    pub fn lossy(&self, node: usize, percent: u32) -> anyhow::Result<()> {
        let p = format!("{:.2}", f64::from(percent) / 100.0);
        for other in (0..self.nodes).filter(|o| *o != node) {
            self.iptables(
                node,
                &[
                    "-A",
                    "INPUT",
                    "-s",
                    &Self::ip(other),
                    "-m",
                    "statistic",
                    "--mode",
                    "random",
                    "--probability",
                    &p,
                    "-j",
                    "DROP",
                ],
            )?;
        }
        Ok(())
    }

    /// `node`'s outgoing link runs at `kbit` kbit/s with a deep queue (latency grows with
    /// its load).
    pub fn slow(&self, node: usize, kbit: u32) -> anyhow::Result<()> {
        let ns = Self::ns(node);
        run(&[
            "ip",
            "netns",
            "exec",
            &ns,
            "tc",
            "qdisc",
            "add",
            "dev",
            "eth0",
            "root",
            "tbf",
            "rate",
            &format!("{kbit}kbit"),
            "burst",
            "64kbit",
            "latency",
            "500ms",
        ])
    }

    /// Every rule and queue removed: the network is whole again.
    pub fn heal(&self) -> anyhow::Result<()> {
        for i in 0..self.nodes {
            self.iptables(i, &["-F", "INPUT"])?;
            let ns = Self::ns(i);
            try_run(&[
                "ip", "netns", "exec", &ns, "tc", "qdisc", "del", "dev", "eth0", "root",
            ]);
        }
        Ok(())
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        Self::teardown(self.nodes);
    }
}
