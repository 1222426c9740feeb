//! Start-up calls to the replicated metadata, retried while no metadata quorum answers.
//!
//! A node that starts while the group elects a leader (it was the leader and comes back
//! with a stale view, or a majority is still starting) sees `MetadataError::Unavailable`:
//! the call certainly did not take effect, and a leader is usually there a moment later.
//! Giving up would make a restart during an election fail; so start-up steps that are safe
//! to repeat go through [`while_unavailable`]. Any other error is returned at once.
//! A leaf: it names no other module of this crate.

use std::future::Future;
use std::time::{Duration, Instant};

use cairn_metadata::MetadataError;

/// How long start-up waits for the metadata group to answer.
pub const START_PATIENCE: Duration = Duration::from_secs(60);

/// Runs `step` until it succeeds, fails with something other than "metadata unavailable",
/// or `START_PATIENCE` has passed.
pub async fn while_unavailable<T, F, Fut>(what: &str, step: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    retry(what, step, unavailable).await
}

/// As [`while_unavailable`], for a step that may also be repeated after an outcome it does
/// not know (a write that is idempotent: doing it twice is doing it once), which a leader
/// change during the step gives.
pub async fn while_unsettled<T, F, Fut>(what: &str, step: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    retry(what, step, |e| unavailable(e) || indeterminate(e)).await
}

async fn retry<T, F, Fut>(
    what: &str,
    mut step: F,
    again: impl Fn(&anyhow::Error) -> bool,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let deadline = Instant::now() + START_PATIENCE;
    loop {
        match step().await {
            Err(e) if again(&e) && Instant::now() < deadline => {
                tracing::warn!(error = %format!("{e:#}"), "{what}: the metadata group did not settle it, trying again");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            r => return r,
        }
    }
}

fn indeterminate(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        matches!(
            c.downcast_ref::<MetadataError>(),
            Some(MetadataError::Indeterminate(_))
        )
    })
}

fn unavailable(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        matches!(
            c.downcast_ref::<MetadataError>(),
            Some(MetadataError::Unavailable(_))
        )
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use anyhow::Context;

    use super::*;

    #[tokio::test]
    async fn unavailable_is_tried_again_and_other_errors_are_not() {
        let calls = AtomicU32::new(0);
        let v = while_unavailable("test", || async {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            if n < 2 {
                Err(MetadataError::Unavailable("no leader".into())).context("reading")
            } else {
                Ok(n)
            }
        })
        .await
        .unwrap();
        assert_eq!(v, 2);

        let calls = AtomicU32::new(0);
        let e = while_unavailable("test", || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(MetadataError::Indeterminate("lost".into())).context("writing")
        })
        .await
        .unwrap_err();
        assert_eq!(calls.load(Ordering::SeqCst), 1, "{e:#}");

        // An idempotent step is repeated after an unknown outcome too.
        let calls = AtomicU32::new(0);
        let v = while_unsettled("test", || async {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            match n {
                0 => Err(MetadataError::Indeterminate("lost".into())).context("writing"),
                1 => Err(MetadataError::Unavailable("no leader".into())).context("writing"),
                _ => Ok(n),
            }
        })
        .await
        .unwrap();
        assert_eq!(v, 2);
    }
}
