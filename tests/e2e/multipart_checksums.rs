//! Multipart checksums end to end: per-part checksums, COMPOSITE (CRC32) and FULL_OBJECT
//! (CRC64NVME) object checksums, checked against independent bitwise CRCs.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};

use crate::common::*;
use crate::multipart::MIB;

/// Bitwise CRC-32 (ISO-HDLC), independent of the server's implementation.
fn crc32(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for b in data {
        c ^= u32::from(*b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0xEDB8_8320
            } else {
                c >> 1
            };
        }
    }
    !c
}

#[tokio::test(flavor = "multi_thread")]
async fn composite_checksum_of_a_crc32_upload() {
    use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumMode};
    use aws_smithy_types::base64;
    let server = Server::start();
    let s3 = client(&server);
    s3.create_bucket().bucket("sum").send().await.unwrap();
    let created = s3
        .create_multipart_upload()
        .bucket("sum")
        .key("k")
        .checksum_algorithm(ChecksumAlgorithm::Crc32)
        .send()
        .await
        .unwrap();
    assert_eq!(
        created.checksum_algorithm(),
        Some(&ChecksumAlgorithm::Crc32)
    );
    let id = created.upload_id().unwrap().to_string();
    let bodies = [random_bytes(5 * MIB + 1, 61), random_bytes(1234, 62)];
    let mut parts = Vec::new();
    for (i, body) in bodies.iter().enumerate() {
        let r = s3
            .upload_part()
            .bucket("sum")
            .key("k")
            .upload_id(&id)
            .part_number(i as i32 + 1)
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .body(ByteStream::from(body.clone()))
            .send()
            .await
            .unwrap();
        let want = base64::encode(crc32(body).to_be_bytes());
        assert_eq!(r.checksum_crc32(), Some(want.as_str()), "part {}", i + 1);
        parts.push(
            CompletedPart::builder()
                .part_number(i as i32 + 1)
                .e_tag(r.e_tag().unwrap())
                .checksum_crc32(want)
                .build(),
        );
    }
    let listed = s3
        .list_parts()
        .bucket("sum")
        .key("k")
        .upload_id(&id)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.checksum_algorithm(), Some(&ChecksumAlgorithm::Crc32));
    assert_eq!(
        listed.parts()[1].checksum_crc32(),
        parts[1].checksum_crc32()
    );
    // A checksum other than the uploaded part's is refused.
    let mut wrong = parts.clone();
    wrong[1] = CompletedPart::builder()
        .part_number(2)
        .e_tag(parts[1].e_tag().unwrap())
        .checksum_crc32("AAAAAA==")
        .build();
    let err = s3
        .complete_multipart_upload()
        .bucket("sum")
        .key("k")
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(wrong))
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_of(&err).as_deref(), Some("InvalidPart"));

    let done = s3
        .complete_multipart_upload()
        .bucket("sum")
        .key("k")
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .unwrap();
    let raw: Vec<u8> = bodies.iter().flat_map(|b| crc32(b).to_be_bytes()).collect();
    let composite = format!("{}-2", base64::encode(crc32(&raw).to_be_bytes()));
    assert_eq!(done.checksum_crc32(), Some(composite.as_str()));
    let got = s3
        .get_object()
        .bucket("sum")
        .key("k")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    assert_eq!(got.checksum_crc32(), Some(composite.as_str()));
    let body = got.body.collect().await.unwrap().into_bytes();
    assert!(body.as_ref() == bodies.concat().as_slice());
    let head = s3
        .head_object()
        .bucket("sum")
        .key("k")
        .send()
        .await
        .unwrap();
    assert_eq!(head.checksum_crc32(), None, "only returned when asked for");
}

/// Bitwise CRC-64/NVME, independent of the server's implementation.
fn crc64nvme(data: &[u8]) -> u64 {
    let mut c = !0u64;
    for b in data {
        c ^= u64::from(*b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0x9A6C_9329_AC4B_C9B5
            } else {
                c >> 1
            };
        }
    }
    !c
}

#[tokio::test(flavor = "multi_thread")]
async fn full_object_crc64nvme_upload() {
    use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumMode, ChecksumType};
    use aws_smithy_types::base64;
    assert_eq!(crc64nvme(b"123456789"), 0xAE8B_1486_0A79_9888);
    let server = Server::start();
    let s3 = client(&server);
    s3.create_bucket().bucket("full").send().await.unwrap();
    let created = s3
        .create_multipart_upload()
        .bucket("full")
        .key("k")
        .checksum_algorithm(ChecksumAlgorithm::Crc64Nvme)
        .checksum_type(ChecksumType::FullObject)
        .send()
        .await
        .unwrap();
    let id = created.upload_id().unwrap().to_string();
    let bodies = [random_bytes(5 * MIB + 3, 71), random_bytes(70_001, 72)];
    let mut parts = Vec::new();
    for (i, body) in bodies.iter().enumerate() {
        let r = s3
            .upload_part()
            .bucket("full")
            .key("k")
            .upload_id(&id)
            .part_number(i as i32 + 1)
            .checksum_algorithm(ChecksumAlgorithm::Crc64Nvme)
            .body(ByteStream::from(body.clone()))
            .send()
            .await
            .unwrap();
        let want = base64::encode(crc64nvme(body).to_be_bytes());
        assert_eq!(r.checksum_crc64_nvme(), Some(want.as_str()));
        parts.push(
            CompletedPart::builder()
                .part_number(i as i32 + 1)
                .e_tag(r.e_tag().unwrap())
                .checksum_crc64_nvme(want)
                .build(),
        );
    }
    let whole = bodies.concat();
    let full = base64::encode(crc64nvme(&whole).to_be_bytes());
    let complete = |claimed: String| {
        let (s3, id, parts) = (s3.clone(), id.clone(), parts.clone());
        async move {
            s3.complete_multipart_upload()
                .bucket("full")
                .key("k")
                .upload_id(&id)
                .checksum_type(ChecksumType::FullObject)
                .checksum_crc64_nvme(claimed)
                .multipart_upload(
                    CompletedMultipartUpload::builder()
                        .set_parts(Some(parts))
                        .build(),
                )
                .send()
                .await
        }
    };
    let err = complete(base64::encode(0u64.to_be_bytes()))
        .await
        .unwrap_err();
    assert_eq!(code_of(&err).as_deref(), Some("BadDigest"));
    let err = s3
        .complete_multipart_upload()
        .bucket("full")
        .key("k")
        .upload_id(&id)
        .mpu_object_size(whole.len() as i64 + 1)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts.clone()))
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_of(&err).as_deref(), Some("InvalidRequest"));
    let done = complete(full.clone()).await.unwrap();
    assert_eq!(done.checksum_crc64_nvme(), Some(full.as_str()));
    assert_eq!(done.checksum_type(), Some(&ChecksumType::FullObject));
    // The SDK validates a full-object checksum on a whole GET.
    let got = s3
        .get_object()
        .bucket("full")
        .key("k")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    assert_eq!(got.checksum_crc64_nvme(), Some(full.as_str()));
    assert_eq!(got.checksum_type(), Some(&ChecksumType::FullObject));
    let body = got.body.collect().await.unwrap().into_bytes();
    assert!(body.as_ref() == whole.as_slice());
}
