//! A lifecycle configuration document: `xml::parse` never panics on arbitrary bytes; what
//! parses validates without panicking, and what validates is written back by `to_xml` into a
//! document that parses to the same rules (GetBucketLifecycleConfiguration answers what was
//! put), and plans actions for a key without panicking.
#![no_main]

use cairn_lifecycle::{plan_key, xml, DayLength};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(cfg) = xml::parse(data) else { return };
    let mut n = 0;
    let Ok(cfg) = cfg.validate(&mut || {
        n += 1;
        format!("gen-{n}")
    }) else {
        return;
    };
    let again = xml::parse(xml::to_xml(&cfg).as_bytes()).expect("what Cairn writes, it reads");
    assert_eq!(again, cfg);
    for now in [0, 1 << 40, i64::MAX] {
        let _ = plan_key(&cfg, "logs/a", &[], now, DayLength::secs(1));
    }
});
