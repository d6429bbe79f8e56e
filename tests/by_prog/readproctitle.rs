//! Tests for readproctitle (REFERENCE.md §8), ours beside Debian's.
#![allow(clippy::unwrap_used)] // tests may unwrap (STYLE.md P4)

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::harness::{self, DEADLINE, wait_until};

/// The cmdline of `pid` with NULs shown as `|`.
fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .unwrap_or_default()
        .iter()
        .map(|&c| if c == 0 { '|' } else { c as char })
        .collect()
}

/// Runs `prog x ..........` fed with `input`, returns the title (arguments after argv[0])
/// once it ends with `expect_end`, then the exit code at end of input.
fn title_after(prog: &Path, input: &[u8], expect_end: &str) -> (String, Option<i32>) {
    let mut child = Command::new(prog)
        .env_clear()
        .args(["x", ".........."])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input).unwrap();
    wait_until(
        DEADLINE,
        || format!("title ending {expect_end:?}: {:?}", cmdline(pid)),
        || cmdline(pid).ends_with(expect_end),
    );
    let full = cmdline(pid);
    let title = full.split_once('|').unwrap().1.to_string();
    drop(stdin);
    let st = child.wait().unwrap();
    (title, st.code())
}

#[test]
fn readproctitle_rolls_input_into_the_last_argument() {
    let input = b"he\0llo\n";
    let ours = title_after(&harness::bin("readproctitle"), input, "hello\n|");
    let theirs = title_after(&harness::oracle("readproctitle"), input, "hello\n|");
    assert_eq!(ours, ("x|....hello\n|".to_string(), Some(0)));
    assert_eq!(ours, theirs);
}

#[test]
fn readproctitle_keeps_the_first_three_characters() {
    let input = b"abcdefghijklmnop";
    let ours = title_after(&harness::bin("readproctitle"), input, "p|");
    let theirs = title_after(&harness::oracle("readproctitle"), input, "p|");
    assert_eq!(ours.0, "x|...jklmnop|");
    assert_eq!(ours, theirs);
}

#[test]
fn readproctitle_usage_exits_100_silently() {
    for args in [&[][..], &["abcd"][..], &["x", "abcd"][..]] {
        for prog in [
            harness::bin("readproctitle"),
            harness::oracle("readproctitle"),
        ] {
            let o = harness::run({
                let mut c = harness::cmd(&prog);
                c.args(args);
                c
            });
            assert_eq!(o.status.code(), Some(100), "{prog:?} {args:?}");
            assert!(
                o.stdout.is_empty() && o.stderr.is_empty(),
                "{prog:?} {args:?}"
            );
        }
    }
}
