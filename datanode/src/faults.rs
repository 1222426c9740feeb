//! Disk faults for fault campaigns: the seam under a datanode's segment files. Every payload
//! read, record write and segment fsync passes through [`DiskFaults`], which does nothing
//! unless the process was started with `CAIRN_FAILPOINTS=1` *and* the datanode directory
//! holds a file named `FAULTS`. Never set that variable in production.
//!
//! `FAULTS` has one fault per line, reread at most once a second:
//!
//! - `read-eio P`: a payload read fails with EIO with probability P (0..1);
//! - `flip P`: a payload read returns one bit flipped with probability P (silent corruption
//!   the record checksum must catch);
//! - `fsync-eio`: every fsync of a segment fails with EIO (the writer then disables writes);
//! - `enospc`: every record write fails with ENOSPC.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The name of the file that turns faults on in a datanode directory.
pub const FAULTS_FILE: &str = "FAULTS";

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Faults {
    pub read_eio: f64,
    pub flip: f64,
    pub fsync_eio: bool,
    pub enospc: bool,
}

impl Faults {
    /// Parses a `FAULTS` file; unknown lines are ignored (and logged).
    pub fn parse(text: &str) -> Faults {
        let mut f = Faults::default();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let mut words = line.split_whitespace();
            let name = words.next().unwrap_or("");
            let p = words
                .next()
                .and_then(|w| w.parse::<f64>().ok())
                .filter(|p| (0.0..=1.0).contains(p));
            match (name, p) {
                ("read-eio", Some(p)) => f.read_eio = p,
                ("flip", Some(p)) => f.flip = p,
                ("fsync-eio", _) => f.fsync_eio = true,
                ("enospc", _) => f.enospc = true,
                _ => tracing::warn!(line, "unknown line in a FAULTS file"),
            }
        }
        f
    }
}

/// A datanode's fault seam.
pub(crate) struct DiskFaults {
    /// The `FAULTS` file, when fault injection is enabled in this process.
    file: Option<PathBuf>,
    cached: Mutex<(Option<Instant>, Faults)>,
    rng: AtomicU64,
}

impl DiskFaults {
    pub fn new(dir: &Path) -> DiskFaults {
        let enabled = std::env::var("CAIRN_FAILPOINTS").as_deref() == Ok("1");
        if enabled {
            tracing::warn!(dir = %dir.display(), "disk fault injection is enabled (CAIRN_FAILPOINTS=1)");
        }
        DiskFaults {
            file: enabled.then(|| dir.join(FAULTS_FILE)),
            cached: Mutex::new((None, Faults::default())),
            rng: AtomicU64::new(0x2545_F491_4F6C_DD1D),
        }
    }

    fn current(&self) -> Faults {
        let Some(file) = &self.file else {
            return Faults::default();
        };
        let mut c = self.cached.lock().unwrap_or_else(|e| e.into_inner());
        if c.0.is_none_or(|t| t.elapsed() > Duration::from_secs(1)) {
            let text = std::fs::read_to_string(file).unwrap_or_default();
            *c = (Some(Instant::now()), Faults::parse(&text));
        }
        c.1
    }

    /// A number in [0, 1) (xorshift; quality does not matter here).
    fn chance(&self) -> f64 {
        let mut x = self.rng.load(Ordering::Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng.store(x, Ordering::Relaxed);
        (x >> 11) as f64 / (1u64 << 53) as f64
    }

    /// After a payload read into `buf`: may fail it or flip a bit of it.
    pub fn after_read(&self, buf: &mut [u8]) -> io::Result<()> {
        if self.file.is_none() {
            return Ok(());
        }
        let f = self.current();
        if f.read_eio > 0.0 && self.chance() < f.read_eio {
            return Err(io::Error::from_raw_os_error(5)); // EIO
        }
        if f.flip > 0.0 && !buf.is_empty() && self.chance() < f.flip {
            let at = (self.chance() * buf.len() as f64) as usize % buf.len();
            buf[at] ^= 1 << (at % 8);
        }
        Ok(())
    }

    /// Before a record write.
    pub fn before_write(&self) -> io::Result<()> {
        if self.file.is_some() && self.current().enospc {
            return Err(io::Error::from_raw_os_error(28)); // ENOSPC
        }
        Ok(())
    }

    /// Before a segment fsync.
    pub fn before_sync(&self) -> io::Result<()> {
        if self.file.is_some() && self.current().fsync_eio {
            return Err(io::Error::from_raw_os_error(5));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_file_lines() {
        let f = Faults::parse("read-eio 0.25\nflip 1\n\nfsync-eio\nenospc\nbogus 3\nflip 7\n");
        assert_eq!(
            f,
            Faults {
                read_eio: 0.25,
                flip: 1.0,
                fsync_eio: true,
                enospc: true
            }
        );
        assert_eq!(Faults::parse(""), Faults::default());
    }

    #[test]
    fn without_the_variable_a_faults_file_does_nothing() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(FAULTS_FILE),
            "read-eio 1\nfsync-eio\nenospc\n",
        )
        .unwrap();
        let seam = DiskFaults {
            file: None,
            cached: Mutex::new((None, Faults::default())),
            rng: AtomicU64::new(1),
        };
        let mut buf = vec![7u8; 64];
        assert!(seam.after_read(&mut buf).is_ok());
        assert!(seam.before_write().is_ok() && seam.before_sync().is_ok());
        assert_eq!(buf, vec![7u8; 64]);
    }

    #[test]
    fn enabled_faults_fail_and_flip() {
        let dir = tempfile::tempdir().unwrap();
        let seam = DiskFaults {
            file: Some(dir.path().join(FAULTS_FILE)),
            cached: Mutex::new((None, Faults::default())),
            rng: AtomicU64::new(1),
        };
        std::fs::write(dir.path().join(FAULTS_FILE), "flip 1\nfsync-eio\nenospc\n").unwrap();
        let mut buf = vec![0u8; 64];
        seam.after_read(&mut buf).unwrap();
        assert_eq!(buf.iter().map(|b| b.count_ones()).sum::<u32>(), 1);
        assert_eq!(seam.before_sync().unwrap_err().raw_os_error(), Some(5));
        assert_eq!(seam.before_write().unwrap_err().raw_os_error(), Some(28));
    }
}
