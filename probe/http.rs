//! The HTTP/1.0 probe behind svprobe: URL parsing and response checking are pure; only
//! [`probe`] does I/O (std `TcpStream`, no dependencies).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// How much of the response is kept: enough for any health page; the rest is not read.
pub const MAX_RESPONSE: usize = 1 << 20;

/// How many bytes of a body a failure message shows.
pub const SHOW_BYTES: usize = 60;

/// A parsed `http://host[:port][/path]` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// Host name or address, without brackets for IPv6.
    pub host: String,
    /// TCP port (80 when not given).
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
    /// The `Host:` header value, as written in the URL (`host` or `host:port`).
    pub authority: String,
}

/// Parses an `http://` URL. Anything else (https, no host, a bad port) is an error whose
/// text is shown after `svprobe: fatal: `.
pub fn parse_url(url: &str) -> Result<Url, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("unsupported URL (only http:// is supported): {url}"))?;
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) if rest.as_bytes()[i] == b'/' => (&rest[..i], rest[i..].to_string()),
        Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
        None => (rest, "/".to_string()),
    };
    // Userinfo (user:pass@) is not supported: a probe URL should carry no secret.
    if authority.contains('@') {
        return Err(format!("unsupported URL (user info): {url}"));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("bad URL (unclosed [): {url}"))?;
        match after {
            "" => (h, None),
            p => (
                h,
                Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| format!("bad URL: {url}"))?,
                ),
            ),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(format!("bad URL (no host): {url}"));
    }
    let port = match port {
        None => 80,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => n,
            _ => return Err(format!("bad URL (port): {url}")),
        },
    };
    Ok(Url {
        host: host.to_string(),
        port,
        path,
        authority: authority.to_string(),
    })
}

/// The request bytes: HTTP/1.0, so the server closes the connection after the body and
/// never uses chunked encoding.
pub fn request(url: &Url) -> Vec<u8> {
    format!(
        "GET {} HTTP/1.0\r\nHost: {}\r\nUser-Agent: svprobe\r\nConnection: close\r\n\r\n",
        url.path, url.authority
    )
    .into_bytes()
}

/// Why a probe failed: the text after `svprobe: probe failed: `.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure(pub String);

/// Checks a complete response: a 2xx status, and `expect` in the body when given. Pure.
pub fn check(response: &[u8], expect: Option<&[u8]>) -> Result<(), Failure> {
    let line_end = response
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(response.len());
    let status_line = String::from_utf8_lossy(&response[..line_end]);
    let status_line = status_line.trim_end();
    let mut words = status_line.split_whitespace();
    let code = match (words.next(), words.next()) {
        (Some(v), Some(c)) if v.starts_with("HTTP/") && c.len() == 3 => c
            .parse::<u16>()
            .map_err(|_| Failure(format!("bad status line: {}", show(status_line.as_bytes()))))?,
        _ if response.is_empty() => return Err(Failure("empty response".to_string())),
        _ => {
            return Err(Failure(format!(
                "bad status line: {}",
                show(status_line.as_bytes())
            )));
        }
    };
    let body = body_of(response);
    if !(200..300).contains(&code) {
        return Err(Failure(format!("status {code}: {}", show(body))));
    }
    if let Some(want) = expect {
        if !contains(body, want) {
            return Err(Failure(format!(
                "body does not contain {}: {}",
                show(want),
                show(body)
            )));
        }
    }
    Ok(())
}

/// The body: what follows the first empty line (CRLF CRLF, or bare LF LF from sloppy
/// servers); empty when the headers never end.
fn body_of(response: &[u8]) -> &[u8] {
    let crlf = find(response, b"\r\n\r\n").map(|i| i + 4);
    let lf = find(response, b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => &response[a.min(b)..],
        (Some(a), None) | (None, Some(a)) => &response[a..],
        (None, None) => &[],
    }
}

/// True when `response` holds the headers and as many body bytes as its
/// `Content-Length` says. Without that header, only the end of the connection ends the
/// body (HTTP/1.0). Pure.
pub fn complete(response: &[u8]) -> bool {
    let Some(head_end) = find(response, b"\r\n\r\n").map(|i| i + 4) else {
        return false;
    };
    let head = String::from_utf8_lossy(&response[..head_end]);
    let length = head.lines().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse::<usize>().ok())
            .flatten()
    });
    length.is_some_and(|n| response.len() - head_end >= n)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || find(hay, needle).is_some()
}

/// The first [`SHOW_BYTES`] bytes, quoted, with control bytes and non-ASCII escaped so a
/// failure stays on one line (it may end up in a log).
pub fn show(b: &[u8]) -> String {
    let mut s = String::from("\"");
    for &c in b.iter().take(SHOW_BYTES) {
        match c {
            b'"' => s.push_str("\\\""),
            b'\\' => s.push_str("\\\\"),
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            b'\t' => s.push_str("\\t"),
            0x20..=0x7e => s.push(c as char),
            _ => s.push_str(&format!("\\x{c:02x}")),
        }
    }
    s.push('"');
    if b.len() > SHOW_BYTES {
        s.push_str("...");
    }
    s
}

/// A network error in words: djb-style texts for the errnos a probe meets.
fn net_str(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::ECONNREFUSED) => "connection refused".to_string(),
        Some(libc::ECONNRESET) => "connection reset".to_string(),
        Some(libc::EHOSTUNREACH) => "host unreachable".to_string(),
        Some(libc::ENETUNREACH) => "network unreachable".to_string(),
        Some(libc::ETIMEDOUT) => "timed out".to_string(),
        Some(n) => svcore::errstr::errno_str(n),
        None => e.to_string(),
    }
}

/// Time left before `end`, or a timeout failure.
fn left(end: Instant, timeout: Duration) -> Result<Duration, Failure> {
    let now = Instant::now();
    if now >= end {
        return Err(Failure(format!(
            "timed out after {} ms",
            timeout.as_millis()
        )));
    }
    Ok(end - now)
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Connects, sends the request and reads the response, all within `timeout`, then
/// [`check`]s it.
pub fn probe(url: &Url, expect: Option<&[u8]>, timeout: Duration) -> Result<(), Failure> {
    let end = Instant::now() + timeout;
    let timed_out = || Failure(format!("timed out after {} ms", timeout.as_millis()));
    let addrs: Vec<SocketAddr> = (url.host.as_str(), url.port)
        .to_socket_addrs()
        .map_err(|e| Failure(format!("unable to resolve {}: {e}", url.host)))?
        .collect();
    let mut last = Failure(format!("no address for {}", url.host));
    let mut stream = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, left(end, timeout)?) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) if is_timeout(&e) => return Err(timed_out()),
            Err(e) => last = Failure(format!("unable to connect to {addr}: {}", net_str(&e))),
        }
    }
    let mut s = stream.ok_or(last)?;
    s.set_write_timeout(Some(left(end, timeout)?))
        .map_err(|e| Failure(net_str(&e)))?;
    s.write_all(&request(url)).map_err(|e| {
        if is_timeout(&e) {
            timed_out()
        } else {
            Failure(format!("unable to send request: {}", net_str(&e)))
        }
    })?;
    let mut resp = Vec::new();
    let mut buf = [0u8; 8192];
    while resp.len() < MAX_RESPONSE {
        s.set_read_timeout(Some(left(end, timeout)?))
            .map_err(|e| Failure(net_str(&e)))?;
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                resp.extend_from_slice(&buf[..n]);
                // A server that keeps the connection open despite HTTP/1.0 (keep-alive)
                // has still said all it has to say once Content-Length bytes are in.
                if complete(&resp) {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if is_timeout(&e) => return Err(timed_out()),
            // A reset after a complete answer is still an answer (some servers close hard).
            Err(e) if !resp.is_empty() && e.raw_os_error() == Some(libc::ECONNRESET) => break,
            Err(e) => return Err(Failure(format!("unable to read response: {}", net_str(&e)))),
        }
    }
    check(&resp, expect)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn url_with_port_and_path() {
        assert_eq!(
            parse_url("http://127.0.0.1:8000/SYSTEM/dbtest.tcl").unwrap(),
            Url {
                host: "127.0.0.1".into(),
                port: 8000,
                path: "/SYSTEM/dbtest.tcl".into(),
                authority: "127.0.0.1:8000".into(),
            }
        );
    }

    #[test]
    fn url_defaults() {
        let u = parse_url("http://localhost").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("localhost", 80, "/")
        );
        let q = parse_url("http://h?x=1").unwrap();
        assert_eq!(q.path, "/?x=1");
        assert_eq!(q.authority, "h");
    }

    #[test]
    fn url_ipv6() {
        let u = parse_url("http://[::1]:81/x").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("::1", 81, "/x")
        );
        assert_eq!(parse_url("http://[::1]/").unwrap().port, 80);
        assert!(parse_url("http://[::1/").is_err());
    }

    #[test]
    fn url_errors() {
        assert!(
            parse_url("https://x/")
                .unwrap_err()
                .contains("only http://")
        );
        assert!(parse_url("http:///x").unwrap_err().contains("no host"));
        assert!(parse_url("http://h:0/").unwrap_err().contains("port"));
        assert!(parse_url("http://h:99999/").unwrap_err().contains("port"));
        assert!(
            parse_url("http://u:p@h/")
                .unwrap_err()
                .contains("user info")
        );
    }

    #[test]
    fn request_is_http10_with_host() {
        let u = parse_url("http://h:8/p").unwrap();
        assert_eq!(
            String::from_utf8(request(&u)).unwrap(),
            "GET /p HTTP/1.0\r\nHost: h:8\r\nUser-Agent: svprobe\r\nConnection: close\r\n\r\n"
        );
    }

    #[test]
    fn check_accepts_2xx_and_expected_body() {
        let r = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nsuccess\n";
        assert_eq!(check(r, None), Ok(()));
        assert_eq!(check(r, Some(b"success")), Ok(()));
        assert_eq!(check(b"HTTP/1.1 204 No Content\r\n\r\n", None), Ok(()));
    }

    #[test]
    fn check_rejects_other_statuses_showing_the_body() {
        assert_eq!(
            check(b"HTTP/1.0 500 Oops\r\n\r\ndb down\n", None),
            Err(Failure("status 500: \"db down\\n\"".into()))
        );
        assert_eq!(
            check(b"HTTP/1.0 301 Moved\r\nLocation: /x\r\n\r\n", None),
            Err(Failure("status 301: \"\"".into()))
        );
    }

    #[test]
    fn check_rejects_a_body_without_expect() {
        let body = "x".repeat(100);
        let r = format!("HTTP/1.0 200 OK\r\n\r\n{body}");
        let e = check(r.as_bytes(), Some(b"success")).unwrap_err().0;
        assert_eq!(
            e,
            format!(
                "body does not contain \"success\": \"{}\"...",
                "x".repeat(60)
            )
        );
    }

    #[test]
    fn check_does_not_search_the_headers() {
        let r = b"HTTP/1.0 200 OK\r\nX-Note: success\r\n\r\nfailure";
        assert!(check(r, Some(b"success")).is_err());
    }

    #[test]
    fn check_bad_or_empty_responses() {
        assert_eq!(check(b"", None), Err(Failure("empty response".into())));
        assert_eq!(
            check(b"hello\n", None),
            Err(Failure("bad status line: \"hello\"".into()))
        );
    }

    #[test]
    fn body_accepts_bare_lf() {
        assert_eq!(
            check(b"HTTP/1.0 200 OK\nA: b\n\nsuccess", Some(b"success")),
            Ok(())
        );
    }

    #[test]
    fn complete_by_content_length() {
        assert!(!complete(b"HTTP/1.0 200 OK\r\nContent-Length: 7\r\n"));
        assert!(!complete(
            b"HTTP/1.0 200 OK\r\nContent-Length: 7\r\n\r\nsucc"
        ));
        assert!(complete(
            b"HTTP/1.0 200 OK\r\ncontent-length:7\r\n\r\nsuccess"
        ));
        assert!(complete(
            b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"
        ));
        // Without Content-Length only the end of the connection ends the body.
        assert!(!complete(b"HTTP/1.0 200 OK\r\n\r\nsuccess"));
        assert!(!complete(
            b"HTTP/1.0 200 OK\r\nContent-Length: x\r\n\r\nsuccess"
        ));
    }

    #[test]
    fn show_escapes() {
        assert_eq!(show(b"a\"b\\\x01\xff"), "\"a\\\"b\\\\\\x01\\xff\"");
    }
}
