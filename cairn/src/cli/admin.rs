//! `cairn admin`: operator actions against a running server's admin API (datanodes, keys,
//! background workers, cluster-wide Block Public Access, bucket quotas, storage classes).

use anyhow::bail;

use super::client::Connection;

#[derive(clap::Args, Debug, Clone)]
pub struct AdminArgs {
    #[command(flatten)]
    pub conn: Connection,
    #[command(subcommand)]
    pub action: AdminAction,
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum AdminAction {
    /// List the local datanodes: address, directory, serving or stopped, usage.
    Datanodes,
    /// Stop serving a datanode (the cluster sees it as down).
    StopDatanode { id: u32 },
    /// Serve a stopped datanode again on its old address.
    StartDatanode { id: u32 },
    /// Give a datanode no new placements; `cairn repair` then moves its shards off.
    DrainDatanode { id: u32 },
    /// Stop draining a datanode.
    UndrainDatanode { id: u32 },
    /// Remove a drained, empty datanode from the cluster: it leaves the registry, the ring
    /// and every listing, and its directory is left alone (wipe it to use it again, as a
    /// new datanode). Refused while it holds shards or when too few datanodes would remain.
    RemoveDatanode { id: u32 },
    /// List the background workers: state, progress, rounds, last error.
    Workers,
    /// Pause a background worker at its next safe point (it starts no more work until
    /// resumed; pauses last until the server restarts).
    PauseWorker { name: String },
    /// Let a paused background worker go on.
    ResumeWorker { name: String },
    /// List the access keys (without secrets).
    Keys,
    /// Fill a bucket with synthetic objects for benchmarks at scale: keys
    /// `{prefix}{n:010}` for n in start..start+keys, each a PutObject of `size` zero bytes
    /// (kept inline) owned by the bucket's owner, written many at once so that their
    /// metadata shares Raft entries. Existing keys are overwritten. Prints the rate.
    Populate {
        bucket: String,
        /// How many objects.
        #[arg(long)]
        keys: u64,
        /// Key prefix.
        #[arg(long, default_value = "")]
        prefix: String,
        /// First number.
        #[arg(long, default_value_t = 0)]
        start: u64,
        /// Body length in bytes (at most 64).
        #[arg(long, default_value_t = 0)]
        size: usize,
    },
    /// Show or change the cluster-wide Block Public Access (combined with each bucket's
    /// own: a switch on at either level is on). Without flags, prints the settings; with
    /// any, sets all four (an absent flag is off); `--clear` turns them all off.
    PublicAccessBlock {
        /// Refuse requests that set a public ACL.
        #[arg(long)]
        block_public_acls: bool,
        /// Give grants to everyone or to every signed request no effect.
        #[arg(long)]
        ignore_public_acls: bool,
        /// Refuse public bucket policies.
        #[arg(long)]
        block_public_policy: bool,
        /// A public bucket policy gives nothing to anyone but the bucket's owner.
        #[arg(long)]
        restrict_public_buckets: bool,
        /// All four on.
        #[arg(long, conflicts_with = "clear")]
        all: bool,
        /// All four off.
        #[arg(long)]
        clear: bool,
    },
    /// Show or change a bucket's quota. Without flags, prints the quota and the usage (bytes
    /// of every object version and of incomplete uploads' parts; object versions, delete
    /// markers not counted); with `--max-bytes`/`--max-objects`, sets the quota (an absent
    /// limit is none); `--clear` removes it. Writes past a quota get 403 QuotaExceeded.
    BucketQuota {
        bucket: String,
        /// Most bytes the bucket may store (e.g. 10G, 500M, 1T; plain numbers are bytes).
        #[arg(long, value_parser = parse_size)]
        max_bytes: Option<u64>,
        /// Most object versions the bucket may store.
        #[arg(long)]
        max_objects: Option<u64>,
        /// Remove the quota.
        #[arg(long, conflicts_with_all = ["max_bytes", "max_objects"])]
        clear: bool,
    },
    /// List the storage classes, or give one an erasure coding. `STANDARD` is the cluster's
    /// `--ec`; `REDUCED_REDUNDANCY` is built in (one parity shard fewer); any other S3 class
    /// (`STANDARD_IA`, `GLACIER`, `DEEP_ARCHIVE`…) can be given a scheme. New writes in the
    /// class use it; objects already written keep theirs. `--remove` takes the operator's
    /// scheme away (writes naming the class are then refused, or get the built-in scheme).
    StorageClass {
        /// An S3 storage class name; without it, every class is listed.
        name: Option<String>,
        /// DATA+PARITY, e.g. 4+4.
        #[arg(long, value_parser = parse_ec, requires = "name")]
        ec: Option<cairn_types::EcScheme>,
        /// Remove the operator's scheme for the class.
        #[arg(long, conflicts_with = "ec", requires = "name")]
        remove: bool,
    },
    /// Encryption at rest: add a new master key and re-wrap every object's data key under
    /// it (object data is not rewritten). Waits for the end with progress on stderr; the
    /// re-wrap goes on in the server if this is interrupted, and resumes after a restart.
    RotateMasterKey {
        /// Start the rotation and return without waiting.
        #[arg(long)]
        no_wait: bool,
    },
    /// The master keys of encryption at rest and how the last rotation got on.
    MasterKeys,
    /// The built-in KMS of SSE-KMS (`x-amz-server-side-encryption: aws:kms`): with a name,
    /// makes that key (kept if it exists: data may be wrapped by it); without, lists the
    /// keys. Writes naming a key that does not exist are refused (`KMS.NotFoundException`);
    /// `aws:kms` without a key id uses `aws/s3`, made on first use.
    KmsKey {
        /// Letters, digits and / _ - . : (e.g. `testkey-1`, `alias/backups`).
        name: Option<String>,
    },
    /// Show or set the class of a bucket's writes that name none (S3 has no call for this).
    BucketStorageClass {
        bucket: String,
        /// The class (one with a scheme); without it, prints the current default.
        class: Option<String>,
        /// Back to `STANDARD`.
        #[arg(long, conflicts_with = "class")]
        clear: bool,
    },
    /// Create an access key; prints it with its secret (shown only this once).
    CreateKey {
        /// A name for the key's owner.
        #[arg(long, default_value = "")]
        name: String,
        /// Use this access key instead of a generated one.
        #[arg(long)]
        access_key: Option<String>,
        /// Use this secret instead of a generated one.
        #[arg(long)]
        secret_key: Option<String>,
    },
}

pub fn run(args: AdminArgs) -> anyhow::Result<()> {
    let mut body = String::new();
    let (method, path) = match &args.action {
        AdminAction::Datanodes => ("GET", "/admin/datanodes".to_string()),
        AdminAction::StopDatanode { id } => ("POST", format!("/admin/datanodes/{id}/stop")),
        AdminAction::StartDatanode { id } => ("POST", format!("/admin/datanodes/{id}/start")),
        AdminAction::DrainDatanode { id } => ("POST", format!("/admin/datanodes/{id}/drain")),
        AdminAction::UndrainDatanode { id } => ("POST", format!("/admin/datanodes/{id}/undrain")),
        AdminAction::RemoveDatanode { id } => ("POST", format!("/admin/datanodes/{id}/remove")),
        AdminAction::Workers => {
            let v = get_json(&args.conn, "/admin/workers")?;
            print!("{}", super::scrub::workers_table(&v));
            return Ok(());
        }
        AdminAction::PauseWorker { name } => ("POST", format!("/admin/workers/{name}/pause")),
        AdminAction::ResumeWorker { name } => ("POST", format!("/admin/workers/{name}/resume")),
        AdminAction::Populate {
            bucket,
            keys,
            prefix,
            start,
            size,
        } => return populate(&args.conn, bucket, *keys, prefix, *start, *size),
        AdminAction::Keys => ("GET", "/admin/keys".to_string()),
        AdminAction::PublicAccessBlock {
            block_public_acls,
            ignore_public_acls,
            block_public_policy,
            restrict_public_buckets,
            all,
            clear,
        } => {
            let flags = [
                *block_public_acls,
                *ignore_public_acls,
                *block_public_policy,
                *restrict_public_buckets,
            ];
            let path = "/admin/public-access-block".to_string();
            if *clear {
                ("DELETE", path)
            } else if *all || flags.iter().any(|f| *f) {
                let on = |f: bool| *all || f;
                body = serde_json::json!({
                    "block_public_acls": on(flags[0]),
                    "ignore_public_acls": on(flags[1]),
                    "block_public_policy": on(flags[2]),
                    "restrict_public_buckets": on(flags[3]),
                })
                .to_string();
                ("PUT", path)
            } else {
                ("GET", path)
            }
        }
        AdminAction::BucketQuota {
            bucket,
            max_bytes,
            max_objects,
            clear,
        } => {
            let path = format!("/admin/buckets/{bucket}/quota");
            if *clear {
                ("DELETE", path)
            } else if max_bytes.is_some() || max_objects.is_some() {
                body = serde_json::json!({ "max_bytes": max_bytes, "max_objects": max_objects })
                    .to_string();
                ("PUT", path)
            } else {
                ("GET", path)
            }
        }
        AdminAction::RotateMasterKey { no_wait } => return rotate_master_key(&args.conn, *no_wait),
        AdminAction::MasterKeys => ("GET", "/admin/master-keys".to_string()),
        AdminAction::KmsKey { name: None } => ("GET", "/admin/kms-keys".to_string()),
        // A name may hold `/`, which a path segment may not.
        AdminAction::KmsKey { name: Some(name) } => (
            "POST",
            format!(
                "/admin/kms-keys/{}",
                name.replace('%', "%25").replace('/', "%2F")
            ),
        ),
        AdminAction::StorageClass { name, ec, remove } => match (name, ec) {
            (None, _) => {
                let v = get_json(&args.conn, "/admin/storage-classes")?;
                println!("{}", super::scrub::classes_line(&v));
                return Ok(());
            }
            (Some(name), Some(ec)) => {
                body = serde_json::json!({ "ec": ec.to_string() }).to_string();
                ("PUT", format!("/admin/storage-classes/{name}"))
            }
            (Some(name), None) if *remove => ("DELETE", format!("/admin/storage-classes/{name}")),
            (Some(_), None) => bail!("give --ec K+M to set the class, or --remove"),
        },
        AdminAction::BucketStorageClass {
            bucket,
            class,
            clear,
        } => {
            let path = format!("/admin/buckets/{bucket}/storage-class");
            match class {
                _ if *clear => ("DELETE", path),
                Some(c) => {
                    body = serde_json::json!({ "class": c }).to_string();
                    ("PUT", path)
                }
                None => ("GET", path),
            }
        }
        AdminAction::CreateKey {
            name,
            access_key,
            secret_key,
        } => {
            body = serde_json::json!({
                "name": name,
                "access_key": access_key,
                "secret_key": secret_key,
            })
            .to_string();
            ("POST", "/admin/keys".to_string())
        }
    };
    let reply = args.conn.call(method, &path, &body)?;
    print!("{}", reply.body);
    if !reply.body.ends_with('\n') {
        println!();
    }
    if !reply.ok() {
        bail!("the server answered {}", reply.status);
    }
    Ok(())
}

/// `GET path` as JSON; a refusal is an error with the server's answer.
fn get_json(conn: &super::client::Connection, path: &str) -> anyhow::Result<serde_json::Value> {
    let reply = conn.call("GET", path, "")?;
    if !reply.ok() {
        bail!(
            "the server answered {}: {}",
            reply.status,
            reply.body.trim()
        );
    }
    reply.json()
}

/// `cairn admin rotate-master-key`: starts a rotation, then follows it to its end.
fn rotate_master_key(conn: &super::client::Connection, no_wait: bool) -> anyhow::Result<()> {
    let reply = conn.call("POST", "/admin/master-keys/rotate", "")?;
    if !reply.ok() {
        bail!(
            "the server answered {}: {}",
            reply.status,
            reply.body.trim()
        );
    }
    let started: serde_json::Value = reply.json()?;
    let id = started["active"].as_u64().unwrap_or(0);
    println!("master key {id} is active; re-wrapping data keys under it");
    if no_wait {
        return Ok(());
    }
    let bar = indicatif::ProgressBar::new_spinner();
    loop {
        let v = get_json(conn, "/admin/master-keys")?;
        let r = &v["rotation"];
        bar.set_message(format!(
            "pass {}: {} records read, {} data keys re-wrapped",
            r["passes"].as_u64().unwrap_or(0) + 1,
            r["scanned"].as_u64().unwrap_or(0),
            r["rewrapped"].as_u64().unwrap_or(0),
        ));
        bar.tick();
        if r["done"].as_bool() == Some(true) && r["target"].as_u64() >= Some(id) {
            bar.finish_and_clear();
            println!(
                "done: {} data keys re-wrapped under master key {}",
                r["rewrapped"], r["target"]
            );
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
}

/// A size in bytes: a number with an optional K, M, G or T suffix (powers of 1024).
fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, shift) = match s.chars().last().map(|c| c.to_ascii_uppercase()) {
        Some('K') => (&s[..s.len() - 1], 10),
        Some('M') => (&s[..s.len() - 1], 20),
        Some('G') => (&s[..s.len() - 1], 30),
        Some('T') => (&s[..s.len() - 1], 40),
        _ => (s, 0),
    };
    let n: u64 = num
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a size (e.g. 500M, 10G)"))?;
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("{s:?} is too large"))
}

/// Calls the populate endpoint in slices of at most `MAX_PER_CALL` objects, with a progress
/// bar on stderr.
fn populate(
    conn: &super::client::Connection,
    bucket: &str,
    keys: u64,
    prefix: &str,
    start: u64,
    size: usize,
) -> anyhow::Result<()> {
    use crate::admin::populate::{PopulateReply, PopulateRequest, MAX_PER_CALL};
    let bar = indicatif::ProgressBar::new(keys);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "[{bar:30}] {pos}/{len} objects ({per_sec}, {elapsed}, ETA {eta})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let started = std::time::Instant::now();
    let mut done = 0;
    while done < keys {
        let count = (keys - done).min(MAX_PER_CALL);
        let req = PopulateRequest {
            prefix: prefix.to_string(),
            start: start + done,
            count,
            size,
        };
        let path = format!("/admin/buckets/{bucket}/populate");
        let reply: PopulateReply = conn
            .call("POST", &path, &serde_json::to_string(&req)?)?
            .json()?;
        done += reply.created;
        bar.set_position(done);
    }
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "created {done} objects in {secs:.1} s ({:.0} objects/s)",
        done as f64 / secs.max(1e-9)
    );
    Ok(())
}

fn parse_ec(s: &str) -> Result<cairn_types::EcScheme, String> {
    s.parse()
}
