//! svscan as a container's PID 1 (REFERENCE.md §11.8, §12.9): run in a new PID namespace
//! with `unshare --pid --fork --mount-proc` (root only; CI runs as root), stopped with
//! SIGTERM as `docker stop` does.
#![allow(clippy::unwrap_used)] // tests may unwrap (STYLE.md P4)

use std::fs;
use std::path::Path;
use std::time::Duration;

use crate::harness::{self, Running, Scratch, wait_until};

/// Longer than harness::DEADLINE: several waits here span one of svscan's 5 s passes,
/// and CI runs this suite with 4 test threads on 2 loaded cores. Only a failing test
/// ever waits this long.
const DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

/// `(pid, ppid, state)` of every process, from `/proc/*/stat`.
pub(super) fn processes() -> Vec<(u32, u32, char)> {
    let mut out = Vec::new();
    for d in fs::read_dir("/proc").unwrap().flatten() {
        let Some(p) = d.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        let rest = &stat[stat.rfind(')').unwrap() + 1..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        out.push((p, f[1].parse().unwrap(), f[0].chars().next().unwrap()));
    }
    out
}

/// Every descendant of `root` with its state.
pub(super) fn descendants(root: u32) -> Vec<(u32, char)> {
    let all = processes();
    let mut out = Vec::new();
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for &(c, pp, st) in &all {
            if pp == p {
                out.push((c, st));
                frontier.push(c);
            }
        }
    }
    out
}

/// The command line of `pid`, NULs as spaces.
pub(super) fn cmdline(pid: u32) -> String {
    let b = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let s: String = b
        .iter()
        .map(|&c| if c == 0 { ' ' } else { c as char })
        .collect();
    s.trim_end().to_string()
}

/// Checks that every writer's numbered lines (`PID N`) run 1, 2, 3... with no gap, with
/// at least `writers` writers; other lines (`PID bye`) are skipped. Returns the count.
pub(super) fn assert_no_gaps(text: &str, writers: usize) -> usize {
    let mut last: std::collections::HashMap<&str, u64> = Default::default();
    let mut n = 0;
    for line in text.lines() {
        let (pid, num) = line
            .split_once(' ')
            .unwrap_or_else(|| panic!("bad line {line:?}"));
        let Ok(num) = num.parse::<u64>() else {
            continue;
        };
        let prev = last.insert(pid, num).unwrap_or(0);
        assert_eq!(num, prev + 1, "gap or repeat for writer {pid} in:\n{text}");
        n += 1;
    }
    assert!(
        last.len() >= writers,
        "expected {writers} writers in:\n{text}"
    );
    n
}

/// Starts our svscan as PID 1 of a new PID namespace; returns the guard (on `unshare`)
/// and svscan's pid as seen from here.
fn svscan_as_pid1(s: &Scratch, scan: &Path, extra: &[&str]) -> (Running, u32) {
    assert!(
        // SAFETY: geteuid has no preconditions.
        unsafe { libc::geteuid() } == 0,
        "the PID-1 tests need root (unshare --pid); CI runs them as root"
    );
    let mut c = harness::cmd("unshare");
    c.args(["--pid", "--fork", "--mount-proc"])
        .arg(harness::bin("svscan"))
        .args(extra)
        .arg(scan);
    let r = Running::spawn(c, s.path(), "unshare");
    let mut pid = 0;
    wait_until(
        DEADLINE,
        || format!("svscan under unshare; {}", r.stderr()),
        || {
            pid = descendants(r.pid())
                .into_iter()
                .map(|(p, _)| p)
                .find(|&p| cmdline(p).contains("svscan"))
                .unwrap_or(0);
            pid != 0
        },
    );
    (r, pid)
}

#[test]
fn pid1_orderly_shutdown_loses_no_log_line_and_leaves_no_zombie() {
    let s = Scratch::new();
    let scan = s.join("scan");
    let last = s.join("last");
    // A service writing numbered lines; it records the last number it wrote, and says
    // goodbye on TERM.
    s.service(
        "scan/a",
        &format!(
            "trap 'echo \"$$ bye\"; exit 0' TERM\ni=0\nwhile :; do i=$((i+1)); echo \"$$ $i\"; echo $i > {}; sleep 0.01; done",
            last.display()
        ),
    );
    s.service("scan/a/log", "exec cat >> ../out");
    // A service that leaves an orphan behind, which PID 1 must reap.
    let done = s.join("orphan-done");
    s.service(
        "scan/b",
        &format!(
            "sh -c '(sleep 0.2; touch {}) &'\nexec sleep 1000",
            done.display()
        ),
    );
    // A grace period well beyond what an orderly stop needs even on a loaded machine: this
    // test is about the order, and a KILL would make svscan exit 111.
    let (mut r, pid) = svscan_as_pid1(&s, &scan, &["-g", "40"]);
    let out = scan.join("a/out");
    wait_until(
        DEADLINE,
        || format!("lines and the orphan; {}", r.stderr()),
        || fs::read_to_string(&out).unwrap_or_default().lines().count() >= 30 && done.exists(),
    );
    // The orphan died after `touch`; PID 1 reaps it at once.
    wait_until(
        DEADLINE,
        || format!("no zombie: {:?}", descendants(pid)),
        || descendants(pid).iter().all(|&(_, st)| st != 'Z'),
    );
    let inside = descendants(pid);
    // SAFETY: SIGTERM to the svscan this test started (docker stop).
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let st = r.wait_exit(Duration::from_secs(60));
    assert_eq!(st.code(), Some(0), "stderr: {}", r.stderr());
    // Everything that ran inside is gone.
    for (p, _) in inside {
        assert!(!harness::pid_alive(p), "{p} ({}) survived", cmdline(p));
    }
    // Every line the service wrote reached the log, its goodbye included.
    let text = fs::read_to_string(&out).unwrap();
    let n = assert_no_gaps(&text, 1);
    let written: usize = fs::read_to_string(&last).unwrap().trim().parse().unwrap();
    assert!(n >= written, "log has {n} lines, service wrote {written}");
    assert!(text.ends_with(" bye\n"), "no goodbye at the end: {text}");
}

#[test]
fn pid1_kills_what_ignores_term_after_the_grace_period() {
    let s = Scratch::new();
    let scan = s.join("scan");
    s.service("scan/c", "trap '' TERM\nexec sleep 1000");
    let (mut r, pid) = svscan_as_pid1(&s, &scan, &["-g", "1"]);
    wait_until(
        DEADLINE,
        || "c running".into(),
        || harness::pid_alive(harness::status_pid(&scan.join("c"))),
    );
    let inside = descendants(pid);
    // SAFETY: SIGTERM to the svscan this test started.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let st = r.wait_exit(Duration::from_secs(30));
    assert_eq!(st.code(), Some(111), "stderr: {}", r.stderr());
    for (p, _) in inside {
        assert!(!harness::pid_alive(p), "{p} ({}) survived", cmdline(p));
    }
}

#[test]
fn pid1_container_example_stops_in_order() {
    // examples/container/ as shipped: its entrypoint, its services, our multilog.
    let s = Scratch::new();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/container");
    let copy = harness::run({
        let mut c = harness::cmd("cp");
        c.arg("-r").arg(example.join("service")).arg(s.path());
        c
    });
    assert!(copy.status.success(), "{}", harness::stderr(&copy));
    let scan = s.join("service");
    assert!(
        // SAFETY: geteuid has no preconditions.
        unsafe { libc::geteuid() } == 0,
        "the PID-1 tests need root (unshare --pid); CI runs them as root"
    );
    let mut c = harness::cmd("unshare");
    c.args(["--pid", "--fork", "--mount-proc"])
        .arg(example.join("entrypoint"))
        .env("SCAN_DIR", &scan)
        .env("GRACE", "40");
    let mut r = Running::spawn(c, s.path(), "entrypoint");
    let current = scan.join("web/log/main/current");
    wait_until(
        DEADLINE,
        || format!("web's log; {} {}", r.stdout(), r.stderr()),
        || {
            fs::read_to_string(&current)
                .unwrap_or_default()
                .contains("web: request 2")
                && r.stdout().contains("worker: started")
        },
    );
    let mut pid = 0;
    wait_until(
        DEADLINE,
        || format!("svscan under unshare: {:?}", descendants(r.pid())),
        || {
            pid = descendants(r.pid())
                .into_iter()
                .map(|(p, _)| p)
                .find(|&p| cmdline(p).starts_with("svscan --pid1"))
                .unwrap_or(0);
            pid != 0
        },
    );
    // SAFETY: SIGTERM to the svscan this test started (docker stop).
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let st = r.wait_exit(Duration::from_secs(60));
    assert_eq!(st.code(), Some(0), "{} {}", r.stdout(), r.stderr());
    // The web service's goodbye reached its log (the logger stopped after it), and the
    // unlogged worker's went to svscan's stdout.
    let log = fs::read_to_string(&current).unwrap();
    assert!(
        log.trim_end()
            .ends_with("web: TERM received, shutting down"),
        "{log}"
    );
    assert!(r.stdout().contains("worker: stopped"), "{}", r.stdout());
}
