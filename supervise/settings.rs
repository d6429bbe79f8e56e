//! Per-service settings: s6's single-value files and our `service.toml` (issue 6,
//! REFERENCE.md §11, §12).
//!
//! Read at startup and again before a start of `./run` when a file may have changed
//! ([`Fingerprint`]), so an edit takes effect at the next restart. A service dir with none of these files gets [`Config::default`],
//! which is exactly daemontools 0.76. An invalid file never takes a service down: the
//! caller keeps the last good settings and prints the message.
//!
//! s6's files (same names and meanings as s6-supervise; whitespace around the value is
//! ignored):
//!
//! | file | value |
//! |---|---|
//! | `notification-fd` | fd number ≥ 3 on which run writes a newline when ready |
//! | `timeout-kill` | ms after `d` before KILL; 0 = never |
//! | `timeout-finish` | ms before `./finish` is killed; 0 = never; default 5000 |
//! | `down-signal` | signal `d` sends instead of TERM (`HUP`, `SIGHUP` or a number) |
//! | `max-death-tally` | length of the death history, 0..=4096, default 100 |
//!
//! `service.toml` (all keys optional; unknown keys are errors, so typos are caught; a key
//! set here wins over the single-value file):
//!
//! ```toml
//! down-signal = "TERM"
//! timeout-kill = 5000          # ms
//! timeout-finish = 5000        # ms
//! notification-fd = 3
//! max-death-tally = 100
//! setsid = false               # run under setsid, signal the whole group
//! process-group = false        # the same as setsid (older name)
//! cgroup = false               # one cgroup v2 per service, cgroup.kill on stop
//! no-restart-exit-codes = [100]
//! [backoff]
//! initial = 1000               # ms after a quick death
//! max = 60000                  # cap, ms
//! factor = 2
//! reset-after = 10000          # ms of uptime that reset the delay
//! [readiness]
//! notify-socket = false        # sd_notify socket at supervise/notify
//! check = "./check"            # sh -c command polled until it exits 0 (=> ready)
//! check-interval = 1000        # ms between attempts
//! check-timeout = 5000         # ms before an attempt is killed
//! [health]
//! url = "http://127.0.0.1:8000/"   # probed by `svprobe -t TIMEOUT URL [EXPECT]` on PATH
//! expect = "success"
//! command = "./health"         # or a sh -c command (not both)
//! interval = 30000
//! timeout = 5000
//! failures = 3
//! grace = 30000                # default: interval
//! ```
//!
//! docs/supervise.md documents every key for users; keep the two in step.

use crate::state::{Backoff, CheckCfg, Config, ExitSet, HealthCfg};
use serde::Deserialize;
use std::io;

/// `service.toml` in the service dir.
pub const SERVICE_TOML: &str = "service.toml";
/// s6's readiness file.
pub const NOTIFICATION_FD: &str = "notification-fd";
/// s6's kill escalation file.
pub const TIMEOUT_KILL: &str = "timeout-kill";
/// s6's finish timeout file.
pub const TIMEOUT_FINISH: &str = "timeout-finish";
/// s6's down signal file.
pub const DOWN_SIGNAL: &str = "down-signal";
/// s6's history length file.
pub const MAX_DEATH_TALLY: &str = "max-death-tally";

/// `./finish` (its presence is remembered with the settings' [`Fingerprint`]).
pub const FINISH: &str = "finish";

/// Every settings file [`load`] reads, in the service dir.
pub const FILES: [&str; 6] = [
    NOTIFICATION_FD,
    TIMEOUT_KILL,
    TIMEOUT_FINISH,
    DOWN_SIGNAL,
    MAX_DEATH_TALLY,
    SERVICE_TOML,
];

/// How close to "now" (seconds) a timestamp may be before a fingerprint is not trusted:
/// file timestamps come from the kernel's coarse clock, so two edits within one tick can
/// leave identical stamps ("racy git"). Generous, it only costs one more reload.
const RACY_SECS: i64 = 2;

/// The identity of one file for change detection: inode, size, mtime and ctime (ns).
type Key = [i64; 6];

fn key_of(m: &std::fs::Metadata) -> Key {
    use std::os::unix::fs::MetadataExt;
    [
        m.ino() as i64,
        m.size() as i64,
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec(),
    ]
}

/// What the settings files looked like when they were last read, so that supervise
/// reloads them before a start only when something could have changed (issue 2: a
/// respawn used to cost six failed `open`s). The service dir's own mtime changes when a
/// file is created, removed or renamed into place; an edit in place changes the file's
/// mtime/ctime/size. So [`Fingerprint::unchanged`] stats the dir and the files that
/// existed: one `statx` for a plain 0.76 service dir.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    dir: Key,
    files: [Option<Key>; 6],
    /// `./finish` existed (lstat): it can only appear or go with a change of the dir.
    pub finish: bool,
    /// False when a stamp was too recent to tell two edits apart: reload next time.
    trusted: bool,
}

impl Fingerprint {
    /// Takes the fingerprint of the current directory's settings files (call it right
    /// before [`load`]: a change between the two is seen at the next check). `None` when
    /// the dir cannot be stat'ed (then every check reloads).
    pub fn take() -> Option<Fingerprint> {
        let dir = std::fs::metadata(".").ok()?;
        let mut files = [None; 6];
        for (slot, name) in files.iter_mut().zip(FILES) {
            *slot = std::fs::metadata(name).ok().map(|m| key_of(&m));
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let dir = key_of(&dir);
        let newest = files
            .iter()
            .flatten()
            .chain(std::iter::once(&dir))
            .map(|k| k[2].max(k[4]))
            .max()
            .unwrap_or(0);
        let finish = std::fs::symlink_metadata(FINISH).is_ok();
        Some(Fingerprint {
            dir,
            files,
            finish,
            trusted: newest < now - RACY_SECS,
        })
    }

    /// True when the service dir's entries cannot have changed since `take` (so neither
    /// can [`Fingerprint::finish`]): one `statx`.
    pub fn dir_unchanged(&self) -> bool {
        self.trusted && std::fs::metadata(".").map(|m| key_of(&m)).ok() == Some(self.dir)
    }

    /// True when nothing the settings are read from can have changed since `take`;
    /// `dir_unchanged` is the result of [`Fingerprint::dir_unchanged`] if the caller
    /// already has it (saves the `statx`).
    pub fn unchanged(&self, dir_unchanged: Option<bool>) -> bool {
        if !dir_unchanged.unwrap_or_else(|| self.dir_unchanged()) {
            return false;
        }
        self.files.iter().zip(FILES).all(|(k, name)| match k {
            // Absent then: creating it changes the dir's mtime, checked above.
            None => true,
            Some(k) => std::fs::metadata(name).map(|m| key_of(&m)).ok() == Some(*k),
        })
    }
}

/// The `[backoff]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BackoffToml {
    initial: Option<u64>,
    max: Option<u64>,
    factor: Option<u32>,
    #[serde(rename = "reset-after")]
    reset_after: Option<u64>,
}

/// The `[readiness]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct ReadinessToml {
    notify_socket: Option<bool>,
    check: Option<String>,
    check_interval: Option<u64>,
    check_timeout: Option<u64>,
}

/// The `[health]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct HealthToml {
    url: Option<String>,
    expect: Option<String>,
    command: Option<String>,
    interval: Option<u64>,
    timeout: Option<u64>,
    failures: Option<u32>,
    grace: Option<u64>,
}

/// `service.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct ServiceToml {
    down_signal: Option<toml::Value>,
    timeout_kill: Option<u64>,
    timeout_finish: Option<u64>,
    notification_fd: Option<i64>,
    max_death_tally: Option<u64>,
    process_group: Option<bool>,
    setsid: Option<bool>,
    cgroup: Option<bool>,
    no_restart_exit_codes: Option<Vec<i64>>,
    backoff: Option<BackoffToml>,
    readiness: Option<ReadinessToml>,
    health: Option<HealthToml>,
}

/// What a health probe runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// `svprobe -t TIMEOUT URL [EXPECT]`, found on PATH.
    Url {
        /// The URL.
        url: String,
        /// A string the body must contain.
        expect: Option<String>,
    },
    /// `/bin/sh -c COMMAND` in the service dir.
    Command(String),
}

/// The settings: [`Config`] for the state machine (plain data, `Copy`), plus the
/// command lines the loop runs for readiness checks and health probes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Settings {
    /// The state machine's part.
    pub config: Config,
    /// `[readiness] check`: a `sh -c` command.
    pub check: Option<String>,
    /// `[health]`: what the probe runs.
    pub probe: Option<Probe>,
}

/// Signal names accepted by `down-signal` (with or without `SIG`).
const SIGNALS: &[(&str, i32)] = &[
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("USR2", libc::SIGUSR2),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("WINCH", libc::SIGWINCH),
    ("PWR", libc::SIGPWR),
];

/// Parses a signal name (`TERM`, `SIGTERM`, case-insensitive) or number (1..=64).
pub fn parse_signal(s: &str) -> Option<i32> {
    let s = s.trim();
    if let Ok(n) = s.parse::<i32>() {
        return (1..=64).contains(&n).then_some(n);
    }
    let up = s.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    SIGNALS.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
}

/// Reads a single-value file: `Ok(None)` when it does not exist.
fn read_value(name: &str) -> Result<Option<String>, String> {
    match std::fs::read_to_string(name) {
        Ok(s) => Ok(Some(s.trim().to_string())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!(
            "unable to read {name}: {}",
            svcore::errstr::io_str(&e)
        )),
    }
}

fn number(name: &str, v: &str) -> Result<u64, String> {
    v.parse::<u64>()
        .map_err(|_| format!("{name}: not a number: {v:?}"))
}

fn check_fd(what: &str, n: i64) -> Result<i32, String> {
    if (3..=1023).contains(&n) {
        Ok(n as i32)
    } else {
        Err(format!(
            "{what}: must be a descriptor from 3 to 1023, not {n}"
        ))
    }
}

fn check_tally(what: &str, n: u64) -> Result<usize, String> {
    if n <= 4096 {
        Ok(n as usize)
    } else {
        Err(format!("{what}: must be at most 4096, not {n}"))
    }
}

/// Reads the settings of the service in the current directory. `Err` is the text of a
/// warning (after `supervise: warning: `), naming the file and the key; `dir` is the
/// service dir as given on the command line, for that message.
pub fn load(dir: &str) -> Result<Settings, String> {
    let mut out = Settings::default();
    let c = &mut out.config;
    let in_dir = |m: String| format!("{dir}/{m}");

    // s6's single-value files first.
    if let Some(v) = read_value(NOTIFICATION_FD).map_err(in_dir)? {
        let n = v
            .parse::<i64>()
            .map_err(|_| in_dir(format!("{NOTIFICATION_FD}: not a number: {v:?}")))?;
        c.notify_fd = Some(check_fd(NOTIFICATION_FD, n).map_err(in_dir)?);
    }
    if let Some(v) = read_value(TIMEOUT_KILL).map_err(in_dir)? {
        let n = number(TIMEOUT_KILL, &v).map_err(in_dir)?;
        c.timeout_kill_ms = (n > 0).then_some(n);
    }
    if let Some(v) = read_value(TIMEOUT_FINISH).map_err(in_dir)? {
        let n = number(TIMEOUT_FINISH, &v).map_err(in_dir)?;
        c.timeout_finish_ms = (n > 0).then_some(n);
    }
    if let Some(v) = read_value(DOWN_SIGNAL).map_err(in_dir)? {
        c.down_signal = parse_signal(&v)
            .ok_or_else(|| in_dir(format!("{DOWN_SIGNAL}: unknown signal: {v:?}")))?;
    }
    if let Some(v) = read_value(MAX_DEATH_TALLY).map_err(in_dir)? {
        let n = number(MAX_DEATH_TALLY, &v).map_err(in_dir)?;
        c.max_death_tally = check_tally(MAX_DEATH_TALLY, n).map_err(in_dir)?;
    }

    // service.toml: only parsed when present, so a plain service never touches serde.
    let text = match std::fs::read_to_string(SERVICE_TOML) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => {
            return Err(format!(
                "unable to read {dir}/{SERVICE_TOML}: {}",
                svcore::errstr::io_str(&e)
            ));
        }
    };
    apply_toml(&mut out, &text).map_err(|m| format!("{dir}/{SERVICE_TOML}: {m}"))?;
    Ok(out)
}

/// The 1-based line of byte offset `at` in `text`, and the key written on that line.
fn locate(text: &str, at: usize) -> (usize, String) {
    let at = at.min(text.len());
    let line_no = text[..at].matches('\n').count() + 1;
    let line = text.lines().nth(line_no - 1).unwrap_or("");
    let key = line
        .split('=')
        .next()
        .unwrap_or("")
        .trim()
        .trim_matches(|c| c == '[' || c == ']')
        .to_string();
    (line_no, key)
}

/// Parses and validates `service.toml` into `c` (pure, for tests). The error names the
/// line and key, in one line.
pub fn apply_toml(out: &mut Settings, text: &str) -> Result<(), String> {
    let c = &mut out.config;
    let t: ServiceToml = toml::from_str(text).map_err(|e| {
        let msg = e.message().replace('\n', " ");
        match e.span() {
            Some(span) => {
                let (line, key) = locate(text, span.start);
                // toml names the key itself in some messages (`unknown field `x``): do
                // not say it twice. Others (`invalid type: integer `1``) need it.
                if key.is_empty() || msg.contains(&format!("`{key}`")) {
                    format!("line {line}: {msg}")
                } else {
                    format!("line {line}: {key}: {msg}")
                }
            }
            None => msg,
        }
    })?;
    if let Some(v) = t.down_signal {
        let sig = match &v {
            toml::Value::String(s) => parse_signal(s),
            toml::Value::Integer(n) => i32::try_from(*n)
                .ok()
                .and_then(|n| parse_signal(&n.to_string())),
            _ => None,
        };
        c.down_signal = sig.ok_or_else(|| format!("down-signal: unknown signal: {v}"))?;
    }
    if let Some(n) = t.timeout_kill {
        c.timeout_kill_ms = (n > 0).then_some(n);
    }
    if let Some(n) = t.timeout_finish {
        c.timeout_finish_ms = (n > 0).then_some(n);
    }
    if let Some(n) = t.notification_fd {
        c.notify_fd = Some(check_fd("notification-fd", n)?);
    }
    if let Some(n) = t.max_death_tally {
        c.max_death_tally = check_tally("max-death-tally", n)?;
    }
    if let (Some(a), Some(b)) = (t.setsid, t.process_group) {
        if a != b {
            return Err("setsid and process-group disagree (they are the same setting)".into());
        }
    }
    if let Some(b) = t.setsid.or(t.process_group) {
        c.process_group = b;
    }
    if let Some(b) = t.cgroup {
        c.cgroup = b;
    }
    if let Some(codes) = t.no_restart_exit_codes {
        let mut set = ExitSet::default();
        for code in codes {
            let code = u8::try_from(code).map_err(|_| {
                format!("no-restart-exit-codes: {code} is not an exit code (0 to 255)")
            })?;
            set.insert(code);
        }
        c.no_restart = set;
    }
    if let Some(b) = t.backoff {
        let initial = b.initial.unwrap_or(1000);
        let max = b.max.unwrap_or(60_000);
        let factor = b.factor.unwrap_or(2);
        let reset = b.reset_after.unwrap_or(10_000);
        if factor == 0 {
            return Err("backoff.factor: must be at least 1".to_string());
        }
        if max < initial {
            return Err(format!(
                "backoff.max: {max} is less than backoff.initial {initial}"
            ));
        }
        c.backoff = Some(Backoff {
            initial_ms: initial,
            max_ms: max,
            factor,
            reset_after_ms: reset,
        });
    }
    if let Some(r) = t.readiness {
        if let Some(b) = r.notify_socket {
            c.notify_socket = b;
        }
        match r.check {
            Some(cmd) => {
                if cmd.trim().is_empty() {
                    return Err("readiness.check: empty command".into());
                }
                if cmd.contains('\0') {
                    return Err("readiness.check: contains a NUL byte".into());
                }
                c.check = Some(CheckCfg {
                    interval_ms: positive("readiness.check-interval", r.check_interval, 1000)?,
                    timeout_ms: positive("readiness.check-timeout", r.check_timeout, 5000)?,
                });
                out.check = Some(cmd);
            }
            None => {
                if r.check_interval.is_some() || r.check_timeout.is_some() {
                    return Err("readiness: check-interval and check-timeout need check".into());
                }
            }
        }
    }
    if let Some(h) = t.health {
        let probe = match (h.url, h.command) {
            (Some(_), Some(_)) => {
                return Err("health: url and command are exclusive; set one".into());
            }
            (None, None) => return Err("health: needs url or command".into()),
            (Some(url), None) => {
                // svprobe speaks plain HTTP only: an https:// URL would fail every probe
                // and restart the service for ever, so it is refused here.
                if !url.starts_with("http://") {
                    return Err(format!("health.url: not an http:// URL: {url:?}"));
                }
                if url.contains('\0') || h.expect.as_ref().is_some_and(|e| e.contains('\0')) {
                    return Err("health.url: contains a NUL byte".into());
                }
                Probe::Url {
                    url,
                    expect: h.expect,
                }
            }
            (None, Some(cmd)) => {
                if h.expect.is_some() {
                    return Err("health.expect: only with url".into());
                }
                if cmd.trim().is_empty() || cmd.contains('\0') {
                    return Err("health.command: empty or contains a NUL byte".into());
                }
                Probe::Command(cmd)
            }
        };
        let interval = positive("health.interval", h.interval, 30_000)?;
        let failures = h.failures.unwrap_or(3);
        if failures == 0 {
            return Err("health.failures: must be at least 1".into());
        }
        c.health = Some(HealthCfg {
            interval_ms: interval,
            timeout_ms: positive("health.timeout", h.timeout, 5000)?,
            failures,
            grace_ms: h.grace.unwrap_or(interval),
        });
        out.probe = Some(probe);
    }
    Ok(())
}

/// A duration that must be at least 1 ms.
fn positive(key: &str, v: Option<u64>, default: u64) -> Result<u64, String> {
    match v {
        None => Ok(default),
        Some(0) => Err(format!("{key}: must be at least 1")),
        Some(n) => Ok(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, String> {
        settings(text).map(|s| s.config)
    }

    fn settings(text: &str) -> Result<Settings, String> {
        let mut s = Settings::default();
        apply_toml(&mut s, text).map(|()| s)
    }

    #[test]
    fn readiness_and_health_tables() {
        let s = settings(
            "setsid = true\ncgroup = true\n[readiness]\nnotify-socket = true\ncheck = \"test -e up\"\n\
             check-interval = 50\n[health]\nurl = \"http://127.0.0.1:1/x\"\nexpect = \"success\"\n\
             interval = 200\nfailures = 2\n",
        )
        .unwrap();
        assert!(s.config.process_group && s.config.cgroup && s.config.notify_socket);
        assert_eq!(
            s.config.check,
            Some(CheckCfg {
                interval_ms: 50,
                timeout_ms: 5000
            })
        );
        assert_eq!(s.check.as_deref(), Some("test -e up"));
        assert_eq!(
            s.config.health,
            Some(HealthCfg {
                interval_ms: 200,
                timeout_ms: 5000,
                failures: 2,
                grace_ms: 200
            })
        );
        assert_eq!(
            s.probe,
            Some(Probe::Url {
                url: "http://127.0.0.1:1/x".into(),
                expect: Some("success".into())
            })
        );
        let s = settings("[health]\ncommand = \"exit 0\"\ngrace = 0\n").unwrap();
        assert_eq!(s.probe, Some(Probe::Command("exit 0".into())));
        assert_eq!(s.config.health.unwrap().grace_ms, 0);
    }

    #[test]
    fn readiness_and_health_errors() {
        for (text, msg) in [
            ("[health]\ninterval = 5\n", "health: needs url or command"),
            (
                "[health]\nurl = \"http://a/\"\ncommand = \"x\"\n",
                "health: url and command are exclusive; set one",
            ),
            (
                "[health]\nurl = \"ftp://a/\"\n",
                "health.url: not an http:// URL: \"ftp://a/\"",
            ),
            (
                "[health]\nurl = \"https://a/\"\n",
                "health.url: not an http:// URL: \"https://a/\"",
            ),
            (
                "[health]\ncommand = \"x\"\nexpect = \"y\"\n",
                "health.expect: only with url",
            ),
            (
                "[health]\ncommand = \"x\"\nfailures = 0\n",
                "health.failures: must be at least 1",
            ),
            (
                "[health]\ncommand = \"x\"\ninterval = 0\n",
                "health.interval: must be at least 1",
            ),
            (
                "[readiness]\ncheck-interval = 5\n",
                "readiness: check-interval and check-timeout need check",
            ),
            (
                "[readiness]\ncheck = \" \"\n",
                "readiness.check: empty command",
            ),
            (
                "setsid = true\nprocess-group = false\n",
                "setsid and process-group disagree (they are the same setting)",
            ),
        ] {
            assert_eq!(settings(text).unwrap_err(), msg, "{text}");
        }
        let e = settings("[health]\ncommand = \"x\"\nretries = 2\n").unwrap_err();
        assert!(e.contains("unknown field `retries`"), "{e}");
    }

    #[test]
    fn empty_file_is_076() {
        assert_eq!(parse("").unwrap(), Config::default());
    }

    #[test]
    fn every_key() {
        let c = parse(
            "down-signal = \"HUP\"\ntimeout-kill = 500\ntimeout-finish = 0\nnotification-fd = 3\n\
             max-death-tally = 5\nprocess-group = true\nno-restart-exit-codes = [100, 0]\n\
             [backoff]\ninitial = 100\nmax = 800\nfactor = 3\nreset-after = 2000\n",
        )
        .unwrap();
        assert_eq!(c.down_signal, libc::SIGHUP);
        assert_eq!(c.timeout_kill_ms, Some(500));
        assert_eq!(c.timeout_finish_ms, None);
        assert_eq!(c.notify_fd, Some(3));
        assert_eq!(c.max_death_tally, 5);
        assert!(c.process_group);
        assert!(c.no_restart.contains(100) && c.no_restart.contains(0));
        assert!(!c.no_restart.contains(1));
        assert_eq!(
            c.backoff,
            Some(Backoff {
                initial_ms: 100,
                max_ms: 800,
                factor: 3,
                reset_after_ms: 2000
            })
        );
    }

    #[test]
    fn errors_name_the_line_and_key() {
        let e = parse("timeout-kill = 5\ntimeout-finish = \"x\"\n").unwrap_err();
        assert!(e.starts_with("line 2: timeout-finish: invalid type"), "{e}");
        let e = parse("timeout-kil = 5\n").unwrap_err();
        assert!(e.contains("unknown field `timeout-kil`"), "{e}");
        assert!(!e.contains("timeout-kil: unknown"), "key said twice: {e}");
        let e = parse("setsid = 1\n").unwrap_err();
        assert!(e.starts_with("line 1: setsid: invalid type"), "{e}");
        let e = parse("down-signal = \"BOGUS\"\n").unwrap_err();
        assert_eq!(e, "down-signal: unknown signal: \"BOGUS\"");
        let e = parse("notification-fd = 1\n").unwrap_err();
        assert_eq!(
            e,
            "notification-fd: must be a descriptor from 3 to 1023, not 1"
        );
        let e = parse("[backoff]\ninitial = 10\nmax = 5\n").unwrap_err();
        assert_eq!(e, "backoff.max: 5 is less than backoff.initial 10");
        let e = parse("no-restart-exit-codes = [256]\n").unwrap_err();
        assert!(e.contains("256 is not an exit code"), "{e}");
        assert!(parse("this is not toml").unwrap_err().starts_with("line 1"));
    }

    #[test]
    fn signal_names() {
        assert_eq!(parse_signal("TERM"), Some(libc::SIGTERM));
        assert_eq!(parse_signal("sigusr1\n"), Some(libc::SIGUSR1));
        assert_eq!(parse_signal("9"), Some(9));
        assert_eq!(parse_signal("0"), None);
        assert_eq!(parse_signal("NOPE"), None);
    }
}
