//! CompleteMultipartUpload: validates the listed parts against the stored ones, computes the
//! object's checksum from the part checksums (COMPOSITE or FULL_OBJECT), and commits
//! `CompleteUpload` under the write condition. A completion repeated after it succeeded
//! answers with the object it made (S3 lets a client retry a completion whose answer it
//! lost).

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use cairn_metadata::{
    Command, CommandOutput, CompletePart, PartRecord, StoredChecksum, UploadRecord, WriteCondition,
    MAX_PART_NUMBER,
};
use cairn_sigv4::{ChecksumAlgorithm, Checksummer};
use cairn_types::clock::now_ms;
use cairn_types::{BucketName, ObjectKey};

use super::{new_version_id, unexpected};
use crate::{ObjectService, ObjectsError};

/// The `ChecksumType` of a composite checksum.
pub const COMPOSITE: &str = "COMPOSITE";
/// The `ChecksumType` of a whole-object checksum.
pub const FULL_OBJECT: &str = "FULL_OBJECT";

/// A part as a completion lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedPart {
    pub part_number: u32,
    /// The part's ETag, unquoted.
    pub etag: String,
    /// The checksum the client names for the part: (algorithm name, base64 value).
    pub checksum: Option<(String, String)>,
}

/// A CompleteMultipartUpload.
#[derive(Debug, Clone)]
pub struct CompleteUpload {
    pub bucket: BucketName,
    pub key: ObjectKey,
    pub upload_id: String,
    pub parts: Vec<ListedPart>,
    /// The whole object's checksum the client claims (`x-amz-checksum-*`): algorithm and
    /// value.
    pub claimed_checksum: Option<(ChecksumAlgorithm, String)>,
    /// The object size the client claims (`x-amz-mp-object-size`), as sent.
    pub claimed_size: Option<String>,
    pub condition: WriteCondition,
}

/// The CRC a checksum algorithm is (only CRCs can be combined into a full-object checksum).
pub fn crc_of(alg: ChecksumAlgorithm) -> Option<crc_fast::CrcAlgorithm> {
    match alg {
        ChecksumAlgorithm::Crc32 => Some(crc_fast::CrcAlgorithm::Crc32IsoHdlc),
        ChecksumAlgorithm::Crc32c => Some(crc_fast::CrcAlgorithm::Crc32Iscsi),
        ChecksumAlgorithm::Crc64Nvme => Some(crc_fast::CrcAlgorithm::Crc64Nvme),
        ChecksumAlgorithm::Sha1 | ChecksumAlgorithm::Sha256 => None,
    }
}

/// The object's checksum from the listed parts' checksums (`sizes` are the parts' lengths),
/// when the upload asked for an algorithm and every listed part has that checksum: COMPOSITE
/// is `base64(checksum of the concatenated raw part checksums)-N`, FULL_OBJECT the CRC of the
/// whole object, combined from the part CRCs.
pub(crate) fn object_checksum(
    upload: &UploadRecord,
    listed: &[CompletePart],
    sizes: &[u64],
) -> Option<StoredChecksum> {
    let alg = upload
        .checksum_algorithm
        .as_deref()
        .and_then(ChecksumAlgorithm::from_name)?;
    let raws: Vec<Vec<u8>> = listed
        .iter()
        .map(|p| p.checksum.as_deref().and_then(|v| alg.decode_value(v)))
        .collect::<Option<_>>()?;
    let value = if upload.checksum_type.as_deref() == Some(FULL_OBJECT) {
        let crc = crc_of(alg)?;
        let mut acc: Option<u64> = None;
        for (raw, size) in raws.iter().zip(sizes) {
            let v = raw.iter().fold(0u64, |a, b| (a << 8) | u64::from(*b));
            acc = Some(match acc {
                None => v,
                Some(a) => crc_fast::checksum_combine(crc, a, v, *size),
            });
        }
        let full = acc?.to_be_bytes();
        BASE64.encode(&full[8 - alg.digest_len()..])
    } else {
        let mut summer = Checksummer::new(alg);
        for raw in &raws {
            summer.update(raw);
        }
        format!("{}-{}", BASE64.encode(summer.finalize_raw()), listed.len())
    };
    Some(StoredChecksum {
        algorithm: alg.name().to_string(),
        value,
    })
}

impl ObjectService {
    /// Completes an upload into the object at its key; returns the object made. When the
    /// upload is gone, the same parts completing it again answer with the object they made
    /// (NoSuchUpload otherwise).
    pub async fn complete_upload(
        &self,
        c: CompleteUpload,
    ) -> Result<crate::ObjectRecord, ObjectsError> {
        let now = now_ms();
        let Some(upload) = self
            .meta
            .get_upload(&c.bucket, &c.key, &c.upload_id)
            .await?
        else {
            let parts = c
                .parts
                .iter()
                .map(|p| CompletePart {
                    part_number: p.part_number,
                    etag: p.etag.clone(),
                    checksum: None,
                })
                .collect();
            return self
                .commit_completion(&c, parts, None, WriteCondition::Always, now)
                .await;
        };
        // The stored parts' checksums, to build the object's checksum from; the command
        // checks that they are still the ones stored.
        let (stored, _) = self
            .meta
            .list_parts(&c.bucket, &c.key, &c.upload_id, 0, MAX_PART_NUMBER as usize)
            .await?;
        let stored: BTreeMap<u32, PartRecord> =
            stored.into_iter().map(|p| (p.part_number, p)).collect();
        let mut listed = Vec::with_capacity(c.parts.len());
        let mut sizes = Vec::with_capacity(c.parts.len());
        for p in &c.parts {
            sizes.push(stored.get(&p.part_number).map_or(0, |s| s.size));
            let have = stored.get(&p.part_number).and_then(|s| s.checksum.as_ref());
            if let (Some((alg, value)), Some(have)) = (&p.checksum, have) {
                if have.algorithm != *alg || have.value != *value {
                    return Err(ObjectsError::PartChecksumMismatch {
                        part_number: p.part_number,
                    });
                }
            }
            listed.push(CompletePart {
                part_number: p.part_number,
                etag: p.etag.clone(),
                checksum: have.map(|c| c.value.clone()),
            });
        }
        // With a part missing, the command answers InvalidPart instead.
        let all_present = c.parts.iter().all(|p| stored.contains_key(&p.part_number));
        if let Some(v) = c.claimed_size.as_ref().filter(|_| all_present) {
            let total: u64 = sizes.iter().sum();
            if v.trim().parse::<u64>().ok() != Some(total) {
                return Err(ObjectsError::ObjectSizeMismatch {
                    claimed: v.clone(),
                    actual: total,
                });
            }
        }
        let checksum = object_checksum(&upload, &listed, &sizes);
        if let (Some((alg, want)), Some(have)) = (&c.claimed_checksum, &checksum) {
            let bare = have.value.split('-').next().unwrap_or_default();
            if alg.name() == have.algorithm && *want != have.value && want != bare {
                return Err(ObjectsError::BadDigest {
                    header: alg.header_name().to_string(),
                });
            }
        }
        self.commit_completion(&c, listed, checksum, c.condition.clone(), now)
            .await
    }

    async fn commit_completion(
        &self,
        c: &CompleteUpload,
        parts: Vec<CompletePart>,
        checksum: Option<StoredChecksum>,
        condition: WriteCondition,
        now: i64,
    ) -> Result<crate::ObjectRecord, ObjectsError> {
        let out = self
            .apply_upload_command(Command::CompleteUpload {
                bucket: c.bucket.clone(),
                key: c.key.clone(),
                upload_id: c.upload_id.clone(),
                parts,
                last_modified_ms: now,
                checksum,
                version_id: new_version_id(now),
                condition,
            })
            .await?;
        match out {
            CommandOutput::Completed(rec) => Ok(*rec),
            other => Err(unexpected("CompleteUpload", &other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composite_and_full_object_checksums() {
        let mut upload = UploadRecord {
            upload_id: "u".into(),
            initiated_ms: 0,
            owner: "o".into(),
            content_type: None,
            headers: Default::default(),
            user_meta: Default::default(),
            checksum_algorithm: Some("CRC32".into()),
            checksum_type: None,
            tags: Default::default(),
            acl: None,
        };
        let part = |n, data: &[u8]| {
            let mut s = Checksummer::new(ChecksumAlgorithm::Crc32);
            s.update(data);
            CompletePart {
                part_number: n,
                etag: "e".into(),
                checksum: Some(s.finalize()),
            }
        };
        let listed = [part(1, b"hello "), part(2, b"world")];
        let sizes = [6, 5];
        let got = object_checksum(&upload, &listed, &sizes).unwrap();
        let mut want = Checksummer::new(ChecksumAlgorithm::Crc32);
        for p in &listed {
            want.update(&BASE64.decode(p.checksum.as_ref().unwrap()).unwrap());
        }
        assert_eq!(got.value, format!("{}-2", want.finalize()));
        assert_eq!(got.algorithm, "CRC32");
        // A part without a checksum: no object checksum.
        let mut missing = listed.to_vec();
        missing[1].checksum = None;
        assert!(object_checksum(&upload, &missing, &sizes).is_none());
        // FULL_OBJECT: the CRC of the whole object, combined from the parts.
        upload.checksum_type = Some(FULL_OBJECT.into());
        let mut whole = Checksummer::new(ChecksumAlgorithm::Crc32);
        whole.update(b"hello world");
        let got = object_checksum(&upload, &listed, &sizes).unwrap();
        assert_eq!(got.value, whole.finalize());
    }
}
