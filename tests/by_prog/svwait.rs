//! Tests for svwait and `svc --wait` (REFERENCE.md §11.3, §12.5, §12.6): real supervisors
//! (ours, Debian's 0.76, s6-supervise, runsv), real services, timeouts that fire, exit
//! codes and messages, and no wakeups while waiting on our supervise's event fifodir.
#![allow(clippy::unwrap_used)]

use crate::harness::{self, Running, Scratch, oracle, wait_until};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

/// Runs one of ours in `cwd`.
fn ours_in(prog: &str, cwd: &Path, args: &[&str]) -> Output {
    let mut c = harness::ours(prog);
    c.current_dir(cwd).args(args);
    harness::run_with_deadline(&mut c, Duration::from_secs(30))
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap()
}

/// Starts a waiter in the background (killed on drop of the returned guard's child).
struct Bg(Child);

impl Bg {
    fn spawn(prog: &str, cwd: &Path, args: &[&str]) -> Bg {
        let mut c = harness::ours(prog);
        c.current_dir(cwd)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        Bg(c.spawn().unwrap())
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }

    fn finished(&mut self) -> bool {
        self.0.try_wait().unwrap().is_some()
    }

    /// Waits for its exit; (code, stderr).
    fn join(mut self) -> (i32, String) {
        wait_until(
            harness::DEADLINE,
            || "the waiter to exit".to_string(),
            || self.finished(),
        );
        let c = std::mem::replace(&mut self.0, Command::new("true").spawn().unwrap());
        let o = c.wait_with_output().unwrap();
        (o.status.code().unwrap(), harness::stderr(&o))
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts our supervise on `s/name`, waits until it runs the service.
fn ours_up(s: &Scratch, name: &str, body: &str) -> (PathBuf, Running) {
    let dir = s.service(name, body);
    let r = harness::start_supervise(&harness::bin("supervise"), &dir, s.path(), name);
    wait_until(
        harness::DEADLINE,
        || format!("{name} up"),
        || harness::status_pid(&dir) != 0 && dir.join("supervise/status.ext").exists(),
    );
    (dir, r)
}

#[test]
fn usage_errors_are_100() {
    let s = Scratch::new();
    let usage =
        "svwait: usage: svwait [ -u | -U | -d | -D | -x ] [ -a | -o ] [ -t secs ] dir ...\n";
    let o = ours_in("svwait", s.path(), &[]);
    assert_eq!((code(&o), harness::stderr(&o)), (100, usage.to_string()));
    let o = ours_in("svwait", s.path(), &["-t", "soon", "x"]);
    assert_eq!((code(&o), harness::stderr(&o)), (100, usage.to_string()));
    let o = ours_in("svwait", s.path(), &["-z", "x"]);
    assert_eq!(
        (code(&o), harness::stderr(&o)),
        (100, format!("svwait: illegal option -- z\n{usage}"))
    );
    let o = ours_in("svc", s.path(), &["--wait=x", "-u", "x"]);
    assert_eq!(
        (code(&o), harness::stderr(&o)),
        (
            100,
            "svc: usage: svc [ --wait[=secs] ] -opts dir ...\n".to_string()
        )
    );
}

#[test]
fn not_supervised_is_111() {
    let s = Scratch::new();
    fs::create_dir(s.join("plain")).unwrap();
    let o = ours_in("svwait", s.path(), &["-u", "plain"]);
    assert_eq!(code(&o), 111);
    assert_eq!(
        harness::stderr(&o),
        "svwait: fatal: unable to wait for plain: unable to open supervise/ok: file does not exist\n"
    );
    let o = ours_in("svwait", s.path(), &["-u", "nonexist"]);
    assert_eq!(code(&o), 111);
    // -x is "the supervisor is gone": done at once when there is none.
    let o = ours_in("svwait", s.path(), &["-x", "plain"]);
    assert_eq!(code(&o), 111, "no supervise/ok at all is not 'gone'");
    // svc --wait on a DIR it cannot control: the usual warning, then 111.
    let o = ours_in("svc", s.path(), &["--wait=1", "-u", "plain"]);
    assert_eq!(code(&o), 111);
    assert_eq!(
        harness::stderr(&o),
        "svc: warning: unable to control plain: file does not exist\n"
    );
}

#[test]
fn up_down_and_timeouts_with_our_supervise() {
    let s = Scratch::new();
    let (dir, _sup) = ours_up(&s, "svc", "exec sleep 600");
    let o = ours_in("svwait", s.path(), &["-u", "-t", "5", "svc"]);
    assert_eq!(code(&o), 0, "{}", harness::stderr(&o));
    let o = ours_in("svwait", s.path(), &["-U", "-t", "5", "svc"]);
    assert_eq!(code(&o), 0, "no readiness configured: up is ready");
    // The timeout fires: it stays up.
    let o = ours_in("svwait", s.path(), &["-d", "-t", "0.3", "svc"]);
    assert_eq!(code(&o), 99);
    assert_eq!(
        harness::stderr(&o),
        "svwait: fatal: timed out waiting for svc\n"
    );
    // A waiter for "down" returns when another client takes it down.
    let w = Bg::spawn("svwait", s.path(), &["-D", "-t", "20", "svc"]);
    let o = ours_in("svc", s.path(), &["-d", "svc"]);
    assert_eq!(code(&o), 0);
    assert_eq!(w.join(), (0, String::new()));
    assert_eq!(harness::status_pid(&dir), 0);
    // svc --wait -u returns once it runs again (after the 1-second floor).
    let o = ours_in("svc", s.path(), &["--wait=20", "-u", "svc"]);
    assert_eq!((code(&o), harness::stderr(&o)), (0, String::new()));
    assert_ne!(harness::status_pid(&dir), 0);
}

/// `svc --wait -t`: with our supervise the signal is acknowledged through the command
/// counter; -p/-c through the paused flag.
#[test]
fn svc_wait_acknowledges_signals_and_pause() {
    let s = Scratch::new();
    let (dir, _sup) = ours_up(&s, "svc", "trap '' HUP; exec sleep 600");
    let before = fs::read_to_string(dir.join("supervise/status.ext")).unwrap();
    let count = |t: &str| -> u64 {
        t.lines()
            .find_map(|l| l.strip_prefix("commands "))
            .unwrap()
            .parse()
            .unwrap()
    };
    let o = ours_in("svc", s.path(), &["--wait=20", "-h", "svc"]);
    assert_eq!((code(&o), harness::stderr(&o)), (0, String::new()));
    let after = fs::read_to_string(dir.join("supervise/status.ext")).unwrap();
    assert!(count(&after) > count(&before), "{before}\n{after}");
    let o = ours_in("svc", s.path(), &["--wait=20", "-p", "svc"]);
    assert_eq!(code(&o), 0);
    assert_eq!(
        harness::status_bytes(&dir)[16],
        1,
        "paused when svc returns"
    );
    let o = ours_in("svc", s.path(), &["--wait=20", "-c", "svc"]);
    assert_eq!(code(&o), 0);
    assert_eq!(harness::status_bytes(&dir)[16], 0);
}

/// A daemon that ignores TERM: `svc --wait -d` times out (99) and says so; with -x after
/// it, the same. Then k takes it down and `--wait -dx` sees supervise exit.
#[test]
fn svc_wait_times_out_when_the_command_has_no_effect() {
    let s = Scratch::new();
    let (dir, mut sup) = ours_up(
        &s,
        "svc",
        "trap '' TERM; echo > armed; while :; do sleep 1; done",
    );
    // The status shows the pid before the script has set its trap: wait for the trap.
    wait_until(
        harness::DEADLINE,
        || "trap set".into(),
        || dir.join("armed").exists(),
    );
    let o = ours_in("svc", s.path(), &["--wait=0.5", "-d", "svc"]);
    assert_eq!(
        (code(&o), harness::stderr(&o)),
        (99, "svc: fatal: timed out waiting for svc\n".to_string())
    );
    assert_ne!(harness::status_pid(&dir), 0);
    let o = ours_in("svc", s.path(), &["--wait=20", "-kx", "svc"]);
    assert_eq!((code(&o), harness::stderr(&o)), (0, String::new()));
    assert!(!harness::is_supervised(&dir));
    sup.wait_exit(harness::DEADLINE);
}

/// Readiness: -U waits for the notification-fd report; the timeout fires when it never
/// comes, and -u does not wait for it.
#[test]
fn ready_waits_for_notification_fd() {
    let s = Scratch::new();
    let dir = s.service(
        "svc",
        "while [ ! -e ../go ]; do sleep 0.05; done; echo >&3; exec sleep 600",
    );
    fs::write(dir.join("notification-fd"), "3\n").unwrap();
    let _sup = harness::start_supervise(&harness::bin("supervise"), &dir, s.path(), "svc");
    let o = ours_in("svwait", s.path(), &["-u", "-t", "10", "svc"]);
    assert_eq!(code(&o), 0, "{}", harness::stderr(&o));
    let o = ours_in("svwait", s.path(), &["-U", "-t", "0.5", "svc"]);
    assert_eq!(code(&o), 99, "not ready yet");
    // svc --wait -u means "up and ready" when readiness is configured.
    let o = ours_in("svc", s.path(), &["--wait=0.5", "-u", "svc"]);
    assert_eq!(
        (code(&o), harness::stderr(&o)),
        (99, "svc: fatal: timed out waiting for svc\n".to_string())
    );
    let w = Bg::spawn("svwait", s.path(), &["-U", "-t", "20", "svc"]);
    let acked = Bg::spawn("svc", s.path(), &["--wait=20", "-u", "svc"]);
    fs::write(s.join("go"), "").unwrap();
    assert_eq!(w.join(), (0, String::new()));
    assert_eq!(acked.join(), (0, String::new()));
    let ext = fs::read_to_string(dir.join("supervise/status.ext")).unwrap();
    assert!(ext.contains("\nready 1\n"), "{ext}");
}

/// The supervisor going away while waited for is 111; -x waits for exactly that.
#[test]
fn supervisor_gone_while_waiting() {
    let s = Scratch::new();
    let (_dir, mut sup) = ours_up(&s, "svc", "exec sleep 600");
    let up_waiter = Bg::spawn("svwait", s.path(), &["-d", "-t", "20", "svc"]);
    let x_waiter = Bg::spawn("svwait", s.path(), &["-x", "-t", "20", "svc"]);
    // Let both subscribe: their FIFOs appear in event/.
    wait_until(
        harness::DEADLINE,
        || format!("two listeners in event/: {}", s.listing()),
        || {
            fs::read_dir(s.join("svc/event"))
                .map(|d| {
                    d.flatten()
                        .filter(|e| e.file_name().to_string_lossy().starts_with("ftrig1:"))
                        .count()
                })
                .unwrap_or(0)
                == 2
        },
    );
    sup.signal(libc::SIGKILL);
    sup.wait_exit(harness::DEADLINE);
    assert_eq!(x_waiter.join(), (0, String::new()));
    let (c, err) = up_waiter.join();
    assert_eq!(c, 111);
    assert_eq!(
        err,
        "svwait: fatal: unable to wait for svc: supervise not running\n"
    );
}

/// -o returns when one DIR is done; -a (default) needs all.
#[test]
fn any_and_all() {
    let s = Scratch::new();
    let (_a, _sa) = ours_up(&s, "a", "exec sleep 600");
    let b = s.service("b", "exec sleep 600");
    fs::write(b.join("down"), "").unwrap();
    let _sb = harness::start_supervise(&harness::bin("supervise"), &b, s.path(), "b");
    let o = ours_in("svwait", s.path(), &["-o", "-d", "-t", "10", "a", "b"]);
    assert_eq!(code(&o), 0);
    let o = ours_in("svwait", s.path(), &["-d", "-t", "0.3", "a", "b"]);
    assert_eq!(
        (code(&o), harness::stderr(&o)),
        (99, "svwait: fatal: timed out waiting for a\n".to_string())
    );
}

/// Against Debian's 0.76 supervise (no sidecar, no event dir) the wait polls and works.
#[test]
fn daemontools_supervise_is_polled() {
    let s = Scratch::new();
    let dir = s.service("svc", "exec sleep 600");
    let _sup = harness::start_supervise(&oracle("supervise"), &dir, s.path(), "svc");
    let o = ours_in("svwait", s.path(), &["-u", "-t", "10", "svc"]);
    assert_eq!(code(&o), 0, "{}", harness::stderr(&o));
    let o = ours_in("svc", s.path(), &["--wait=10", "-d", "svc"]);
    assert_eq!((code(&o), harness::stderr(&o)), (0, String::new()));
    assert_eq!(harness::status_pid(&dir), 0);
    let o = ours_in("svwait", s.path(), &["-u", "-t", "0.3", "svc"]);
    assert_eq!(code(&o), 99);
    let o = ours_in("svc", s.path(), &["--wait=10", "-u", "svc"]);
    assert_eq!(code(&o), 0);
    assert_ne!(harness::status_pid(&dir), 0);
    let o = ours_in("svc", s.path(), &["--wait=10", "-dx", "svc"]);
    assert_eq!((code(&o), harness::stderr(&o)), (0, String::new()));
    assert!(!harness::is_supervised(&dir));
}

/// s6-supervise's event fifodir and 35-byte status; runsv's 20-byte status.
#[test]
fn s6_and_runit_services() {
    let s = Scratch::new();
    let d6 = s.service("s6", "exec sleep 600");
    let mut c = harness::cmd(oracle("s6-supervise"));
    c.arg(&d6);
    let _s6 = Running::spawn(c, s.path(), "s6");
    let dr = s.service("rn", "exec sleep 600");
    let mut c = harness::cmd(oracle("runsv"));
    c.arg(&dr);
    let _rn = Running::spawn(c, s.path(), "rn");
    for d in ["s6", "rn"] {
        // Until the supervisor has made its files, svwait says "not supervised" (111).
        let last = std::cell::RefCell::new(String::new());
        wait_until(
            harness::DEADLINE,
            || format!("svwait -u {d}: {}", last.borrow()),
            || {
                let o = ours_in("svwait", s.path(), &["-u", "-t", "5", d]);
                *last.borrow_mut() = harness::stderr(&o);
                code(&o) == 0
            },
        );
        let o = ours_in("svc", s.path(), &["--wait=10", "-d", d]);
        assert_eq!((code(&o), harness::stderr(&o)), (0, String::new()), "{d}");
        let o = ours_in("svwait", s.path(), &["-D", "-t", "10", d]);
        assert_eq!(code(&o), 0, "{d}");
        let o = ours_in("svc", s.path(), &["--wait=10", "-u", d]);
        assert_eq!((code(&o), harness::stderr(&o)), (0, String::new()), "{d}");
    }
    // s6: -x after -d: the 'x' event, then the lock goes.
    let o = ours_in("svc", s.path(), &["--wait=10", "-dx", "s6"]);
    assert_eq!((code(&o), harness::stderr(&o)), (0, String::new()));
}

/// Waits until `w` sleeps in poll(2) with its FIFO in `svc/event`, then asserts that it
/// makes no context switch over a window: the observable of "no polling" (counted in
/// /proc, not timed).
fn assert_no_wakeups(s: &Scratch, w: &mut Bg) {
    wait_until(
        harness::DEADLINE,
        || "the waiter's FIFO in event/".to_string(),
        || {
            fs::read_dir(s.join("svc/event"))
                .map(|d| {
                    d.flatten()
                        .any(|e| e.file_name().to_string_lossy().starts_with("ftrig1:"))
                })
                .unwrap_or(false)
        },
    );
    let switches = |pid: u32| -> u64 {
        let st = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        st.lines()
            .filter(|l| l.contains("ctxt_switches"))
            .map(|l| l.split_whitespace().last().unwrap().parse::<u64>().unwrap())
            .sum()
    };
    let pid = w.pid();
    wait_until(
        harness::DEADLINE,
        || "the waiter to sleep in poll".to_string(),
        || {
            let wchan = fs::read_to_string(format!("/proc/{pid}/wchan")).unwrap_or_default();
            // Some kernels hide wchan ("0"): then a sleeping state is the best we can see.
            let sleeping = fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|st| {
                    st.rsplit(')')
                        .next()
                        .is_some_and(|r| r.trim_start().starts_with('S'))
                })
                .unwrap_or(false);
            wchan.contains("poll") || (wchan == "0" && sleeping)
        },
    );
    // A window long enough for a 100 ms poll loop to show several wakeups. The command
    // just sent may still publish a file or two (a real event, not polling), so a few
    // windows are allowed: a polling waiter never has a quiet one.
    let mut counts = Vec::new();
    for _ in 0..5 {
        let before = switches(pid);
        std::thread::sleep(Duration::from_millis(600));
        counts.push(switches(pid) - before);
        if counts.last() == Some(&0) {
            break;
        }
    }
    assert!(!w.finished());
    assert_eq!(
        counts.last(),
        Some(&0),
        "the waiter kept waking up while nothing happened: {counts:?}"
    );
}

#[test]
fn waiting_on_our_supervise_costs_no_wakeups() {
    let s = Scratch::new();
    let (_dir, _sup) = ours_up(&s, "svc", "exec sleep 600");
    let mut w = Bg::spawn("svwait", s.path(), &["-d", "svc"]);
    assert_no_wakeups(&s, &mut w);
    let o = ours_in("svc", s.path(), &["-d", "svc"]);
    assert_eq!(code(&o), 0);
    assert_eq!(w.join(), (0, String::new()));
}

/// The same for `svc --wait -d` on a daemon that ignores TERM (issue 6: "`svc -w`
/// waiting costs no polling"); a KILL then takes it down and svc returns 0.
#[test]
fn svc_wait_costs_no_wakeups() {
    let s = Scratch::new();
    let (dir, _sup) = ours_up(&s, "svc", "trap '' TERM; echo > armed; exec sleep 600");
    wait_until(
        harness::DEADLINE,
        || "trap set".into(),
        || dir.join("armed").exists(),
    );
    let mut w = Bg::spawn("svc", s.path(), &["--wait=60", "-d", "svc"]);
    assert_no_wakeups(&s, &mut w);
    let o = ours_in("svc", s.path(), &["-k", "svc"]);
    assert_eq!(code(&o), 0);
    assert_eq!(w.join(), (0, String::new()));
}

/// s6's ready flag: with `notification-fd`, -U (and `svc --wait -u`) waits for the daemon's
/// report; without it, up is ready (as `s6-svc -wU` treats it).
#[test]
fn s6_readiness() {
    let s = Scratch::new();
    let d = s.service(
        "s6",
        "while [ ! -e ../go ]; do sleep 0.05; done; echo >&3; exec sleep 600",
    );
    fs::write(d.join("notification-fd"), "3\n").unwrap();
    let mut c = harness::cmd(oracle("s6-supervise"));
    c.arg(&d);
    let _s6 = Running::spawn(c, s.path(), "s6");
    let last = std::cell::RefCell::new(String::new());
    wait_until(
        harness::DEADLINE,
        || format!("svwait -u s6: {}", last.borrow()),
        || {
            let o = ours_in("svwait", s.path(), &["-u", "-t", "5", "s6"]);
            *last.borrow_mut() = harness::stderr(&o);
            code(&o) == 0
        },
    );
    let o = ours_in("svwait", s.path(), &["-U", "-t", "0.3", "s6"]);
    assert_eq!(code(&o), 99);
    let w = Bg::spawn("svwait", s.path(), &["-U", "-t", "20", "s6"]);
    fs::write(s.join("go"), "").unwrap();
    assert_eq!(w.join(), (0, String::new()));
    let o = ours_in("svstat", s.path(), &["-o", "up,ready", "s6"]);
    assert_eq!(harness::stdout(&o), "true true\n");
}

/// Back from ours to daemontools: the sidecar our supervise left behind is ignored, so
/// waiting works on the 0.76 supervise that took over.
#[test]
fn a_sidecar_left_behind_is_ignored() {
    let s = Scratch::new();
    let (dir, mut ours_sup) = ours_up(&s, "svc", "exec sleep 600");
    let o = ours_in("svc", s.path(), &["--wait=20", "-dx", "svc"]);
    assert_eq!((code(&o), harness::stderr(&o)), (0, String::new()));
    ours_sup.wait_exit(harness::DEADLINE);
    assert!(dir.join("supervise/status.ext").exists());
    let _theirs = harness::start_supervise(&oracle("supervise"), &dir, s.path(), "theirs");
    let o = ours_in("svwait", s.path(), &["-u", "-t", "10", "svc"]);
    assert_eq!((code(&o), harness::stderr(&o)), (0, String::new()));
    let o = ours_in("svc", s.path(), &["--wait=10", "-d", "svc"]);
    assert_eq!((code(&o), harness::stderr(&o)), (0, String::new()));
    assert_eq!(harness::status_pid(&dir), 0);
}

/// One DIR that cannot be controlled: its warning, the others still waited for, exit 111.
#[test]
fn svc_wait_with_a_failing_dir() {
    let s = Scratch::new();
    let (dir, _sup) = ours_up(&s, "svc", "exec sleep 600");
    let o = ours_in("svc", s.path(), &["--wait=20", "-d", "nonexist", "svc"]);
    assert_eq!(
        (code(&o), harness::stderr(&o)),
        (
            111,
            "svc: warning: unable to chdir to nonexist: file does not exist\n".to_string()
        )
    );
    assert_eq!(harness::status_pid(&dir), 0, "svc was waited for");
    // No DIR at all: nothing to wait for.
    let o = ours_in("svc", s.path(), &["--wait", "-d"]);
    assert_eq!((code(&o), harness::stderr(&o)), (0, String::new()));
}
