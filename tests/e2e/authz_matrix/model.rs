//! The reference model: the matrix's users, callers, resources and permissions, and what
//! S3's ACL rules (as read here, apart from the server's table) allow each of them.

use super::*;

/// The keys of the matrix: `(name, access key, secret)`. The root key owns every bucket.
pub(super) const USERS: &[(&str, &str, &str)] = &[
    (
        "other",
        "MATRIXOTHER000000001",
        "matrix-other-secret-00000000000000001",
    ),
    (
        "reader",
        "MATRIXREAD0000000001",
        "matrix-read-secret-000000000000000001",
    ),
    (
        "writer",
        "MATRIXWRITE000000001",
        "matrix-write-secret-00000000000000001",
    ),
    (
        "acpreader",
        "MATRIXRACP0000000001",
        "matrix-racp-secret-000000000000000001",
    ),
    (
        "acpwriter",
        "MATRIXWACP0000000001",
        "matrix-wacp-secret-000000000000000001",
    ),
    (
        "full",
        "MATRIXFULL0000000001",
        "matrix-full-secret-000000000000000001",
    ),
    (
        "confined",
        "MATRIXCONFINED000001",
        "matrix-confined-secret-0000000000001",
    ),
];

/// The identity policy of the `confined` key: GetObject of any object, nothing else.
pub(super) const CONFINED_POLICY: &str =
    r#"{"Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::*"}]}"#;

/// ACL permissions, as the model knows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Perm {
    Read,
    Write,
    ReadAcp,
    WriteAcp,
    Full,
}

/// Who sends a request, and on what kind of bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Who {
    /// The bucket's (and the objects') owner, header-signed.
    Owner,
    /// Another key without any grant, header-signed.
    Other,
    /// A key granted `Perm` on the bucket and on its objects, header-signed.
    Grantee(Perm),
    /// Another key, on a bucket and objects with the `authenticated-read` canned ACL.
    OtherOnAuthenticatedRead,
    /// No credentials, private bucket.
    Anonymous,
    /// No credentials, bucket `public-read`, objects `public-read`.
    AnonymousOnPublicRead,
    /// No credentials, bucket `public-read-write`, objects `public-read`.
    AnonymousOnPublicReadWrite,
    /// A presigned URL by the key without grants, for exactly this request.
    PresignedByOther,
    /// The owner's presigned URL for GetObject of `obj`, replayed with this request's
    /// method, path and query.
    OwnerPresignedGetReplayed,
    /// Another key without grants, on a bucket whose policy allows it `s3:*`.
    AllowedByPolicy,
    /// The key granted FULL_CONTROL on the bucket and `obj`, which the bucket policy denies
    /// `s3:*`.
    GrantedButDeniedByPolicy,
    /// A key whose identity policy allows `s3:GetObject` on every object, and nothing else.
    Confined,
}

pub(super) const CALLERS: &[Who] = &[
    Who::Owner,
    Who::Other,
    Who::Grantee(Perm::Read),
    Who::Grantee(Perm::Write),
    Who::Grantee(Perm::ReadAcp),
    Who::Grantee(Perm::WriteAcp),
    Who::Grantee(Perm::Full),
    Who::OtherOnAuthenticatedRead,
    Who::Anonymous,
    Who::AnonymousOnPublicRead,
    Who::AnonymousOnPublicReadWrite,
    Who::PresignedByOther,
    Who::OwnerPresignedGetReplayed,
    Who::AllowedByPolicy,
    Who::GrantedButDeniedByPolicy,
    Who::Confined,
];

/// What the request addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Resource {
    /// The bucket, its object `obj` (and, for object operations, `obj` itself).
    Existing,
    /// A bucket that does not exist.
    MissingBucket,
    /// An existing bucket, the key `absent` (object operations only).
    MissingKey,
}

/// What the model requires (its own reading of S3's ACL rules).
#[derive(Debug, Clone, Copy)]
pub(super) enum Need {
    Public,
    AnyKey,
    BucketOwner,
    Bucket(Perm),
    Object(Perm),
}
/// What the model says `who` holds on the bucket and on `obj`.
pub(super) fn holds(who: Who, need: Need) -> bool {
    use Perm::*;
    let has = |granted: &[Perm], p: Perm| granted.contains(&p) || granted.contains(&Full);
    // (signed, owns the bucket and `obj`, bucket grants, `obj` grants)
    let (signed, owner, bucket, object): (bool, bool, Vec<Perm>, Vec<Perm>) = match who {
        Who::Owner => (true, true, vec![Full], vec![Full]),
        Who::Other | Who::PresignedByOther => (true, false, vec![], vec![]),
        // WRITE means nothing on an object.
        Who::Grantee(Write) => (true, false, vec![Write], vec![]),
        Who::Grantee(p) => (true, false, vec![p], vec![p]),
        Who::OtherOnAuthenticatedRead => (true, false, vec![Read], vec![Read]),
        Who::Anonymous => (false, false, vec![], vec![]),
        Who::AnonymousOnPublicRead => (false, false, vec![Read], vec![Read]),
        Who::AnonymousOnPublicReadWrite => (false, false, vec![Read, Write], vec![Read]),
        Who::OwnerPresignedGetReplayed
        | Who::AllowedByPolicy
        | Who::GrantedButDeniedByPolicy
        | Who::Confined => unreachable!("decided by policies"),
    };
    match need {
        Need::Public => true,
        Need::AnyKey => signed,
        Need::BucketOwner => owner,
        Need::Bucket(p) => has(&bucket, p),
        Need::Object(p) => has(&object, p),
    }
}

/// The statuses the model expects; `Err(())` for "denied" (403, data unchanged).
pub(super) fn expect(op: Op, sh: &Shape, who: Who, res: Resource) -> Result<Vec<u16>, ()> {
    if op == Op::PreflightRequest {
        // Browsers send preflights without credentials: whatever else the request carries
        // is not looked at, and only the bucket's CORS rules answer.
        return Ok(match res {
            Resource::MissingBucket => NOT_FOUND.to_vec(),
            _ => sh.ok.to_vec(),
        });
    }
    if who == Who::OwnerPresignedGetReplayed {
        // Only the very request that was signed passes, as the owner's.
        return if op == Op::GetObject && res != Resource::MissingKey {
            expect(op, sh, Who::Owner, res)
        } else {
            Err(())
        };
    }
    if let Some(decided) = by_policy(op, sh, who, res) {
        return decided;
    }
    let anonymous = matches!(
        who,
        Who::Anonymous | Who::AnonymousOnPublicRead | Who::AnonymousOnPublicReadWrite
    );
    match (op, res) {
        (Op::ListBuckets, _) => return if anonymous { Err(()) } else { Ok(OK.to_vec()) },
        (Op::CreateBucket, Resource::MissingBucket) => {
            return if anonymous { Err(()) } else { Ok(OK.to_vec()) }
        }
        (Op::CreateBucket, _) if anonymous => return Err(()),
        (Op::CreateBucket, _) if who == Who::Owner => return Ok(sh.ok.to_vec()),
        (Op::CreateBucket, _) => return Ok(vec![409]),
        // Anyone learns that a bucket does not exist.
        (_, Resource::MissingBucket) => return Ok(NOT_FOUND.to_vec()),
        _ => {}
    }
    if res == Resource::MissingKey && matches!(sh.need, Need::Object(_)) {
        // There is no object whose ACL could decide: only a caller that may list the
        // bucket learns that the key is missing.
        return if holds(who, Need::Bucket(Perm::Read)) {
            Ok(sh.ok_missing_key.to_vec())
        } else {
            Err(())
        };
    }
    if !holds(who, sh.need) {
        return Err(());
    }
    if sh.reads_source && !holds(who, Need::Object(Perm::Read)) {
        return Err(());
    }
    match res {
        Resource::Existing => Ok(sh.ok.to_vec()),
        Resource::MissingKey => Ok(sh.ok_missing_key.to_vec()),
        Resource::MissingBucket => unreachable!(),
    }
}

/// What the policy callers may do (the model's reading of S3's rule: an explicit Deny wins;
/// a bucket policy's Allow grants what ACLs do not, but never the policy operations to
/// anyone but the owner; a key with an identity policy has exactly what it allows); `None`
/// for the other callers.
fn by_policy(op: Op, sh: &Shape, who: Who, res: Resource) -> Option<Result<Vec<u16>, ()>> {
    let ok = |res: Resource| match res {
        Resource::Existing => Ok(sh.ok.to_vec()),
        Resource::MissingKey => Ok(sh.ok_missing_key.to_vec()),
        Resource::MissingBucket => Ok(NOT_FOUND.to_vec()),
    };
    let on_service = matches!(op, Op::ListBuckets | Op::CreateBucket);
    let policy_op = matches!(
        op,
        Op::GetBucketPolicy | Op::PutBucketPolicy | Op::DeleteBucketPolicy
    );
    Some(match who {
        Who::AllowedByPolicy | Who::GrantedButDeniedByPolicy if on_service => {
            // Not the bucket's policy's business: any key lists its buckets and may make
            // a new one.
            match (op, res) {
                (Op::CreateBucket, Resource::Existing) => Ok(vec![409]),
                _ => Ok(OK.to_vec()),
            }
        }
        _ if res == Resource::MissingBucket && !on_service => {
            if matches!(
                who,
                Who::AllowedByPolicy | Who::GrantedButDeniedByPolicy | Who::Confined
            ) {
                Ok(NOT_FOUND.to_vec())
            } else {
                return None;
            }
        }
        Who::AllowedByPolicy if policy_op => Err(()),
        Who::AllowedByPolicy => ok(res),
        Who::GrantedButDeniedByPolicy => Err(()),
        Who::Confined => match (op, res) {
            (Op::GetObject | Op::HeadObject, Resource::Existing) => ok(res),
            _ => Err(()),
        },
        _ => return None,
    })
}
