//! svprobe against tiny HTTP servers run by the test itself (a std TcpListener in a
//! thread): success, wrong body, 500, refused, timeout, usage.
#![allow(clippy::unwrap_used)]

use crate::harness::{self, ours};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;

/// Serves one connection with `response`, and sends the request it read back to the test.
fn serve_once(response: &'static [u8]) -> (u16, mpsc::Receiver<String>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let req = read_request(&mut s);
        let _ = s.write_all(response);
        drop(s);
        let _ = tx.send(req);
    });
    (port, rx)
}

/// Reads a request up to its empty line.
fn read_request(s: &mut TcpStream) -> String {
    let mut req = Vec::new();
    let mut b = [0u8; 1024];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut b) {
            Ok(0) | Err(_) => break,
            Ok(n) => req.extend_from_slice(&b[..n]),
        }
    }
    String::from_utf8_lossy(&req).into_owned()
}

fn probe(args: &[&str]) -> (i32, String, String) {
    let mut c = ours("svprobe");
    c.args(args);
    let o = harness::run(c);
    (
        o.status.code().unwrap_or(-1),
        harness::stdout(&o),
        harness::stderr(&o),
    )
}

#[test]
fn svprobe_succeeds_on_200_with_expected_body_and_sends_http10() {
    let (port, rx) = serve_once(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nsuccess\n");
    let url = format!("http://127.0.0.1:{port}/SYSTEM/dbtest.tcl");
    let (code, out, err) = probe(&[&url, "success"]);
    assert_eq!((code, out.as_str(), err.as_str()), (0, "", ""));
    let req = rx.recv().unwrap();
    assert!(
        req.starts_with("GET /SYSTEM/dbtest.tcl HTTP/1.0\r\n"),
        "request: {req:?}"
    );
    assert!(
        req.contains(&format!("\r\nHost: 127.0.0.1:{port}\r\n")),
        "request: {req:?}"
    );
}

#[test]
fn svprobe_without_expect_accepts_any_2xx() {
    let (port, _rx) = serve_once(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
    let (code, _, err) = probe(&[&format!("http://127.0.0.1:{port}")]);
    assert_eq!(code, 0, "stderr: {err}");
}

#[test]
fn svprobe_fails_on_wrong_body_showing_60_bytes() {
    let (port, _rx) = serve_once(
        b"HTTP/1.0 200 OK\r\n\r\nerror: database connection pool exhausted, please try again later\n",
    );
    let url = format!("http://127.0.0.1:{port}/SYSTEM/dbtest.tcl");
    let (code, out, err) = probe(&["-t", "5000", &url, "success"]);
    assert_eq!(code, 1);
    assert_eq!(out, "");
    assert_eq!(
        err,
        "svprobe: probe failed: body does not contain \"success\": \"error: database connection pool exhausted, please try again \"...\n"
    );
}

#[test]
fn svprobe_fails_on_status_500() {
    let (port, _rx) = serve_once(b"HTTP/1.0 500 Internal Server Error\r\n\r\ndb down\n");
    let (code, _, err) = probe(&[&format!("http://127.0.0.1:{port}/"), "success"]);
    assert_eq!(code, 1);
    assert_eq!(err, "svprobe: probe failed: status 500: \"db down\\n\"\n");
}

#[test]
fn svprobe_fails_on_connection_refused() {
    // A port that was just ours and is closed now: nothing listens there.
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let (code, _, err) = probe(&[&format!("http://127.0.0.1:{port}/")]);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        format!(
            "svprobe: probe failed: unable to connect to 127.0.0.1:{port}: connection refused\n"
        )
    );
}

#[test]
fn svprobe_times_out_on_a_server_that_never_answers() {
    // The kernel completes the handshake (backlog), but nobody ever reads or writes.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let (code, _, err) = probe(&["-t", "300", &format!("http://127.0.0.1:{port}/")]);
    drop(l);
    assert_eq!(code, 1);
    assert_eq!(err, "svprobe: probe failed: timed out after 300 ms\n");
}

#[test]
fn svprobe_times_out_on_a_server_that_stalls_mid_body() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        read_request(&mut s);
        s.write_all(b"HTTP/1.0 200 OK\r\n\r\nsucc").unwrap();
        // Keep the connection open until the test is done with it.
        let _ = done_rx.recv();
    });
    let (code, _, err) = probe(&["-t300", &format!("http://127.0.0.1:{port}/"), "success"]);
    let _ = done_tx.send(());
    assert_eq!(code, 1);
    assert_eq!(err, "svprobe: probe failed: timed out after 300 ms\n");
}

#[test]
fn svprobe_usage() {
    let usage = "svprobe: usage: svprobe [ -t ms ] url [ expect ]\n";
    for args in [
        &[][..],
        &["-t"][..],
        &["-t", "abc", "http://h/"][..],
        &["-t", "0", "http://h/"][..],
        &["http://h/", "a", "b"][..],
    ] {
        let (code, out, err) = probe(args);
        assert_eq!(code, 100, "args {args:?}");
        assert_eq!(out, "");
        assert!(err.ends_with(usage), "args {args:?}: {err:?}");
    }
    let (code, _, err) = probe(&["-x", "http://h/"]);
    assert_eq!(code, 100);
    assert_eq!(err, format!("svprobe: illegal option -- x\n{usage}"));
}

#[test]
fn svprobe_rejects_non_http_urls() {
    let (code, _, err) = probe(&["https://127.0.0.1/"]);
    assert_eq!(code, 100);
    assert_eq!(
        err,
        "svprobe: fatal: unsupported URL (only http:// is supported): https://127.0.0.1/\n"
    );
}

#[test]
fn svprobe_stops_at_content_length_when_the_server_keeps_the_connection() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        read_request(&mut s);
        s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsuccess\n")
            .unwrap();
        // Keep-alive despite HTTP/1.0: the connection stays open until the test ends.
        let _ = done_rx.recv();
    });
    // The deadline is far beyond the harness's: only a complete answer can pass.
    let (code, _, err) = probe(&[
        "-t",
        "600000",
        &format!("http://127.0.0.1:{port}/"),
        "success",
    ]);
    let _ = done_tx.send(());
    assert_eq!((code, err.as_str()), (0, ""));
}
