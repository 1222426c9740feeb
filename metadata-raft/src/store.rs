//! [`RaftMetadataStore`]: the metadata seam over Raft. Writes are proposed to the group
//! (through the leader, wherever it is); reads are served by this node's replica after a
//! read-index barrier, so they are linearizable on every node.

use std::sync::Arc;

use async_trait::async_trait;
use cairn_types::{BucketName, ObjectKey};

use super::RaftNode;
use cairn_metadata::data_refs::{DataAddress, DataPage};
use cairn_metadata::list::{ListPage, ListQuery};
use cairn_metadata::multipart::{UploadPage, UploadQuery};
use cairn_metadata::records::{
    AccessKeyRecord, BucketConfigKind, BucketRecord, GcEntry, ObjectRecord, PartRecord,
    UploadRecord,
};
use cairn_metadata::version_list::{VersionPage, VersionQuery};
use cairn_metadata::versions::VersionSel;
use cairn_metadata::{Command, CommandOutput, MetadataStore, Result, VersionRecord};
use cairn_metadata_rocks::RocksMetadataStore;

/// Metadata replicated by Raft; reads come from the local replica once it is current.
#[derive(Clone)]
pub struct RaftMetadataStore {
    node: Arc<RaftNode>,
    local: RocksMetadataStore,
}

impl RaftMetadataStore {
    pub fn new(node: Arc<RaftNode>, local: RocksMetadataStore) -> Self {
        RaftMetadataStore { node, local }
    }

    pub fn node(&self) -> &Arc<RaftNode> {
        &self.node
    }
}

#[async_trait]
impl MetadataStore for RaftMetadataStore {
    async fn apply(&self, cmd: Command) -> Result<CommandOutput> {
        self.node.write(cmd).await
    }

    async fn get_bucket(&self, name: &BucketName) -> Result<Option<BucketRecord>> {
        self.node.linearize().await?;
        self.local.get_bucket(name).await
    }

    async fn list_buckets(&self) -> Result<Vec<BucketRecord>> {
        self.node.linearize().await?;
        self.local.list_buckets().await
    }

    async fn get_object(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
    ) -> Result<Option<ObjectRecord>> {
        self.node.linearize().await?;
        self.local.get_object(bucket, key).await
    }

    async fn list_objects(
        &self,
        bucket: &BucketName,
        query: &ListQuery,
    ) -> Result<ListPage<ObjectRecord>> {
        self.node.linearize().await?;
        self.local.list_objects(bucket, query).await
    }

    async fn get_version(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        sel: &VersionSel,
    ) -> Result<Option<VersionRecord>> {
        self.node.linearize().await?;
        self.local.get_version(bucket, key, sel).await
    }

    async fn list_versions(
        &self,
        bucket: &BucketName,
        query: &VersionQuery,
    ) -> Result<VersionPage> {
        self.node.linearize().await?;
        self.local.list_versions(bucket, query).await
    }

    async fn get_access_key(&self, access_key: &str) -> Result<Option<AccessKeyRecord>> {
        self.node.linearize().await?;
        self.local.get_access_key(access_key).await
    }

    async fn get_bucket_config(
        &self,
        bucket: &BucketName,
        kind: BucketConfigKind,
    ) -> Result<Option<Vec<u8>>> {
        self.node.linearize().await?;
        self.local.get_bucket_config(bucket, kind).await
    }

    async fn list_access_keys(&self) -> Result<Vec<AccessKeyRecord>> {
        self.node.linearize().await?;
        self.local.list_access_keys().await
    }

    async fn gc_pending(&self, limit: usize) -> Result<Vec<(u64, GcEntry)>> {
        self.node.linearize().await?;
        self.local.gc_pending(limit).await
    }

    async fn get_sys(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.node.linearize().await?;
        self.local.get_sys(key).await
    }

    async fn scan_sys(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>> {
        self.node.linearize().await?;
        self.local.scan_sys(prefix).await
    }

    async fn get_sys_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>> {
        self.node.linearize().await?;
        self.local.get_sys_many(keys).await
    }

    async fn get_bucket_configs(
        &self,
        bucket: &BucketName,
    ) -> Result<Vec<(BucketConfigKind, Vec<u8>)>> {
        self.node.linearize().await?;
        self.local.get_bucket_configs(bucket).await
    }

    async fn get_upload(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &str,
    ) -> Result<Option<UploadRecord>> {
        self.node.linearize().await?;
        self.local.get_upload(bucket, key, upload_id).await
    }

    async fn list_parts(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &str,
        after: u32,
        max: usize,
    ) -> Result<(Vec<PartRecord>, bool)> {
        self.node.linearize().await?;
        self.local
            .list_parts(bucket, key, upload_id, after, max)
            .await
    }

    async fn list_uploads(&self, bucket: &BucketName, query: &UploadQuery) -> Result<UploadPage> {
        self.node.linearize().await?;
        self.local.list_uploads(bucket, query).await
    }

    async fn scan_data(&self, after: Option<DataAddress>, limit: usize) -> Result<DataPage> {
        self.node.linearize().await?;
        self.local.scan_data(after, limit).await
    }
}
