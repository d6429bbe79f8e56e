//! Differential tests, both ways (issue 2, "Proof"): each scenario is data, a list of
//! steps, run against Debian's svc/svok/svstat driving Debian's supervise (the reference)
//! and then against a candidate pairing:
//!
//! * `our_tools`: our svc/svok/svstat driving Debian's supervise;
//! * `our_supervise`: Debian's svc/svok/svstat driving our supervise;
//! * `all_ours`: ours driving ours;
//! * `features_debian_tools` and `features_all_ours`: the same two with our supervise
//!   running a service that switches on every opt-in feature of issue 6 ([`FEATURES`]:
//!   `service.toml`, s6's `notification-fd`, `timeout-kill`, `timeout-finish`,
//!   `max-death-tally`, a `finish` script). The reference stays Debian's plain run: the
//!   features must not change anything a 0.76 client sees (REFERENCE.md §12).
//!
//! Every step appends one line to a transcript: exit codes, stderr, svstat lines (pids and
//! seconds masked by `harness::normalize`), and status bytes with the stamp and pid masked.
//! Waits are on observable state with deadlines, so the two supervisors' different timing
//! (0.76 sleeps a second after each fork, ours waits in its loop; REFERENCE.md §4) does not
//! show. The transcripts must be equal.
#![allow(clippy::unwrap_used)]

use crate::harness::{self, DEADLINE, Running, Scratch, oracle, run, wait_until};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Whose program plays a role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Debian,
    Ours,
    /// Ours, statically linked as README's install step ships them (`cargo
    /// build-static`: supervise, svc, svok, svstat).
    OursStatic,
}

impl Side {
    fn program(self, name: &str) -> PathBuf {
        match self {
            Side::Debian => oracle(name),
            Side::Ours => harness::bin(name),
            Side::OursStatic => harness::static_bin(name),
        }
    }
}

/// Which client a step runs.
#[derive(Debug, Clone, Copy)]
enum Tool {
    Svc,
    Svok,
    Svstat,
}

impl Tool {
    fn name(self) -> &'static str {
        match self {
            Tool::Svc => "svc",
            Tool::Svok => "svok",
            Tool::Svstat => "svstat",
        }
    }
}

/// Observable states a step waits for.
#[derive(Debug, Clone, Copy)]
enum Cond {
    /// status has a pid.
    Up,
    /// status has no pid.
    Down,
    /// want byte.
    Want(u8),
    /// paused byte.
    Paused(u8),
    /// The run script recorded this signal in `sig`.
    Signal(&'static str),
    /// `./run` started at least this many times (lines in `starts`).
    Starts(usize),
    /// supervise's stderr contains this text.
    SupStderr(&'static str),
}

/// One step of a scenario.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// Run a client with these arguments (cwd = the scratch dir, service = `s`).
    Run(Tool, &'static [&'static str]),
    /// The same as the user `nobody` (through Debian's setuidgid).
    Nobody(Tool, &'static [&'static str]),
    /// Wait for a state.
    Until(Cond),
    /// Record the status bytes, stamp and pid masked.
    Status,
    /// Start a second supervise on `s` and record how it fails.
    SecondSupervise,
    /// Wait for supervise to exit and record its exit code.
    SupervisorExits,
}

/// A scenario: how to set up `s`, whether to start supervise, and the steps.
struct Scenario {
    /// The body of `s/run`, or `None` for no run file.
    run: Option<&'static str>,
    /// Create `s/down` before starting.
    down: bool,
    /// Start supervise on `s` (otherwise only clients run).
    supervise: bool,
    steps: &'static [Step],
}

/// A run script that records each start and every catchable signal it gets; TERM ends it.
/// The sleeps run in the background so the traps fire at once; orphans are cleaned up with
/// supervise's process group by the harness. The traps are set before the start is
/// recorded, so a step that waits for `Starts(n)` may signal at once: `Up` alone is not
/// enough (a pid in status comes before the shell has run a line; Debian's supervise hides
/// this by sleeping a second after each fork, ours does not).
const RECORDER: &str = r#"for s in HUP ALRM INT QUIT USR1 USR2 WINCH CONT; do trap "echo $s >> sig" $s; done
trap 'echo TERM >> sig; exit 0' TERM
echo start >> starts
echo $$ >> pids
while :; do sleep 600 & wait $!; done"#;

const CRASHER: &str = "echo start >> starts\nexit 1";

/// Every opt-in feature our supervise has, set so that none of them changes what a 0.76
/// client sees in these scenarios: readiness that is never reported, a kill escalation
/// after a long grace, a finish script that exits at once, backoff whose delays stay
/// within the scenarios' deadlines, a health probe that always succeeds, run under setsid.
const FEATURES: &[(&str, &str)] = &[
    ("notification-fd", "3\n"),
    ("timeout-kill", "60000\n"),
    ("timeout-finish", "5000\n"),
    ("max-death-tally", "10\n"),
    (
        "service.toml",
        r#"setsid = true
no-restart-exit-codes = [100]

[backoff]
initial = 500
max = 2000
factor = 2
reset-after = 10000

[health]
command = "true"
interval = 1000
timeout = 5000
failures = 3
grace = 500
"#,
    ),
];

/// `finish` for [`FEATURES`]: records its arguments (s6's convention) and exits 0.
const FINISH: &str = r#"echo "$@" >> finished"#;

/// Runs one scenario with the given tools and supervise; returns the transcript.
fn transcript(sc: &Scenario, tools: Side, sup: Side, features: bool) -> Vec<String> {
    let s = Scratch::new();
    // `nobody` must be able to reach `s` for the permission scenarios.
    fs::set_permissions(s.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let dir = s.join("s");
    fs::create_dir(&dir).unwrap();
    if let Some(body) = sc.run {
        harness::write_script(&dir.join("run"), body);
    }
    if sc.down {
        fs::write(dir.join("down"), "").unwrap();
    }
    // With the features on, run has its own session (`setsid = true`), out of reach of the
    // harness's kill of supervise's process group: kill each run's group at the end.
    let _reaper = features.then(|| SessionReaper(dir.join("pids")));
    if features {
        for (name, text) in FEATURES {
            fs::write(dir.join(name), text).unwrap();
        }
        harness::write_script(&dir.join("finish"), FINISH);
    }
    let mut supervise = sc.supervise.then(|| {
        let mut c = harness::cmd(sup.program("supervise"));
        c.current_dir(s.path()).arg("s");
        default_signals(&mut c);
        let r = Running::spawn(c, s.path(), "supervise");
        wait_until(
            DEADLINE,
            || format!("s to be supervised; stderr: {}", r.stderr()),
            || harness::is_supervised(&dir),
        );
        r
    });
    let sup_stderr = |r: &Option<Running>| r.as_ref().map(|r| r.stderr()).unwrap_or_default();
    let mut out = Vec::new();
    for step in sc.steps {
        match *step {
            Step::Run(tool, args) => {
                let mut c = harness::cmd(tools.program(tool.name()));
                c.current_dir(s.path()).args(args);
                out.push(record(tool, args, &run(c)));
            }
            Step::Nobody(tool, args) => {
                let mut c = harness::cmd(oracle("setuidgid"));
                c.current_dir(s.path())
                    .arg("nobody")
                    .arg(tools.program(tool.name()))
                    .args(args);
                out.push(format!("as nobody: {}", record(tool, args, &run(c))));
            }
            Step::Until(cond) => {
                wait_until(
                    DEADLINE,
                    || {
                        format!(
                            "{cond:?}; status {:?}; supervise stderr: {}; listing:\n{}",
                            harness::status_bytes(&dir),
                            sup_stderr(&supervise),
                            s.listing()
                        )
                    },
                    || holds(cond, &dir, &sup_stderr(&supervise)),
                );
                out.push(format!("until {cond:?}"));
            }
            Step::Status => out.push(masked_status(&dir)),
            Step::SecondSupervise => {
                let mut c: Command = harness::cmd(sup.program("supervise"));
                c.current_dir(s.path()).arg("s");
                let o = run(c);
                out.push(format!(
                    "second supervise: exit {:?}, stderr {:?}",
                    o.status.code(),
                    harness::stderr(&o)
                ));
            }
            Step::SupervisorExits => {
                let r = supervise.as_mut().expect("scenario started no supervise");
                let st = r.wait_exit(DEADLINE);
                out.push(format!("supervise exited: {:?}", st.code()));
            }
        }
    }
    if features && sup == Side::Ours && sc.supervise {
        features_were_on(&dir, &sup_stderr(&supervise));
    }
    drop(supervise);
    out
}

/// Kills, on drop, the process group of every pid listed in a file: the runs that
/// [`RECORDER`] started under setsid, and their `sleep`, which would otherwise outlive
/// the test. Dropped after the supervise, so no new run starts behind it.
struct SessionReaper(PathBuf);

impl Drop for SessionReaper {
    fn drop(&mut self) {
        for pid in lines(&self.0) {
            if let Ok(pid) = pid.trim().parse::<i32>() {
                // SAFETY: kill(2) on the process group a run of this test created with
                // setsid (its pgid is its pid); it only sends a signal.
                unsafe {
                    libc::kill(-pid, libc::SIGKILL);
                }
            }
        }
    }
}

/// The features really were read: no settings warning, and the sidecar shows readiness
/// configured (a running service stays `starting`: it never writes to fd 3).
fn features_were_on(dir: &Path, sup_stderr: &str) {
    assert!(
        !sup_stderr.contains("service.toml") && !sup_stderr.contains("notification-fd"),
        "settings rejected: {sup_stderr}"
    );
    let ext = fs::read_to_string(dir.join("supervise/status.ext")).unwrap_or_default();
    if ext.contains("\nstate up\n") {
        panic!("readiness not configured:\n{ext}");
    }
    // A restart happens only after ./finish has run (s6's convention, docs/supervise.md).
    if lines(&dir.join("starts")).len() >= 2 {
        assert!(
            !lines(&dir.join("finished")).is_empty(),
            "finish never ran:\n{ext}"
        );
    }
}

/// Gives the supervise (and so the run script) default INT and QUIT. A test binary
/// started in the background by a non-interactive shell (`cargo test &`) inherits them
/// ignored, and a shell cannot trap a signal ignored on entry (POSIX), so the recorder
/// would never see `svc -i`.
fn default_signals(c: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: only signal(2), which is async-signal-safe, runs between fork and exec.
    unsafe {
        c.pre_exec(|| {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            libc::signal(libc::SIGQUIT, libc::SIG_DFL);
            Ok(())
        });
    }
}

fn record(tool: Tool, args: &[&str], o: &std::process::Output) -> String {
    format!(
        "{} {args:?}: exit {:?}, stdout {:?}, stderr {:?}",
        tool.name(),
        o.status.code(),
        harness::normalize(&harness::stdout(o)),
        harness::stderr(o)
    )
}

/// The status bytes with the stamp and pid masked (a pid shows as `P`, none as `0`).
fn masked_status(dir: &Path) -> String {
    let b = harness::status_bytes(dir);
    if b.len() < 18 {
        return format!("status: {} bytes", b.len());
    }
    let pid = if harness::status_pid(dir) != 0 {
        "P"
    } else {
        "0"
    };
    format!(
        "status: {} bytes, pid {pid}, paused {}, want {:?}",
        b.len(),
        b[16],
        char::from(b[17])
    )
}

fn lines(p: &Path) -> Vec<String> {
    fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn holds(cond: Cond, dir: &Path, sup_stderr: &str) -> bool {
    let b = harness::status_bytes(dir);
    match cond {
        Cond::Up => b.len() >= 18 && harness::status_pid(dir) != 0,
        Cond::Down => b.len() >= 18 && harness::status_pid(dir) == 0,
        Cond::Want(w) => b.len() >= 18 && b[17] == w,
        Cond::Paused(p) => b.len() >= 18 && b[16] == p,
        Cond::Signal(sig) => lines(&dir.join("sig")).iter().any(|l| l == sig),
        Cond::Starts(n) => lines(&dir.join("starts")).len() >= n,
        Cond::SupStderr(text) => sup_stderr.contains(text),
    }
}

/// Runs the reference and the candidate and compares.
fn check(sc: &Scenario, tools: Side, sup: Side) {
    check_with(sc, tools, sup, false);
}

/// [`check`], the candidate's service optionally with every feature on ([`FEATURES`]).
fn check_with(sc: &Scenario, tools: Side, sup: Side, features: bool) {
    let reference = transcript(sc, Side::Debian, Side::Debian, false);
    let candidate = transcript(sc, tools, sup, features);
    assert_eq!(
        candidate.join("\n"),
        reference.join("\n"),
        "\ncandidate (tools {tools:?}, supervise {sup:?}, features {features}) differs from \
         Debian's (left = candidate)"
    );
}

use Cond::*;
use Step::*;
use Tool::*;

/// Each scenario becomes a module with the three candidate pairings as tests.
macro_rules! scenarios {
    ($($name:ident => $sc:expr;)*) => {
        $(
            mod $name {
                use super::*;
                const SC: Scenario = $sc;
                #[test]
                fn our_tools() {
                    check(&SC, Side::Ours, Side::Debian);
                }
                #[test]
                fn our_supervise() {
                    check(&SC, Side::Debian, Side::Ours);
                }
                #[test]
                fn all_ours() {
                    check(&SC, Side::Ours, Side::Ours);
                }
                #[test]
                fn static_supervise() {
                    check(&SC, Side::Debian, Side::OursStatic);
                }
                #[test]
                fn static_all() {
                    check(&SC, Side::OursStatic, Side::OursStatic);
                }
                #[test]
                fn features_debian_tools() {
                    check_with(&SC, Side::Debian, Side::Ours, true);
                }
                #[test]
                fn features_all_ours() {
                    check_with(&SC, Side::Ours, Side::Ours, true);
                }
            }
        )*
    };
}

scenarios! {
    up => Scenario {
        run: Some(RECORDER),
        down: false,
        supervise: true,
        steps: &[
            Until(Up), Until(Starts(1)),
            Run(Svok, &["s"]), Run(Svstat, &["s"]), Status,
        ],
    };
    down_then_up => Scenario {
        run: Some(RECORDER),
        down: false,
        supervise: true,
        steps: &[
            Until(Up), Until(Starts(1)),
            Run(Svc, &["-d", "s"]), Until(Down), Until(Signal("TERM")),
            Run(Svstat, &["s"]), Status,
            Run(Svc, &["-u", "s"]), Until(Up), Until(Starts(2)),
            Run(Svstat, &["s"]), Status,
        ],
    };
    once => Scenario {
        run: Some(RECORDER),
        down: true,
        supervise: true,
        steps: &[
            Status, Run(Svstat, &["s"]),
            Run(Svc, &["-o", "s"]), Until(Up), Until(Starts(1)), Until(Want(0)),
            Run(Svstat, &["s"]), Status,
            Run(Svc, &["-t", "s"]), Until(Signal("TERM")), Until(Down),
            Run(Svstat, &["s"]), Status, Run(Svok, &["s"]),
        ],
    };
    pause_continue => Scenario {
        run: Some(RECORDER),
        down: false,
        supervise: true,
        steps: &[
            Until(Up), Until(Starts(1)),
            Run(Svc, &["-p", "s"]), Until(Paused(1)),
            Run(Svstat, &["s"]), Status,
            Run(Svc, &["-c", "s"]), Until(Paused(0)), Until(Signal("CONT")),
            Run(Svstat, &["s"]), Status,
        ],
    };
    signal_letters => Scenario {
        run: Some(RECORDER),
        down: false,
        supervise: true,
        steps: &[
            Until(Up), Until(Starts(1)),
            Run(Svc, &["-h", "s"]), Until(Signal("HUP")),
            Run(Svc, &["-a", "s"]), Until(Signal("ALRM")),
            Run(Svc, &["-i", "s"]), Until(Signal("INT")),
            Status,
            // TERM and KILL end the process; want is still up, so it comes back.
            Run(Svc, &["-t", "s"]), Until(Signal("TERM")), Until(Starts(2)), Until(Up),
            Run(Svc, &["-k", "s"]), Until(Starts(3)), Until(Up),
            Run(Svstat, &["s"]), Status,
        ],
    };
    exit_waits_for_the_process => Scenario {
        run: Some(RECORDER),
        down: false,
        supervise: true,
        steps: &[
            Until(Up), Until(Starts(1)),
            Run(Svc, &["-x", "s"]), Until(Want(b'u')), Run(Svok, &["s"]), Status,
            Run(Svc, &["-d", "s"]), SupervisorExits,
            Status, Run(Svok, &["s"]), Run(Svstat, &["s"]),
            Run(Svc, &["-u", "s"]),
        ],
    };
    down_and_exit => Scenario {
        run: Some(RECORDER),
        down: false,
        supervise: true,
        steps: &[
            Until(Up), Until(Starts(1)),
            Run(Svc, &["-dx", "s"]), SupervisorExits, Until(Signal("TERM")),
            Status, Run(Svok, &["s"]), Run(Svstat, &["s"]),
        ],
    };
    down_file => Scenario {
        run: Some(RECORDER),
        down: true,
        supervise: true,
        steps: &[
            Status, Run(Svstat, &["s"]),
            Run(Svc, &["-u", "s"]), Until(Up),
            Run(Svstat, &["s"]), Status,
            Run(Svc, &["-d", "s"]), Until(Down),
            Run(Svstat, &["s"]), Status,
        ],
    };
    crash_loop => Scenario {
        run: Some(CRASHER),
        down: false,
        supervise: true,
        steps: &[
            Until(Starts(3)), Run(Svok, &["s"]),
            Run(Svc, &["-d", "s"]), Until(Want(b'd')), Until(Down),
            Run(Svstat, &["s"]), Status,
        ],
    };
    missing_run => Scenario {
        run: None,
        down: false,
        supervise: true,
        steps: &[
            Until(SupStderr("supervise: fatal: unable to start s/run: file does not exist\n")),
            Run(Svok, &["s"]),
            Run(Svc, &["-d", "s"]), Until(Want(b'd')), Until(Down),
            Run(Svstat, &["s"]), Status,
        ],
    };
    lock_held => Scenario {
        run: Some(RECORDER),
        down: false,
        supervise: true,
        steps: &[
            Until(Up), SecondSupervise, Run(Svok, &["s"]), Status,
        ],
    };
    not_supervised => Scenario {
        run: Some(RECORDER),
        down: false,
        supervise: false,
        steps: &[
            Run(Svc, &["-u", "s"]), Run(Svok, &["s"]), Run(Svstat, &["s"]),
        ],
    };
    no_longer_supervised => Scenario {
        run: Some(RECORDER),
        down: false,
        supervise: true,
        steps: &[
            Until(Up), Run(Svc, &["-dx", "s"]), SupervisorExits,
            Run(Svc, &["-u", "s"]), Run(Svok, &["s"]), Run(Svstat, &["s"]),
        ],
    };
    unknown_option => Scenario {
        run: Some(RECORDER),
        down: false,
        supervise: true,
        steps: &[
            Until(Up), Run(Svc, &["-z", "s"]), Run(Svc, &["-dz", "s"]), Status,
        ],
    };
    nonexistent_dir => Scenario {
        run: Some(RECORDER),
        down: false,
        supervise: true,
        steps: &[
            Until(Up),
            Run(Svc, &["-d", "nonexist", "s"]), Until(Down),
            Run(Svok, &["nonexist"]), Run(Svstat, &["nonexist", "s"]),
        ],
    };
    permission_denied => Scenario {
        run: Some(RECORDER),
        down: false,
        supervise: true,
        steps: &[
            Until(Up),
            Nobody(Svc, &["-d", "s"]), Nobody(Svok, &["s"]), Nobody(Svstat, &["s"]),
            Status,
        ],
    };
}
