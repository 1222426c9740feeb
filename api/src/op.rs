//! The operation table: every S3 request is classified once, here, into an [`Op`] named as
//! AWS names its operations, and each operation declares in one place what it needs
//! ([`Op::access`]) and which resources beyond its target it touches ([`Op::reads_source`]).
//! The router dispatches on the `Op`, [`crate::access`] authorizes from it, and the metrics
//! label and tracing span carry its name; nothing else looks at methods or sub-resources to
//! decide what a request is. A request shape the table does not know is `NotImplemented`
//! (a feature Cairn lacks) or `MethodNotAllowed`, never another operation.

use axum::http::{HeaderMap, Method};
use cairn_metadata::Permission;

use crate::error::{S3Error, S3ErrorCode};
pub use crate::query::Query;

/// What a request addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The service (`/`).
    Service,
    /// A bucket.
    Bucket,
    /// An object (a key in a bucket).
    Object,
}

/// What the caller needs before an operation's handler may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Nobody's credentials: a CORS preflight, which only reveals the bucket's CORS rules.
    Public,
    /// A request signed with any known key (its own buckets: ListBuckets, CreateBucket).
    AnyKey,
    /// The bucket's owner alone (its configuration, versioning, deletion, object tags).
    BucketOwner,
    /// This permission on the bucket, from its owner or its ACL.
    Bucket(Permission),
    /// This permission on the addressed object version, from its owner or its ACL.
    Object(Permission),
}

macro_rules! ops {
    ($($(#[$doc:meta])* $name:ident => $access:expr, $action:literal,)*) => {
        /// Every S3 operation Cairn serves.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Op {
            $($(#[$doc])* $name,)*
        }

        impl Op {
            /// Every operation, in table order.
            pub const ALL: &'static [Op] = &[$(Op::$name,)*];

            /// The operation's name, as AWS names it.
            pub fn name(self) -> &'static str {
                match self {
                    $(Op::$name => stringify!($name),)*
                }
            }

            /// What the caller needs on the target from ownership and ACLs (see [`Access`]).
            pub fn access(self) -> Access {
                use Access::*;
                use Permission::*;
                match self {
                    $(Op::$name => $access,)*
                }
            }

            /// The policy action (`s3:…`) of the operation on the current version; empty for
            /// a preflight, which no policy governs. [`Op::policy_action`] picks the
            /// version-specific action where a version is named.
            fn base_action(self) -> &'static str {
                match self {
                    $(Op::$name => concat!("s3:", $action),)*
                }
            }
        }
    };
}

ops! {
    ListBuckets => AnyKey, "ListAllMyBuckets",
    CreateBucket => AnyKey, "CreateBucket",
    DeleteBucket => BucketOwner, "DeleteBucket",
    HeadBucket => Bucket(Read), "ListBucket",
    ListObjects => Bucket(Read), "ListBucket",
    ListObjectsV2 => Bucket(Read), "ListBucket",
    ListObjectVersions => Bucket(Read), "ListBucketVersions",
    ListMultipartUploads => Bucket(Read), "ListBucketMultipartUploads",
    GetBucketLocation => BucketOwner, "GetBucketLocation",
    GetBucketVersioning => BucketOwner, "GetBucketVersioning",
    PutBucketVersioning => BucketOwner, "PutBucketVersioning",
    GetBucketAcl => Bucket(ReadAcp), "GetBucketAcl",
    PutBucketAcl => Bucket(WriteAcp), "PutBucketAcl",
    GetBucketCors => BucketOwner, "GetBucketCORS",
    PutBucketCors => BucketOwner, "PutBucketCORS",
    DeleteBucketCors => BucketOwner, "PutBucketCORS",
    GetBucketTagging => BucketOwner, "GetBucketTagging",
    PutBucketTagging => BucketOwner, "PutBucketTagging",
    DeleteBucketTagging => BucketOwner, "PutBucketTagging",
    GetBucketPolicyStatus => BucketOwner, "GetBucketPolicyStatus",
    GetBucketNotificationConfiguration => BucketOwner, "GetBucketNotification",
    GetBucketLogging => BucketOwner, "GetBucketLogging",
    GetBucketAccelerateConfiguration => BucketOwner, "GetAccelerateConfiguration",
    GetBucketRequestPayment => BucketOwner, "GetBucketRequestPayment",
    GetBucketLifecycleConfiguration => BucketOwner, "GetLifecycleConfiguration",
    /// Also the legacy PutBucketLifecycle (the same `?lifecycle` PUT).
    PutBucketLifecycleConfiguration => BucketOwner, "PutLifecycleConfiguration",
    DeleteBucketLifecycle => BucketOwner, "PutLifecycleConfiguration",
    GetBucketEncryption => BucketOwner, "GetEncryptionConfiguration",
    /// The bucket's default encryption (SSE-S3) for writes that ask for none.
    PutBucketEncryption => BucketOwner, "PutEncryptionConfiguration",
    DeleteBucketEncryption => BucketOwner, "PutEncryptionConfiguration",
    GetObjectLockConfiguration => BucketOwner, "GetBucketObjectLockConfiguration",
    /// Enables Object Lock (where versioning is enabled) and sets its default retention.
    PutObjectLockConfiguration => BucketOwner, "PutBucketObjectLockConfiguration",
    GetBucketOwnershipControls => BucketOwner, "GetBucketOwnershipControls",
    /// The bucket's Object Ownership: who owns new objects, whether ACLs count.
    PutBucketOwnershipControls => BucketOwner, "PutBucketOwnershipControls",
    DeleteBucketOwnershipControls => BucketOwner, "PutBucketOwnershipControls",
    GetBucketPolicy => BucketOwner, "GetBucketPolicy",
    PutBucketPolicy => BucketOwner, "PutBucketPolicy",
    DeleteBucketPolicy => BucketOwner, "DeleteBucketPolicy",
    GetPublicAccessBlock => BucketOwner, "GetBucketPublicAccessBlock",
    PutPublicAccessBlock => BucketOwner, "PutBucketPublicAccessBlock",
    DeletePublicAccessBlock => BucketOwner, "PutBucketPublicAccessBlock",
    GetBucketWebsite => BucketOwner, "GetBucketWebsite",
    DeleteBucketWebsite => BucketOwner, "DeleteBucketWebsite",
    GetBucketReplication => BucketOwner, "GetReplicationConfiguration",
    DeleteBucketReplication => BucketOwner, "PutReplicationConfiguration",
    /// The objects its body names are in the bucket: WRITE on the bucket covers them all.
    DeleteObjects => Bucket(Write), "DeleteObject",
    /// A browser's form upload (`POST /bucket`): a PutObject whose key and caller come from
    /// the form in its body, so it is authorized by its handler once the form's signed
    /// policy has been checked (see `post_object`), not by the router.
    PostObject => Bucket(Write), "PutObject",
    GetObject => Object(Read), "GetObject",
    HeadObject => Object(Read), "GetObject",
    GetObjectAttributes => Object(Read), "GetObjectAttributes",
    PutObject => Bucket(Write), "PutObject",
    /// Also READ on the copy source (`x-amz-copy-source`).
    CopyObject => Bucket(Write), "PutObject",
    DeleteObject => Bucket(Write), "DeleteObject",
    GetObjectAcl => Object(ReadAcp), "GetObjectAcl",
    PutObjectAcl => Object(WriteAcp), "PutObjectAcl",
    GetObjectTagging => BucketOwner, "GetObjectTagging",
    PutObjectTagging => BucketOwner, "PutObjectTagging",
    DeleteObjectTagging => BucketOwner, "DeleteObjectTagging",
    GetObjectRetention => BucketOwner, "GetObjectRetention",
    /// Shortening or removing a GOVERNANCE retention also needs
    /// `s3:BypassGovernanceRetention` (see `object_lock`).
    PutObjectRetention => BucketOwner, "PutObjectRetention",
    GetObjectLegalHold => BucketOwner, "GetObjectLegalHold",
    PutObjectLegalHold => BucketOwner, "PutObjectLegalHold",
    CreateMultipartUpload => Bucket(Write), "PutObject",
    UploadPart => Bucket(Write), "PutObject",
    /// Also READ on the copy source (`x-amz-copy-source`).
    UploadPartCopy => Bucket(Write), "PutObject",
    CompleteMultipartUpload => Bucket(Write), "PutObject",
    AbortMultipartUpload => Bucket(Write), "AbortMultipartUpload",
    ListParts => Bucket(Write), "ListMultipartUploadParts",
    /// A browser's CORS preflight (`OPTIONS`), sent without credentials.
    PreflightRequest => Public, "",
}

/// Query parameters that select a sub-resource of a bucket or an object. A request names
/// at most one; parameters not listed here (`prefix`, `versionId`, `partNumber`, `x-id`, the
/// presigning parameters, …) modify an operation without changing which one it is.
const SUBRESOURCES: &[&str] = &[
    "accelerate",
    "acl",
    "analytics",
    "attributes",
    "cors",
    "delete",
    "encryption",
    "intelligent-tiering",
    "inventory",
    "legal-hold",
    "lifecycle",
    "location",
    "logging",
    "metrics",
    "notification",
    "object-lock",
    "ownershipControls",
    "policy",
    "policyStatus",
    "publicAccessBlock",
    "replication",
    "requestPayment",
    "restore",
    "retention",
    "select",
    "tagging",
    "torrent",
    "uploadId",
    "uploads",
    "versioning",
    "versions",
    "website",
];

fn method_not_allowed() -> S3Error {
    S3Error::method_not_allowed()
}

fn not_implemented(method: &Method, sub: &str, target: Target) -> S3Error {
    let on = match target {
        Target::Object => "an object",
        _ => "a bucket",
    };
    S3Error::not_implemented(&format!("{method} of the `{sub}` sub-resource of {on}"))
}

impl Op {
    /// Classifies a request by its method, what it addresses, its query and the headers
    /// that change the operation (`x-amz-copy-source`).
    pub fn classify(
        method: &Method,
        target: Target,
        q: &Query,
        headers: &HeaderMap,
    ) -> Result<Op, S3Error> {
        let mut subs = SUBRESOURCES.iter().copied().filter(|s| q.has(s));
        let sub = subs.next();
        if let Some(second) = subs.next() {
            return Err(S3Error::new(
                S3ErrorCode::InvalidRequest,
                format!(
                    "A request names one sub-resource; this one names `{}` and `{second}`",
                    sub.unwrap_or_default()
                ),
            ));
        }
        if *method == Method::OPTIONS {
            return match target {
                Target::Service => Err(method_not_allowed()),
                _ => Ok(Op::PreflightRequest),
            };
        }
        let copy = headers.contains_key("x-amz-copy-source");
        use Method as M;
        let m = method.clone();
        let op = match target {
            Target::Service => match m {
                M::GET => Op::ListBuckets,
                _ => return Err(method_not_allowed()),
            },
            Target::Bucket => match (sub, m) {
                (None, M::GET) if q.get("list-type") == Some("2") => Op::ListObjectsV2,
                (None, M::GET) => Op::ListObjects,
                (None, M::HEAD) => Op::HeadBucket,
                (None, M::PUT) => Op::CreateBucket,
                (None, M::DELETE) => Op::DeleteBucket,
                (Some("versions"), M::GET) => Op::ListObjectVersions,
                (Some("uploads"), M::GET) => Op::ListMultipartUploads,
                (Some("location"), M::GET) => Op::GetBucketLocation,
                (Some("versioning"), M::GET) => Op::GetBucketVersioning,
                (Some("versioning"), M::PUT) => Op::PutBucketVersioning,
                (Some("delete"), M::POST) => Op::DeleteObjects,
                (None, M::POST) => Op::PostObject,
                (Some("acl"), M::GET) => Op::GetBucketAcl,
                (Some("acl"), M::PUT) => Op::PutBucketAcl,
                (Some("cors"), M::GET) => Op::GetBucketCors,
                (Some("cors"), M::PUT) => Op::PutBucketCors,
                (Some("cors"), M::DELETE) => Op::DeleteBucketCors,
                (Some("tagging"), M::GET) => Op::GetBucketTagging,
                (Some("tagging"), M::PUT) => Op::PutBucketTagging,
                (Some("tagging"), M::DELETE) => Op::DeleteBucketTagging,
                (Some("policyStatus"), M::GET) => Op::GetBucketPolicyStatus,
                (Some("notification"), M::GET) => Op::GetBucketNotificationConfiguration,
                (Some("logging"), M::GET) => Op::GetBucketLogging,
                (Some("accelerate"), M::GET) => Op::GetBucketAccelerateConfiguration,
                (Some("requestPayment"), M::GET) => Op::GetBucketRequestPayment,
                (Some("lifecycle"), M::GET) => Op::GetBucketLifecycleConfiguration,
                (Some("lifecycle"), M::PUT) => Op::PutBucketLifecycleConfiguration,
                (Some("lifecycle"), M::DELETE) => Op::DeleteBucketLifecycle,
                (Some("encryption"), M::GET) => Op::GetBucketEncryption,
                (Some("encryption"), M::PUT) => Op::PutBucketEncryption,
                (Some("encryption"), M::DELETE) => Op::DeleteBucketEncryption,
                (Some("object-lock"), M::GET) => Op::GetObjectLockConfiguration,
                (Some("object-lock"), M::PUT) => Op::PutObjectLockConfiguration,
                (Some("ownershipControls"), M::GET) => Op::GetBucketOwnershipControls,
                (Some("ownershipControls"), M::PUT) => Op::PutBucketOwnershipControls,
                (Some("ownershipControls"), M::DELETE) => Op::DeleteBucketOwnershipControls,
                (Some("policy"), M::GET) => Op::GetBucketPolicy,
                (Some("policy"), M::PUT) => Op::PutBucketPolicy,
                (Some("policy"), M::DELETE) => Op::DeleteBucketPolicy,
                (Some("publicAccessBlock"), M::GET) => Op::GetPublicAccessBlock,
                (Some("publicAccessBlock"), M::PUT) => Op::PutPublicAccessBlock,
                (Some("publicAccessBlock"), M::DELETE) => Op::DeletePublicAccessBlock,
                (Some("website"), M::GET) => Op::GetBucketWebsite,
                (Some("website"), M::DELETE) => Op::DeleteBucketWebsite,
                (Some("replication"), M::GET) => Op::GetBucketReplication,
                (Some("replication"), M::DELETE) => Op::DeleteBucketReplication,
                // Setting a configuration Cairn cannot honour, or one it does not know.
                (
                    Some(
                        sub @ ("notification"
                        | "logging"
                        | "accelerate"
                        | "requestPayment"
                        | "lifecycle"
                        | "encryption"
                        | "object-lock"
                        | "website"
                        | "replication"
                        | "analytics"
                        | "intelligent-tiering"
                        | "inventory"
                        | "metrics"),
                    ),
                    m @ (M::PUT | M::POST | M::GET | M::DELETE),
                ) => return Err(not_implemented(&m, sub, target)),
                _ => return Err(method_not_allowed()),
            },
            Target::Object => match (sub, m) {
                (None, M::GET) => Op::GetObject,
                (None, M::HEAD) => Op::HeadObject,
                (None, M::PUT) if copy => Op::CopyObject,
                (None, M::PUT) => Op::PutObject,
                (None, M::DELETE) => Op::DeleteObject,
                (Some("attributes"), M::GET) => Op::GetObjectAttributes,
                (Some("acl"), M::GET) => Op::GetObjectAcl,
                (Some("acl"), M::PUT) => Op::PutObjectAcl,
                (Some("tagging"), M::GET) => Op::GetObjectTagging,
                (Some("tagging"), M::PUT) => Op::PutObjectTagging,
                (Some("tagging"), M::DELETE) => Op::DeleteObjectTagging,
                (Some("uploads"), M::POST) => Op::CreateMultipartUpload,
                (Some("uploadId"), M::PUT) if copy => Op::UploadPartCopy,
                (Some("uploadId"), M::PUT) => Op::UploadPart,
                (Some("uploadId"), M::POST) => Op::CompleteMultipartUpload,
                (Some("uploadId"), M::DELETE) => Op::AbortMultipartUpload,
                (Some("uploadId"), M::GET) => Op::ListParts,
                (Some("retention"), M::GET) => Op::GetObjectRetention,
                (Some("retention"), M::PUT) => Op::PutObjectRetention,
                (Some("legal-hold"), M::GET) => Op::GetObjectLegalHold,
                (Some("legal-hold"), M::PUT) => Op::PutObjectLegalHold,
                (
                    Some(sub @ ("restore" | "select" | "torrent")),
                    m @ (M::PUT | M::POST | M::GET | M::DELETE),
                ) => return Err(not_implemented(&m, sub, target)),
                _ => return Err(method_not_allowed()),
            },
        };
        Ok(op)
    }

    /// The policy action of the operation as this request makes it (`s3:GetObjectVersion`
    /// for a GetObject naming a `versionId`, and so on); empty for a preflight.
    pub fn policy_action(self, q: &Query) -> &'static str {
        if self == Op::PreflightRequest {
            return "";
        }
        if q.get("versionId").is_some() {
            let versioned = match self {
                Op::GetObject | Op::HeadObject => Some("s3:GetObjectVersion"),
                Op::DeleteObject => Some("s3:DeleteObjectVersion"),
                Op::GetObjectAcl => Some("s3:GetObjectVersionAcl"),
                Op::PutObjectAcl => Some("s3:PutObjectVersionAcl"),
                Op::GetObjectTagging => Some("s3:GetObjectVersionTagging"),
                Op::PutObjectTagging => Some("s3:PutObjectVersionTagging"),
                Op::DeleteObjectTagging => Some("s3:DeleteObjectVersionTagging"),
                Op::GetObjectAttributes => Some("s3:GetObjectVersionAttributes"),
                _ => None,
            };
            if let Some(a) = versioned {
                return a;
            }
        }
        self.base_action()
    }

    /// What the operation addresses.
    pub fn target(self) -> Target {
        use Op::*;
        match self {
            ListBuckets => Target::Service,
            GetObject
            | HeadObject
            | GetObjectAttributes
            | PutObject
            | CopyObject
            | DeleteObject
            | GetObjectAcl
            | PutObjectAcl
            | GetObjectTagging
            | PutObjectTagging
            | DeleteObjectTagging
            | GetObjectRetention
            | PutObjectRetention
            | GetObjectLegalHold
            | PutObjectLegalHold
            | CreateMultipartUpload
            | UploadPart
            | UploadPartCopy
            | CompleteMultipartUpload
            | AbortMultipartUpload
            | ListParts => Target::Object,
            // A preflight may name a key, but only the bucket's rules answer it.
            _ => Target::Bucket,
        }
    }

    /// Whether the operation also reads the object named by `x-amz-copy-source`, which then
    /// needs READ on that object.
    pub fn reads_source(self) -> bool {
        matches!(self, Op::CopyObject | Op::UploadPartCopy)
    }

    /// Whether the operation needs the bucket to exist before it is authorized (every one
    /// but those on the service and CreateBucket, which makes it).
    pub fn needs_bucket(self) -> bool {
        !matches!(
            self,
            Op::ListBuckets | Op::CreateBucket | Op::PreflightRequest
        )
    }
}

/// Classifies a path-style request (`/bucket/key?query`), for tools and tests that build
/// requests and want to know which operation the server will see.
pub fn classify_path(
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Result<Op, S3Error> {
    let rest = path.strip_prefix('/').unwrap_or(path);
    let target = match rest.split_once('/') {
        _ if rest.is_empty() => Target::Service,
        Some((_, k)) if !k.is_empty() => Target::Object,
        _ => Target::Bucket,
    };
    Op::classify(method, target, &Query::parse(query)?, headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(m: Method, p: &str, q: Option<&str>) -> Result<Op, S3ErrorCode> {
        classify_path(&m, p, q, &HeaderMap::new()).map_err(|e| e.code)
    }

    #[test]
    fn names_operations() {
        assert_eq!(op(Method::GET, "/", None), Ok(Op::ListBuckets));
        assert_eq!(
            op(Method::GET, "/b", Some("list-type=2&prefix=a")),
            Ok(Op::ListObjectsV2)
        );
        assert_eq!(op(Method::GET, "/b/", None), Ok(Op::ListObjects));
        assert_eq!(op(Method::PUT, "/b", None), Ok(Op::CreateBucket));
        assert_eq!(op(Method::PUT, "/b", Some("cors")), Ok(Op::PutBucketCors));
        assert_eq!(
            op(Method::POST, "/b", Some("delete")),
            Ok(Op::DeleteObjects)
        );
        assert_eq!(op(Method::GET, "/b/k/x", None), Ok(Op::GetObject));
        assert_eq!(
            op(Method::GET, "/b/k", Some("x-id=GetObject&partNumber=1")),
            Ok(Op::GetObject)
        );
        assert_eq!(
            op(Method::PUT, "/b/k", Some("partNumber=1&uploadId=x")),
            Ok(Op::UploadPart)
        );
        assert_eq!(
            op(Method::POST, "/b/k", Some("uploads")),
            Ok(Op::CreateMultipartUpload)
        );
        assert_eq!(op(Method::DELETE, "/b/k", None), Ok(Op::DeleteObject));
        let mut copy = HeaderMap::new();
        copy.insert("x-amz-copy-source", "a/b".parse().unwrap());
        let c = |m: Method, q| classify_path(&m, "/b/k", q, &copy).unwrap();
        assert_eq!(c(Method::PUT, None), Op::CopyObject);
        assert_eq!(
            c(Method::PUT, Some("uploadId=u&partNumber=2")),
            Op::UploadPartCopy
        );
        // The copy header does not turn other operations into copies.
        assert_eq!(c(Method::PUT, Some("acl")), Op::PutObjectAcl);
    }

    #[test]
    fn shapes_of_the_review_attacks_are_their_own_operations() {
        // DELETE ?acl is not DeleteObject (nor anything else).
        assert_eq!(
            op(Method::DELETE, "/b/k", Some("acl")),
            Err(S3ErrorCode::MethodNotAllowed)
        );
        assert_eq!(
            op(Method::POST, "/b/k", Some("acl&uploads")),
            Err(S3ErrorCode::InvalidRequest)
        );
        assert_eq!(
            op(Method::POST, "/b/k", Some("acl&uploadId=x")),
            Err(S3ErrorCode::InvalidRequest)
        );
        assert_eq!(
            op(Method::DELETE, "/b/k", Some("acl&versionId=v")),
            Err(S3ErrorCode::MethodNotAllowed)
        );
    }

    #[test]
    fn unknown_shapes_are_refused() {
        assert_eq!(
            op(Method::PATCH, "/b/k", None),
            Err(S3ErrorCode::MethodNotAllowed)
        );
        assert_eq!(
            op(Method::POST, "/b/k", None),
            Err(S3ErrorCode::MethodNotAllowed)
        );
        assert_eq!(
            op(Method::DELETE, "/", None),
            Err(S3ErrorCode::MethodNotAllowed)
        );
        assert_eq!(
            op(Method::PUT, "/b", Some("lifecycle")),
            Ok(Op::PutBucketLifecycleConfiguration)
        );
        assert_eq!(
            op(Method::PUT, "/b", Some("website")),
            Err(S3ErrorCode::NotImplemented)
        );
        assert_eq!(
            op(Method::PUT, "/b/k", Some("retention")),
            Ok(Op::PutObjectRetention)
        );
        assert_eq!(
            op(Method::PUT, "/b", Some("policy")),
            Ok(Op::PutBucketPolicy)
        );
        assert_eq!(
            op(Method::GET, "/b/k", Some("torrent")),
            Err(S3ErrorCode::NotImplemented)
        );
        assert_eq!(
            op(Method::GET, "/b", Some("attributes")),
            Err(S3ErrorCode::MethodNotAllowed)
        );
    }

    #[test]
    fn the_table_is_complete_and_consistent() {
        // Every operation has a distinct name, and object operations are classified only
        // for object targets.
        let mut names: Vec<_> = Op::ALL.iter().map(|o| o.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Op::ALL.len());
        for o in Op::ALL {
            if matches!(o.access(), Access::Object(_)) {
                assert_eq!(o.target(), Target::Object, "{o:?}");
            }
            // Every operation but the preflight names a real policy action.
            let action = o.policy_action(&Query::default());
            if *o != Op::PreflightRequest {
                assert!(cairn_policy::is_known_action(action), "{o:?}: {action}");
            }
            let versioned = o.policy_action(&Query::parse(Some("versionId=v")).unwrap());
            assert!(*o == Op::PreflightRequest || cairn_policy::is_known_action(versioned));
        }
    }
}
