use futures::StreamExt;

use super::*;

/// A part as the parser reported it: head and all its data.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Part {
    head: PartHead,
    data: Vec<u8>,
}

/// Feeds `body` in pieces of `step` bytes; returns the parts and whether the form ended.
fn parse_in_steps(
    boundary: &str,
    body: &[u8],
    step: usize,
) -> Result<(Vec<Part>, bool), FormError> {
    let mut p = FormParser::new(boundary)?;
    let mut parts: Vec<Part> = Vec::new();
    let mut open = false;
    let mut pieces = body.chunks(step.max(1));
    loop {
        match p.next_event()? {
            Some(FormEvent::Part(head)) => {
                assert!(!open, "a part began inside a part");
                open = true;
                parts.push(Part {
                    head,
                    data: Vec::new(),
                });
            }
            Some(FormEvent::Data(d)) => {
                assert!(open && !d.is_empty());
                parts.last_mut().unwrap().data.extend_from_slice(&d);
            }
            Some(FormEvent::PartEnd) => {
                assert!(open);
                open = false;
            }
            Some(FormEvent::End) => {
                assert!(!open);
                return Ok((parts, true));
            }
            None => match pieces.next() {
                Some(piece) => p.push(piece),
                None => p.finish(),
            },
        }
    }
}

fn head(name: &str, filename: Option<&str>, ct: Option<&str>) -> PartHead {
    PartHead {
        name: name.into(),
        filename: filename.map(Into::into),
        content_type: ct.map(Into::into),
    }
}

const FORM: &[u8] = b"--XyZ\r\n\
Content-Disposition: form-data; name=\"key\"\r\n\
\r\n\
uploads/${filename}\r\n\
--XyZ\r\n\
content-disposition: form-data; name=\"x-amz-meta-note\"\r\n\
\r\n\
a\r\nb --XyZ not a boundary\r\n-\r\n--Xy\r\n\
--XyZ  \r\n\
Content-Disposition: form-data; name=\"empty\"\r\n\
\r\n\
\r\n\
--XyZ\r\n\
Content-Disposition: form-data; name=\"file\"; filename=\"photo.png\"\r\n\
Content-Type: image/png\r\n\
\r\n\
\x89PNG\r\n\x1a\n\0\0\r\n--XyZ--\r\nepilogue";

fn expected() -> Vec<Part> {
    vec![
        Part {
            head: head("key", None, None),
            data: b"uploads/${filename}".to_vec(),
        },
        Part {
            head: head("x-amz-meta-note", None, None),
            data: b"a\r\nb --XyZ not a boundary\r\n-\r\n--Xy".to_vec(),
        },
        Part {
            head: head("empty", None, None),
            data: Vec::new(),
        },
        Part {
            head: head("file", Some("photo.png"), Some("image/png")),
            data: b"\x89PNG\r\n\x1a\n\0\0".to_vec(),
        },
    ]
}

#[test]
fn parses_a_form_however_it_is_split() {
    for step in 1..=FORM.len() {
        let (parts, ended) = parse_in_steps("XyZ", FORM, step).unwrap();
        assert!(ended, "step {step}");
        assert_eq!(parts, expected(), "step {step}");
    }
}

#[test]
fn preamble_and_missing_pieces() {
    let mut with_preamble = b"This is a preamble.\r\n".to_vec();
    with_preamble.extend_from_slice(FORM);
    assert_eq!(
        parse_in_steps("XyZ", &with_preamble, 7).unwrap().0,
        expected()
    );

    // Cut anywhere before the closing boundary: truncated, never a complete form.
    let close = FORM.windows(7).position(|w| w == b"--XyZ--").unwrap();
    for cut in 0..close + 7 {
        let r = parse_in_steps("XyZ", &FORM[..cut], 5);
        assert!(
            matches!(r, Err(FormError::Truncated)),
            "cut at {cut}: {r:?}"
        );
    }
    // No boundary at all, within the preamble limit: truncated; beyond it: malformed.
    assert_eq!(
        parse_in_steps("XyZ", b"hello", 2),
        Err(FormError::Truncated)
    );
    let long = vec![b'a'; MAX_PREAMBLE + 200];
    assert!(matches!(
        parse_in_steps("XyZ", &long, 1000),
        Err(FormError::Malformed(_))
    ));
}

#[test]
fn malformed_heads_and_boundary_lines() {
    let bad = |body: &[u8]| parse_in_steps("b", body, 3);
    for body in [
        &b"--b\r\n\r\nno headers\r\n--b--"[..],
        b"--b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b--",
        b"--b\r\nContent-Disposition: attachment; name=\"a\"\r\n\r\nx\r\n--b--",
        b"--b\r\nContent-Disposition: form-data\r\n\r\nx\r\n--b--",
        b"--b\r\nnot a header\r\n\r\nx\r\n--b--",
        b"--bx\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nx\r\n--b--",
    ] {
        assert!(
            matches!(bad(body), Err(FormError::Malformed(_))),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
    let mut long_head = b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\nX: ".to_vec();
    long_head.extend(std::iter::repeat_n(b'y', MAX_PART_HEAD));
    long_head.extend_from_slice(b"\r\n\r\nx\r\n--b--");
    assert!(matches!(bad(&long_head), Err(FormError::Malformed(_))));
    // Transport padding after a boundary is bounded too.
    let mut padded = b"--b".to_vec();
    padded.extend(std::iter::repeat_n(b' ', MAX_PADDING + 10));
    assert!(matches!(bad(&padded), Err(FormError::Malformed(_))));
}

#[test]
fn disposition_parameters() {
    let one = |disposition: &str| {
        let body = format!("--b\r\nContent-Disposition: {disposition}\r\n\r\nv\r\n--b--");
        parse_in_steps("b", body.as_bytes(), 64).map(|(p, _)| p[0].head.clone())
    };
    assert_eq!(one("form-data; name=key").unwrap(), head("key", None, None));
    assert_eq!(
        one("Form-Data;NAME=\"a;b\"; filename=\"C:\\dir\\x.txt\"").unwrap(),
        head("a;b", Some("C:\\dir\\x.txt"), None)
    );
    assert_eq!(
        one("form-data; name=\"file\"; filename=\"x.txt\"; filename*=UTF-8''caf%C3%A9.txt")
            .unwrap(),
        head("file", Some("café.txt"), None)
    );
    assert_eq!(
        one("form-data; name=\"file\"; filename=\"\"").unwrap(),
        head("file", Some(""), None)
    );
}

#[test]
fn boundaries_of_content_types() {
    assert_eq!(
        boundary("multipart/form-data; boundary=----abc123").as_deref(),
        Some("----abc123")
    );
    assert_eq!(
        boundary("Multipart/Form-Data; charset=utf-8; BOUNDARY=\"a b\"").as_deref(),
        Some("a b")
    );
    assert_eq!(boundary("multipart/form-data"), None);
    assert_eq!(boundary("multipart/mixed; boundary=x"), None);
    assert_eq!(boundary("application/x-www-form-urlencoded"), None);
    assert_eq!(
        boundary(&format!("multipart/form-data; boundary={}", "x".repeat(71))),
        None
    );
    assert!(FormParser::new("").is_err());
}

#[test]
fn data_is_handed_out_without_holding_more_than_a_boundary() {
    // A long part fed in 1 KiB pieces: after each piece, everything but at most a
    // delimiter's worth of bytes has come out.
    let mut p = FormParser::new("0123456789").unwrap();
    p.push(b"--0123456789\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\n");
    assert!(matches!(p.next_event(), Ok(Some(FormEvent::Part(_)))));
    let piece = vec![b'\r'; 1024];
    let (mut pushed, mut out) = (0usize, 0usize);
    for _ in 0..100 {
        p.push(&piece);
        pushed += piece.len();
        while let Some(ev) = p.next_event().unwrap() {
            match ev {
                FormEvent::Data(d) => out += d.len(),
                other => panic!("{other:?}"),
            }
        }
        assert!(pushed - out < "\r\n--0123456789".len(), "{pushed} {out}");
    }
}

#[tokio::test]
async fn reads_from_a_stream_and_checks_the_end_of_the_body() {
    let chunks: Vec<Result<Bytes, String>> = FORM
        .chunks(11)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let mut r = FormReader::new(
        futures::stream::iter(chunks).boxed(),
        FormParser::new("XyZ").unwrap(),
    );
    let mut names = Vec::new();
    loop {
        match r.event().await.unwrap() {
            FormEvent::Part(h) => names.push(h.name),
            FormEvent::End => break,
            _ => {}
        }
    }
    assert_eq!(names, ["key", "x-amz-meta-note", "empty", "file"]);
    futures::future::poll_fn(|cx| r.poll_body_end(cx, 100))
        .await
        .unwrap();

    // An error of the body after the form is seen; so is too long an epilogue.
    let failing = futures::stream::iter(vec![
        Ok(Bytes::from_static(b"--b--")),
        Ok(Bytes::from_static(b"epilogue")),
        Err("digest mismatch".to_string()),
    ])
    .boxed();
    let mut r = FormReader::new(failing, FormParser::new("b").unwrap());
    assert_eq!(r.event().await.unwrap(), FormEvent::End);
    let e = futures::future::poll_fn(|cx| r.poll_body_end(cx, 100)).await;
    assert!(matches!(e, Err(ReadError::Body(m)) if m == "digest mismatch"));
    let long = futures::stream::iter(vec![
        Ok::<_, String>(Bytes::from_static(b"--b--")),
        Ok(Bytes::from(vec![b'x'; 200])),
    ])
    .boxed();
    let mut r = FormReader::new(long, FormParser::new("b").unwrap());
    assert_eq!(r.event().await.unwrap(), FormEvent::End);
    let e = futures::future::poll_fn(|cx| r.poll_body_end(cx, 100)).await;
    assert!(matches!(e, Err(ReadError::Form(FormError::Malformed(_)))));
}

/// The fuzz target's property on mutated forms (deterministic, so it runs everywhere):
/// splitting the body differently never changes the outcome.
#[test]
fn the_outcome_does_not_depend_on_the_split() {
    let outcome = |body: &[u8], step: usize| parse_in_steps("XyZ", body, step).ok();
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let alphabet = b"\r\n-XyZ \"=;:abc";
    for round in 0..3000 {
        let mut body = FORM.to_vec();
        for _ in 0..(next() % 4 + 1) {
            let at = (next() as usize) % body.len();
            let byte = alphabet[(next() as usize) % alphabet.len()];
            match next() % 3 {
                0 => body[at] = byte,
                1 => body.insert(at, byte),
                _ => {
                    body.remove(at);
                }
            }
        }
        let whole = outcome(&body, body.len());
        for step in [1, 2, 3, 5, 8, 13, 64] {
            assert_eq!(
                outcome(&body, step),
                whole,
                "round {round}, step {step}: {}",
                String::from_utf8_lossy(&body)
            );
        }
    }
}
