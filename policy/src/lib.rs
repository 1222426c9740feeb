//! The IAM policy language as Amazon S3 evaluates it: parsing and validating bucket and
//! identity policy documents, deciding a request against one policy, combining the
//! decisions of several, and telling whether a bucket policy is "public" in the sense
//! of S3 Block Public Access.
//!
//! The crate owns the language only. It knows nothing of HTTP, storage or who the
//! caller is: the caller builds a [`RequestContext`] (the identifiers the requester is
//! known by, the S3 action, the resource ARN and the condition keys of the request)
//! and stores the policy documents.
//!
//! ```
//! use cairn_policy::{ConditionValues, Decision, Policy, PolicyKind, RequestContext};
//!
//! let doc = br#"{
//!   "Version": "2012-10-17",
//!   "Statement": [{
//!     "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
//!     "Resource": "arn:aws:s3:::photos/public/*",
//!     "Condition": {"IpAddress": {"aws:SourceIp": "192.0.2.0/24"}}
//!   }]
//! }"#;
//! let policy = Policy::parse(doc, PolicyKind::Bucket { bucket: "photos".into() }).unwrap();
//! let mut conditions = ConditionValues::new();
//! conditions.insert("aws:SourceIp", "192.0.2.7");
//! let req = RequestContext {
//!     principal: &[],
//!     anonymous: true,
//!     action: "s3:GetObject",
//!     resource: "arn:aws:s3:::photos/public/cat.jpg",
//!     conditions: &conditions,
//! };
//! assert_eq!(policy.evaluate(&req), Decision::Allow);
//! assert!(!policy.is_public()); // pinned to a /24
//! ```

use std::collections::HashMap;

mod actions;
mod condition;
mod eval;
mod json;
mod model;
mod parse;
mod public;
mod values;
mod wildcard;

pub use actions::is_known_action;
pub use parse::MAX_POLICY_LEN;

use model::{Effect, Statement};

/// Why a policy document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The document is not a valid policy (S3's `MalformedPolicy`). The message says
    /// where and what, e.g. `Statement[1]: Action: unknown action 's3:Foo'`
    /// (statements count from 0).
    #[error("{0}")]
    Malformed(String),
    /// The document is larger than [`MAX_POLICY_LEN`] bytes.
    #[error("policy document is larger than {MAX_POLICY_LEN} bytes")]
    TooLarge,
}

/// What a policy is attached to, which decides its validation rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyKind {
    /// A bucket policy: each statement names its `Principal` / `NotPrincipal`, and every
    /// resource must be able to address the bucket or objects in it.
    Bucket { bucket: String },
    /// An identity policy (attached to a user or key): no `Principal`, the statements are
    /// about the identity the policy is attached to.
    Identity,
}

/// Text from the document echoed in an error message, cut to a readable length.
pub(crate) fn clip(s: &str) -> std::borrow::Cow<'_, str> {
    const MAX: usize = 80;
    match s.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}...", &s[..i]).into(),
        None => s.into(),
    }
}

/// The outcome of evaluating a request against one or more policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// An explicit `Deny` statement applies.
    Deny,
    /// An `Allow` statement applies and no `Deny` does.
    Allow,
    /// No statement applies.
    NotApplicable,
}

/// Combines several policies' decisions AWS-style: any `Deny` wins, else any `Allow`,
/// else `NotApplicable`.
pub fn combine(decisions: impl IntoIterator<Item = Decision>) -> Decision {
    let mut out = Decision::NotApplicable;
    for d in decisions {
        match d {
            Decision::Deny => return Decision::Deny,
            Decision::Allow => out = Decision::Allow,
            Decision::NotApplicable => {}
        }
    }
    out
}

/// The condition keys of a request and their values. Keys are compared
/// case-insensitively (stored lowercased); a key may have several values. A key with
/// no value counts as absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConditionValues {
    map: HashMap<String, Vec<String>>,
}

impl ConditionValues {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a value to `key` (after any it already has).
    pub fn insert(&mut self, key: &str, value: impl Into<String>) {
        self.map
            .entry(key.to_lowercase())
            .or_default()
            .push(value.into());
    }

    /// The values of `key`, if it has any entry.
    pub fn get(&self, key: &str) -> Option<&[String]> {
        match self.map.get(key) {
            Some(v) => Some(v),
            None => self.map.get(&key.to_lowercase()).map(Vec::as_slice),
        }
    }
}

/// A request as the policy language sees it.
#[derive(Debug, Clone, Copy)]
pub struct RequestContext<'a> {
    /// Every identifier the caller is known by (e.g. its access key, its canonical user
    /// id, ARNs); empty for an anonymous request.
    pub principal: &'a [String],
    /// An anonymous caller matches only `*` principals, whatever `principal` holds.
    pub anonymous: bool,
    /// E.g. `s3:GetObject`; compared case-insensitively.
    pub action: &'a str,
    /// E.g. `arn:aws:s3:::bucket/key` or `arn:aws:s3:::bucket`; compared
    /// case-sensitively.
    pub resource: &'a str,
    /// The condition keys present in this request (also the source of policy
    /// variables such as `${aws:username}`).
    pub conditions: &'a ConditionValues,
}

/// A parsed and validated policy document.
#[derive(Debug, Clone)]
pub struct Policy {
    kind: PolicyKind,
    version: Option<String>,
    id: Option<String>,
    statements: Vec<Statement>,
}

impl Policy {
    /// Parses and validates a policy document (JSON bytes, at most [`MAX_POLICY_LEN`]).
    pub fn parse(doc: &[u8], kind: PolicyKind) -> Result<Policy, PolicyError> {
        let parsed = parse::parse(doc, &kind)?;
        Ok(Policy {
            kind,
            version: parsed.version,
            id: parsed.id,
            statements: parsed.statements,
        })
    }

    /// Evaluates this one policy for a request: `Deny` if an applying statement denies,
    /// else `Allow` if one allows, else `NotApplicable`.
    pub fn evaluate(&self, req: &RequestContext<'_>) -> Decision {
        let mut out = Decision::NotApplicable;
        for s in &self.statements {
            if s.applies(req) {
                match s.effect {
                    Effect::Deny => return Decision::Deny,
                    Effect::Allow => out = Decision::Allow,
                }
            }
        }
        out
    }

    /// Whether this policy is "public" as S3 Block Public Access defines it: some
    /// `Allow` statement is open to everyone (`"Principal": "*"`, `{"AWS": "*"}`, or any
    /// `NotPrincipal`) and none of its conditions pins it to fixed values of one of
    /// `aws:SourceIp` (`IpAddress`, every block /8 or narrower for IPv4, /32 or
    /// narrower for IPv6), `aws:SourceArn`, `aws:SourceVpc`, `aws:SourceVpce`,
    /// `aws:SourceOwner`, `aws:SourceAccount`, `aws:PrincipalOrgID`, `aws:userid`,
    /// `s3:x-amz-server-side-encryption-aws-kms-key-id`, `s3:DataAccessPointArn`,
    /// `s3:DataAccessPointAccount` (with `StringEquals`, `StringEqualsIgnoreCase`,
    /// `StringLike`, `ArnEquals` or `ArnLike`). A pin is a positive operator without
    /// `IfExists` or `ForAllValues:` whose values hold no `*`, `?` or `${...}`. `Deny`
    /// statements never make a policy public; identity policies are never public.
    pub fn is_public(&self) -> bool {
        matches!(self.kind, PolicyKind::Bucket { .. })
            && public::statements_public(&self.statements)
    }

    /// Every `Resource` and `NotResource` string of the statements, as written, in
    /// document order.
    pub fn resources(&self) -> impl Iterator<Item = &str> {
        self.statements
            .iter()
            .flat_map(|s| s.resources.raw.iter().map(String::as_str))
    }

    /// Every `Action` and `NotAction` string of the statements, as written.
    pub fn actions(&self) -> impl Iterator<Item = &str> {
        self.statements
            .iter()
            .flat_map(|s| s.actions.raw.iter().map(String::as_str))
    }

    /// The statements' `Sid`s (`None` for a statement without one), in document order.
    pub fn sids(&self) -> impl Iterator<Item = Option<&str>> {
        self.statements.iter().map(|s| s.sid.as_deref())
    }

    /// The kind the policy was parsed as.
    pub fn kind(&self) -> &PolicyKind {
        &self.kind
    }

    /// The document's `Version`, if it has one.
    pub fn version(&self) -> Option<&str> {
        self.version.as_deref()
    }

    /// The document's `Id`, if it has one.
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }
}

#[cfg(test)]
#[path = "eval_tests.rs"]
mod eval_tests;
