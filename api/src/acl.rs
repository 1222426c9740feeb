//! Access control lists as S3 clients write and read them: canned ACLs (`x-amz-acl`),
//! `x-amz-grant-*` headers and AccessControlPolicy documents become lists of
//! [`Grant`]s (grantees resolved to access keys), and grant lists render back as
//! AccessControlPolicy XML. What the grants allow is decided in [`crate::access`].

use axum::http::HeaderMap;
use cairn_metadata::{Grant, Grantee, Permission};
use serde::Deserialize;

use crate::error::{S3Error, S3ErrorCode};
use crate::identity::{canonical_id, Directory};
use crate::xml::XmlWriter;

pub const ALL_USERS_URI: &str = "http://acs.amazonaws.com/groups/global/AllUsers";
pub const AUTHENTICATED_USERS_URI: &str =
    "http://acs.amazonaws.com/groups/global/AuthenticatedUsers";

/// Most grants one ACL may hold (as S3).
const MAX_GRANTS: usize = 100;

/// The header that grants each permission.
const GRANT_HEADERS: [(&str, Permission); 5] = [
    ("x-amz-grant-read", Permission::Read),
    ("x-amz-grant-write", Permission::Write),
    ("x-amz-grant-read-acp", Permission::ReadAcp),
    ("x-amz-grant-write-acp", Permission::WriteAcp),
    ("x-amz-grant-full-control", Permission::FullControl),
];

fn grant(grantee: Grantee, permission: Permission) -> Grant {
    Grant {
        grantee,
        permission,
    }
}

/// The default ACL of anything `owner` creates: its owner's full control.
pub fn private(owner: &str) -> Vec<Grant> {
    vec![grant(Grantee::User(owner.into()), Permission::FullControl)]
}

/// The grants of canned ACL `name` for a resource owned by `owner` in a bucket owned by
/// `bucket_owner`.
pub fn canned(name: &str, owner: &str, bucket_owner: &str) -> Result<Vec<Grant>, S3Error> {
    let mut grants = match name {
        "private" => Vec::new(),
        "public-read" => vec![grant(Grantee::AllUsers, Permission::Read)],
        "public-read-write" => vec![
            grant(Grantee::AllUsers, Permission::Read),
            grant(Grantee::AllUsers, Permission::Write),
        ],
        "authenticated-read" => vec![grant(Grantee::AuthenticatedUsers, Permission::Read)],
        "bucket-owner-read" | "bucket-owner-full-control" => Vec::new(),
        other => {
            return Err(S3Error::new(
                S3ErrorCode::InvalidArgument,
                format!("`{other}` is not a canned ACL Cairn knows"),
            )
            .with("ArgumentName", "x-amz-acl")
            .with("ArgumentValue", other))
        }
    };
    grants.extend(private(owner));
    if owner != bucket_owner {
        match name {
            "bucket-owner-read" => {
                grants.push(grant(Grantee::User(bucket_owner.into()), Permission::Read))
            }
            "bucket-owner-full-control" => grants.push(grant(
                Grantee::User(bucket_owner.into()),
                Permission::FullControl,
            )),
            _ => {}
        }
    }
    Ok(grants)
}

/// Whether a request sends an ACL in its headers (`x-amz-acl` or `x-amz-grant-*`).
pub fn has_acl_headers(h: &HeaderMap) -> bool {
    h.contains_key("x-amz-acl") || GRANT_HEADERS.iter().any(|(n, _)| h.contains_key(*n))
}

/// The grants a request's `x-amz-acl` or `x-amz-grant-*` headers ask for (`None`: neither
/// was sent). Both at once is refused, as S3 does.
pub async fn from_headers(
    dir: &Directory<'_>,
    h: &HeaderMap,
    owner: &str,
    bucket_owner: &str,
) -> Result<Option<Vec<Grant>>, S3Error> {
    let canned_name = h
        .get("x-amz-acl")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_string());
    let has_grants = GRANT_HEADERS.iter().any(|(n, _)| h.contains_key(*n));
    match (canned_name, has_grants) {
        (Some(_), true) => Err(S3Error::new(
            S3ErrorCode::InvalidRequest,
            "Specifying both Canned ACLs and Header Grants is not allowed",
        )),
        (Some(name), false) => canned(&name, owner, bucket_owner).map(Some),
        (None, false) => Ok(None),
        (None, true) => {
            let mut grants = Vec::new();
            for (name, permission) in GRANT_HEADERS {
                for v in h.get_all(name) {
                    let v = String::from_utf8_lossy(v.as_bytes());
                    for item in v.split(',').map(str::trim).filter(|i| !i.is_empty()) {
                        let (kind, value) = item.split_once('=').ok_or_else(|| {
                            invalid_argument(
                                name,
                                item,
                                "a grant is `id=`, `uri=` or `emailAddress=`",
                            )
                        })?;
                        let value = value.trim().trim_matches('"');
                        let grantee = match kind.trim() {
                            "id" => user(dir, value).await?,
                            "uri" => group(value)?,
                            "emailAddress" => return Err(unresolvable_email(value)),
                            _ => {
                                return Err(invalid_argument(
                                    name,
                                    item,
                                    "a grant is `id=`, `uri=` or `emailAddress=`",
                                ))
                            }
                        };
                        grants.push(grant(grantee, permission));
                    }
                }
            }
            check_count(&grants)?;
            Ok(Some(grants))
        }
    }
}

fn invalid_argument(name: &str, value: &str, why: &str) -> S3Error {
    S3Error::new(S3ErrorCode::InvalidArgument, why.to_string())
        .with("ArgumentName", name)
        .with("ArgumentValue", value)
}

fn unresolvable_email(email: &str) -> S3Error {
    S3Error::new(
        S3ErrorCode::UnresolvableGrantByEmailAddress,
        "The e-mail address you provided does not match any account on record.",
    )
    .with("EmailAddressProvided", email)
}

async fn user(dir: &Directory<'_>, id: &str) -> Result<Grantee, S3Error> {
    match dir.resolve(id).await? {
        Some(ak) => Ok(Grantee::User(ak)),
        None => Err(S3Error::new(S3ErrorCode::InvalidArgument, "Invalid id")
            .with("ArgumentName", "CanonicalUser/ID")
            .with("ArgumentValue", id)),
    }
}

fn group(uri: &str) -> Result<Grantee, S3Error> {
    match uri {
        ALL_USERS_URI => Ok(Grantee::AllUsers),
        AUTHENTICATED_USERS_URI => Ok(Grantee::AuthenticatedUsers),
        other => Err(S3Error::new(
            S3ErrorCode::InvalidArgument,
            "Invalid group uri (Cairn knows AllUsers and AuthenticatedUsers)",
        )
        .with("ArgumentName", "Group/URI")
        .with("ArgumentValue", other)),
    }
}

fn check_count(grants: &[Grant]) -> Result<(), S3Error> {
    if grants.len() > MAX_GRANTS {
        return Err(S3Error::new(
            S3ErrorCode::MalformedACLError,
            format!("An ACL holds at most {MAX_GRANTS} grants"),
        ));
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
struct PolicyXml {
    #[serde(rename = "Owner", default)]
    owner: Option<OwnerXml>,
    #[serde(rename = "AccessControlList", default)]
    list: ListXml,
}

#[derive(Debug, Deserialize)]
struct OwnerXml {
    #[serde(rename = "ID", default)]
    id: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
struct ListXml {
    #[serde(rename = "Grant", default)]
    grants: Vec<GrantXml>,
}

#[derive(Debug, Deserialize)]
struct GrantXml {
    #[serde(rename = "Grantee", default)]
    grantee: Option<GranteeXml>,
    #[serde(rename = "Permission", default)]
    permission: Option<String>,
}

#[derive(Debug, Deserialize)]
struct GranteeXml {
    #[serde(rename = "ID", default)]
    id: Option<String>,
    #[serde(rename = "URI", default)]
    uri: Option<String>,
    #[serde(rename = "EmailAddress", default)]
    email: Option<String>,
}

fn permission(p: &str) -> Option<Permission> {
    Some(match p.trim() {
        "READ" => Permission::Read,
        "WRITE" => Permission::Write,
        "READ_ACP" => Permission::ReadAcp,
        "WRITE_ACP" => Permission::WriteAcp,
        "FULL_CONTROL" => Permission::FullControl,
        _ => return None,
    })
}

fn permission_name(p: Permission) -> &'static str {
    match p {
        Permission::Read => "READ",
        Permission::Write => "WRITE",
        Permission::ReadAcp => "READ_ACP",
        Permission::WriteAcp => "WRITE_ACP",
        Permission::FullControl => "FULL_CONTROL",
    }
}

fn malformed_acl(why: impl Into<String>) -> S3Error {
    S3Error::new(S3ErrorCode::MalformedACLError, why)
}

/// The grants of an AccessControlPolicy document. As in S3 the document must name its Owner
/// (which cannot be changed this way, so its value is not used) and every grant both a
/// Grantee and a Permission: a document without them is refused rather than taken as "no
/// grants".
pub async fn from_xml(dir: &Directory<'_>, body: &[u8]) -> Result<Vec<Grant>, S3Error> {
    let policy: PolicyXml = crate::xml::parse(body).ok_or_else(S3Error::malformed_xml)?;
    if policy
        .owner
        .and_then(|o| o.id)
        .is_none_or(|id| id.trim().is_empty())
    {
        return Err(malformed_acl(
            "The AccessControlPolicy must name its Owner (Owner/ID)",
        ));
    }
    let mut grants = Vec::with_capacity(policy.list.grants.len());
    for g in policy.list.grants {
        let (Some(e), Some(p)) = (g.grantee, g.permission) else {
            return Err(malformed_acl(
                "Every Grant needs a Grantee and a Permission",
            ));
        };
        let permission = permission(&p)
            .ok_or_else(|| malformed_acl(format!("`{p}` is not an ACL permission")))?;
        let grantee = match (e.id, e.uri, e.email) {
            (Some(id), None, None) => user(dir, id.trim()).await?,
            (None, Some(uri), None) => group(uri.trim())?,
            (None, None, Some(email)) => return Err(unresolvable_email(email.trim())),
            _ => {
                return Err(malformed_acl(
                    "A grantee names exactly one of ID, URI or EmailAddress",
                ))
            }
        };
        grants.push(grant(grantee, permission));
    }
    check_count(&grants)?;
    Ok(grants)
}

/// The AccessControlPolicy document of a resource owned by `owner` (an access key) with
/// `grants`: group grants first, then users, each in stored order.
pub async fn policy_xml(
    dir: &mut Directory<'_>,
    owner: &str,
    grants: &[Grant],
) -> Result<String, S3Error> {
    let mut w = XmlWriter::new();
    w.open_root("AccessControlPolicy");
    dir.write_owner(&mut w, "Owner", owner).await?;
    w.open("AccessControlList");
    let groups = grants
        .iter()
        .filter(|g| !matches!(g.grantee, Grantee::User(_)));
    let users = grants
        .iter()
        .filter(|g| matches!(g.grantee, Grantee::User(_)));
    for g in groups.chain(users) {
        w.open("Grant");
        match &g.grantee {
            Grantee::User(ak) => {
                let name = dir.name(ak).await?;
                w.open_with("Grantee", &grantee_attrs("CanonicalUser"));
                w.elem("ID", &canonical_id(ak));
                w.elem("DisplayName", &name);
            }
            Grantee::AllUsers => {
                w.open_with("Grantee", &grantee_attrs("Group"));
                w.elem("URI", ALL_USERS_URI);
            }
            Grantee::AuthenticatedUsers => {
                w.open_with("Grantee", &grantee_attrs("Group"));
                w.elem("URI", AUTHENTICATED_USERS_URI);
            }
        }
        w.close("Grantee");
        w.elem("Permission", permission_name(g.permission));
        w.close("Grant");
    }
    w.close("AccessControlList");
    w.close("AccessControlPolicy");
    Ok(w.finish())
}

fn grantee_attrs(kind: &str) -> String {
    format!(r#"xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="{kind}""#)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canned_acls_expand() {
        let g = canned("public-read-write", "A", "A").unwrap();
        assert_eq!(
            g,
            vec![
                grant(Grantee::AllUsers, Permission::Read),
                grant(Grantee::AllUsers, Permission::Write),
                grant(Grantee::User("A".into()), Permission::FullControl),
            ]
        );
        assert_eq!(canned("private", "A", "B").unwrap(), private("A"));
        assert_eq!(canned("bucket-owner-read", "A", "A").unwrap(), private("A"));
        assert_eq!(
            canned("bucket-owner-read", "A", "B").unwrap()[1],
            grant(Grantee::User("B".into()), Permission::Read)
        );
        assert_eq!(
            canned("bucket-owner-full-control", "A", "B").unwrap()[1],
            grant(Grantee::User("B".into()), Permission::FullControl)
        );
        assert_eq!(
            canned("authenticated-read", "A", "A").unwrap()[0].grantee,
            Grantee::AuthenticatedUsers
        );
        assert_eq!(
            canned("public", "A", "A").unwrap_err().code,
            S3ErrorCode::InvalidArgument
        );
    }

    #[test]
    fn groups_and_permissions_parse() {
        assert_eq!(group(ALL_USERS_URI).unwrap(), Grantee::AllUsers);
        assert_eq!(
            group(AUTHENTICATED_USERS_URI).unwrap(),
            Grantee::AuthenticatedUsers
        );
        assert!(group("http://acs.amazonaws.com/groups/s3/LogDelivery").is_err());
        for p in [
            Permission::Read,
            Permission::Write,
            Permission::ReadAcp,
            Permission::WriteAcp,
            Permission::FullControl,
        ] {
            assert_eq!(permission(permission_name(p)), Some(p));
        }
        assert_eq!(permission("ALL"), None);
    }
}
