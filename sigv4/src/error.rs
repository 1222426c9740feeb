//! The one error type of this crate.

/// Why a request failed authentication or its body failed an integrity check.
///
/// Every variant maps to one S3 error code ([`AuthError::s3_code`]) and HTTP status
/// ([`AuthError::http_status`]); the `String` payloads are human-readable messages suitable
/// for the `<Message>` element of the S3 error document (they never contain secrets).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// `AccessDenied` (403): e.g. "Request has expired", or an anonymous request the caller
    /// decided to refuse.
    #[error("Access Denied: {0}")]
    AccessDenied(String),
    /// `InvalidAccessKeyId` (403): the access key is not known.
    #[error("The AWS Access Key Id you provided does not exist in our records.")]
    InvalidAccessKeyId,
    /// `SignatureDoesNotMatch` (403): the request (or a chunk / trailer) signature is wrong.
    #[error("The request signature we calculated does not match the signature you provided.")]
    SignatureDoesNotMatch,
    /// `RequestTimeTooSkewed` (403): the request date is more than 15 minutes away from now.
    #[error("The difference between the request time and the current time is too large.")]
    RequestTimeTooSkewed,
    /// `AuthorizationHeaderMalformed` (400).
    #[error("The authorization header is malformed; {0}")]
    AuthorizationHeaderMalformed(String),
    /// `AuthorizationQueryParametersError` (400): malformed presigned-URL parameters.
    #[error("{0}")]
    AuthorizationQueryParametersError(String),
    /// `MissingSecurityHeader` (400): a header required for authentication is absent.
    #[error("Your request is missing a required header: {0}")]
    MissingSecurityHeader(String),
    /// `InvalidArgument` (400).
    #[error("{0}")]
    InvalidArgument(String),
    /// `XAmzContentSHA256Mismatch` (400): the body does not hash to `x-amz-content-sha256`.
    #[error("The provided 'x-amz-content-sha256' header does not match what was computed.")]
    ContentSha256Mismatch,
    /// `BadDigest` (400): a `Content-MD5` or `x-amz-checksum-*` value does not match the body.
    #[error("{0}")]
    BadDigest(String),
    /// `InvalidDigest` (400): a `Content-MD5` value that is not base64 of 16 bytes.
    #[error("The Content-MD5 you specified is not valid.")]
    InvalidDigest,
    /// `IncompleteBody` (400): the body ended before the announced length / final chunk.
    #[error(
        "You did not provide the number of bytes specified by the Content-Length HTTP header."
    )]
    IncompleteBody,
    /// `InvalidChunk`-style failure of the `aws-chunked` framing. S3 reports these as
    /// `InvalidRequest` (400) with a message; [`AuthError::s3_code`] does the same.
    #[error("Invalid aws-chunked body: {0}")]
    InvalidChunk(String),
    /// `InvalidRequest` (400).
    #[error("{0}")]
    InvalidRequest(String),
    /// Reading the body from the transport failed (connection reset, timeout...). Reported
    /// as `IncompleteBody` (400); the message is for logs.
    #[error("error reading the request body: {0}")]
    Transport(String),
}

impl AuthError {
    /// The S3 error code (`<Code>` element) for this error.
    pub fn s3_code(&self) -> &'static str {
        match self {
            AuthError::AccessDenied(_) => "AccessDenied",
            AuthError::InvalidAccessKeyId => "InvalidAccessKeyId",
            AuthError::SignatureDoesNotMatch => "SignatureDoesNotMatch",
            AuthError::RequestTimeTooSkewed => "RequestTimeTooSkewed",
            AuthError::AuthorizationHeaderMalformed(_) => "AuthorizationHeaderMalformed",
            AuthError::AuthorizationQueryParametersError(_) => "AuthorizationQueryParametersError",
            AuthError::MissingSecurityHeader(_) => "MissingSecurityHeader",
            AuthError::InvalidArgument(_) => "InvalidArgument",
            AuthError::ContentSha256Mismatch => "XAmzContentSHA256Mismatch",
            AuthError::BadDigest(_) => "BadDigest",
            AuthError::InvalidDigest => "InvalidDigest",
            AuthError::IncompleteBody | AuthError::Transport(_) => "IncompleteBody",
            AuthError::InvalidChunk(_) | AuthError::InvalidRequest(_) => "InvalidRequest",
        }
    }

    /// The HTTP status S3 answers with for this error.
    pub fn http_status(&self) -> u16 {
        match self {
            AuthError::AccessDenied(_)
            | AuthError::InvalidAccessKeyId
            | AuthError::SignatureDoesNotMatch
            | AuthError::RequestTimeTooSkewed => 403,
            _ => 400,
        }
    }
}
