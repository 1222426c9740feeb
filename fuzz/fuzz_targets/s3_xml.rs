//! The S3 XML request-body parsers never panic on arbitrary bytes.
#![no_main]

use cairn_api::xml::{parse, CompleteMultipartUpload, CreateBucketConfiguration, DeleteRequest};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(d) = parse::<DeleteRequest>(data) {
        // Touch the result so nothing is optimised away.
        let _ = d.objects.iter().map(|o| o.key.len()).sum::<usize>();
    }
    let _ = parse::<CreateBucketConfiguration>(data);
    if let Some(c) = parse::<CompleteMultipartUpload>(data) {
        let _ = c
            .parts
            .iter()
            .map(|p| p.checksum().map_or(0, |(_, v)| v.len()))
            .sum::<usize>();
    }
});
