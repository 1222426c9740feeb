//! `cairn key`: create, list, disable, enable and delete the access keys of a running
//! server, rotate the root key, set a key's rate limits and its identity policy, through
//! its admin API
//! (`/admin/keys`). Each key is also
//! an S3 user: besides the key pair it has the canonical user id that ACLs and Owner
//! elements name, and a display name (its name).

use anyhow::{bail, Context};
use cairn_api::identity::{canonical_id, display_name};
use serde::Deserialize;

use super::client::Connection;

#[derive(clap::Args, Debug, Clone)]
pub struct KeyArgs {
    #[command(flatten)]
    pub conn: Connection,
    #[command(subcommand)]
    pub action: KeyAction,
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum KeyAction {
    /// Create an access key for NAME; prints it with its secret (shown only this once),
    /// canonical user id and display name.
    Create {
        /// The key's name (its display name in ACLs and listings).
        name: String,
        /// Use this access key instead of a generated one.
        #[arg(long)]
        access_key: Option<String>,
        /// Use this secret instead of a generated one.
        #[arg(long)]
        secret_key: Option<String>,
        /// Give the key this identity policy (a JSON file in the IAM policy language): it may
        /// then do exactly what the policy (or a bucket policy) allows, nothing more.
        #[arg(long, value_name = "FILE")]
        policy: Option<std::path::PathBuf>,
    },
    /// Give ACCESS_KEY an identity policy (a JSON file; `-` reads standard input), replacing
    /// any it has: the key may then do exactly what the policy (or a bucket policy) allows —
    /// its ownership and ACL grants no longer count. Every gateway applies it at once.
    SetPolicy {
        access_key: String,
        #[arg(value_name = "FILE")]
        file: std::path::PathBuf,
    },
    /// Print ACCESS_KEY's identity policy.
    GetPolicy { access_key: String },
    /// Remove ACCESS_KEY's identity policy: it has its ownership and ACL rights again.
    DeletePolicy { access_key: String },
    /// List the access keys (no secrets) with their canonical user ids, display names,
    /// states (root, enabled, disabled) and rate limits (requests and bytes per second:
    /// the key's own, or `default` for the server's `--key-ops-per-sec`/`--key-bytes-per-sec`).
    List,
    /// Delete ACCESS_KEY for good: requests signed with it are refused (InvalidAccessKeyId)
    /// on every gateway within a heartbeat, and its console sessions end. Its buckets and
    /// objects stay, still owned by it; the id is never used again. Not the root key.
    Delete { access_key: String },
    /// Disable ACCESS_KEY: refused like a deleted key (and its console sessions end) until
    /// it is enabled again. Not the root key.
    Disable { access_key: String },
    /// Enable a disabled ACCESS_KEY again.
    Enable { access_key: String },
    /// Set ACCESS_KEY's rate limits, replacing the server's defaults for it: beyond them its
    /// requests get 503 SlowDown with Retry-After. Each gateway enforces them on the
    /// requests it serves; every gateway applies a change within a heartbeat.
    SetLimit {
        access_key: String,
        /// Requests per second; `unlimited` for none whatever the default; 0 removes the
        /// key's own limit (the default applies again).
        #[arg(long, value_parser = parse_ops)]
        ops_per_sec: Option<LimitArg>,
        /// Body bytes per second, uploads and downloads (`10MiB`, `500KB`, plain bytes);
        /// `unlimited`; 0 removes the key's own limit.
        #[arg(long, value_parser = parse_bytes)]
        bytes_per_sec: Option<LimitArg>,
        /// Remove both of the key's own limits (the defaults apply again).
        #[arg(long, conflicts_with_all = ["ops_per_sec", "bytes_per_sec"])]
        clear: bool,
    },
    /// Make a new key the root key (generated, or the one given); prints it once. The old
    /// root key keeps working as an ordinary key until you delete it (`cairn key delete`),
    /// once clients and CAIRN_ROOT_ACCESS_KEY/CAIRN_ROOT_SECRET_KEY use the new one.
    RotateRoot {
        /// Use this access key instead of a generated one (it must be new).
        #[arg(long)]
        access_key: Option<String>,
        /// Use this secret instead of a generated one.
        #[arg(long)]
        secret_key: Option<String>,
    },
}

#[derive(Deserialize)]
struct Created {
    access_key: String,
    secret_key: String,
    name: String,
    #[serde(default)]
    previous_root: Option<String>,
}

#[derive(Deserialize)]
struct Listed {
    access_key: String,
    name: String,
    #[serde(default)]
    root: bool,
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default)]
    limits: Limits,
}

/// A key's rate limits as the admin API shows them: per dimension `null` (the default), a
/// number or `"unlimited"`.
#[derive(Deserialize, Default)]
struct Limits {
    #[serde(default)]
    ops_per_sec: serde_json::Value,
    #[serde(default)]
    bytes_per_sec: serde_json::Value,
}

#[derive(Deserialize)]
struct LimitsChanged {
    access_key: String,
    limits: Limits,
}

/// A limit given on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitArg {
    /// Per second; 0 removes the key's own limit.
    PerSec(u64),
    Unlimited,
}

impl LimitArg {
    fn json(self) -> serde_json::Value {
        match self {
            LimitArg::PerSec(n) => n.into(),
            LimitArg::Unlimited => "unlimited".into(),
        }
    }
}

fn parse_ops(s: &str) -> Result<LimitArg, String> {
    if s.trim().eq_ignore_ascii_case("unlimited") {
        return Ok(LimitArg::Unlimited);
    }
    s.trim()
        .parse()
        .map(LimitArg::PerSec)
        .map_err(|_| format!("{s:?}: expected a whole number of requests or `unlimited`"))
}

fn parse_bytes(s: &str) -> Result<LimitArg, String> {
    if s.trim().eq_ignore_ascii_case("unlimited") {
        return Ok(LimitArg::Unlimited);
    }
    cairn_api::budget::parse_size(s).map(LimitArg::PerSec)
}

/// One dimension of a key's limits, as `cairn key` prints it.
fn limit_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => "default".into(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
struct Changed {
    access_key: String,
    state: String,
}

pub fn run(args: KeyArgs) -> anyhow::Result<()> {
    match args.action {
        KeyAction::Create {
            name,
            access_key,
            secret_key,
            policy,
        } => {
            let policy = policy.map(|f| read_policy(&f)).transpose()?;
            let body = serde_json::json!({
                "name": name,
                "access_key": access_key,
                "secret_key": secret_key,
                "policy": policy,
            })
            .to_string();
            let text = call(&args.conn, "POST", "/admin/keys", &body)?;
            let k: Created = serde_json::from_str(&text)
                .with_context(|| format!("unexpected answer from the admin API: {text}"))?;
            print!("{}", created_text(&k));
        }
        KeyAction::SetPolicy { access_key, file } => {
            let doc = read_policy(&file)?;
            let path = format!("/admin/keys/{}/policy", path_segment(&access_key));
            call(&args.conn, "PUT", &path, &doc.to_string())?;
            println!("access key {access_key}: policy set");
        }
        KeyAction::GetPolicy { access_key } => {
            let path = format!("/admin/keys/{}/policy", path_segment(&access_key));
            println!("{}", call(&args.conn, "GET", &path, "")?.trim_end());
        }
        KeyAction::DeletePolicy { access_key } => {
            let path = format!("/admin/keys/{}/policy", path_segment(&access_key));
            call(&args.conn, "DELETE", &path, "")?;
            println!("access key {access_key}: policy removed");
        }
        KeyAction::List => {
            let text = call(&args.conn, "GET", "/admin/keys", "")?;
            let keys: Vec<Listed> = serde_json::from_str(&text)
                .with_context(|| format!("unexpected answer from the admin API: {text}"))?;
            print!("{}", list_text(&keys));
        }
        KeyAction::Delete { access_key } => {
            change(
                &args.conn,
                "DELETE",
                &format!("/admin/keys/{}", path_segment(&access_key)),
            )?;
        }
        KeyAction::Disable { access_key } => {
            let path = format!("/admin/keys/{}/disable", path_segment(&access_key));
            change(&args.conn, "POST", &path)?;
        }
        KeyAction::Enable { access_key } => {
            let path = format!("/admin/keys/{}/enable", path_segment(&access_key));
            change(&args.conn, "POST", &path)?;
        }
        KeyAction::SetLimit {
            access_key,
            ops_per_sec,
            bytes_per_sec,
            clear,
        } => {
            let mut body = serde_json::Map::new();
            if clear {
                body.insert("clear".into(), true.into());
            }
            if let Some(l) = ops_per_sec {
                body.insert("ops_per_sec".into(), l.json());
            }
            if let Some(l) = bytes_per_sec {
                body.insert("bytes_per_sec".into(), l.json());
            }
            if body.is_empty() {
                bail!("give --ops-per-sec, --bytes-per-sec or --clear");
            }
            let path = format!("/admin/keys/{}/limits", path_segment(&access_key));
            let text = call(
                &args.conn,
                "POST",
                &path,
                &serde_json::Value::Object(body).to_string(),
            )?;
            let c: LimitsChanged = serde_json::from_str(&text)
                .with_context(|| format!("unexpected answer from the admin API: {text}"))?;
            println!(
                "access key {}: requests per second {}, bytes per second {}",
                c.access_key,
                limit_text(&c.limits.ops_per_sec),
                limit_text(&c.limits.bytes_per_sec)
            );
        }
        KeyAction::RotateRoot {
            access_key,
            secret_key,
        } => {
            let body = serde_json::json!({
                "access_key": access_key,
                "secret_key": secret_key,
            })
            .to_string();
            let text = call(&args.conn, "POST", "/admin/keys/rotate-root", &body)?;
            let k: Created = serde_json::from_str(&text)
                .with_context(|| format!("unexpected answer from the admin API: {text}"))?;
            print!("{}", rotated_text(&k));
        }
    }
    Ok(())
}

/// A policy file (`-`: standard input), which must at least be JSON (the server checks the
/// rest and says what is wrong).
fn read_policy(file: &std::path::Path) -> anyhow::Result<serde_json::Value> {
    let text = if file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).context("reading the policy from stdin")?
    } else {
        std::fs::read_to_string(file)
            .with_context(|| format!("reading the policy file {}", file.display()))?
    };
    serde_json::from_str(&text).with_context(|| format!("{} is not JSON", file.display()))
}

/// A delete, disable or enable; prints what happened.
fn change(conn: &Connection, method: &str, path: &str) -> anyhow::Result<()> {
    let text = call(conn, method, path, "")?;
    let c: Changed = serde_json::from_str(&text)
        .with_context(|| format!("unexpected answer from the admin API: {text}"))?;
    println!("access key {} {}", c.access_key, c.state);
    Ok(())
}

/// `s` as one path segment: letters, digits and `-._~` as they are, other bytes
/// percent-encoded (access keys are letters and digits; a root key from the environment
/// might not be).
fn path_segment(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn call(conn: &Connection, method: &str, path: &str, body: &str) -> anyhow::Result<String> {
    let reply = conn.call(method, path, body)?;
    if !reply.ok() {
        bail!(
            "the server answered {}: {}",
            reply.status,
            reply.body.trim()
        );
    }
    Ok(reply.body)
}

fn created_text(k: &Created) -> String {
    format!(
        "access key:        {}\nsecret key:        {}\ncanonical user id: {}\ndisplay name:      {}\n",
        k.access_key,
        k.secret_key,
        canonical_id(&k.access_key),
        display_name(&k.access_key, &k.name)
    )
}

fn rotated_text(k: &Created) -> String {
    let mut out = format!(
        "New root key (the secret is shown only this once):\n{}",
        created_text(k)
    );
    if let Some(old) = &k.previous_root {
        out.push_str(&format!(
            "\nThe previous root key {old} keeps working as an ordinary key (its buckets stay \
             its own). Set CAIRN_ROOT_ACCESS_KEY/CAIRN_ROOT_SECRET_KEY to the new key wherever \
             they are used, move clients over, then run `cairn key delete {old}`.\n"
        ));
    }
    out
}

fn list_text(keys: &[Listed]) -> String {
    let mut out =
        String::from("ACCESS KEY\tCANONICAL USER ID\tDISPLAY NAME\tSTATE\tOPS/S\tBYTES/S\n");
    for k in keys {
        let state = match (k.root, k.enabled) {
            (true, _) => "root",
            (false, true) => "enabled",
            (false, false) => "disabled",
        };
        out.push_str(&format!(
            "{}\t{}\t{}\t{state}\t{}\t{}\n",
            k.access_key,
            canonical_id(&k.access_key),
            display_name(&k.access_key, &k.name),
            limit_text(&k.limits.ops_per_sec),
            limit_text(&k.limits.bytes_per_sec)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_the_user_of_a_key() {
        let k = Created {
            access_key: "AKEXAMPLE0000001".into(),
            secret_key: "s3cr3t-s3cr3t-s3cr3t".into(),
            name: "alice".into(),
            previous_root: None,
        };
        let text = created_text(&k);
        assert!(text.contains("access key:        AKEXAMPLE0000001\n"));
        assert!(text.contains("secret key:        s3cr3t-s3cr3t-s3cr3t\n"));
        assert!(text.contains(&format!(
            "canonical user id: {}\n",
            canonical_id("AKEXAMPLE0000001")
        )));
        assert!(text.contains("display name:      alice\n"));
        let list = list_text(&[
            Listed {
                access_key: "AKEXAMPLE0000001".into(),
                name: String::new(),
                root: false,
                enabled: true,
                limits: Limits::default(),
            },
            Listed {
                access_key: "AKEXAMPLE0000002".into(),
                name: "bob".into(),
                root: false,
                enabled: false,
                limits: Limits {
                    ops_per_sec: 20.into(),
                    bytes_per_sec: "unlimited".into(),
                },
            },
        ]);
        assert!(list.ends_with("\tbob\tdisabled\t20\tunlimited\n"), "{list}");
        assert!(
            list.contains("\tAKEXAMPLE0000001\tenabled\tdefault\tdefault\n"),
            "{list}"
        );
    }

    #[test]
    fn rotation_says_what_to_do_with_the_old_root_key() {
        let k = Created {
            access_key: "NEWROOT000000001".into(),
            secret_key: "new-secret-new-secret".into(),
            name: "root".into(),
            previous_root: Some("OLDROOT000000001".into()),
        };
        let text = rotated_text(&k);
        assert!(
            text.contains("secret key:        new-secret-new-secret\n"),
            "{text}"
        );
        assert!(text.contains("cairn key delete OLDROOT000000001"), "{text}");
    }

    #[test]
    fn limits_are_numbers_sizes_or_unlimited() {
        assert_eq!(parse_ops("20"), Ok(LimitArg::PerSec(20)));
        assert_eq!(parse_ops("0"), Ok(LimitArg::PerSec(0)));
        assert_eq!(parse_ops("Unlimited"), Ok(LimitArg::Unlimited));
        assert!(parse_ops("20/s").is_err());
        assert!(parse_ops("-1").is_err());
        assert_eq!(parse_bytes("10MiB"), Ok(LimitArg::PerSec(10 << 20)));
        assert_eq!(parse_bytes("500"), Ok(LimitArg::PerSec(500)));
        assert_eq!(parse_bytes("unlimited"), Ok(LimitArg::Unlimited));
        assert!(parse_bytes("fast").is_err());
        assert_eq!(LimitArg::Unlimited.json(), serde_json::json!("unlimited"));
        assert_eq!(limit_text(&serde_json::Value::Null), "default");
    }

    #[test]
    fn access_keys_are_one_path_segment() {
        assert_eq!(path_segment("AKIA0123abc"), "AKIA0123abc");
        assert_eq!(path_segment("a/b c%"), "a%2Fb%20c%25");
    }
}
