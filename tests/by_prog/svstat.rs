//! Tests for svstat: every line of REFERENCE.md §5's table, each compared with Debian's
//! svstat where the oracle can produce it, and the other supervisors' formats (§11.7)
//! against the real runsv and s6-supervise.
#![allow(clippy::unwrap_used)]

use crate::harness::{self, Running, Scratch, oracle, ours, run, wait_until};
use std::fs::{self, File};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

/// A stand-in for a running supervise: `supervise/ok` and `supervise/control` exist and
/// this test holds their read ends, so openers see a live supervisor. Lets a test put any
/// bytes in `status` and compare what the programs make of them.
pub struct FakeSupervise {
    pub dir: PathBuf,
    _ok: File,
    pub control: File,
}

impl FakeSupervise {
    pub fn new(dir: &Path) -> FakeSupervise {
        fs::create_dir_all(dir.join("supervise")).unwrap();
        for f in ["ok", "control"] {
            let p = dir.join("supervise").join(f);
            if !p.exists() {
                nix::unistd::mkfifo(&p, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
            }
        }
        FakeSupervise {
            dir: dir.to_path_buf(),
            _ok: svcore::fifo::open_read(&dir.join("supervise/ok")).unwrap(),
            control: svcore::fifo::open_read(&dir.join("supervise/control")).unwrap(),
        }
    }

    /// Reads whatever is queued on the control FIFO.
    pub fn drain_control(&mut self) -> Vec<u8> {
        use std::io::Read;
        let mut v = Vec::new();
        let mut buf = [0u8; 256];
        while let Ok(n) = self.control.read(&mut buf) {
            if n == 0 {
                break;
            }
            v.extend_from_slice(&buf[..n]);
        }
        v
    }

    pub fn status(&self, bytes: &[u8]) {
        fs::write(self.dir.join("supervise/status"), bytes).unwrap();
    }
}

/// An 18-byte status: stamp `unix + offset` seconds, pid, paused, want.
pub fn status18(unix: u64, pid: u32, paused: u8, want: u8) -> Vec<u8> {
    let mut b = svcore::tai64n::Tai64n::from_unix(unix, 500).pack().to_vec();
    b.extend_from_slice(&pid.to_le_bytes());
    b.push(paused);
    b.push(want);
    b
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Runs svstat (ours or Debian's) in `cwd` with `args`.
fn svstat_in(program: &Path, cwd: &Path, args: &[&str]) -> Output {
    let mut c = harness::cmd(program);
    c.current_dir(cwd).args(args);
    run(c)
}

/// Runs both svstats with the same arguments; asserts identical stdout, stderr and exit
/// code, and returns our stdout.
fn same_as_oracle(cwd: &Path, args: &[&str]) -> String {
    // The two runs are a few milliseconds apart, so a `S seconds` count may cross a second
    // boundary between them: run the pair again (at most three times) before comparing.
    let mut attempts = 0;
    let (o, d) = loop {
        let o = svstat_in(&harness::bin("svstat"), cwd, args);
        let d = svstat_in(&oracle("svstat"), cwd, args);
        attempts += 1;
        if o.stdout == d.stdout || attempts == 3 {
            break (o, d);
        }
    };
    assert_eq!(
        harness::stdout(&o),
        harness::stdout(&d),
        "stdout differs for svstat {args:?}"
    );
    assert_eq!(harness::stderr(&o), harness::stderr(&d));
    assert_eq!(o.status.code(), d.status.code());
    assert_eq!(o.status.code(), Some(0));
    harness::stdout(&o)
}

#[test]
fn no_arguments_prints_nothing_and_exits_0() {
    let s = Scratch::new();
    assert_eq!(same_as_oracle(s.path(), &[]), "");
}

#[test]
fn unable_to_chdir_and_options_are_directories() {
    let s = Scratch::new();
    fs::write(s.join("file"), "").unwrap();
    let out = same_as_oracle(s.path(), &["nonexist", "-x", "file"]);
    assert_eq!(
        out,
        "nonexist: unable to chdir: file does not exist\n\
         -x: unable to chdir: file does not exist\n\
         file: unable to chdir: not a directory\n"
    );
}

#[test]
fn unable_to_stat_down() {
    let s = Scratch::new();
    fs::create_dir(s.join("svc")).unwrap();
    std::os::unix::fs::symlink("down", s.join("svc/down")).unwrap();
    let out = same_as_oracle(s.path(), &["svc"]);
    assert_eq!(out, "svc: unable to stat down: symbolic link loop\n");
}

#[test]
fn missing_ok_and_no_reader() {
    let s = Scratch::new();
    fs::create_dir(s.join("never")).unwrap();
    fs::create_dir_all(s.join("gone/supervise")).unwrap();
    nix::unistd::mkfifo(
        &s.join("gone/supervise/ok"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    let out = same_as_oracle(s.path(), &["never", "gone"]);
    assert_eq!(
        out,
        "never: unable to open supervise/ok: file does not exist\n\
         gone: supervise not running\n"
    );
}

#[test]
fn status_missing_short_or_unreadable() {
    let s = Scratch::new();
    let _a = FakeSupervise::new(&s.join("nostatus"));
    let b = FakeSupervise::new(&s.join("short"));
    b.status(&[0x40; 17]);
    let out = same_as_oracle(s.path(), &["nostatus", "short"]);
    assert_eq!(
        out,
        "nostatus: unable to open supervise/status: file does not exist\n\
         short: unable to read supervise/status: bad format\n"
    );
    // A read error. 0.76 compares `r < sizeof status` with r = -1 as unsigned, so it
    // misses the error and prints whatever the previous service left in its static
    // buffer. We print the error, as REFERENCE.md §5's table says (`: ERR`).
    let _c = FakeSupervise::new(&s.join("isdir"));
    fs::create_dir(s.join("isdir/supervise/status")).unwrap();
    let o = svstat_in(&harness::bin("svstat"), s.path(), &["isdir"]);
    assert_eq!(
        harness::stdout(&o),
        "isdir: unable to read supervise/status: is a directory\n"
    );
}

/// Every combination of pid, paused, want and `down` file, in the future (so S is 0 on
/// both sides) and in the past (seconds masked), is printed exactly as Debian's svstat does.
#[test]
fn every_status_combination_matches_the_oracle() {
    let s = Scratch::new();
    let mut names = Vec::new();
    let mut fakes = Vec::new();
    let now = unix_now();
    for (i, (pid, paused, want, down, future)) in [0u32, 4321]
        .into_iter()
        .flat_map(|p| [0u8, 1].map(move |pa| (p, pa)))
        .flat_map(|(p, pa)| [b'u', b'd', 0, b'x'].map(move |w| (p, pa, w)))
        .flat_map(|(p, pa, w)| [false, true].map(move |d| (p, pa, w, d)))
        .flat_map(|(p, pa, w, d)| [false, true].map(move |f| (p, pa, w, d, f)))
        .enumerate()
    {
        let name = format!("s{i}");
        let f = FakeSupervise::new(&s.join(&name));
        let when = if future { now + 1000 } else { now - 100 };
        f.status(&status18(when, pid, paused, want));
        if down {
            fs::write(s.join(&name).join("down"), "").unwrap();
        }
        names.push(name);
        fakes.push(f);
    }
    let args: Vec<&str> = names.iter().map(String::as_str).collect();
    let o = svstat_in(&harness::bin("svstat"), s.path(), &args);
    let d = svstat_in(&oracle("svstat"), s.path(), &args);
    assert_eq!(
        harness::normalize(&harness::stdout(&o)),
        harness::normalize(&harness::stdout(&d))
    );
    let out = harness::stdout(&o);
    // Spot checks of the spec's table, independent of the oracle.
    assert!(out.contains(": up (pid 4321) 0 seconds, normally down, paused, want down\n"));
    assert!(out.contains(": down 0 seconds, normally up, want up\n"));
    assert!(out.contains(": up (pid 4321) 0 seconds\n"));
    assert_eq!(out.lines().count(), names.len());
}

#[test]
fn one_seconds_plural_and_longer_files() {
    let s = Scratch::new();
    let f = FakeSupervise::new(&s.join("a"));
    // Retry across a second boundary: the line must read exactly `1 seconds` at some point.
    wait_until(
        harness::DEADLINE,
        || "svstat to print 1 seconds".into(),
        || {
            f.status(&status18(unix_now() - 1, 0, 0, b'd'));
            harness::stdout(&svstat_in(&harness::bin("svstat"), s.path(), &["a"]))
                == "a: down 1 seconds, normally up\n"
        },
    );
    // A 0.76 reader takes the first 18 bytes of longer files (encore, nosh).
    let mut b = status18(unix_now() + 100, 77, 0, b'u');
    b.extend_from_slice(&[3, 0]);
    f.status(&b);
    assert_eq!(
        same_as_oracle(s.path(), &["a"]),
        "a: up (pid 77) 0 seconds\n"
    );
    b.resize(87, 0);
    f.status(&b);
    assert_eq!(
        same_as_oracle(s.path(), &["a"]),
        "a: up (pid 77) 0 seconds\n"
    );
}

#[test]
fn relative_dirs_after_an_absolute_one() {
    let s = Scratch::new();
    let f = FakeSupervise::new(&s.join("a"));
    f.status(&status18(unix_now() + 100, 0, 0, b'd'));
    let abs = s.join("a");
    let abs = abs.to_str().unwrap();
    let out = same_as_oracle(s.path(), &[abs, "a", abs]);
    assert_eq!(
        out,
        format!(
            "{abs}: down 0 seconds, normally up\na: down 0 seconds, normally up\n{abs}: down 0 seconds, normally up\n"
        )
    );
}

/// As a user who cannot read the current directory, both svstats fail to open `.`.
#[test]
fn unable_to_open_current_directory_exits_111() {
    let s = Scratch::new();
    fs::set_permissions(s.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let cwd = s.join("noread");
    fs::create_dir(&cwd).unwrap();
    fs::set_permissions(&cwd, fs::Permissions::from_mode(0o311)).unwrap();
    for prog in [harness::bin("svstat"), oracle("svstat")] {
        let mut c = harness::cmd(oracle("setuidgid"));
        c.current_dir(&cwd).arg("nobody").arg(&prog).arg("x");
        let o = run(c);
        assert_eq!(o.status.code(), Some(111), "{prog:?}");
        assert_eq!(
            harness::stderr(&o),
            "svstat: fatal: unable to open current directory: access denied\n"
        );
        assert_eq!(harness::stdout(&o), "");
    }
}

#[test]
fn access_denied_on_ok_as_another_user() {
    let s = Scratch::new();
    fs::set_permissions(s.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let dir = s.service("svc", "exec sleep 600");
    let _sup = harness::start_supervise(&oracle("supervise"), &dir, s.path(), "sup");
    for prog in [harness::bin("svstat"), oracle("svstat")] {
        let mut c = harness::cmd(oracle("setuidgid"));
        c.current_dir(s.path()).arg("nobody").arg(&prog).arg("svc");
        let o = run(c);
        assert_eq!(o.status.code(), Some(0));
        assert_eq!(
            harness::stdout(&o),
            "svc: unable to open supervise/ok: access denied\n"
        );
    }
}

#[test]
fn real_supervise_up_then_down() {
    let s = Scratch::new();
    let dir = s.service("svc", "exec sleep 600");
    let _sup = harness::start_supervise(&oracle("supervise"), &dir, s.path(), "sup");
    wait_until(
        harness::DEADLINE,
        || "up".into(),
        || harness::status_pid(&dir) != 0,
    );
    let out = same_as_oracle(s.path(), &["svc"]);
    assert_eq!(harness::normalize(&out), "svc: up (pid PID) S seconds\n");
    let pid = harness::status_pid(&dir);
    assert!(out.contains(&format!("(pid {pid})")));
}

/// runit's runsv: 20-byte status with `supervise/stat`; a 0.76 svstat already reads it
/// through the 18-byte prefix, so ours must print the same.
#[test]
fn runit_service_reads_like_the_oracle() {
    let s = Scratch::new();
    let dir = s.service("svc", "exec sleep 600");
    let mut c = harness::cmd(oracle("runsv"));
    c.arg(&dir);
    let _r = Running::spawn(c, s.path(), "runsv");
    wait_until(
        harness::DEADLINE,
        || format!("runsv up: {:?}", harness::status_bytes(&dir)),
        || {
            let b = harness::status_bytes(&dir);
            b.len() == 20 && b[19] == 1
        },
    );
    let out = same_as_oracle(s.path(), &["svc"]);
    assert_eq!(harness::normalize(&out), "svc: up (pid PID) S seconds\n");
    let mut c = harness::cmd(oracle("sv"));
    c.arg("down").arg(&dir);
    run(c);
    wait_until(
        harness::DEADLINE,
        || "runsv down".into(),
        || harness::status_bytes(&dir).get(19) == Some(&0),
    );
    fs::write(dir.join("down"), "").unwrap();
    let out = same_as_oracle(s.path(), &["svc"]);
    assert_eq!(harness::normalize(&out), "svc: down S seconds\n");
}

/// s6-supervise: 35 bytes, real TAI, no `ok`. Ours reads it (liveness from the fcntl lock);
/// Debian's cannot.
#[test]
fn s6_service_is_read_through_its_lock() {
    let s = Scratch::new();
    let dir = s.service("svc", "exec sleep 600");
    let mut c = harness::cmd(oracle("s6-supervise"));
    c.arg(&dir);
    let mut sup = Running::spawn(c, s.path(), "s6");
    wait_until(
        harness::DEADLINE,
        || format!("s6 up: {:?}", harness::status_bytes(&dir)),
        || {
            let b = harness::status_bytes(&dir);
            b.len() == 35 && b[24..32] != [0; 8]
        },
    );
    let b = harness::status_bytes(&dir);
    let pid = u64::from_be_bytes(b[24..32].try_into().unwrap());
    let o = run({
        let mut c = ours("svstat");
        c.current_dir(s.path()).arg("svc");
        c
    });
    let out = harness::stdout(&o);
    assert!(
        out == format!("svc: up (pid {pid}) 0 seconds\n")
            || out == format!("svc: up (pid {pid}) 1 seconds\n")
            || out == format!("svc: up (pid {pid}) 2 seconds\n"),
        "a fresh s6 service is seconds old, not 27 s: {out}"
    );
    let d = svstat_in(&oracle("svstat"), s.path(), &["svc"]);
    assert_eq!(
        harness::stdout(&d),
        "svc: unable to open supervise/ok: file does not exist\n"
    );
    // Down, then the supervisor gone.
    let mut c = harness::cmd(oracle("s6-svc"));
    c.arg("-d").arg(&dir);
    run(c);
    wait_until(
        harness::DEADLINE,
        || "s6 down".into(),
        || harness::status_bytes(&dir).get(24..32) == Some(&[0; 8]),
    );
    let out = harness::stdout(&svstat_in(&harness::bin("svstat"), s.path(), &["svc"]));
    assert_eq!(
        harness::normalize(&out),
        "svc: down S seconds, normally up\n"
    );
    let mut c = harness::cmd(oracle("s6-svc"));
    c.arg("-x").arg(&dir);
    run(c);
    sup.wait_exit(harness::DEADLINE);
    let out = harness::stdout(&svstat_in(&harness::bin("svstat"), s.path(), &["svc"]));
    assert_eq!(out, "svc: supervise not running\n");
}

// ---- Machine-readable outputs (REFERENCE.md §12.3) ----

fn ours_in(cwd: &Path, args: &[&str]) -> Output {
    let mut c = ours("svstat");
    c.current_dir(cwd).args(args);
    run(c)
}

/// Starts our supervise on `s/NAME` (cwd-relative name, as users type it).
fn our_supervise(s: &Scratch, name: &str, body: &str) -> (PathBuf, Running) {
    let dir = s.service(name, body);
    let r = harness::start_supervise(&harness::bin("supervise"), &dir, s.path(), name);
    // The sidecar is written just after `status`: wait until it describes the same run.
    wait_until(
        harness::DEADLINE,
        || format!("{name} up: {:?}", harness::status_bytes(&dir)),
        || {
            let pid = harness::status_pid(&dir);
            pid != 0
                && fs::read_to_string(dir.join("supervise/status.ext"))
                    .is_ok_and(|t| t.contains(&format!("\npid {pid}\n")))
        },
    );
    (dir, r)
}

fn json_of(cwd: &Path, dirs: &[&str]) -> serde_json::Value {
    let mut args = vec!["--json"];
    args.extend_from_slice(dirs);
    let o = ours_in(cwd, &args);
    assert_eq!(o.status.code(), Some(0), "{}", harness::stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", harness::stdout(&o)))
}

/// The sidecar's counters show up once our supervise has restarted the service.
#[test]
fn json_with_our_supervise_shows_restarts_and_last_exit() {
    let s = Scratch::new();
    let (dir, _sup) = our_supervise(&s, "svc", "exec sleep 600");
    let first = harness::status_pid(&dir);
    let mut c = ours("svc");
    c.current_dir(s.path()).args(["-k", "svc"]);
    run(c);
    let v = std::cell::RefCell::new(serde_json::Value::Null);
    wait_until(
        harness::DEADLINE,
        || format!("a restart in svstat --json: {}", v.borrow()),
        || {
            let j = json_of(s.path(), &["svc"]);
            let done = j[0]["restarts"] == 1 && j[0]["up"] == true && j[0]["pid"] != first;
            *v.borrow_mut() = j;
            done
        },
    );
    let v = v.into_inner();
    let o = &v[0];
    assert_eq!(o["dir"], "svc");
    assert_eq!(o["supervised"], true);
    assert_eq!(o["format"], "daemontools");
    assert_eq!(o["want"], "up");
    assert_eq!(o["normally_up"], true);
    assert_eq!(o["deaths"], 1);
    assert_eq!(o["last_exit"]["signal"], 9);
    assert_eq!(o["last_exit"]["name"], "SIGKILL");
    assert_eq!(o["history"].as_array().unwrap().len(), 1);
    assert_eq!(o["history"][0]["pid"], first);
    assert!(
        o["summary"]
            .as_str()
            .unwrap()
            .starts_with("last signal SIGKILL, 1 deaths in ")
    );
    assert_eq!(o["pid"], u64::from(harness::status_pid(&dir)));
}

/// Against Debian's supervise, s6 and nothing: what the status gives, nulls for the rest.
#[test]
fn json_over_other_supervisors_and_errors() {
    let s = Scratch::new();
    let d = s.service("dt", "exec sleep 600");
    let _dt = harness::start_supervise(&oracle("supervise"), &d, s.path(), "dt");
    let s6 = s.service("s6", "exec sleep 600");
    let mut c = harness::cmd(oracle("s6-supervise"));
    c.arg(&s6);
    let _s6 = Running::spawn(c, s.path(), "s6");
    for dir in [&d, &s6] {
        wait_until(
            harness::DEADLINE,
            || format!("{dir:?} up"),
            || {
                harness::stdout(&ours_in(s.path(), &["-o", "up", dir.to_str().unwrap()]))
                    == "true\n"
            },
        );
    }
    let v = json_of(s.path(), &["dt", "s6", "nonexist"]);
    let a = v.as_array().unwrap();
    assert_eq!(a.len(), 3);
    assert_eq!(a[0]["format"], "daemontools");
    assert_eq!(a[0]["up"], true);
    assert_eq!(a[0]["restarts"], serde_json::Value::Null);
    assert_eq!(a[0]["ready"], true, "no readiness: up is ready");
    assert_eq!(a[1]["format"], "s6");
    assert_eq!(a[1]["up"], true);
    assert!(
        a[1]["seconds"].as_u64().unwrap() < 20,
        "s6 real-TAI stamp converted"
    );
    assert_eq!(a[2]["supervised"], false);
    assert_eq!(a[2]["error"], "unable to chdir: file does not exist");
}

#[test]
fn fields_output_and_exit_codes() {
    let s = Scratch::new();
    let (dir, _sup) = our_supervise(&s, "svc", "exec sleep 600");
    fs::write(dir.join("down"), "").unwrap();
    let o = ours_in(
        s.path(),
        &[
            "-o",
            "up,wantedup,normallyup,paused,pid,exitcode,signal,signum,format,want,dir",
            "svc",
        ],
    );
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        harness::stdout(&o),
        format!(
            "true true false false {} -1 NA -1 daemontools up svc\n",
            harness::status_pid(&dir)
        )
    );
    // Down after TERM: the death's signal.
    let mut c = ours("svc");
    c.current_dir(s.path()).args(["-d", "svc"]);
    run(c);
    wait_until(
        harness::DEADLINE,
        || "down with a signal".into(),
        || {
            harness::stdout(&ours_in(
                s.path(),
                &["-o", "up,exitcode,signal,signum,pid", "svc"],
            )) == "false -1 SIGTERM 15 -1\n"
        },
    );
    // An unreadable DIR: a warning, no line, exit 1.
    let o = ours_in(s.path(), &["-o", "up", "nonexist", "svc"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(harness::stdout(&o), "false\n");
    assert_eq!(
        harness::stderr(&o),
        "svstat: warning: nonexist: unable to chdir: file does not exist\n"
    );
    // Usage errors.
    let o = ours_in(s.path(), &["-o", "up,bogus", "svc"]);
    assert_eq!(o.status.code(), Some(100));
    assert_eq!(harness::stderr(&o), "svstat: fatal: unknown field: bogus\n");
    let o = ours_in(s.path(), &["-o"]);
    assert_eq!(o.status.code(), Some(100));
}

/// A checker for the Prometheus text exposition format (version 0.0.4): HELP/TYPE once per
/// family and before its samples, families contiguous, valid names, label escapes and
/// values, no duplicate series, counters named `_total`, a final newline.
fn check_prometheus(text: &str) -> Vec<(String, String, f64)> {
    use std::collections::{HashMap, HashSet};
    assert!(text.ends_with('\n'), "must end with a newline");
    let name_ok = |n: &str| {
        let mut c = n.chars();
        c.next()
            .is_some_and(|f| f.is_ascii_alphabetic() || f == '_' || f == ':')
            && c.all(|x| x.is_ascii_alphanumeric() || x == '_' || x == ':')
    };
    let mut types: HashMap<String, String> = HashMap::new();
    let mut helps: HashSet<String> = HashSet::new();
    let mut done: HashSet<String> = HashSet::new();
    let mut series: HashSet<String> = HashSet::new();
    let mut current = String::new();
    let mut samples = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap();
            assert!(name_ok(name), "{line}");
            assert!(helps.insert(name.to_string()), "HELP twice: {line}");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut it = rest.split(' ');
            let (name, kind) = (it.next().unwrap(), it.next().unwrap());
            assert!(["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind));
            assert!(
                !done.contains(name) && current != name,
                "TYPE after samples: {line}"
            );
            assert!(
                types.insert(name.into(), kind.into()).is_none(),
                "TYPE twice: {line}"
            );
            if kind == "counter" {
                assert!(name.ends_with("_total"), "counter not _total: {name}");
            }
            continue;
        }
        assert!(!line.starts_with('#') || line.starts_with("# "), "{line}");
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let brace = line.find('{').unwrap();
        let name = &line[..brace];
        assert!(name_ok(name), "{line}");
        assert!(types.contains_key(name), "sample before TYPE: {line}");
        if name != current {
            assert!(!done.contains(name), "family not contiguous: {name}");
            if !current.is_empty() {
                done.insert(current.clone());
            }
            current = name.to_string();
        }
        // Labels: k="v" pairs with \\ \" \n escapes only.
        let b = line.as_bytes();
        let mut i = brace + 1;
        let mut labels = String::new();
        while b[i] != b'}' {
            let eq = i + line[i..].find('=').unwrap();
            let k = &line[i..eq];
            assert!(name_ok(k) && !k.contains(':'), "label name {k}");
            assert_eq!(b[eq + 1], b'"', "{line}");
            let mut j = eq + 2;
            let mut v = String::new();
            while b[j] != b'"' {
                if b[j] == b'\\' {
                    assert!(
                        matches!(b[j + 1], b'\\' | b'"' | b'n'),
                        "bad escape: {line}"
                    );
                    v.push(b[j + 1] as char);
                    j += 2;
                } else {
                    v.push(b[j] as char);
                    j += 1;
                }
            }
            labels.push_str(&format!("{k}={v};"));
            i = j + 1;
            if b[i] == b',' {
                i += 1;
            }
        }
        let rest = &line[i + 1..];
        let value = rest.strip_prefix(' ').expect("one space before the value");
        let v: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value: {line}"));
        assert!(
            series.insert(format!("{name}{{{labels}}}")),
            "duplicate series: {line}"
        );
        samples.push((name.to_string(), labels, v));
    }
    samples
}

#[test]
fn prometheus_output_follows_the_text_format() {
    let s = Scratch::new();
    let (dir, _sup) = our_supervise(&s, "web", "exec sleep 600");
    let _f = FakeSupervise::new(&s.join("odd\"name"));
    let o = ours_in(s.path(), &["--prometheus", "web", "nonexist", "odd\"name"]);
    assert_eq!(o.status.code(), Some(0));
    let text = harness::stdout(&o);
    let samples = check_prometheus(&text);
    let get = |n: &str, svc: &str| {
        samples
            .iter()
            .find(|(name, l, _)| name == n && *l == format!("service={svc};"))
            .map(|s| s.2)
    };
    assert_eq!(get("svc_up", "web"), Some(1.0));
    assert_eq!(get("svc_supervised", "web"), Some(1.0));
    assert_eq!(
        get("svc_pid", "web"),
        Some(f64::from(harness::status_pid(&dir)))
    );
    assert_eq!(get("svc_restarts_total", "web"), Some(0.0));
    assert_eq!(get("svc_up", "nonexist"), Some(0.0));
    assert_eq!(get("svc_supervised", "nonexist"), Some(0.0));
    assert_eq!(get("svc_pid", "nonexist"), None);
    // The fake has no status file: supervised but unreadable, so not "supervised".
    assert_eq!(get("svc_supervised", "odd\"name"), Some(0.0));
    assert!(text.contains("svc_up{service=\"odd\\\"name\"} 0\n"));
}

/// Issue 6: the failing state and the health probe's result, from our supervise's sidecar.
#[test]
fn health_and_failing_state_from_the_sidecar() {
    let s = Scratch::new();
    let web = s.service("web", "exec sleep 600");
    fs::write(
        web.join("service.toml"),
        "[health]\ncommand = \"exit 1\"\ninterval = 100\ntimeout = 5000\nfailures = 1000\ngrace = 100\n",
    )
    .unwrap();
    let crash = s.service("crash", "exit 1");
    fs::write(
        crash.join("service.toml"),
        "[backoff]\ninitial = 100\nmax = 200\nfactor = 2\nreset-after = 10000\n",
    )
    .unwrap();
    let _w = harness::start_supervise(&harness::bin("supervise"), &web, s.path(), "web");
    let _c = harness::start_supervise(&harness::bin("supervise"), &crash, s.path(), "crash");
    let last = std::cell::RefCell::new(String::new());
    wait_until(
        harness::DEADLINE,
        || format!("a failed probe: {}", last.borrow()),
        || {
            let o = harness::stdout(&ours_in(
                s.path(),
                &["-o", "health,healthfailures,healthrestarts", "web"],
            ));
            *last.borrow_mut() = o.clone();
            o.starts_with("fail ") && o.ends_with(" 0\n")
        },
    );
    wait_until(
        harness::DEADLINE,
        || format!("a crash loop: {}", last.borrow()),
        || {
            let o = harness::stdout(&ours_in(s.path(), &["-o", "state,backoff", "crash"]));
            *last.borrow_mut() = o.clone();
            o == "failing 200\n"
        },
    );
    let v = json_of(s.path(), &["web", "crash"]);
    assert_eq!(v[0]["health"]["result"], "fail");
    assert!(v[0]["health"]["failures"].as_u64().unwrap() >= 1);
    assert_eq!(v[0]["health"]["restarts"], 0);
    assert_eq!(v[1]["health"]["result"], serde_json::Value::Null);
    // The state may have moved on to a new start since; the sidecar's backoff stays.
    assert_eq!(v[1]["backoff_ms"], 200);
    assert!(v[1]["deaths"].as_u64().unwrap() >= 2);
    let text = harness::stdout(&ours_in(s.path(), &["--prometheus", "web", "crash"]));
    check_prometheus(&text);
    assert!(
        text.contains("svc_health_ok{service=\"web\"} 0\n"),
        "{text}"
    );
    assert!(!text.contains("svc_health_ok{service=\"crash\"}"), "{text}");
    assert!(text.contains("svc_health_restarts_total{service=\"web\"} 0\n"));
    assert!(text.contains("svc_failing{service=\"web\"} 0\n"));
    // The 0.76 line does not change.
    let line = harness::stdout(&ours_in(s.path(), &["web"]));
    assert!(line.starts_with("web: up (pid "), "{line}");
    assert!(line.ends_with(" seconds\n"), "{line}");
}

/// Issue 5's security point: a root service whose `run` others may write (the OpenACS
/// installer's `chmod -R go+rwX`) is shown by `svstat -o hazards`, `--json` and
/// `--prometheus`; the 0.76 line stays as it was.
#[test]
fn permission_hazards_are_shown() {
    use std::os::unix::fs::PermissionsExt;
    let s = Scratch::new();
    let (dir, _sup) = our_supervise(&s, "web", "exec sleep 600");
    let o = ours_in(s.path(), &["-o", "hazards", "web"]);
    assert_eq!(harness::stdout(&o), "0\n");
    fs::set_permissions(dir.join("run"), fs::Permissions::from_mode(0o777)).unwrap();
    let o = ours_in(s.path(), &["-o", "up,hazards", "web"]);
    assert_eq!(
        (o.status.code(), harness::stdout(&o)),
        (Some(0), "true 1\n".into())
    );
    let v = json_of(s.path(), &["web"]);
    let list = v[0]["hazards"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{v}");
    assert!(
        list[0]
            .as_str()
            .unwrap()
            .contains("web/run is writable by group or others"),
        "{v}"
    );
    let o = ours_in(s.path(), &["--prometheus", "web"]);
    let samples = check_prometheus(&harness::stdout(&o));
    assert!(
        samples
            .iter()
            .any(|(n, l, v)| n == "svc_permission_hazards" && l == "service=web;" && *v == 1.0),
        "{samples:?}"
    );
    let o = ours_in(s.path(), &["web"]);
    assert_eq!(
        harness::normalize(&harness::stdout(&o)),
        "web: up (pid PID) S seconds\n"
    );
}
