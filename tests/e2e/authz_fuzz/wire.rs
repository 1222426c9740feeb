//! A drawn request on the wire: its bytes (signed as a given key) and a raw keep-alive
//! HTTP/1.1 connection that sends it and reads the response.

use super::*;

/// Adds a header unless one of that name is there already.
pub(super) fn add(h: &mut Vec<(String, String)>, k: &str, v: String) {
    if !h.iter().any(|(n, _)| n == k) {
        h.push((k.to_string(), v));
    }
}

pub(super) fn md5_raw(data: &[u8]) -> Vec<u8> {
    use md5::{Digest, Md5};
    Md5::digest(data).to_vec()
}

pub(super) fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A request ready for the wire.
pub(super) struct Wire {
    pub(super) method: &'static str,
    pub(super) path: String,
    /// The whole query, presigning parameters included.
    pub(super) query: String,
    /// Every header sent, `content-length` aside.
    pub(super) headers: Vec<(String, String)>,
    pub(super) body: Vec<u8>,
}

impl Wire {
    pub(super) fn target(&self) -> String {
        if self.query.is_empty() {
            self.path.clone()
        } else {
            format!("{}?{}", self.path, self.query)
        }
    }

    pub(super) fn bytes(&self) -> Vec<u8> {
        let mut head = format!("{} {} HTTP/1.1\r\n", self.method, self.target());
        for (k, v) in &self.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str(&format!("content-length: {}\r\n\r\n", self.body.len()));
        let mut out = head.into_bytes();
        out.extend_from_slice(&self.body);
        out
    }
}

/// Puts `shape` on the wire as its caller would send it (`signer`: the key X signs with;
/// the self-check signs the same way with the owner's key).
pub(super) fn wire(fx: &Fixture, s: &Shape, signer: (&str, &str)) -> Wire {
    let mut query = s.query.join("&");
    let mut headers = vec![("host".to_string(), fx.host.clone())];
    headers.extend(s.headers.iter().cloned());
    match s.caller {
        Caller::Anonymous => {}
        Caller::XSigned => {
            let added = sigv4(
                signer.0, signer.1, s.method, &fx.host, &s.path, &query, &headers, &s.body, false,
            );
            headers.extend(added);
        }
        Caller::XPresigned | Caller::XPresignedUnsigned => {
            let added = sigv4(
                signer.0, signer.1, s.method, &fx.host, &s.path, &query, &headers, &s.body, true,
            );
            for (k, v) in added {
                if !query.is_empty() {
                    query.push('&');
                }
                query.push_str(&format!("{k}={}", query_encode(&v)));
            }
            headers.extend(s.unsigned.iter().cloned());
        }
    }
    Wire {
        method: s.method,
        path: s.path.clone(),
        query,
        headers,
        body: s.body.clone(),
    }
}

/// An HTTP response.
#[derive(Debug)]
pub(super) struct Resp {
    pub(super) status: u16,
    pub(super) headers: Vec<(String, String)>,
    pub(super) body: Vec<u8>,
}

impl Resp {
    pub(super) fn code(&self) -> Option<String> {
        let b = String::from_utf8_lossy(&self.body);
        let s = b.find("<Code>")? + 6;
        let e = b[s..].find("</Code>")? + s;
        Some(b[s..e].to_string())
    }

    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A keep-alive HTTP/1.1 connection that reconnects when the server closed it.
pub(super) struct Conn {
    pub(super) addr: SocketAddr,
    pub(super) r: Option<BufReader<TcpStream>>,
    /// Connections opened so far.
    pub(super) opened: u64,
    /// Requests sent again because the server had closed the connection without answering.
    pub(super) resent: u64,
}

/// Why no response was read: whether nothing at all came back (the request may be sent
/// again on a new connection), and what happened.
pub(super) struct ReadFail {
    pub(super) nothing: bool,
    pub(super) why: String,
}

impl Conn {
    pub(super) fn new(addr: SocketAddr) -> Conn {
        Conn {
            addr,
            r: None,
            opened: 0,
            resent: 0,
        }
    }

    /// Sends `req` and reads the response; sends it once more on a fresh connection when
    /// the server had closed this one without answering.
    pub(super) fn send(&mut self, req: &[u8], head: bool) -> Result<Resp, String> {
        for attempt in 0..2 {
            if self.r.is_none() {
                let s = TcpStream::connect(self.addr).map_err(|e| format!("connect: {e}"))?;
                s.set_read_timeout(Some(Duration::from_secs(60)))
                    .map_err(|e| e.to_string())?;
                let _ = s.set_nodelay(true);
                self.r = Some(BufReader::new(s));
                self.opened += 1;
            }
            let r = self.r.as_mut().unwrap();
            if let Err(e) = r.get_mut().write_all(req) {
                self.r = None;
                if attempt == 0 {
                    self.resent += 1;
                    continue;
                }
                return Err(format!("write: {e}"));
            }
            match read_response(r, head) {
                Ok((resp, keep)) => {
                    if !keep {
                        self.r = None;
                    }
                    return Ok(resp);
                }
                Err(f) => {
                    self.r = None;
                    if f.nothing && attempt == 0 {
                        self.resent += 1;
                        continue;
                    }
                    return Err(f.why);
                }
            }
        }
        unreachable!()
    }
}

pub(super) fn read_line(r: &mut impl BufRead) -> std::io::Result<String> {
    let mut buf = Vec::new();
    r.read_until(b'\n', &mut buf)?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// Reads one response (skipping interim 1xx ones); also says whether the connection stays
/// open.
pub(super) fn read_response(
    r: &mut BufReader<TcpStream>,
    head: bool,
) -> Result<(Resp, bool), ReadFail> {
    let mut got_any = false;
    let fail = |got_any: bool, e: std::io::Error| ReadFail {
        // A timeout is a hung server, not a closed connection: never resent.
        nothing: !got_any
            && !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
        why: format!("read: {e}"),
    };
    loop {
        let line = read_line(r).map_err(|e| fail(got_any, e))?;
        if line.is_empty() {
            return Err(ReadFail {
                nothing: !got_any,
                why: "connection closed before a whole response".into(),
            });
        }
        got_any = true;
        let mut parts = line.split_whitespace();
        let version = parts.next().unwrap_or_default().to_string();
        let status: u16 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| ReadFail {
                nothing: false,
                why: format!("bad status line {line:?}"),
            })?;
        let mut headers = Vec::new();
        loop {
            let l = read_line(r).map_err(|e| fail(true, e))?;
            if l.is_empty() {
                return Err(ReadFail {
                    nothing: false,
                    why: "connection closed in the headers".into(),
                });
            }
            let l = l.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((n, v)) = l.split_once(':') {
                headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        if (100..200).contains(&status) {
            continue;
        }
        let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        let connection = get("connection").unwrap_or_default().to_ascii_lowercase();
        let mut keep = if version == "HTTP/1.1" {
            !connection.contains("close")
        } else {
            connection.contains("keep-alive")
        };
        let mut body = Vec::new();
        let chunked = get("transfer-encoding").is_some_and(|v| v.contains("chunked"));
        let bodiless = head || status == 204 || status == 304;
        if bodiless {
            // No body follows.
        } else if chunked {
            loop {
                let size_line = read_line(r).map_err(|e| fail(true, e))?;
                let size =
                    usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
                        .map_err(|_| ReadFail {
                            nothing: false,
                            why: format!("bad chunk size {size_line:?}"),
                        })?;
                if size == 0 {
                    // Trailers, up to the empty line.
                    while !read_line(r)
                        .map_err(|e| fail(true, e))?
                        .trim_end()
                        .is_empty()
                    {}
                    break;
                }
                let start = body.len();
                body.resize(start + size, 0);
                r.read_exact(&mut body[start..])
                    .map_err(|e| fail(true, e))?;
                read_line(r).map_err(|e| fail(true, e))?;
            }
        } else if let Some(len) = get("content-length") {
            let len: usize = len.parse().map_err(|_| ReadFail {
                nothing: false,
                why: format!("bad content-length {len:?}"),
            })?;
            body.resize(len, 0);
            r.read_exact(&mut body).map_err(|e| fail(true, e))?;
        } else {
            r.read_to_end(&mut body).map_err(|e| fail(true, e))?;
            keep = false;
        }
        return Ok((
            Resp {
                status,
                headers,
                body,
            },
            keep,
        ));
    }
}
