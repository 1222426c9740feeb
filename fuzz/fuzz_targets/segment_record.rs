//! `decode_record` on arbitrary bytes never panics; whatever decodes re-encodes to the
//! same bytes (the record's prefix of the input).
#![no_main]

use cairn_datanode::record::{decode_record, encode_record, RecordHeader, RECORD_HEADER_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The header decoder alone must not panic either.
    let _ = RecordHeader::decode(data);
    if let Ok((header, payload, used)) = decode_record(data) {
        assert!(used <= data.len());
        assert_eq!(used as u64, header.record_len());
        assert_eq!(payload.len() as u64, header.payload_len);
        assert_eq!(&data[RECORD_HEADER_LEN..used], payload);
        let again = encode_record(&header, payload);
        assert_eq!(again.as_slice(), &data[..used], "re-encoding differs");
        assert_eq!(RecordHeader::decode(&again), Ok(header));
    }
});
