//! The `multipart/form-data` parser of browser form uploads (`cairn_api::form`) never
//! panics, whatever the bytes and however they are split: the events it yields are well
//! nested (a part's head, its data, its end; the end of the form last), never hand out more
//! data than came in, and do not depend on the split (the same parts with the same data, or
//! an error either way).
//!
//! Input layout: one byte `step` (the piece length is `step % 64 + 1`), then the body; the
//! boundary is `b0undary`.
#![no_main]

use cairn_api::form::{FormEvent, FormParser};
use libfuzzer_sys::fuzz_target;

/// (name, filename, data) of each part, and whether the closing boundary came.
type Outcome = Option<(Vec<(String, Option<String>, Vec<u8>)>, bool)>;

fn run(body: &[u8], step: usize) -> Outcome {
    let mut p = FormParser::new("b0undary").expect("a valid boundary");
    let mut parts: Vec<(String, Option<String>, Vec<u8>)> = Vec::new();
    let mut open = false;
    let mut pieces = body.chunks(step);
    let mut data_out = 0usize;
    loop {
        match p.next_event() {
            Err(_) => return None,
            Ok(Some(FormEvent::Part(h))) => {
                assert!(!open, "a part inside a part");
                open = true;
                parts.push((h.name, h.filename, Vec::new()));
            }
            Ok(Some(FormEvent::Data(d))) => {
                assert!(open, "data outside a part");
                assert!(!d.is_empty(), "empty data");
                data_out += d.len();
                assert!(data_out <= body.len(), "more data out than in");
                parts.last_mut().expect("an open part").2.extend_from_slice(&d);
            }
            Ok(Some(FormEvent::PartEnd)) => {
                assert!(open, "the end of no part");
                open = false;
            }
            Ok(Some(FormEvent::End)) => {
                assert!(!open, "the form ended inside a part");
                assert!(p.is_done());
                return Some((parts, true));
            }
            Ok(None) => match pieces.next() {
                Some(piece) => p.push(piece),
                None => p.finish(),
            },
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&step, body)) = data.split_first() else {
        return;
    };
    let split = run(body, usize::from(step % 64) + 1);
    let whole = run(body, body.len().max(1));
    assert_eq!(split, whole, "the outcome depends on how the body is split");
});
