//! `cairn scrub`, `cairn repair` and `cairn status`: start a scrub through the admin API,
//! follow it with a progress bar, print its summary, and exit non-zero while damage remains.

use std::time::Duration;

use anyhow::{bail, Context};
use cairn_heal::{DamageKind, HealStatus, ScrubReport};
use indicatif::{ProgressBar, ProgressStyle};

use super::client::Connection;

#[derive(clap::Args, Debug, Clone)]
pub struct ScrubArgs {
    #[command(flatten)]
    pub conn: Connection,
    /// Re-read and verify every payload (else: compare Merkle trees only).
    #[arg(long)]
    pub deep: bool,
    /// Only this datanode (repeat for several).
    #[arg(long = "node")]
    pub nodes: Vec<u32>,
    /// Only objects of this bucket (orphans are then not looked for).
    #[arg(long)]
    pub bucket: Option<String>,
    /// Repair what is found.
    #[arg(long)]
    pub repair: bool,
    /// Deep-scrub read rate per datanode in MB/s (default: the server's).
    #[arg(long)]
    pub deep_rate: Option<f64>,
    /// Print the report as JSON (no progress bar).
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug, Clone)]
pub struct RepairArgs {
    #[command(flatten)]
    pub conn: Connection,
    /// Find and list the damage, repair nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Only this datanode (repeat for several).
    #[arg(long = "node")]
    pub nodes: Vec<u32>,
    /// Print the report as JSON (no progress bar).
    #[arg(long)]
    pub json: bool,
    /// Set the repair speed in MB/s (0: unlimited), for the running repair too, and exit.
    #[arg(long)]
    pub set_rate: Option<f64>,
}

#[derive(clap::Args, Debug, Clone)]
pub struct StatusArgs {
    #[command(flatten)]
    pub conn: Connection,
    /// Print the status as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run_scrub(a: ScrubArgs) -> anyhow::Result<()> {
    let body = serde_json::json!({
        "deep": a.deep,
        "repair": a.repair,
        "nodes": (!a.nodes.is_empty()).then_some(&a.nodes),
        "bucket": a.bucket,
        "deep_rate_mb": a.deep_rate,
        "trigger": "cli",
    });
    let report = follow(&a.conn, &body.to_string(), a.json)?;
    finish(&report, a.json, false)
}

pub fn run_repair(a: RepairArgs) -> anyhow::Result<()> {
    if let Some(mb) = a.set_rate {
        let reply = a.conn.call(
            "POST",
            "/admin/repair/rate",
            &serde_json::json!({ "mb_per_sec": mb }).to_string(),
        )?;
        let v: serde_json::Value = reply.json()?;
        println!(
            "repair rate: {}",
            rate(v["repair_rate"].as_u64().unwrap_or(0))
        );
        return Ok(());
    }
    let body = serde_json::json!({
        "repair": !a.dry_run,
        "nodes": (!a.nodes.is_empty()).then_some(&a.nodes),
        "trigger": "cli",
    });
    let report = follow(&a.conn, &body.to_string(), a.json)?;
    finish(&report, a.json, a.dry_run)
}

/// Starts a scrub and polls it to the end, drawing a progress bar on stderr.
fn follow(conn: &Connection, body: &str, quiet: bool) -> anyhow::Result<ScrubReport> {
    let reply = conn.call("POST", "/admin/scrub", body)?;
    let started: serde_json::Value = reply.json()?;
    let id = started["id"].as_u64().context("no scrub id in the reply")?;
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(0)
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} {prefix:8} [{bar:30}] {pos}/{len} {msg} ({elapsed}, ETA {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    loop {
        let status: HealStatus = conn.call("GET", "/admin/scrub", "")?.json()?;
        match status.running {
            Some(p) if p.id == id => {
                bar.set_prefix(p.phase.clone());
                bar.set_length(p.total.max(p.done));
                bar.set_position(p.done);
                let secs = (p.elapsed_ms as f64 / 1000.0).max(0.001);
                bar.set_message(format!(
                    "{} shards, read {} ({}/s), wrote {}",
                    p.shards_checked,
                    bytes(p.bytes_read),
                    bytes((p.bytes_read as f64 / secs) as u64),
                    bytes(p.bytes_written)
                ));
            }
            _ => {
                bar.finish_and_clear();
                let last = status
                    .last
                    .filter(|r| r.id == id)
                    .context("the scrub ended without a report (see the server log)")?;
                return Ok(last);
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn finish(r: &ScrubReport, json: bool, dry_run: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(r)?);
    } else {
        print!("{}", summary(r, dry_run));
    }
    let remaining = r.damage_remaining();
    if remaining > 0 {
        bail!("{remaining} problem(s) remain unrepaired");
    }
    Ok(())
}

/// The human summary of a report.
pub fn summary(r: &ScrubReport, dry_run: bool) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let kind = if r.deep { "deep" } else { "light" };
    let what = if r.repair { ", with repair" } else { "" };
    let _ = writeln!(
        o,
        "Scrub {} ({kind}{what}) finished in {:.1} s",
        r.id,
        r.duration_ms as f64 / 1000.0
    );
    let _ = writeln!(
        o,
        "{:<6} {:<9} {:>8} {:>9} {:>8} {:>8} {:>9} {:>9} {:>10} {:>10}",
        "node",
        "reachable",
        "shards",
        "differing",
        "missing",
        "corrupt",
        "misplaced",
        "orphaned",
        "compared",
        "listing"
    );
    for n in &r.nodes {
        let _ = writeln!(
            o,
            "{:<6} {:<9} {:>8} {:>9} {:>8} {:>8} {:>9} {:>9} {:>10} {:>10}",
            format!("dn{}", n.node),
            if n.reachable { "yes" } else { "NO" },
            n.shards_expected,
            n.partitions_differing,
            n.found.missing,
            n.found.corrupt,
            n.found.misplaced,
            n.found.orphaned,
            bytes(n.wire_bytes),
            bytes(n.listing_bytes)
        );
        if let Some(e) = &n.error {
            let _ = writeln!(o, "       {e}");
        }
    }
    let _ = writeln!(
        o,
        "partitions checked {}, shards checked {}, bytes read {}, bytes written {}",
        r.partitions_checked,
        r.shards_checked,
        bytes(r.bytes_read),
        bytes(r.bytes_written)
    );
    let line = |label: &str, c: &cairn_heal::Counts| {
        format!(
            "{label:<9} missing {}, corrupt {}, misplaced {}, orphaned {}\n",
            c.missing, c.corrupt, c.misplaced, c.orphaned
        )
    };
    o.push_str(&line("found:", &r.found));
    if r.repair {
        o.push_str(&line("repaired:", &r.repaired));
        o.push_str(&line("failed:", &r.failed));
    }
    if r.deferred_orphans > 0 {
        let _ = writeln!(
            o,
            "{} orphan(s) left for now: younger than the grace period or still being written",
            r.deferred_orphans
        );
    }
    if let Some(why) = &r.orphans_skipped {
        let _ = writeln!(o, "{why}");
    }
    for u in &r.unrecoverable {
        let _ = writeln!(
            o,
            "UNRECOVERABLE stripe {}: {} of {} shards needed are intact; objects: {}",
            u.stripe,
            u.available,
            u.needed,
            u.objects.join(", ")
        );
    }
    if dry_run {
        for f in &r.findings {
            let verb = match f.kind {
                DamageKind::Missing | DamageKind::Corrupt => "rebuild",
                DamageKind::Misplaced => "move",
                DamageKind::Orphaned => "delete",
            };
            let _ = writeln!(
                o,
                "would {verb} {:?} shard {} on dn{}{}",
                f.kind,
                f.shard,
                f.node,
                f.object
                    .as_ref()
                    .map(|n| format!(" ({n})"))
                    .unwrap_or_default()
            );
        }
    }
    if r.damage_remaining() == 0 {
        o.push_str("no damage remains\n");
    }
    o
}

pub fn run_status(a: StatusArgs) -> anyhow::Result<()> {
    let reply = a.conn.call("GET", "/admin/status", "")?;
    let v: serde_json::Value = reply.json()?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let m = &v["metadata"];
    println!(
        "metadata: {} ({}), leader {}, voters {}",
        m["engine"].as_str().unwrap_or("?"),
        m["replication"].as_str().unwrap_or("?"),
        m["leader"].as_str().unwrap_or("?"),
        m["voters"]
    );
    if let Some(nodes) = v["nodes"].as_array() {
        print!("{}", super::node::nodes_table(nodes));
    }
    println!(
        "erasure coding: {}",
        v["erasure_coding"].as_str().unwrap_or("?")
    );
    println!("storage classes: {}", classes_line(&v["storage_classes"]));
    println!("{}", encryption_line(&v["encryption"]));
    println!("{}", super::node::ring_line(&v["ring"]));
    println!(
        "{:<6} {:<6} {:<8} {:<22} {:>8} {:>10} {:>10} {:>6} {:>10}  last scrub",
        "dn", "node", "state", "address", "shards", "live", "disk", "amp", "free"
    );
    let now = cairn_types::clock::now_ms();
    let mut live_total = 0u64;
    let mut shards_total = 0u64;
    for n in v["datanodes"].as_array().into_iter().flatten() {
        let last = match n["last_scrub_ms"].as_i64() {
            Some(ms) => format!(
                "{} ago, found {}",
                age(now - ms),
                n["last_scrub_found"]
                    .as_object()
                    .map(|c| c.values().filter_map(|x| x.as_u64()).sum::<u64>())
                    .unwrap_or(0)
            ),
            None => "never".into(),
        };
        live_total += n["live_bytes"].as_u64().unwrap_or(0);
        shards_total += n["shards"].as_u64().unwrap_or(0);
        println!(
            "{:<6} {:<6} {:<8} {:<22} {:>8} {:>10} {:>10} {:>6} {:>10}  {last}",
            format!("dn{}", n["id"]),
            n["node"]
                .as_u64()
                .map_or("-".into(), |x| format!("node{x}")),
            n["state"].as_str().unwrap_or("?"),
            n["addr"].as_str().unwrap_or("?"),
            n["shards"].as_u64().map_or("-".into(), |s| s.to_string()),
            n["live_bytes"].as_u64().map_or("-".into(), bytes),
            n["disk_bytes"].as_u64().map_or("-".into(), bytes),
            n["space_amplification"]
                .as_f64()
                .map_or("-".into(), |a| format!("{a:.2}x")),
            match (n["free_bytes"].as_u64(), n["capacity_bytes"].as_u64()) {
                (Some(f), Some(c)) if c > 0 => format!("{}/{}", bytes(f), bytes(c)),
                _ => "-".into(),
            },
        );
    }
    let h = &v["heal"];
    if let Some(p) = h["running"].as_object() {
        println!(
            "scrub {} running: {} {}/{}",
            p["id"],
            p["phase"].as_str().unwrap_or("?"),
            p["done"],
            p["total"]
        );
    }
    match h["last"].as_object() {
        Some(l) => println!(
            "last scrub: {} ago ({}), {} damage found, {} left",
            age(now - l["started_ms"].as_i64().unwrap_or(now)),
            if l["deep"].as_bool() == Some(true) {
                "deep"
            } else {
                "light"
            },
            l["found"]
                .as_object()
                .map(|c| c.values().filter_map(|x| x.as_u64()).sum::<u64>())
                .unwrap_or(0),
            h["repair_backlog"]
        ),
        None => println!("last scrub: none since the server started"),
    }
    let repair_rate = h["repair_rate"].as_u64().unwrap_or(0);
    println!(
        "repair: {} stripe(s) queued by degraded reads, backlog {}, rate {}",
        h["repair_queue"],
        h["repair_backlog"],
        rate(repair_rate)
    );
    if v["workers"].is_array() {
        print!("{}", workers_table(&v["workers"]));
    }
    println!("{}", lifecycle_line(&v["lifecycle"], now));
    for q in v["quotas"].as_array().into_iter().flatten() {
        let (u, l) = (&q["usage"], &q["quota"]);
        let limit =
            |used: &serde_json::Value, max: &serde_json::Value, unit: &str| match max.as_u64() {
                Some(m) => format!("{} of {m} {unit}", used.as_u64().unwrap_or(0)),
                None => format!("{} {unit} (no limit)", used.as_u64().unwrap_or(0)),
            };
        println!(
            "quota: bucket {}: {}, {}",
            q["bucket"].as_str().unwrap_or("?"),
            limit(&u["bytes"], &l["max_bytes"], "bytes"),
            limit(&u["objects"], &l["max_objects"], "objects")
        );
    }
    let pending = v["rebalance_pending"].as_u64().unwrap_or(0);
    if pending > 0 {
        let avg = live_total.checked_div(shards_total).unwrap_or(0);
        let eta = (pending * avg * 1000)
            .checked_div(repair_rate)
            .map_or("unknown".into(), |ms| age(ms as i64));
        println!("rebalancing: {pending} shard(s) to move, ETA {eta}");
    } else {
        println!("rebalancing: nothing to move");
    }
    Ok(())
}

/// The lifecycle line of `cairn status`: the run in progress (where it stands) or the last
/// one, and what every run has done.
fn lifecycle_line(l: &serde_json::Value, now: i64) -> String {
    let t = &l["total"];
    let totals = format!(
        "{} expired, {} noncurrent versions and {} delete markers removed, {} uploads aborted, {} locked versions kept, {} failures",
        t["expired"], t["noncurrent_removed"], t["markers_removed"], t["uploads_aborted"], t["locked"], t["failures"]
    );
    let run = l["run"].as_u64().unwrap_or(0);
    if run == 0 {
        return "lifecycle: no run yet".into();
    }
    match (l["bucket"].as_str(), l["last_run_finished_ms"].as_i64()) {
        (Some(b), _) => format!(
            "lifecycle: run {run} in progress at bucket {b} (after key {:?}); all runs: {totals}",
            l["key_marker"].as_str().unwrap_or("")
        ),
        (None, Some(done)) => format!(
            "lifecycle: run {run} finished {} ago in {} ms; all runs: {totals}",
            age(now - done),
            l["last_run_ms"]
        ),
        (None, None) => format!("lifecycle: run {run}; all runs: {totals}"),
    }
}

/// The workers of `GET /admin/workers` (or `cairn status`) as a table: one line each.
pub fn workers_table(workers: &serde_json::Value) -> String {
    use std::fmt::Write;
    let now = cairn_types::clock::now_ms();
    let mut out = format!(
        "{:<16} {:<8} {:>7} {:<10} {}\n",
        "worker", "state", "rounds", "last round", "progress"
    );
    for w in workers.as_array().into_iter().flatten() {
        let last = w["round_finished_ms"]
            .as_i64()
            .map_or("never".into(), |ms| format!("{} ago", age(now - ms)));
        let _ = writeln!(
            out,
            "{:<16} {:<8} {:>7} {:<10} {}",
            w["name"].as_str().unwrap_or("?"),
            w["state"].as_str().unwrap_or("?"),
            w["rounds"].as_u64().unwrap_or(0),
            last,
            w["progress"].as_str().unwrap_or("")
        );
        if let (Some(e), Some(ms)) = (w["last_error"].as_str(), w["last_error_ms"].as_i64()) {
            let _ = writeln!(out, "{:<16} last error {} ago: {e}", "", age(now - ms));
        }
    }
    out
}

fn age(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", s / 60),
        _ => format!("{} h", s / 3600),
    }
}

fn rate(bytes_per_sec: u64) -> String {
    if bytes_per_sec == 0 {
        "unlimited".into()
    } else {
        format!("{}/s", bytes(bytes_per_sec))
    }
}

/// Bytes with a binary unit.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// `STANDARD 4+2, REDUCED_REDUNDANCY 4+1 (built-in)`: the classes `/admin/status` lists.
pub(crate) fn classes_line(classes: &serde_json::Value) -> String {
    let list: Vec<String> = classes
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            let built_in = if c["built_in"].as_bool() == Some(true) && c["name"] != "STANDARD" {
                " (built-in)"
            } else {
                ""
            };
            format!(
                "{} {}{built_in}",
                c["name"].as_str().unwrap_or("?"),
                c["ec"].as_str().unwrap_or("?")
            )
        })
        .collect();
    if list.is_empty() {
        "-".into()
    } else {
        list.join(", ")
    }
}

/// `encryption at rest: master keys 1, 2 (active 2; rotation done), KMS keys aws/s3, k1`.
pub(crate) fn encryption_line(e: &serde_json::Value) -> String {
    let list = |v: &serde_json::Value| -> String {
        let items: Vec<String> = v
            .as_array()
            .into_iter()
            .flatten()
            .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string))
            .collect();
        if items.is_empty() {
            "none".into()
        } else {
            items.join(", ")
        }
    };
    let rotation = match &e["rotation"] {
        serde_json::Value::Null => String::new(),
        r if r["done"].as_bool() == Some(true) => "; last rotation done".into(),
        r => format!(
            "; rotation to key {} under way: {} data keys re-wrapped",
            r["target"], r["rewrapped"]
        ),
    };
    format!(
        "encryption at rest: master keys {} (active {}{rotation}), KMS keys {}",
        list(&e["keys"]),
        e["active"],
        list(&e["kms_keys"])
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_ages_read_well() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3 << 30), "3.0 GiB");
        assert_eq!(age(5_000), "5 s");
        assert_eq!(age(600_000), "10 min");
        assert_eq!(rate(0), "unlimited");
    }

    #[test]
    fn the_workers_table_shows_state_progress_and_errors() {
        let now = cairn_types::clock::now_ms();
        let v = serde_json::json!([
            {"name": "gc", "state": "paused", "rounds": 7, "progress": "deleted 3",
             "round_finished_ms": now - 5_000, "last_error": null, "last_error_ms": null},
            {"name": "scrub", "state": "failed", "rounds": 1, "progress": "",
             "round_finished_ms": null, "last_error": "boom", "last_error_ms": now - 60_000},
        ]);
        let t = workers_table(&v);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 4, "{t}");
        assert!(
            lines[1].starts_with("gc ") && lines[1].contains("paused"),
            "{t}"
        );
        assert!(
            lines[1].contains("5 s ago") && lines[1].ends_with("deleted 3"),
            "{t}"
        );
        assert!(
            lines[2].contains("failed") && lines[2].contains("never"),
            "{t}"
        );
        assert!(lines[3].contains("last error 60 s ago: boom"), "{t}");
    }

    #[test]
    fn the_summary_names_unrecoverable_objects() {
        let mut r = ScrubReport {
            repair: true,
            ..ScrubReport::default()
        };
        r.found.add(DamageKind::Missing, 3);
        r.unrecoverable.push(cairn_heal::Unrecoverable {
            stripe: "ab/0".into(),
            available: 3,
            needed: 4,
            objects: vec!["bkt/key".into()],
        });
        let s = summary(&r, false);
        assert!(s.contains("UNRECOVERABLE stripe ab/0"), "{s}");
        assert!(s.contains("bkt/key"));
        assert!(!s.contains("no damage remains"));
    }
}
