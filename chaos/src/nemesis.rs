//! The nemesis: faults chosen at random from a seed, each with a start and an end, applied
//! to the cluster while the workload runs.
//!
//! The schedule (gaps, durations, kinds and every random choice) is a function of the seed
//! alone, so re-running with a run's seed replays its faults; choices that depend on the
//! cluster's state at the time ("the leader") are resolved then and written to the log.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::checks::MinorityWindow;
use crate::cluster::{Cluster, VOTERS};
use crate::net::Net;
use crate::workload::Workload;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// Network partitions: majority/minority, bridge, ring, one-way.
    Partition,
    /// A partition that isolates the metadata leader.
    IsolateLeader,
    /// SIGKILL of one or two nodes, restarted at the end.
    Kill,
    /// SIGSTOP of the leader or another node, SIGCONT at the end.
    Pause,
    /// A node's wall clock set minutes to hours off, or jumping.
    Clock,
    /// Random packet loss into a node.
    Loss,
    /// A slow link out of a node.
    Slow,
    /// A metadata voter removed and added back; a datanode drained and undrained.
    Membership,
    /// Disk faults through the fault seam: EIO on read, flipped bits on read, ENOSPC,
    /// EIO on fsync of a datanode's segments or of the metadata WAL (the node restarts
    /// when the fault ends).
    Disk,
}

impl FaultKind {
    pub const ALL: [FaultKind; 9] = [
        FaultKind::Partition,
        FaultKind::IsolateLeader,
        FaultKind::Kill,
        FaultKind::Pause,
        FaultKind::Clock,
        FaultKind::Loss,
        FaultKind::Slow,
        FaultKind::Membership,
        FaultKind::Disk,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Partition => "partition",
            FaultKind::IsolateLeader => "isolate-leader",
            FaultKind::Kill => "kill",
            FaultKind::Pause => "pause",
            FaultKind::Clock => "clock",
            FaultKind::Loss => "loss",
            FaultKind::Slow => "slow",
            FaultKind::Membership => "membership",
            FaultKind::Disk => "disk",
        }
    }
}

/// One step of the schedule: a quiet gap, then faults applied together and held.
#[derive(Debug, Clone, Serialize)]
pub struct Planned {
    pub gap_ms: u64,
    pub hold_ms: u64,
    /// Each fault with the random number its choices are made from.
    pub faults: Vec<(FaultKind, u64)>,
}

/// The schedule for a run of `secs` seconds with these kinds of fault.
pub fn schedule(seed: u64, kinds: &[FaultKind], secs: u64) -> Vec<Planned> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = Vec::new();
    let mut t = 0u64;
    while t < secs * 1000 {
        let gap_ms = rng.gen_range(2_000..5_000);
        let hold_ms = rng.gen_range(5_000..12_000);
        let count = if rng.gen_bool(0.25) { 2 } else { 1 };
        let mut faults: Vec<(FaultKind, u64)> = Vec::new();
        for _ in 0..count {
            let k = *kinds.choose(&mut rng).expect("at least one fault kind");
            if !faults.iter().any(|(f, _)| *f == k) {
                faults.push((k, rng.gen()));
            }
        }
        t += gap_ms + hold_ms;
        out.push(Planned {
            gap_ms,
            hold_ms,
            faults,
        });
    }
    out
}

/// One applied fault, as the log and the figures see it.
#[derive(Debug, Clone, Serialize)]
pub struct Applied {
    pub kind: FaultKind,
    pub detail: String,
    /// µs since the run began.
    pub from: u64,
    pub to: u64,
    /// The leader this fault cut off or stopped (for the failover figures).
    pub leader: Option<usize>,
    #[serde(skip)]
    minority: Vec<usize>,
    #[serde(skip)]
    undo: Vec<Undo>,
}

#[derive(Debug, Clone)]
enum Undo {
    Network,
    Restart(usize),
    Resume(usize),
    Clock(usize),
    AddVoter(usize),
    Undrain(u64),
    /// Remove a `FAULTS` file.
    Clear(std::path::PathBuf),
    /// Kill and start a node again (after a fault that makes it stop writing for good).
    Bounce(usize),
}

pub struct Nemesis {
    pub cluster: Arc<Mutex<Cluster>>,
    pub workload: Arc<Workload>,
    pub log: Vec<Applied>,
}

impl Nemesis {
    fn now(&self) -> u64 {
        self.workload.now()
    }

    /// Runs the schedule (blocking), then ends every fault.
    pub fn run(&mut self, plan: &[Planned], until: Instant) {
        for step in plan {
            std::thread::sleep(Duration::from_millis(step.gap_ms));
            if Instant::now() >= until {
                break;
            }
            let mut now_applied: Vec<Applied> = Vec::new();
            for &(kind, pick) in &step.faults {
                match self.apply(kind, pick) {
                    Ok(a) => now_applied.push(a),
                    Err(e) => eprintln!("chaos: applying {} failed: {e:#}", kind.name()),
                }
            }
            std::thread::sleep(Duration::from_millis(step.hold_ms));
            // Faults end when healing begins: a minority window must not include the time
            // the rules are being removed node by node (one network undo removes all).
            let end = self.now();
            for mut a in now_applied {
                a.to = end;
                self.undo(&a.undo);
                eprintln!(
                    "chaos:   {:>14} {:>7.1}s..{:>6.1}s {}",
                    a.kind.name(),
                    a.from as f64 / 1e6,
                    a.to as f64 / 1e6,
                    a.detail,
                );
                self.log.push(a);
            }
        }
    }

    /// The windows in which nodes could not reach a majority of the voters.
    pub fn minority_windows(&self) -> Vec<MinorityWindow> {
        self.log
            .iter()
            .filter(|a| !a.minority.is_empty())
            .map(|a| MinorityWindow {
                from: a.from,
                to: a.to,
                nodes: a.minority.clone(),
            })
            .collect()
    }

    /// Faults per kind.
    pub fn counts(&self) -> BTreeMap<FaultKind, usize> {
        let mut m = BTreeMap::new();
        for a in &self.log {
            *m.entry(a.kind).or_insert(0) += 1;
        }
        m
    }

    fn leader(&self) -> Option<usize> {
        let c = self.cluster.lock().expect("cluster");
        (0..c.len())
            .filter(|i| c.is_running(*i))
            .find_map(|i| c.leader_seen_by(i))
    }

    fn apply(&mut self, kind: FaultKind, pick: u64) -> anyhow::Result<Applied> {
        let mut rng = StdRng::seed_from_u64(pick);
        let n = self.cluster.lock().expect("cluster").len();
        let mut nodes: Vec<usize> = (0..n).collect();
        nodes.shuffle(&mut rng);
        let mut applied = Applied {
            kind,
            detail: String::new(),
            from: 0,
            to: 0,
            leader: None,
            minority: Vec::new(),
            undo: Vec::new(),
        };
        let name = |i: usize| format!("n{}", i + 1);
        match kind {
            FaultKind::Partition => {
                let c = self.cluster.lock().expect("cluster");
                applied.undo.push(Undo::Network);
                match rng.gen_range(0..4) {
                    0 => {
                        let (a, b) = nodes.split_at(2);
                        c.net.partition(&[a.to_vec(), b.to_vec()])?;
                        applied.detail = format!("split {:?} | {:?}", names(a), names(b));
                        applied.minority = without_voter_majority(&[a, b]);
                    }
                    1 => {
                        let (a, rest) = nodes.split_at(2);
                        let (bridge, b) = rest.split_at(1);
                        c.net.partition(&[a.to_vec(), b.to_vec()])?;
                        applied.detail = format!(
                            "bridge {:?} | {} | {:?}",
                            names(a),
                            name(bridge[0]),
                            names(b)
                        );
                    }
                    2 => {
                        // Each node hears only its two neighbours on a ring.
                        for (x, &a) in nodes.iter().enumerate() {
                            for (y, &b) in nodes.iter().enumerate() {
                                let d = (x + n - y) % n;
                                if d > 1 && d < n - 1 {
                                    c.net.drop_from(b, a)?;
                                }
                            }
                        }
                        applied.detail = format!("ring {:?}", names(&nodes));
                    }
                    _ => {
                        let x = nodes[0];
                        for o in (0..n).filter(|o| *o != x) {
                            c.net.drop_from(o, x)?;
                        }
                        applied.detail = format!("{} hears no other node (one-way)", name(x));
                        applied.minority = vec![x];
                    }
                }
            }
            FaultKind::IsolateLeader => {
                let l = self.leader().unwrap_or(0);
                let rest: Vec<usize> = (0..n).filter(|o| *o != l).collect();
                self.cluster
                    .lock()
                    .expect("cluster")
                    .net
                    .partition(&[vec![l], rest])?;
                applied.undo.push(Undo::Network);
                applied.detail = format!("leader {} cut off", name(l));
                applied.minority = vec![l];
                applied.leader = Some(l);
            }
            FaultKind::Kill => {
                let count = if rng.gen_bool(0.3) { 2 } else { 1 };
                let mut c = self.cluster.lock().expect("cluster");
                for &v in &nodes[..count] {
                    self.workload.down[v].store(true, Ordering::SeqCst);
                    c.kill(v);
                    applied.undo.push(Undo::Restart(v));
                }
                applied.detail = format!("SIGKILL {:?}", names(&nodes[..count]));
            }
            FaultKind::Pause => {
                let leader = rng.gen_bool(0.6);
                let v = if leader {
                    self.leader().unwrap_or(nodes[0])
                } else {
                    nodes[0]
                };
                self.cluster.lock().expect("cluster").pause(v)?;
                applied.undo.push(Undo::Resume(v));
                applied.detail = format!(
                    "SIGSTOP {}{}",
                    name(v),
                    if leader { " (leader)" } else { "" }
                );
                if leader {
                    applied.leader = Some(v);
                }
            }
            FaultKind::Clock => {
                let count = if rng.gen_bool(0.4) { 2 } else { 1 };
                let mut parts = Vec::new();
                for &v in &nodes[..count] {
                    let secs: i64 = match rng.gen_range(0..3) {
                        0 => rng.gen_range(-120..120),
                        1 => rng.gen_range(-3_600..3_600),
                        _ => rng.gen_range(-86_400 * 3..86_400 * 3),
                    };
                    self.set_clock(v, secs)?;
                    applied.undo.push(Undo::Clock(v));
                    parts.push(format!("{} {secs:+}s", name(v)));
                }
                applied.detail = format!("clock {}", parts.join(", "));
            }
            FaultKind::Loss => {
                let pct = rng.gen_range(10..50);
                let count = if rng.gen_bool(0.4) { 2 } else { 1 };
                let c = self.cluster.lock().expect("cluster");
                for &v in &nodes[..count] {
                    c.net.lossy(v, pct)?;
                }
                applied.undo.push(Undo::Network);
                applied.detail = format!("{pct}% loss into {:?}", names(&nodes[..count]));
            }
            FaultKind::Slow => {
                let kbit = rng.gen_range(1_000..8_000);
                self.cluster
                    .lock()
                    .expect("cluster")
                    .net
                    .slow(nodes[0], kbit)?;
                applied.undo.push(Undo::Network);
                applied.detail = format!("{} sends at {kbit} kbit/s", name(nodes[0]));
            }
            FaultKind::Membership => {
                let c = self.cluster.lock().expect("cluster");
                let via = (0..n).find(|i| c.is_running(*i)).unwrap_or(0);
                if rng.gen_bool(0.5) {
                    let v = *nodes.iter().find(|i| **i < VOTERS).expect("a voter");
                    let r = c.admin_waiting(
                        via,
                        "POST",
                        &format!("/admin/nodes/{}/remove", v + 1),
                        "",
                        Duration::from_secs(60),
                    )?;
                    applied.detail = format!(
                        "voter {} removed: {} {}",
                        name(v),
                        r.status,
                        one_line(&r.body)
                    );
                    applied.undo.push(Undo::AddVoter(v));
                } else {
                    let dn = datanode_ids(&c, via);
                    let Some(&d) = dn.get(rng.gen_range(0..dn.len().max(1))) else {
                        anyhow::bail!("no datanodes listed");
                    };
                    let r = c.admin(via, "POST", &format!("/admin/datanodes/{d}/drain"), "")?;
                    applied.detail =
                        format!("datanode {d} drained: {} {}", r.status, one_line(&r.body));
                    applied.undo.push(Undo::Undrain(d));
                }
            }
            FaultKind::Disk => {
                let c = self.cluster.lock().expect("cluster");
                let v = nodes[0];
                let disk = if rng.gen_bool(0.5) { "disk1" } else { "disk2" };
                let (what, file, text) = match rng.gen_range(0..5) {
                    0 => ("EIO on 30% of reads", c.disk_dir(v, disk), "read-eio 0.3"),
                    1 => (
                        "a bit flipped in 20% of reads",
                        c.disk_dir(v, disk),
                        "flip 0.2",
                    ),
                    2 => ("ENOSPC on writes", c.disk_dir(v, disk), "enospc"),
                    3 => ("EIO on fsync", c.disk_dir(v, disk), "fsync-eio"),
                    _ => ("EIO on metadata WAL fsync", c.meta_dir(v), "fsync-eio"),
                };
                let path = file.join("FAULTS");
                std::fs::write(&path, format!("{text}\n"))?;
                applied.undo.push(Undo::Clear(path));
                if text == "fsync-eio" {
                    applied.undo.push(Undo::Bounce(v));
                }
                let place = if what.contains("metadata") {
                    "metadata".to_string()
                } else {
                    disk.to_string()
                };
                applied.detail = format!("{} {place}: {what}", name(v));
            }
        }
        applied.from = self.now();
        Ok(applied)
    }

    fn undo(&self, undo: &[Undo]) {
        for u in undo {
            let r = self.undo_one(u);
            if let Err(e) = r {
                eprintln!("chaos: ending {u:?} failed: {e:#}");
            }
        }
    }

    fn undo_one(&self, u: &Undo) -> anyhow::Result<()> {
        let mut c = self.cluster.lock().expect("cluster");
        match u {
            Undo::Network => c.net.heal()?,
            Undo::Restart(i) => {
                c.start_node(*i)?;
                let _ = c.wait_ready(*i, Duration::from_secs(30));
                self.workload.down[*i].store(false, Ordering::SeqCst);
            }
            Undo::Resume(i) => c.resume(*i)?,
            Undo::Clock(i) => {
                if c.clock(*i) != 0 {
                    drop(c);
                    self.set_clock(*i, 0)?;
                }
            }
            Undo::AddVoter(i) => {
                let body = format!(
                    "{{\"id\": {}, \"addr\": \"{}:9002\", \"voter\": true}}",
                    i + 1,
                    Net::ip(*i)
                );
                // Through a node still in the group: the removed one was never told it was
                // removed and knows no leader.
                let mut last = String::from("no node to ask");
                for via in (0..c.len()).filter(|x| *x != *i && c.is_running(*x)) {
                    // A membership change waits for the leader to commit it.
                    match c.admin_waiting(
                        via,
                        "POST",
                        "/admin/nodes",
                        &body,
                        Duration::from_secs(60),
                    ) {
                        Ok(r) if r.status < 300 => return Ok(()),
                        Ok(r) => last = format!("{} {}", r.status, one_line(&r.body)),
                        Err(e) => last = format!("{e:#}"),
                    }
                }
                anyhow::bail!("adding node {} back: {last}", i + 1);
            }
            Undo::Clear(path) => {
                let _ = std::fs::remove_file(path);
            }
            Undo::Bounce(i) => {
                self.workload.down[*i].store(true, Ordering::SeqCst);
                c.kill(*i);
                c.start_node(*i)?;
                let _ = c.wait_ready(*i, Duration::from_secs(30));
                self.workload.down[*i].store(false, Ordering::SeqCst);
            }
            Undo::Undrain(d) => {
                let via = (0..c.len()).find(|x| c.is_running(*x)).unwrap_or(0);
                c.admin(via, "POST", &format!("/admin/datanodes/{d}/undrain"), "")?;
            }
        }
        Ok(())
    }

    /// Restarts node `v` with its wall clock `secs` off (clients leave it alone meanwhile).
    fn set_clock(&self, v: usize, secs: i64) -> anyhow::Result<()> {
        let mut c = self.cluster.lock().expect("cluster");
        self.workload.down[v].store(true, Ordering::SeqCst);
        c.kill(v);
        c.set_clock(v, secs);
        c.start_node(v)?;
        let _ = c.wait_ready(v, Duration::from_secs(30));
        self.workload.down[v].store(false, Ordering::SeqCst);
        Ok(())
    }

    /// Ends whatever is still in effect (the network, stopped or killed nodes, clocks).
    pub fn heal_all(&self) {
        let c = self.cluster.lock().expect("cluster");
        let n = c.len();
        // Voters whose removal was not undone (the add failed) are added back too.
        let mut undo: Vec<Undo> = vec![Undo::Network];
        undo.extend((0..VOTERS.min(n)).map(Undo::AddVoter));
        for i in 0..n {
            for dir in [
                c.disk_dir(i, "disk1"),
                c.disk_dir(i, "disk2"),
                c.meta_dir(i),
            ] {
                undo.push(Undo::Clear(dir.join("FAULTS")));
            }
        }
        drop(c);
        for i in 0..n {
            undo.push(Undo::Resume(i));
            undo.push(Undo::Clock(i));
            undo.push(Undo::Restart(i));
        }
        self.undo(&undo);
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn names(nodes: &[usize]) -> Vec<String> {
    nodes.iter().map(|i| format!("n{}", i + 1)).collect()
}

/// The nodes of the groups that hold fewer than a majority of the voters.
fn without_voter_majority(groups: &[&[usize]]) -> Vec<usize> {
    groups
        .iter()
        .filter(|g| g.iter().filter(|i| **i < VOTERS).count() * 2 <= VOTERS)
        .flat_map(|g| g.iter().copied())
        .collect()
}

/// The datanode ids node `via` lists.
fn datanode_ids(c: &Cluster, via: usize) -> Vec<u64> {
    c.admin(via, "GET", "/admin/datanodes", "")
        .ok()
        .and_then(|r| serde_json::from_str::<serde_json::Value>(&r.body).ok())
        .and_then(|v| {
            let list = v
                .as_array()
                .cloned()
                .or_else(|| v["datanodes"].as_array().cloned())?;
            Some(list.iter().filter_map(|d| d["id"].as_u64()).collect())
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_gives_the_same_schedule_and_another_seed_another() {
        let a = schedule(7, &FaultKind::ALL, 120);
        let b = schedule(7, &FaultKind::ALL, 120);
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
        assert_ne!(
            format!("{a:?}"),
            format!("{:?}", schedule(8, &FaultKind::ALL, 120))
        );
        let total: u64 = a.iter().map(|p| p.gap_ms + p.hold_ms).sum();
        assert!(total >= 120_000);
        let only = schedule(7, &[FaultKind::Kill], 60);
        assert!(only
            .iter()
            .all(|p| p.faults.iter().all(|(k, _)| *k == FaultKind::Kill)));
    }

    #[test]
    fn the_side_without_most_voters_is_the_minority() {
        // Voters are nodes 0, 1, 2.
        assert_eq!(
            without_voter_majority(&[&[0, 1], &[2, 3, 4]]),
            vec![2, 3, 4]
        );
        assert_eq!(without_voter_majority(&[&[0, 3], &[1, 2, 4]]), vec![0, 3]);
        assert_eq!(without_voter_majority(&[&[3, 4], &[0, 1, 2]]), vec![3, 4]);
    }
}
