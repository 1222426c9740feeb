//! The one checksum function of Cairn's own formats: CRC32C (Castagnoli, CRC-32/ISCSI, as
//! in iSCSI and ext4). It is the checksum stored beside every shard in metadata, carried
//! with a shard on the wire between nodes, written into every segment record header and
//! payload on disk, and verified on read, repair and scrub. Changing it changes stored and
//! transmitted bytes, so its values are pinned by a test.
//!
//! (The S3 checksums a client asks for, `x-amz-checksum-*`, are another matter and belong
//! to the API layer.)

/// CRC32C of `data`.
pub fn crc32c(data: &[u8]) -> u32 {
    crc_fast::crc32_iscsi(data)
}

#[cfg(test)]
mod tests {
    use super::crc32c;

    #[test]
    fn crc32c_matches_the_published_check_values() {
        // The catalogue check value of CRC-32/ISCSI, and two more from RFC 3720 (B.4).
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
        assert_eq!(crc32c(&[0xFFu8; 32]), 0x62A8_AB43);
        assert_eq!(crc32c(b""), 0);
    }

    #[test]
    fn crc32c_sees_every_byte() {
        let base = b"cairn shard bytes".to_vec();
        for i in 0..base.len() {
            let mut changed = base.clone();
            changed[i] ^= 1;
            assert_ne!(crc32c(&changed), crc32c(&base), "flip at byte {i}");
        }
    }
}
