//! S3 errors: the one place where every crate's error becomes an S3 error code, an HTTP
//! status and an XML body.

use axum::http::StatusCode;
use cairn_datanode::DatanodeError;
use cairn_metadata::MetadataError;
use cairn_objects::{ObjectsError, PutError};
use cairn_sigv4::AuthError;
use cairn_types::InvalidName;

use crate::xml::XmlWriter;

/// The S3 error codes Cairn returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum S3ErrorCode {
    AccessDenied,
    AuthorizationHeaderMalformed,
    AuthorizationQueryParametersError,
    BadDigest,
    BucketAlreadyOwnedByYou,
    BucketAlreadyExists,
    BucketNotEmpty,
    EntityTooLarge,
    EntityTooSmall,
    IllegalVersioningConfigurationException,
    IncompleteBody,
    InternalError,
    InvalidAccessKeyId,
    InvalidArgument,
    InvalidBucketName,
    InvalidDigest,
    InvalidPart,
    InvalidPartOrder,
    InvalidRange,
    InvalidRequest,
    InvalidTag,
    KeyTooLongError,
    MalformedXML,
    MetadataTooLarge,
    MethodNotAllowed,
    MissingContentLength,
    MissingSecurityHeader,
    NoSuchBucket,
    NoSuchKey,
    NoSuchUpload,
    NoSuchVersion,
    NotImplemented,
    PreconditionFailed,
    OperationAborted,
    RequestTimeTooSkewed,
    ServiceUnavailable,
    /// Too many requests (or too much body in flight): the client should back off (503).
    SlowDown,
    SignatureDoesNotMatch,
    XAmzContentSHA256Mismatch,
    NoSuchTagSet,
    NoSuchCORSConfiguration,
    NoSuchLifecycleConfiguration,
    NoSuchBucketPolicy,
    NoSuchPublicAccessBlockConfiguration,
    NoSuchWebsiteConfiguration,
    ServerSideEncryptionConfigurationNotFoundError,
    ObjectLockConfigurationNotFoundError,
    OwnershipControlsNotFoundError,
    ReplicationConfigurationNotFoundError,
    CorsForbidden,
    BadRequest,
    MalformedACLError,
    /// A browser form upload whose body is not a well-formed form.
    MalformedPOSTRequest,
    /// A browser form upload whose policy document is malformed.
    InvalidPolicyDocument,
    /// A browser form upload whose fields before the file are too large.
    MaxPostPreDataLengthExceededError,
    UnresolvableGrantByEmailAddress,
    InvalidURI,
    MalformedPolicy,
    AccessControlListNotSupported,
    InvalidBucketAclWithObjectOwnership,
    /// The bucket's state forbids the change (Object Lock: suspending versioning, a lock
    /// configuration on a bucket without versioning).
    InvalidBucketState,
    /// An Object Lock default retention period that is not a positive number.
    InvalidRetentionPeriod,
    /// A version without the retention or legal hold asked for.
    NoSuchObjectLockConfiguration,
    /// The bucket's quota (bytes or objects, `cairn admin bucket-quota`) would be exceeded
    /// (403, as other S3 servers answer it).
    QuotaExceeded,
    /// A storage class that is not S3's or that this cluster gives no erasure coding.
    InvalidStorageClass,
    /// SSE-KMS names a key the built-in KMS does not have (400, as S3 answers it).
    KmsNotFound,
}

impl S3ErrorCode {
    pub fn as_str(self) -> &'static str {
        use S3ErrorCode::*;
        match self {
            AccessDenied => "AccessDenied",
            AuthorizationHeaderMalformed => "AuthorizationHeaderMalformed",
            AuthorizationQueryParametersError => "AuthorizationQueryParametersError",
            BadDigest => "BadDigest",
            BucketAlreadyOwnedByYou => "BucketAlreadyOwnedByYou",
            BucketAlreadyExists => "BucketAlreadyExists",
            BucketNotEmpty => "BucketNotEmpty",
            EntityTooLarge => "EntityTooLarge",
            EntityTooSmall => "EntityTooSmall",
            IllegalVersioningConfigurationException => "IllegalVersioningConfigurationException",
            IncompleteBody => "IncompleteBody",
            InternalError => "InternalError",
            InvalidAccessKeyId => "InvalidAccessKeyId",
            InvalidArgument => "InvalidArgument",
            InvalidBucketName => "InvalidBucketName",
            InvalidDigest => "InvalidDigest",
            InvalidPart => "InvalidPart",
            InvalidPartOrder => "InvalidPartOrder",
            InvalidRange => "InvalidRange",
            InvalidRequest => "InvalidRequest",
            InvalidTag => "InvalidTag",
            KeyTooLongError => "KeyTooLongError",
            MalformedXML => "MalformedXML",
            MetadataTooLarge => "MetadataTooLarge",
            MethodNotAllowed => "MethodNotAllowed",
            MissingContentLength => "MissingContentLength",
            MissingSecurityHeader => "MissingSecurityHeader",
            NoSuchBucket => "NoSuchBucket",
            NoSuchKey => "NoSuchKey",
            NoSuchUpload => "NoSuchUpload",
            NoSuchVersion => "NoSuchVersion",
            NotImplemented => "NotImplemented",
            PreconditionFailed => "PreconditionFailed",
            OperationAborted => "OperationAborted",
            RequestTimeTooSkewed => "RequestTimeTooSkewed",
            ServiceUnavailable => "ServiceUnavailable",
            SlowDown => "SlowDown",
            SignatureDoesNotMatch => "SignatureDoesNotMatch",
            XAmzContentSHA256Mismatch => "XAmzContentSHA256Mismatch",
            NoSuchTagSet => "NoSuchTagSet",
            NoSuchCORSConfiguration => "NoSuchCORSConfiguration",
            NoSuchLifecycleConfiguration => "NoSuchLifecycleConfiguration",
            NoSuchBucketPolicy => "NoSuchBucketPolicy",
            NoSuchPublicAccessBlockConfiguration => "NoSuchPublicAccessBlockConfiguration",
            NoSuchWebsiteConfiguration => "NoSuchWebsiteConfiguration",
            ServerSideEncryptionConfigurationNotFoundError => {
                "ServerSideEncryptionConfigurationNotFoundError"
            }
            ObjectLockConfigurationNotFoundError => "ObjectLockConfigurationNotFoundError",
            OwnershipControlsNotFoundError => "OwnershipControlsNotFoundError",
            ReplicationConfigurationNotFoundError => "ReplicationConfigurationNotFoundError",
            CorsForbidden => "AccessForbidden",
            BadRequest => "BadRequest",
            MalformedACLError => "MalformedACLError",
            MalformedPOSTRequest => "MalformedPOSTRequest",
            InvalidPolicyDocument => "InvalidPolicyDocument",
            MaxPostPreDataLengthExceededError => "MaxPostPreDataLengthExceededError",
            UnresolvableGrantByEmailAddress => "UnresolvableGrantByEmailAddress",
            InvalidURI => "InvalidURI",
            MalformedPolicy => "MalformedPolicy",
            AccessControlListNotSupported => "AccessControlListNotSupported",
            InvalidBucketAclWithObjectOwnership => "InvalidBucketAclWithObjectOwnership",
            InvalidBucketState => "InvalidBucketState",
            InvalidRetentionPeriod => "InvalidRetentionPeriod",
            NoSuchObjectLockConfiguration => "NoSuchObjectLockConfiguration",
            QuotaExceeded => "QuotaExceeded",
            InvalidStorageClass => "InvalidStorageClass",
            KmsNotFound => "KMS.NotFoundException",
        }
    }

    pub fn status(self) -> StatusCode {
        use S3ErrorCode::*;
        match self {
            AccessDenied
            | InvalidAccessKeyId
            | SignatureDoesNotMatch
            | RequestTimeTooSkewed
            | QuotaExceeded
            | CorsForbidden => StatusCode::FORBIDDEN,
            AuthorizationHeaderMalformed
            | AuthorizationQueryParametersError
            | BadDigest
            | EntityTooLarge
            | EntityTooSmall
            | IllegalVersioningConfigurationException
            | IncompleteBody
            | InvalidArgument
            | InvalidBucketName
            | InvalidDigest
            | InvalidPart
            | InvalidPartOrder
            | InvalidRequest
            | InvalidTag
            | KeyTooLongError
            | MalformedXML
            | MetadataTooLarge
            | MissingSecurityHeader
            | BadRequest
            | MalformedACLError
            | MalformedPOSTRequest
            | InvalidPolicyDocument
            | MaxPostPreDataLengthExceededError
            | UnresolvableGrantByEmailAddress
            | InvalidURI
            | MalformedPolicy
            | AccessControlListNotSupported
            | InvalidBucketAclWithObjectOwnership
            | InvalidRetentionPeriod
            | InvalidStorageClass
            | KmsNotFound
            | XAmzContentSHA256Mismatch => StatusCode::BAD_REQUEST,
            MissingContentLength => StatusCode::LENGTH_REQUIRED,
            PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            BucketAlreadyOwnedByYou
            | BucketAlreadyExists
            | BucketNotEmpty
            | OperationAborted
            | InvalidBucketState => StatusCode::CONFLICT,
            NoSuchBucket
            | NoSuchKey
            | NoSuchUpload
            | NoSuchVersion
            | NoSuchTagSet
            | NoSuchCORSConfiguration
            | NoSuchLifecycleConfiguration
            | NoSuchBucketPolicy
            | NoSuchPublicAccessBlockConfiguration
            | NoSuchWebsiteConfiguration
            | ServerSideEncryptionConfigurationNotFoundError
            | ObjectLockConfigurationNotFoundError
            | OwnershipControlsNotFoundError
            | NoSuchObjectLockConfiguration
            | ReplicationConfigurationNotFoundError => StatusCode::NOT_FOUND,
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            InvalidRange => StatusCode::RANGE_NOT_SATISFIABLE,
            InternalError => StatusCode::INTERNAL_SERVER_ERROR,
            NotImplemented => StatusCode::NOT_IMPLEMENTED,
            ServiceUnavailable | SlowDown => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// An error on its way to the client.
#[derive(Debug, Clone)]
pub struct S3Error {
    pub code: S3ErrorCode,
    pub message: String,
    /// Extra elements for the XML body (e.g. `BucketName`, `Key`).
    pub extra: Vec<(&'static str, String)>,
    /// Extra response headers (e.g. `x-amz-delete-marker`).
    pub headers: Vec<(&'static str, String)>,
}

impl S3Error {
    pub fn new(code: S3ErrorCode, message: impl Into<String>) -> Self {
        S3Error {
            code,
            message: message.into(),
            extra: Vec::new(),
            headers: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn no_such_version() -> Self {
        S3Error::new(
            S3ErrorCode::NoSuchVersion,
            "The specified version does not exist.",
        )
    }

    pub fn method_not_allowed() -> Self {
        S3Error::new(
            S3ErrorCode::MethodNotAllowed,
            "The specified method is not allowed against this resource.",
        )
    }

    pub fn with(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.extra.push((name, value.into()));
        self
    }

    pub fn no_such_key() -> Self {
        S3Error::new(S3ErrorCode::NoSuchKey, "The specified key does not exist.")
    }

    pub fn access_denied() -> Self {
        S3Error::new(S3ErrorCode::AccessDenied, "Access Denied")
    }

    pub fn no_such_bucket() -> Self {
        S3Error::new(
            S3ErrorCode::NoSuchBucket,
            "The specified bucket does not exist",
        )
    }

    pub fn not_implemented(what: &str) -> Self {
        S3Error::new(
            S3ErrorCode::NotImplemented,
            format!("{what} is not implemented by Cairn yet"),
        )
    }

    pub fn no_such_upload() -> Self {
        S3Error::new(
            S3ErrorCode::NoSuchUpload,
            "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.",
        )
    }

    pub fn malformed_xml() -> Self {
        S3Error::new(
            S3ErrorCode::MalformedXML,
            "The XML you provided was not well-formed or did not validate against our published schema.",
        )
    }

    pub fn internal(e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "internal error");
        S3Error::new(
            S3ErrorCode::InternalError,
            "We encountered an internal error. Please try again.",
        )
    }

    /// Names the bucket on a NoSuchBucket error.
    pub fn for_bucket(self, bucket: &str) -> Self {
        if self.code == S3ErrorCode::NoSuchBucket {
            self.with("BucketName", bucket)
        } else {
            self
        }
    }

    /// Names the upload on a NoSuchUpload error.
    pub fn for_upload(self, upload_id: &str) -> Self {
        if self.code == S3ErrorCode::NoSuchUpload {
            self.with("UploadId", upload_id)
        } else {
            self
        }
    }

    /// The XML error document.
    pub fn to_xml(&self, resource: &str, request_id: &str) -> String {
        let mut w = XmlWriter::new();
        w.open("Error");
        w.elem("Code", self.code.as_str());
        w.elem("Message", &self.message);
        for (k, v) in &self.extra {
            w.elem(k, v);
        }
        w.elem("Resource", resource);
        w.elem("RequestId", request_id);
        w.close("Error");
        w.finish()
    }
}

impl From<InvalidName> for S3Error {
    fn from(e: InvalidName) -> Self {
        match e {
            InvalidName::Bucket(_) => S3Error::new(S3ErrorCode::InvalidBucketName, e.to_string()),
            InvalidName::KeyTooLong => S3Error::new(S3ErrorCode::KeyTooLongError, e.to_string()),
            InvalidName::Key(_) => S3Error::new(S3ErrorCode::InvalidArgument, e.to_string()),
        }
    }
}

impl From<MetadataError> for S3Error {
    fn from(e: MetadataError) -> Self {
        match e {
            MetadataError::NoSuchBucket => S3Error::no_such_bucket(),
            MetadataError::BucketExists { .. } => S3Error::new(
                S3ErrorCode::BucketAlreadyExists,
                "The requested bucket name is not available.",
            ),
            MetadataError::BucketNotEmpty => S3Error::new(
                S3ErrorCode::BucketNotEmpty,
                "The bucket you tried to delete is not empty",
            ),
            MetadataError::NoSuchUpload => S3Error::no_such_upload(),
            MetadataError::InvalidPart(why) => S3Error::new(
                S3ErrorCode::InvalidPart,
                format!("One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag ({why})."),
            ),
            MetadataError::InvalidPartOrder => S3Error::new(
                S3ErrorCode::InvalidPartOrder,
                "The list of parts was not in ascending order. The parts list must be specified in order by part number.",
            ),
            MetadataError::EntityTooSmall { part_number } => S3Error::new(
                S3ErrorCode::EntityTooSmall,
                "Your proposed upload is smaller than the minimum allowed object size.",
            )
            .with("PartNumber", part_number.to_string()),
            MetadataError::InvalidArgument(msg) => S3Error::new(S3ErrorCode::InvalidArgument, msg),
            MetadataError::NoSuchKey => S3Error::no_such_key(),
            MetadataError::PreconditionFailed(m) => S3Error::new(
                S3ErrorCode::PreconditionFailed,
                format!("At least one of the pre-conditions you specified did not hold: {m}"),
            )
            .with("Condition", "If-Match / If-None-Match"),
            MetadataError::NoSuchVersion => S3Error::no_such_version(),
            MetadataError::Conflict(m) => S3Error::new(
                S3ErrorCode::OperationAborted,
                format!("A conflicting operation changed this resource; try again ({m})"),
            ),
            MetadataError::DeleteMarker => S3Error::method_not_allowed()
                .with_header("x-amz-delete-marker", "true"),
            MetadataError::IllegalVersioning(msg) => S3Error::new(
                S3ErrorCode::IllegalVersioningConfigurationException,
                format!("The versioning configuration specified in the request is invalid: {msg}"),
            ),
            MetadataError::ObjectLocked(why) => S3Error::new(
                S3ErrorCode::AccessDenied,
                format!("Access Denied because object protected by object lock: {why}"),
            ),
            MetadataError::InvalidBucketState(why) => {
                S3Error::new(S3ErrorCode::InvalidBucketState, why)
            }
            MetadataError::QuotaExceeded(why) => S3Error::new(
                S3ErrorCode::QuotaExceeded,
                format!("Bucket quota exceeded: {why}"),
            ),
            MetadataError::UploadExists | MetadataError::Corrupt(_) => S3Error::internal(e),
            MetadataError::Unavailable(_) => {
                tracing::warn!(error = %e, "metadata quorum unavailable");
                S3Error::new(
                    S3ErrorCode::ServiceUnavailable,
                    "Metadata is temporarily unavailable (no quorum of metadata nodes). Please retry.",
                )
            }
            MetadataError::Indeterminate(_) => {
                tracing::warn!(error = %e, "metadata write outcome unknown");
                S3Error::new(
                    S3ErrorCode::ServiceUnavailable,
                    "The outcome of this write is unknown: metadata did not confirm it in time, and it may or may not have taken effect. Please retry.",
                )
            }
            MetadataError::Engine(_) => {
                tracing::error!(error = %e, "metadata engine error");
                S3Error::new(
                    S3ErrorCode::ServiceUnavailable,
                    "Metadata is temporarily unavailable. Please retry.",
                )
            }
        }
    }
}

impl From<DatanodeError> for S3Error {
    fn from(e: DatanodeError) -> Self {
        match e {
            DatanodeError::NotFound(_) | DatanodeError::Corrupt { .. } => S3Error::internal(e),
            DatanodeError::TooLarge(_) => S3Error::new(S3ErrorCode::EntityTooLarge, e.to_string()),
            DatanodeError::Io(_) | DatanodeError::Closed => {
                tracing::error!(error = %e, "datanode unavailable");
                S3Error::new(
                    S3ErrorCode::ServiceUnavailable,
                    "Storage is temporarily unavailable. Please retry.",
                )
            }
        }
    }
}

impl From<ObjectsError> for S3Error {
    fn from(e: ObjectsError) -> Self {
        match e {
            ObjectsError::Metadata(e) => e.into(),
            ObjectsError::Datanode(e) => e.into(),
            ObjectsError::UnknownNode(_)
            | ObjectsError::Inconsistent(_)
            | ObjectsError::Config(_)
            | ObjectsError::Erasure(_) => S3Error::internal(e),
            ObjectsError::IncompleteBody { .. } => S3Error::new(
                S3ErrorCode::IncompleteBody,
                "You did not provide the number of bytes specified by the Content-Length HTTP header.",
            ),
            ObjectsError::ChecksumTypeMismatch { expected, got } => S3Error::new(
                S3ErrorCode::InvalidRequest,
                format!(
                    "Checksum Type mismatch occurred, expected checksum Type: {}, actual checksum Type: {}",
                    expected.to_ascii_lowercase(),
                    got.to_ascii_lowercase()
                ),
            ),
            ObjectsError::NoSuchKey { key, delete_marker } => {
                let e = S3Error::no_such_key().with("Key", key);
                match delete_marker {
                    Some(id) => e
                        .with_header("x-amz-delete-marker", "true")
                        .with_header("x-amz-version-id", id),
                    // As S3: a 404 says whether a delete marker hides the key.
                    None => e.with_header("x-amz-delete-marker", "false"),
                }
            }
            ObjectsError::NoSuchVersion { key, version_id } => S3Error::no_such_version()
                .with("Key", key)
                .with("VersionId", version_id),
            ObjectsError::IsDeleteMarker { version_id } => S3Error::method_not_allowed()
                .with_header("x-amz-delete-marker", "true")
                .with_header("x-amz-version-id", version_id)
                .with_header("allow", "DELETE"),
            ObjectsError::PartChecksumMismatch { part_number } => S3Error::new(
                S3ErrorCode::InvalidPart,
                format!("The checksum of part {part_number} does not match the one uploaded."),
            ),
            ObjectsError::ObjectSizeMismatch { claimed, actual } => S3Error::new(
                S3ErrorCode::InvalidRequest,
                format!("The provided x-amz-mp-object-size header value {claimed} does not match the object size {actual}"),
            ),
            ObjectsError::InvalidStorageClass(_) => invalid_storage_class(),
            ObjectsError::Sse(cairn_sse::SseError::InvalidCustomerKey(m)) => {
                S3Error::new(S3ErrorCode::InvalidArgument, m)
            }
            ObjectsError::Sse(_) => S3Error::internal(e),
            ObjectsError::CustomerKeyRequired => S3Error::new(
                S3ErrorCode::InvalidRequest,
                "The object was stored using a form of Server Side Encryption. The correct parameters must be provided to retrieve the object.",
            ),
            ObjectsError::CustomerKeyMismatch => S3Error::new(
                S3ErrorCode::AccessDenied,
                "The provided customer encryption key does not match the key the object was stored with.",
            ),
            ObjectsError::KmsKeyNotFound(name) => S3Error::new(
                S3ErrorCode::KmsNotFound,
                format!("Invalid keyId {name}: no such key in this cluster's KMS (cairn admin kms-key NAME makes one)"),
            ),
            ObjectsError::CustomerKeyNotApplicable => S3Error::new(
                S3ErrorCode::InvalidRequest,
                "The encryption parameters are not applicable to this object.",
            ),
            ObjectsError::BadDigest { header } => S3Error::new(
                S3ErrorCode::BadDigest,
                format!("The {header} you specified did not match the calculated checksum."),
            ),
            ObjectsError::WriteQuorum { .. }
            | ObjectsError::TooFewShards { .. }
            | ObjectsError::NotEnoughDatanodes { .. } => {
                tracing::error!(error = %e, "not enough datanodes");
                S3Error::new(
                    S3ErrorCode::ServiceUnavailable,
                    "Not enough datanodes are available. Please retry.",
                )
            }
        }
    }
}

impl From<AuthError> for S3Error {
    fn from(e: AuthError) -> Self {
        use S3ErrorCode as C;
        let msg = e.to_string();
        let code = match e {
            AuthError::AccessDenied(_) => C::AccessDenied,
            AuthError::InvalidAccessKeyId => C::InvalidAccessKeyId,
            AuthError::SignatureDoesNotMatch => C::SignatureDoesNotMatch,
            AuthError::RequestTimeTooSkewed => C::RequestTimeTooSkewed,
            AuthError::AuthorizationHeaderMalformed(_) => C::AuthorizationHeaderMalformed,
            AuthError::AuthorizationQueryParametersError(_) => C::AuthorizationQueryParametersError,
            AuthError::MissingSecurityHeader(_) => C::MissingSecurityHeader,
            AuthError::InvalidArgument(_) => C::InvalidArgument,
            AuthError::ContentSha256Mismatch => C::XAmzContentSHA256Mismatch,
            AuthError::BadDigest(_) => C::BadDigest,
            AuthError::IncompleteBody | AuthError::Transport(_) => C::IncompleteBody,
            AuthError::InvalidDigest => C::InvalidDigest,
            AuthError::InvalidChunk(_) => C::InvalidRequest,
            AuthError::InvalidRequest(_) => C::InvalidRequest,
        };
        S3Error::new(code, msg)
    }
}

impl From<PutError<AuthError>> for S3Error {
    fn from(e: PutError<AuthError>) -> Self {
        match e {
            PutError::Body(e) => e.into(),
            PutError::Store(e) => e.into(),
        }
    }
}

impl From<PutError<ObjectsError>> for S3Error {
    fn from(e: PutError<ObjectsError>) -> Self {
        match e {
            PutError::Body(e) | PutError::Store(e) => e.into(),
        }
    }
}

/// The answer to a storage class that is not S3's or that this cluster has no scheme for.
pub(crate) fn invalid_storage_class() -> S3Error {
    S3Error::new(
        S3ErrorCode::InvalidStorageClass,
        "The storage class you specified is not valid",
    )
}
