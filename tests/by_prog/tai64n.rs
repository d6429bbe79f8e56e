//! Tests for tai64n and tai64nlocal (REFERENCE.md §8), compared with Debian's.
#![allow(clippy::unwrap_used)]

use crate::harness::{self, DEADLINE, Running, Scratch, oracle, wait_until};
use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::Path;
use std::process::Stdio;

/// Runs `prog` with `input` on stdin (a file) and `env`; returns (exit code, stdout).
fn filter(s: &Scratch, prog: &Path, input: &[u8], env: &[(&str, &str)]) -> (i32, Vec<u8>) {
    let inp = s.join("input");
    fs::write(&inp, input).unwrap();
    let outp = s.join("output");
    let mut c = harness::cmd(prog);
    c.envs(env.iter().copied())
        .stdin(File::open(&inp).unwrap())
        .stdout(File::create(&outp).unwrap())
        .stderr(Stdio::null());
    let mut r = Running::spawn_raw(c);
    let st = r.wait_exit(DEADLINE);
    (st.code().unwrap_or(-1), fs::read(&outp).unwrap())
}

const STAMPED: &[u8] = b"@400000006b05a760192f74d4 x\nplain line\n@400000006b05a760192f74d4\ttab\n\
@4000000037c219bf2ef02e94 1999\n@400000005a4e0000000003e8 2018\n\nx@400000006b05a760192f74d4\n\
@400000006b05a760192f74d4 last\n";

#[test]
fn tai64nlocal_matches_debian_in_several_zones() {
    let s = Scratch::new();
    for tz in [
        "UTC",
        "America/New_York",
        "Europe/Berlin",
        "Asia/Kolkata",
        "EST5EDT",
    ] {
        let env = [("TZ", tz)];
        let ours = filter(&s, &harness::bin("tai64nlocal"), STAMPED, &env);
        let deb = filter(&s, &oracle("tai64nlocal"), STAMPED, &env);
        assert_eq!(ours.0, 0);
        assert_eq!(
            String::from_utf8_lossy(&ours.1),
            String::from_utf8_lossy(&deb.1),
            "TZ={tz}"
        );
    }
    let (_, out) = filter(
        &s,
        &harness::bin("tai64nlocal"),
        b"@400000006b05a760192f74d4 x\n",
        &[("TZ", "UTC")],
    );
    assert!(
        out.starts_with(b"2026-11-24 "),
        "{}",
        String::from_utf8_lossy(&out)
    );
}

#[test]
fn tai64nlocal_passes_bad_stamps_through_where_debian_crashes() {
    let s = Scratch::new();
    for line in [
        &b"@4000000000000000 x\n"[..],
        b"@400000006B05A760192F74D4 upper\n",
        b"@ffffffffffffffffffffffff huge\n",
        b"@400000006b05a760192f74d4ab too long\n",
        b"@\n",
        b"@@\n",
    ] {
        let (code, out) = filter(&s, &harness::bin("tai64nlocal"), line, &[("TZ", "UTC")]);
        assert_eq!(code, 0);
        assert_eq!(out, line);
    }
    // The quirk we do not copy: the original dies on the first of these.
    let (code, _) = filter(&s, &oracle("tai64nlocal"), b"@4000000000000000 x\n", &[]);
    assert_ne!(code, 0, "Debian's tai64nlocal was expected to crash here");
}

#[test]
fn tai64n_stamps_every_line_and_keeps_a_missing_final_newline() {
    let s = Scratch::new();
    let input = b"a\n\nlonger line \xff\x00 binary\nno newline";
    let (code, out) = filter(&s, &harness::bin("tai64n"), input, &[]);
    let (dcode, dout) = filter(&s, &oracle("tai64n"), input, &[]);
    assert_eq!((code, dcode), (0, 0));
    assert_eq!(super::multilog::mask(&out), super::multilog::mask(&dout));
    assert_eq!(out.len(), input.len() + 4 * 26);
    assert!(out.ends_with(b" no newline"));
    // Through tai64nlocal and back to the text.
    fs::write(s.join("stamped"), &out).unwrap();
    let (_, local) = filter(&s, &harness::bin("tai64nlocal"), &out, &[("TZ", "UTC")]);
    assert!(local.ends_with(b" no newline"));
    assert_eq!(local.len(), input.len() + 4 * 30);
}

/// A pipe as (read end, write end).
fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two descriptors we then own.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: fresh descriptors from pipe2, owned by nobody else.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

#[test]
fn both_pass_each_line_on_without_waiting_for_more() {
    for prog in ["tai64n", "tai64nlocal"] {
        let (in_r, in_w) = pipe();
        let (out_r, out_w) = pipe();
        let mut c = harness::cmd(harness::bin(prog));
        c.env("TZ", "UTC")
            .stdin(Stdio::from(in_r))
            .stdout(Stdio::from(out_w))
            .stderr(Stdio::null());
        let mut r = Running::spawn_raw(c);
        let mut w = File::from(in_w);
        let mut rd = File::from(out_r);
        for i in 0..3 {
            w.write_all(format!("@400000006b05a760192f74d4 line {i}\n").as_bytes())
                .unwrap();
            let mut got = Vec::new();
            let mut b = [0u8; 256];
            wait_until(
                DEADLINE,
                || format!("{prog} to pass line {i} on"),
                || {
                    let n = rd.read(&mut b).unwrap();
                    got.extend_from_slice(&b[..n]);
                    got.ends_with(format!("line {i}\n").as_bytes())
                },
            );
        }
        drop(w);
        assert!(r.wait_exit(DEADLINE).success());
    }
}
