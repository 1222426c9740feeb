//! The older shapes of records whose shape changed, decoded from old data and converted
//! into the current ones. Never change a shape here: it is what old bytes mean.

use super::*;

/// [`ObjectRecord`] before versioning and tagging.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRecordV1 {
    pub size: u64,
    pub etag: String,
    pub last_modified_ms: i64,
    pub content_type: Option<String>,
    pub headers: BTreeMap<String, String>,
    pub user_meta: BTreeMap<String, String>,
    pub checksum: Option<StoredChecksum>,
    pub data: ObjectData,
}

impl From<ObjectRecordV1> for ObjectRecord {
    fn from(o: ObjectRecordV1) -> Self {
        ObjectRecordV2 {
            size: o.size,
            etag: o.etag,
            last_modified_ms: o.last_modified_ms,
            content_type: o.content_type,
            headers: o.headers,
            user_meta: o.user_meta,
            checksum: o.checksum,
            data: o.data,
            version_id: None,
            tags: TagSet::new(),
        }
        .into()
    }
}

/// [`ObjectRecord`] before ACLs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRecordV2 {
    pub size: u64,
    pub etag: String,
    pub last_modified_ms: i64,
    pub content_type: Option<String>,
    pub headers: BTreeMap<String, String>,
    pub user_meta: BTreeMap<String, String>,
    pub checksum: Option<StoredChecksum>,
    pub data: ObjectData,
    pub version_id: Option<String>,
    pub tags: TagSet,
}

impl From<ObjectRecordV2> for ObjectRecord {
    fn from(o: ObjectRecordV2) -> Self {
        ObjectRecord {
            size: o.size,
            etag: o.etag,
            last_modified_ms: o.last_modified_ms,
            content_type: o.content_type,
            headers: o.headers,
            user_meta: o.user_meta,
            checksum: o.checksum,
            data: o.data,
            version_id: o.version_id,
            tags: o.tags,
            acl: None,
            upload_id: None,
        }
    }
}

/// [`VersionRecord`] before ACLs (its object in the V2 shape).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionRecordV1 {
    pub version_id: Option<String>,
    pub last_modified_ms: i64,
    pub object: Option<ObjectRecordV2>,
}

impl From<VersionRecordV1> for VersionRecord {
    fn from(v: VersionRecordV1) -> Self {
        VersionRecord {
            version_id: v.version_id,
            last_modified_ms: v.last_modified_ms,
            object: v.object.map(Into::into),
        }
    }
}

/// [`UploadRecord`] before tagging.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadRecordV1 {
    pub upload_id: String,
    pub initiated_ms: i64,
    pub owner: String,
    pub content_type: Option<String>,
    pub headers: BTreeMap<String, String>,
    pub user_meta: BTreeMap<String, String>,
    pub checksum_algorithm: Option<String>,
    pub checksum_type: Option<String>,
}

impl From<UploadRecordV1> for UploadRecord {
    fn from(u: UploadRecordV1) -> Self {
        UploadRecordV2 {
            upload_id: u.upload_id,
            initiated_ms: u.initiated_ms,
            owner: u.owner,
            content_type: u.content_type,
            headers: u.headers,
            user_meta: u.user_meta,
            checksum_algorithm: u.checksum_algorithm,
            checksum_type: u.checksum_type,
            tags: TagSet::new(),
        }
        .into()
    }
}

/// [`UploadRecord`] before ACLs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadRecordV2 {
    pub upload_id: String,
    pub initiated_ms: i64,
    pub owner: String,
    pub content_type: Option<String>,
    pub headers: BTreeMap<String, String>,
    pub user_meta: BTreeMap<String, String>,
    pub checksum_algorithm: Option<String>,
    pub checksum_type: Option<String>,
    pub tags: TagSet,
}

impl From<UploadRecordV2> for UploadRecord {
    fn from(u: UploadRecordV2) -> Self {
        UploadRecord {
            upload_id: u.upload_id,
            initiated_ms: u.initiated_ms,
            owner: u.owner,
            content_type: u.content_type,
            headers: u.headers,
            user_meta: u.user_meta,
            checksum_algorithm: u.checksum_algorithm,
            checksum_type: u.checksum_type,
            tags: u.tags,
            acl: None,
        }
    }
}
