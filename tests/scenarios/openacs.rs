//! The OpenACS workflow end to end (OPENACS.md §2-§7, issue 5), with the kit's stand-in
//! server (examples/openacs/demo/site, python3) in place of nsd: link the site's service
//! directory into a scan dir watched by our svscan, see it answer `success`, find it in
//! `ps`, drive it with svc, restart it with examples/openacs/restart-aolserver, and swap
//! an A/B pair with examples/openacs/ab-switch.
#![allow(clippy::unwrap_used)]

use crate::harness::{self, Running, Scratch, run, status_pid, wait_until};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

/// Starting python3 and answering HTTP can be slow on a loaded CI machine.
const SLOW: Duration = Duration::from_secs(30);

fn kit(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/openacs")
        .join(rel)
}

/// A port that was free a moment ago (bound to port 0, then released).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// GET `path` from 127.0.0.1:`port`; the status code and body, or None when nothing
/// answers.
fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let addr = format!("127.0.0.1:{port}").parse().ok()?;
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
        .ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let code = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n")?.1.to_string();
    Some((code, body))
}

fn answers_success(port: u16) -> bool {
    http_get(port, "/SYSTEM/dbtest.tcl") == Some((200, "success".to_string()))
}

/// Copies the demo site (run, log/run, env/, config.tcl, standin-nsd) to `dst`, serving
/// `port`.
fn demo_site(dst: &Path, port: u16) {
    let o = run({
        let mut c = Command::new("cp");
        c.arg("-R").arg(kit("demo/site")).arg(dst);
        c
    });
    assert!(o.status.success(), "cp: {}", harness::stderr(&o));
    std::fs::write(dst.join("env/oacs_httpport"), format!("{port}\n")).unwrap();
}

/// What `ps -eo pid,ppid,args` shows for `root` and its descendants: (pid, ppid, args),
/// args being `/proc/PID/cmdline` with NULs as spaces. Read from /proc directly, and only
/// the command lines of our own processes: running `ps` itself on a loaded CI machine
/// reads every process's cmdline and can take longer than any sane deadline.
fn ps_tree(root: u32) -> Vec<(u32, u32, String)> {
    let mut all = Vec::new();
    for d in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = d.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        if f.len() > 1 && f[0] != "Z" && f[0] != "X" {
            all.push((pid, f[1].parse::<u32>().unwrap_or(0)));
        }
    }
    let mut mine = vec![root];
    let mut grew = true;
    while grew {
        grew = false;
        for (pid, ppid) in &all {
            if mine.contains(ppid) && !mine.contains(pid) {
                mine.push(*pid);
                grew = true;
            }
        }
    }
    all.iter()
        .filter(|(pid, _)| mine.contains(pid))
        .map(|(pid, ppid)| {
            let b = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let args: String = b
                .iter()
                .map(|&c| if c == 0 { ' ' } else { c as char })
                .collect();
            (*pid, *ppid, args.trim_end().to_string())
        })
        .collect()
}

fn svc(opt: &str, dir: &Path) {
    let o = run({
        let mut c = harness::ours("svc");
        c.arg(opt).arg(dir);
        c
    });
    assert!(
        o.status.success() && o.stderr.is_empty(),
        "svc {opt}: {}",
        harness::stderr(&o)
    );
}

fn svstat(dir: &Path) -> String {
    harness::stdout(&run({
        let mut c = harness::ours("svstat");
        c.arg(dir);
        c
    }))
}

/// Runs a kit script with SVDIR=`scan`.
fn script(name: &str, scan: &Path, args: &[&str]) -> Output {
    let mut c = harness::cmd(kit(name));
    c.env("SVDIR", scan).args(args);
    harness::run_with_deadline(&mut c, Duration::from_secs(120))
}

/// Waits until `dir` runs a process other than `old`, and the site answers on `port`.
fn wait_restarted(dir: &Path, old: u32, port: u16) -> u32 {
    wait_until(
        SLOW,
        || format!("a new pid (old {old}): {}", svstat(dir)),
        || {
            let p = status_pid(dir);
            p != 0 && p != old && svstat(dir).contains(": up (pid ")
        },
    );
    wait_until(
        SLOW,
        || format!("success on port {port}"),
        || answers_success(port),
    );
    status_pid(dir)
}

/// A scratch tree with a scan dir, watched by our svscan.
struct Tree {
    s: Scratch,
    scan: PathBuf,
    svscan: Running,
}

impl Tree {
    fn new() -> Tree {
        let s = Scratch::new();
        let scan = s.join("service");
        std::fs::create_dir(&scan).unwrap();
        let mut c = harness::ours("svscan");
        c.arg(&scan);
        let svscan = Running::spawn(c, s.path(), "svscan");
        Tree { s, scan, svscan }
    }

    /// Creates the demo site as `s/www/NAME/etc/daemontools` and links it as `scan/NAME`,
    /// as OpenACS does (OPENACS.md §2).
    fn add_site(&self, name: &str, port: u16) -> PathBuf {
        self.add_site_env(name, port, &[])
    }

    /// [`Tree::add_site`] with extra `env/` files, written before the link appears.
    fn add_site_env(&self, name: &str, port: u16, env: &[(&str, &str)]) -> PathBuf {
        let real = self.s.join(format!("www/{name}/etc"));
        std::fs::create_dir_all(&real).unwrap();
        let real = real.join("daemontools");
        demo_site(&real, port);
        for (k, v) in env {
            std::fs::write(real.join("env").join(k), format!("{v}\n")).unwrap();
        }
        let link = self.scan.join(name);
        symlink(&real, &link).unwrap();
        link
    }
}

#[test]
fn walkthrough_link_answer_ps_svc_and_restart_aolserver() {
    let t = Tree::new();
    let port = free_port();
    let site = t.add_site("demo", port);

    // svscan notices the link; supervise starts run and log/run; the server answers.
    wait_until(
        SLOW,
        || format!("success on port {port}; svscan: {}", t.svscan.stderr()),
        || answers_success(port),
    );
    let (code, body) = http_get(port, "/SYSTEM/nothing").unwrap();
    assert_eq!((code, body.as_str()), (404, "not found\n"));
    // supervise/ lives inside the link's target, in the site tree.
    assert!(
        t.s.join("www/demo/etc/daemontools/supervise/status")
            .exists()
    );

    // `ps -auxw | grep service`: svscan, `supervise demo` (and its log), and the server.
    let pid = status_pid(&site);
    let procs = ps_tree(t.svscan.pid());
    let scan_title = format!("svscan {}", t.scan.display());
    assert!(
        procs
            .iter()
            .any(|(p, _, a)| *p == t.svscan.pid() && a.ends_with(&scan_title)),
        "{procs:?}"
    );
    let sup = procs
        .iter()
        .find(|(_, pp, a)| *pp == t.svscan.pid() && a == "supervise demo")
        .unwrap_or_else(|| panic!("no `supervise demo` under svscan: {procs:?}"))
        .0;
    assert!(
        procs
            .iter()
            .any(|(_, pp, a)| *pp == t.svscan.pid() && a == "supervise log"),
        "{procs:?}"
    );
    let server = procs
        .iter()
        .find(|(p, _, _)| *p == pid)
        .unwrap_or_else(|| panic!("server pid {pid} not in ps: {procs:?}"));
    assert_eq!(server.1, sup, "the server is supervise demo's child");
    assert!(
        server
            .2
            .ends_with("standin-nsd -i -t ./config.tcl -u nobody -g nogroup"),
        "{server:?}"
    );

    // svc -d: down, svstat says so, the port no longer answers.
    svc("-d", &site);
    wait_until(SLOW, || svstat(&site), || svstat(&site).contains(": down "));
    wait_until(
        SLOW,
        || "port closed".into(),
        || http_get(port, "/").is_none(),
    );
    assert!(
        svstat(&site).ends_with("seconds, normally up\n"),
        "{}",
        svstat(&site)
    );
    assert!(!harness::pid_alive(pid));

    // svc -u: back.
    svc("-u", &site);
    let pid = wait_restarted(&site, pid, port);

    // svc -t and svc -k: restarted with a new pid each time.
    svc("-t", &site);
    let pid = wait_restarted(&site, pid, port);
    svc("-k", &site);
    let pid = wait_restarted(&site, pid, port);

    // The server's output reached log/run's multilog.
    let current = t.s.join("www/demo/etc/daemontools/log/main/current");
    wait_until(
        SLOW,
        || "log lines".into(),
        || {
            std::fs::read_to_string(&current)
                .map(|s| s.contains("standin-nsd: graceful shutdown"))
                .unwrap_or(false)
        },
    );

    // restart-aolserver NAME (resolved in SVDIR), waiting for the URL: exits 0, new pid.
    let url = format!("http://127.0.0.1:{port}/SYSTEM/dbtest.tcl");
    let o = script(
        "restart-aolserver",
        &t.scan,
        &["-w", "60", "-u", &url, "demo"],
    );
    assert_eq!(
        (o.status.code(), harness::stderr(&o)),
        (Some(0), String::new()),
        "restart-aolserver -w -u"
    );
    let new = status_pid(&site);
    assert!(new != 0 && new != pid, "restart-aolserver left pid {pid}");
    assert!(answers_success(port));
    // Without waiting (the original's behaviour): 0 at once, and the restart happens.
    let o = script("restart-aolserver", &t.scan, &["demo"]);
    assert_eq!(o.status.code(), Some(0), "{}", harness::stderr(&o));
    wait_restarted(&site, new, port);
    // A site that was down is started (svc -d then -u, OPENACS.md §6).
    svc("-d", &site);
    wait_until(SLOW, || svstat(&site), || svstat(&site).contains(": down "));
    let o = script("restart-aolserver", &t.scan, &["-w", "60", "demo"]);
    assert_eq!(o.status.code(), Some(0), "{}", harness::stderr(&o));
    assert!(svstat(&site).contains(": up (pid "));

    // Non-zero for a name that is not supervised, and for bad usage.
    let o = script("restart-aolserver", &t.scan, &["nosuch"]);
    assert_eq!(o.status.code(), Some(100));
    assert_eq!(
        harness::stderr(&o),
        format!(
            "restart-aolserver: fatal: no such service: {}/nosuch\n",
            t.scan.display()
        )
    );
    let idle = t.s.join("idle");
    std::fs::create_dir(&idle).unwrap();
    let o = script("restart-aolserver", &t.scan, &[idle.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(100));
    assert_eq!(
        harness::stderr(&o),
        format!(
            "restart-aolserver: fatal: {} is not supervised: supervise is not running\n",
            idle.display()
        )
    );
    let o = script("restart-aolserver", &t.scan, &[]);
    assert_eq!(o.status.code(), Some(100));
    // A typo among several names restarts nothing.
    let before = status_pid(&site);
    let o = script("restart-aolserver", &t.scan, &["demo", "nosuch"]);
    assert_eq!(o.status.code(), Some(100));
    assert_eq!(status_pid(&site), before);
}

#[test]
fn ab_switch_swaps_ports_waiting_for_each_to_be_down() {
    let t = Tree::new();
    let (pa, pb) = (free_port(), free_port());
    assert_ne!(pa, pb);
    // Each instance drains for a second after TERM with its port still bound, as nsd
    // does (OPENACS.md §4): starting the other one on that port too early would fail.
    let slow = [("oacs_shutdown_delay", "1")];
    let a = t.add_site_env("site-a", pa, &slow);
    let b = t.add_site_env("site-b", pb, &slow);
    wait_until(SLOW, || "site-a up".into(), || answers_success(pa));
    wait_until(SLOW, || "site-b up".into(), || answers_success(pb));
    let (old_a, old_b) = (status_pid(&a), status_pid(&b));

    let o = script(
        "ab-switch",
        &t.scan,
        &["-w", "60", "-c", "127.0.0.1", "site-a", "site-b"],
    );
    assert_eq!(
        (o.status.code(), harness::stderr(&o)),
        (Some(0), String::new()),
        "ab-switch"
    );
    assert_eq!(
        harness::stdout(&o),
        format!("ab-switch: site-b now on port {pa}, site-a on port {pb}\n")
    );
    let port_of = |d: &Path| std::fs::read_to_string(d.join("env/oacs_httpport")).unwrap();
    assert_eq!(port_of(&a), format!("{pb}\n"));
    assert_eq!(port_of(&b), format!("{pa}\n"));
    let (new_a, new_b) = (status_pid(&a), status_pid(&b));
    assert!(new_a != 0 && new_a != old_a && new_b != 0 && new_b != old_b);
    assert!(answers_success(pa) && answers_success(pb));
    // ab-switch waited for each to be down: no instance ever failed to bind.
    for site in ["site-a", "site-b"] {
        let log =
            t.s.join(format!("www/{site}/etc/daemontools/log/main/current"));
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(text.contains("graceful shutdown"), "{site}: {text}");
        assert!(!text.contains("unable to bind"), "{site}: {text}");
    }

    // Errors: usage, and a name that is not a service.
    assert_eq!(
        script("ab-switch", &t.scan, &["site-a"]).status.code(),
        Some(100)
    );
    let o = script("ab-switch", &t.scan, &["site-a", "nosuch"]);
    assert_eq!(o.status.code(), Some(100));
    // Nothing was stopped.
    assert_eq!(status_pid(&a), new_a);
}

#[test]
fn the_demo_script_runs_every_step() {
    let port = free_port();
    let mut c = harness::cmd(kit("demo/run-demo"));
    c.env("DEMO_BIN", harness::bin_dir())
        .env("TMPDIR", std::env::temp_dir())
        .arg(port.to_string());
    let o = harness::run_with_deadline(&mut c, Duration::from_secs(300));
    let out = harness::stdout(&o);
    assert_eq!(
        o.status.code(),
        Some(0),
        "run-demo failed; stderr: {}; output: {}",
        harness::stderr(&o),
        out
    );
    assert!(out.contains("== done: every step behaved as expected\n"));
    assert!(out.contains(&format!(
        "GET http://127.0.0.1:{port}/SYSTEM/dbtest.tcl -> success\n"
    )));
    // It cleaned up: nothing answers on its port any more.
    assert!(http_get(port, "/").is_none());
}
