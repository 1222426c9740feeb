//! The process's file-descriptor budget: raising the soft `RLIMIT_NOFILE` to the hard limit,
//! and fitting the listeners' connection caps under it so that descriptors stay free for
//! RocksDB, segment files and outgoing connections.

use crate::NetError;

/// Descriptors kept out of the connection caps.
pub const RESERVED_FDS: u64 = 1024;

/// The smallest cap [`fit_connection_caps`] gives a listener, however few descriptors there
/// are.
const MIN_CAP: usize = 16;

/// The open-file limit before and after [`raise_nofile_limit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NofileLimit {
    pub before: u64,
    pub soft: u64,
    pub hard: Option<u64>,
}

/// Raises the soft open-file limit to the hard one (or to 2^20 when the hard limit is
/// unlimited, the kernel's usual ceiling), keeping the old limit if the kernel refuses.
pub fn raise_nofile_limit() -> Result<NofileLimit, NetError> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let old = getrlimit(Resource::Nofile);
    let before = old.current.unwrap_or(u64::MAX);
    let target = old.maximum.unwrap_or(1 << 20);
    if before >= target {
        return Ok(NofileLimit {
            before,
            soft: before,
            hard: old.maximum,
        });
    }
    let new = Rlimit {
        current: Some(target),
        maximum: old.maximum,
    };
    match setrlimit(Resource::Nofile, new) {
        Ok(()) => Ok(NofileLimit {
            before,
            soft: target,
            hard: old.maximum,
        }),
        Err(e) if old.maximum.is_none() => {
            // An unlimited hard limit still stops at fs.nr_open: try the common default.
            let fallback = Rlimit {
                current: Some(1 << 16),
                maximum: None,
            };
            match setrlimit(Resource::Nofile, fallback) {
                Ok(()) => Ok(NofileLimit {
                    before,
                    soft: 1 << 16,
                    hard: None,
                }),
                Err(_) => Err(NetError::Rlimit(e.into())),
            }
        }
        Err(e) => Err(NetError::Rlimit(e.into())),
    }
}

/// The soft open-file limit now (`u64::MAX` when unlimited).
pub fn nofile_soft_limit() -> u64 {
    rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(u64::MAX)
}

/// Scales `caps` down (proportionally, each at least 16) so that they add up to at most
/// `fd_limit - RESERVED_FDS`; caps that already fit come back unchanged.
pub fn fit_connection_caps(caps: &[usize], fd_limit: u64) -> Vec<usize> {
    let budget = fd_limit.saturating_sub(RESERVED_FDS);
    let total: u64 = caps.iter().map(|&c| c as u64).sum();
    if total <= budget {
        return caps.to_vec();
    }
    caps.iter()
        .map(|&c| {
            let scaled = (c as u128 * budget as u128 / total.max(1) as u128) as usize;
            scaled.max(MIN_CAP.min(c))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_that_fit_are_unchanged() {
        assert_eq!(
            fit_connection_caps(&[4096, 256, 1024], 20_000),
            vec![4096, 256, 1024]
        );
    }

    #[test]
    fn caps_are_scaled_under_the_budget() {
        let caps = fit_connection_caps(&[4096, 1024, 1024], 4096);
        let sum: usize = caps.iter().sum();
        assert!(sum as u64 <= 4096 - RESERVED_FDS, "{caps:?}");
        assert!(caps[0] > caps[1], "{caps:?}");
        assert_eq!(caps[1], caps[2]);
    }

    #[test]
    fn tiny_limits_keep_a_floor() {
        assert_eq!(fit_connection_caps(&[4096, 256], 1024), vec![16, 16]);
        assert_eq!(fit_connection_caps(&[4, 256], 1024), vec![4, 16]);
    }

    #[test]
    fn raising_keeps_soft_at_most_hard() {
        let l = raise_nofile_limit().expect("raise");
        assert!(l.soft >= l.before, "{l:?}");
        if let Some(h) = l.hard {
            assert!(l.soft <= h, "{l:?}");
        }
        let now = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        assert_eq!(now.current.unwrap_or(u64::MAX), l.soft, "{l:?}");
    }
}
