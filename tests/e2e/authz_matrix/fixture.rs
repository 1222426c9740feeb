//! Each cell's bucket: made with the ACLs the caller needs, and read back whole by the owner
//! to prove that a denied request changed nothing.

use super::*;

/// A call's result as state: the value, or the error code (never request ids or times).
pub(super) fn show<T: std::fmt::Debug, E: aws_sdk_s3::error::ProvideErrorMetadata, R>(
    r: Result<T, aws_sdk_s3::error::SdkError<E, R>>,
) -> String {
    match r {
        Ok(v) => format!("{v:?}"),
        Err(e) => format!("error {:?}", code_of(&e)),
    }
}

/// An owner's view of everything in a bucket a request could change.
pub(super) async fn snapshot(
    s3: &Client,
    bucket: &str,
    upload_id: &str,
) -> BTreeMap<&'static str, String> {
    let mut out = BTreeMap::new();
    let exists = s3.head_bucket().bucket(bucket).send().await.is_ok();
    out.insert("exists", exists.to_string());
    if !exists {
        return out;
    }
    let versions = s3.list_object_versions().bucket(bucket).send().await;
    out.insert(
        "versions",
        show(versions.map(|v| {
            let mut all: Vec<String> = v
                .versions()
                .iter()
                .map(|v| format!("{:?} {:?} {:?}", v.key(), v.version_id(), v.e_tag()))
                .collect();
            all.extend(
                v.delete_markers()
                    .iter()
                    .map(|d| format!("marker {:?} {:?}", d.key(), d.version_id())),
            );
            all
        })),
    );
    let body = match s3.get_object().bucket(bucket).key("obj").send().await {
        Ok(o) => md5_hex(&o.body.collect().await.unwrap().into_bytes()),
        Err(e) => format!("error {:?}", code_of(&e)),
    };
    out.insert("obj", body);
    let r = s3.get_object_acl().bucket(bucket).key("obj").send().await;
    out.insert("obj acl", show(r.map(|a| a.grants().to_vec())));
    let r = s3
        .get_object_tagging()
        .bucket(bucket)
        .key("obj")
        .send()
        .await;
    out.insert("obj tags", show(r.map(|t| t.tag_set().to_vec())));
    let r = s3.get_bucket_acl().bucket(bucket).send().await;
    out.insert("bucket acl", show(r.map(|a| a.grants().to_vec())));
    let r = s3.get_bucket_tagging().bucket(bucket).send().await;
    out.insert("bucket tags", show(r.map(|t| t.tag_set().to_vec())));
    let r = s3.get_bucket_cors().bucket(bucket).send().await;
    out.insert("cors", show(r.map(|c| c.cors_rules().to_vec())));
    let r = s3.get_bucket_versioning().bucket(bucket).send().await;
    out.insert("versioning", show(r.map(|v| v.status().cloned())));
    let r = s3
        .list_parts()
        .bucket(bucket)
        .key("obj")
        .upload_id(upload_id)
        .send()
        .await;
    out.insert(
        "parts",
        show(r.map(|p| {
            p.parts()
                .iter()
                .map(|p| (p.part_number(), p.e_tag().map(str::to_string)))
                .collect::<Vec<_>>()
        })),
    );
    let r = s3.head_object().bucket(bucket).key("absent").send().await;
    out.insert("absent", show(r.map(|o| o.e_tag().map(str::to_string))));
    let r = s3.list_multipart_uploads().bucket(bucket).send().await;
    out.insert(
        "uploads",
        show(r.map(|u| {
            u.uploads()
                .iter()
                .map(|u| {
                    (
                        u.key().map(str::to_string),
                        u.upload_id().map(str::to_string),
                    )
                })
                .collect::<Vec<_>>()
        })),
    );
    out
}

/// Creates the bucket of one case: owned by the root key, with the ACLs `who` needs, an
/// object `obj` (tagged), bucket tags and CORS rules, and an upload of `obj` with one part.
pub(super) async fn fixture(
    s3: &Client,
    ids: &BTreeMap<&str, String>,
    bucket: &str,
    who: Who,
) -> Fixture {
    let grant = |p: Perm| {
        let id = format!(
            "id={}",
            ids[match p {
                Perm::Read => "reader",
                Perm::Write => "writer",
                Perm::ReadAcp => "acpreader",
                Perm::WriteAcp => "acpwriter",
                Perm::Full => "full",
            }]
        );
        (p, id)
    };
    let mut create = s3.create_bucket().bucket(bucket);
    // The caller granted FULL_CONTROL, then denied everything by the bucket policy.
    let who_for_grants = match who {
        Who::GrantedButDeniedByPolicy => Who::Grantee(Perm::Full),
        w => w,
    };
    let mut put = s3
        .put_object()
        .bucket(bucket)
        .key("obj")
        .body(ByteStream::from(
            format!("matrix data of {bucket}").into_bytes(),
        ))
        .tagging("t=1");
    match who_for_grants {
        Who::Grantee(p) => {
            let (p, id) = grant(p);
            create = match p {
                Perm::Read => create.grant_read(&id),
                Perm::Write => create.grant_write(&id),
                Perm::ReadAcp => create.grant_read_acp(&id),
                Perm::WriteAcp => create.grant_write_acp(&id),
                Perm::Full => create.grant_full_control(&id),
            };
            put = match p {
                Perm::Read => put.grant_read(&id),
                Perm::Write => put,
                Perm::ReadAcp => put.grant_read_acp(&id),
                Perm::WriteAcp => put.grant_write_acp(&id),
                Perm::Full => put.grant_full_control(&id),
            };
        }
        Who::OtherOnAuthenticatedRead => {
            create = create.acl(BucketCannedAcl::AuthenticatedRead);
            put = put.acl(ObjectCannedAcl::AuthenticatedRead);
        }
        Who::AnonymousOnPublicRead => {
            create = create.acl(BucketCannedAcl::PublicRead);
            put = put.acl(ObjectCannedAcl::PublicRead);
        }
        Who::AnonymousOnPublicReadWrite => {
            create = create.acl(BucketCannedAcl::PublicReadWrite);
            put = put.acl(ObjectCannedAcl::PublicRead);
        }
        _ => {}
    }
    create
        .send()
        .await
        .unwrap_or_else(|e| panic!("{bucket}: {e:?}"));
    put.send()
        .await
        .unwrap_or_else(|e| panic!("{bucket}: {e:?}"));
    let policy = |effect: &str, user: &str| {
        let (_, ak, _) = USERS.iter().find(|(n, _, _)| *n == user).unwrap();
        format!(
            r#"{{"Statement":[{{"Effect":"{effect}","Principal":{{"AWS":"{ak}"}},"Action":"s3:*","Resource":["arn:aws:s3:::{bucket}","arn:aws:s3:::{bucket}/*"]}}]}}"#
        )
    };
    let bucket_policy = match who {
        Who::AllowedByPolicy => Some(policy("Allow", "other")),
        Who::GrantedButDeniedByPolicy => Some(policy("Deny", "full")),
        _ => None,
    };
    if let Some(doc) = bucket_policy {
        s3.put_bucket_policy()
            .bucket(bucket)
            .policy(doc)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{bucket}: {e:?}"));
    }
    s3.put_bucket_tagging()
        .bucket(bucket)
        .tagging(
            Tagging::builder()
                .tag_set(Tag::builder().key("b").value("1").build().unwrap())
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    s3.put_bucket_cors()
        .bucket(bucket)
        .cors_configuration(
            CorsConfiguration::builder()
                .cors_rules(
                    CorsRule::builder()
                        .allowed_origins("https://app.example")
                        .allowed_methods("PUT")
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let up = s3
        .create_multipart_upload()
        .bucket(bucket)
        .key("obj")
        .send()
        .await
        .unwrap();
    let upload_id = up.upload_id().unwrap().to_string();
    let part = s3
        .upload_part()
        .bucket(bucket)
        .key("obj")
        .upload_id(&upload_id)
        .part_number(1)
        .body(ByteStream::from_static(b"part one"))
        .send()
        .await
        .unwrap();
    Fixture {
        bucket: bucket.to_string(),
        upload_id,
        part_etag: part.e_tag().unwrap().to_string(),
    }
}
