//! Buckets as S3 sees them: creating (with an ACL), deleting, looking up and listing them;
//! their configuration documents (the ACL, versioning state, and the documents the front end
//! keeps opaque); object and version listings; and the access keys the front end names
//! owners and grantees by.

use cairn_metadata::{
    AccessKeyRecord, BucketConfigKind, BucketRecord, Command, Grant, Grantee, ListEntry, ListPage,
    ListQuery, MetadataError, ObjectRecord, Permission, PublicAccessBlock, VersionEntry,
    VersionPage, VersionQuery, VersionRecord, VersioningState,
};
use cairn_types::clock::now_ms;
use cairn_types::BucketName;

use crate::{ObjectService, ObjectsError};

/// The ACL of a resource without a stored one: its owner's full control.
pub fn private_acl(owner: &str) -> Vec<Grant> {
    vec![Grant {
        grantee: Grantee::User(owner.into()),
        permission: Permission::FullControl,
    }]
}

/// What a CreateBucket did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BucketCreated {
    /// The bucket is new.
    Created,
    /// The caller already owns a bucket of that name (with the requested ACL, or not).
    AlreadyOwned { same_acl: bool },
}

/// A page of a key's buckets.
#[derive(Debug, Clone, Default)]
pub struct BucketListing {
    pub buckets: Vec<BucketRecord>,
    pub truncated: bool,
}

impl ObjectService {
    /// Creates bucket `name` owned by `owner`, with `acl` (`None`: private). A bucket of that
    /// name owned by someone else is `BucketExists`.
    pub async fn create_bucket(
        &self,
        name: &BucketName,
        owner: &str,
        acl: Option<Vec<Grant>>,
    ) -> Result<BucketCreated, ObjectsError> {
        let rec = BucketRecord {
            name: name.clone(),
            created_ms: now_ms(),
            owner: owner.to_string(),
        };
        match self.meta.apply(Command::CreateBucket(rec)).await {
            Ok(_) => {
                if let Some(grants) = &acl {
                    self.set_bucket_acl(name, grants).await?;
                }
                Ok(BucketCreated::Created)
            }
            Err(MetadataError::BucketExists { owner: o }) if o == owner => {
                let existing = self.bucket(name).await?;
                let same_acl =
                    self.bucket_acl(&existing).await? == acl.unwrap_or_else(|| private_acl(owner));
                Ok(BucketCreated::AlreadyOwned { same_acl })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes an empty bucket.
    pub async fn delete_bucket(&self, name: &BucketName) -> Result<(), ObjectsError> {
        self.meta
            .apply(Command::DeleteBucket { name: name.clone() })
            .await?;
        Ok(())
    }

    /// The bucket's record, or `NoSuchBucket`.
    pub async fn bucket(&self, name: &BucketName) -> Result<BucketRecord, ObjectsError> {
        self.meta
            .get_bucket(name)
            .await?
            .ok_or(ObjectsError::Metadata(MetadataError::NoSuchBucket))
    }

    /// Up to `max` of `owner`'s buckets whose names start with `prefix` and sort after
    /// `after`, in name order.
    pub async fn list_buckets(
        &self,
        owner: &str,
        prefix: &str,
        after: &str,
        max: usize,
    ) -> Result<BucketListing, ObjectsError> {
        let mut buckets: Vec<_> = self
            .meta
            .list_buckets()
            .await?
            .into_iter()
            .filter(|b| b.owner == owner)
            .filter(|b| b.name.as_str().starts_with(prefix) && b.name.as_str() > after)
            .collect();
        buckets.sort_by(|a, b| a.name.as_str().cmp(b.name.as_str()));
        let truncated = buckets.len() > max;
        buckets.truncate(max);
        Ok(BucketListing { buckets, truncated })
    }

    /// A configuration document of a bucket (CORS, tagging…), as stored, if set.
    pub async fn bucket_config(
        &self,
        bucket: &BucketName,
        kind: BucketConfigKind,
    ) -> Result<Option<Vec<u8>>, ObjectsError> {
        Ok(self.meta.get_bucket_config(bucket, kind).await?)
    }

    /// Every configuration document of a bucket, in one read.
    pub async fn bucket_configs(
        &self,
        bucket: &BucketName,
    ) -> Result<Vec<(BucketConfigKind, Vec<u8>)>, ObjectsError> {
        Ok(self.meta.get_bucket_configs(bucket).await?)
    }

    /// What authorizing a request needs from the cluster's state, in one read: the
    /// cluster-wide Block Public Access, and `access_key`'s identity policy (if it has one).
    pub async fn access_settings(
        &self,
        access_key: Option<&str>,
    ) -> Result<(PublicAccessBlock, Option<String>), ObjectsError> {
        let mut keys = vec![cairn_metadata::cluster_state::PUBLIC_ACCESS_BLOCK_KEY.to_string()];
        if let Some(ak) = access_key {
            keys.push(cairn_metadata::access_keys::policy_key(ak));
        }
        let mut values = self.meta.get_sys_many(&keys).await?.into_iter();
        let pab = match values.next().flatten() {
            Some(raw) => cairn_metadata::cluster_state::decode_public_access_block(&raw)?,
            None => PublicAccessBlock::default(),
        };
        let policy = values
            .next()
            .flatten()
            .map(|b| {
                String::from_utf8(b).map_err(|_| {
                    ObjectsError::Inconsistent("a stored key policy is not UTF-8".into())
                })
            })
            .transpose()?;
        Ok((pab, policy))
    }

    /// Sets (`Some`) or removes (`None`) a configuration document of a bucket.
    pub async fn set_bucket_config(
        &self,
        bucket: &BucketName,
        kind: BucketConfigKind,
        value: Option<Vec<u8>>,
    ) -> Result<(), ObjectsError> {
        self.meta
            .apply(Command::SetBucketConfig {
                bucket: bucket.clone(),
                kind,
                value,
            })
            .await?;
        Ok(())
    }

    /// The bucket's ACL grants: the stored ones, or the owner's full control.
    pub async fn bucket_acl(&self, bucket: &BucketRecord) -> Result<Vec<Grant>, ObjectsError> {
        match self
            .bucket_config(&bucket.name, BucketConfigKind::Acl)
            .await?
        {
            Some(b) => serde_json::from_slice(&b)
                .map_err(|e| ObjectsError::Inconsistent(format!("stored bucket ACL: {e}"))),
            None => Ok(private_acl(&bucket.owner)),
        }
    }

    /// Replaces the bucket's ACL grants.
    pub async fn set_bucket_acl(
        &self,
        bucket: &BucketName,
        grants: &[Grant],
    ) -> Result<(), ObjectsError> {
        let value = serde_json::to_vec(grants)
            .map_err(|e| ObjectsError::Inconsistent(format!("bucket ACL: {e}")))?;
        self.set_bucket_config(bucket, BucketConfigKind::Acl, Some(value))
            .await
    }

    /// Sets (`Some`) or removes a bucket's quota (its usage is counted first if it never
    /// was; see `cairn_metadata::usage`).
    pub async fn set_bucket_quota(
        &self,
        bucket: &BucketName,
        quota: Option<cairn_metadata::usage::BucketQuota>,
    ) -> Result<(), ObjectsError> {
        self.metadata()
            .apply(Command::SetBucketQuota {
                bucket: bucket.clone(),
                quota,
            })
            .await?;
        Ok(())
    }

    /// A bucket's quota and usage (`None`: none set; usage not counted yet).
    pub async fn bucket_quota(
        &self,
        bucket: &BucketName,
    ) -> Result<
        (
            Option<cairn_metadata::usage::BucketQuota>,
            Option<cairn_metadata::usage::BucketUsage>,
        ),
        ObjectsError,
    > {
        let (mut quota, mut usage) = (None, None);
        for (kind, raw) in self.bucket_configs(bucket).await? {
            match kind {
                BucketConfigKind::Quota => {
                    quota = Some(cairn_metadata::usage::BucketQuota::decode(&raw)?)
                }
                BucketConfigKind::Usage => {
                    usage = Some(cairn_metadata::usage::BucketUsage::decode(&raw)?)
                }
                _ => {}
            }
        }
        Ok((quota, usage))
    }

    /// The bucket's versioning state.
    pub async fn versioning(&self, bucket: &BucketName) -> Result<VersioningState, ObjectsError> {
        let v = self
            .bucket_config(bucket, BucketConfigKind::Versioning)
            .await?;
        Ok(VersioningState::parse(v.as_deref())?)
    }

    /// Enables or suspends versioning (a bucket never goes back to unversioned).
    pub async fn set_versioning(
        &self,
        bucket: &BucketName,
        state: VersioningState,
    ) -> Result<(), ObjectsError> {
        self.metadata()
            .apply(Command::SetVersioning {
                bucket: bucket.clone(),
                state,
            })
            .await?;
        Ok(())
    }

    /// A page of the bucket's current objects.
    pub async fn list_objects(
        &self,
        bucket: &BucketName,
        query: &ListQuery,
    ) -> Result<ListPage<ObjectRecord>, ObjectsError> {
        Ok(self.meta.list_objects(bucket, query).await?)
    }

    /// A page of the bucket's versions. An unversioned bucket keeps no history: each current
    /// object is its only (`null`) version.
    pub async fn list_versions(
        &self,
        bucket: &BucketName,
        q: &VersionQuery,
    ) -> Result<VersionPage, ObjectsError> {
        if self.versioning(bucket).await? != VersioningState::Unversioned {
            return Ok(self.meta.list_versions(bucket, q).await?);
        }
        let page = self
            .meta
            .list_objects(
                bucket,
                &ListQuery {
                    prefix: q.prefix.clone(),
                    delimiter: q.delimiter.clone(),
                    // A key has one version here, so after a version of it is after the key.
                    start_after: q.key_marker.clone(),
                    max_keys: q.max_keys,
                },
            )
            .await?;
        let mut out = VersionPage {
            is_truncated: page.is_truncated,
            ..Default::default()
        };
        for e in page.entries {
            out.entries.push(match e {
                ListEntry::Object(key, rec) => VersionEntry::Version {
                    key,
                    is_latest: true,
                    version: Box::new(VersionRecord {
                        version_id: None,
                        last_modified_ms: rec.last_modified_ms,
                        object: Some(rec),
                    }),
                },
                ListEntry::Prefix(p) => VersionEntry::Prefix(p),
            });
        }
        if out.is_truncated {
            match out.entries.last() {
                Some(VersionEntry::Version { key, .. }) => {
                    out.next_key_marker = Some(key.clone());
                    out.next_version_id_marker = Some("null".into());
                }
                Some(VersionEntry::Prefix(p)) => out.next_key_marker = Some(p.clone()),
                None => {}
            }
        }
        Ok(out)
    }

    /// An access key's record.
    pub async fn access_key(
        &self,
        access_key: &str,
    ) -> Result<Option<AccessKeyRecord>, ObjectsError> {
        Ok(self.meta.get_access_key(access_key).await?)
    }

    /// Every access key, in access-key order.
    pub async fn access_keys(&self) -> Result<Vec<AccessKeyRecord>, ObjectsError> {
        Ok(self.meta.list_access_keys().await?)
    }

    /// Whether access key `owner` was deleted (its buckets stay, managed by the operator).
    pub async fn key_deleted(&self, owner: &str) -> Result<bool, ObjectsError> {
        let tombstone = cairn_metadata::access_keys::deleted_key(owner);
        Ok(self.meta.get_sys(&tombstone).await?.is_some())
    }

    /// An access key's identity policy (the JSON document), if it has one.
    pub async fn access_key_policy(
        &self,
        access_key: &str,
    ) -> Result<Option<String>, ObjectsError> {
        let raw = self
            .meta
            .get_sys(&cairn_metadata::access_keys::policy_key(access_key))
            .await?;
        raw.map(|b| {
            String::from_utf8(b)
                .map_err(|_| ObjectsError::Inconsistent("a stored key policy is not UTF-8".into()))
        })
        .transpose()
    }

    /// Sets (`Some`) or removes (`None`) an access key's identity policy. The caller has
    /// checked the document.
    pub async fn set_access_key_policy(
        &self,
        access_key: &str,
        policy: Option<String>,
    ) -> Result<(), ObjectsError> {
        self.meta
            .apply(Command::SetAccessKeyPolicy {
                access_key: access_key.to_string(),
                policy,
            })
            .await?;
        Ok(())
    }

    /// The cluster-wide Block Public Access settings.
    pub async fn cluster_public_access_block(&self) -> Result<PublicAccessBlock, ObjectsError> {
        Ok(cairn_metadata::cluster_state::public_access_block(self.meta.as_ref()).await?)
    }

    /// Sets (`Some`) or removes (`None`) the cluster-wide Block Public Access settings.
    pub async fn set_cluster_public_access_block(
        &self,
        pab: Option<PublicAccessBlock>,
    ) -> Result<(), ObjectsError> {
        self.meta.apply(Command::SetPublicAccessBlock(pab)).await?;
        Ok(())
    }
}
