//! Randomized request shapes against a private bucket (issue 13): many random requests —
//! a method, a few sub-resource query parameters, headers that change what a request does,
//! a target and a body — sent anonymously and signed by a key that owns nothing and has no
//! grants, must never get a 2xx answer the access model forbids (the only one it allows is
//! that key listing its own, empty, set of buckets), never a server error or a dropped
//! connection, never a 404 that tells what the private bucket holds, and must leave the
//! bucket exactly as its owner made it (checked against a snapshot every [`CHECKPOINT`]
//! shapes). A presigned URL sent with `x-amz-*` headers its signature does not cover must be
//! refused with 403, and X's correctly signed requests must pass authentication (or the
//! fuzz would test nothing). See [`judge`].
//!
//! Every shape is derived from the seed and its index alone, whatever thread sends it, so a
//! failure replays with `CAIRN_FUZZ_SEED=<seed> CAIRN_FUZZ_ONLY=<index>`, which sends that
//! one shape and prints the exchange. `CAIRN_FUZZ_SHAPES` sets the number of shapes
//! (default 100,000). The figures (time, status and operation histograms) are printed at the
//! end: `cargo test -p cairn-tests --test e2e authz_fuzz -- --nocapture`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::ops::Range;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{BucketVersioningStatus, Tag, Tagging, VersioningConfiguration};
use aws_sdk_s3::Client;
use cairn_api::op::{classify_path, Op};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use crate::acl::new_user;
use crate::common::*;

mod draw;
mod judge;
mod self_check;
mod state;
mod wire;
use draw::*;
use judge::*;
use self_check::*;
use state::*;
use wire::*;

/// The key that owns nothing and is granted nothing.
const X_KEY: &str = "FUZZUSERKEY000000001";
const X_SECRET: &str = "fuzz-user-secret-0000000000000000000000";
const BUCKET: &str = "secret";
/// The object key whose multipart upload is left in progress.
const UPLOAD_KEY: &str = "pending";
/// Shapes between two snapshots of the bucket.
const CHECKPOINT: u64 = 10_000;
/// Threads sending shapes, each over its own keep-alive connection.
const THREADS: u64 = 4;
/// Draws at most this many shapes when aiming at an operation.
const AIM_TRIES: usize = 20;
/// Violations printed in full when the test fails.
const SHOWN: usize = 20;

const ALL_USERS: &str = "http://acs.amazonaws.com/groups/global/AllUsers";

/// Who sends a shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Caller {
    /// No credentials at all.
    Anonymous,
    /// Key X, SigV4 in the `Authorization` header, every header sent signed.
    XSigned,
    /// Key X, a presigned URL (SigV4 in the query), every header sent signed.
    XPresigned,
    /// Key X, a presigned URL, plus `x-amz-*` headers the signature does not cover: refused
    /// with 403 whatever the request is.
    XPresignedUnsigned,
}

/// What the shapes draw from: the bucket's real keys, versions and upload, and the ids the
/// grant headers and documents name.
struct Fixture {
    addr: SocketAddr,
    host: String,
    /// Existing keys: current objects, the one behind a delete marker, the pending upload's.
    keys: Vec<String>,
    /// Every version id of the bucket, delete marker included.
    version_ids: Vec<String>,
    upload_id: String,
    part_etag: String,
    x_id: String,
    owner_id: String,
    /// Each operation and the skeletons of the requests Cairn classifies as it.
    aims: Vec<(Op, Vec<Skeleton>)>,
}

/// One random request.
#[derive(Debug)]
struct Shape {
    caller: Caller,
    method: &'static str,
    path: String,
    /// Query parameters (`name` or `name=value`), before any presigning parameters.
    query: Vec<String>,
    /// Headers sent (and, for X, signed), host and authentication aside.
    headers: Vec<(String, String)>,
    /// `x-amz-*` headers sent but left out of a presigned URL's signature.
    unsigned: Vec<(String, String)>,
    body: Vec<u8>,
}

const METHODS: &[&str] = &["GET", "HEAD", "PUT", "POST", "DELETE", "PATCH", "OPTIONS"];

const PARAMS: &[&str] = &[
    "acl",
    "tagging",
    "uploads",
    "uploadId",
    "partNumber",
    "versionId",
    "delete",
    "versioning",
    "versions",
    "location",
    "cors",
    "policy",
    "lifecycle",
    "attributes",
    "restore",
    "select",
    "torrent",
    "list-type",
    "prefix",
    "x-id",
    "object-lock",
    "retention",
    "legal-hold",
    "publicAccessBlock",
    "ownershipControls",
    "website",
    "encryption",
    "notification",
    // Sub-resources beyond the list, so that every operation of the table is reached.
    "policyStatus",
    "logging",
    "accelerate",
    "requestPayment",
    "replication",
    "analytics",
    "inventory",
    "metrics",
    "intelligent-tiering",
];

/// The target whose key has `..` segments (refused as a bad key before authentication).
const DOT_DOT: &str = "/secret/obj%2F..%2F..";

#[derive(Default)]
struct Stats {
    sent: u64,
    /// "status code" → count.
    statuses: BTreeMap<String, u64>,
    /// Operation (or classification refusal) → status → count.
    ops: BTreeMap<String, BTreeMap<u16, u64>>,
    /// Caller → status → count.
    callers: BTreeMap<String, BTreeMap<u16, u64>>,
    /// (index, description) of each violation.
    violations: Vec<(u64, String)>,
    x_list_buckets_ok: u64,
    connections: u64,
    resent: u64,
}

impl Stats {
    fn merge(&mut self, o: Stats) {
        self.sent += o.sent;
        for (k, v) in o.statuses {
            *self.statuses.entry(k).or_default() += v;
        }
        for (k, m) in o.ops {
            let e = self.ops.entry(k).or_default();
            for (s, v) in m {
                *e.entry(s).or_default() += v;
            }
        }
        for (k, m) in o.callers {
            let e = self.callers.entry(k).or_default();
            for (s, v) in m {
                *e.entry(s).or_default() += v;
            }
        }
        self.violations.extend(o.violations);
        self.x_list_buckets_ok += o.x_list_buckets_ok;
        self.connections += o.connections;
        self.resent += o.resent;
    }
}

fn op_label(op: &Result<Op, String>) -> String {
    match op {
        Ok(op) => op.name().to_string(),
        Err(code) => format!("(refused by classification: {code})"),
    }
}

fn excerpt(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(&b[..b.len().min(300)]).into_owned();
    s.replace(['\r', '\n'], " ")
}

/// Sends shape `index` and records what came back.
fn run_one(
    fx: &Fixture,
    docs: &[String],
    seed: u64,
    index: u64,
    conn: &mut Conn,
    st: &mut Stats,
    verbose: bool,
) {
    let s = shape(fx, docs, seed, index);
    let w = wire(fx, &s, (X_KEY, X_SECRET));
    let op = classify(&w);
    let bytes = w.bytes();
    if verbose {
        println!(
            "shape {index}: {:?} {} {} query {:?} headers {:?} unsigned {:?} body {} bytes",
            s.caller,
            s.method,
            s.path,
            s.query,
            s.headers,
            s.unsigned,
            s.body.len()
        );
        println!(
            "request:\n{}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(4000)])
        );
        println!("classified as {}", op_label(&op));
    }
    let r = conn.send(&bytes, s.method == "HEAD");
    if verbose {
        match &r {
            Ok(r) => println!(
                "response: {} {:?}\n{}",
                r.status,
                r.headers,
                excerpt(&r.body)
            ),
            Err(e) => println!("no response: {e}"),
        }
    }
    st.sent += 1;
    let status = r.as_ref().map_or(0, |r| r.status);
    let code = r.as_ref().ok().and_then(Resp::code);
    let label = match &code {
        Some(c) => format!("{status} {c}"),
        None => format!("{status}"),
    };
    *st.statuses.entry(label.clone()).or_default() += 1;
    *st.ops
        .entry(op_label(&op))
        .or_default()
        .entry(status)
        .or_default() += 1;
    *st.callers
        .entry(format!("{:?}", s.caller))
        .or_default()
        .entry(status)
        .or_default() += 1;
    if (200..300).contains(&status) && op == Ok(Op::ListBuckets) {
        st.x_list_buckets_ok += 1;
    }
    if let Some(why) = judge(s.caller, &op, &s.path, &r) {
        let body = r.as_ref().map(|r| excerpt(&r.body)).unwrap_or_default();
        let headers: Vec<String> = w
            .headers
            .iter()
            .filter(|(k, _)| k != "authorization")
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        st.violations.push((
            index,
            format!(
                "seed {seed} shape {index}: {why}\n  {:?} {} {}\n  classified as {}\n  \
                 headers: {headers:?}\n  body sent: {} bytes {:?}\n  answer: {label}: {body}",
                s.caller,
                w.method,
                w.target(),
                op_label(&op),
                s.body.len(),
                excerpt(&s.body),
            ),
        ));
    }
}

/// Sends the shapes of `range` on [`THREADS`] threads, each over its own connection.
fn run_range(fx: &Fixture, docs: &[String], seed: u64, range: Range<u64>, total: &Mutex<Stats>) {
    std::thread::scope(|sc| {
        for t in 0..THREADS {
            let range = range.clone();
            sc.spawn(move || {
                let mut conn = Conn::new(fx.addr);
                let mut st = Stats::default();
                let mut i = range.start + t;
                while i < range.end {
                    run_one(fx, docs, seed, i, &mut conn, &mut st, false);
                    i += THREADS;
                }
                st.connections = conn.opened;
                st.resent = conn.resent;
                total.lock().unwrap().merge(st);
            });
        }
    });
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| {
        v.trim()
            .replace('_', "")
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v} is not a number"))
    })
}

fn print_stats(st: &Stats, elapsed: Duration) {
    println!(
        "authz_fuzz: {} shapes in {:.1}s ({:.0} shapes/s) over {} connections",
        st.sent,
        elapsed.as_secs_f64(),
        st.sent as f64 / elapsed.as_secs_f64().max(1e-9),
        st.connections
    );
    println!(
        "requests sent again after the server closed a kept-alive connection: {}",
        st.resent
    );
    println!("status histogram (status, error code):");
    for (k, v) in &st.statuses {
        println!("  {k:<45} {v:>7}");
    }
    println!("callers (status: count):");
    for (k, m) in &st.callers {
        println!("  {k:<20} {m:?}");
    }
    println!("operations reached (as Cairn classifies them; status: count):");
    let mut ops: Vec<_> = st.ops.iter().collect();
    ops.sort_by_key(|(k, m)| (std::cmp::Reverse(m.values().sum::<u64>()), (*k).clone()));
    for (k, m) in &ops {
        println!("  {k:<50} {:>6}  {m:?}", m.values().sum::<u64>());
    }
    let reached: Vec<&str> = Op::ALL
        .iter()
        .filter(|o| st.ops.contains_key(o.name()))
        .map(|o| o.name())
        .collect();
    let missed: Vec<&str> = Op::ALL
        .iter()
        .filter(|o| !st.ops.contains_key(o.name()))
        .map(|o| o.name())
        .collect();
    println!(
        "{} of {} operations reached; not reached: {missed:?}",
        reached.len(),
        Op::ALL.len()
    );
    println!("X's ListBuckets answered 2xx: {}", st.x_list_buckets_ok);
    println!("violations: {}", st.violations.len());
}

#[test]
fn random_requests_by_strangers_get_nothing_and_change_nothing() {
    let server = Server::start();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let owner = client(&server);
    let x = new_user(&server, "fuzz-x", X_KEY, X_SECRET);
    println!("key X canonical user id: {}", x.id);
    let (keys, version_ids, upload_id, part_etag) = rt.block_on(populate(&owner));
    let acl = rt
        .block_on(owner.get_bucket_acl().bucket(BUCKET).send())
        .unwrap();
    let owner_id = acl.owner().and_then(|o| o.id()).unwrap().to_string();
    assert_ne!(owner_id, x.id);
    let fx = Fixture {
        addr: server.s3,
        host: server.s3.to_string(),
        keys,
        version_ids,
        upload_id,
        part_etag,
        x_id: x.id.clone(),
        owner_id,
        aims: aims(),
    };
    let aimless: Vec<&str> = fx
        .aims
        .iter()
        .filter(|(_, sk)| sk.is_empty())
        .map(|(op, _)| op.name())
        .collect();
    assert!(aimless.is_empty(), "no skeleton for {aimless:?}");
    let docs = documents(&fx);
    self_check(&fx);

    let seed = env_u64("CAIRN_FUZZ_SEED").unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
    });
    let shapes = env_u64("CAIRN_FUZZ_SHAPES").unwrap_or(100_000);
    let only = env_u64("CAIRN_FUZZ_ONLY");
    println!(
        "authz_fuzz: seed {seed} ({} shapes; replay with CAIRN_FUZZ_SEED={seed}, one shape \
         with CAIRN_FUZZ_ONLY=<index>)",
        only.map_or(shapes, |_| 1)
    );

    let before = rt.block_on(snapshot(&owner, &x.s3, &fx.upload_id));
    // The baseline is what populate() made: every answer but two is a success.
    assert_eq!(before["bucket cors"], "error NoSuchCORSConfiguration");
    assert_eq!(before["otherbucket"], "error NoSuchBucket");
    let errors: Vec<_> = before
        .iter()
        .filter(|(k, v)| {
            v.starts_with("error") && !["bucket cors", "otherbucket"].contains(&k.as_str())
        })
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    let count = |prefix: &str| before.keys().filter(|k| k.starts_with(prefix)).count();
    assert_eq!((count("object "), count("marker ")), (8, 1), "{before:#?}");
    assert!(before["uploads"].contains(&fx.upload_id), "{before:#?}");
    assert!(
        before["parts"].contains("part_number: Some(1)"),
        "{before:#?}"
    );
    let total = Mutex::new(Stats::default());
    let mut changes = Vec::new();
    let started = Instant::now();
    if let Some(i) = only {
        let mut conn = Conn::new(fx.addr);
        let mut st = Stats::default();
        run_one(&fx, &docs, seed, i, &mut conn, &mut st, true);
        st.connections = conn.opened;
        total.lock().unwrap().merge(st);
        let now = rt.block_on(snapshot(&owner, &x.s3, &fx.upload_id));
        changes = diff(&before, &now);
    } else {
        let mut done = 0;
        while done < shapes {
            let end = (done + CHECKPOINT).min(shapes);
            run_range(&fx, &docs, seed, done..end, &total);
            let now = rt.block_on(snapshot(&owner, &x.s3, &fx.upload_id));
            let d = diff(&before, &now);
            println!(
                "  {end} shapes, {:.1}s, {} violations, bucket {}",
                started.elapsed().as_secs_f64(),
                total.lock().unwrap().violations.len(),
                if d.is_empty() { "unchanged" } else { "CHANGED" }
            );
            if !d.is_empty() {
                changes.push(format!(
                    "the bucket changed between shapes {done} and {end} (seed {seed}):"
                ));
                changes.extend(d);
                break;
            }
            done = end;
        }
    }
    let elapsed = started.elapsed();
    let mut st = total.into_inner().unwrap();
    st.violations.sort_by_key(|(i, _)| *i);
    print_stats(&st, elapsed);

    let mut failures = Vec::new();
    if !st.violations.is_empty() {
        failures.push(format!(
            "{} answers the model forbids (seed {seed}); the first {}:",
            st.violations.len(),
            SHOWN.min(st.violations.len())
        ));
        failures.extend(st.violations.iter().take(SHOWN).map(|(_, v)| v.clone()));
    }
    failures.extend(changes);
    if only.is_none() && shapes >= CHECKPOINT && st.x_list_buckets_ok == 0 {
        failures.push("X never listed its buckets: the allowed path was not exercised".into());
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
