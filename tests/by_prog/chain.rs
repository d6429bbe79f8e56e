//! Differential tests of the chain-loaders (REFERENCE.md §9): setuidgid, envuidgid,
//! envdir, softlimit, setlock, pgrphack and fghack, each run side by side with Debian's
//! daemontools binary on the same arguments, comparing stdout, stderr and exit code (and
//! for the environment changers, the child's `env` output).
#![allow(clippy::unwrap_used)]

use crate::harness::{self, Running, Scratch, oracle, run, wait_until};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

/// What one run produced: exit code (None when killed by a signal), stdout, stderr.
type Outcome = (Option<i32>, String, String);

/// Runs `prog args` with the harness environment (cleared, PATH ours-first) plus `env`,
/// in `cwd`.
fn outcome(prog: &Path, args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> Outcome {
    let mut c: Command = harness::cmd(prog);
    c.current_dir(cwd).args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    let o = run(c);
    (o.status.code(), harness::stdout(&o), harness::stderr(&o))
}

/// Runs our `name` and Debian's with the same arguments; asserts identical outcomes and
/// returns ours.
fn both_env(name: &str, args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> Outcome {
    let ours = outcome(&harness::bin(name), args, cwd, env);
    let theirs = outcome(&oracle(name), args, cwd, env);
    assert_eq!(ours, theirs, "ours vs Debian's {name} {args:?}");
    ours
}

fn both(name: &str, args: &[&str], cwd: &Path) -> Outcome {
    both_env(name, args, cwd, &[])
}

fn out(code: i32, stdout: &str, stderr: &str) -> Outcome {
    (Some(code), stdout.to_string(), stderr.to_string())
}

// ---- usage, for every program -------------------------------------------------------

#[test]
fn usage_lines_and_exit_codes() {
    let s = Scratch::new();
    let cases: &[(&str, &[&str], i32, &str)] = &[
        (
            "setuidgid",
            &[],
            100,
            "setuidgid: usage: setuidgid account child\n",
        ),
        (
            "setuidgid",
            &["root"],
            100,
            "setuidgid: usage: setuidgid account child\n",
        ),
        (
            "envuidgid",
            &["root"],
            100,
            "envuidgid: usage: envuidgid account child\n",
        ),
        // envdir's usage exits 111: a quirk to keep (REFERENCE.md §9).
        ("envdir", &[], 111, "envdir: usage: envdir dir child\n"),
        ("envdir", &["."], 111, "envdir: usage: envdir dir child\n"),
        (
            "setlock",
            &["lk"],
            100,
            "setlock: usage: setlock [ -nNxX ] file program [ arg ... ]\n",
        ),
        ("pgrphack", &[], 100, "pgrphack: usage: pgrphack child\n"),
        ("fghack", &[], 100, "fghack: usage: fghack child\n"),
    ];
    for (name, args, code, err) in cases {
        assert_eq!(both(name, args, s.path()), out(*code, "", err), "{name}");
    }
    let long = "softlimit: usage: softlimit [-a allbytes] [-c corebytes] [-d databytes] [-f filebytes] [-l lockbytes] [-m membytes] [-o openfiles] [-p processes] [-r residentbytes] [-s stackbytes] [-t cpusecs] child\n";
    assert_eq!(both("softlimit", &[], s.path()), out(100, "", long));
    assert_eq!(
        both("softlimit", &["-o", "10"], s.path()),
        out(100, "", long)
    );
    // Unknown options: sgetopt's "illegal option" line first, then usage.
    for name in ["softlimit", "setlock"] {
        let o = both(name, &["-Z", "x", "true"], s.path());
        assert_eq!(o.0, Some(100), "{name}: {o:?}");
        assert!(o.2.contains("usage:"), "{name}: {o:?}");
    }
}

#[test]
fn exec_failure_is_unable_to_run_111() {
    let s = Scratch::new();
    fs::create_dir(s.join("env")).unwrap();
    let cases: &[(&str, &[&str])] = &[
        ("setuidgid", &["nobody", "no-such-program-5"]),
        ("envuidgid", &["nobody", "no-such-program-5"]),
        ("envdir", &["env", "no-such-program-5"]),
        ("softlimit", &["-o", "=", "no-such-program-5"]),
        ("setlock", &["lk", "no-such-program-5"]),
        ("pgrphack", &["no-such-program-5"]),
        ("fghack", &["no-such-program-5"]),
        ("pgrphack", &["/nonexistent/prog"]),
    ];
    for (name, args) in cases {
        let child = args.last().unwrap();
        assert_eq!(
            both(name, args, s.path()),
            out(
                111,
                "",
                &format!("{name}: fatal: unable to run {child}: file does not exist\n")
            ),
            "{name}"
        );
    }
    // A file that is not executable: access denied.
    fs::write(s.join("plain"), "x").unwrap();
    assert_eq!(
        both("pgrphack", &["./plain"], s.path()),
        out(
            111,
            "",
            "pgrphack: fatal: unable to run ./plain: access denied\n"
        )
    );
}

// ---- setuidgid, envuidgid -----------------------------------------------------------

#[test]
fn setuidgid_switches_ids_and_drops_supplementary_groups() {
    let s = Scratch::new();
    let o = both("setuidgid", &["nobody", "id"], s.path());
    assert_eq!(o.0, Some(0));
    assert!(o.1.starts_with("uid=65534(nobody)"), "{o:?}");
    // Only the primary group remains (setgroups to one gid).
    let groups = both(
        "setuidgid",
        &[
            "nobody",
            "sh",
            "-c",
            "id -G; grep '^Groups' /proc/self/status",
        ],
        s.path(),
    );
    assert_eq!(groups.1.lines().next(), Some("65534"), "{groups:?}");
    // The environment is left alone.
    let env = both_env("setuidgid", &["nobody", "env"], s.path(), &[("KEEP", "me")]);
    assert!(env.1.contains("KEEP=me\n"), "{env:?}");
    assert_eq!(
        both("setuidgid", &["no-such-account-5", "true"], s.path()),
        out(
            111,
            "",
            "setuidgid: fatal: unknown account no-such-account-5\n"
        )
    );
}

#[test]
fn setuidgid_as_non_root_cannot_setgid() {
    let s = Scratch::new();
    // Drop to nobody with Debian's setuidgid, then ask both to become root.
    let go = |prog: &Path| {
        let mut c = harness::cmd(oracle("setuidgid"));
        c.current_dir(s.path())
            .arg("nobody")
            .arg(prog)
            .args(["root", "true"]);
        let o = run(c);
        out(
            o.status.code().unwrap(),
            &harness::stdout(&o),
            &harness::stderr(&o),
        )
    };
    // Ours from a copy nobody can reach: the checkout may live under a 0700 directory.
    fs::set_permissions(s.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let copy = s.join("setuidgid");
    harness::place_executable(&harness::bin("setuidgid"), &copy);
    let ours = go(&copy);
    assert_eq!(ours, go(&oracle("setuidgid")));
    assert_eq!(ours.0, Some(111));
    assert!(
        ours.2.starts_with("setuidgid: fatal: unable to setgid: "),
        "{ours:?}"
    );
}

#[test]
fn envuidgid_sets_uid_and_gid_only() {
    let s = Scratch::new();
    let o = both("envuidgid", &["nobody", "env"], s.path());
    assert_eq!(o.0, Some(0));
    assert!(
        o.1.contains("UID=65534\n") && o.1.contains("GID=65534\n"),
        "{o:?}"
    );
    // It changes no ids itself.
    let id = both("envuidgid", &["nobody", "id", "-u"], s.path());
    assert_eq!(id, out(0, "0\n", ""));
    // Existing UID/GID are replaced.
    let o = both_env(
        "envuidgid",
        &["root", "env"],
        s.path(),
        &[("UID", "7"), ("GID", "8")],
    );
    assert!(o.1.contains("UID=0\n") && o.1.contains("GID=0\n"), "{o:?}");
    assert!(!o.1.contains("UID=7"), "{o:?}");
    assert_eq!(
        both("envuidgid", &["no-such-account-5", "env"], s.path()),
        out(
            111,
            "",
            "envuidgid: fatal: unknown account no-such-account-5\n"
        )
    );
}

// ---- envdir -------------------------------------------------------------------------

#[test]
fn envdir_sets_unsets_and_trims_like_debian() {
    let s = Scratch::new();
    let e = s.join("env");
    fs::create_dir(&e).unwrap();
    fs::write(e.join("PLAIN"), "value\n").unwrap();
    fs::write(e.join("NONL"), "no newline").unwrap();
    fs::write(e.join("TRAIL"), "spaces and tabs \t \t\n").unwrap();
    fs::write(e.join("MULTI"), "first\nsecond\nthird\n").unwrap();
    fs::write(e.join("NUL"), b"a\0b\0c\n").unwrap();
    fs::write(e.join("EMPTYLINE"), "\n").unwrap();
    fs::write(e.join("GONE"), "").unwrap();
    fs::write(e.join(".hidden"), "ignored\n").unwrap();
    fs::write(e.join("LEAD"), "  leading kept\n").unwrap();
    fs::write(e.join("oacs_httpport"), "8001\n").unwrap();
    // A dangling symlink: 0.76 reuses the previous entry's buffer (the value depends on
    // readdir order); comparing with Debian's output below pins ours to the same quirk.
    std::os::unix::fs::symlink("nowhere", e.join("DANGLING")).unwrap();
    let o = both_env(
        "envdir",
        &["env", "env"],
        s.path(),
        &[("GONE", "was set"), ("PLAIN", "old")],
    );
    assert_eq!(o.0, Some(0), "{o:?}");
    let text = &o.1;
    for want in [
        "PLAIN=value\n",
        "NONL=no newline\n",
        "TRAIL=spaces and tabs\n",
        "MULTI=first\n",
        "NUL=a\nb\nc\n",
        "EMPTYLINE=\n",
        "LEAD=  leading kept\n",
        "oacs_httpport=8001\n",
    ] {
        assert!(text.contains(want), "missing {want:?} in {text}");
    }
    assert!(!text.contains("GONE="), "{text}");
    assert!(!text.contains("hidden"), "{text}");
    assert!(!text.contains("PLAIN=old"), "{text}");
}

#[test]
fn envdir_errors_are_111() {
    let s = Scratch::new();
    assert_eq!(
        both("envdir", &["missing", "true"], s.path()),
        out(
            111,
            "",
            "envdir: fatal: unable to switch to directory missing: file does not exist\n"
        )
    );
    fs::write(s.join("file"), "x").unwrap();
    assert_eq!(
        both("envdir", &["file", "true"], s.path()),
        out(
            111,
            "",
            "envdir: fatal: unable to switch to directory file: not a directory\n"
        )
    );
    fs::create_dir_all(s.join("env/SUB")).unwrap();
    assert_eq!(
        both("envdir", &["env", "true"], s.path()),
        out(
            111,
            "",
            "envdir: fatal: unable to read env/SUB: is a directory\n"
        )
    );
}

#[test]
fn envdir_in_a_chain_like_a_run_script() {
    // The A/B pattern of OPENACS.md §3: envdir ./env setuidgid USER CHILD.
    let s = Scratch::new();
    let e = s.join("env");
    fs::create_dir(&e).unwrap();
    fs::write(e.join("oacs_httpport"), "8002\n").unwrap();
    let mut c = harness::cmd(harness::bin("envdir"));
    c.current_dir(s.path()).args([
        "env",
        harness::bin("setuidgid").to_str().unwrap(),
        "nobody",
        "sh",
        "-c",
        "echo $oacs_httpport $(id -u)",
    ]);
    let o = run(c);
    assert_eq!(
        harness::stdout(&o),
        "8002 65534\n",
        "{}",
        harness::stderr(&o)
    );
}

// ---- softlimit ----------------------------------------------------------------------

#[test]
fn softlimit_sets_soft_limits_like_debian() {
    let s = Scratch::new();
    let show = ["sh", "-c", "ulimit -S -a; echo; ulimit -H -a"];
    for opts in [
        vec!["-o", "50"],
        vec!["-o", "="],
        vec!["-p", "="],
        vec!["-c", "0"],
        vec!["-d", "300000000", "-s", "1000000"],
        vec!["-m", "400000000"],
        vec!["-a", "500000000"],
        vec![
            "-f",
            "1000000",
            "-t",
            "100",
            "-r",
            "100000000",
            "-l",
            "65536",
        ],
        // Above the hard limit: clamped to it.
        vec!["-o", "999999999999"],
    ] {
        let mut args = opts.clone();
        args.extend_from_slice(&show);
        let o = both("softlimit", &args, s.path());
        assert_eq!(o.0, Some(0), "{opts:?}: {o:?}");
    }
    let o = both(
        "softlimit",
        &["-o", "50", "sh", "-c", "ulimit -S -n"],
        s.path(),
    );
    assert_eq!(o, out(0, "50\n", ""));
}

#[test]
fn softlimit_rejects_a_non_number() {
    let s = Scratch::new();
    let o = both("softlimit", &["-o", "lots", "true"], s.path());
    assert_eq!(o.0, Some(100), "{o:?}");
    assert!(
        o.2.starts_with("softlimit: usage: softlimit [-a allbytes]"),
        "{o:?}"
    );
}

// ---- setlock ------------------------------------------------------------------------

/// Holds `lk` in `dir` with Debian's setlock around a child that marks itself and sleeps.
fn hold_lock(s: &Scratch) -> Running {
    let mut c = harness::cmd(oracle("setlock"));
    c.current_dir(s.path())
        .args(["lk", "sh", "-c", "touch held; exec sleep 600"]);
    let r = Running::spawn(c, s.path(), "holder");
    wait_until(
        harness::DEADLINE,
        || format!("lock holder to start; stderr: {}", r.stderr()),
        || s.join("held").exists(),
    );
    r
}

#[test]
fn setlock_runs_the_child_and_creates_the_file_0600() {
    let s = Scratch::new();
    let o = both("setlock", &["lk", "sh", "-c", "echo ran; exit 7"], s.path());
    assert_eq!(o, out(7, "ran\n", ""));
    let mode = fs::metadata(s.join("lk")).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // The lock is inherited by the child: a nested -n attempt fails while it runs.
    for prog in [harness::bin("setlock"), oracle("setlock")] {
        let o = outcome(&prog, &["lk", "setlock", "-n", "lk", "true"], s.path(), &[]);
        assert_eq!(
            o,
            out(
                111,
                "",
                "setlock: fatal: unable to lock lk: temporary failure\n"
            ),
            "{prog:?}"
        );
    }
}

#[test]
fn setlock_n_x_and_open_errors() {
    let s = Scratch::new();
    let _holder = hold_lock(&s);
    assert_eq!(
        both("setlock", &["-n", "lk", "echo", "no"], s.path()),
        out(
            111,
            "",
            "setlock: fatal: unable to lock lk: temporary failure\n"
        )
    );
    assert_eq!(
        both("setlock", &["-nx", "lk", "echo", "no"], s.path()),
        out(0, "", "")
    );
    assert_eq!(
        both("setlock", &["-n", "-x", "-X", "lk", "echo", "no"], s.path()),
        out(
            111,
            "",
            "setlock: fatal: unable to lock lk: temporary failure\n"
        )
    );
    assert_eq!(
        both("setlock", &["no/such/dir", "echo", "no"], s.path()),
        out(
            111,
            "",
            "setlock: fatal: unable to open no/such/dir: file does not exist\n"
        )
    );
    assert_eq!(
        both("setlock", &["-x", "no/such/dir", "echo", "no"], s.path()),
        out(0, "", "")
    );
    // A free file with -n works at once.
    assert_eq!(
        both("setlock", &["-n", "other", "echo", "yes"], s.path()),
        out(0, "yes\n", "")
    );
}

// ---- pgrphack -----------------------------------------------------------------------

#[test]
fn pgrphack_makes_the_child_a_session_and_group_leader() {
    let s = Scratch::new();
    // Run it from a shell, so pgrphack is not already a group leader (the harness puts
    // every command in a group of its own, where setsid() would fail with EPERM, ignored
    // by both).
    for prog in [harness::bin("pgrphack"), oracle("pgrphack")] {
        let o = outcome(
            Path::new("/bin/sh"),
            &[
                "-c",
                "\"$0\" sh -c 'echo $$ $(ps -o pgid= -p $$) $(ps -o sid= -p $$); exit 4'; echo $? $$",
                prog.to_str().unwrap(),
            ],
            s.path(),
            &[],
        );
        assert_eq!(o.0, Some(0), "{prog:?}: {o:?}");
        let v: Vec<&str> = o.1.split_whitespace().collect();
        assert_eq!(v.len(), 5, "{o:?}");
        assert_eq!(v[0], v[1], "{prog:?}: pid == pgid: {o:?}");
        assert_eq!(v[0], v[2], "{prog:?}: pid == sid (setsid): {o:?}");
        assert_eq!(v[3], "4", "{prog:?}: exit code passes through: {o:?}");
        assert_ne!(v[0], v[4], "{prog:?}: not the outer shell: {o:?}");
    }
}

// ---- fghack -------------------------------------------------------------------------

#[test]
fn fghack_waits_for_backgrounded_descendants_and_returns_the_code() {
    let s = Scratch::new();
    let o = both(
        "fghack",
        &[
            "sh",
            "-c",
            "(until [ -e m ]; do sleep 0.05; done; rm m; echo late) & echo early; touch m; exit 3",
        ],
        s.path(),
    );
    assert_eq!(o, out(3, "early\nlate\n", ""));
    // A descendant that closes every extra descriptor is not waited for: fghack returns
    // as soon as the direct child exits.
    let o = both(
        "fghack",
        &[
            "sh",
            "-c",
            "bash -c 'for i in $(seq 3 60); do eval \"exec $i>&-\"; done; exec sleep 600 </dev/null >/dev/null 2>&1' & echo $! >>bgpid; exit 5",
        ],
        s.path(),
    );
    assert_eq!(o, out(5, "", ""));
    for p in fs::read_to_string(s.join("bgpid")).unwrap().lines() {
        let pid: i32 = p.trim().parse().unwrap();
        // SAFETY: kill(2) on the sleeper this test started (its pid file is per-test).
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
    }
}

#[test]
fn fghack_child_crashed_is_111() {
    let s = Scratch::new();
    assert_eq!(
        both("fghack", &["sh", "-c", "kill -9 $$"], s.path()),
        out(111, "", "fghack: fatal: child crashed\n")
    );
}
