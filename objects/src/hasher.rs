//! The MD5 of a striped body (its ETag), computed on a thread of its own while the stripes
//! are encoded and written: MD5 is the one inherently sequential cost of a PUT, so it must
//! not wait for, nor hold up, the rest of the path.
//!
//! Stripes are handed over in order as shared [`Bytes`] (no copy); each hand-over answers
//! when that stripe has been hashed, so a caller that keeps a stripe "in flight" until both
//! its write and its hashing are done bounds memory by the stripes in flight.

use bytes::Bytes;
use md5::{Digest, Md5};
use tokio::sync::oneshot;

use crate::ObjectsError;

type Job = (Bytes, oneshot::Sender<()>);

/// A running MD5 over the stripes handed to it.
pub(crate) struct StripeHasher {
    tx: std::sync::mpsc::Sender<Job>,
    digest: tokio::task::JoinHandle<[u8; 16]>,
}

impl StripeHasher {
    /// Starts the hashing thread. It ends when the hasher is finished or dropped.
    pub(crate) fn start() -> Self {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let digest = tokio::task::spawn_blocking(move || {
            let mut md5 = Md5::new();
            while let Ok((bytes, done)) = rx.recv() {
                md5.update(&bytes);
                // The caller may have given up on the stripe: nothing to tell then.
                let _ = done.send(());
            }
            md5.finalize().into()
        });
        StripeHasher { tx, digest }
    }

    /// Queues `bytes` (the next stripe); the answer resolves once they are hashed.
    pub(crate) fn hash(
        &self,
        bytes: Bytes,
    ) -> impl std::future::Future<Output = Result<(), ObjectsError>> {
        let (done, hashed) = oneshot::channel();
        let sent = self.tx.send((bytes, done)).is_ok();
        async move {
            if sent && hashed.await.is_ok() {
                Ok(())
            } else {
                Err(ObjectsError::Inconsistent("the MD5 thread stopped".into()))
            }
        }
    }

    /// The MD5 of everything hashed, once all of it is.
    pub(crate) async fn finish(self) -> Result<[u8; 16], ObjectsError> {
        drop(self.tx);
        self.digest
            .await
            .map_err(|e| ObjectsError::Inconsistent(format!("the MD5 thread failed: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_the_stripes_in_order() {
        let h = StripeHasher::start();
        let z = h.hash(Bytes::from_static(b"ab"));
        let a = h.hash(Bytes::from_static(b"cd"));
        let b = h.hash(Bytes::from_static(b"ef"));
        z.await.unwrap();
        a.await.unwrap();
        b.await.unwrap();
        let got = h.finish().await.unwrap();
        let want: [u8; 16] = Md5::digest(b"abcdef").into();
        assert_eq!(got, want);
    }
}
