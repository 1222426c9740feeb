//! Policies in the authorization decision: what a request's bucket and key bring to it (the
//! bucket policy, the signing key's identity policy, Block Public Access and Object
//! Ownership, loaded once per request as a [`Gate`]), the condition values a request offers
//! to policies, and the one rule that combines policies with ownership and ACLs
//! ([`Gate::decide`]). [`crate::access`] calls it for every operation; nothing else decides.
//!
//! The rule, as S3 combines resource policies, identity policies and ACLs:
//!
//! 1. an explicit `Deny` in the bucket policy or the key's policy refuses the request —
//!    except the bucket owner managing the bucket policy, which nothing can lock out;
//! 2. a key **with** an identity policy may do what its policy or the bucket policy allows,
//!    and nothing else: its ownership and ACL grants give it nothing (an operator hands out
//!    such keys to confine them, e.g. a backup tool that may only write one prefix);
//! 3. anyone else (a key without a policy, an anonymous request) may do what the bucket
//!    policy allows, or what ownership and ACLs give (see [`crate::access`]).
//!
//! Block Public Access changes the inputs: `IgnorePublicAcls` drops grants to everyone and
//! to every signed request, `RestrictPublicBuckets` makes a public bucket policy allow
//! nothing to anyone but the bucket owner. Object Ownership `BucketOwnerEnforced` makes ACLs
//! count for nothing (the bucket owner owns every object). Bucket policies never grant the
//! policy operations themselves (GetBucketPolicy, PutBucketPolicy, DeleteBucketPolicy) to
//! anyone but the owner.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use axum::http::HeaderMap;
use cairn_metadata::{BucketConfigKind, BucketRecord, Grant, PublicAccessBlock, TagSet};
use cairn_policy::{ConditionValues, Decision, Policy, PolicyKind, RequestContext};
use cairn_types::{BucketName, ObjectKey};

use crate::auth::Caller;
use crate::error::{S3Error, S3ErrorCode};
use crate::identity::canonical_id;
use crate::op::Op;
use crate::query::Query;
use crate::ApiState;

/// Parsed policies are kept at most this many at a time.
const CACHE_CAP: usize = 4096;

/// Parsed policy documents, by scope and text: a policy is read from metadata with every
/// request (so a change made through any gateway counts at once) but parsed once.
#[derive(Default)]
pub struct PolicyCache(Mutex<HashMap<(String, String), Arc<Policy>>>);

impl PolicyCache {
    /// `doc` parsed as a policy of `kind` (from the cache when it was parsed before).
    pub fn parse(&self, doc: &str, kind: PolicyKind) -> Result<Arc<Policy>, S3Error> {
        let scope = match &kind {
            PolicyKind::Bucket { bucket } => format!("b/{bucket}"),
            PolicyKind::Identity => "k".to_string(),
        };
        let id = (scope, doc.to_string());
        if let Some(p) = self.lock().get(&id) {
            return Ok(p.clone());
        }
        let parsed = Arc::new(Policy::parse(doc.as_bytes(), kind).map_err(malformed)?);
        let mut map = self.lock();
        if map.len() >= CACHE_CAP {
            map.clear();
        }
        map.insert(id, parsed.clone());
        Ok(parsed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Arc<Policy>>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// S3's answer to a policy document it cannot take.
pub fn malformed(e: cairn_policy::PolicyError) -> S3Error {
    S3Error::new(S3ErrorCode::MalformedPolicy, e.to_string())
}

/// Object Ownership of a bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Ownership {
    /// The writer owns what it writes (S3's behaviour before 2023; Cairn's default).
    #[default]
    ObjectWriter,
    /// The writer owns what it writes, unless it gives the bucket owner full control.
    BucketOwnerPreferred,
    /// The bucket owner owns everything; ACLs count for nothing.
    BucketOwnerEnforced,
}

impl Ownership {
    pub fn parse(s: &str) -> Option<Ownership> {
        match s {
            "ObjectWriter" => Some(Ownership::ObjectWriter),
            "BucketOwnerPreferred" => Some(Ownership::BucketOwnerPreferred),
            "BucketOwnerEnforced" => Some(Ownership::BucketOwnerEnforced),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Ownership::ObjectWriter => "ObjectWriter",
            Ownership::BucketOwnerPreferred => "BucketOwnerPreferred",
            Ownership::BucketOwnerEnforced => "BucketOwnerEnforced",
        }
    }
}

/// What a bucket and the caller's key bring to a decision, loaded once per request.
#[derive(Clone, Default)]
pub struct Gate {
    bucket_policy: Option<Arc<Policy>>,
    identity: Option<Arc<Policy>>,
    /// The bucket's settings combined with the cluster's.
    pub pab: PublicAccessBlock,
    pub ownership: Ownership,
    /// The key's name (for `aws:username`).
    key_name: Option<String>,
    /// Whether a loaded policy has conditions on existing object tags.
    pub wants_object_tags: bool,
    /// The bucket's Object Lock configuration (present: Object Lock is on), loaded with the
    /// other documents for the write handlers' default retention.
    pub object_lock: Option<cairn_metadata::object_lock::ObjectLockConfig>,
    /// The bucket's lifecycle rules as stored (for `x-amz-expiration`).
    pub lifecycle: Option<Vec<u8>>,
    /// The bucket's quota and usage as loaded (for refusing a write before its data is
    /// stored; the state machine decides at commit).
    pub quota: Option<cairn_metadata::usage::BucketQuota>,
    pub usage: Option<cairn_metadata::usage::BucketUsage>,
    /// The bucket's default storage class (for writes that name none).
    pub storage_class: Option<String>,
    /// The bucket's default encryption algorithm (`AES256`), if it has one.
    pub encryption: Option<String>,
    versioning: cairn_metadata::VersioningState,
    /// The bucket's stored ACL (JSON grants), if it has one.
    bucket_acl: Option<Vec<u8>>,
    /// A stored policy that this build cannot read (written by another version): it
    /// refuses everything but the owner's repair of the bucket policy, as a Deny of all.
    unreadable_policy: bool,
}

impl Gate {
    /// Refuses early, before any data is stored, a write of `bytes` (and `objects`) that the
    /// bucket's quota certainly cannot take: one that adds to the usage as loaded (`adds`: a
    /// new version, a part) and does not fit beside it, or one larger than the whole quota.
    /// Whatever passes here is decided exactly at commit, by the state machine.
    pub fn check_quota(&self, bytes: u64, objects: u64, adds: bool) -> Result<(), S3Error> {
        let (Some(q), Some(u)) = (&self.quota, &self.usage) else {
            return Ok(());
        };
        let base = if adds {
            *u
        } else {
            cairn_metadata::usage::BucketUsage::default()
        };
        base.check(q, bytes, objects).map_err(|why| {
            S3Error::new(
                crate::error::S3ErrorCode::QuotaExceeded,
                format!("Bucket quota exceeded: {why}"),
            )
        })
    }

    /// Whether every write adds a version (versioning enabled, as loaded).
    pub fn versioned(&self) -> bool {
        self.versioning == cairn_metadata::VersioningState::Enabled
    }

    /// Loads the policies and settings that govern `caller` on `bucket` (none for requests
    /// on the service).
    pub async fn load(
        st: &Arc<ApiState>,
        caller: &Caller,
        bucket: Option<&BucketRecord>,
    ) -> Result<Gate, S3Error> {
        // Two reads: the cluster's settings with the key's policy, the bucket's documents.
        let (pab, key_policy) = st
            .objects
            .access_settings(caller.access_key.as_deref())
            .await?;
        let mut gate = Gate {
            pab,
            ..Gate::default()
        };
        let mut texts = Vec::new();
        if let Some(doc) = key_policy {
            match st.policies.parse(&doc, PolicyKind::Identity) {
                Ok(p) => gate.identity = Some(p),
                Err(e) => gate.unreadable("the signing key's identity policy", &e),
            }
            texts.push(doc);
        }
        if let Some(b) = bucket {
            for (kind, value) in st.objects.bucket_configs(&b.name).await? {
                match kind {
                    BucketConfigKind::Policy => {
                        let doc = text(value)?;
                        let kind = PolicyKind::Bucket {
                            bucket: b.name.as_str().to_string(),
                        };
                        match st.policies.parse(&doc, kind) {
                            Ok(p) => gate.bucket_policy = Some(p),
                            Err(e) => gate.unreadable("the bucket policy", &e),
                        }
                        texts.push(doc);
                    }
                    BucketConfigKind::PublicAccessBlock => {
                        gate.pab = gate.pab.union(decode_pab(&value)?);
                    }
                    BucketConfigKind::OwnershipControls => {
                        gate.ownership = Ownership::parse(&text(value)?).unwrap_or_default();
                    }
                    BucketConfigKind::Acl => gate.bucket_acl = Some(value),
                    BucketConfigKind::ObjectLock => {
                        gate.object_lock = Some(
                            cairn_metadata::object_lock::ObjectLockConfig::decode(&value)?,
                        )
                    }
                    BucketConfigKind::Lifecycle => gate.lifecycle = Some(value),
                    BucketConfigKind::Versioning => {
                        gate.versioning = cairn_metadata::VersioningState::parse(Some(&value))?
                    }
                    BucketConfigKind::Quota => {
                        gate.quota = Some(cairn_metadata::usage::BucketQuota::decode(&value)?)
                    }
                    BucketConfigKind::Usage => {
                        gate.usage = Some(cairn_metadata::usage::BucketUsage::decode(&value)?)
                    }
                    BucketConfigKind::StorageClass => gate.storage_class = Some(text(value)?),
                    BucketConfigKind::Encryption => gate.encryption = Some(text(value)?),
                    _ => {}
                }
            }
        }
        let mentions = |what: &str| texts.iter().any(|t| t.to_ascii_lowercase().contains(what));
        gate.wants_object_tags = mentions("existingobjecttag");
        // The key's name is one more read: only for policies that ask for it.
        if let (Some(ak), true) = (caller.access_key.as_deref(), mentions("aws:username")) {
            gate.key_name = st.objects.access_key(ak).await?.map(|r| r.name);
        }
        Ok(gate)
    }

    /// The bucket's ACL grants, as loaded with the gate (absent: the owner's full control).
    pub fn bucket_grants(&self, bucket: &BucketRecord) -> Result<Vec<Grant>, S3Error> {
        match &self.bucket_acl {
            Some(raw) => serde_json::from_slice(raw)
                .map_err(|e| S3Error::internal(format!("stored bucket ACL: {e}"))),
            None => Ok(cairn_objects::private_acl(&bucket.owner)),
        }
    }

    /// Fails closed on a stored policy that does not parse any more: logged, and counted
    /// as a Deny of everything (the bucket owner can still get, put and delete the bucket
    /// policy; the operator can replace a key's policy).
    fn unreadable(&mut self, what: &str, e: &S3Error) {
        tracing::warn!(policy = what, error = %e.message, "a stored policy does not parse; it denies everything");
        self.unreadable_policy = true;
    }

    /// Whether ACL grants count (not under `BucketOwnerEnforced`).
    pub fn acls_count(&self) -> bool {
        self.ownership != Ownership::BucketOwnerEnforced
    }

    /// Whether grants to everyone and to every signed request count.
    pub fn public_grants_count(&self) -> bool {
        !self.pab.ignore_public_acls
    }

    /// The one decision: may the request go ahead? `owner` says whether the caller owns the
    /// bucket; `acl_allows` is asked, only when it matters, whether ownership and ACLs give
    /// the caller what the operation needs.
    pub async fn decide<F, Fut>(
        &self,
        req: &PolicyRequest<'_>,
        owner: bool,
        acl_allows: F,
    ) -> Result<bool, S3Error>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<bool, S3Error>>,
    {
        let conditions = req.conditions(self);
        let ids = principal_ids(req.caller);
        let ctx = RequestContext {
            principal: &ids,
            anonymous: req.caller.access_key.is_none(),
            action: req.action,
            resource: &req.resource(),
            conditions: &conditions,
        };
        let identity = self.identity.as_ref().map(|p| p.evaluate(&ctx));
        let bucket = self.bucket_policy.as_ref().map(|p| {
            let d = p.evaluate(&ctx);
            let restricted = self.pab.restrict_public_buckets && !owner && p.is_public();
            match d {
                Decision::Allow if restricted => Decision::NotApplicable,
                d => d,
            }
        });
        let manages_policy = matches!(
            req.op,
            Op::GetBucketPolicy | Op::PutBucketPolicy | Op::DeleteBucketPolicy
        );
        if self.unreadable_policy
            || identity == Some(Decision::Deny)
            || bucket == Some(Decision::Deny)
        {
            return Ok(owner && manages_policy);
        }
        let bucket_allows = bucket == Some(Decision::Allow) && !manages_policy;
        if self.identity.is_some() {
            return Ok(identity == Some(Decision::Allow) || bucket_allows);
        }
        if bucket_allows {
            return Ok(true);
        }
        acl_allows().await
    }

    /// Whether a bucket policy or an identity policy takes part in decisions.
    pub fn has_policies(&self) -> bool {
        self.bucket_policy.is_some() || self.identity.is_some()
    }

    /// Whether the bucket policy is public (AWS's definition).
    pub fn policy_is_public(&self) -> bool {
        self.bucket_policy.as_ref().is_some_and(|p| p.is_public())
    }
}

/// Every name a policy's `Principal` may give the caller: its access key, its canonical
/// user id, and the ARN forms `arn:aws:iam::<access key>:root` and
/// `arn:aws:iam::<access key>:user/<access key>`.
pub fn principal_ids(caller: &Caller) -> Vec<String> {
    match caller.access_key.as_deref() {
        None => Vec::new(),
        Some(ak) => vec![
            ak.to_string(),
            canonical_id(ak),
            format!("arn:aws:iam::{ak}:root"),
            format!("arn:aws:iam::{ak}:user/{ak}"),
        ],
    }
}

/// One request as policies see it.
pub struct PolicyRequest<'a> {
    pub op: Op,
    pub caller: &'a Caller,
    pub action: &'static str,
    pub bucket: Option<&'a BucketName>,
    pub key: Option<&'a ObjectKey>,
    pub q: &'a Query,
    pub headers: &'a HeaderMap,
    /// The addressed object's tags (`s3:ExistingObjectTag/…`), when loaded.
    pub existing_tags: Option<&'a TagSet>,
    /// `s3:prefix` when it is not the query's (a HEAD of a missing key asks whether the
    /// caller may list that key).
    pub prefix: Option<&'a str>,
}

impl PolicyRequest<'_> {
    /// `arn:aws:s3:::bucket[/key]`, or `*` for requests on the service.
    pub fn resource(&self) -> String {
        match (self.bucket, self.key) {
            (Some(b), Some(k)) => format!("arn:aws:s3:::{}/{}", b.as_str(), k.as_str()),
            (Some(b), None) => format!("arn:aws:s3:::{}", b.as_str()),
            _ => "*".to_string(),
        }
    }

    /// The condition keys this request has values for.
    fn conditions(&self, gate: &Gate) -> ConditionValues {
        let mut c = ConditionValues::new();
        let via = &self.caller.via;
        if let Some(ip) = via.source_ip {
            let ip = match ip {
                IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
                v4 => v4,
            };
            c.insert("aws:SourceIp", ip.to_string());
        }
        c.insert("aws:SecureTransport", via.secure.to_string());
        let now = time::OffsetDateTime::now_utc();
        if let Ok(t) = now.format(&time::format_description::well_known::Rfc3339) {
            c.insert("aws:CurrentTime", t);
        }
        c.insert("aws:EpochTime", now.unix_timestamp().to_string());
        match self.caller.access_key.as_deref() {
            Some(ak) => {
                c.insert("aws:userid", ak);
                c.insert("aws:PrincipalType", "User");
                if let Some(name) = &gate.key_name {
                    c.insert("aws:username", name.clone());
                }
            }
            None => c.insert("aws:PrincipalType", "Anonymous"),
        }
        if let Some(t) = via.auth_type {
            c.insert("s3:authType", t);
        }
        if let Some(v) = via.signature_version {
            c.insert("s3:signatureversion", v);
        }
        if matches!(
            self.op,
            Op::ListObjects | Op::ListObjectsV2 | Op::ListObjectVersions | Op::HeadBucket
        ) || self.prefix.is_some()
        {
            let prefix = self.prefix.or_else(|| self.q.get("prefix"));
            // A listing without a prefix lists from the start: `s3:prefix` is empty.
            c.insert("s3:prefix", prefix.unwrap_or("").to_string());
            for (param, key) in [("delimiter", "s3:delimiter"), ("max-keys", "s3:max-keys")] {
                if let Some(v) = self.q.get(param) {
                    c.insert(key, v.to_string());
                }
            }
        }
        if let Some(v) = self.q.get("versionId") {
            c.insert("s3:versionid", v.to_string());
        }
        for (header, key) in [("referer", "aws:Referer"), ("user-agent", "aws:UserAgent")] {
            if let Some(v) = self.headers.get(header).and_then(|v| v.to_str().ok()) {
                c.insert(key, v.to_string());
            }
        }
        for name in HEADER_KEYS {
            if let Some(v) = self.headers.get(*name).and_then(|v| v.to_str().ok()) {
                c.insert(&format!("s3:{name}"), v.to_string());
            }
        }
        // Object Lock keys, from the lock headers of a write (PutObject, CopyObject,
        // CreateMultipartUpload).
        for (header, key) in [
            ("x-amz-object-lock-mode", "s3:object-lock-mode"),
            (
                "x-amz-object-lock-retain-until-date",
                "s3:object-lock-retain-until-date",
            ),
            ("x-amz-object-lock-legal-hold", "s3:object-lock-legal-hold"),
        ] {
            if let Some(v) = self.headers.get(header).and_then(|v| v.to_str().ok()) {
                c.insert(key, v.trim().to_string());
            }
        }
        if let Some(until) = self
            .headers
            .get("x-amz-object-lock-retain-until-date")
            .and_then(|v| v.to_str().ok())
            .and_then(cairn_metadata::object_lock::parse_timestamp)
        {
            let left = (until - cairn_types::clock::now_ms()).max(0);
            let days = (left + 86_399_999) / 86_400_000;
            c.insert("s3:object-lock-remaining-retention-days", days.to_string());
        }
        if let Ok(Some(tags)) = crate::tags::from_header(self.headers) {
            for (k, v) in tags {
                c.insert(&format!("s3:RequestObjectTag/{k}"), v);
                c.insert("s3:RequestObjectTagKeys", k);
            }
        }
        if let Some(tags) = self.existing_tags {
            for (k, v) in tags {
                c.insert(&format!("s3:ExistingObjectTag/{k}"), v.clone());
            }
        }
        c
    }
}

/// Request headers offered to policies as `s3:<header>` condition keys.
const HEADER_KEYS: &[&str] = &[
    "x-amz-acl",
    "x-amz-grant-read",
    "x-amz-grant-write",
    "x-amz-grant-read-acp",
    "x-amz-grant-write-acp",
    "x-amz-grant-full-control",
    "x-amz-server-side-encryption",
    "x-amz-server-side-encryption-aws-kms-key-id",
    "x-amz-server-side-encryption-customer-algorithm",
    "x-amz-copy-source",
    "x-amz-metadata-directive",
    "x-amz-storage-class",
    "x-amz-content-sha256",
    "x-amz-object-ownership",
];

fn text(value: Vec<u8>) -> Result<String, S3Error> {
    String::from_utf8(value).map_err(|_| S3Error::internal("a stored bucket document is not UTF-8"))
}

fn decode_pab(value: &[u8]) -> Result<PublicAccessBlock, S3Error> {
    serde_json::from_slice(value)
        .map_err(|e| S3Error::internal(format!("stored public access block: {e}")))
}

async fn load_text(
    st: &Arc<ApiState>,
    bucket: &BucketName,
    kind: BucketConfigKind,
) -> Result<Option<String>, S3Error> {
    match st.objects.bucket_config(bucket, kind).await? {
        None => Ok(None),
        Some(b) => String::from_utf8(b)
            .map(Some)
            .map_err(|_| S3Error::internal("a stored bucket document is not UTF-8")),
    }
}

/// The bucket's own Block Public Access settings, if set.
pub async fn stored_public_access_block(
    st: &Arc<ApiState>,
    bucket: &BucketName,
) -> Result<Option<PublicAccessBlock>, S3Error> {
    match st
        .objects
        .bucket_config(bucket, BucketConfigKind::PublicAccessBlock)
        .await?
    {
        None => Ok(None),
        Some(b) => decode_pab(&b).map(Some),
    }
}

/// The bucket's Object Ownership setting, if set.
pub async fn bucket_ownership(
    st: &Arc<ApiState>,
    bucket: &BucketName,
) -> Result<Option<Ownership>, S3Error> {
    Ok(load_text(st, bucket, BucketConfigKind::OwnershipControls)
        .await?
        .and_then(|t| Ownership::parse(&t)))
}

/// The bucket policy as it was put, if set.
pub async fn bucket_policy_text(
    st: &Arc<ApiState>,
    bucket: &BucketName,
) -> Result<Option<String>, S3Error> {
    load_text(st, bucket, BucketConfigKind::Policy).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Via;

    fn bucket_policy(doc: &str) -> Option<Arc<Policy>> {
        let kind = PolicyKind::Bucket {
            bucket: "bkt".into(),
        };
        Some(Arc::new(Policy::parse(doc.as_bytes(), kind).unwrap()))
    }

    /// Decides `op` on `bkt/k` for `caller`, with ownership and ACLs answering `acl`.
    fn decide(gate: &Gate, caller: &Caller, op: Op, owner: bool, acl: bool) -> bool {
        let bucket = BucketName::new("bkt".to_string()).unwrap();
        let key = ObjectKey::new("k".to_string()).unwrap();
        let q = Query::default();
        let headers = HeaderMap::new();
        let req = PolicyRequest {
            op,
            caller,
            action: op.policy_action(&q),
            bucket: Some(&bucket),
            key: Some(&key),
            q: &q,
            headers: &headers,
            existing_tags: None,
            prefix: None,
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(gate.decide(&req, owner, || async move { Ok(acl) }))
            .unwrap()
    }

    #[test]
    fn the_rule_combines_policies_with_ownership_and_acls() {
        let anon = Caller::form(None, Via::default());
        let alice = Caller::form(Some("ALICE".into()), Via::default());
        // No policy: ownership and ACLs decide.
        let none = Gate::default();
        assert!(decide(&none, &anon, Op::GetObject, false, true));
        assert!(!decide(&none, &anon, Op::GetObject, false, false));

        // A bucket policy's Allow grants what ACLs do not.
        let open = Gate {
            bucket_policy: bucket_policy(
                r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":["s3:GetObject","s3:GetBucketPolicy"],"Resource":["arn:aws:s3:::bkt/*","arn:aws:s3:::bkt"]}]}"#,
            ),
            ..Gate::default()
        };
        assert!(decide(&open, &anon, Op::GetObject, false, false));
        assert!(!decide(&open, &anon, Op::PutObject, false, false));
        // ... but never the policy operations to anyone but the owner.
        assert!(!decide(&open, &alice, Op::GetBucketPolicy, false, false));
        // RestrictPublicBuckets: a public policy gives outsiders nothing, the owner keeps
        // what it has.
        let mut restricted = open.clone();
        restricted.pab.restrict_public_buckets = true;
        assert!(!decide(&restricted, &anon, Op::GetObject, false, false));
        assert!(decide(&restricted, &alice, Op::GetObject, true, true));

        // An explicit Deny beats ownership, except the owner managing the policy.
        let deny = Gate {
            bucket_policy: bucket_policy(
                r#"{"Statement":[{"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":["arn:aws:s3:::bkt/*","arn:aws:s3:::bkt"]}]}"#,
            ),
            ..Gate::default()
        };
        assert!(!decide(&deny, &alice, Op::GetObject, true, true));
        assert!(decide(&deny, &alice, Op::PutBucketPolicy, true, true));
        assert!(!decide(&deny, &alice, Op::PutBucketPolicy, false, true));

        // A key with an identity policy has what it allows, ownership and ACLs aside.
        let confined = Gate {
            identity: Some(Arc::new(
                Policy::parse(
                    br#"{"Statement":[{"Effect":"Allow","Action":"s3:PutObject","Resource":"arn:aws:s3:::bkt/*"}]}"#,
                    PolicyKind::Identity,
                )
                .unwrap(),
            )),
            ..Gate::default()
        };
        assert!(decide(&confined, &alice, Op::PutObject, false, false));
        assert!(!decide(&confined, &alice, Op::GetObject, true, true));
        // A stored policy this build cannot read denies everything but its repair.
        let broken = Gate {
            unreadable_policy: true,
            ..Gate::default()
        };
        assert!(!decide(&broken, &alice, Op::GetObject, true, true));
        assert!(decide(&broken, &alice, Op::DeleteBucketPolicy, true, true));
        let mut confined_open = confined.clone();
        confined_open.bucket_policy = open.bucket_policy.clone();
        assert!(decide(&confined_open, &alice, Op::GetObject, false, false));
    }

    #[test]
    fn ownership_names_round_trip() {
        for o in [
            Ownership::ObjectWriter,
            Ownership::BucketOwnerPreferred,
            Ownership::BucketOwnerEnforced,
        ] {
            assert_eq!(Ownership::parse(o.as_str()), Some(o));
        }
        assert_eq!(Ownership::parse("objectwriter"), None);
    }
}
