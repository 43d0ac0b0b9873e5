//! Just enough HTTP/1.1 for a small JSON API on a kiosk: one request per connection,
//! `Content-Length` bodies with a hard limit, `Expect: 100-continue`, socket timeouts set by
//! the caller. Anything else gets a clear 4xx instead of an attempt.

use std::io::{Read, Write};

/// Request line + headers may not exceed this.
pub const MAX_HEAD: usize = 16 * 1024;

#[derive(Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Why a request could not be read; each maps to one status code.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadError {
    /// The client sent nothing more in time (408).
    Timeout,
    /// The body is over the limit (413), detected from Content-Length before reading it.
    TooLarge { limit: usize, declared: usize },
    /// No Content-Length on a request with a body (411).
    LengthRequired,
    /// Not HTTP (400).
    Bad(&'static str),
    /// The client went away; nothing to answer.
    Closed,
}

impl ReadError {
    pub fn status(&self) -> u16 {
        match self {
            ReadError::Timeout => 408,
            ReadError::TooLarge { .. } => 413,
            ReadError::LengthRequired => 411,
            ReadError::Bad(_) | ReadError::Closed => 400,
        }
    }
    pub fn message(&self) -> String {
        match self {
            ReadError::Timeout => "request not received in time".into(),
            ReadError::TooLarge { limit, .. } => format!("body larger than the {limit}-byte limit"),
            ReadError::LengthRequired => "Content-Length is required".into(),
            ReadError::Bad(m) => format!("bad request: {m}"),
            ReadError::Closed => "connection closed".into(),
        }
    }
}

fn io_err(e: std::io::Error) -> ReadError {
    match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => ReadError::Timeout,
        _ => ReadError::Closed,
    }
}

/// Reads one request from `s` (`s` also receives "100 Continue" when asked for).
pub fn read_request<S: Read + Write>(s: &mut S, max_body: usize) -> Result<Request, ReadError> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if buf.len() > MAX_HEAD {
            return Err(ReadError::Bad("headers too long"));
        }
        let n = s.read(&mut chunk).map_err(io_err)?;
        if n == 0 {
            return Err(if buf.is_empty() {
                ReadError::Closed
            } else {
                ReadError::Bad("truncated headers")
            });
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head =
        std::str::from_utf8(&buf[..head_end]).map_err(|_| ReadError::Bad("non-UTF-8 headers"))?;
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let (method, path, version) = (first.next(), first.next(), first.next());
    let (Some(method), Some(path), Some(version)) = (method, path, version) else {
        return Err(ReadError::Bad("malformed request line"));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(ReadError::Bad("only HTTP/1.x is spoken here"));
    }
    let mut headers = Vec::new();
    for l in lines {
        let (k, v) = l
            .split_once(':')
            .ok_or(ReadError::Bad("malformed header"))?;
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    let mut req = Request {
        method: method.to_string(),
        path: path.split('?').next().unwrap_or("").to_string(),
        headers,
        body: Vec::new(),
    };
    if req
        .header("transfer-encoding")
        .is_some_and(|v| !v.eq_ignore_ascii_case("identity"))
    {
        return Err(ReadError::LengthRequired);
    }
    let len = match req.header("content-length") {
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| ReadError::Bad("bad Content-Length"))?,
        None if req.method == "POST" || req.method == "PUT" => {
            return Err(ReadError::LengthRequired)
        }
        None => 0,
    };
    if len > max_body {
        return Err(ReadError::TooLarge {
            limit: max_body,
            declared: len,
        });
    }
    if req
        .header("expect")
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
    {
        s.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .map_err(io_err)?;
    }
    let mut body = buf[head_end + 4..].to_vec();
    body.truncate(len);
    body.reserve(len - body.len());
    while body.len() < len {
        let want = (len - body.len()).min(chunk.len());
        let n = s.read(&mut chunk[..want]).map_err(io_err)?;
        if n == 0 {
            return Err(ReadError::Bad("body shorter than Content-Length"));
        }
        body.extend_from_slice(&chunk[..n]);
    }
    req.body = body;
    Ok(req)
}

/// Reads and drops up to `n` bytes (at most [`MAX_DRAIN`]): after an early 413 the client is
/// still sending, and closing on unread data would reset the connection before it reads the
/// answer.
pub fn drain<R: Read>(r: &mut R, n: usize) {
    let mut left = n.min(MAX_DRAIN);
    let mut chunk = [0u8; 16 * 1024];
    while left > 0 {
        match r.read(&mut chunk[..left.min(16 * 1024)]) {
            Ok(0) | Err(_) => return,
            Ok(k) => left -= k,
        }
    }
}

/// Oversize bodies up to this are read and dropped so the client sees the 413.
pub const MAX_DRAIN: usize = 64 << 20;

pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Payload Too Large",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Content",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// Writes a complete response and asks the client to close.
pub fn write_response<W: Write>(
    w: &mut W,
    status: u16,
    content_type: &str,
    body: &[u8],
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        reason(status),
        body.len()
    );
    w.write_all(head.as_bytes())?;
    w.write_all(body)?;
    w.flush()
}

/// `{"error": message}` with the given status.
pub fn write_error<W: Write>(w: &mut W, status: u16, message: &str) -> std::io::Result<()> {
    let body = serde_json::json!({ "error": message, "status": status }).to_string();
    write_response(w, status, "application/json", body.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// A fake socket: reads from `input`, collects writes.
    struct Duplex {
        input: Cursor<Vec<u8>>,
        output: Vec<u8>,
    }

    impl Read for Duplex {
        fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
            self.input.read(b)
        }
    }
    impl Write for Duplex {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.output.extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn req(raw: &[u8], max: usize) -> (Result<Request, ReadError>, Vec<u8>) {
        let mut d = Duplex {
            input: Cursor::new(raw.to_vec()),
            output: vec![],
        };
        let r = read_request(&mut d, max);
        (r, d.output)
    }

    #[test]
    fn parses_a_post_with_body_and_query() {
        let (r, _) = req(b"POST /v1/detect?x=1 HTTP/1.1\r\nHost: a\r\nContent-Type: image/jpeg\r\nContent-Length: 5\r\n\r\nhello", 10);
        let r = r.unwrap();
        assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/v1/detect"));
        assert_eq!(r.header("content-type"), Some("image/jpeg"));
        assert_eq!(r.body, b"hello");
    }

    #[test]
    fn limits_and_malformed_requests() {
        let (r, _) = req(b"POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n", 10);
        assert_eq!(
            r.unwrap_err(),
            ReadError::TooLarge {
                limit: 10,
                declared: 11
            }
        );
        let (r, _) = req(b"POST / HTTP/1.1\r\n\r\n", 10);
        assert_eq!(r.unwrap_err(), ReadError::LengthRequired);
        let (r, _) = req(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 10);
        assert_eq!(r.unwrap_err(), ReadError::LengthRequired);
        let (r, _) = req(b"\x16\x03\x01 binary garbage\r\n\r\n", 10);
        assert!(matches!(r.unwrap_err(), ReadError::Bad(_)));
        let (r, _) = req(b"POST / HTTP/1.1\r\nContent-Length: 9\r\n\r\nshort", 10);
        assert!(matches!(r.unwrap_err(), ReadError::Bad(_)));
        let (r, _) = req(b"", 10);
        assert_eq!(r.unwrap_err(), ReadError::Closed);
    }

    #[test]
    fn answers_expect_100_continue() {
        let (r, out) = req(
            b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok",
            10,
        );
        assert_eq!(r.unwrap().body, b"ok");
        assert_eq!(out, b"HTTP/1.1 100 Continue\r\n\r\n");
    }

    #[test]
    fn error_responses_are_json() {
        let mut out = Vec::new();
        write_error(&mut out, 415, "send an image").unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 415 Unsupported Media Type\r\n"));
        assert!(text.ends_with(r#"{"error":"send an image","status":415}"#));
    }
}
