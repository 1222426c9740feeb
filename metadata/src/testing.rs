//! The conformance suite of [`MetadataStore`]: [`run_conformance`] runs every case of
//! [`cases`] against a fresh store from a [`StoreFactory`], through the trait only, and fails
//! with the name (and line) of every case that did not hold. Every engine's tests run it: the
//! in-memory store here, the RocksDB store and the Raft store (one node, and three nodes with
//! commands sent through a follower).
//!
//! The cases pin down what the rest of Cairn relies on: buckets, objects and listings
//! (prefix, delimiter, markers, page sizes), write conditions, versioning, tags and ACLs,
//! multipart uploads, access keys and their limits, the GC queue, system values, the
//! datanode registry and the scan of shard references, with the error each refusal gives.
//! Compiled for this crate's tests and with the cargo feature `testing`.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use futures::FutureExt;

use crate::{MetadataError, MetadataStore};

mod access;
mod buckets;
pub(crate) mod fixtures;
mod multipart;
mod objects;
mod system;
mod usage;
mod versions;

/// Why a case failed.
#[derive(Debug)]
pub struct Failure(pub String);

impl From<MetadataError> for Failure {
    fn from(e: MetadataError) -> Self {
        Failure(format!("unexpected error: {e:?}"))
    }
}

/// What a case returns.
pub type CaseResult = Result<(), Failure>;

type CaseFuture<'a> = Pin<Box<dyn Future<Output = CaseResult> + Send + 'a>>;

/// One named case of the suite.
pub struct Case {
    pub name: &'static str,
    run: for<'a> fn(&'a dyn MetadataStore) -> CaseFuture<'a>,
}

/// Makes the fresh, empty stores the cases run on (one per case). It may release the
/// resources of the stores it made before when it makes the next one.
#[async_trait]
pub trait StoreFactory: Send {
    async fn fresh(&mut self) -> Arc<dyn MetadataStore>;
}

#[async_trait]
impl<F, Fut> StoreFactory for F
where
    F: FnMut() -> Fut + Send,
    Fut: Future<Output = Arc<dyn MetadataStore>> + Send,
{
    async fn fresh(&mut self) -> Arc<dyn MetadataStore> {
        self().await
    }
}

/// Fails the case with a message and the line of the check.
macro_rules! fail {
    ($($msg:tt)+) => {
        $crate::testing::Failure(format!("line {}: {}", line!(), format!($($msg)+)))
    };
}

/// Checks a condition.
macro_rules! check {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err($crate::testing::fail!($($msg)+));
        }
    };
}

/// Checks that two values are equal.
macro_rules! check_eq {
    ($a:expr, $b:expr $(,)?) => {{
        match (&$a, &$b) {
            (a, b) if a != b => {
                return Err($crate::testing::fail!(
                    "{} is {:?}, expected {:?}",
                    stringify!($a),
                    a,
                    b
                ));
            }
            _ => {}
        }
    }};
}

/// Checks that a result is an error matching a pattern.
macro_rules! check_err {
    ($e:expr, $pat:pat $(if $guard:expr)?) => {
        match $e {
            Err($pat) $(if $guard)? => {}
            other => {
                return Err($crate::testing::fail!(
                    "{} gave {:?}, expected {}",
                    stringify!($e),
                    other,
                    stringify!($pat)
                ))
            }
        }
    };
}

pub(crate) use {check, check_eq, check_err, fail};

/// A case from an `async fn(&dyn MetadataStore) -> CaseResult`.
macro_rules! case {
    ($module:ident :: $name:ident) => {
        Case {
            name: concat!(stringify!($module), "::", stringify!($name)),
            run: |s| Box::pin($crate::testing::$module::$name(s)),
        }
    };
}

/// Every case of the suite.
pub fn cases() -> Vec<Case> {
    let mut all = Vec::new();
    all.extend(buckets::cases());
    all.extend(objects::cases());
    all.extend(versions::cases());
    all.extend(multipart::cases());
    all.extend(access::cases());
    all.extend(system::cases());
    all.extend(usage::cases());
    all
}

pub(crate) use case;

/// Runs every case on a fresh store each; panics naming every case that failed. Returns the
/// number of cases run.
pub async fn run_conformance<F: StoreFactory>(mut factory: F) -> usize {
    let cases = cases();
    let mut failures = Vec::new();
    for case in &cases {
        let store = factory.fresh().await;
        let outcome = AssertUnwindSafe((case.run)(&*store)).catch_unwind().await;
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(f)) => failures.push(format!("{}: {}", case.name, f.0)),
            Err(panic) => {
                let msg = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                failures.push(format!("{}: panicked: {msg}", case.name));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} conformance cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    cases.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store that loses every write: the suite must notice.
    struct Forgetful(crate::MemoryMetadataStore);

    #[async_trait]
    impl MetadataStore for Forgetful {
        async fn apply(&self, cmd: crate::Command) -> crate::Result<crate::CommandOutput> {
            match cmd {
                crate::Command::CreateBucket(_) => self.0.apply(cmd).await,
                _ => Ok(crate::CommandOutput::Done),
            }
        }
        async fn get_bucket(
            &self,
            n: &cairn_types::BucketName,
        ) -> crate::Result<Option<crate::BucketRecord>> {
            self.0.get_bucket(n).await
        }
        async fn list_buckets(&self) -> crate::Result<Vec<crate::BucketRecord>> {
            self.0.list_buckets().await
        }
        async fn get_object(
            &self,
            b: &cairn_types::BucketName,
            k: &cairn_types::ObjectKey,
        ) -> crate::Result<Option<crate::ObjectRecord>> {
            self.0.get_object(b, k).await
        }
        async fn list_objects(
            &self,
            b: &cairn_types::BucketName,
            q: &crate::ListQuery,
        ) -> crate::Result<crate::ListPage<crate::ObjectRecord>> {
            self.0.list_objects(b, q).await
        }
        async fn get_version(
            &self,
            b: &cairn_types::BucketName,
            k: &cairn_types::ObjectKey,
            s: &crate::VersionSel,
        ) -> crate::Result<Option<crate::VersionRecord>> {
            self.0.get_version(b, k, s).await
        }
        async fn list_versions(
            &self,
            b: &cairn_types::BucketName,
            q: &crate::VersionQuery,
        ) -> crate::Result<crate::VersionPage> {
            self.0.list_versions(b, q).await
        }
        async fn get_access_key(&self, a: &str) -> crate::Result<Option<crate::AccessKeyRecord>> {
            self.0.get_access_key(a).await
        }
        async fn get_bucket_config(
            &self,
            b: &cairn_types::BucketName,
            k: crate::BucketConfigKind,
        ) -> crate::Result<Option<Vec<u8>>> {
            self.0.get_bucket_config(b, k).await
        }
        async fn get_bucket_configs(
            &self,
            b: &cairn_types::BucketName,
        ) -> crate::Result<Vec<(crate::BucketConfigKind, Vec<u8>)>> {
            self.0.get_bucket_configs(b).await
        }
        async fn list_access_keys(&self) -> crate::Result<Vec<crate::AccessKeyRecord>> {
            self.0.list_access_keys().await
        }
        async fn gc_pending(&self, l: usize) -> crate::Result<Vec<(u64, crate::GcEntry)>> {
            self.0.gc_pending(l).await
        }
        async fn get_sys(&self, k: &str) -> crate::Result<Option<Vec<u8>>> {
            self.0.get_sys(k).await
        }
        async fn scan_sys(&self, p: &str) -> crate::Result<Vec<(String, Vec<u8>)>> {
            self.0.scan_sys(p).await
        }
        async fn get_upload(
            &self,
            b: &cairn_types::BucketName,
            k: &cairn_types::ObjectKey,
            u: &str,
        ) -> crate::Result<Option<crate::UploadRecord>> {
            self.0.get_upload(b, k, u).await
        }
        async fn list_parts(
            &self,
            b: &cairn_types::BucketName,
            k: &cairn_types::ObjectKey,
            u: &str,
            a: u32,
            m: usize,
        ) -> crate::Result<(Vec<crate::PartRecord>, bool)> {
            self.0.list_parts(b, k, u, a, m).await
        }
        async fn list_uploads(
            &self,
            b: &cairn_types::BucketName,
            q: &crate::UploadQuery,
        ) -> crate::Result<crate::UploadPage> {
            self.0.list_uploads(b, q).await
        }
        async fn scan_data(
            &self,
            a: Option<crate::DataAddress>,
            l: usize,
        ) -> crate::Result<crate::DataPage> {
            self.0.scan_data(a, l).await
        }
    }

    #[tokio::test]
    async fn a_broken_store_fails_by_case_name() {
        let run = AssertUnwindSafe(run_conformance(|| async {
            Arc::new(Forgetful(crate::MemoryMetadataStore::new())) as Arc<dyn MetadataStore>
        }))
        .catch_unwind()
        .await;
        let msg = match run {
            Ok(n) => panic!("a store that forgets writes passed all {n} cases"),
            Err(p) => p.downcast_ref::<String>().cloned().unwrap_or_default(),
        };
        assert!(msg.contains("objects::put_get_roundtrip: line"), "{msg}");
        assert!(msg.contains("conformance cases failed"), "{msg}");
    }
}
