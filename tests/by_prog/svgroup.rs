//! Tests for svgroup (REFERENCE.md §10, §12.11; OPENACS.md §5) and svcore::perms as used
//! by our supervise: real unprivileged accounts (created with groupadd/useradd, removed on
//! drop) show that a member of the delegated group can run svc, svok and svstat on a
//! service and its log, that anyone else cannot, and that the delegation works before
//! supervise starts and survives restarts, status rewrites and a wiped `supervise/`.
#![allow(clippy::unwrap_used)]

use crate::harness::{
    self, DEADLINE, Running, Scratch, is_supervised, oracle, run, status_pid, wait_until,
};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static SEQ: AtomicU32 = AtomicU32::new(0);

/// Runs an account-management command, retrying while another test (or engineer) holds
/// the passwd/group lock (exit 10 from useradd/groupadd/userdel/groupdel).
fn admin(program: &str, args: &[&str]) -> Output {
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        let mut c = harness::cmd(program);
        c.args(args);
        let o = run(c);
        if o.status.success() || Instant::now() > end {
            return o;
        }
        // Lock contention is the only expected failure; anything else is reported by the
        // caller with the output.
        let busy = o.status.code() == Some(10) || harness::stderr(&o).contains("lock");
        if !busy {
            return o;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A fresh group, a member of it (supplementary, as `web` usually is) and an outsider,
/// all deleted on drop.
pub struct Accounts {
    /// The group to delegate to.
    pub group: String,
    /// A user in `group` (primary group nogroup, `group` supplementary).
    pub member: String,
    /// A user not in `group`.
    pub outsider: String,
}

impl Accounts {
    pub fn new() -> Accounts {
        let tag = format!(
            "{}x{}",
            std::process::id() % 1_000_000,
            SEQ.fetch_add(1, Ordering::SeqCst)
        );
        let a = Accounts {
            group: format!("sv5g{tag}"),
            member: format!("sv5m{tag}"),
            outsider: format!("sv5o{tag}"),
        };
        let o = admin("/usr/sbin/groupadd", &[&a.group]);
        assert!(o.status.success(), "groupadd: {}", harness::stderr(&o));
        for (user, extra) in [(&a.member, Some(&a.group)), (&a.outsider, None)] {
            let mut args = vec!["-M", "-N", "-g", "nogroup", "-s", "/bin/sh"];
            if let Some(g) = extra {
                args.extend(["-G", g.as_str()]);
            }
            args.push(user);
            let o = admin("/usr/sbin/useradd", &args);
            assert!(
                o.status.success(),
                "useradd {user}: {}",
                harness::stderr(&o)
            );
        }
        a
    }

    /// Runs `prog args` as `user` (runuser sets the supplementary groups) in `cwd`.
    pub fn as_user(&self, user: &str, cwd: &Path, prog: &Path, args: &[&str]) -> Output {
        let mut c = harness::cmd("/usr/sbin/runuser");
        c.current_dir(cwd)
            .args(["-u", user, "--"])
            .arg(prog)
            .args(args);
        run(c)
    }

    /// The gid of the delegated group.
    pub fn gid(&self) -> u32 {
        nix::unistd::Group::from_name(&self.group)
            .unwrap()
            .unwrap()
            .gid
            .as_raw()
    }
}

impl Drop for Accounts {
    fn drop(&mut self) {
        for u in [&self.member, &self.outsider] {
            let _ = admin("/usr/sbin/userdel", &[u]);
        }
        let _ = admin("/usr/sbin/groupdel", &[&self.group]);
    }
}

/// The path of our program `name` as the test accounts can run it: a hard link (or a copy)
/// in `scratch/bin`. The checkout itself may live where they cannot go (CI clones as
/// root, possibly under /root), and PATH lookups would then silently fall back to
/// Debian's programs.
fn ubin(scratch: &Path, name: &str) -> PathBuf {
    let dir = scratch.join("bin");
    if !dir.exists() {
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    }
    let dst = dir.join(name);
    if !dst.exists() {
        let src = harness::bin(name);
        harness::place_executable(&src, &dst);
        fs::set_permissions(&dst, fs::Permissions::from_mode(0o755)).unwrap();
    }
    dst
}

/// A scratch dir the test accounts can traverse (tempdirs are 0700).
fn open_scratch() -> Scratch {
    let s = Scratch::new();
    fs::set_permissions(s.path(), fs::Permissions::from_mode(0o755)).unwrap();
    s
}

/// `NAME` with a `log/` service, both `exec sleep 600`.
fn service_with_log(s: &Scratch, name: &str) -> PathBuf {
    let d = s.service(name, "exec sleep 600");
    s.service(&format!("{name}/log"), "exec sleep 600");
    d
}

fn svgroup(cwd: &Path, args: &[&str]) -> (i32, String, String) {
    let mut c = harness::ours("svgroup");
    c.current_dir(cwd).args(args);
    let o = run(c);
    (
        o.status.code().unwrap(),
        harness::stdout(&o),
        harness::stderr(&o),
    )
}

fn mode(p: &Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

fn gid_of(p: &Path) -> u32 {
    fs::metadata(p).unwrap().gid()
}

/// Waits until `pid` of `dir` is a running pid different from `old`.
fn wait_new_pid(dir: &Path, old: u32) -> u32 {
    wait_until(
        DEADLINE,
        || format!("{} to restart (old pid {old})", dir.display()),
        || {
            let p = status_pid(dir);
            p != 0 && p != old
        },
    );
    status_pid(dir)
}

/// Waits until `dir`'s service runs (supervise may be up before it has spawned `run`).
fn wait_up(dir: &Path) {
    wait_until(
        DEADLINE,
        || format!("{} to be up", dir.display()),
        || status_pid(dir) != 0,
    );
}

/// Asserts that the member can svok, svstat and svc -t `dir`, and that it restarts.
fn member_controls(a: &Accounts, cwd: &Path, dir: &Path) {
    let d = dir.to_str().unwrap();
    wait_up(dir);
    let o = a.as_user(&a.member, cwd, &ubin(cwd, "svok"), &[d]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "member svok {d}: {}",
        harness::stderr(&o)
    );
    let o = a.as_user(&a.member, cwd, &ubin(cwd, "svstat"), &[d]);
    let text = harness::stdout(&o);
    assert!(
        text.starts_with(&format!("{d}: up (pid ")),
        "member svstat: {text}"
    );
    let before = status_pid(dir);
    let o = a.as_user(&a.member, cwd, &ubin(cwd, "svc"), &["-t", d]);
    assert_eq!(
        (o.status.code(), harness::stderr(&o)),
        (Some(0), String::new()),
        "member svc -t {d}"
    );
    wait_new_pid(dir, before);
}

/// Asserts that the outsider is refused by svok, svstat and svc, and the service untouched.
fn outsider_refused(a: &Accounts, cwd: &Path, dir: &Path) {
    let d = dir.to_str().unwrap();
    wait_up(dir);
    let before = status_pid(dir);
    let o = a.as_user(&a.outsider, cwd, &ubin(cwd, "svok"), &[d]);
    assert_eq!(o.status.code(), Some(111), "outsider svok {d}");
    assert!(harness::stderr(&o).contains("access denied"), "{o:?}");
    let o = a.as_user(&a.outsider, cwd, &ubin(cwd, "svstat"), &[d]);
    assert_eq!(
        harness::stdout(&o),
        format!("{d}: unable to open supervise/ok: access denied\n")
    );
    for opt in ["-t", "-d", "-k", "-x"] {
        let o = a.as_user(&a.outsider, cwd, &ubin(cwd, "svc"), &[opt, d]);
        // 0.76's svc warns and exits 0 (OPENACS.md gotcha 1).
        assert_eq!(o.status.code(), Some(0));
        assert_eq!(
            harness::stderr(&o),
            format!("svc: warning: unable to control {d}: access denied\n")
        );
    }
    // Nothing was sent (the FIFO never opened), so the same process still runs.
    assert_eq!(status_pid(dir), before, "outsider changed {d}");
    assert!(harness::pid_alive(before));
    assert!(is_supervised(dir));
}

fn start_both(s: &Scratch, dir: &Path, tag: &str) -> (Running, Running) {
    let sup = harness::start_supervise(&harness::bin("supervise"), dir, s.path(), tag);
    let log = harness::start_supervise(
        &harness::bin("supervise"),
        &dir.join("log"),
        s.path(),
        &format!("{tag}-log"),
    );
    wait_until(DEADLINE, || "service up".into(), || status_pid(dir) != 0);
    wait_until(
        DEADLINE,
        || "log up".into(),
        || status_pid(&dir.join("log")) != 0,
    );
    (sup, log)
}

/// Waits until the member's svok succeeds on `dir` (supervise applies the delegation right
/// after creating its files, so "supervised" and "delegated" are two observable steps).
fn wait_member_ok(a: &Accounts, cwd: &Path, dir: &Path) {
    let d = dir.to_str().unwrap();
    wait_until(
        DEADLINE,
        || format!("member svok {d} to succeed"),
        || {
            a.as_user(&a.member, cwd, &ubin(cwd, "svok"), &[d])
                .status
                .success()
        },
    );
}

#[test]
fn member_controls_service_and_log_outsider_is_refused() {
    let a = Accounts::new();
    let s = open_scratch();
    let dir = service_with_log(&s, "site");
    let (_sup, _log) = start_both(&s, &dir, "sup");
    // As the OpenACS docs do: after supervise has started.
    let (code, out, err) = svgroup(s.path(), &[&a.group, dir.to_str().unwrap()]);
    assert_eq!((code, out.as_str(), err.as_str()), (0, "", ""));
    for d in [dir.clone(), dir.join("log")] {
        let sup = d.join("supervise");
        assert_eq!(gid_of(&sup), a.gid());
        assert_eq!(mode(&sup) & 0o777, 0o710, "{}", s.listing());
        for f in ["control", "ok"] {
            assert_eq!(gid_of(&sup.join(f)), a.gid());
            assert_eq!(mode(&sup.join(f)), 0o620);
        }
        assert!(mode(&sup.join("status")) & 0o040 != 0);
        // lock is left alone (root, 0600), as by the original script.
        assert_eq!(mode(&sup.join("lock")), 0o600);
        // Our supervise's s6-style event/ fifodir: members may subscribe (svwait).
        assert_eq!(gid_of(&d.join("event")), a.gid());
        assert_eq!(mode(&d.join("event")), 0o3730);
        let o = a.as_user(
            &a.member,
            s.path(),
            &ubin(s.path(), "svwait"),
            &["-u", "-t", "10", d.to_str().unwrap()],
        );
        assert_eq!(o.status.code(), Some(0), "{}", harness::stderr(&o));
        member_controls(&a, s.path(), &d);
        outsider_refused(&a, s.path(), &d);
    }
    // Several dirs in one call, relative paths with a space.
    let spaced = service_with_log(&s, "my site");
    let (_sup2, _log2) = start_both(&s, &spaced, "sup2");
    let (code, _, err) = svgroup(s.path(), &[&a.group, "my site", "site"]);
    assert_eq!(code, 0, "{err}");
    member_controls(&a, s.path(), &spaced);
    member_controls(&a, s.path(), &spaced.join("log"));
    outsider_refused(&a, s.path(), &spaced);
}

#[test]
fn delegation_before_supervise_started_has_no_gap() {
    let a = Accounts::new();
    let s = open_scratch();
    let dir = service_with_log(&s, "early");
    // No supervise/ yet: the original fails here, ours records the delegation.
    assert!(!dir.join("supervise").exists());
    let (code, out, err) = svgroup(s.path(), &[&a.group, dir.to_str().unwrap()]);
    assert_eq!((code, out.as_str(), err.as_str()), (0, "", ""));
    assert_eq!(
        fs::read_to_string(dir.join("group")).unwrap(),
        format!("{}\n", a.group)
    );
    assert_eq!(
        fs::read_to_string(dir.join("log/group")).unwrap(),
        format!("{}\n", a.group)
    );
    let (list_code, list, _) = svgroup(s.path(), &["-l", "early"]);
    assert_eq!(list_code, 0);
    assert!(
        list.contains(&format!(
            "early: group {}, pending until supervise starts\n",
            a.group
        )),
        "{list}"
    );
    let (_sup, _log) = start_both(&s, &dir, "sup");
    for d in [dir.clone(), dir.join("log")] {
        wait_member_ok(&a, s.path(), &d);
        member_controls(&a, s.path(), &d);
        outsider_refused(&a, s.path(), &d);
    }
    let (_, list, _) = svgroup(s.path(), &["-l", "early"]);
    assert!(
        list.starts_with(&format!(
            "early: group {}\nearly/log: group {}\n",
            a.group, a.group
        )),
        "{list}"
    );
}

#[test]
fn delegation_survives_status_rewrites_restart_and_wiped_supervise() {
    let a = Accounts::new();
    let s = open_scratch();
    let dir = s.service("keep", "exec sleep 600");
    let d = dir.to_str().unwrap().to_string();
    let (code, _, err) = svgroup(s.path(), &[&a.group, &d]);
    assert_eq!(code, 0, "{err}");
    {
        let _sup = harness::start_supervise(&harness::bin("supervise"), &dir, s.path(), "a");
        wait_member_ok(&a, s.path(), &dir);
        // Status rewrites: each state change renames a fresh status over the old one.
        for _ in 0..3 {
            member_controls(&a, s.path(), &dir);
        }
        let o = a.as_user(&a.member, s.path(), &ubin(s.path(), "svc"), &["-d", &d]);
        assert!(o.status.success());
        wait_until(
            DEADLINE,
            || "down".into(),
            || {
                harness::stdout(&run({
                    let mut c = harness::ours("svstat");
                    c.arg(&d);
                    c
                }))
                .contains(": down ")
            },
        );
        let o = a.as_user(&a.member, s.path(), &ubin(s.path(), "svstat"), &[&d]);
        assert!(harness::stdout(&o).contains(": down "), "{o:?}");
        let o = a.as_user(&a.member, s.path(), &ubin(s.path(), "svc"), &["-u", &d]);
        assert!(o.status.success());
        wait_until(DEADLINE, || "up again".into(), || status_pid(&dir) != 0);
        outsider_refused(&a, s.path(), &dir);
        // The member may even stop supervise itself.
        let o = a.as_user(&a.member, s.path(), &ubin(s.path(), "svc"), &["-dx", &d]);
        assert!(o.status.success());
        wait_until(
            DEADLINE,
            || "supervise gone".into(),
            || !is_supervised(&dir),
        );
    }
    // A supervise restart keeps it.
    {
        let _sup = harness::start_supervise(&harness::bin("supervise"), &dir, s.path(), "b");
        wait_member_ok(&a, s.path(), &dir);
        member_controls(&a, s.path(), &dir);
        outsider_refused(&a, s.path(), &dir);
    }
    // A checkout or restore wipes supervise/ (OPENACS.md §2): the group file brings it back.
    wait_until(
        DEADLINE,
        || "supervise gone".into(),
        || !is_supervised(&dir),
    );
    fs::remove_dir_all(dir.join("supervise")).unwrap();
    {
        let _sup = harness::start_supervise(&harness::bin("supervise"), &dir, s.path(), "c");
        wait_member_ok(&a, s.path(), &dir);
        member_controls(&a, s.path(), &dir);
        outsider_refused(&a, s.path(), &dir);
    }
}

#[test]
fn openacs_meaning_on_debians_supervise() {
    // Copy-paste from the OpenACS docs onto a running 0.76 supervise: same files, same
    // effect, and members get control.
    let a = Accounts::new();
    let s = open_scratch();
    let dir = s.service("deb", "exec sleep 600");
    let _sup = harness::start_supervise(&oracle("supervise"), &dir, s.path(), "deb");
    wait_until(DEADLINE, || "up".into(), || status_pid(&dir) != 0);
    let (code, _, err) = svgroup(s.path(), &[&a.group, "deb"]);
    assert_eq!(code, 0, "{err}");
    member_controls(&a, s.path(), &dir);
    outsider_refused(&a, s.path(), &dir);
}

#[test]
fn wait_option_applies_once_a_0_76_supervise_creates_its_files() {
    let a = Accounts::new();
    let s = open_scratch();
    let dir = s.service("late", "exec sleep 600");
    let mut c = harness::ours("svgroup");
    c.current_dir(s.path()).args(["-w", "30", &a.group, "late"]);
    let waiter = Running::spawn(c, s.path(), "waiter");
    // Debian's supervise knows nothing of the group file; svgroup -w waits for ok.
    let _sup = harness::start_supervise(&oracle("supervise"), &dir, s.path(), "deb");
    let mut waiter = waiter;
    let st = waiter.wait_exit(Duration::from_secs(40));
    assert!(st.success(), "svgroup -w: {}", waiter.stderr());
    member_controls(&a, s.path(), &dir);
    outsider_refused(&a, s.path(), &dir);
}

#[test]
fn remove_gives_the_service_back_to_root_only() {
    let a = Accounts::new();
    let s = open_scratch();
    let dir = service_with_log(&s, "rm");
    let (code, _, err) = svgroup(s.path(), &[&a.group, "rm"]);
    assert_eq!(code, 0, "{err}");
    let (_sup, _log) = start_both(&s, &dir, "sup");
    wait_member_ok(&a, s.path(), &dir);
    let (code, out, err) = svgroup(s.path(), &["-r", "rm"]);
    assert_eq!((code, out.as_str(), err.as_str()), (0, "", ""));
    assert!(!dir.join("group").exists() && !dir.join("log/group").exists());
    for d in [dir.clone(), dir.join("log")] {
        assert_eq!(mode(&d.join("supervise")) & 0o777, 0o700);
        assert_eq!(mode(&d.join("supervise/control")), 0o600);
        assert_eq!(mode(&d.join("supervise/ok")), 0o600);
        // Now the member is an outsider like any other.
        let o = a.as_user(
            &a.member,
            s.path(),
            &ubin(s.path(), "svok"),
            &[d.to_str().unwrap()],
        );
        assert_eq!(o.status.code(), Some(111));
    }
    let (_, list, _) = svgroup(s.path(), &["-l", "rm"]);
    assert_eq!(list, "rm: no group\nrm/log: no group\n");
}

#[test]
fn refusals_and_usage() {
    let a = Accounts::new();
    let s = open_scratch();
    let dir = s.service("x", "exec sleep 600");
    let usage = "svgroup: usage: svgroup [ -w secs ] group dir ... | svgroup -l dir ... | svgroup -r dir ...\n";
    // Fewer than two arguments: usage, exit 2 like the original script.
    for args in [
        &[][..],
        &["web"][..],
        &["-l"][..],
        &["-r"][..],
        &["-w", "5", "web"][..],
    ] {
        let (code, out, err) = svgroup(s.path(), args);
        assert_eq!(
            (code, out.as_str(), err.as_str()),
            (2, "", usage),
            "{args:?}"
        );
    }
    let (code, _, err) = svgroup(s.path(), &["-q", "web", "x"]);
    assert_eq!((code, err.as_str()), (2, usage));
    let (code, _, err) = svgroup(s.path(), &["no-such-group-5", "x"]);
    assert_eq!(
        (code, err.as_str()),
        (100, "svgroup: fatal: unknown group no-such-group-5\n")
    );
    let (code, _, err) = svgroup(s.path(), &[&a.group, "x/run"]);
    assert_eq!(
        (code, err.as_str()),
        (
            100,
            "svgroup: fatal: unable to delegate x/run: not a directory\n"
        )
    );
    // A refusal changes nothing, not even for the good dirs before it.
    let (code, _, err) = svgroup(s.path(), &[&a.group, "x", "missing"]);
    assert_eq!(
        (code, err.as_str()),
        (
            100,
            "svgroup: fatal: unable to delegate missing: file does not exist\n"
        )
    );
    assert!(!dir.join("group").exists());
    // A caller who may not change ownership (not root): refused, nothing changed.
    let o = a.as_user(
        &a.member,
        s.path(),
        &ubin(s.path(), "svgroup"),
        &[&a.group, "x"],
    );
    assert_eq!(o.status.code(), Some(100));
    assert_eq!(
        harness::stderr(&o),
        format!(
            "svgroup: fatal: unable to delegate x to group {}: permission denied (run svgroup as root)\n",
            a.group
        )
    );
    assert!(!dir.join("group").exists());
}

#[test]
fn chmod_r_go_rwx_is_undone_and_warned_about() {
    // OPENACS.md gotcha 2: the installer's `chmod -R go+rwX` over the site, including run
    // and supervise/, then supervise (re)starts.
    let a = Accounts::new();
    let s = open_scratch();
    let dir = s.service("hz", "exec sleep 600");
    {
        let _sup = harness::start_supervise(&harness::bin("supervise"), &dir, s.path(), "a");
        harness::run({
            let mut c = harness::cmd("svc");
            c.args(["-dx", dir.to_str().unwrap()]);
            c
        });
        wait_until(
            DEADLINE,
            || "supervise exit".into(),
            || !is_supervised(&dir),
        );
    }
    let o = run({
        let mut c = Command::new("chmod");
        c.args(["-R", "go+rwX", dir.to_str().unwrap()]);
        c
    });
    assert!(o.status.success());
    assert_eq!(mode(&dir.join("supervise/control")), 0o666);
    // Any local user could now control it with 0.76.
    let sup = harness::start_supervise(&harness::bin("supervise"), &dir, s.path(), "b");
    let canon = fs::canonicalize(&dir).unwrap();
    wait_until(
        DEADLINE,
        || format!("hazard warnings; stderr: {}", sup.stderr()),
        || {
            sup.stderr().contains(&format!(
                "supervise: warning: {}/run is writable by group or others and runs as root",
                canon.display()
            ))
        },
    );
    // ... and says what it fixed.
    let stderr = sup.stderr();
    for (f, was, now) in [
        ("supervise/control", "0666", "0660"),
        ("supervise/ok", "0666", "0660"),
    ] {
        let line = format!(
            "supervise: warning: {}/{f} was mode {was}, writable by everyone (any local user could control the service): set to {now}",
            canon.display()
        );
        assert!(stderr.contains(&line), "{line} in {stderr}");
    }
    assert!(
        stderr.contains(&format!(
            "supervise: warning: {}/supervise was mode 0777, writable by group or others: set to 0755",
            canon.display()
        )),
        "{stderr}"
    );
    wait_until(
        DEADLINE,
        || format!("control and ok lose world access: {}", s.listing()),
        || {
            mode(&dir.join("supervise/control")) & 0o007 == 0
                && mode(&dir.join("supervise/ok")) & 0o007 == 0
        },
    );
    assert_eq!(mode(&dir.join("supervise")) & 0o022, 0);
    outsider_refused(&a, s.path(), &dir);
    // svgroup -l shows the remaining hazard (run), as svstat could through perms::hazards.
    let (_, list, _) = svgroup(s.path(), &["-l", "hz"]);
    assert!(list.contains("hz: no group\n"), "{list}");
    assert!(
        list.contains(&format!(
            "hz: hazard: {}/run is writable by group or others and runs as root",
            canon.display()
        )),
        "{list}"
    );
}

#[test]
fn umask_000_never_makes_control_or_ok_world_writable() {
    let a = Accounts::new();
    let s = open_scratch();
    let plain = s.service("plain", "exec sleep 600");
    let deleg = s.service("deleg", "exec sleep 600");
    let (code, _, err) = svgroup(s.path(), &[&a.group, "deleg"]);
    assert_eq!(code, 0, "{err}");
    let mut guards = Vec::new();
    for d in [&plain, &deleg] {
        let mut c = harness::cmd("/bin/sh");
        c.args(["-c", "umask 000; exec \"$0\" \"$1\""])
            .arg(harness::bin("supervise"))
            .arg(d);
        guards.push(Running::spawn(
            c,
            s.path(),
            d.file_name().unwrap().to_str().unwrap(),
        ));
        wait_until(DEADLINE, || "supervised".into(), || is_supervised(d));
        wait_until(DEADLINE, || "up".into(), || status_pid(d) != 0);
    }
    wait_member_ok(&a, s.path(), &deleg);
    for f in ["control", "ok"] {
        assert_eq!(mode(&plain.join("supervise").join(f)), 0o600, "{f}");
        assert_eq!(mode(&deleg.join("supervise").join(f)), 0o620, "{f}");
    }
    assert_eq!(mode(&plain.join("supervise")) & 0o077, 0);
    outsider_refused(&a, s.path(), &plain);
    outsider_refused(&a, s.path(), &deleg);
}

/// The OpenACS svgroup script, as described in OPENACS.md §5 (a loop over `$*` doing
/// chgrp and chmod on the four paths; usage exit 2).
const OPENACS_SVGROUP: &str = r#"#!/bin/sh
if [ $# -lt 2 ]; then
  echo "usage: svgroup group dir ..." >&2
  exit 2
fi
g=$1
shift
for i in $*; do
  chgrp $g $i/supervise/control $i/supervise/ok $i/supervise/status $i/supervise
  chmod g+w $i/supervise/control $i/supervise/ok
  chmod g+r $i/supervise/status
  chmod g+x $i/supervise
done
"#;

#[test]
fn same_files_and_modes_as_the_openacs_script_on_debians_supervise() {
    let a = Accounts::new();
    let s = open_scratch();
    let script = s.join("svgroup.sh");
    harness::write_script(&script, OPENACS_SVGROUP.trim_start_matches("#!/bin/sh\n"));
    let theirs = s.service("theirs", "exec sleep 600");
    let ours = s.service("ours", "exec sleep 600");
    let _g1 = harness::start_supervise(&oracle("supervise"), &theirs, s.path(), "t");
    let _g2 = harness::start_supervise(&oracle("supervise"), &ours, s.path(), "o");
    wait_up(&theirs);
    wait_up(&ours);
    let o = run({
        let mut c = harness::cmd(&script);
        c.current_dir(s.path()).args([&a.group, "theirs"]);
        c
    });
    assert!(o.status.success(), "{}", harness::stderr(&o));
    let (code, _, err) = svgroup(s.path(), &[&a.group, "ours"]);
    assert_eq!(code, 0, "{err}");
    let seen = |d: &Path| -> Vec<(&str, u32, u32)> {
        [
            "supervise",
            "supervise/control",
            "supervise/ok",
            "supervise/status",
            "supervise/lock",
        ]
        .into_iter()
        .map(|f| (f, mode(&d.join(f)), gid_of(&d.join(f))))
        .collect()
    };
    assert_eq!(seen(&ours), seen(&theirs), "{}", s.listing());
    member_controls(&a, s.path(), &ours);
    outsider_refused(&a, s.path(), &ours);
}

#[test]
fn member_restarts_with_restart_aolserver_outsider_cannot() {
    let a = Accounts::new();
    let s = open_scratch();
    let dir = s.service("site", "exec sleep 600");
    let (code, _, err) = svgroup(s.path(), &[&a.group, "site"]);
    assert_eq!(code, 0, "{err}");
    let _sup = harness::start_supervise(&harness::bin("supervise"), &dir, s.path(), "sup");
    wait_member_ok(&a, s.path(), &dir);
    wait_up(&dir);
    // The script and our clients where the accounts can reach them, ours first on PATH.
    for n in ["svc", "svok", "svstat"] {
        ubin(s.path(), n);
    }
    let script = s.join("bin/restart-aolserver");
    harness::place_executable(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/openacs/restart-aolserver"),
        &script,
    );
    let path = format!("{}:{}", s.join("bin").display(), harness::path_env());
    let as_user = |user: &str| {
        let mut c = harness::cmd("/usr/sbin/runuser");
        c.current_dir("/")
            .env("PATH", &path)
            .env("SVDIR", s.path())
            .args(["-u", user, "--"])
            .arg(&script)
            .args(["-w", "30", "site"]);
        harness::run_with_deadline(&mut c, Duration::from_secs(60))
    };
    let before = status_pid(&dir);
    let o = as_user(&a.member);
    assert_eq!(
        (o.status.code(), harness::stderr(&o)),
        (Some(0), String::new()),
        "member restart-aolserver"
    );
    let after = status_pid(&dir);
    assert!(after != 0 && after != before);
    let o = as_user(&a.outsider);
    assert_eq!(o.status.code(), Some(100));
    assert_eq!(
        harness::stderr(&o),
        format!(
            "restart-aolserver: fatal: {}/site is not supervised: svok: fatal: unable to open {}/site/supervise/ok: access denied\n",
            s.path().display(),
            s.path().display()
        )
    );
    assert_eq!(status_pid(&dir), after);
}

/// The statically linked supervise (`cargo build-static`, README's install step) must
/// not go through NSS (static glibc crashes in `getgrnam` when an NSS module is linked
/// against the shared libc): it reads /etc/group itself. A delegation to a group that
/// groupadd put there works as with the dynamic build, and an unknown group is a warning,
/// not a crash.
#[test]
fn static_supervise_reads_etc_group_and_survives_an_unknown_group() {
    let a = Accounts::new();
    let s = open_scratch();
    let dir = s.service("st", "exec sleep 600");
    let (code, _, err) = svgroup(s.path(), &[&a.group, dir.to_str().unwrap()]);
    assert_eq!((code, err.as_str()), (0, ""));
    let sup = harness::static_supervise();
    let r = harness::start_supervise(&sup, &dir, s.path(), "static");
    // Statically linked: no shared C library in its address space.
    let maps = fs::read_to_string(format!("/proc/{}/maps", r.pid())).unwrap();
    assert!(!maps.contains("libc.so"), "{maps}");
    wait_member_ok(&a, s.path(), &dir);
    member_controls(&a, s.path(), &dir);
    outsider_refused(&a, s.path(), &dir);
    let gid = nix::unistd::Group::from_name(&a.group)
        .unwrap()
        .unwrap()
        .gid
        .as_raw();
    assert_eq!(gid_of(&dir.join("supervise/control")), gid);
    assert_eq!(mode(&dir.join("supervise/control")) & 0o7777, 0o620);

    // A group nobody knows: the service runs, the warning says why.
    let lost = s.service("lost", "exec sleep 600");
    fs::write(lost.join("group"), "no-such-group-sv9\n").unwrap();
    let r2 = harness::start_supervise(&sup, &lost, s.path(), "static-lost");
    wait_until(
        DEADLINE,
        || format!("lost up; stderr {}", r2.stderr()),
        || {
            let p = status_pid(&lost);
            p != 0 && harness::pid_alive(p)
        },
    );
    wait_until(
        DEADLINE,
        || r2.stderr(),
        || r2.stderr().contains("unknown group no-such-group-sv9"),
    );
    assert!(is_supervised(&lost));
}
