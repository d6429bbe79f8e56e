//! Tests for svok: every exit code and message of REFERENCE.md §5, each compared with
//! Debian's svok.
#![allow(clippy::unwrap_used)]

use super::svstat::FakeSupervise;
use crate::harness::{self, Scratch, oracle, run};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

/// Runs our svok and Debian's in `cwd` (optionally as `nobody` through setuidgid); asserts
/// the same exit code and stderr; returns (code, stderr).
fn both(cwd: &Path, args: &[&str], as_nobody: bool) -> (i32, String) {
    let go = |prog: &Path| {
        let mut c: Command = if as_nobody {
            let mut c = harness::cmd(oracle("setuidgid"));
            c.arg("nobody").arg(prog);
            c
        } else {
            harness::cmd(prog)
        };
        c.current_dir(cwd).args(args);
        let o = run(c);
        assert_eq!(harness::stdout(&o), "", "svok prints nothing on stdout");
        (o.status.code().unwrap(), harness::stderr(&o))
    };
    let o = go(&harness::bin("svok"));
    let d = go(&oracle("svok"));
    assert_eq!(o, d, "ours vs Debian's svok {args:?}");
    o
}

#[test]
fn usage_without_dir() {
    let s = Scratch::new();
    assert_eq!(
        both(s.path(), &[], false),
        (100, "svok: usage: svok dir\n".into())
    );
}

#[test]
fn unable_to_chdir_is_111() {
    let s = Scratch::new();
    assert_eq!(
        both(s.path(), &["nonexist", "ignored"], false),
        (
            111,
            "svok: fatal: unable to chdir to nonexist: file does not exist\n".into()
        )
    );
}

#[test]
fn never_supervised_and_not_running_are_100_silently() {
    let s = Scratch::new();
    fs::create_dir(s.join("never")).unwrap();
    assert_eq!(both(s.path(), &["never"], false), (100, String::new()));
    {
        let _f = FakeSupervise::new(&s.join("gone"));
    }
    // The fake's read ends are closed: the FIFO exists with no reader (ENXIO).
    assert_eq!(both(s.path(), &["gone"], false), (100, String::new()));
}

#[test]
fn supervised_is_0() {
    let s = Scratch::new();
    let _f = FakeSupervise::new(&s.join("fake"));
    assert_eq!(both(s.path(), &["fake"], false), (0, String::new()));
    let dir = s.service("real", "exec sleep 600");
    let _sup = harness::start_supervise(&oracle("supervise"), &dir, s.path(), "sup");
    assert_eq!(both(s.path(), &["real"], false), (0, String::new()));
}

#[test]
fn other_open_errors_are_111_with_the_message() {
    let s = Scratch::new();
    fs::create_dir_all(s.join("odd/supervise/ok")).unwrap();
    assert_eq!(
        both(s.path(), &["odd"], false),
        (
            111,
            "svok: fatal: unable to open odd/supervise/ok: is a directory\n".into()
        )
    );
}

/// A caller outside the delegated group gets `access denied` and 111 (OPENACS.md §5).
#[test]
fn access_denied_as_another_user_is_111() {
    let s = Scratch::new();
    fs::set_permissions(s.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let dir = s.service("svc", "exec sleep 600");
    let _sup = harness::start_supervise(&oracle("supervise"), &dir, s.path(), "sup");
    assert_eq!(
        both(s.path(), &["svc"], true),
        (
            111,
            "svok: fatal: unable to open svc/supervise/ok: access denied\n".into()
        )
    );
}
