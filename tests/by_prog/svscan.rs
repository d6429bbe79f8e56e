//! Tests for svscan (REFERENCE.md §6, §11.9, §12.1): real svscan, real supervise, real
//! services, in scratch dirs. Every svscan runs in a `Running` guard, so its process group
//! (every supervise and service it started) is killed on drop.
#![allow(clippy::unwrap_used)] // tests may unwrap (STYLE.md P4)

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::harness::{self, Running, Scratch, wait_until};

/// Longer than harness::DEADLINE: several waits here span one of svscan's 5 s passes,
/// and CI runs this suite with 4 test threads on 2 loaded cores. Only a failing test
/// ever waits this long.
const DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

/// Our svscan on `dir` with `extra` options first.
pub fn start_svscan(s: &Scratch, dir: &Path, extra: &[&str], tag: &str) -> Running {
    let mut c = harness::ours("svscan");
    c.args(extra).arg(dir);
    Running::spawn(c, s.path(), tag)
}

/// The command line (`/proc/PID/cmdline`, NULs as spaces) of `pid`.
pub fn cmdline(pid: u32) -> String {
    let b = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let s: String = b
        .iter()
        .map(|&c| if c == 0 { ' ' } else { c as char })
        .collect();
    s.trim_end().to_string()
}

/// Live (non-zombie) children of `pid`, with their command lines.
pub fn children(pid: u32) -> Vec<(u32, String)> {
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
        if f[1] == pid.to_string() && f[0] != "Z" && f[0] != "X" {
            out.push((p, cmdline(p)));
        }
    }
    out
}

/// Pids of `pid`'s children whose command line is exactly `args`.
pub fn children_named(pid: u32, args: &str) -> Vec<u32> {
    children(pid)
        .into_iter()
        .filter(|(_, c)| c == args)
        .map(|(p, _)| p)
        .collect()
}

/// How many times `needle` occurs in the daemon's stderr.
fn count_in_stderr(r: &Running, needle: &str) -> usize {
    r.stderr().matches(needle).count()
}

/// Makes svscan do a full pass (SIGALRM) and waits until it has, as shown by one more
/// warning about the dangling symlink `dangle` that such tests keep in the scan dir.
fn full_pass(r: &Running) {
    let w = "svscan: warning: unable to stat dangle: file does not exist";
    let before = count_in_stderr(r, w);
    r.signal(libc::SIGALRM);
    wait_until(
        DEADLINE,
        || format!("a full pass; stderr: {}", r.stderr()),
        || count_in_stderr(r, w) > before,
    );
}

/// A service whose stdout is a stream of numbered lines `PID N` (N from 1, no gaps).
const COUNTER: &str = "i=0\nwhile :; do i=$((i+1)); echo \"$$ $i\"; sleep 0.01; done";

/// Checks that every writer's numbers in `text` run 1, 2, 3... without a gap, and that
/// there are at least `writers` writers. Returns the number of lines.
pub fn assert_no_gaps(text: &str, writers: usize) -> usize {
    let mut last: std::collections::HashMap<&str, u64> = Default::default();
    let mut n = 0;
    for line in text.lines() {
        let mut f = line.split(' ');
        let (Some(pid), Some(num)) = (f.next(), f.next()) else {
            panic!("malformed log line {line:?} in:\n{text}");
        };
        let Ok(num) = num.parse::<u64>() else {
            continue; // a final marker such as `PID bye`
        };
        let prev = last.insert(pid, num).unwrap_or(0);
        assert_eq!(num, prev + 1, "gap or repeat for writer {pid} in:\n{text}");
        n += 1;
    }
    assert!(
        last.len() >= writers,
        "expected {writers} writers, saw {} in:\n{text}",
        last.len()
    );
    n
}

/// Runs our `svc OPTS DIR`.
fn svc_run(opts: &str, dir: &Path) {
    let mut c = harness::cmd(harness::bin("svc"));
    c.arg(opts).arg(dir);
    harness::run(c);
}

/// Waits until `out` stops growing (its writer paused, the logger done with the pipe).
fn settle(out: &Path) {
    let mut prev = usize::MAX;
    wait_until(
        DEADLINE,
        || "the log to settle".into(),
        || {
            let n = lines(out);
            let stable = n == prev;
            prev = n;
            std::thread::sleep(Duration::from_millis(100));
            stable
        },
    );
}

fn lines(p: &Path) -> usize {
    fs::read_to_string(p).unwrap_or_default().lines().count()
}

#[test]
fn svscan_starts_supervise_per_service_and_log_with_a_pipe() {
    let s = Scratch::new();
    let scan = s.join("scan");
    s.service("scan/a", "exec sleep 1000");
    s.service("scan/a/log", "exec cat > /dev/null");
    s.service("scan/b", "exec sleep 1000");
    s.service("scan/.hidden", "exec sleep 1000");
    fs::write(scan.join("afile"), "").unwrap();
    let r = start_svscan(&s, &scan, &[], "svscan");
    for d in ["a", "a/log", "b"] {
        wait_until(
            DEADLINE,
            || format!("{d} supervised; {}", r.stderr()),
            || harness::is_supervised(&scan.join(d)),
        );
    }
    // The titles admins grep for, as children of svscan.
    let mut kids: Vec<String> = children(r.pid()).into_iter().map(|(_, c)| c).collect();
    kids.sort();
    assert_eq!(kids, ["supervise a", "supervise b", "supervise log"]);
    assert!(!scan.join(".hidden/supervise").exists());
    // svscan holds both ends of one pipe (REFERENCE.md §6, Check): one pipe inode twice.
    // (Other pipes may be inherited from the test runner, such as cargo's jobserver.)
    let fds: Vec<String> = fs::read_dir(format!("/proc/{}/fd", r.pid()))
        .unwrap()
        .flatten()
        .filter_map(|e| fs::read_link(e.path()).ok())
        .map(|l| l.to_string_lossy().into_owned())
        .filter(|l| l.starts_with("pipe:"))
        .collect();
    let pairs: Vec<&String> = fds
        .iter()
        .filter(|p| fds.iter().filter(|q| q == p).count() == 2)
        .collect();
    assert_eq!(pairs.len(), 2, "{fds:?}");
    // The service's stdout and the logger's stdin are that pipe.
    let main = children_named(r.pid(), "supervise a")[0];
    let log = children_named(r.pid(), "supervise log")[0];
    let out = fs::read_link(format!("/proc/{main}/fd/1")).unwrap();
    let inp = fs::read_link(format!("/proc/{log}/fd/0")).unwrap();
    assert_eq!(&out.to_string_lossy(), pairs[0]);
    assert_eq!(&inp.to_string_lossy(), pairs[0]);
    // Started in `a` as `supervise log`, which then changed into `a/log`.
    assert_eq!(
        fs::read_link(format!("/proc/{log}/cwd")).unwrap(),
        scan.join("a/log")
    );
    assert_eq!(r.stderr(), "");
}

#[test]
fn svscan_picks_up_a_new_and_a_renamed_service() {
    let s = Scratch::new();
    let scan = s.join("scan");
    fs::create_dir(&scan).unwrap();
    let r = start_svscan(&s, &scan, &[], "svscan");
    // Built elsewhere, then renamed into place (the documented way).
    s.service("new", "exec sleep 1000");
    fs::rename(s.join("new"), scan.join("new")).unwrap();
    // Built under a dot name inside the scan dir (skipped), then renamed.
    s.service("scan/.tmp", "exec sleep 1000");
    fs::rename(scan.join(".tmp"), scan.join("renamed")).unwrap();
    for d in ["new", "renamed"] {
        wait_until(
            DEADLINE,
            || format!("{d} supervised; {}", r.stderr()),
            || harness::is_supervised(&scan.join(d)),
        );
    }
    // A symlink made later is picked up too.
    s.service("elsewhere", "exec sleep 1000");
    symlink(s.join("elsewhere"), scan.join("link")).unwrap();
    wait_until(
        DEADLINE,
        || format!("link supervised; {}", r.stderr()),
        || harness::is_supervised(&s.join("elsewhere")),
    );
    assert_eq!(children_named(r.pid(), "supervise link").len(), 1);
}

#[test]
fn svscan_renamed_directory_keeps_its_supervise() {
    let s = Scratch::new();
    let scan = s.join("scan");
    s.service("scan/a", "exec sleep 1000");
    symlink("/nonexistent-svscan-test", scan.join("dangle")).unwrap();
    let r = start_svscan(&s, &scan, &[], "svscan");
    wait_until(
        DEADLINE,
        || r.stderr(),
        || harness::is_supervised(&scan.join("a")),
    );
    let pid = children_named(r.pid(), "supervise a");
    fs::rename(scan.join("a"), scan.join("b")).unwrap();
    full_pass(&r);
    fs::rename(scan.join("b"), scan.join("a")).unwrap();
    full_pass(&r);
    // Same (dev, ino): one supervise, still the first one.
    let kids = children(r.pid());
    assert_eq!(kids.len(), 1, "{kids:?}");
    assert_eq!(kids[0].0, pid[0]);
}

#[test]
fn svscan_log_pipe_survives_kill_of_logger_and_service_without_losing_a_line() {
    let s = Scratch::new();
    let scan = s.join("scan");
    s.service("scan/a", COUNTER);
    s.service("scan/a/log", "exec cat >> ../out");
    let out = scan.join("a/out");
    let r = start_svscan(&s, &scan, &[], "svscan");
    let svc = harness::bin("svc");
    wait_until(DEADLINE, || r.stderr(), || lines(&out) >= 20);
    // Kill the logger: the service keeps writing into the pipe meanwhile. The writer is
    // paused around the KILL itself, because a logger killed between its read and its
    // write loses that chunk whatever svscan does (the pipe is not the logger's buffer).
    let old = harness::status_pid(&scan.join("a/log"));
    svc_run("-p", &scan.join("a"));
    settle(&out);
    svc_run("-k", &scan.join("a/log"));
    svc_run("-c", &scan.join("a"));
    wait_until(
        DEADLINE,
        || "a new logger".into(),
        || {
            let p = harness::status_pid(&scan.join("a/log"));
            p != 0 && p != old
        },
    );
    let n = lines(&out);
    wait_until(DEADLINE, || "more lines".into(), || lines(&out) >= n + 20);
    // Kill the service: the logger keeps reading the same pipe.
    let old = harness::status_pid(&scan.join("a"));
    harness::run({
        let mut c = harness::cmd(&svc);
        c.arg("-k").arg(scan.join("a"));
        c
    });
    wait_until(
        DEADLINE,
        || "a new service".into(),
        || {
            let p = harness::status_pid(&scan.join("a"));
            p != 0 && p != old
        },
    );
    let n = lines(&out);
    wait_until(DEADLINE, || "more lines".into(), || lines(&out) >= n + 20);
    // Pause the service to read a stable file, then check every number is there.
    harness::run({
        let mut c = harness::cmd(&svc);
        c.arg("-p").arg(scan.join("a"));
        c
    });
    let mut prev = usize::MAX;
    wait_until(
        DEADLINE,
        || "the log to settle".into(),
        || {
            let n = lines(&out);
            let stable = n == prev;
            prev = n;
            std::thread::sleep(Duration::from_millis(100));
            stable
        },
    );
    let text = fs::read_to_string(&out).unwrap();
    assert_no_gaps(&text, 2);
}

#[test]
fn svscan_restarts_a_supervise_killed_with_sigkill() {
    let s = Scratch::new();
    let scan = s.join("scan");
    s.service("scan/b", "exec sleep 1000");
    let r = start_svscan(&s, &scan, &[], "svscan");
    wait_until(
        DEADLINE,
        || r.stderr(),
        || harness::is_supervised(&scan.join("b")),
    );
    let old = children_named(r.pid(), "supervise b");
    assert_eq!(old.len(), 1);
    // SAFETY: KILL of a supervise this test's svscan started.
    unsafe { libc::kill(old[0] as i32, libc::SIGKILL) };
    // Restarted at the next pass (within 5 s), with no signal from us.
    wait_until(
        DEADLINE,
        || format!("a new supervise b; children {:?}", children(r.pid())),
        || {
            let now = children_named(r.pid(), "supervise b");
            now.len() == 1 && now[0] != old[0] && harness::is_supervised(&scan.join("b"))
        },
    );
}

#[test]
fn svscan_killed_and_started_again_adopts_without_duplicates_and_keeps_the_pipe() {
    let s = Scratch::new();
    let scan = s.join("scan");
    s.service("scan/a", COUNTER);
    s.service("scan/a/log", "exec cat >> ../out");
    s.service("scan/b", "exec sleep 1000");
    let out = scan.join("a/out");
    let mut first = start_svscan(&s, &scan, &[], "svscan1");
    for d in ["a", "a/log", "b"] {
        wait_until(
            DEADLINE,
            || first.stderr(),
            || harness::is_supervised(&scan.join(d)),
        );
    }
    let sup_a = children_named(first.pid(), "supervise a");
    // 0.76: TERM kills svscan; its supervise processes keep running.
    first.signal(libc::SIGTERM);
    first.wait_exit(DEADLINE);
    assert!(harness::pid_alive(sup_a[0]));
    let second = start_svscan(&s, &scan, &[], "svscan2");
    // A service added now is started only after the initial pass has run.
    s.service("scan/c", "exec sleep 1000");
    wait_until(
        DEADLINE,
        || second.stderr(),
        || harness::is_supervised(&scan.join("c")),
    );
    let kids = children(second.pid());
    assert_eq!(kids.len(), 1, "only c is new: {kids:?}");
    // The new svscan took the old pipe back: it holds the same pipe as supervise a's fd 1.
    let pipe = fs::read_link(format!("/proc/{}/fd/1", sup_a[0])).unwrap();
    let held = fs::read_dir(format!("/proc/{}/fd", second.pid()))
        .unwrap()
        .flatten()
        .filter_map(|e| fs::read_link(e.path()).ok())
        .any(|l| l == pipe);
    assert!(held, "svscan2 does not hold {pipe:?}");
    // The logger's supervise exits; the new svscan restarts it on the same pipe. The
    // writer is paused meanwhile: `cat` killed by the TERM between its read and its write
    // would lose that chunk, which is the logger's doing, not the pipe's.
    let svc = harness::bin("svc");
    svc_run("-p", &scan.join("a"));
    settle(&out);
    harness::run({
        let mut c = harness::cmd(&svc);
        c.arg("-dx").arg(scan.join("a/log"));
        c
    });
    wait_until(
        DEADLINE,
        || "old log supervise gone".into(),
        || !harness::is_supervised(&scan.join("a/log")),
    );
    wait_until(
        DEADLINE,
        || format!("new supervise log; {}", second.stderr()),
        || children_named(second.pid(), "supervise log").len() == 1,
    );
    svc_run("-c", &scan.join("a"));
    let n = lines(&out);
    wait_until(DEADLINE, || "more lines".into(), || lines(&out) >= n + 20);
    harness::run({
        let mut c = harness::cmd(&svc);
        c.arg("-p").arg(scan.join("a"));
        c
    });
    let mut prev = usize::MAX;
    wait_until(
        DEADLINE,
        || "the log to settle".into(),
        || {
            let n = lines(&out);
            let stable = n == prev;
            prev = n;
            std::thread::sleep(Duration::from_millis(100));
            stable
        },
    );
    assert_no_gaps(&fs::read_to_string(&out).unwrap(), 1);
    // No supervise ever complained about a lock held by another one.
    assert!(!second.stderr().contains("lock"), "{}", second.stderr());
    drop(second);
    drop(first);
}

#[test]
fn svscan_removed_directory_keeps_running_by_default() {
    let s = Scratch::new();
    let scan = s.join("scan");
    s.service("scan/a", "exec sleep 1000");
    symlink("/nonexistent-svscan-test", scan.join("dangle")).unwrap();
    let r = start_svscan(&s, &scan, &[], "svscan");
    wait_until(
        DEADLINE,
        || r.stderr(),
        || harness::is_supervised(&scan.join("a")),
    );
    fs::rename(scan.join("a"), s.join("gone")).unwrap();
    full_pass(&r);
    full_pass(&r);
    assert!(harness::is_supervised(&s.join("gone")));
    assert_eq!(children_named(r.pid(), "supervise a").len(), 1);
}

#[test]
fn svscan_stop_removed_stops_service_then_log() {
    let s = Scratch::new();
    let scan = s.join("scan");
    s.service(
        "scan/a",
        "trap 'echo bye; exit 0' TERM\necho hello\nwhile :; do sleep 0.05; done",
    );
    s.service("scan/a/log", "exec cat >> ../out");
    let r = start_svscan(&s, &scan, &["-r"], "svscan");
    let out = scan.join("a/out");
    wait_until(DEADLINE, || r.stderr(), || lines(&out) >= 1);
    let service = harness::status_pid(&scan.join("a"));
    fs::rename(scan.join("a"), s.join("gone")).unwrap();
    wait_until(
        DEADLINE,
        || format!("everything of a gone; children {:?}", children(r.pid())),
        || children(r.pid()).is_empty() && !harness::pid_alive(service),
    );
    // The service's last words went through the logger: it was stopped after the service.
    assert_eq!(
        fs::read_to_string(s.join("gone/out")).unwrap(),
        "hello\nbye\n"
    );
}

#[test]
fn svscan_dangling_symlink_warns_like_the_original() {
    let ours = dangling_warning(harness::bin("svscan").as_path(), harness::path_env());
    let theirs = dangling_warning(
        harness::oracle("svscan").as_path(),
        "/usr/bin:/bin".to_string(),
    );
    assert_eq!(
        ours,
        "svscan: warning: unable to stat dangle: file does not exist\n"
    );
    assert_eq!(ours, theirs);
}

/// The first pass's stderr of `prog` on a dir holding only a dangling symlink.
fn dangling_warning(prog: &Path, path: String) -> String {
    let s = Scratch::new();
    let scan = s.join("scan");
    fs::create_dir(&scan).unwrap();
    symlink("/nonexistent-svscan-test", scan.join("dangle")).unwrap();
    let mut c = Command::new(prog);
    c.env_clear().env("PATH", path).arg(&scan);
    let r = Running::spawn(c, s.path(), "svscan");
    wait_until(
        DEADLINE,
        || "a warning".into(),
        || r.stderr().ends_with('\n'),
    );
    // Only the first pass: a slow poll here could already see the next pass's repeat.
    let err = r.stderr();
    let first = err.split_inclusive('\n').next().unwrap_or_default();
    first.to_string()
}

#[test]
fn svscan_log_that_is_a_file_starts_a_failing_log_supervise() {
    let s = Scratch::new();
    let scan = s.join("scan");
    s.service("scan/a", "exec sleep 1000");
    fs::write(scan.join("a/log"), "not a dir").unwrap();
    let r = start_svscan(&s, &scan, &[], "svscan");
    wait_until(
        DEADLINE,
        || r.stderr(),
        || harness::is_supervised(&scan.join("a")),
    );
    // 0.76: any file type counts as a log, so a pipe is made and `supervise log` runs
    // in `a`, where it fails on `log`; the service's stdout is the pipe regardless.
    wait_until(
        DEADLINE,
        || r.stderr(),
        || {
            r.stderr()
                .contains("supervise: fatal: unable to chdir to log: not a directory")
        },
    );
    let main = children_named(r.pid(), "supervise a")[0];
    let out = fs::read_link(format!("/proc/{main}/fd/1")).unwrap();
    assert!(out.to_string_lossy().starts_with("pipe:"), "{out:?}");
}

#[test]
fn svscan_service_without_run_is_supervised_and_starts_once_run_appears() {
    let s = Scratch::new();
    let scan = s.join("scan");
    fs::create_dir_all(scan.join("a")).unwrap();
    let r = start_svscan(&s, &scan, &[], "svscan");
    wait_until(
        DEADLINE,
        || r.stderr(),
        || harness::is_supervised(&scan.join("a")),
    );
    // No pid is asserted here: like 0.76, supervise records the child's pid before that
    // child finds out that `run` is missing, so status may briefly say "up".
    wait_until(
        DEADLINE,
        || r.stderr(),
        || {
            r.stderr()
                .contains("unable to start a/run: file does not exist")
        },
    );
    harness::write_script(&scan.join("a/run"), "exec sleep 1000");
    wait_until(
        DEADLINE,
        || r.stderr(),
        || harness::pid_alive(harness::status_pid(&scan.join("a"))),
    );
}

#[test]
fn svscan_sighup_rescans_instead_of_dying() {
    let s = Scratch::new();
    let scan = s.join("scan");
    fs::create_dir(&scan).unwrap();
    symlink("/nonexistent-svscan-test", scan.join("dangle")).unwrap();
    let mut r = start_svscan(&s, &scan, &[], "svscan");
    wait_until(DEADLINE, || r.stderr(), || r.stderr().contains("dangle"));
    r.signal(libc::SIGHUP);
    wait_until(
        DEADLINE,
        || r.stderr(),
        || r.stderr().matches("dangle").count() >= 2,
    );
    assert!(r.try_wait().is_none(), "svscan died on SIGHUP");
}

#[test]
fn svscan_bad_dir_and_usage() {
    let o = harness::run({
        let mut c = harness::ours("svscan");
        c.arg("/nonexistent-svscan-dir");
        c
    });
    assert_eq!(o.status.code(), Some(111));
    assert_eq!(
        harness::stderr(&o),
        "svscan: fatal: unable to chdir to /nonexistent-svscan-dir: file does not exist\n"
    );
    let t = harness::run({
        let mut c = harness::cmd(harness::oracle("svscan"));
        c.arg("/nonexistent-svscan-dir");
        c
    });
    assert_eq!(t.status.code(), o.status.code());
    assert_eq!(harness::stderr(&t), harness::stderr(&o));
    let u = harness::run({
        let mut c = harness::ours("svscan");
        c.arg("-z");
        c
    });
    assert_eq!(u.status.code(), Some(100));
}

#[test]
fn svscan_thousand_services_start_and_stop() {
    let s = Scratch::new();
    let scan = s.join("scan");
    fs::create_dir(&scan).unwrap();
    for i in 0..1000 {
        s.service(&format!("scan/s{i:04}"), "exec sleep 1000");
    }
    // A long grace period: under load the orderly stop of 1000 services must not be cut
    // short by the KILL (which would make svscan exit 111).
    let mut r = start_svscan(&s, &scan, &["--pid1", "-g", "150"], "svscan");
    wait_until(
        Duration::from_secs(180),
        || {
            format!(
                "1000 supervised; {} so far; {}",
                children(r.pid()).len(),
                r.stderr()
            )
        },
        || (0..1000).all(|i| harness::is_supervised(&scan.join(format!("s{i:04}")))),
    );
    wait_until(
        Duration::from_secs(60),
        || "1000 services running".into(),
        || (0..1000).all(|i| harness::status_pid(&scan.join(format!("s{i:04}"))) != 0),
    );
    assert_eq!(children(r.pid()).len(), 1000);
    // Orderly stop of everything (subreaper mode): exits 0 once all 1000 are down.
    r.signal(libc::SIGTERM);
    let st = r.wait_exit(Duration::from_secs(200));
    assert_eq!(st.code(), Some(0), "{}", r.stderr());
    assert!((0..1000).all(|i| !harness::is_supervised(&scan.join(format!("s{i:04}")))));
    assert_eq!(r.stderr(), "");
}

/// The sorted stderr lines of `prog` on a scan dir holding `a` and `b` with `b/log`, when
/// `supervise` cannot be found on PATH: the children's exec failures.
fn exec_failures(prog: &Path) -> Vec<String> {
    let s = Scratch::new();
    let scan = s.join("scan");
    fs::create_dir_all(scan.join("a")).unwrap();
    fs::create_dir_all(scan.join("b/log")).unwrap();
    let mut c = Command::new(prog);
    c.env_clear()
        .env("PATH", "/nonexistent-svscan-path")
        .arg(&scan);
    let r = Running::spawn(c, s.path(), "svscan");
    wait_until(
        DEADLINE,
        || format!("3 warnings: {}", r.stderr()),
        || r.stderr().lines().count() >= 3,
    );
    let mut v: Vec<String> = r.stderr().lines().take(3).map(String::from).collect();
    v.sort();
    v
}

#[test]
fn svscan_exec_failure_warns_from_the_child_like_the_original() {
    let ours = exec_failures(&harness::bin("svscan"));
    assert_eq!(
        ours,
        [
            "svscan: warning: unable to start supervise a: file does not exist",
            "svscan: warning: unable to start supervise b/log: file does not exist",
            "svscan: warning: unable to start supervise b: file does not exist",
        ]
    );
    assert_eq!(ours, exec_failures(&harness::oracle("svscan")));
}

#[test]
fn svscan_restarted_recovers_the_pipe_from_the_surviving_logger() {
    let s = Scratch::new();
    let scan = s.join("scan");
    s.service("scan/a", COUNTER);
    s.service("scan/a/log", "exec cat >> ../out");
    let out = scan.join("a/out");
    let mut first = start_svscan(&s, &scan, &[], "svscan1");
    wait_until(DEADLINE, || first.stderr(), || lines(&out) >= 10);
    let log_sup = children_named(first.pid(), "supervise log");
    assert_eq!(log_sup.len(), 1);
    first.signal(libc::SIGTERM);
    first.wait_exit(DEADLINE);
    // While no svscan runs, the service and its supervise go away; only the logger's
    // supervise (and the logger) still hold the pipe.
    let svc = harness::bin("svc");
    harness::run({
        let mut c = harness::cmd(&svc);
        c.arg("-dx").arg(scan.join("a"));
        c
    });
    wait_until(
        DEADLINE,
        || "supervise a gone".into(),
        || !harness::is_supervised(&scan.join("a")),
    );
    let before = fs::read_to_string(&out).unwrap();
    let second = start_svscan(&s, &scan, &[], "svscan2");
    // A new supervise a, on the pipe the surviving logger reads: the new counter's lines
    // arrive in the same file.
    wait_until(
        DEADLINE,
        || format!("new writer's lines; {}", second.stderr()),
        || fs::read_to_string(&out).unwrap().len() > before.len() + 200,
    );
    assert_eq!(children_named(second.pid(), "supervise a").len(), 1);
    assert!(children_named(second.pid(), "supervise log").is_empty());
    assert!(harness::pid_alive(log_sup[0]));
    harness::run({
        let mut c = harness::cmd(&svc);
        c.arg("-p").arg(scan.join("a"));
        c
    });
    let mut prev = usize::MAX;
    wait_until(
        DEADLINE,
        || "the log to settle".into(),
        || {
            let n = lines(&out);
            let stable = n == prev;
            prev = n;
            std::thread::sleep(Duration::from_millis(100));
            stable
        },
    );
    assert_no_gaps(&fs::read_to_string(&out).unwrap(), 2);
    drop(second);
    drop(first);
}

#[test]
fn svscan_pid1_exits_with_the_designated_services_code() {
    let s = Scratch::new();
    let scan = s.join("scan");
    s.service("scan/a", "trap 'exit 3' TERM\nwhile :; do sleep 0.05; done");
    s.service("scan/b", "exec sleep 1000");
    let mut r = start_svscan(&s, &scan, &["-1", "-g", "40", "-e", "a"], "svscan");
    for d in ["a", "b"] {
        wait_until(
            DEADLINE,
            || format!("{d} running; {}", r.stderr()),
            || harness::pid_alive(harness::status_pid(&scan.join(d))),
        );
    }
    r.signal(libc::SIGTERM);
    let st = r.wait_exit(Duration::from_secs(60));
    // a's `exit 3` on TERM, read back from its supervise's status.ext sidecar.
    assert_eq!(st.code(), Some(3), "{}", r.stderr());
}
