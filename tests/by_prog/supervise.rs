//! Tests for supervise (REFERENCE.md §1, §3, §4): real processes in scratch dirs, waits
//! on observable state with deadlines, and differential runs against Debian's
//! `/usr/bin/supervise`.
#![allow(clippy::unwrap_used)]

use crate::harness::{
    self, DEADLINE, Running, Scratch, bin, is_supervised, oracle, pid_alive, start_supervise,
    status_bytes, status_pid, wait_until,
};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Writes `bytes` to `dir/supervise/control` the way svc does (non-blocking open, one
/// write). Kept here so these tests do not depend on our svc.
fn send(dir: &Path, bytes: &[u8]) {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(dir.join("supervise/control"))
        .unwrap_or_else(|e| panic!("cannot open control of {}: {e}", dir.display()));
    f.write_all(bytes).unwrap();
}

/// Want byte of the status (offset 17); 0xee when the file is short or missing.
fn want(dir: &Path) -> u8 {
    status_bytes(dir).get(17).copied().unwrap_or(0xee)
}

/// Paused byte of the status (offset 16).
fn paused(dir: &Path) -> u8 {
    status_bytes(dir).get(16).copied().unwrap_or(0xee)
}

fn describe(dir: &Path, r: &Running) -> String {
    format!("status {:02x?} stderr {:?}", status_bytes(dir), r.stderr())
}

/// Waits until the status pid is nonzero, alive, and different from `old`.
fn wait_new_pid(dir: &Path, r: &Running, old: u32) -> u32 {
    wait_until(
        DEADLINE,
        || format!("a new child (not {old}): {}", describe(dir, r)),
        || {
            let p = status_pid(dir);
            p != 0 && p != old && pid_alive(p)
        },
    );
    status_pid(dir)
}

fn wait_down(dir: &Path, r: &Running) {
    wait_until(
        DEADLINE,
        || format!("pid 0 in status: {}", describe(dir, r)),
        || status_bytes(dir).len() == 18 && status_pid(dir) == 0,
    );
}

/// Lines of a file (empty when missing).
fn lines(p: &Path) -> Vec<String> {
    fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Asserts that `cond` holds for the whole of `d` (a negative observation: "nothing
/// more happens"), checked every few milliseconds.
fn holds_for(d: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + d;
    while Instant::now() < end {
        assert!(cond(), "{what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn ours(s: &Scratch, dir: &Path) -> Running {
    start_supervise(&bin("supervise"), dir, s.path(), "supervise")
}

/// Waits until the run script has recorded `pid` as the last line of its `pids` file
/// (the script writes it after supervise published the pid in status, so the two are
/// never assumed to be in step).
fn wait_pid_recorded(dir: &Path, pid: u32) {
    wait_until(
        DEADLINE,
        || format!("pid {pid} in pids: {:?}", lines(&dir.join("pids"))),
        || lines(&dir.join("pids")).last() == Some(&pid.to_string()),
    );
}

const SLEEPER: &str = "echo $$ >>pids\nexec sleep 600";

#[test]
fn usage_is_exit_100() {
    for args in [vec![], vec!["a", "b"]] {
        let mut c = harness::ours("supervise");
        c.args(&args);
        let o = harness::run(c);
        assert_eq!(o.status.code(), Some(100), "{args:?}");
        assert_eq!(harness::stderr(&o), "supervise: usage: supervise dir\n");
        let mut c = harness::cmd(oracle("supervise"));
        c.args(&args);
        let theirs = harness::run(c);
        assert_eq!(theirs.status.code(), Some(100));
        assert_eq!(harness::stderr(&theirs), harness::stderr(&o));
    }
}

#[test]
fn missing_dir_is_fatal_111() {
    let s = Scratch::new();
    let mut c = harness::ours("supervise");
    c.current_dir(s.path()).arg("nonexist");
    let o = harness::run(c);
    assert_eq!(o.status.code(), Some(111));
    assert_eq!(
        harness::stderr(&o),
        "supervise: fatal: unable to chdir to nonexist: file does not exist\n"
    );
}

#[test]
fn startup_creates_the_076_files() {
    let s = Scratch::new();
    let d = s.service("s", SLEEPER);
    let r = ours(&s, &d);
    let pid = wait_new_pid(&d, &r, 0);
    let mode = |n: &str| fs::symlink_metadata(d.join("supervise").join(n)).unwrap();
    use std::os::unix::fs::FileTypeExt;
    assert!(mode("control").file_type().is_fifo());
    assert!(mode("ok").file_type().is_fifo());
    assert_eq!(mode("control").permissions().mode() & 0o7777, 0o600);
    assert_eq!(mode("ok").permissions().mode() & 0o7777, 0o600);
    assert_eq!(mode("lock").permissions().mode() & 0o7777, 0o600);
    assert_eq!(mode("status").permissions().mode() & 0o7777, 0o644);
    assert_eq!(
        fs::metadata(d.join("supervise"))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777,
        0o700
    );
    // The 18 bytes: TAI64N, pid little-endian, paused, want.
    let b = status_bytes(&d);
    assert_eq!(b.len(), 18);
    assert_eq!(b[0], 0x40);
    assert_eq!(&b[12..16], &pid.to_le_bytes());
    assert_eq!(b[16], 0);
    assert_eq!(b[17], b'u');
    // The stamp is djb's clock: nanoseconds end in 500.
    let nanos = u32::from_be_bytes([b[8], b[9], b[10], b[11]]);
    assert_eq!(nanos % 1000, 500);
    // The child is ./run in the service dir, not in its own process group.
    wait_pid_recorded(&d, pid);
    assert_eq!(lines(&d.join("pids")), vec![pid.to_string()]);
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(
        fields[2],
        r.pid().to_string(),
        "child's pgrp is supervise's"
    );
    // Process title stays `supervise DIR`.
    let cmdline = fs::read(format!("/proc/{}/cmdline", r.pid())).unwrap();
    assert!(cmdline.ends_with(format!("{}\0", d.display()).as_bytes()));
}

#[test]
fn child_inherits_none_of_supervises_descriptors() {
    let s = Scratch::new();
    let d = s.service(
        "s",
        "ls -l /proc/$$/fd/ >fds.tmp\nmv fds.tmp fds\nexec sleep 600",
    );
    let r = ours(&s, &d);
    wait_until(DEADLINE, || describe(&d, &r), || d.join("fds").exists());
    // The shell keeps its script open on a high fd; what must not be there is the lock,
    // the FIFOs or the self-pipe (all close-on-exec in supervise).
    let fds = fs::read_to_string(d.join("fds")).unwrap();
    assert!(!fds.contains("supervise/"), "{fds}");
    assert!(!fds.contains("socket:"), "{fds}");
}

#[test]
fn down_file_starts_want_down_and_u_starts() {
    let s = Scratch::new();
    let d = s.service("s", SLEEPER);
    fs::write(d.join("down"), "").unwrap();
    let r = ours(&s, &d);
    assert_eq!(status_pid(&d), 0);
    assert_eq!(want(&d), b'd');
    assert!(!d.join("pids").exists());
    send(&d, b"u");
    let pid = wait_new_pid(&d, &r, 0);
    assert_eq!(want(&d), b'u');
    wait_pid_recorded(&d, pid);
    assert_eq!(lines(&d.join("pids")), vec![pid.to_string()]);
}

#[test]
fn down_sends_term_then_cont_and_does_not_restart() {
    let s = Scratch::new();
    // The trap records the signals; TERM then exits.
    let d = s.service(
        "s",
        "trap 'echo CONT >>sigs' CONT\ntrap 'echo TERM >>sigs; exit 0' TERM\necho $$ >>pids\nwhile :; do sleep 1 & wait $!; done",
    );
    let r = ours(&s, &d);
    let pid = wait_new_pid(&d, &r, 0);
    wait_until(DEADLINE, || describe(&d, &r), || d.join("pids").exists());
    send(&d, b"d");
    wait_down(&d, &r);
    assert_eq!(want(&d), b'd');
    assert!(!pid_alive(pid));
    let sigs = lines(&d.join("sigs"));
    assert_eq!(sigs.first().map(String::as_str), Some("TERM"), "{sigs:?}");
    holds_for(Duration::from_millis(1500), "no restart after d", || {
        status_pid(&d) == 0 && lines(&d.join("pids")).len() == 1
    });
}

#[test]
fn signal_letters_reach_the_child() {
    let s = Scratch::new();
    let mut script = String::new();
    for sig in [
        "HUP", "ALRM", "INT", "TERM", "QUIT", "USR1", "USR2", "WINCH",
    ] {
        script.push_str(&format!("trap 'echo {sig} >>sigs' {sig}\n"));
    }
    script.push_str("echo $$ >>pids\nwhile :; do sleep 1 & wait $!; done");
    let d = s.service("s", &script);
    let r = ours(&s, &d);
    let pid = wait_new_pid(&d, &r, 0);
    wait_until(DEADLINE, || describe(&d, &r), || d.join("pids").exists());
    let before = status_bytes(&d);
    let mut expected = Vec::new();
    for (letter, sig) in [
        (b'h', "HUP"),
        (b'a', "ALRM"),
        (b'i', "INT"),
        (b't', "TERM"),
        (b'q', "QUIT"),
        (b'1', "USR1"),
        (b'2', "USR2"),
        (b'w', "WINCH"),
    ] {
        send(&d, &[letter]);
        expected.push(sig.to_string());
        wait_until(
            DEADLINE,
            || format!("{sig} recorded; sigs {:?}", lines(&d.join("sigs"))),
            || lines(&d.join("sigs")) == expected,
        );
    }
    // Signal-only commands never rewrite status (REFERENCE.md §3): same bytes.
    assert_eq!(status_bytes(&d), before);
    assert_eq!(status_pid(&d), pid);
    // k kills; want is still u, so it comes back.
    send(&d, b"k");
    let pid2 = wait_new_pid(&d, &r, pid);
    assert_ne!(pid, pid2);
    assert!(!pid_alive(pid));
}

#[test]
fn pause_and_continue_stop_and_resume() {
    let s = Scratch::new();
    let d = s.service("s", SLEEPER);
    let r = ours(&s, &d);
    let pid = wait_new_pid(&d, &r, 0);
    let state = |pid: u32| {
        let st = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        st.rsplit(')')
            .next()
            .and_then(|x| x.split_whitespace().next())
            .unwrap_or("")
            .to_string()
    };
    send(&d, b"p");
    wait_until(DEADLINE, || describe(&d, &r), || paused(&d) == 1);
    wait_until(DEADLINE, || state(pid), || state(pid) == "T");
    send(&d, b"c");
    wait_until(DEADLINE, || describe(&d, &r), || paused(&d) == 0);
    wait_until(DEADLINE, || state(pid), || state(pid) == "S");
    // d on a paused process: TERM then CONT makes it die, and paused is cleared.
    send(&d, b"p");
    wait_until(DEADLINE, || state(pid), || state(pid) == "T");
    send(&d, b"d");
    wait_down(&d, &r);
    assert_eq!(paused(&d), 0);
    assert_eq!(want(&d), b'd');
}

#[test]
fn once_runs_without_restart() {
    let s = Scratch::new();
    let d = s.service("s", "echo $$ >>pids\nexec sleep 600");
    fs::write(d.join("down"), "").unwrap();
    let r = ours(&s, &d);
    send(&d, b"o");
    let pid = wait_new_pid(&d, &r, 0);
    assert_eq!(want(&d), 0);
    wait_pid_recorded(&d, pid);
    send(&d, b"t");
    wait_down(&d, &r);
    assert_eq!(want(&d), 0);
    holds_for(Duration::from_millis(1500), "no restart after once", || {
        status_pid(&d) == 0 && lines(&d.join("pids")) == vec![pid.to_string()]
    });
}

#[test]
fn x_when_down_exits_0_at_once() {
    let s = Scratch::new();
    let d = s.service("s", SLEEPER);
    fs::write(d.join("down"), "").unwrap();
    let mut r = ours(&s, &d);
    send(&d, b"x");
    let st = r.wait_exit(DEADLINE);
    assert_eq!(st.code(), Some(0));
    assert!(!is_supervised(&d));
    assert_eq!(status_pid(&d), 0);
    assert_eq!(want(&d), b'd');
}

#[test]
fn x_waits_for_the_child_and_keeps_want() {
    let s = Scratch::new();
    let d = s.service("s", SLEEPER);
    let mut r = ours(&s, &d);
    let pid = wait_new_pid(&d, &r, 0);
    wait_pid_recorded(&d, pid);
    send(&d, b"x");
    // Still supervised while the child runs.
    holds_for(
        Duration::from_millis(300),
        "x must not stop the child",
        || pid_alive(pid) && r.try_wait().is_none(),
    );
    send(&d, b"t");
    let st = r.wait_exit(DEADLINE);
    assert_eq!(st.code(), Some(0));
    assert!(!pid_alive(pid));
    assert_eq!(status_pid(&d), 0);
    assert_eq!(want(&d), b'u', "x keeps the want byte (REFERENCE.md §4)");
    assert_eq!(lines(&d.join("pids")), vec![pid.to_string()], "no restart");
}

#[test]
fn dx_stops_and_exits() {
    let s = Scratch::new();
    let d = s.service("s", SLEEPER);
    let mut r = ours(&s, &d);
    let pid = wait_new_pid(&d, &r, 0);
    send(&d, b"dx");
    assert_eq!(r.wait_exit(DEADLINE).code(), Some(0));
    assert!(!pid_alive(pid));
    assert_eq!(status_pid(&d), 0);
    assert_eq!(want(&d), b'd');
}

#[test]
fn crash_loop_is_one_start_per_second() {
    let s = Scratch::new();
    // Each run crashes 0.2 s after its start: the restart must still wait for the 1 s
    // floor, start to start. (A run that exits at once is the same rule; living a little
    // lets the test see every pid without racing the reaper.)
    let d = s.service("s", "sleep 0.2\nexit 1");
    let r = ours(&s, &d);
    // (starts counter, start stamp in ns) of each run seen. Under load a run may be
    // missed; the counter says how many starts lie between two observations.
    let seen: std::cell::RefCell<Vec<(u64, i128)>> = Default::default();
    wait_until(
        Duration::from_secs(30),
        || {
            format!(
                "4 observed starts: {:?}; {}",
                seen.borrow(),
                describe(&d, &r)
            )
        },
        || {
            let mut seen = seen.borrow_mut();
            if let Some(e) = ext(&d) {
                if e.pid != 0 && seen.last().is_none_or(|l| l.0 != e.starts) {
                    let ns = i128::from(e.stamp.secs) * 1_000_000_000 + i128::from(e.stamp.nanos);
                    seen.push((e.starts, ns));
                }
            }
            seen.len() >= 4
        },
    );
    let seen = seen.into_inner();
    for w in seen.windows(2) {
        let ((n1, t1), (n2, t2)) = (w[0], w[1]);
        // supervise's clock has millisecond resolution: at least 1 s per start, to 1 ms.
        assert!(
            t2 - t1 >= i128::from(n2 - n1) * 999_000_000,
            "starts closer than the floor: {seen:?}"
        );
    }
    // Truthful meanwhile: between starts the status is pid 0, want up.
    wait_until(
        DEADLINE,
        || describe(&d, &r),
        || status_pid(&d) == 0 && want(&d) == b'u',
    );
    // Still serving control bytes during the floor wait.
    send(&d, b"d");
    wait_until(DEADLINE, || describe(&d, &r), || want(&d) == b'd');
}

#[test]
fn d_during_floor_wait_cancels_the_start() {
    let s = Scratch::new();
    // The first run exits at once; a marker file makes later runs sleep so a wrongly
    // started second run would be visible as a pid.
    let d = s.service("s", "echo $$ >>pids\nexit 0");
    let r = ours(&s, &d);
    wait_until(
        DEADLINE,
        || describe(&d, &r),
        || lines(&d.join("pids")).len() == 1 && status_pid(&d) == 0,
    );
    send(&d, b"d");
    wait_until(DEADLINE, || describe(&d, &r), || want(&d) == b'd');
    // (Under heavy load the floor may have passed before d arrived; then d stopped the
    // second run instead. Either way nothing starts after d.)
    wait_down(&d, &r);
    let n = lines(&d.join("pids")).len();
    holds_for(
        Duration::from_millis(2000),
        "d cancels the pending start",
        || lines(&d.join("pids")).len() == n && status_pid(&d) == 0,
    );
    // u brings it back.
    send(&d, b"u");
    wait_until(
        DEADLINE,
        || describe(&d, &r),
        || lines(&d.join("pids")).len() > n,
    );
}

#[test]
fn x_during_floor_wait_exits_without_starting() {
    let s = Scratch::new();
    let d = s.service("s", "echo $$ >>pids\nexit 0");
    let mut r = ours(&s, &d);
    wait_until(
        DEADLINE,
        || describe(&d, &r),
        || lines(&d.join("pids")).len() == 1 && status_pid(&d) == 0,
    );
    send(&d, b"x");
    assert_eq!(r.wait_exit(DEADLINE).code(), Some(0));
    assert!(lines(&d.join("pids")).len() <= 2);
}

#[test]
fn missing_run_is_retried_every_second_with_the_reason() {
    let s = Scratch::new();
    let d = s.join("m");
    fs::create_dir(&d).unwrap();
    let mut c = harness::cmd(bin("supervise"));
    c.current_dir(s.path()).arg("m");
    let r = Running::spawn(c, s.path(), "sup");
    let msg = "supervise: fatal: unable to start m/run: file does not exist";
    wait_until(
        DEADLINE,
        || r.stderr(),
        || r.stderr().lines().filter(|l| *l == msg).count() >= 2,
    );
    assert!(r.stderr().lines().all(|l| l == msg), "{}", r.stderr());
    // Truthful: nothing runs, want up; the lock is held.
    wait_until(
        DEADLINE,
        || describe(&d, &r),
        || status_pid(&d) == 0 && want(&d) == b'u',
    );
    assert!(is_supervised(&d));
    // Fixing it makes the next retry start it.
    harness::write_script(&d.join("run"), SLEEPER);
    wait_new_pid(&d, &r, 0);
}

#[test]
fn non_executable_run_says_access_denied() {
    let s = Scratch::new();
    let d = s.join("n");
    fs::create_dir(&d).unwrap();
    fs::write(d.join("run"), "#!/bin/sh\nexec sleep 600\n").unwrap();
    let mut c = harness::cmd(bin("supervise"));
    c.current_dir(s.path()).arg("n");
    let r = Running::spawn(c, s.path(), "sup");
    let msg = "supervise: fatal: unable to start n/run: access denied";
    wait_until(
        DEADLINE,
        || r.stderr(),
        || r.stderr().lines().filter(|l| *l == msg).count() >= 2,
    );
    fs::set_permissions(d.join("run"), fs::Permissions::from_mode(0o755)).unwrap();
    wait_new_pid(&d, &r, 0);
}

#[test]
fn second_supervise_fails_and_first_keeps_running() {
    let s = Scratch::new();
    let d = s.service("s", SLEEPER);
    let r = ours(&s, &d);
    let pid = wait_new_pid(&d, &r, 0);
    let mut c = harness::cmd(bin("supervise"));
    c.current_dir(s.path()).arg("s");
    let o = harness::run(c);
    assert_eq!(o.status.code(), Some(111));
    assert_eq!(
        harness::stderr(&o),
        "supervise: fatal: unable to acquire s/supervise/lock: temporary failure\n"
    );
    // Same message from Debian's supervise against ours.
    let mut c = harness::cmd(oracle("supervise"));
    c.current_dir(s.path()).arg("s");
    let theirs = harness::run(c);
    assert_eq!(theirs.status.code(), Some(111));
    assert_eq!(harness::stderr(&theirs), harness::stderr(&o));
    // Nothing lost.
    assert!(is_supervised(&d));
    assert_eq!(status_pid(&d), pid);
    assert!(pid_alive(pid));
    assert!(svcore::lock::is_held(&d.join("supervise/lock")).unwrap());
    send(&d, b"t");
    wait_new_pid(&d, &r, pid);
}

#[test]
fn dangling_supervise_symlink_is_created() {
    let s = Scratch::new();
    let d = s.service("s", SLEEPER);
    let target = s.join("state");
    std::os::unix::fs::symlink(&target, d.join("supervise")).unwrap();
    let r = ours(&s, &d);
    wait_new_pid(&d, &r, 0);
    assert!(target.join("status").exists());
    assert!(target.join("lock").exists());
}

#[test]
fn status_write_failure_warns_keeps_running_and_recovers() {
    let s = Scratch::new();
    let d = s.service("s", SLEEPER);
    let r = ours(&s, &d);
    let pid = wait_new_pid(&d, &r, 0);
    // status.new as a directory makes the open fail with EISDIR.
    fs::create_dir(d.join("supervise/status.new")).unwrap();
    send(&d, b"p");
    wait_until(
        DEADLINE,
        || r.stderr(),
        || {
            r.stderr().contains(&format!(
                "supervise: warning: unable to open {}/supervise/status.new: is a directory",
                d.display()
            ))
        },
    );
    // Nothing lost: child alive, still supervised, commands still served.
    assert!(pid_alive(pid));
    assert!(is_supervised(&d));
    assert_eq!(paused(&d), 0, "stale status until the write succeeds");
    fs::remove_dir(d.join("supervise/status.new")).unwrap();
    // The retry timer writes the truth without any new command.
    wait_until(DEADLINE, || describe(&d, &r), || paused(&d) == 1);
    send(&d, b"c");
    wait_until(DEADLINE, || describe(&d, &r), || paused(&d) == 0);
    assert_eq!(status_pid(&d), pid);
}

/// A tmpfs mounted on a path for the life of the guard.
struct Mount(PathBuf);

impl Mount {
    fn tmpfs(at: &Path, opts: &str) -> Mount {
        let o = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", opts, "tmpfs"])
            .arg(at)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "this test needs root and mount(8) for tmpfs: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        Mount(at.to_path_buf())
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[test]
fn full_disk_warns_and_status_is_rewritten_when_space_returns() {
    let s = Scratch::new();
    let d = s.service("s", SLEEPER);
    fs::create_dir(d.join("supervise")).unwrap();
    let m = Mount::tmpfs(&d.join("supervise"), "size=16k,mode=0700");
    let r = ours(&s, &d);
    let pid = wait_new_pid(&d, &r, 0);
    // Fill the filesystem. status.new is truncated on open, so the next write of 18
    // bytes needs a fresh block and fails with ENOSPC.
    let mut filler = fs::File::create(d.join("supervise/filler")).unwrap();
    let chunk = [b'x'; 4096];
    while filler.write_all(&chunk).is_ok() {}
    let _ = filler.write_all(b"x");
    drop(filler);
    send(&d, b"d");
    let msg = format!(
        "supervise: warning: unable to write {}/supervise/status.new: out of disk space",
        d.display()
    );
    wait_until(DEADLINE, || r.stderr(), || r.stderr().contains(&msg));
    // The command itself took effect: the child is gone, nothing restarted it.
    wait_until(DEADLINE, || describe(&d, &r), || !pid_alive(pid));
    assert!(is_supervised(&d));
    fs::remove_file(d.join("supervise/filler")).unwrap();
    wait_until(
        DEADLINE,
        || describe(&d, &r),
        || status_pid(&d) == 0 && want(&d) == b'd',
    );
    send(&d, b"x");
    drop(r);
    drop(m);
}

#[test]
fn read_only_supervise_dir_warns_and_recovers() {
    let s = Scratch::new();
    let d = s.service("s", SLEEPER);
    let r = ours(&s, &d);
    let pid = wait_new_pid(&d, &r, 0);
    wait_pid_recorded(&d, pid);
    // A read-only filesystem mounted over supervise/ while supervise runs: its open
    // descriptors (lock, FIFOs) stay on the old directory, but every status write now
    // lands on the read-only one. The control FIFO is opened before the mount.
    let mut control = fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(d.join("supervise/control"))
        .unwrap();
    let m = Mount::tmpfs(&d.join("supervise"), "ro,size=16k");
    control.write_all(b"t").unwrap();
    let msg = format!(
        "supervise: warning: unable to open {}/supervise/status.new: read-only file system",
        d.display()
    );
    wait_until(DEADLINE, || r.stderr(), || r.stderr().contains(&msg));
    // Nothing lost: the service was restarted (the pids file is outside supervise/).
    wait_until(
        DEADLINE,
        || r.stderr(),
        || lines(&d.join("pids")).len() == 2,
    );
    drop(m);
    // The retry timer publishes the restarted child once the directory is writable.
    let pid2 = wait_new_pid(&d, &r, pid);
    assert_eq!(lines(&d.join("pids"))[1], pid2.to_string());
    assert!(is_supervised(&d));
    assert!(svcore::lock::is_held(&d.join("supervise/lock")).unwrap());
}

#[test]
fn read_only_supervise_dir_at_startup_is_fatal() {
    let s = Scratch::new();
    let d = s.service("s", SLEEPER);
    fs::create_dir(d.join("supervise")).unwrap();
    let _m = Mount::tmpfs(&d.join("supervise"), "ro,size=16k");
    let mut c = harness::cmd(bin("supervise"));
    c.current_dir(s.path()).arg("s");
    let o = harness::run(c);
    assert_eq!(o.status.code(), Some(111));
    assert_eq!(
        harness::stderr(&o),
        "supervise: fatal: unable to acquire s/supervise/lock: read-only file system\n"
    );
    assert!(!d.join("pids").exists(), "nothing started");
}

#[test]
fn junk_flood_never_blocks_or_crashes() {
    let s = Scratch::new();
    let d = s.service("s", SLEEPER);
    let r = ours(&s, &d);
    let pid = wait_new_pid(&d, &r, 0);
    // Bytes 0.76 gives no meaning to, a megabyte of them, written as fast as the FIFO
    // takes them (non-blocking; EAGAIN means supervise has not caught up yet).
    let junk: Vec<u8> = (0..=255u8)
        .filter(|b| !b"udopchaitkxq12w".contains(b))
        .cycle()
        .take(65536)
        .collect();
    let mut f = fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(d.join("supervise/control"))
        .unwrap();
    let mut sent = 0usize;
    let end = Instant::now() + Duration::from_secs(30);
    while sent < 1 << 20 {
        assert!(Instant::now() < end, "supervise stopped reading its FIFO");
        match f.write(&junk) {
            Ok(n) => sent += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(1))
            }
            Err(e) => panic!("write: {e}"),
        }
    }
    // Then a real command, behind the junk in the same FIFO.
    loop {
        assert!(Instant::now() < end, "supervise stopped reading its FIFO");
        match f.write(b"p") {
            Ok(1) => break,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(1))
            }
            Err(e) => panic!("write: {e}"),
        }
    }
    wait_until(DEADLINE, || describe(&d, &r), || paused(&d) == 1);
    assert_eq!(status_pid(&d), pid);
    assert!(pid_alive(pid));
    assert!(is_supervised(&d));
    assert_eq!(r.stderr(), "");
}

/// The observable part of a status record: pid present?, paused, want.
fn masked(dir: &Path) -> (bool, u8, u8) {
    let b = status_bytes(dir);
    assert_eq!(b.len(), 18, "status of {}", dir.display());
    (status_pid(dir) != 0, b[16], b[17])
}

/// Runs one command sequence against a supervise binary; returns the masked status and
/// the normalised line of Debian's svstat after each step.
fn scenario(program: &Path, down_file: bool) -> Vec<((bool, u8, u8), String)> {
    scenario_with(program, down_file, false)
}

/// Every opt-in feature of issue 6 switched on at once; 0.76 ignores all of these files.
fn switch_everything_on(d: &Path) {
    fs::write(
        d.join("service.toml"),
        "timeout-kill = 5000
timeout-finish = 5000
max-death-tally = 10
setsid = true
         cgroup = true
no-restart-exit-codes = [99]
         [backoff]
initial = 1000
max = 4000
         [readiness]
notify-socket = true
check = \"true\"
         [health]
command = \"true\"
interval = 200
grace = 0
",
    )
    .unwrap();
    fs::write(d.join("notification-fd"), "5\n").unwrap();
    fs::write(d.join("down-signal"), "TERM\n").unwrap();
    harness::write_script(&d.join("finish"), "exit 0");
}

fn scenario_with(
    program: &Path,
    down_file: bool,
    everything: bool,
) -> Vec<((bool, u8, u8), String)> {
    let s = Scratch::new();
    let d = s.service("s", "exec sleep 600");
    if down_file {
        fs::write(d.join("down"), "").unwrap();
    }
    if everything {
        switch_everything_on(&d);
    }
    let mut r = start_supervise(program, &d, s.path(), "sup");
    let svstat = || {
        let mut c = harness::cmd(oracle("svstat"));
        c.current_dir(s.path()).arg("s");
        harness::normalize(&harness::stdout(&harness::run(c)))
    };
    let mut seen = Vec::new();
    let record = |seen: &mut Vec<_>| seen.push((masked(&d), svstat()));
    let pid_is = |nonzero: bool| {
        wait_until(
            DEADLINE,
            || format!("{}: {:02x?}", program.display(), status_bytes(&d)),
            || (status_pid(&d) != 0) == nonzero && status_bytes(&d).len() == 18,
        )
    };
    pid_is(!down_file);
    record(&mut seen);
    if down_file {
        send(&d, b"u");
        pid_is(true);
        record(&mut seen);
    }
    // Each step waits for the state it causes, so the oracle's blocking 1 s sleep after
    // a start only delays, never changes, what is compared.
    send(&d, b"p");
    wait_until(
        DEADLINE,
        || format!("{:02x?}", status_bytes(&d)),
        || paused(&d) == 1,
    );
    record(&mut seen);
    send(&d, b"c");
    wait_until(
        DEADLINE,
        || format!("{:02x?}", status_bytes(&d)),
        || paused(&d) == 0,
    );
    record(&mut seen);
    send(&d, b"d");
    pid_is(false);
    record(&mut seen);
    send(&d, b"o");
    pid_is(true);
    wait_until(
        DEADLINE,
        || format!("{:02x?}", status_bytes(&d)),
        || want(&d) == 0,
    );
    record(&mut seen);
    send(&d, b"u");
    wait_until(
        DEADLINE,
        || format!("{:02x?}", status_bytes(&d)),
        || want(&d) == b'u',
    );
    record(&mut seen);
    let pid = status_pid(&d);
    send(&d, b"t");
    wait_until(
        DEADLINE,
        || format!("{:02x?}", status_bytes(&d)),
        || status_pid(&d) != 0 && status_pid(&d) != pid,
    );
    record(&mut seen);
    send(&d, b"dx");
    assert_eq!(r.wait_exit(DEADLINE).code(), Some(0));
    record(&mut seen);
    seen
}

#[test]
fn differential_status_matches_debian_supervise() {
    for down_file in [false, true] {
        let theirs = scenario(&oracle("supervise"), down_file);
        let ours = scenario(&bin("supervise"), down_file);
        assert_eq!(ours, theirs, "down file: {down_file}");
    }
}

/// Issue 6's compatibility proof: with every feature on, our supervise still shows
/// Debian's svstat exactly what Debian's supervise shows (which ignores the files).
#[test]
fn differential_status_matches_with_every_feature_on() {
    for down_file in [false, true] {
        let theirs = scenario_with(&oracle("supervise"), down_file, true);
        let ours = scenario_with(&bin("supervise"), down_file, true);
        assert_eq!(ours, theirs, "down file: {down_file}");
    }
}

#[test]
fn differential_exec_failure_message_matches() {
    let s = Scratch::new();
    fs::create_dir(s.join("m")).unwrap();
    let mut outs = Vec::new();
    for (tag, program) in [("ours", bin("supervise")), ("theirs", oracle("supervise"))] {
        let mut c = harness::cmd(program);
        c.current_dir(s.path()).arg("m");
        let r = Running::spawn(c, s.path(), tag);
        wait_until(DEADLINE, || r.stderr(), || r.stderr().lines().count() >= 2);
        let first = r.stderr().lines().next().unwrap().to_string();
        drop(r);
        outs.push(first);
    }
    assert_eq!(outs[0], outs[1]);
    assert_eq!(
        outs[0],
        "supervise: fatal: unable to start m/run: file does not exist"
    );
}

// ---- issue 6: opt-in features ----

use svcore::sidecar::{self, Phase};

/// The sidecar, when readable.
fn ext(dir: &Path) -> Option<sidecar::Ext> {
    sidecar::read(dir).ok()
}

fn phase(dir: &Path) -> Option<Phase> {
    ext(dir).map(|e| e.phase)
}

fn deaths(dir: &Path) -> Vec<sidecar::Death> {
    sidecar::read_deaths(dir).unwrap_or_default()
}

#[test]
fn sidecar_is_published_and_counts_commands() {
    let s = Scratch::new();
    let d = s.service("s", SLEEPER);
    let r = ours(&s, &d);
    let pid = wait_new_pid(&d, &r, 0);
    wait_until(
        DEADLINE,
        || describe(&d, &r),
        || ext(&d).is_some_and(|e| e.pid == pid && e.phase == Phase::Up),
    );
    let e = ext(&d).unwrap();
    assert_eq!(e.supervisor, r.pid());
    assert_eq!(e.starts, 1);
    assert_eq!(e.want, b'u');
    let before = e.commands;
    // Bytes that signal nothing, so the child stays (h would kill a plain sleep).
    send(&d, b"uz\n");
    wait_until(
        DEADLINE,
        || format!("{:?}", ext(&d)),
        || ext(&d).is_some_and(|e| e.commands == before + 3),
    );
    // status itself is still exactly 18 bytes.
    assert_eq!(status_bytes(&d).len(), 18);
    send(&d, b"k");
    wait_new_pid(&d, &r, pid);
    wait_until(
        DEADLINE,
        || format!("{:?}", ext(&d)),
        || ext(&d).is_some_and(|e| e.deaths == 1 && e.last_exit == Some(libc::SIGKILL)),
    );
    let h = deaths(&d);
    assert_eq!(h.len(), 1);
    assert_eq!(h[0].pid, pid);
    assert_eq!(h[0].wstatus, libc::SIGKILL);
}

#[test]
fn timeout_kill_kills_a_daemon_that_ignores_term() {
    let s = Scratch::new();
    let d = s.service("s", "trap '' TERM\necho $$ >>pids\nexec sleep 600");
    fs::write(d.join("timeout-kill"), "300\n").unwrap();
    let r = ours(&s, &d);
    let pid = wait_new_pid(&d, &r, 0);
    // The trap is set once the pid is recorded.
    wait_pid_recorded(&d, pid);
    send(&d, b"d");
    wait_down(&d, &r);
    assert!(!pid_alive(pid));
    wait_until(
        DEADLINE,
        || format!("{:?}", deaths(&d)),
        || {
            deaths(&d)
                .last()
                .is_some_and(|x| x.wstatus == libc::SIGKILL)
        },
    );
}

#[test]
fn without_timeout_kill_a_term_ignoring_daemon_stays_up() {
    let s = Scratch::new();
    let d = s.service("s", "trap '' TERM\necho $$ >>pids\nexec sleep 600");
    let r = ours(&s, &d);
    let pid = wait_new_pid(&d, &r, 0);
    wait_pid_recorded(&d, pid);
    send(&d, b"d");
    wait_until(DEADLINE, || describe(&d, &r), || want(&d) == b'd');
    // 0.76: no escalation, `up ..., want down` indefinitely (REFERENCE.md §4).
    holds_for(Duration::from_millis(1000), "no KILL by default", || {
        pid_alive(pid) && status_pid(&d) == pid
    });
    send(&d, b"k");
    wait_down(&d, &r);
}

#[test]
fn down_signal_is_sent_instead_of_term() {
    let s = Scratch::new();
    let d = s.service(
        "s",
        "trap 'echo HUP >>sigs; exit 0' HUP\ntrap 'echo TERM >>sigs; exit 0' TERM\necho $$ >>pids\nwhile :; do sleep 1 & wait $!; done",
    );
    fs::write(d.join("down-signal"), "SIGHUP\n").unwrap();
    let r = ours(&s, &d);
    let pid = wait_new_pid(&d, &r, 0);
    wait_pid_recorded(&d, pid);
    send(&d, b"d");
    wait_down(&d, &r);
    assert_eq!(lines(&d.join("sigs")), vec!["HUP"]);
}

#[test]
fn finish_gets_s6_arguments_and_delays_the_restart() {
    let s = Scratch::new();
    let d = s.service("s", "echo $$ >>pids\nexec sleep 600");
    harness::write_script(
        &d.join("finish"),
        "echo \"$@\" >>finish.args\nwhile [ ! -e release ]; do sleep 0.02; done\nrm -f release",
    );
    let r = ours(&s, &d);
    let pid = wait_new_pid(&d, &r, 0);
    wait_pid_recorded(&d, pid);
    send(&d, b"k");
    wait_until(
        DEADLINE,
        || format!("{:?}", ext(&d)),
        || phase(&d) == Some(Phase::Finishing),
    );
    // Killed by a signal: s6's 256 and the signal number, then the service name.
    wait_until(
        DEADLINE,
        || format!("{:?}", lines(&d.join("finish.args"))),
        || !lines(&d.join("finish.args")).is_empty(),
    );
    assert_eq!(lines(&d.join("finish.args")), vec!["256 9 s"]);
    let e = ext(&d).unwrap();
    assert!(e.finish_pid != 0 && pid_alive(e.finish_pid));
    // No restart while finish runs; status says down (pid 0).
    assert_eq!(status_pid(&d), 0);
    assert_eq!(lines(&d.join("pids")).len(), 1);
    fs::write(d.join("release"), "").unwrap();
    let pid2 = wait_new_pid(&d, &r, pid);
    // pid2 runs the old script (it recorded itself) before run is replaced, atomically,
    // by one that exits 3: a normal exit gives the code and 0.
    wait_pid_recorded(&d, pid2);
    harness::write_script(&d.join("run.new"), "echo $$ >>exits\nexit 3");
    fs::rename(d.join("run.new"), d.join("run")).unwrap();
    send(&d, b"t");
    wait_until(
        DEADLINE,
        || format!("{:?}", lines(&d.join("finish.args"))),
        || lines(&d.join("finish.args")).len() >= 2,
    );
    assert_eq!(lines(&d.join("finish.args"))[1], "256 15 s");
    fs::write(d.join("release"), "").unwrap();
    wait_until(
        DEADLINE,
        || format!("{:?}", lines(&d.join("finish.args"))),
        || lines(&d.join("finish.args")).len() >= 3,
    );
    assert_eq!(lines(&d.join("finish.args"))[2], "3 0 s");
    fs::write(d.join("release"), "").unwrap();
    send(&d, b"d");
    let _ = pid2;
}

#[test]
fn finish_exit_125_stops_the_service() {
    let s = Scratch::new();
    let d = s.service("s", "echo $$ >>pids\nexit 1");
    harness::write_script(&d.join("finish"), "exit 125");
    let r = ours(&s, &d);
    wait_until(
        DEADLINE,
        || format!("{:?} {}", ext(&d), describe(&d, &r)),
        || phase(&d) == Some(Phase::Failed),
    );
    assert_eq!(want(&d), b'd');
    assert_eq!(status_pid(&d), 0);
    holds_for(Duration::from_millis(1500), "no restart after 125", || {
        lines(&d.join("pids")).len() == 1
    });
}

#[test]
fn timeout_finish_kills_a_hanging_finish() {
    let s = Scratch::new();
    let d = s.service("s", "echo $$ >>pids\nexec sleep 600");
    harness::write_script(&d.join("finish"), "echo $$ >finish.pid\nexec sleep 600");
    fs::write(d.join("timeout-finish"), "300").unwrap();
    let r = ours(&s, &d);
    let pid = wait_new_pid(&d, &r, 0);
    send(&d, b"t");
    // finish would sleep for 600 s, and nothing restarts while it runs: the new run
    // proves it was killed.
    let pid2 = wait_new_pid(&d, &r, pid);
    // Under heavy load finish may be killed before it wrote its pid.
    if let Ok(text) = fs::read_to_string(d.join("finish.pid")) {
        if let Ok(fpid) = text.trim().parse::<u32>() {
            wait_until(
                DEADLINE,
                || format!("finish {fpid} gone"),
                || !pid_alive(fpid),
            );
        }
    }
    assert!(pid_alive(pid2));
}

#[test]
fn notification_fd_readiness_is_published() {
    let s = Scratch::new();
    let d = s.service(
        "s",
        "while [ ! -e go ]; do sleep 0.02; done\necho >&3\nexec sleep 600",
    );
    fs::write(d.join("notification-fd"), "3\n").unwrap();
    let r = ours(&s, &d);
    let pid = wait_new_pid(&d, &r, 0);
    wait_until(
        DEADLINE,
        || format!("{:?}", ext(&d)),
        || phase(&d) == Some(Phase::Starting),
    );
    assert!(!ext(&d).unwrap().ready);
    fs::write(d.join("go"), "").unwrap();
    wait_until(
        DEADLINE,
        || format!("{:?}", ext(&d)),
        || phase(&d) == Some(Phase::Ready),
    );
    let e = ext(&d).unwrap();
    assert!(e.ready && e.ready_stamp.is_some());
    assert_eq!(e.pid, pid);
    // Debian's svstat still reads our status.
    let mut c = harness::cmd(oracle("svstat"));
    c.arg(&d);
    let line = harness::normalize(&harness::stdout(&harness::run(c)));
    assert!(line.ends_with(": up (pid PID) S seconds\n"), "{line}");
}

#[test]
fn event_fifodir_gets_one_byte_per_event() {
    use std::io::Read;
    let s = Scratch::new();
    let d = s.service("s", SLEEPER);
    let r = ours(&s, &d);
    let pid = wait_new_pid(&d, &r, 0);
    let ev = d.join("event");
    assert!(ev.is_dir());
    assert_eq!(
        fs::metadata(&ev).unwrap().permissions().mode() & 0o7777,
        0o3730
    );
    // A listener: FIFO under a dot name, opened, then renamed into place (s6's ftrig).
    let tmp = ev.join(".ftrig1:test");
    nix::unistd::mkfifo(&tmp, nix::sys::stat::Mode::from_bits_truncate(0o622)).unwrap();
    let mut rd = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&tmp)
        .unwrap();
    fs::rename(&tmp, ev.join("ftrig1:test")).unwrap();
    // A stale FIFO with no reader is removed at the next event.
    nix::unistd::mkfifo(
        &ev.join("ftrig1:stale"),
        nix::sys::stat::Mode::from_bits_truncate(0o622),
    )
    .unwrap();
    // Anything that is not a FIFO is left alone.
    fs::write(ev.join("not-a-fifo"), "").unwrap();
    send(&d, b"t");
    wait_new_pid(&d, &r, pid);
    let mut got = Vec::new();
    wait_until(
        DEADLINE,
        || "the bytes d D u on the event FIFO".to_string(),
        || {
            let mut b = [0u8; 16];
            if let Ok(n) = rd.read(&mut b) {
                got.extend_from_slice(&b[..n]);
            }
            got.ends_with(b"u")
        },
    );
    assert_eq!(got, b"dDu");
    assert!(!ev.join("ftrig1:stale").exists());
    assert_eq!(fs::read(ev.join("not-a-fifo")).unwrap(), b"");
}

#[test]
fn backoff_grows_to_its_cap_and_says_failing() {
    let s = Scratch::new();
    let d = s.service("s", "exit 1");
    fs::write(
        d.join("service.toml"),
        "[backoff]\ninitial = 1000\nmax = 2000\nfactor = 2\nreset-after = 60000\n",
    )
    .unwrap();
    let r = ours(&s, &d);
    let mut seen = Vec::new();
    wait_until(
        Duration::from_secs(20),
        || format!("state failing: {:?}", ext(&d)),
        || {
            if let Some(e) = ext(&d) {
                if matches!(e.phase, Phase::Backoff | Phase::Failing)
                    && seen.last() != Some(&(e.backoff_ms, e.phase))
                {
                    seen.push((e.backoff_ms, e.phase));
                }
                e.phase == Phase::Failing
            } else {
                false
            }
        },
    );
    assert!(seen.contains(&(1000, Phase::Backoff)), "{seen:?}");
    assert_eq!(seen.last(), Some(&(2000, Phase::Failing)));
    let e = ext(&d).unwrap();
    assert!(e.next_start.is_some());
    // Honest status meanwhile: pid 0, want up; still controllable.
    assert_eq!(status_pid(&d), 0);
    assert_eq!(want(&d), b'u');
    send(&d, b"d");
    wait_until(
        DEADLINE,
        || describe(&d, &r),
        || phase(&d) == Some(Phase::Down),
    );
}

#[test]
fn no_restart_exit_code_stops_the_service() {
    let s = Scratch::new();
    let d = s.service("s", "echo $$ >>pids\nexit 100");
    fs::write(d.join("service.toml"), "no-restart-exit-codes = [100]\n").unwrap();
    let r = ours(&s, &d);
    wait_until(
        DEADLINE,
        || format!("{:?} {}", ext(&d), describe(&d, &r)),
        || phase(&d) == Some(Phase::Failed),
    );
    assert_eq!(want(&d), b'd');
    assert_eq!(ext(&d).unwrap().last_exit, Some(100 << 8));
}

#[test]
fn invalid_service_toml_warns_and_never_takes_the_service_down() {
    let s = Scratch::new();
    let d = s.service("s", SLEEPER);
    fs::write(d.join("service.toml"), "timeout-kill = \"soon\"\n").unwrap();
    let mut c = harness::cmd(bin("supervise"));
    c.current_dir(s.path()).arg("s");
    let r = Running::spawn(c, s.path(), "sup");
    let pid = wait_new_pid(&d, &r, 0);
    assert!(
        r.stderr().starts_with(
            "supervise: warning: s/service.toml: line 1: timeout-kill: invalid type: string \"soon\", expected u64; using the defaults\n"
        ),
        "{}",
        r.stderr()
    );
    // A good file, then a bad edit: the restart keeps the last good settings.
    fs::write(d.join("service.toml"), "down-signal = \"HUP\"\n").unwrap();
    send(&d, b"t");
    let pid2 = wait_new_pid(&d, &r, pid);
    fs::write(d.join("service.toml"), "down-signl = \"INT\"\n").unwrap();
    send(&d, b"t");
    let pid3 = wait_new_pid(&d, &r, pid2);
    assert!(
        r.stderr()
            .contains("s/service.toml: line 1: unknown field `down-signl`"),
        "{}",
        r.stderr()
    );
    assert!(r.stderr().contains("keeping the last good settings"));
    assert!(pid_alive(pid3));
}

#[test]
fn process_group_kill_reaches_grandchildren() {
    let s = Scratch::new();
    let d = s.service("s", "sleep 600 &\necho $! >grandchild\nexec sleep 600");
    fs::write(d.join("service.toml"), "process-group = true\n").unwrap();
    let r = ours(&s, &d);
    let pid = wait_new_pid(&d, &r, 0);
    wait_until(
        DEADLINE,
        || describe(&d, &r),
        || fs::read_to_string(d.join("grandchild")).is_ok_and(|s| s.ends_with('\n')),
    );
    let gc: u32 = fs::read_to_string(d.join("grandchild"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // run leads its own group.
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(fields[2], pid.to_string());
    send(&d, b"d");
    wait_down(&d, &r);
    wait_until(
        DEADLINE,
        || format!("grandchild {gc} still alive"),
        || !pid_alive(gc),
    );
}

#[test]
fn readiness_check_is_polled_until_it_succeeds() {
    let s = Scratch::new();
    let d = s.service("s", SLEEPER);
    fs::write(
        d.join("service.toml"),
        "[readiness]\ncheck = \"echo try >>checks; test -e go\"\ncheck-interval = 50\n",
    )
    .unwrap();
    let r = ours(&s, &d);
    let pid = wait_new_pid(&d, &r, 0);
    // Starting while the check fails, and it is tried more than once.
    wait_until(
        DEADLINE,
        || format!("{:?} checks {:?}", ext(&d), lines(&d.join("checks"))),
        || phase(&d) == Some(Phase::Starting) && lines(&d.join("checks")).len() >= 2,
    );
    fs::write(d.join("go"), "").unwrap();
    wait_until(
        DEADLINE,
        || format!("{:?} {}", ext(&d), describe(&d, &r)),
        || phase(&d) == Some(Phase::Ready),
    );
    let e = ext(&d).unwrap();
    assert!(e.ready && e.ready_stamp.is_some());
    assert_eq!(e.pid, pid);
    // Once ready, no more checks.
    let n = lines(&d.join("checks")).len();
    holds_for(Duration::from_millis(300), "no checks after ready", || {
        lines(&d.join("checks")).len() == n
    });
    assert_eq!(status_bytes(&d).len(), 18);
}

#[test]
fn health_command_failures_restart_the_service() {
    let s = Scratch::new();
    let d = s.service("s", SLEEPER);
    fs::write(
        d.join("service.toml"),
        "[health]\ncommand = \"echo probe >>probes; echo noise; test ! -e sick\"\ninterval = 50\nfailures = 2\ngrace = 0\n",
    )
    .unwrap();
    let r = ours(&s, &d);
    let pid = wait_new_pid(&d, &r, 0);
    wait_until(
        DEADLINE,
        || format!("{:?}", ext(&d)),
        || ext(&d).is_some_and(|e| e.health == Some(true) && e.pid == pid),
    );
    fs::write(d.join("sick"), "").unwrap();
    let pid2 = wait_new_pid(&d, &r, pid);
    // Restarted by the probe: want still up, the death recorded as TERM.
    fs::remove_file(d.join("sick")).unwrap();
    assert_eq!(want(&d), b'u');
    wait_until(
        DEADLINE,
        || format!("{:?}", ext(&d)),
        || {
            ext(&d)
                .is_some_and(|e| e.health_restarts >= 1 && e.pid == pid2 && e.health == Some(true))
        },
    );
    let h = deaths(&d);
    assert_eq!(h[0].pid, pid);
    assert_eq!(h[0].wstatus, libc::SIGTERM);
    // A probe's stdout does not end up in the service's log (supervise's stdout).
    let out = fs::read_to_string(&r.stdout_path).unwrap();
    assert!(!out.contains("noise"), "{out}");
}

#[test]
fn health_url_runs_svprobe_from_path() {
    let s = Scratch::new();
    // A stand-in svprobe first on PATH: records its arguments, fails while `sick` exists.
    let fake = s.path().join("fakebin");
    fs::create_dir(&fake).unwrap();
    let rec = s.path().join("svprobe.args");
    let sick = s.path().join("sick");
    harness::write_script(
        &fake.join("svprobe"),
        &format!(
            "echo \"$@\" >>{}\nif [ -e {} ]; then echo 'HTTP 500 from 127.0.0.1:9' >&2; exit 1; fi",
            rec.display(),
            sick.display()
        ),
    );
    let d = s.service("s", SLEEPER);
    fs::write(
        d.join("service.toml"),
        "[health]\nurl = \"http://127.0.0.1:9/SYSTEM/dbtest.tcl\"\nexpect = \"success\"\n\
         interval = 50\ntimeout = 2000\nfailures = 1\ngrace = 0\n",
    )
    .unwrap();
    let mut c = harness::ours("supervise");
    c.env(
        "PATH",
        format!("{}:{}", fake.display(), harness::path_env()),
    )
    .arg(&d);
    let r = Running::spawn(c, s.path(), "supervise");
    let pid = wait_new_pid(&d, &r, 0);
    wait_until(
        DEADLINE,
        || format!("{:?} {}", ext(&d), r.stderr()),
        || ext(&d).is_some_and(|e| e.health == Some(true)),
    );
    assert_eq!(
        lines(&rec)[0],
        "-t 2000 http://127.0.0.1:9/SYSTEM/dbtest.tcl success"
    );
    assert_eq!(ext(&d).unwrap().health_message, None);
    fs::write(&sick, "").unwrap();
    // The probe's one-line reason is published and said on stderr.
    wait_until(
        DEADLINE,
        || format!("{:?}", ext(&d)),
        || {
            ext(&d)
                .is_some_and(|e| e.health_message.as_deref() == Some("HTTP 500 from 127.0.0.1:9"))
        },
    );
    wait_new_pid(&d, &r, pid);
    let warning = format!(
        "supervise: warning: health probe of {} failed: HTTP 500 from 127.0.0.1:9\n",
        d.display()
    );
    assert!(r.stderr().contains(&warning), "{}", r.stderr());
    fs::remove_file(&sick).unwrap();
    wait_until(
        DEADLINE,
        || format!("{:?}", ext(&d)),
        || {
            ext(&d).is_some_and(|e| {
                e.health_restarts >= 1 && e.health == Some(true) && e.health_message.is_none()
            })
        },
    );
}

/// A run script fragment that sends `MSG` (with `\n` escapes) to `$NOTIFY_SOCKET`, the
/// way sd_notify(3) does, with perl (always on Debian: perl-base). `$ENV{MAIN}` in MSG
/// is the shell's pid.
fn sd_notify(msg: &str) -> String {
    format!(
        "MAIN=$$ perl -e 'use Socket; socket(my $s, PF_UNIX, SOCK_DGRAM, 0) or die \"socket: $!\"; \
         send($s, \"{msg}\", 0, pack_sockaddr_un($ENV{{NOTIFY_SOCKET}})) or die \"send: $!\"'\n"
    )
}

#[test]
fn notify_socket_readiness_status_and_mainpid_are_published() {
    let s = Scratch::new();
    let script = format!(
        "echo \"$NOTIFY_SOCKET\" >sockpath\nwhile [ ! -e go ]; do sleep 0.02; done\n{}exec sleep 600",
        sd_notify("STATUS=serving 3 sites\\nREADY=1\\nMAINPID=$ENV{MAIN}\\n")
    );
    let d = s.service("s", &script);
    fs::write(
        d.join("service.toml"),
        "[readiness]\nnotify-socket = true\n",
    )
    .unwrap();
    let r = ours(&s, &d);
    let pid = wait_new_pid(&d, &r, 0);
    wait_until(
        DEADLINE,
        || format!("{:?} {}", ext(&d), r.stderr()),
        || phase(&d) == Some(Phase::Starting) && d.join("sockpath").exists(),
    );
    let sock = d.join("supervise/notify");
    wait_until(
        DEADLINE,
        || format!("sockpath {:?}", lines(&d.join("sockpath"))),
        || lines(&d.join("sockpath")) == vec![sock.display().to_string()],
    );
    use std::os::unix::fs::FileTypeExt;
    assert!(fs::symlink_metadata(&sock).unwrap().file_type().is_socket());
    fs::write(d.join("go"), "").unwrap();
    wait_until(
        DEADLINE,
        || format!("{:?} {}", ext(&d), r.stderr()),
        || phase(&d) == Some(Phase::Ready),
    );
    let e = ext(&d).unwrap();
    assert!(e.ready && e.ready_stamp.is_some());
    assert_eq!(e.pid, pid);
    assert_eq!(e.status_text.as_deref(), Some("serving 3 sites"));
    assert_eq!(
        e.main_pid, pid,
        "MAINPID is the shell's $$, which exec'd sleep"
    );
    assert_eq!(status_bytes(&d).len(), 18);
    // x removes the socket file.
    send(&d, b"dx");
    let mut r = r;
    assert_eq!(r.wait_exit(DEADLINE).code(), Some(0));
    assert!(!sock.exists());
}

#[test]
fn cgroup_kills_an_escaped_grandchild_on_stop() {
    let s = Scratch::new();
    // The grandchild leaves run's session and process group: only a cgroup catches it.
    let d = s.service(
        "s",
        "setsid sleep 600 &\necho $! >grandchild.new\nmv grandchild.new grandchild\nexec sleep 600",
    );
    fs::write(d.join("service.toml"), "cgroup = true\n").unwrap();
    let mut r = ours(&s, &d);
    let pid = wait_new_pid(&d, &r, 0);
    wait_until(
        DEADLINE,
        || describe(&d, &r),
        || d.join("grandchild").exists(),
    );
    let gc: u32 = fs::read_to_string(d.join("grandchild"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    match svcore::cgroup::probe() {
        Ok(_) => {
            let cg = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
            assert!(cg.contains("/svtools-"), "run is in its cgroup: {cg}");
            send(&d, b"d");
            wait_down(&d, &r);
            wait_until(
                DEADLINE,
                || format!("grandchild {gc} killed with the cgroup"),
                || !pid_alive(gc),
            );
        }
        Err(why) => {
            // No usable cgroup2 here: supervise says so once and runs the service anyway.
            eprintln!("cgroup v2 not usable on this host ({why}); checking the fallback");
            wait_until(
                DEADLINE,
                || r.stderr(),
                || r.stderr().contains("unable to create a cgroup for"),
            );
            assert!(pid_alive(pid));
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(gc as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
    send(&d, b"dx");
    assert_eq!(r.wait_exit(DEADLINE).code(), Some(0));
    // The cgroup is removed at exit, even straight after the kill of `dx`.
    let root = svcore::cgroup::probe().ok();
    let left: Vec<String> = root
        .iter()
        .filter_map(|r| fs::read_dir(r).ok())
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(&s.path().file_name().unwrap().to_string_lossy().to_string()))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn backoff_resets_after_a_healthy_uptime() {
    let s = Scratch::new();
    let d = s.service(
        "s",
        "if [ -e crash ]; then exit 1; fi\necho $$ >>pids\nexec sleep 600",
    );
    fs::write(d.join("crash"), "").unwrap();
    fs::write(
        d.join("service.toml"),
        "[backoff]\ninitial = 200\nmax = 1600\nfactor = 2\nreset-after = 500\n",
    )
    .unwrap();
    let r = ours(&s, &d);
    wait_until(
        Duration::from_secs(20),
        || format!("backoff grows: {:?}", ext(&d)),
        || ext(&d).is_some_and(|e| e.backoff_ms >= 800),
    );
    fs::remove_file(d.join("crash")).unwrap();
    let pid = wait_new_pid(&d, &r, 0);
    wait_pid_recorded(&d, pid);
    // Stay up past reset-after (this wait is the feature's own duration, not a sync).
    holds_for(Duration::from_millis(800), "the run stays up", || {
        status_pid(&d) == pid
    });
    let deaths_before = ext(&d).unwrap().deaths;
    send(&d, b"k");
    wait_until(
        DEADLINE,
        || format!("a reset delay: {:?}", ext(&d)),
        || ext(&d).is_some_and(|e| e.deaths > deaths_before && e.backoff_ms == 200),
    );
    wait_new_pid(&d, &r, pid);
}

/// A fork failure (RLIMIT_NPROC reached) gives 0.76's warning, keeps supervise serving
/// and the status truthful; `u` tries again at once (not after 60 s); `x` still exits.
#[test]
fn fork_failure_warns_keeps_serving_and_u_retries() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    // A uid of its own (no passwd entry needed), so that no other process counts
    // against its limit of one process: supervise itself.
    let uid = 47_000 + std::process::id() % 10_000;
    let s = Scratch::new();
    fs::set_permissions(s.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let d = s.service("s", SLEEPER);
    fs::write(d.join("down"), "").unwrap();
    for p in [d.clone(), d.join("run"), d.join("down")] {
        std::os::unix::fs::chown(&p, Some(uid), Some(uid)).unwrap();
    }
    let mut c = harness::ours("supervise");
    c.arg(&d).uid(uid).gid(uid);
    // SAFETY: setrlimit is async-signal-safe; it runs in the child after the uid change
    // (lowering a limit needs no privilege).
    unsafe {
        c.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 1,
                rlim_max: 1,
            };
            if libc::setrlimit(libc::RLIMIT_NPROC, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut r = Running::spawn(c, s.path(), "supervise");
    wait_until(
        DEADLINE,
        || describe(&d, &r),
        || is_supervised(&d) && status_bytes(&d).len() == 18,
    );
    send(&d, b"u");
    let msg = format!(
        "supervise: warning: unable to fork for {}, sleeping 60 seconds: temporary failure",
        d.display()
    );
    let count = |r: &Running| r.stderr().lines().filter(|l| *l == msg).count();
    wait_until(DEADLINE, || r.stderr(), || count(&r) >= 1);
    // Truthful and alive meanwhile.
    assert_eq!(status_pid(&d), 0);
    assert_eq!(want(&d), b'u');
    assert!(is_supervised(&d));
    // u tries again now (0.76 would sleep 60 s first).
    send(&d, b"u");
    wait_until(DEADLINE, || r.stderr(), || count(&r) >= 2);
    // Still controllable: d cancels the retry, x exits.
    send(&d, b"dx");
    assert_eq!(r.wait_exit(DEADLINE).code(), Some(0));
    assert_eq!(want(&d), b'd');
    assert_eq!(status_pid(&d), 0);
}

/// Waits until every path's mtime and ctime are more than 3 s in the past, so that
/// supervise trusts its remembered stamps (settings and `event/` are only re-read when
/// they change, and a stamp in the current second could hide a second edit).
fn wait_settled(paths: &[&Path]) {
    use std::os::unix::fs::MetadataExt;
    wait_until(
        Duration::from_secs(30),
        || format!("stamps of {paths:?} older than 3 s"),
        || {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs() as i64;
            paths.iter().all(|p| {
                let m = fs::metadata(p).unwrap();
                m.mtime().max(m.ctime()) < now - 3
            })
        },
    );
}

/// Settings are not re-read before every start any more, only when the service dir or
/// a settings file changed: a file renamed into place and a same-size edit in place
/// (same inode) must both still take effect at the next start.
#[test]
fn settings_created_or_edited_in_place_apply_at_the_next_start() {
    let s = Scratch::new();
    let d = s.service(
        "s",
        // The pid is recorded after the traps are set, so a signal sent once the pid
        // is seen always finds them.
        "trap 'echo usr1 >>got; exit 0' USR1\n\
         trap 'echo usr2 >>got; exit 0' USR2\n\
         echo $$ >>pids\n\
         while :; do sleep 0.1; done",
    );
    let r = ours(&s, &d);
    let p1 = wait_new_pid(&d, &r, 0);
    wait_pid_recorded(&d, p1);
    wait_settled(&[&d]);
    // This start reloads and remembers stamps that are old enough to be trusted.
    send(&d, b"t");
    let p2 = wait_new_pid(&d, &r, p1);
    wait_pid_recorded(&d, p2);
    // A new file, renamed into place: the dir's mtime changes.
    fs::write(d.join(".down-signal.tmp"), "USR1\n").unwrap();
    fs::rename(d.join(".down-signal.tmp"), d.join("down-signal")).unwrap();
    send(&d, b"t");
    let p3 = wait_new_pid(&d, &r, p2);
    wait_pid_recorded(&d, p3);
    send(&d, b"d");
    wait_down(&d, &r);
    wait_until(
        DEADLINE,
        || format!("usr1 in got: {:?}", lines(&d.join("got"))),
        || lines(&d.join("got")) == ["usr1"],
    );
    // Trusted stamps again, then an edit in place of the same size.
    wait_settled(&[&d, &d.join("down-signal")]);
    send(&d, b"u");
    let p4 = wait_new_pid(&d, &r, p3);
    wait_pid_recorded(&d, p4);
    let ino = {
        use std::os::unix::fs::MetadataExt;
        fs::metadata(d.join("down-signal")).unwrap().ino()
    };
    fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(d.join("down-signal"))
        .unwrap()
        .write_all(b"USR2\n")
        .unwrap();
    {
        use std::os::unix::fs::MetadataExt;
        assert_eq!(fs::metadata(d.join("down-signal")).unwrap().ino(), ino);
    }
    send(&d, b"t");
    let p5 = wait_new_pid(&d, &r, p4);
    wait_pid_recorded(&d, p5);
    send(&d, b"d");
    wait_down(&d, &r);
    wait_until(
        DEADLINE,
        || format!("usr1 usr2 in got: {:?}", lines(&d.join("got"))),
        || lines(&d.join("got")) == ["usr1", "usr2"],
    );
}

/// `event/` is not scanned while it is unchanged since a scan found no listener; a
/// listener that arrives later (FIFO made under a dot name, then renamed) still gets
/// every byte of the next events.
#[test]
fn event_listener_arriving_after_an_idle_scan_gets_the_bytes() {
    use std::io::Read;
    let s = Scratch::new();
    let d = s.service("s", SLEEPER);
    let r = ours(&s, &d);
    let p1 = wait_new_pid(&d, &r, 0);
    let ev = d.join("event");
    wait_settled(&[&ev]);
    // A restart with nobody listening: the scan finds nothing and remembers that.
    send(&d, b"t");
    let p2 = wait_new_pid(&d, &r, p1);
    wait_until(
        DEADLINE,
        || format!("starts 2 in status.ext: {:?}", ext(&d)),
        || ext(&d).is_some_and(|e| e.starts == 2),
    );
    let tmp = ev.join(".ftrig1:late");
    nix::unistd::mkfifo(&tmp, nix::sys::stat::Mode::from_bits_truncate(0o622)).unwrap();
    let mut rd = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&tmp)
        .unwrap();
    fs::rename(&tmp, ev.join("ftrig1:late")).unwrap();
    send(&d, b"t");
    wait_new_pid(&d, &r, p2);
    let mut got = Vec::new();
    wait_until(
        DEADLINE,
        || "the bytes d D u on the late listener's FIFO".to_string(),
        || {
            let mut b = [0u8; 16];
            if let Ok(n) = rd.read(&mut b) {
                got.extend_from_slice(&b[..n]);
            }
            got.ends_with(b"u")
        },
    );
    // If the listener was in place just before the first restart's bytes went out, it
    // got those too: whole "dDu" groups either way.
    assert!(
        !got.is_empty() && got.len() % 3 == 0 && got.chunks(3).all(|c| c == b"dDu"),
        "{got:?}"
    );
}

/// Whether `./finish` exists is remembered with the settings' stamps; a finish created
/// later (renamed into place) still runs after the next death.
#[test]
fn finish_created_after_the_stamps_are_trusted_runs() {
    let s = Scratch::new();
    let d = s.service("s", SLEEPER);
    let r = ours(&s, &d);
    let p1 = wait_new_pid(&d, &r, 0);
    wait_settled(&[&d]);
    // This restart remembers "no finish" with trusted stamps.
    send(&d, b"t");
    let p2 = wait_new_pid(&d, &r, p1);
    let tmp = d.join(".finish.tmp");
    fs::write(&tmp, "#!/bin/sh\necho \"$1 $2\" >>finished\n").unwrap();
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o755)).unwrap();
    fs::rename(&tmp, d.join("finish")).unwrap();
    send(&d, b"t");
    wait_new_pid(&d, &r, p2);
    wait_until(
        DEADLINE,
        || format!("finish ran: {:?}", lines(&d.join("finished"))),
        || lines(&d.join("finished")) == ["256 15"],
    );
}

/// Stamp of the status file (its first 12 bytes); empty when short or missing.
fn stamp(dir: &Path) -> Vec<u8> {
    let b = status_bytes(dir);
    if b.len() == 18 {
        b[..12].to_vec()
    } else {
        Vec::new()
    }
}

/// supervise skips Rust's runtime start-up (`#![no_main]`, for its idle memory); the part
/// of it that matters is done by hand: closed fds 0-2 are opened on /dev/null before any
/// file is, so the lock, control and status never land on them, and the child sees them
/// open, as it did before.
#[test]
fn closed_stdio_is_reopened_on_dev_null() {
    use std::os::unix::process::CommandExt;
    let s = Scratch::new();
    let d = s.service(
        "closed",
        "#!/bin/sh\nx=$(readlink /proc/$$/fd/0 /proc/$$/fd/1 /proc/$$/fd/2)\necho \"$x\" > fds\necho to-stderr >&2\nexec sleep 600\n",
    );
    let mut c = harness::cmd(bin("supervise"));
    c.arg(&d);
    // SAFETY: close(2) only, between fork and exec.
    unsafe {
        c.pre_exec(|| {
            for fd in 0..3 {
                libc::close(fd);
            }
            Ok(())
        });
    }
    let mut r = Running::spawn_raw(c);
    wait_until(
        DEADLINE,
        || format!("fds of run: {:?}", fs::read_to_string(d.join("fds"))),
        || fs::read_to_string(d.join("fds")).is_ok_and(|t| t.lines().count() == 3),
    );
    assert_eq!(
        fs::read_to_string(d.join("fds")).unwrap(),
        "/dev/null\n/dev/null\n/dev/null\n"
    );
    assert!(r.try_wait().is_none(), "supervise exited");
    assert!(is_supervised(&d));
    // Nothing was written into the files that would have taken fds 0-2.
    assert_eq!(fs::metadata(d.join("supervise/lock")).unwrap().len(), 0);
    assert_eq!(status_bytes(&d).len(), 18);
    let pid = status_pid(&d);
    assert!(pid != 0 && pid_alive(pid));
}

/// A warning written to a stderr pipe that nobody reads any more (readproctitle gone)
/// fails with EPIPE; it must not kill supervise (SIGPIPE stays ignored, as under Rust's
/// runtime start-up, which supervise skips).
#[test]
fn warnings_to_a_dead_stderr_pipe_do_not_kill_supervise() {
    let s = Scratch::new();
    let d = s.join("p");
    fs::create_dir(&d).unwrap();
    // Not executable: every start fails and supervise itself writes the reason to fd 2.
    fs::write(d.join("run"), "#!/bin/sh\nexec sleep 600\n").unwrap();
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut c = harness::cmd(bin("supervise"));
    c.arg(&d)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(writer);
    let mut r = Running::spawn_raw(c);
    // Each failed start rewrites status (new pid, then pid 0) and writes a warning: three
    // distinct stamps mean at least two warnings went to the dead pipe.
    let seen: std::cell::RefCell<Vec<Vec<u8>>> = Default::default();
    wait_until(
        DEADLINE,
        || format!("3 distinct status stamps, seen {}", seen.borrow().len()),
        || {
            let st = stamp(&d);
            let mut seen = seen.borrow_mut();
            if !st.is_empty() && !seen.contains(&st) {
                seen.push(st);
            }
            seen.len() >= 3
        },
    );
    assert!(
        r.try_wait().is_none(),
        "supervise died writing to a dead pipe"
    );
    assert!(is_supervised(&d));
    // Fixing run makes the next retry start it.
    fs::set_permissions(d.join("run"), fs::Permissions::from_mode(0o755)).unwrap();
    wait_until(
        DEADLINE,
        || format!("status {:02x?}", status_bytes(&d)),
        || {
            let p = status_pid(&d);
            p != 0 && pid_alive(p)
        },
    );
}
