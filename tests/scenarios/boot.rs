//! Boot: svscanboot clears leftovers, then runs svscan under readproctitle with only PATH
//! in the environment (REFERENCE.md §6 svscanboot, OPENACS.md §1).
#![allow(clippy::unwrap_used)] // tests may unwrap (STYLE.md P4)

use std::fs;
use std::os::unix::fs::symlink;

use super::pid1::{cmdline, descendants};
use crate::harness::{self, Running, Scratch, wait_until};

/// Longer than harness::DEADLINE: several waits here span one of svscan's 5 s passes,
/// and CI runs this suite with 4 test threads on 2 loaded cores. Only a failing test
/// ever waits this long.
const DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

#[test]
fn svscanboot_clears_leftovers_and_shows_errors_in_readproctitle() {
    let s = Scratch::new();
    let scan = s.join("scan");
    s.service("scan/x", "echo started-x >&2\nexec sleep 1000");
    symlink("/nonexistent-boot-test", scan.join("dangle")).unwrap();
    // A supervise left over from an earlier boot.
    let mut left = harness::start_supervise(
        &harness::bin("supervise"),
        &scan.join("x"),
        s.path(),
        "left",
    );
    let mut c = harness::ours("svscanboot");
    c.arg(&scan);
    let r = Running::spawn(c, s.path(), "svscanboot");
    // Step 3: `svc -dx` made the old supervise exit.
    left.wait_exit(DEADLINE);
    let mut svscan = 0;
    let mut rp = 0;
    wait_until(
        DEADLINE,
        || {
            format!(
                "svscan and readproctitle under svscanboot: {:?}",
                descendants(r.pid())
            )
        },
        || {
            for (p, _) in descendants(r.pid()) {
                let c = cmdline(p);
                if c == format!("svscan {}", scan.display()) {
                    svscan = p;
                }
                if c.starts_with("readproctitle service errors: ...") {
                    rp = p;
                }
            }
            svscan != 0 && rp != 0
        },
    );
    // The titles admins grep for; the last argument is 400 bytes long.
    let raw = fs::read(format!("/proc/{rp}/cmdline")).unwrap();
    let args: Vec<&[u8]> = raw.split(|&b| b == 0).collect();
    assert_eq!(args[0], b"readproctitle");
    assert_eq!(args[1], b"service");
    assert_eq!(args[2], b"errors:");
    assert_eq!(args[3].len(), 400);
    // svscan runs ours, with only PATH in its environment, ours first.
    let env = fs::read(format!("/proc/{svscan}/environ")).unwrap();
    let env: Vec<&[u8]> = env.split(|&b| b == 0).filter(|e| !e.is_empty()).collect();
    assert_eq!(env.len(), 1, "{env:?}");
    let path = String::from_utf8_lossy(env[0]).into_owned();
    assert!(
        path.starts_with(&format!(
            "PATH={}:/command:/usr/local/bin",
            harness::bin_dir().display()
        )),
        "{path}"
    );
    // A fresh supervise for x, and the errors rolling through readproctitle's title.
    wait_until(
        DEADLINE,
        || "x supervised".into(),
        || harness::is_supervised(&scan.join("x")),
    );
    wait_until(
        DEADLINE,
        || format!("errors in the title: {}", cmdline(rp)),
        || {
            let t = cmdline(rp);
            t.contains("svscan: warning: unable to stat dangle: file does not exist")
                && t.contains("started-x")
        },
    );
}
