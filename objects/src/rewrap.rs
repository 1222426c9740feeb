//! Master key rotation: a new master key is added ([`ObjectService::start_rotation`]), then
//! every data key wrapped by an older one is re-wrapped under it, record by record
//! ([`ObjectService::run_rewrap`]), without touching object data. The pass keeps its place
//! in metadata ([`RewrapProgress`]) after every page, so a node killed in the middle carries
//! on where it stopped; passes repeat until one finds nothing to re-wrap (writes made by a
//! node that had not yet loaded the new key are caught by the next pass). Old master keys
//! stay in the keyring.

use cairn_metadata::master_keys::{self, RewrapProgress};
use cairn_metadata::{Command, CommandOutput, ObjectData, SealedKey};

use crate::{ObjectService, ObjectsError};

/// Records read per page of a pass.
const PAGE: usize = 256;

/// The managed data keys in `data` wrapped by a master key other than `target`.
fn stale_keys<'a>(data: &'a ObjectData, target: u32, out: &mut Vec<&'a SealedKey>) {
    match data {
        ObjectData::Inline(_) | ObjectData::Striped { .. } => {}
        ObjectData::Parts(parts) => parts.iter().for_each(|p| stale_keys(&p.data, target, out)),
        ObjectData::Encrypted(e) => {
            if matches!(e.key, SealedKey::Managed { master, .. } if master != target) {
                out.push(&e.key);
            }
        }
    }
}

impl ObjectService {
    /// Adds a master key and records a rotation towards it (carried out by
    /// [`Self::run_rewrap`]); returns the new key's id.
    pub async fn start_rotation(&self) -> Result<u32, ObjectsError> {
        let id = self.add_master_key().await?;
        self.meta
            .apply(Command::SetRewrapProgress(Some(RewrapProgress {
                target: id,
                ..Default::default()
            })))
            .await?;
        Ok(id)
    }

    /// The recorded rotation, if any.
    pub async fn rewrap_progress(&self) -> Result<Option<RewrapProgress>, ObjectsError> {
        Ok(master_keys::progress(&*self.meta).await?)
    }

    /// Carries the recorded rotation on to its end (nothing when none is under way, or
    /// when this process already runs it), reporting after every page; returns the final
    /// progress.
    pub async fn run_rewrap(
        &self,
        on_progress: impl Fn(&RewrapProgress),
    ) -> Result<Option<RewrapProgress>, ObjectsError> {
        use std::sync::atomic::Ordering;
        if self.keyring.rewrapping.swap(true, Ordering::SeqCst) {
            return self.rewrap_progress().await;
        }
        struct Running<'a>(&'a std::sync::atomic::AtomicBool);
        impl Drop for Running<'_> {
            fn drop(&mut self) {
                self.0.store(false, Ordering::SeqCst);
            }
        }
        let _running = Running(&self.keyring.rewrapping);
        let Some(mut p) = self.rewrap_progress().await? else {
            return Ok(None);
        };
        if p.done {
            return Ok(Some(p));
        }
        self.reload_keyring().await?;
        let ring = self.keyring();
        // A newer key than the one recorded (a rotation started meanwhile) is the target.
        if let Some(active) = ring.active().filter(|a| *a > p.target) {
            p.target = active;
        }
        loop {
            let page = self.meta.scan_data(p.after.clone(), PAGE).await?;
            for e in &page.entries {
                p.scanned += 1;
                let mut stale = Vec::new();
                stale_keys(&e.data, p.target, &mut stale);
                if stale.is_empty() {
                    continue;
                }
                let mut keys = Vec::new();
                for old in stale {
                    let SealedKey::Managed { master, wrapped } = old else {
                        continue;
                    };
                    let dk = ring.unwrap(*master, wrapped)?;
                    let (id, wrapped) = ring.wrap(&dk)?;
                    keys.push((
                        old.clone(),
                        SealedKey::Managed {
                            master: id,
                            wrapped,
                        },
                    ));
                }
                let out = self
                    .meta
                    .apply(Command::RewrapKeys {
                        at: e.address.clone(),
                        keys,
                    })
                    .await?;
                if let CommandOutput::Relocated(n) = out {
                    p.rewrapped += n as u64;
                    p.pass_rewrapped += n as u64;
                }
            }
            p.after = page.next.clone();
            if p.after.is_none() {
                p.passes += 1;
                p.done = p.pass_rewrapped == 0;
                p.pass_rewrapped = 0;
            }
            self.meta
                .apply(Command::SetRewrapProgress(Some(p.clone())))
                .await?;
            on_progress(&p);
            if p.done {
                return Ok(Some(p));
            }
        }
    }
}
