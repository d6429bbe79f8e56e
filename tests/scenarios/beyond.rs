//! Issue 6 end to end: our supervise on service dirs that use the features beyond 0.76
//! (docs/supervise.md, REFERENCE.md §11-12), observed through the files it publishes
//! (`supervise/status`, `supervise/status.ext`, `supervise/deaths`) and the processes.
//!
//! Every wait is on observable state with a deadline; timing only ever appears as a lower
//! bound inside a service's own script (a run that stays up at least N seconds), never as
//! synchronisation of the test.
#![allow(clippy::unwrap_used)]

use crate::harness::{self, DEADLINE, Running, Scratch, bin, oracle, ours, pid_alive, wait_until};
use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

/// `supervise/status.ext` as key → value (empty when missing or being replaced). Read as
/// text, so these tests do not depend on which keys svcore::sidecar knows.
fn ext(dir: &Path) -> HashMap<String, String> {
    fs::read_to_string(dir.join("supervise/status.ext"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn get(e: &HashMap<String, String>, k: &str) -> String {
    e.get(k).cloned().unwrap_or_default()
}

fn num(e: &HashMap<String, String>, k: &str) -> u64 {
    get(e, k).parse().unwrap_or(0)
}

/// What a failed wait prints: the sidecar, the deaths file and supervise's stderr.
fn report(dir: &Path, sup: &Running) -> String {
    format!(
        "status.ext:\n{}\ndeaths:\n{}\nsupervise stderr:\n{}",
        fs::read_to_string(dir.join("supervise/status.ext")).unwrap_or_default(),
        fs::read_to_string(dir.join("supervise/deaths")).unwrap_or_default(),
        sup.stderr()
    )
}

/// Waits until `cond` holds on the sidecar.
fn wait_ext(
    dir: &Path,
    sup: &Running,
    deadline: Duration,
    what: &str,
    cond: impl Fn(&HashMap<String, String>) -> bool,
) -> HashMap<String, String> {
    wait_until(
        deadline,
        || format!("{what}\n{}", report(dir, sup)),
        || cond(&ext(dir)),
    );
    ext(dir)
}

fn supervise(s: &Scratch, dir: &Path) -> Running {
    harness::start_supervise(&bin("supervise"), dir, s.path(), "supervise")
}

fn svc(flags: &str, dir: &Path) {
    let mut c = ours("svc");
    c.arg(flags).arg(dir);
    let o = harness::run(c);
    assert!(o.status.success(), "svc {flags}: {}", harness::stderr(&o));
}

/// Waits until `supervise/status` names a running pid, and returns it. supervise writes
/// `status` after the fork, so a run script's own files may appear before it.
fn status_up(dir: &Path, sup: &Running) -> u32 {
    wait_until(
        DEADLINE,
        || report(dir, sup),
        || harness::status_pid(dir) != 0,
    );
    harness::status_pid(dir)
}

/// Waits until `supervise/status` names `pid`.
fn status_is(dir: &Path, sup: &Running, pid: u32) {
    wait_until(
        DEADLINE,
        || format!("status pid {pid}\n{}", report(dir, sup)),
        || harness::status_pid(dir) == pid,
    );
}

/// The last line of `supervise/deaths`: (pid, raw wait status).
fn last_death(dir: &Path) -> Option<(u32, i32)> {
    let text = fs::read_to_string(dir.join("supervise/deaths")).ok()?;
    let mut f = text.lines().last()?.split_whitespace().skip(1);
    Some((f.next()?.parse().ok()?, f.next()?.parse().ok()?))
}

/// A pid written by a run script into `file`, once it is there and complete.
fn pid_in(file: &Path) -> Option<u32> {
    let t = fs::read_to_string(file).ok()?;
    if !t.ends_with('\n') {
        return None;
    }
    t.trim().parse().ok()
}

/// KILLs, on drop, the process groups whose leaders' pids the service wrote into these
/// files: a run under setsid (and a grandchild that left for a session of its own) is out
/// of reach of the harness's guard, which signals supervise's group only. Reading the
/// files at drop time covers a test that fails before it learnt the pids.
struct GroupGuard(Vec<std::path::PathBuf>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        for f in &self.0 {
            if let Some(pgid) = pid_in(f).filter(|&p| pid_alive(p)) {
                // SAFETY: kill(2) on a process group a service of this test created.
                unsafe {
                    libc::kill(-(pgid as i32), libc::SIGKILL);
                }
            }
        }
    }
}

#[test]
fn beyond_readiness_via_notification_fd_after_a_delay() {
    let s = Scratch::new();
    // Ready only once the test allows it: a newline on fd 3 (s6's protocol, §11.2).
    let dir = s.service(
        "svc",
        "while [ ! -e go ]; do sleep 0.02; done\necho >&3\nexec sleep 1000",
    );
    fs::write(dir.join("notification-fd"), "3\n").unwrap();
    let sup = supervise(&s, &dir);

    let e = wait_ext(&dir, &sup, DEADLINE, "run up, not ready", |e| {
        get(e, "state") == "starting" && num(e, "pid") > 0
    });
    assert_eq!(get(&e, "ready"), "0");
    assert_eq!(get(&e, "ready_stamp"), "-");
    // The 18-byte status and the 0.76 svstat line say "up", as 0.76 would (§12).
    status_is(&dir, &sup, num(&e, "pid") as u32);
    let o = harness::run({
        let mut c = harness::cmd(oracle("svstat"));
        c.arg(&dir);
        c
    });
    assert!(
        harness::stdout(&o).contains(": up (pid "),
        "Debian's svstat: {}",
        harness::stdout(&o)
    );

    // `svwait -U` (up and ready) waits while the service is only up...
    let mut w = ours("svwait");
    w.args(["-U", "-t", "30"]).arg(&dir);
    let mut waiter = Running::spawn(w, s.path(), "svwait");
    assert!(
        waiter.try_wait().is_none(),
        "svwait -U returned before readiness: {}",
        waiter.stderr()
    );
    // ...and returns 0 once the daemon reports readiness.
    fs::write(dir.join("go"), "").unwrap();
    let st = waiter.wait_exit(DEADLINE);
    assert_eq!(st.code(), Some(0), "svwait: {}", waiter.stderr());
    let e = ext(&dir);
    assert_eq!(get(&e, "state"), "ready", "{}", report(&dir, &sup));
    assert_eq!(get(&e, "ready"), "1");
    assert!(get(&e, "ready_stamp").starts_with('@'), "{e:?}");
    assert_eq!(harness::status_bytes(&dir).len(), 18);
}

#[test]
fn beyond_svwait_times_out_when_the_daemon_never_becomes_ready() {
    let s = Scratch::new();
    let dir = s.service("svc", "exec sleep 1000");
    fs::write(dir.join("notification-fd"), "3\n").unwrap();
    let sup = supervise(&s, &dir);
    wait_ext(&dir, &sup, DEADLINE, "run up, not ready", |e| {
        get(e, "state") == "starting" && num(e, "pid") > 0
    });
    // Up, so -u is satisfied at once; never ready, so -U times out (99, as s6-svwait).
    let mut c = ours("svwait");
    c.args(["-u", "-t", "10"]).arg(&dir);
    let o = harness::run(c);
    assert_eq!(o.status.code(), Some(0), "{}", harness::stderr(&o));
    let mut c = ours("svwait");
    c.args(["-U", "-t", "0.3"]).arg(&dir);
    let o = harness::run(c);
    assert_eq!(o.status.code(), Some(99));
    assert_eq!(
        harness::stderr(&o),
        format!("svwait: fatal: timed out waiting for {}\n", dir.display())
    );
}

#[test]
fn beyond_crash_loop_backs_off_then_resets_after_staying_up() {
    let s = Scratch::new();
    // Exits at once (a crash loop) until `stay` exists; then stays up at least 2 s, which
    // is longer than reset-after, and exits again.
    let dir = s.service("svc", "if [ -e stay ]; then sleep 2; fi\nexit 1");
    fs::write(
        dir.join("service.toml"),
        "[backoff]\ninitial = 1000\nmax = 2000\nfactor = 2\nreset-after = 1500\n",
    )
    .unwrap();
    let sup = supervise(&s, &dir);
    let long = Duration::from_secs(30);

    // 1st death: initial delay; 2nd: doubled, which is the cap: "failing".
    wait_ext(&dir, &sup, long, "backoff after the 1st death", |e| {
        num(e, "deaths") >= 1 && matches!(get(e, "state").as_str(), "backoff" | "failing")
    });
    // Honest 0.76 status while waiting: no pid (checked in the same poll, since the next
    // start may come before a slow test thread looks again).
    let e = wait_ext(
        &dir,
        &sup,
        long,
        "failing at the cap, status without pid",
        |e| get(e, "state") == "failing" && harness::status_pid(&dir) == 0,
    );
    assert_eq!(num(&e, "backoff_ms"), 2000, "{e:?}");
    assert!(num(&e, "deaths") >= 2);
    assert!(get(&e, "next_start").starts_with('@'), "{e:?}");
    assert_eq!(get(&e, "want"), "u");
    let (_, w) = last_death(&dir).unwrap();
    assert_eq!(w, 1 << 8, "exit 1 recorded in the deaths file");

    // Now a run stays up longer than reset-after: its death plans the initial delay again.
    fs::write(dir.join("stay"), "").unwrap();
    let e = wait_ext(&dir, &sup, long, "the delay reset to initial", |e| {
        num(e, "deaths") >= 3 && get(e, "state") == "backoff" && num(e, "backoff_ms") == 1000
    });
    assert!(num(&e, "starts") >= 3, "{e:?}");
}

#[test]
fn beyond_timeout_kill_kills_a_daemon_that_ignores_term() {
    let s = Scratch::new();
    let dir = s.service(
        "svc",
        "trap '' TERM\necho $$ > pid.new && mv pid.new pid\nexec sleep 1000",
    );
    fs::write(dir.join("timeout-kill"), "300\n").unwrap();
    let sup = supervise(&s, &dir);
    // The trap is set once the script wrote its pid.
    wait_until(
        DEADLINE,
        || report(&dir, &sup),
        || pid_in(&dir.join("pid")).is_some(),
    );
    let pid = pid_in(&dir.join("pid")).unwrap();
    status_is(&dir, &sup, pid);

    // Debian's svc, unchanged: `d` sends TERM+CONT; supervise adds the KILL.
    let o = harness::run({
        let mut c = harness::cmd(oracle("svc"));
        c.arg("-d").arg(&dir);
        c
    });
    assert!(o.status.success());
    wait_until(
        DEADLINE,
        || format!("the daemon to die\n{}", report(&dir, &sup)),
        || !pid_alive(pid) && harness::status_pid(&dir) == 0,
    );
    wait_until(
        DEADLINE,
        || report(&dir, &sup),
        || last_death(&dir).is_some(),
    );
    assert_eq!(
        last_death(&dir),
        Some((pid, libc::SIGKILL)),
        "killed by SIGKILL"
    );
    let e = wait_ext(&dir, &sup, DEADLINE, "down", |e| get(e, "state") == "down");
    assert_eq!(get(&e, "want"), "d");
}

/// A run that forks a grandchild into the background and waits.
const FORKING_RUN: &str =
    "echo $$ > run.new && mv run.new run\nsleep 1000 &\necho $! > gc.new && mv gc.new gc\nwait";

#[test]
fn beyond_setsid_stop_kills_the_grandchild_with_the_group() {
    let s = Scratch::new();
    let dir = s.service("svc", FORKING_RUN);
    fs::write(dir.join("service.toml"), "setsid = true\n").unwrap();
    let _guard = GroupGuard(vec![dir.join("run")]);
    let sup = supervise(&s, &dir);
    wait_until(
        DEADLINE,
        || report(&dir, &sup),
        || pid_in(&dir.join("gc")).is_some(),
    );
    let gc = pid_in(&dir.join("gc")).unwrap();
    let pid = status_up(&dir, &sup);
    assert!(pid_alive(gc));
    // run leads its own session (and so its process group).
    // SAFETY: getsid/getpgid only read process attributes.
    let (sid, pgid) = unsafe { (libc::getsid(pid as i32), libc::getpgid(gc as i32)) };
    assert_eq!(sid, pid as i32);
    assert_eq!(pgid, pid as i32);

    svc("-d", &dir);
    wait_until(
        DEADLINE,
        || {
            format!(
                "run {pid} and grandchild {gc} to die\n{}",
                report(&dir, &sup)
            )
        },
        || !pid_alive(pid) && !pid_alive(gc),
    );
    wait_ext(&dir, &sup, DEADLINE, "down", |e| get(e, "state") == "down");
}

#[test]
fn beyond_without_setsid_the_grandchild_survives_a_stop() {
    // The contrast: the 0.76 default signals the pid only (§12.7 compat).
    let s = Scratch::new();
    let dir = s.service("svc", FORKING_RUN);
    let sup = supervise(&s, &dir);
    wait_until(
        DEADLINE,
        || report(&dir, &sup),
        || pid_in(&dir.join("gc")).is_some(),
    );
    let gc = pid_in(&dir.join("gc")).unwrap();
    let pid = status_up(&dir, &sup);
    svc("-d", &dir);
    wait_until(DEADLINE, || report(&dir, &sup), || !pid_alive(pid));
    assert!(pid_alive(gc), "the grandchild escaped, as in 0.76");
    // SAFETY: the grandchild this test's service started; the harness would kill it too.
    unsafe {
        libc::kill(gc as i32, libc::SIGKILL);
    }
}

/// Invalid `service.toml` files: each gives a warning naming the file, the line or the
/// key, and what is wrong; the service still runs, with the defaults.
#[test]
fn beyond_invalid_service_toml_files_each_give_their_message() {
    let cases: &[(&str, &str)] = &[
        (
            "timeout-kill = \"x\"\n",
            "line 1: timeout-kill: invalid type: string \"x\", expected u64",
        ),
        ("bogus = 1\n", "line 1: unknown field `bogus`"),
        (
            "notification-fd = 1\n",
            "notification-fd: must be a descriptor from 3 to 1023, not 1",
        ),
        (
            "[backoff]\nfactor = 0\n",
            "backoff.factor: must be at least 1",
        ),
        (
            "down-signal = \"NOPE\"\n",
            "down-signal: unknown signal: \"NOPE\"",
        ),
        (
            "no-restart-exit-codes = [300]\n",
            "no-restart-exit-codes: 300 is not an exit code (0 to 255)",
        ),
        ("x = [\n", "line 2: invalid array"),
    ];
    for (i, (toml, want)) in cases.iter().enumerate() {
        let s = Scratch::new();
        let name = format!("t{i}");
        let dir = s.service(&name, "exec sleep 1000");
        fs::write(dir.join("service.toml"), toml).unwrap();
        // supervise is started with a relative dir, so the message names it as given.
        let mut c = harness::cmd(bin("supervise"));
        c.arg(&name).current_dir(s.path());
        let sup = Running::spawn(c, s.path(), "supervise");
        let prefix = format!("supervise: warning: {name}/service.toml: ");
        wait_until(
            DEADLINE,
            || format!("{toml:?}: warning; stderr: {:?}", sup.stderr()),
            || sup.stderr().contains("using the defaults\n"),
        );
        let err = sup.stderr();
        let line = err.lines().next().unwrap_or_default();
        assert!(
            line.starts_with(&prefix)
                && line.contains(want)
                && line.ends_with("; using the defaults"),
            "{toml:?}: got {line:?}, want {prefix}...{want}...; using the defaults"
        );
        // An invalid file does not keep the service down.
        wait_until(
            DEADLINE,
            || format!("{toml:?}: run up; stderr {err}"),
            || harness::status_pid(&dir) != 0,
        );
    }
}

#[test]
fn beyond_invalid_service_toml_later_keeps_the_last_good_settings() {
    let s = Scratch::new();
    let dir = s.service(
        "svc",
        "trap '' TERM\necho $$ > pid.new && mv pid.new pid\nexec sleep 1000",
    );
    fs::write(dir.join("service.toml"), "timeout-kill = 300\n").unwrap();
    let sup = supervise(&s, &dir);
    wait_until(
        DEADLINE,
        || report(&dir, &sup),
        || pid_in(&dir.join("pid")).is_some(),
    );
    let first = pid_in(&dir.join("pid")).unwrap();
    assert_eq!(sup.stderr(), "");

    // Broken while running: read again before the next start, which keeps the old values.
    fs::write(dir.join("service.toml"), "timeout-kill = \"soon\"\n").unwrap();
    fs::remove_file(dir.join("pid")).unwrap();
    svc("-k", &dir);
    wait_until(
        DEADLINE,
        || format!("a new run\n{}", report(&dir, &sup)),
        || pid_in(&dir.join("pid")).is_some_and(|p| p != first),
    );
    wait_until(
        DEADLINE,
        || report(&dir, &sup),
        || sup.stderr().contains("keeping the last good settings"),
    );
    assert!(
        sup.stderr()
            .contains("service.toml: line 1: timeout-kill: invalid type: string \"soon\""),
        "{}",
        sup.stderr()
    );
    // timeout-kill = 300 still holds: the TERM-ignoring run is KILLed after `d`.
    let second = pid_in(&dir.join("pid")).unwrap();
    svc("-d", &dir);
    wait_until(
        DEADLINE,
        || report(&dir, &sup),
        || !pid_alive(second) && last_death(&dir).is_some_and(|(p, _)| p == second),
    );
    assert_eq!(last_death(&dir), Some((second, libc::SIGKILL)));
}

/// `/usr/bin/python3`, for the stand-in daemons below; loudly missing, never skipped.
fn python3() -> &'static str {
    let p = "/usr/bin/python3";
    assert!(
        Path::new(p).exists(),
        "{p} is needed by the stand-in daemons of these tests (apt-get install python3)"
    );
    p
}

#[test]
fn beyond_readiness_via_notify_socket_from_an_unprivileged_daemon() {
    let py = python3();
    let s = Scratch::new();
    // The daemon drops privileges (as OpenACS's nsd -u does) before it notifies, so it
    // needs to reach supervise/notify as nobody: the scratch dir must be searchable.
    fs::set_permissions(s.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let dir = s.service(
        "svc",
        &format!(
            "echo \"$NOTIFY_SOCKET\" > env.new && mv env.new env\n\
             while [ ! -e go ]; do sleep 0.02; done\n\
             exec setuidgid nobody {py} -c '\n\
import os, socket, time\n\
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n\
s.sendto(b\"STATUS=serving 3 sites\\nREADY=1\\nMAINPID=%d\\n\" % os.getpid(), os.environ[\"NOTIFY_SOCKET\"])\n\
time.sleep(1000)'"
        ),
    );
    fs::write(
        dir.join("service.toml"),
        "[readiness]\nnotify-socket = true\n",
    )
    .unwrap();
    let sup = supervise(&s, &dir);
    wait_until(
        DEADLINE,
        || report(&dir, &sup),
        || pid_in_text(&dir.join("env")).is_some(),
    );
    let sock = dir.join("supervise/notify");
    assert_eq!(
        pid_in_text(&dir.join("env")).unwrap(),
        sock.to_string_lossy(),
        "NOTIFY_SOCKET is the absolute path of supervise/notify"
    );
    assert!(fs::symlink_metadata(&sock).unwrap().file_type().is_socket());
    let e = wait_ext(&dir, &sup, DEADLINE, "run up, not ready", |e| {
        get(e, "state") == "starting" && num(e, "pid") > 0
    });
    let pid = num(&e, "pid");

    let mut w = ours("svwait");
    w.args(["-U", "-t", "30"]).arg(&dir);
    let mut waiter = Running::spawn(w, s.path(), "svwait");
    assert!(
        waiter.try_wait().is_none(),
        "svwait -U returned before readiness"
    );
    fs::write(dir.join("go"), "").unwrap();
    let st = waiter.wait_exit(DEADLINE);
    assert_eq!(st.code(), Some(0), "svwait: {}", waiter.stderr());
    let e = wait_ext(&dir, &sup, DEADLINE, "ready with STATUS and MAINPID", |e| {
        get(e, "state") == "ready" && get(e, "status_text") == "serving 3 sites"
    });
    assert_eq!(get(&e, "ready"), "1");
    assert_eq!(
        num(&e, "main_pid"),
        pid,
        "python was exec'd: MAINPID is run's pid"
    );
    status_is(&dir, &sup, pid as u32);
}

/// The first line of a file written with `.new` + rename, once it is there.
fn pid_in_text(file: &Path) -> Option<String> {
    let t = fs::read_to_string(file).ok()?;
    t.strip_suffix('\n').map(str::to_string)
}

#[test]
fn beyond_cgroup_stop_kills_a_grandchild_that_left_the_process_group() {
    let s = Scratch::new();
    // The grandchild escapes into a session of its own: neither the pid nor the process
    // group reach it; only the cgroup does.
    let dir = s.service(
        "svc",
        "setsid sleep 1000 &\necho $! > gc.new && mv gc.new gc\nexec sleep 1000",
    );
    fs::write(dir.join("service.toml"), "cgroup = true\n").unwrap();
    let _guard = GroupGuard(vec![dir.join("gc")]);
    let mut sup = supervise(&s, &dir);
    wait_until(
        DEADLINE,
        || report(&dir, &sup),
        || pid_in(&dir.join("gc")).is_some(),
    );
    let gc = pid_in(&dir.join("gc")).unwrap();
    let pid = status_up(&dir, &sup);
    wait_until(
        DEADLINE,
        || report(&dir, &sup),
        || fs::read_to_string(format!("/proc/{gc}/comm")).is_ok_and(|c| c == "sleep\n"),
    );
    // SAFETY: getsid only reads a process attribute.
    assert_ne!(unsafe { libc::getsid(gc as i32) }, unsafe {
        libc::getsid(pid as i32)
    });

    match svcore::cgroup::probe() {
        Ok(_) => {
            // Both are in the service's cgroup, a child of supervise's own.
            let cg_of = |p: u32| {
                fs::read_to_string(format!("/proc/{p}/cgroup"))
                    .unwrap_or_default()
                    .lines()
                    .find_map(|l| l.strip_prefix("0::").map(str::to_string))
                    .unwrap_or_default()
            };
            let cg = cg_of(pid);
            assert!(cg.contains(svcore::cgroup::PREFIX), "run's cgroup {cg:?}");
            assert_eq!(cg_of(gc), cg);
            let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap();
            let (mount, _) = svcore::cgroup::parse_mountinfo(&mountinfo).unwrap();
            let cg_dir = mount.join(cg.trim_start_matches('/'));
            assert!(cg_dir.join("cgroup.procs").exists(), "{}", cg_dir.display());
            svc("-d", &dir);
            wait_until(
                DEADLINE,
                || {
                    format!(
                        "run {pid} and escaped grandchild {gc} to die\n{}",
                        report(&dir, &sup)
                    )
                },
                || !pid_alive(pid) && !pid_alive(gc),
            );
            wait_ext(&dir, &sup, DEADLINE, "down", |e| get(e, "state") == "down");
            // supervise removes the (now empty) cgroup when it exits.
            svc("-x", &dir);
            sup.wait_exit(DEADLINE);
            assert!(!cg_dir.exists(), "{} left behind", cg_dir.display());
        }
        Err(why) => {
            // No silent skip: say why, and check supervise said it runs without one.
            eprintln!("cgroup v2 not usable on this host: {why}; checking the fallback");
            wait_until(
                DEADLINE,
                || report(&dir, &sup),
                || sup.stderr().contains("running without one"),
            );
        }
    }
}

#[test]
fn beyond_health_probe_failing_restarts_the_service_then_passes() {
    let py = python3();
    let s = Scratch::new();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    // The stand-in for nsd: a web server whose /dbtest.tcl says what the file says.
    let dir = s.service(
        "svc",
        &format!("exec {py} -m http.server --bind 127.0.0.1 --directory www {port}"),
    );
    fs::create_dir(dir.join("www")).unwrap();
    fs::write(dir.join("www/dbtest.tcl"), "failure: no db handle\n").unwrap();
    fs::write(
        dir.join("service.toml"),
        format!(
            "[health]\nurl = \"http://127.0.0.1:{port}/dbtest.tcl\"\nexpect = \"success\"\n\
             interval = 200\ntimeout = 2000\nfailures = 3\ngrace = 2000\n"
        ),
    )
    .unwrap();
    let sup = supervise(&s, &dir);
    let long = Duration::from_secs(30);
    let e = wait_ext(&dir, &sup, long, "a failed probe", |e| {
        get(e, "health") == "fail" && num(e, "health_failures") >= 1
    });
    let first = num(&e, "pid");
    // Three failures in a row: supervise restarts it as `svc -t` would (want stays up).
    let e = wait_ext(&dir, &sup, long, "a restart caused by the probe", |e| {
        num(e, "health_restarts") >= 1 && num(e, "starts") >= 2
    });
    assert_eq!(get(&e, "want"), "u");
    let deaths = fs::read_to_string(dir.join("supervise/deaths")).unwrap();
    assert!(
        deaths
            .lines()
            .any(|l| l.starts_with('@') && l.contains(&format!(" {first} "))),
        "the first run's death is recorded: {deaths}"
    );

    // The database is back: the probe passes and the failure count resets.
    fs::write(dir.join("www/dbtest.tcl"), "success\n").unwrap();
    let e = wait_ext(&dir, &sup, long, "a passing probe", |e| {
        get(e, "health") == "ok" && num(e, "health_failures") == 0
    });
    assert!(get(&e, "health_stamp").starts_with('@'), "{e:?}");
    assert!(num(&e, "pid") > 0);
}

#[test]
fn beyond_readiness_via_a_check_program() {
    let s = Scratch::new();
    // runit's ./check idea: a command polled until it exits 0.
    let dir = s.service("svc", "exec sleep 1000");
    fs::write(
        dir.join("service.toml"),
        "[readiness]\ncheck = \"test -e go\"\ncheck-interval = 50\n",
    )
    .unwrap();
    let sup = supervise(&s, &dir);
    let e = wait_ext(&dir, &sup, DEADLINE, "run up, not ready", |e| {
        get(e, "state") == "starting" && num(e, "pid") > 0
    });
    let pid = num(&e, "pid");
    fs::write(dir.join("go"), "").unwrap();
    let e = wait_ext(&dir, &sup, DEADLINE, "ready", |e| {
        get(e, "state") == "ready"
    });
    assert_eq!(num(&e, "pid"), pid, "the same run became ready");
    let mut c = ours("svwait");
    c.args(["-U", "-t", "10"]).arg(&dir);
    let o = harness::run(c);
    assert_eq!(o.status.code(), Some(0), "{}", harness::stderr(&o));
}

#[test]
fn beyond_health_command_failing_restarts_the_service() {
    let s = Scratch::new();
    let dir = s.service("svc", "exec sleep 1000");
    fs::write(
        dir.join("service.toml"),
        "[health]\ncommand = \"test ! -e sick\"\ninterval = 50\ntimeout = 5000\n\
         failures = 2\ngrace = 50\n",
    )
    .unwrap();
    let sup = supervise(&s, &dir);
    let e = wait_ext(&dir, &sup, DEADLINE, "a passing probe", |e| {
        get(e, "health") == "ok" && num(e, "pid") > 0
    });
    let first = num(&e, "pid");
    assert_eq!(num(&e, "health_restarts"), 0);

    fs::write(dir.join("sick"), "").unwrap();
    let e = wait_ext(&dir, &sup, DEADLINE, "a restart caused by the probe", |e| {
        num(e, "health_restarts") >= 1 && num(e, "pid") > 0 && num(e, "pid") != first
    });
    assert_eq!(get(&e, "want"), "u");
    // The old run was stopped with TERM (the down-signal), as `svc -t` would.
    let deaths = fs::read_to_string(dir.join("supervise/deaths")).unwrap();
    assert!(
        deaths
            .lines()
            .any(|l| l.ends_with(&format!(" {first} {}", libc::SIGTERM))),
        "{deaths}"
    );
    fs::remove_file(dir.join("sick")).unwrap();
    wait_ext(&dir, &sup, DEADLINE, "healthy again", |e| {
        get(e, "health") == "ok" && num(e, "health_failures") == 0
    });
}
