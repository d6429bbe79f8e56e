//! supervise's sidecar files: the state that does not fit in the 18-byte `status`
//! (REFERENCE.md §12.2, §12.4, §12.5, §12.6).
//!
//! `status` never grows (§3); our supervise publishes everything else in two new files
//! under `supervise/`, each written as `NAME.new` and renamed, like `status`. A reader
//! that finds `supervise/status.ext` knows the supervisor is ours and understands the
//! features below; against a 0.76 supervise (no such file) clients fall back to polling
//! `status`.
//!
//! # `supervise/status.ext`
//!
//! ASCII text, one `key value` pair per line, separated by one space, each line ending in
//! `\n`. Keys appear in the order below; readers must ignore keys they do not know (new
//! ones may be added at the end) and must not rely on the order. Stamps are TAI64N in
//! the external form (`@` + 24 hex digits, daemontools' clock, REFERENCE.md §2), or `-`
//! when there is none.
//!
//! | key | value |
//! |---|---|
//! | `version` | `1` (this format) |
//! | `supervisor` | pid of supervise |
//! | `commands` | control bytes read and handled since supervise started, unknown ones included (acknowledged control: send N bytes, wait until `commands` ≥ before + N) |
//! | `state` | one of `starting` (run started, readiness configured but not reported), `up` (run running), `ready` (run running and reported readiness), `finishing` (`./finish` running), `backoff` (no process, a restart is planned at `next_start`), `failing` (as `backoff`, but the delay has reached its cap: a crash loop), `failed` (no process, no restart: an exit code listed as "do not restart", or `./finish` exited 125), `down` (no process, none planned) |
//! | `pid` | pid of `./run`, 0 when none (the same as in `status`) |
//! | `finish_pid` | pid of `./finish`, 0 when none |
//! | `want` | `u`, `d` or `o` (once) |
//! | `paused` | `0` or `1` |
//! | `exiting` | `1` after `x`, else `0` |
//! | `stamp` | the `status` stamp: last pid change of `./run` |
//! | `ready` | `1` while run is up and has reported readiness, else `0` |
//! | `ready_stamp` | when readiness was last reported, or `-` |
//! | `starts` | how many times `./run` was started since supervise started |
//! | `restarts` | starts that were not the first (`starts - 1`, floored at 0) |
//! | `deaths` | how many times `./run` died since supervise started |
//! | `last_exit` | raw wait status of the last death (as `waitpid` gives it), or `-` |
//! | `last_exit_stamp` | time of the last death, or `-` |
//! | `next_start` | the planned restart time while `state` is `backoff`/`failing`, or `-` |
//! | `backoff_ms` | the delay of the current or last planned restart in milliseconds |
//! | `health` | `-` (no probe configured, or none finished yet for this run), `ok` or `fail`: the last health probe |
//! | `health_failures` | consecutive failed probes of the current run |
//! | `health_stamp` | end of the last probe, or `-` |
//! | `health_restarts` | restarts caused by failed probes since supervise started |
//! | `status_text` | the last `STATUS=` received on the notify socket for the current run (the rest of the line, newlines replaced by spaces), or `-` |
//! | `main_pid` | the last `MAINPID=` received on the notify socket for the current run, or 0 |
//! | `health_message` | why the last probe failed: the first line of its stderr (for `svprobe`, its one-line reason), or `exit N` / `signal N` when it said nothing; `-` when the last probe passed or none ran |
//!
//! # `supervise/deaths`
//!
//! The exit history, newest last, at most `max-death-tally` lines (default
//! [`DEFAULT_DEATH_TALLY`], as s6). Each line is `STAMP PID WSTATUS\n`: the TAI64N stamp
//! of the death, the pid, and the raw wait status in decimal (exit code `(w >> 8) & 255`
//! when `w & 127 == 0`, else killed by signal `w & 127`). Written only at deaths.

use crate::tai64n::Tai64n;
use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::Path;

/// `supervise/status.ext`.
pub const STATUS_EXT: &str = "supervise/status.ext";
/// `supervise/status.ext.new`, renamed over [`STATUS_EXT`].
pub const STATUS_EXT_NEW: &str = "supervise/status.ext.new";
/// `supervise/deaths`.
pub const DEATHS: &str = "supervise/deaths";
/// `supervise/deaths.new`, renamed over [`DEATHS`].
pub const DEATHS_NEW: &str = "supervise/deaths.new";
/// Format version written in the `version` line.
pub const VERSION: u32 = 1;
/// Default length of the death history (s6's `max-death-tally` default).
pub const DEFAULT_DEATH_TALLY: usize = 100;

/// The `state` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Run started, readiness configured but not yet reported.
    Starting,
    /// Run running.
    Up,
    /// Run running and ready.
    Ready,
    /// `./finish` running.
    Finishing,
    /// No process; a restart is planned.
    Backoff,
    /// No process; a restart is planned after the maximum delay (crash loop).
    Failing,
    /// No process and no restart: permanent failure.
    Failed,
    /// No process, none planned.
    Down,
}

impl Phase {
    /// The word in the file.
    pub fn word(self) -> &'static str {
        match self {
            Phase::Starting => "starting",
            Phase::Up => "up",
            Phase::Ready => "ready",
            Phase::Finishing => "finishing",
            Phase::Backoff => "backoff",
            Phase::Failing => "failing",
            Phase::Failed => "failed",
            Phase::Down => "down",
        }
    }

    /// Parses a word; unknown words are `None`.
    pub fn from_word(w: &str) -> Option<Phase> {
        Some(match w {
            "starting" => Phase::Starting,
            "up" => Phase::Up,
            "ready" => Phase::Ready,
            "finishing" => Phase::Finishing,
            "backoff" => Phase::Backoff,
            "failing" => Phase::Failing,
            "failed" => Phase::Failed,
            "down" => Phase::Down,
            _ => return None,
        })
    }
}

/// The decoded `status.ext`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ext {
    /// pid of supervise.
    pub supervisor: u32,
    /// Control bytes handled.
    pub commands: u64,
    /// The state word.
    pub phase: Phase,
    /// pid of `./run` (0 none).
    pub pid: u32,
    /// pid of `./finish` (0 none).
    pub finish_pid: u32,
    /// `b'u'`, `b'd'` or `b'o'`.
    pub want: u8,
    /// Paused flag.
    pub paused: bool,
    /// `x` received.
    pub exiting: bool,
    /// The `status` stamp.
    pub stamp: Tai64n,
    /// Run is up and reported readiness.
    pub ready: bool,
    /// Last readiness report.
    pub ready_stamp: Option<Tai64n>,
    /// Starts of `./run`.
    pub starts: u64,
    /// Deaths of `./run`.
    pub deaths: u64,
    /// Raw wait status of the last death.
    pub last_exit: Option<i32>,
    /// Time of the last death.
    pub last_exit_stamp: Option<Tai64n>,
    /// Planned restart.
    pub next_start: Option<Tai64n>,
    /// Delay of the current or last planned restart, ms.
    pub backoff_ms: u64,
    /// Last health probe of the current run: `Some(true)` ok, `Some(false)` failed.
    pub health: Option<bool>,
    /// Consecutive failed probes of the current run.
    pub health_failures: u32,
    /// End of the last probe.
    pub health_stamp: Option<Tai64n>,
    /// Restarts caused by failed probes.
    pub health_restarts: u64,
    /// Last `STATUS=` text from the notify socket (one line).
    pub status_text: Option<String>,
    /// Last `MAINPID=` from the notify socket, 0 when none.
    pub main_pid: u32,
    /// Why the last probe failed (one line), `None` when it passed or none ran.
    pub health_message: Option<String>,
}

impl Default for Ext {
    /// A supervise that knows nothing yet: state `down`, want `u`, every counter 0.
    fn default() -> Ext {
        Ext {
            supervisor: 0,
            commands: 0,
            phase: Phase::Down,
            pid: 0,
            finish_pid: 0,
            want: b'u',
            paused: false,
            exiting: false,
            stamp: Tai64n::default(),
            ready: false,
            ready_stamp: None,
            starts: 0,
            deaths: 0,
            last_exit: None,
            last_exit_stamp: None,
            next_start: None,
            backoff_ms: 0,
            health: None,
            health_failures: 0,
            health_stamp: None,
            health_restarts: 0,
            status_text: None,
            main_pid: 0,
            health_message: None,
        }
    }
}

/// Writes `key value\n`, or `key -\n` when there is no (or an empty) value; line breaks
/// in the value become spaces so the record stays one line.
fn text_line(out: &mut String, key: &str, v: Option<&str>) {
    match v {
        Some(t) if !t.is_empty() => {
            let _ = writeln!(out, "{key} {}", t.replace(['\n', '\r'], " "));
        }
        _ => {
            let _ = writeln!(out, "{key} -");
        }
    }
}

impl Ext {
    /// `starts - 1`, floored at 0.
    pub fn restarts(&self) -> u64 {
        self.starts.saturating_sub(1)
    }
}

fn stamp_or_dash(out: &mut String, t: Option<Tai64n>) {
    match t {
        Some(t) => {
            let _ = write!(out, "{t}");
        }
        None => out.push('-'),
    }
}

/// Encodes `status.ext` (pure).
pub fn encode(e: &Ext) -> String {
    let mut s = String::with_capacity(512);
    // Writing to a String cannot fail.
    let _ = writeln!(s, "version {VERSION}");
    let _ = writeln!(s, "supervisor {}", e.supervisor);
    let _ = writeln!(s, "commands {}", e.commands);
    let _ = writeln!(s, "state {}", e.phase.word());
    let _ = writeln!(s, "pid {}", e.pid);
    let _ = writeln!(s, "finish_pid {}", e.finish_pid);
    let _ = writeln!(s, "want {}", e.want as char);
    let _ = writeln!(s, "paused {}", u8::from(e.paused));
    let _ = writeln!(s, "exiting {}", u8::from(e.exiting));
    let _ = writeln!(s, "stamp {}", e.stamp);
    let _ = writeln!(s, "ready {}", u8::from(e.ready));
    s.push_str("ready_stamp ");
    stamp_or_dash(&mut s, e.ready_stamp);
    let _ = writeln!(s);
    let _ = writeln!(s, "starts {}", e.starts);
    let _ = writeln!(s, "restarts {}", e.restarts());
    let _ = writeln!(s, "deaths {}", e.deaths);
    match e.last_exit {
        Some(w) => {
            let _ = writeln!(s, "last_exit {w}");
        }
        None => s.push_str("last_exit -\n"),
    }
    s.push_str("last_exit_stamp ");
    stamp_or_dash(&mut s, e.last_exit_stamp);
    s.push_str("\nnext_start ");
    stamp_or_dash(&mut s, e.next_start);
    let _ = writeln!(s, "\nbackoff_ms {}", e.backoff_ms);
    let _ = writeln!(
        s,
        "health {}",
        match e.health {
            None => "-",
            Some(true) => "ok",
            Some(false) => "fail",
        }
    );
    let _ = writeln!(s, "health_failures {}", e.health_failures);
    s.push_str("health_stamp ");
    stamp_or_dash(&mut s, e.health_stamp);
    let _ = writeln!(s, "\nhealth_restarts {}", e.health_restarts);
    text_line(&mut s, "status_text", e.status_text.as_deref());
    let _ = writeln!(s, "main_pid {}", e.main_pid);
    text_line(&mut s, "health_message", e.health_message.as_deref());
    s
}

fn parse_stamp(v: &str) -> Result<Option<Tai64n>, ()> {
    if v == "-" {
        return Ok(None);
    }
    let hex = v.strip_prefix('@').ok_or(())?;
    if hex.len() != 24 {
        return Err(());
    }
    Tai64n::parse_hex(hex.as_bytes()).map(Some).ok_or(())
}

/// Decodes `status.ext` (pure). Unknown keys are ignored; a missing or malformed known
/// key, or a `version` other than 1, is `InvalidData` ("bad format").
pub fn decode(text: &str) -> io::Result<Ext> {
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "bad format");
    let mut e = Ext::default();
    let mut seen_version = false;
    let mut seen_state = false;
    for line in text.lines() {
        let Some((k, v)) = line.split_once(' ') else {
            continue;
        };
        let num = |v: &str| v.parse::<u64>().map_err(|_| bad());
        let flag = |v: &str| match v {
            "0" => Ok(false),
            "1" => Ok(true),
            _ => Err(bad()),
        };
        match k {
            "version" => {
                if num(v)? != u64::from(VERSION) {
                    return Err(bad());
                }
                seen_version = true;
            }
            "supervisor" => e.supervisor = num(v)? as u32,
            "commands" => e.commands = num(v)?,
            "state" => {
                e.phase = Phase::from_word(v).ok_or_else(bad)?;
                seen_state = true;
            }
            "pid" => e.pid = num(v)? as u32,
            "finish_pid" => e.finish_pid = num(v)? as u32,
            "want" => {
                e.want = match v {
                    "u" | "d" | "o" => v.as_bytes()[0],
                    _ => return Err(bad()),
                }
            }
            "paused" => e.paused = flag(v)?,
            "exiting" => e.exiting = flag(v)?,
            "stamp" => e.stamp = parse_stamp(v).map_err(|_| bad())?.ok_or_else(bad)?,
            "ready" => e.ready = flag(v)?,
            "ready_stamp" => e.ready_stamp = parse_stamp(v).map_err(|_| bad())?,
            "starts" => e.starts = num(v)?,
            "deaths" => e.deaths = num(v)?,
            "last_exit" => {
                e.last_exit = if v == "-" {
                    None
                } else {
                    Some(v.parse::<i32>().map_err(|_| bad())?)
                }
            }
            "last_exit_stamp" => e.last_exit_stamp = parse_stamp(v).map_err(|_| bad())?,
            "next_start" => e.next_start = parse_stamp(v).map_err(|_| bad())?,
            "backoff_ms" => e.backoff_ms = num(v)?,
            "health" => {
                e.health = match v {
                    "-" => None,
                    "ok" => Some(true),
                    "fail" => Some(false),
                    _ => return Err(bad()),
                }
            }
            "health_failures" => e.health_failures = num(v)? as u32,
            "health_stamp" => e.health_stamp = parse_stamp(v).map_err(|_| bad())?,
            "health_restarts" => e.health_restarts = num(v)?,
            "status_text" => e.status_text = (v != "-").then(|| v.to_string()),
            "main_pid" => e.main_pid = num(v)? as u32,
            "health_message" => e.health_message = (v != "-").then(|| v.to_string()),
            _ => {}
        }
    }
    if !seen_version || !seen_state {
        return Err(bad());
    }
    Ok(e)
}

/// One death in the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Death {
    /// When it was reaped.
    pub stamp: Tai64n,
    /// Its pid.
    pub pid: u32,
    /// Raw wait status.
    pub wstatus: i32,
}

/// Encodes `deaths`, oldest first (pure).
pub fn encode_deaths<'a>(deaths: impl IntoIterator<Item = &'a Death>) -> String {
    let mut s = String::new();
    for d in deaths {
        let _ = writeln!(s, "{} {} {}", d.stamp, d.pid, d.wstatus);
    }
    s
}

/// Decodes `deaths`; malformed lines are `InvalidData`.
pub fn decode_deaths(text: &str) -> io::Result<Vec<Death>> {
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "bad format");
    let mut out = Vec::new();
    for line in text.lines() {
        let mut it = line.split(' ');
        let (Some(t), Some(p), Some(w), None) = (it.next(), it.next(), it.next(), it.next()) else {
            return Err(bad());
        };
        out.push(Death {
            stamp: parse_stamp(t).map_err(|_| bad())?.ok_or_else(bad)?,
            pid: p.parse().map_err(|_| bad())?,
            wstatus: w.parse().map_err(|_| bad())?,
        });
    }
    Ok(out)
}

/// Writes `bytes` to `dir/new` and renames it over `dir/name` (the `status` dance).
pub fn write_atomic(dir: &Path, new: &str, name: &str, bytes: &[u8]) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let newp = dir.join(new);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(&newp)?;
    f.write_all(bytes)?;
    drop(f);
    std::fs::rename(&newp, dir.join(name))
}

/// Writes `DIR/supervise/status.ext` atomically.
pub fn write(dir: &Path, e: &Ext) -> io::Result<()> {
    write_atomic(dir, STATUS_EXT_NEW, STATUS_EXT, encode(e).as_bytes())
}

/// Reads `DIR/supervise/status.ext`. ENOENT means the supervisor is not ours (or not
/// running yet): fall back to `status`.
pub fn read(dir: &Path) -> io::Result<Ext> {
    decode(&std::fs::read_to_string(dir.join(STATUS_EXT))?)
}

/// Writes `DIR/supervise/deaths` atomically.
pub fn write_deaths<'a>(dir: &Path, deaths: impl IntoIterator<Item = &'a Death>) -> io::Result<()> {
    write_atomic(dir, DEATHS_NEW, DEATHS, encode_deaths(deaths).as_bytes())
}

/// Reads `DIR/supervise/deaths` (oldest first).
pub fn read_deaths(dir: &Path) -> io::Result<Vec<Death>> {
    decode_deaths(&std::fs::read_to_string(dir.join(DEATHS))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Ext {
        Ext {
            supervisor: 77,
            commands: 12,
            phase: Phase::Ready,
            pid: 1234,
            finish_pid: 0,
            want: b'u',
            paused: false,
            exiting: false,
            stamp: Tai64n::from_unix(1_700_000_000, 500),
            ready: true,
            ready_stamp: Some(Tai64n::from_unix(1_700_000_001, 1500)),
            starts: 3,
            deaths: 2,
            last_exit: Some(256),
            last_exit_stamp: Some(Tai64n::from_unix(1_699_999_999, 500)),
            next_start: None,
            backoff_ms: 1000,
            health: Some(false),
            health_failures: 2,
            health_stamp: Some(Tai64n::from_unix(1_700_000_002, 500)),
            health_restarts: 1,
            status_text: Some("serving 3 sites".into()),
            main_pid: 1235,
            health_message: Some("HTTP 500 from 127.0.0.1:8000".into()),
        }
    }

    #[test]
    fn encode_is_the_documented_text() {
        let t = encode(&sample());
        let keys: Vec<&str> = t.lines().map(|l| l.split(' ').next().unwrap()).collect();
        assert_eq!(
            keys,
            [
                "version",
                "supervisor",
                "commands",
                "state",
                "pid",
                "finish_pid",
                "want",
                "paused",
                "exiting",
                "stamp",
                "ready",
                "ready_stamp",
                "starts",
                "restarts",
                "deaths",
                "last_exit",
                "last_exit_stamp",
                "next_start",
                "backoff_ms",
                "health",
                "health_failures",
                "health_stamp",
                "health_restarts",
                "status_text",
                "main_pid",
                "health_message"
            ]
        );
        assert!(t.contains("\nstate ready\n"));
        assert!(t.contains("\nrestarts 2\n"));
        assert!(t.contains("\nnext_start -\n"));
        assert!(t.contains("\nbackoff_ms 1000\nhealth fail\nhealth_failures 2\n"));
        assert!(t.ends_with(
            "health_restarts 1\nstatus_text serving 3 sites\nmain_pid 1235\n\
             health_message HTTP 500 from 127.0.0.1:8000\n"
        ));
    }

    #[test]
    fn status_text_stays_one_line() {
        let mut e = sample();
        e.status_text = Some("two\nlines".into());
        let d = decode(&encode(&e)).unwrap();
        assert_eq!(d.status_text.as_deref(), Some("two lines"));
        assert_eq!(d.main_pid, 1235);
        e.status_text = None;
        assert!(encode(&e).contains("\nstatus_text -\n"));
    }

    #[test]
    fn roundtrip_and_unknown_keys() {
        let e = sample();
        assert_eq!(decode(&encode(&e)).unwrap(), e);
        let mut t = encode(&e);
        t.push_str("future_key whatever\n");
        assert_eq!(decode(&t).unwrap(), e);
    }

    #[test]
    fn bad_input_is_bad_format() {
        assert!(decode("").is_err());
        assert!(decode("version 2\nstate up\n").is_err());
        assert!(decode("version 1\nstate sideways\n").is_err());
        assert!(decode("version 1\nstate up\npid x\n").is_err());
    }

    #[test]
    fn deaths_roundtrip() {
        let d = vec![
            Death {
                stamp: Tai64n::from_unix(1, 500),
                pid: 5,
                wstatus: 15,
            },
            Death {
                stamp: Tai64n::from_unix(2, 500),
                pid: 6,
                wstatus: 1 << 8,
            },
        ];
        let t = encode_deaths(&d);
        assert_eq!(t.lines().count(), 2);
        assert_eq!(decode_deaths(&t).unwrap(), d);
        assert!(decode_deaths("x y\n").is_err());
    }

    #[test]
    fn write_then_read() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("supervise")).unwrap();
        write(d.path(), &sample()).unwrap();
        assert_eq!(read(d.path()).unwrap(), sample());
        write_deaths(d.path(), &[]).unwrap();
        assert!(read_deaths(d.path()).unwrap().is_empty());
    }
}
