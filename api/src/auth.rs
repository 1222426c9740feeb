//! Authentication glue: the key ring, SigV4 verification of each request, and the body
//! pipeline (aws-chunked decoding and integrity checks) that every body passes through.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, RwLock};

use axum::extract::Request;
use bytes::{Bytes, BytesMut};
use cairn_metadata::key_limits::KeyLimits;
use cairn_sigv4::{
    decode_aws_chunked, trailer_names, verify_body, AuthError, Authenticated, BodyExpectations,
    ChecksumAlgorithm, ChunkMode, ChunkSigningContext, ExpectedChecksum, PayloadMode, RequestParts,
    SecretLookup, VerifiedHandle,
};
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use time::OffsetDateTime;

use crate::error::{S3Error, S3ErrorCode};
use crate::ApiState;

/// The access keys the gateway accepts (access key → secret) and which one is the root key,
/// kept in memory: loaded from metadata at start, changed at once by this node's admin API
/// (create, delete, disable, enable, root rotation), and brought in line with metadata by
/// the cluster watcher every heartbeat ([`KeyRing::sync`]), so that a change made through
/// any node reaches every gateway.
///
/// A request signed with a deleted or disabled key finds no secret here and is refused with
/// `InvalidAccessKeyId`. Each key's rate-limit override ([`KeyLimits`]) is kept here too,
/// and follows metadata the same way; [`crate::limits`] enforces it.
#[derive(Clone, Default)]
pub struct KeyRing(Arc<RwLock<Ring>>);

#[derive(Default)]
struct Ring {
    keys: HashMap<String, Entry>,
    root: Option<String>,
    /// The [`Ring::clock`] value of the last local root change.
    root_stamp: u64,
    /// Counts local changes; see [`KeyRing::generation`].
    clock: u64,
}

struct Entry {
    status: Status,
    /// The key's rate-limit override (default: none).
    limits: KeyLimits,
    /// The [`Ring::clock`] value of the last local change of this key (0: set from
    /// metadata).
    stamp: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Status {
    Enabled(String),
    Disabled,
    /// Deleted here; forgotten at the first sync that saw metadata after the deletion.
    Deleted,
}

/// What metadata says about the access keys, as the cluster watcher read it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeySnapshot {
    /// Every key that exists (deleted ones do not), access key → secret.
    pub keys: HashMap<String, String>,
    /// The existing keys that are disabled.
    pub disabled: HashSet<String>,
    /// The root access key.
    pub root: Option<String>,
    /// The rate-limit overrides of the keys that have one.
    pub limits: HashMap<String, KeyLimits>,
}

/// What [`KeyRing::sync`] changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Keys now accepted (new, re-enabled or with a new secret).
    pub enabled: Vec<String>,
    /// Keys no longer accepted: disabled or deleted.
    pub disabled: Vec<String>,
    pub deleted: Vec<String>,
    /// The new root key, when it changed.
    pub root: Option<String>,
    /// Keys whose rate-limit override changed.
    pub limits: Vec<String>,
}

impl SyncReport {
    pub fn is_empty(&self) -> bool {
        *self == SyncReport::default()
    }
}

impl KeyRing {
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Ring> {
        self.0.write().unwrap_or_else(|e| e.into_inner())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Ring> {
        self.0.read().unwrap_or_else(|e| e.into_inner())
    }

    fn set(&self, access_key: String, status: Status) {
        let mut ring = self.write();
        ring.clock += 1;
        let stamp = ring.clock;
        let entry = ring.keys.entry(access_key).or_insert(Entry {
            status: Status::Deleted,
            limits: KeyLimits::default(),
            stamp,
        });
        if status == Status::Deleted {
            entry.limits = KeyLimits::default();
        }
        entry.status = status;
        entry.stamp = stamp;
    }

    /// Accepts `access_key` with `secret` (a key created or enabled on this node).
    pub fn insert(&self, access_key: String, secret: String) {
        self.set(access_key, Status::Enabled(secret));
    }

    /// Stops accepting `access_key`, which still exists (disabled on this node).
    pub fn disable(&self, access_key: &str) {
        self.set(access_key.to_string(), Status::Disabled);
    }

    /// Stops accepting `access_key`, which no longer exists (deleted on this node).
    pub fn remove(&self, access_key: &str) {
        self.set(access_key.to_string(), Status::Deleted);
    }

    /// Makes `access_key` the root key (a rotation on this node).
    pub fn set_root(&self, access_key: &str) {
        let mut ring = self.write();
        ring.clock += 1;
        ring.root_stamp = ring.clock;
        ring.root = Some(access_key.to_string());
    }

    /// Sets `access_key`'s rate-limit override (changed on this node); a key this ring does
    /// not know yet gets it from the next sync.
    pub fn set_limits(&self, access_key: &str, limits: KeyLimits) {
        let mut ring = self.write();
        ring.clock += 1;
        let stamp = ring.clock;
        if let Some(entry) = ring.keys.get_mut(access_key) {
            entry.limits = limits;
            entry.stamp = stamp;
        }
    }

    /// `access_key`'s rate-limit override (none for an unknown key).
    pub fn limits(&self, access_key: &str) -> KeyLimits {
        self.read()
            .keys
            .get(access_key)
            .map(|e| e.limits)
            .unwrap_or_default()
    }

    /// The root access key.
    pub fn root(&self) -> Option<String> {
        self.read().root.clone()
    }

    /// Whether `access_key` is the root key.
    pub fn is_root(&self, access_key: &str) -> bool {
        self.read().root.as_deref() == Some(access_key)
    }

    /// The root key and its secret.
    pub fn root_credentials(&self) -> Option<(String, String)> {
        let ring = self.read();
        let root = ring.root.clone()?;
        match &ring.keys.get(&root)?.status {
            Status::Enabled(secret) => Some((root, secret.clone())),
            _ => None,
        }
    }

    /// Whether `access_key` exists, enabled or disabled (as far as this gateway knows: a key
    /// created through another node in the last heartbeat is not known yet).
    pub fn knows(&self, access_key: &str) -> bool {
        self.read()
            .keys
            .get(access_key)
            .is_some_and(|e| e.status != Status::Deleted)
    }

    /// Where the local changes are: take it *before* reading metadata for [`KeyRing::sync`].
    pub fn generation(&self) -> u64 {
        self.read().clock
    }

    /// Brings the ring in line with `snapshot`, read from metadata after
    /// [`KeyRing::generation`] answered `read_started`: keys that metadata no longer has
    /// (deleted) or has disabled stop being accepted, new and re-enabled ones are accepted,
    /// rate-limit overrides are taken as metadata has them, and the root key follows
    /// rotations.
    ///
    /// The race this guards against: the metadata read may have been served before a change
    /// this node made and applied to the ring meanwhile (a key created here would be absent
    /// from the read, a key disabled here still enabled in it). Such a read must not undo the
    /// change, so every key (and the root) changed locally after `read_started` is left
    /// alone this time; the next sync, whose read starts after the change was committed,
    /// decides it. A change whose stamp is not newer than `read_started` was committed (the
    /// admin API changes the ring only after metadata applied the command) before the read
    /// began, and metadata reads are linearizable, so the read reflects it and is trusted —
    /// including its absences: a key missing from metadata is a deleted key.
    pub fn sync(&self, snapshot: &KeySnapshot, read_started: u64) -> SyncReport {
        let mut report = SyncReport::default();
        let mut ring = self.write();
        let mut gone = Vec::new();
        for (ak, entry) in ring.keys.iter_mut() {
            if entry.stamp > read_started {
                continue;
            }
            let want = match snapshot.keys.get(ak) {
                None => {
                    if entry.status != Status::Deleted {
                        report.deleted.push(ak.clone());
                    }
                    gone.push(ak.clone());
                    continue;
                }
                Some(_) if snapshot.disabled.contains(ak) => Status::Disabled,
                Some(secret) => Status::Enabled(secret.clone()),
            };
            if entry.status != want {
                match &want {
                    Status::Enabled(_) => report.enabled.push(ak.clone()),
                    _ => report.disabled.push(ak.clone()),
                }
                entry.status = want;
            }
            let limits = snapshot.limits.get(ak).copied().unwrap_or_default();
            if entry.limits != limits {
                report.limits.push(ak.clone());
                entry.limits = limits;
            }
            entry.stamp = 0;
        }
        for ak in gone {
            ring.keys.remove(&ak);
        }
        for (ak, secret) in &snapshot.keys {
            if ring.keys.contains_key(ak) {
                continue;
            }
            let status = if snapshot.disabled.contains(ak) {
                Status::Disabled
            } else {
                report.enabled.push(ak.clone());
                Status::Enabled(secret.clone())
            };
            let limits = snapshot.limits.get(ak).copied().unwrap_or_default();
            if limits != KeyLimits::default() {
                report.limits.push(ak.clone());
            }
            ring.keys.insert(
                ak.clone(),
                Entry {
                    status,
                    limits,
                    stamp: 0,
                },
            );
        }
        if ring.root_stamp <= read_started && snapshot.root.is_some() && ring.root != snapshot.root
        {
            ring.root = snapshot.root.clone();
            report.root = snapshot.root.clone();
        }
        report.enabled.sort();
        report.disabled.sort();
        report.deleted.sort();
        report.limits.sort();
        report
    }
}

impl SecretLookup for KeyRing {
    fn secret_key(&self, access_key: &str) -> Option<String> {
        match &self.read().keys.get(access_key)?.status {
            Status::Enabled(secret) => Some(secret.clone()),
            _ => None,
        }
    }
}

/// Who sent a request, how its body is protected, and how it reached the gateway (what
/// policy conditions such as `aws:SourceIp` and `s3:authType` look at).
#[derive(Debug, Clone)]
pub struct Caller {
    /// The access key that signed the request; `None` for an anonymous (unsigned) one.
    pub access_key: Option<String>,
    pub payload: PayloadMode,
    chunk_ctx: Option<ChunkSigningContext>,
    /// How the request was sent: where from, over TLS or not, how it was signed.
    pub via: Via,
}

/// How a request reached the gateway.
#[derive(Debug, Clone, Default)]
pub struct Via {
    /// The client's address, when the listener recorded it.
    pub source_ip: Option<IpAddr>,
    /// Whether the connection is TLS.
    pub secure: bool,
    /// `s3:authType`: `REST-HEADER`, `REST-QUERY-STRING` or `POST` (`None`: unsigned).
    pub auth_type: Option<&'static str>,
    /// `s3:signatureversion`: `AWS4-HMAC-SHA256` or `AWS` (SigV2).
    pub signature_version: Option<&'static str>,
}

impl Via {
    /// What `req` shows: its client address, the listener's transport, and where its
    /// signature is (an unsigned request has none).
    pub fn of(st: &ApiState, req: &Request, signed: bool) -> Via {
        let h = req.headers();
        let q = req.uri().query().unwrap_or("");
        let auth = h
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let in_query = q.contains("X-Amz-Signature=") || q.contains("Signature=");
        let (auth_type, v4) = if !signed {
            (None, false)
        } else if !auth.is_empty() {
            (Some("REST-HEADER"), auth.starts_with("AWS4-"))
        } else {
            (
                in_query.then_some("REST-QUERY-STRING"),
                q.contains("X-Amz-Signature="),
            )
        };
        Via {
            source_ip: crate::util::client_ip(req),
            secure: st.secure_transport,
            auth_type,
            signature_version: signed.then_some(if v4 { "AWS4-HMAC-SHA256" } else { "AWS" }),
        }
    }
}

impl Caller {
    /// The caller of a CORS preflight: anonymous, without a body.
    pub fn preflight() -> Caller {
        Caller {
            access_key: None,
            payload: PayloadMode::Unsigned,
            chunk_ctx: None,
            via: Via::default(),
        }
    }

    /// The caller of a browser form upload (POST Object): the key whose signature over the
    /// form's policy was verified (`None`: an anonymous form); the signature covers the
    /// policy, not the body, which is unsigned.
    pub fn form(access_key: Option<String>, via: Via) -> Caller {
        Caller {
            access_key,
            payload: PayloadMode::Unsigned,
            chunk_ctx: None,
            via,
        }
    }

    pub fn is_anonymous(&self) -> bool {
        self.access_key.is_none()
    }

    /// The signing access key, or AccessDenied for an anonymous request (operations only
    /// keys can do: listing one's buckets, creating a bucket).
    pub fn require_key(&self) -> Result<&str, S3Error> {
        self.access_key
            .as_deref()
            .ok_or_else(|| S3Error::new(S3ErrorCode::AccessDenied, "Access Denied"))
    }
}

/// Authenticates `req`: a valid signature names its key; a request without any
/// authentication is anonymous (what it may do is for the ACLs to say). A bad signature is
/// an error, never anonymous.
pub fn authenticate(st: &ApiState, req: &Request) -> Result<Caller, S3Error> {
    let parts = RequestParts {
        method: req.method().as_str(),
        raw_path: req.uri().path(),
        raw_query: req.uri().query(),
        headers: req.headers(),
    };
    match cairn_sigv4::authenticate(&parts, &st.keys, OffsetDateTime::now_utc())? {
        Authenticated::Anonymous => Ok(Caller {
            access_key: None,
            payload: anonymous_payload(req)?,
            chunk_ctx: None,
            via: Via::of(st, req, false),
        }),
        Authenticated::Signed {
            access_key,
            payload,
            chunk_ctx,
            ..
        } => Ok(Caller {
            access_key: Some(access_key),
            payload,
            chunk_ctx,
            via: Via::of(st, req, true),
        }),
    }
}

/// How an unsigned request's body is framed: plain (optionally with its SHA-256 in
/// `x-amz-content-sha256`, verified), or aws-chunked with unsigned chunks and a checksum
/// trailer. Signed streaming modes need a signature.
fn anonymous_payload(req: &Request) -> Result<PayloadMode, S3Error> {
    let Some(v) = req.headers().get("x-amz-content-sha256") else {
        return Ok(PayloadMode::Unsigned);
    };
    let mode = PayloadMode::parse(v.to_str().unwrap_or("").trim())?;
    match mode {
        PayloadMode::StreamingSigned | PayloadMode::StreamingSignedTrailer => Err(S3Error::new(
            S3ErrorCode::AccessDenied,
            "A signed streaming payload needs a signed request",
        )),
        m => Ok(m),
    }
}

/// The request body, decoded and checked: aws-chunked framing removed (chunk and trailer
/// signatures verified), and `x-amz-content-sha256`, `Content-MD5` and `x-amz-checksum-*`
/// verified, with any mismatch surfacing as the stream's last item. The handle tells which
/// checksum was verified once the stream has ended cleanly.
pub fn body_stream(
    caller: &Caller,
    req: Request,
) -> Result<(BoxStream<'static, Result<Bytes, AuthError>>, BodyChecks), S3Error> {
    body_stream_with(caller, req, None)
}

/// [`body_stream`], computing `default_checksum` when the request names no checksum of its
/// own (a part of an upload created with `x-amz-checksum-algorithm`).
pub fn body_stream_with(
    caller: &Caller,
    req: Request,
    default_checksum: Option<ChecksumAlgorithm>,
) -> Result<(BoxStream<'static, Result<Bytes, AuthError>>, BodyChecks), S3Error> {
    let (parts, body) = req.into_parts();
    let raw = body.into_data_stream();
    let (stream, slot) = match ChunkMode::from_payload(caller.payload) {
        Some(mode) => {
            let decoded_len = parts
                .headers
                .get("x-amz-decoded-content-length")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            let dec = decode_aws_chunked(
                raw,
                mode,
                caller.chunk_ctx.clone(),
                trailer_names(&parts.headers),
            )
            .with_decoded_length(decoded_len);
            let slot = dec.trailer_slot();
            (dec.boxed(), Some(slot))
        }
        None => (
            raw.map_err(|e| AuthError::Transport(e.to_string())).boxed(),
            None,
        ),
    };
    let mut expect = BodyExpectations::from_headers(&parts.headers, caller.payload, slot.as_ref())?;
    if expect.checksum.is_none() {
        expect.checksum = default_checksum.map(|a| (a, ExpectedChecksum::ComputeOnly));
    }
    let (stream, handle) = verify_body(stream, expect);
    Ok((stream.boxed(), BodyChecks(handle)))
}

/// What the body checks established, readable after the body ended cleanly.
pub struct BodyChecks(VerifiedHandle);

impl BodyChecks {
    /// The additional checksum (S3 algorithm name such as `CRC32C`, base64 value).
    pub fn checksum(&self) -> Option<(&'static str, String)> {
        self.0
            .get()
            .and_then(|v| v.checksum)
            .map(|(alg, value)| (alg.name(), value))
    }
}

/// Reads a small request body (XML documents) through the same checks, refusing more than
/// `limit` bytes.
pub async fn read_small_body(
    caller: &Caller,
    req: Request,
    limit: usize,
) -> Result<Bytes, S3Error> {
    let (mut stream, _) = body_stream(caller, req)?;
    let mut buf = BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        if buf.len() + chunk.len() > limit {
            return Err(S3Error::new(
                S3ErrorCode::InvalidRequest,
                format!("the request body is larger than {limit} bytes"),
            ));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(keys: &[(&str, &str)], disabled: &[&str], root: &str) -> KeySnapshot {
        KeySnapshot {
            keys: keys
                .iter()
                .map(|(a, s)| (a.to_string(), s.to_string()))
                .collect(),
            disabled: disabled.iter().map(|a| a.to_string()).collect(),
            root: Some(root.to_string()),
            limits: HashMap::new(),
        }
    }

    fn secret(ring: &KeyRing, ak: &str) -> Option<String> {
        ring.secret_key(ak)
    }

    #[test]
    fn sync_follows_metadata_deletions_disables_and_rotations() {
        let ring = KeyRing::default();
        let meta = snapshot(&[("ROOT", "r"), ("ALICE", "a"), ("BOB", "b")], &[], "ROOT");
        let r = ring.sync(&meta, ring.generation());
        assert_eq!(r.enabled, ["ALICE", "BOB", "ROOT"]);
        assert_eq!(r.root.as_deref(), Some("ROOT"));
        assert_eq!(ring.root_credentials(), Some(("ROOT".into(), "r".into())));
        assert!(ring.sync(&meta, ring.generation()).is_empty());

        // Another node disabled ALICE, deleted BOB and rotated the root key.
        let meta = snapshot(
            &[("ROOT", "r"), ("ALICE", "a"), ("NEWROOT", "n")],
            &["ALICE"],
            "NEWROOT",
        );
        let r = ring.sync(&meta, ring.generation());
        assert_eq!(r.disabled, ["ALICE"]);
        assert_eq!(r.deleted, ["BOB"]);
        assert_eq!(r.enabled, ["NEWROOT"]);
        assert_eq!(r.root.as_deref(), Some("NEWROOT"));
        assert_eq!(secret(&ring, "ALICE"), None);
        assert_eq!(secret(&ring, "BOB"), None);
        assert!(ring.knows("ALICE") && !ring.knows("BOB"));
        assert!(ring.is_root("NEWROOT") && !ring.is_root("ROOT"));
        // The old root key is an ordinary key that still works.
        assert_eq!(secret(&ring, "ROOT").as_deref(), Some("r"));

        // Enabled again, and with a new secret.
        let meta = snapshot(
            &[("ROOT", "r2"), ("ALICE", "a"), ("NEWROOT", "n")],
            &[],
            "NEWROOT",
        );
        let r = ring.sync(&meta, ring.generation());
        assert_eq!(r.enabled, ["ALICE", "ROOT"]);
        assert_eq!(secret(&ring, "ALICE").as_deref(), Some("a"));
        assert_eq!(secret(&ring, "ROOT").as_deref(), Some("r2"));
    }

    /// The watcher's race: its metadata read started before this node changed a key (or the
    /// root) and answered with the state from before the change. Applying that read must not
    /// undo the change; the next read (started after it) decides.
    #[test]
    fn a_stale_read_does_not_undo_a_local_change() {
        let ring = KeyRing::default();
        let before = snapshot(&[("ROOT", "r"), ("ALICE", "a"), ("BOB", "b")], &[], "ROOT");
        ring.sync(&before, ring.generation());

        let read_started = ring.generation();
        // Meanwhile, through this node's admin API: CAROL created, ALICE disabled, BOB
        // deleted, the root rotated.
        ring.insert("CAROL".into(), "c".into());
        ring.disable("ALICE");
        ring.remove("BOB");
        ring.insert("NEWROOT".into(), "n".into());
        ring.set_root("NEWROOT");
        // The read answers the state from before all that.
        let r = ring.sync(&before, read_started);
        assert!(r.is_empty(), "{r:?}");
        assert_eq!(secret(&ring, "CAROL").as_deref(), Some("c"));
        assert_eq!(secret(&ring, "ALICE"), None);
        assert_eq!(secret(&ring, "BOB"), None);
        assert!(ring.is_root("NEWROOT"));

        // A read started after the changes sees them committed: nothing changes either, and
        // the deleted key is forgotten.
        let after = snapshot(
            &[
                ("ROOT", "r"),
                ("ALICE", "a"),
                ("CAROL", "c"),
                ("NEWROOT", "n"),
            ],
            &["ALICE"],
            "NEWROOT",
        );
        let r = ring.sync(&after, ring.generation());
        assert!(r.is_empty(), "{r:?}");
        assert!(!ring.0.read().unwrap().keys.contains_key("BOB"));

        // Keys changed locally are trusted to a later read: another node deleting CAROL is
        // seen by the next read.
        let later = snapshot(
            &[("ROOT", "r"), ("ALICE", "a"), ("NEWROOT", "n")],
            &["ALICE"],
            "NEWROOT",
        );
        let r = ring.sync(&later, ring.generation());
        assert_eq!(r.deleted, ["CAROL"]);
        assert_eq!(secret(&ring, "CAROL"), None);
    }

    #[test]
    fn keys_changed_here_are_applied_at_once() {
        let ring = KeyRing::default();
        ring.insert("ALICE".into(), "a".into());
        assert_eq!(secret(&ring, "ALICE").as_deref(), Some("a"));
        ring.disable("ALICE");
        assert_eq!(secret(&ring, "ALICE"), None);
        assert!(ring.knows("ALICE"));
        ring.insert("ALICE".into(), "a".into());
        assert_eq!(secret(&ring, "ALICE").as_deref(), Some("a"));
        ring.remove("ALICE");
        assert_eq!(secret(&ring, "ALICE"), None);
        assert!(!ring.knows("ALICE"));
        // No root until one is set; a root without an enabled key has no credentials.
        assert_eq!(ring.root(), None);
        ring.set_root("ROOT");
        assert_eq!(ring.root_credentials(), None);
        ring.insert("ROOT".into(), "r".into());
        assert_eq!(ring.root_credentials(), Some(("ROOT".into(), "r".into())));
    }
}
