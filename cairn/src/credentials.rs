//! Root credentials: from `CAIRN_ROOT_ACCESS_KEY` / `CAIRN_ROOT_SECRET_KEY`, else from the
//! data directory, else generated on first start and saved there (mode 0600).

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use rand::distributions::{Alphanumeric, DistString};
use serde::{Deserialize, Serialize};

pub const FILE_NAME: &str = "root-credentials.json";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RootCredentials {
    pub access_key: String,
    pub secret_key: String,
}

/// Where the credentials came from, so that startup says the right thing.
pub enum Source {
    Environment,
    File,
    Generated,
}

/// The secret datanodes and gateways share: `CAIRN_CLUSTER_SECRET`, else the one saved in
/// the data directory, else a new one saved there (mode 0600).
pub fn cluster_secret(data: &Path) -> anyhow::Result<String> {
    let path = data.join("cluster-secret");
    if let Some(s) = std::env::var("CAIRN_CLUSTER_SECRET")
        .ok()
        .filter(|s| !s.is_empty())
    {
        // Kept, so that a restart without the variable still talks to the cluster.
        if !path.exists() {
            write_private(data, "cluster-secret", s.as_bytes())?;
        }
        return Ok(s);
    }
    if path.exists() {
        let s = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        return Ok(s.trim().to_string());
    }
    let secret = Alphanumeric.sample_string(&mut rand::thread_rng(), 48);
    write_private(data, "cluster-secret", secret.as_bytes())?;
    Ok(secret)
}

/// Saves root credentials in the data directory (a node that joined a cluster adopts the
/// cluster's root key).
pub fn save(data: &Path, creds: &RootCredentials) -> anyhow::Result<()> {
    write_private(data, FILE_NAME, &serde_json::to_vec_pretty(creds)?)
}

/// Writes `name` in `dir` atomically with mode 0600.
fn write_private(dir: &Path, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = dir.join(format!("{name}.tmp"));
    {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("creating {}", tmp.display()))?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, dir.join(name))?;
    Ok(())
}

pub fn load_or_create(data: &Path) -> anyhow::Result<(RootCredentials, Source)> {
    let env = (
        std::env::var("CAIRN_ROOT_ACCESS_KEY")
            .ok()
            .filter(|s| !s.is_empty()),
        std::env::var("CAIRN_ROOT_SECRET_KEY")
            .ok()
            .filter(|s| !s.is_empty()),
    );
    match env {
        (Some(access_key), Some(secret_key)) => {
            return Ok((
                RootCredentials {
                    access_key,
                    secret_key,
                },
                Source::Environment,
            ))
        }
        (None, None) => {}
        _ => anyhow::bail!("set both CAIRN_ROOT_ACCESS_KEY and CAIRN_ROOT_SECRET_KEY, or neither"),
    }
    let path = data.join(FILE_NAME);
    if path.exists() {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let creds: RootCredentials =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        return Ok((creds, Source::File));
    }
    let (access_key, secret_key) = generate_key_pair();
    let creds = RootCredentials {
        access_key,
        secret_key,
    };
    write_private(
        data,
        FILE_NAME,
        serde_json::to_string_pretty(&creds)?.as_bytes(),
    )?;
    Ok((creds, Source::Generated))
}

/// A fresh random access key (`CAIRN` + 15 upper-case letters and digits) and secret (40
/// letters and digits).
pub fn generate_key_pair() -> (String, String) {
    let mut rng = rand::thread_rng();
    (
        format!(
            "CAIRN{}",
            Alphanumeric
                .sample_string(&mut rng, 15)
                .to_ascii_uppercase()
        ),
        Alphanumeric.sample_string(&mut rng, 40),
    )
}
