//! A parsed and validated policy's statements.

use crate::condition::Clause;
use crate::wildcard::Pattern;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Effect {
    Allow,
    Deny,
}

/// The principals listed by a `Principal` or `NotPrincipal` element.
#[derive(Debug, Clone, Default)]
pub(crate) struct Principals {
    /// `"*"` or `{"AWS": "*"}`: everyone, anonymous callers included.
    pub wildcard: bool,
    /// `AWS` and `CanonicalUser` identifiers, compared exactly with the caller's.
    /// (`Service` and `Federated` principals are accepted but never match a caller, so
    /// they are not kept.)
    pub ids: Vec<String>,
}

/// Whom a statement is about.
#[derive(Debug, Clone)]
pub(crate) enum PrincipalClause {
    /// Identity policies: the identity the policy is attached to.
    Implicit,
    Principal(Principals),
    NotPrincipal(Principals),
}

/// An `Action` / `NotAction` or `Resource` / `NotResource` element.
#[derive(Debug, Clone)]
pub(crate) struct Targets {
    /// `NotAction` / `NotResource`.
    pub negated: bool,
    /// As written.
    pub raw: Vec<String>,
    pub patterns: Vec<Pattern>,
}

#[derive(Debug, Clone)]
pub(crate) struct Statement {
    pub sid: Option<String>,
    pub effect: Effect,
    pub principal: PrincipalClause,
    /// Patterns compared case-insensitively.
    pub actions: Targets,
    /// Patterns compared case-sensitively.
    pub resources: Targets,
    /// All must hold.
    pub conditions: Vec<Clause>,
    /// Lowercased keys of the policy variables used by the resources and conditions:
    /// the statement does not apply to a request that lacks any of them.
    pub variables: Vec<String>,
}
