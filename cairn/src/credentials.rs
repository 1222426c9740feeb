//! Root credentials: from `CAIRN_ROOT_ACCESS_KEY` / `CAIRN_ROOT_SECRET_KEY`, else from the
//! data directory, else generated on first start and saved there (mode 0600); the cluster
//! secret (at least [`MIN_CLUSTER_SECRET_LEN`] bytes); and the private data directories
//! (mode 0700) that hold them, the metadata and the segment files.

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
#[derive(Clone, Copy)]
pub enum Source {
    Environment,
    File,
    Generated,
}

/// The shortest cluster secret a server accepts, in bytes. The secret authenticates every
/// internal call (datanodes, Raft) and keys console sessions, so it must not be guessable.
pub const MIN_CLUSTER_SECRET_LEN: usize = 32;

/// Length of a generated cluster secret (letters and digits).
const GENERATED_CLUSTER_SECRET_LEN: usize = 48;

/// The secret datanodes and gateways share: `CAIRN_CLUSTER_SECRET`, else the one saved in
/// the data directory, else a new one saved there (mode 0600). A secret shorter than
/// [`MIN_CLUSTER_SECRET_LEN`] bytes (or a variable set but empty) is refused.
pub fn cluster_secret(data: &Path) -> anyhow::Result<String> {
    resolve_cluster_secret(std::env::var("CAIRN_CLUSTER_SECRET").ok(), data)
}

fn resolve_cluster_secret(env: Option<String>, data: &Path) -> anyhow::Result<String> {
    let path = data.join("cluster-secret");
    if let Some(s) = env {
        check_cluster_secret(&s, "CAIRN_CLUSTER_SECRET")?;
        // Kept, so that a restart without the variable still talks to the cluster.
        if !path.exists() {
            write_private(data, "cluster-secret", s.as_bytes())?;
        }
        return Ok(s);
    }
    if path.exists() {
        let s = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let s = s.trim().to_string();
        check_cluster_secret(&s, &path.display().to_string())?;
        return Ok(s);
    }
    let secret = Alphanumeric.sample_string(&mut rand::thread_rng(), GENERATED_CLUSTER_SECRET_LEN);
    write_private(data, "cluster-secret", secret.as_bytes())?;
    Ok(secret)
}

/// Refuses a cluster secret shorter than [`MIN_CLUSTER_SECRET_LEN`] bytes, naming where it
/// came from and how to make a good one.
fn check_cluster_secret(secret: &str, origin: &str) -> anyhow::Result<()> {
    if secret.len() < MIN_CLUSTER_SECRET_LEN {
        anyhow::bail!(
            "the cluster secret from {origin} is {} bytes long; it must be at least \
             {MIN_CLUSTER_SECRET_LEN} (make one with `openssl rand -hex 32`, and give every \
             node of the cluster the same)",
            secret.len()
        );
    }
    Ok(())
}

/// Creates `dir` (and missing parents) with mode 0700: the data directories hold the
/// secrets, the metadata and the object data. An existing directory that group or others
/// may enter is narrowed to 0700, or a warning says that it could not be.
pub fn private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating directory {}", dir.display()))?;
    let mode = std::fs::metadata(dir)
        .with_context(|| format!("reading the mode of {}", dir.display()))?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o077 != 0 {
        match std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)) {
            Ok(()) => tracing::warn!(
                dir = %dir.display(),
                "the directory was mode {mode:03o} (open to other users); it is now 0700"
            ),
            Err(e) => tracing::warn!(
                dir = %dir.display(),
                error = %e,
                "the directory is mode {mode:03o}: other users may read Cairn's data; make it 0700"
            ),
        }
    }
    Ok(())
}

/// Saves root credentials in the data directory (a node that joined a cluster adopts the
/// cluster's root key).
pub fn save(data: &Path, creds: &RootCredentials) -> anyhow::Result<()> {
    write_private(data, FILE_NAME, &serde_json::to_vec_pretty(creds)?)
}

/// Writes `name` in `dir` atomically with mode 0600.
pub(crate) fn write_private(dir: &Path, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let tmp = dir.join(format!("{name}.tmp"));
    {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("creating {}", tmp.display()))?;
        // The mode above applies only when the file is new: a leftover keeps its own.
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn short_cluster_secrets_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        for short in ["", "s3cret", &"x".repeat(MIN_CLUSTER_SECRET_LEN - 1)] {
            let err = resolve_cluster_secret(Some(short.to_string()), dir.path())
                .expect_err("a short secret from the environment");
            assert!(err.to_string().contains("at least 32"), "{err}");
            assert!(err.to_string().contains("CAIRN_CLUSTER_SECRET"), "{err}");
            // Nothing was saved for the next start.
            assert!(!dir.path().join("cluster-secret").exists());
        }
        // A short secret saved in the data directory (an older release accepted one).
        std::fs::write(dir.path().join("cluster-secret"), "s3cret\n").unwrap();
        let err = resolve_cluster_secret(None, dir.path()).expect_err("a short saved secret");
        assert!(err.to_string().contains("cluster-secret"), "{err}");
        std::fs::write(dir.path().join("cluster-secret"), "\n").unwrap();
        assert!(resolve_cluster_secret(None, dir.path()).is_err());
    }

    #[test]
    fn good_cluster_secrets_are_kept_private() {
        let dir = tempfile::tempdir().unwrap();
        let given = "0123456789abcdef0123456789abcdef";
        assert_eq!(
            resolve_cluster_secret(Some(given.into()), dir.path()).unwrap(),
            given
        );
        let saved = dir.path().join("cluster-secret");
        assert_eq!(mode(&saved), 0o600);
        // The next start without the variable reads it back.
        assert_eq!(resolve_cluster_secret(None, dir.path()).unwrap(), given);

        // Generated: long enough, saved with mode 0600, the same on the next start.
        let dir = tempfile::tempdir().unwrap();
        let generated = resolve_cluster_secret(None, dir.path()).unwrap();
        assert!(generated.len() >= MIN_CLUSTER_SECRET_LEN, "{generated}");
        assert_eq!(mode(&dir.path().join("cluster-secret")), 0o600);
        assert_eq!(resolve_cluster_secret(None, dir.path()).unwrap(), generated);
    }

    #[test]
    fn data_directories_are_private() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("a/b/data");
        private_dir(&data).unwrap();
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&tmp.path().join("a")), 0o700);
        // An existing directory open to others is narrowed.
        let open = tmp.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
        private_dir(&open).unwrap();
        assert_eq!(mode(&open), 0o700);
        // A leftover temporary file does not pass its wider mode on.
        let tmp_file = data.join(format!("{FILE_NAME}.tmp"));
        std::fs::write(&tmp_file, "old").unwrap();
        std::fs::set_permissions(&tmp_file, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_private(&data, FILE_NAME, b"{}").unwrap();
        assert_eq!(mode(&data.join(FILE_NAME)), 0o600);
        assert!(!tmp_file.exists());
    }
}
