//! Whether a statement applies to a request.

use crate::model::{PrincipalClause, Principals, Statement, Targets};
use crate::RequestContext;

impl Statement {
    /// The statement applies when the principal, action and resource match and every
    /// condition holds. A statement whose policy variables are not all known for the
    /// request never applies.
    pub(crate) fn applies(&self, req: &RequestContext<'_>) -> bool {
        let known = |k: &String| req.conditions.get(k).is_some_and(|v| !v.is_empty());
        self.variables.iter().all(known)
            && principal_matches(&self.principal, req)
            && targets_match(&self.actions, req, req.action, true)
            && targets_match(&self.resources, req, req.resource, false)
            && self.conditions.iter().all(|c| c.holds(req.conditions))
    }
}

fn principal_matches(p: &PrincipalClause, req: &RequestContext<'_>) -> bool {
    match p {
        PrincipalClause::Implicit => true,
        PrincipalClause::Principal(p) => listed(p, req),
        PrincipalClause::NotPrincipal(p) => !listed(p, req),
    }
}

/// Whether the caller is one of `p`: `*` is everyone (anonymous callers included); an
/// identifier is compared exactly with each of the caller's (an anonymous caller has
/// none).
fn listed(p: &Principals, req: &RequestContext<'_>) -> bool {
    p.wildcard
        || (!req.anonymous
            && p.ids
                .iter()
                .any(|id| req.principal.iter().any(|mine| mine == id)))
}

fn targets_match(t: &Targets, req: &RequestContext<'_>, what: &str, ignore_case: bool) -> bool {
    let any = t
        .patterns
        .iter()
        .any(|p| p.matches(what, req.conditions, ignore_case));
    any != t.negated
}
