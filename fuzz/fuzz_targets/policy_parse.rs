//! `Policy::parse` never panics on arbitrary bytes, read as a bucket policy or as an
//! identity policy; a policy that parses evaluates against fixed requests (anonymous and
//! signed, with condition keys present and absent), answers `is_public` and lists its
//! resources, all without panicking.
#![no_main]

use cairn_policy::{combine, ConditionValues, Policy, PolicyKind, RequestContext};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut full = ConditionValues::new();
    full.insert("aws:SourceIp", "192.0.2.1");
    full.insert("aws:SecureTransport", "true");
    full.insert("aws:username", "bob");
    full.insert("aws:userid", "AIDAEXAMPLE");
    full.insert("aws:CurrentTime", "2024-01-01T00:00:00Z");
    full.insert("aws:EpochTime", "1704067200");
    full.insert("s3:max-keys", "100");
    full.insert("s3:prefix", "home/bob/");
    full.insert("aws:TagKeys", "env");
    full.insert("aws:TagKeys", "team");
    full.insert("aws:SourceArn", "arn:aws:sns:us-east-1:111122223333:topic");
    let empty = ConditionValues::new();
    let ids = vec![
        "arn:aws:iam::111122223333:user/bob".to_owned(),
        "AKIAEXAMPLE".to_owned(),
    ];
    let requests = [
        RequestContext {
            principal: &ids,
            anonymous: false,
            action: "s3:GetObject",
            resource: "arn:aws:s3:::examplebucket/home/bob/notes.txt",
            conditions: &full,
        },
        RequestContext {
            principal: &[],
            anonymous: true,
            action: "s3:ListBucket",
            resource: "arn:aws:s3:::examplebucket",
            conditions: &empty,
        },
    ];
    let kinds = [
        PolicyKind::Bucket {
            bucket: "examplebucket".to_owned(),
        },
        PolicyKind::Identity,
    ];
    for kind in kinds {
        if let Ok(policy) = Policy::parse(data, kind) {
            let decisions: Vec<_> = requests.iter().map(|r| policy.evaluate(r)).collect();
            let _ = combine(decisions);
            let _ = policy.is_public();
            let _ = policy.resources().map(str::len).sum::<usize>();
        }
    }
});
