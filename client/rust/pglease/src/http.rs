//! One HTTP/1.1 exchange with pgleased: the request's bytes, and the response parsed with
//! `httparse` from what has arrived so far. The blocking and the async transports feed it from
//! their own sockets, so both speak exactly the same protocol. pgleased serves plain HTTP.

use std::time::Duration;

use crate::error::{Error, Result};

/// The largest response body read; pgleased's answers are a few KiB.
const MAX_BODY: usize = 16 << 20;
/// The largest response head read.
const MAX_HEAD: usize = 64 << 10;
const MAX_HEADERS: usize = 64;

/// Where pgleased is, and how to talk to it.
#[derive(Clone)]
pub(crate) struct Endpoint {
    /// As given, without a trailing slash: for messages.
    pub url: String,
    pub host: String,
    pub port: u16,
    /// A path prefix from the URL (`http://proxy/pglease` → `/pglease`), usually empty.
    prefix: String,
    host_header: String,
    token: Option<String>,
    /// Bounds every call, plus the wait a call asks the server for.
    pub timeout: Duration,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("url", &self.url)
            .field("token", &self.token.as_ref().map(|_| "…"))
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Endpoint {
    /// Parses `http://host[:port][/prefix]`.
    pub fn parse(url: &str, token: Option<String>, timeout: Duration) -> Result<Endpoint> {
        let trimmed = url.trim().trim_end_matches('/');
        let bad = || Error::Config(format!("the pgleased URL must look like http://host:port, not {url:?}"));
        let rest = match trimmed.split_once("://") {
            Some(("http", rest)) => rest,
            Some(("https", _)) => {
                return Err(Error::Config(format!(
                    "pgleased serves plain HTTP; {url:?} asks for https (put a TLS proxy's plain side here)"
                )));
            }
            _ => return Err(bad()),
        };
        let (authority, prefix) = match rest.find('/') {
            Some(at) => (&rest[..at], rest[at..].to_owned()),
            None => (rest, String::new()),
        };
        if authority.is_empty() || authority.contains('@') || prefix.contains(['?', '#']) {
            return Err(bad());
        }
        let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
            let (host, after) = bracketed.split_once(']').ok_or_else(bad)?;
            let port = match after.strip_prefix(':') {
                Some(port) => port.parse().map_err(|_| bad())?,
                None if after.is_empty() => 80,
                None => return Err(bad()),
            };
            (host.to_owned(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) => (host.to_owned(), port.parse().map_err(|_| bad())?),
                None => (authority.to_owned(), 80),
            }
        };
        if host.is_empty() || port == 0 {
            return Err(bad());
        }
        Ok(Endpoint {
            url: trimmed.to_owned(),
            host,
            port,
            prefix,
            host_header: authority.to_owned(),
            token: token.filter(|t| !t.is_empty()),
            timeout,
        })
    }

    /// The bytes of one request; `target` is the path and query after the prefix.
    pub fn request(&self, method: &str, target: &str, body: Option<&[u8]>) -> Vec<u8> {
        let mut head = format!(
            "{method} {}{target} HTTP/1.1\r\nHost: {}\r\nUser-Agent: pglease-rust/{}\r\nAccept: application/json\r\n",
            self.prefix,
            self.host_header,
            env!("CARGO_PKG_VERSION"),
        );
        if let Some(token) = &self.token {
            head.push_str(&format!("Authorization: Bearer {token}\r\n"));
        }
        if let Some(body) = body {
            head.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len()));
        } else if method != "GET" {
            head.push_str("Content-Length: 0\r\n");
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(body.unwrap_or_default());
        bytes
    }
}

/// A whole response.
#[derive(Debug)]
pub(crate) struct Response {
    pub status: u16,
    pub retry_after: Option<Duration>,
    /// The server will close the connection after this response.
    pub close: bool,
    pub body: Vec<u8>,
}

enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
}

/// Parses one complete response from the start of `buf`. `Ok(None)`: more bytes are needed
/// (`eof` says none will come). Informational (1xx) answers are skipped.
pub(crate) fn parse_response(buf: &[u8], eof: bool) -> std::result::Result<Option<Response>, String> {
    let mut start = 0;
    loop {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut parsed = httparse::Response::new(&mut headers);
        let head_len = match parsed.parse(&buf[start..]) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) if buf.len() - start > MAX_HEAD => {
                return Err(format!("a response head over {MAX_HEAD} bytes"));
            }
            Ok(httparse::Status::Partial) => {
                return if eof {
                    Err("the connection closed before a whole response arrived".into())
                } else {
                    Ok(None)
                };
            }
            Err(error) => return Err(format!("an unreadable response head ({error})")),
        };
        let status = parsed.code.unwrap_or(0);
        if (100..200).contains(&status) {
            start += head_len;
            continue;
        }
        let mut framing = Framing::UntilClose;
        let mut close = parsed.version == Some(0);
        let mut retry_after = None;
        for header in parsed.headers.iter() {
            let value = std::str::from_utf8(header.value).unwrap_or("").trim();
            if header.name.eq_ignore_ascii_case("content-length") {
                let length = value.parse::<usize>().map_err(|_| format!("Content-Length {value:?}"))?;
                if length > MAX_BODY {
                    return Err(format!("a body of {length} bytes, over the {MAX_BODY} read"));
                }
                if !matches!(framing, Framing::Chunked) {
                    framing = Framing::Length(length);
                }
            } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
                if value.to_ascii_lowercase().ends_with("chunked") {
                    framing = Framing::Chunked;
                }
            } else if header.name.eq_ignore_ascii_case("connection") {
                if value.to_ascii_lowercase().split(',').any(|token| token.trim() == "close") {
                    close = true;
                }
            } else if header.name.eq_ignore_ascii_case("retry-after") {
                retry_after = value.parse::<u64>().ok().map(Duration::from_secs);
            }
        }
        let body_start = start + head_len;
        let rest = &buf[body_start..];
        let body = if status == 204 || status == 304 {
            Some(Vec::new())
        } else {
            match framing {
                Framing::Length(length) => (rest.len() >= length).then(|| rest[..length].to_vec()),
                Framing::Chunked => dechunk(rest)?,
                Framing::UntilClose => {
                    close = true;
                    if rest.len() > MAX_BODY {
                        return Err(format!("a body over the {MAX_BODY} bytes read"));
                    }
                    eof.then(|| rest.to_vec())
                }
            }
        };
        return match body {
            Some(body) => Ok(Some(Response { status, retry_after, close, body })),
            None if eof => Err("the connection closed in the middle of a response body".into()),
            None => Ok(None),
        };
    }
}

/// The body of a chunked message, once every chunk and the trailer have arrived.
fn dechunk(mut rest: &[u8]) -> std::result::Result<Option<Vec<u8>>, String> {
    let mut body = Vec::new();
    loop {
        let (consumed, size) = match httparse::parse_chunk_size(rest) {
            Ok(httparse::Status::Complete(found)) => found,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(_) => return Err("an unreadable chunk size".into()),
        };
        rest = &rest[consumed..];
        if size == 0 {
            // Trailer fields, then an empty line.
            loop {
                let Some(end) = rest.windows(2).position(|pair| pair == b"\r\n") else {
                    return Ok(None);
                };
                if end == 0 {
                    return Ok(Some(body));
                }
                rest = &rest[end + 2..];
            }
        }
        let size = usize::try_from(size).map_err(|_| "a chunk too large".to_string())?;
        if body.len() + size > MAX_BODY {
            return Err(format!("a body over the {MAX_BODY} bytes read"));
        }
        if rest.len() < size + 2 {
            return Ok(None);
        }
        if &rest[size..size + 2] != b"\r\n" {
            return Err("a chunk not followed by CRLF".into());
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

/// Percent-encodes one path segment (template names, ids and fingerprints are plain already;
/// this keeps anything else from changing the path).
pub(crate) fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(url: &str) -> Result<Endpoint> {
        Endpoint::parse(url, None, Duration::from_secs(1))
    }

    #[test]
    fn urls_parse_and_bad_ones_are_refused_naming_them() {
        let e = endpoint("http://127.0.0.1:7432/").unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.prefix.as_str(), e.url.as_str()),
            ("127.0.0.1", 7432, "", "http://127.0.0.1:7432")
        );
        let e = endpoint("http://[::1]:9/api").unwrap();
        assert_eq!((e.host.as_str(), e.port, e.prefix.as_str()), ("::1", 9, "/api"));
        assert_eq!(endpoint("http://broker").unwrap().port, 80);
        for bad in ["127.0.0.1:7432", "ftp://x", "http://", "http://h:0", "http://h:x", "http://u@h:1"] {
            let error = endpoint(bad).unwrap_err().to_string();
            assert!(error.contains(bad), "{error}");
        }
        assert!(endpoint("https://h:1").unwrap_err().to_string().contains("plain HTTP"));
    }

    #[test]
    fn requests_carry_host_length_and_token() {
        let e = Endpoint::parse("http://h:1/p", Some("s3cret".into()), Duration::from_secs(1)).unwrap();
        let text = String::from_utf8(e.request("POST", "/v1/x", Some(b"{}"))).unwrap();
        assert!(text.starts_with("POST /p/v1/x HTTP/1.1\r\nHost: h:1\r\n"), "{text}");
        assert!(text.contains("Authorization: Bearer s3cret\r\n"));
        assert!(text.ends_with("Content-Length: 2\r\n\r\n{}"), "{text}");
        let text = String::from_utf8(e.request("DELETE", "/v1/y", None)).unwrap();
        assert!(text.contains("Content-Length: 0\r\n"));
    }

    #[test]
    fn responses_by_length_chunks_and_close() {
        let whole = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
        for cut in 0..whole.len() {
            assert!(parse_response(&whole[..cut], false).unwrap().is_none(), "cut at {cut}");
        }
        let r = parse_response(whole, false).unwrap().unwrap();
        assert_eq!((r.status, r.body.as_slice(), r.close), (200, &b"{}"[..], false));

        let chunked = b"HTTP/1.1 503 X\r\nTransfer-Encoding: chunked\r\nRetry-After: 3\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nT: v\r\n\r\n";
        for cut in 0..chunked.len() {
            assert!(parse_response(&chunked[..cut], false).unwrap().is_none(), "cut at {cut}");
        }
        let r = parse_response(chunked, false).unwrap().unwrap();
        assert_eq!((r.status, r.body.as_slice(), r.retry_after), (503, &b"abcde"[..], Some(Duration::from_secs(3))));

        let until_close = b"HTTP/1.1 200 OK\r\n\r\nhello";
        assert!(parse_response(until_close, false).unwrap().is_none());
        let r = parse_response(until_close, true).unwrap().unwrap();
        assert_eq!((r.body.as_slice(), r.close), (&b"hello"[..], true));

        let informational = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n";
        let r = parse_response(informational, false).unwrap().unwrap();
        assert_eq!((r.status, r.close), (204, true));
    }

    #[test]
    fn broken_responses_are_errors_not_hangs() {
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc", true).is_err());
        assert!(parse_response(b"HTTP/1.1 200", true).is_err());
        assert!(parse_response(b"garbage\r\n\r\n", false).is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", false).is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", false).is_err());
        let huge = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", MAX_BODY + 1);
        assert!(parse_response(huge.as_bytes(), false).is_err());
    }

    #[test]
    fn segments_are_percent_encoded() {
        assert_eq!(segment("app_1.x-y~"), "app_1.x-y~");
        assert_eq!(segment("a/b c?"), "a%2Fb%20c%3F");
    }
}
