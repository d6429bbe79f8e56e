//! svstat's machine-readable outputs (REFERENCE.md §12.3): `-o field,...`, `--json` and
//! `--prometheus`, over every status format svcore reads.
//!
//! A [`Report`] is built from what is on disk: the 0.76 probe (liveness, `down`,
//! `status` in any format) and, when the supervisor is ours, the sidecar files
//! `supervise/status.ext` and `supervise/deaths` (svcore::sidecar). The sidecar is trusted
//! only while its pid and stamp agree with `status`: a file left behind by an earlier
//! supervise of ours, later replaced by a 0.76 one, is ignored. Without it, fields the
//! status file cannot give are `NA` (`-o`), `null` (JSON) or absent (Prometheus).

use serde_json::{Value, json};
use std::fmt::Write as _;
use std::path::Path;
use svcore::sidecar::{self, Death, Ext, Phase};
use svcore::status::Want;
use svcore::statusfmt::{self, Format};
use svcore::svstat::{self, Service};
use svcore::tai64n::Tai64n;

/// Everything known about one DIR.
pub struct Report {
    /// The DIR argument as given.
    pub dir: String,
    /// The state, or 0.76's text for why it could not be read.
    pub state: Result<Full, String>,
}

/// A readable service.
pub struct Full {
    /// The probe's result.
    pub svc: Service,
    /// Our supervise's sidecar, when present and consistent with `status`.
    pub ext: Option<Ext>,
    /// Our supervise's death history, oldest first (empty when unknown).
    pub deaths: Vec<Death>,
    /// When it was read.
    pub now: Tai64n,
    /// DIR has s6's `notification-fd` file.
    pub s6_notify: bool,
    /// Permission hazards of DIR (svcore::perms::hazards): a root service whose `run` or
    /// directory others may write (OPENACS.md's `chmod -R go+rwX` gotcha).
    pub hazards: Vec<String>,
}

/// Reads the service in the current directory (the caller has entered DIR).
///
/// Our supervise writes `status.ext` just after `status`; a reader that falls between
/// the two renames reads again (a few times, briefly) rather than report a state without
/// its sidecar.
pub fn build(dir: String) -> Report {
    let mut attempts = 0;
    loop {
        let (report, lagging) = build_once(dir.clone());
        attempts += 1;
        if !lagging || attempts >= 5 {
            return report;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

/// One reading; the flag says the sidecar exists but does not describe `status` yet.
fn build_once(dir: String) -> (Report, bool) {
    let here = Path::new(".");
    let mut lagging = false;
    let state = match svstat::probe(here) {
        Err(p) => Err(p.text()),
        Ok(svc) => {
            let read = sidecar::read(here).ok();
            let ours = svc.record.format == Format::Daemontools;
            let ext = read.filter(|e| {
                let agrees =
                    u64::from(e.pid) == svc.record.pid && e.stamp.secs == svc.record.stamp.secs;
                // A sidecar whose supervise is gone was left behind: not worth a re-read.
                lagging = ours && !agrees && supervisor_alive(e.supervisor);
                ours && agrees
            });
            let deaths = match ext {
                Some(_) => sidecar::read_deaths(here).unwrap_or_default(),
                None => Vec::new(),
            };
            Ok(Full {
                svc,
                ext,
                deaths,
                now: Tai64n::now(),
                s6_notify: here.join("notification-fd").exists(),
                hazards: svcore::perms::hazards(here),
            })
        }
    };
    (Report { dir, state }, lagging)
}

/// True while a process with this pid exists (kill with signal 0).
fn supervisor_alive(pid: u32) -> bool {
    if pid == 0 {
        return false;
    }
    // SAFETY: kill(2) with signal 0 only checks for existence and permission.
    let r = unsafe { libc::kill(pid as libc::pid_t, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// The `-o` field names, in the order `--help`-style messages list them.
pub const FIELDS: &[&str] = &[
    "up",
    "wantedup",
    "normallyup",
    "ready",
    "paused",
    "pid",
    "exitcode",
    "signal",
    "signum",
    "updownsince",
    "readysince",
    "updownfor",
    "readyfor",
    "dir",
    "format",
    "state",
    "want",
    "restarts",
    "deaths",
    "lastexit",
    "lastexitsince",
    "history",
    "health",
    "healthfailures",
    "healthrestarts",
    "healthsince",
    "nextstart",
    "backoff",
    "mainpid",
    "statustext",
    "hazards",
];

/// Signal names for `signal`/`lastexit` (Linux numbering).
fn signame(n: u8) -> String {
    const NAMES: [&str; 32] = [
        "",
        "SIGHUP",
        "SIGINT",
        "SIGQUIT",
        "SIGILL",
        "SIGTRAP",
        "SIGABRT",
        "SIGBUS",
        "SIGFPE",
        "SIGKILL",
        "SIGUSR1",
        "SIGSEGV",
        "SIGUSR2",
        "SIGPIPE",
        "SIGALRM",
        "SIGTERM",
        "SIGSTKFLT",
        "SIGCHLD",
        "SIGCONT",
        "SIGSTOP",
        "SIGTSTP",
        "SIGTTIN",
        "SIGTTOU",
        "SIGURG",
        "SIGXCPU",
        "SIGXFSZ",
        "SIGVTALRM",
        "SIGPROF",
        "SIGWINCH",
        "SIGIO",
        "SIGPWR",
        "SIGSYS",
    ];
    match NAMES.get(usize::from(n)) {
        Some(s) if !s.is_empty() => (*s).to_string(),
        _ => format!("SIG{n}"),
    }
}

impl Full {
    fn up(&self) -> bool {
        self.svc.is_up()
    }

    /// Ready: ours from the sidecar (a service without readiness configured is ready as
    /// soon as it is up, as in s6); s6 from its flag (meaningful only while up); the other
    /// formats have no readiness, so "up" is "ready" (REFERENCE.md §12.5).
    fn ready(&self) -> bool {
        if !self.up() {
            return false;
        }
        match (&self.ext, self.svc.record.ready) {
            (Some(e), _) => e.ready || e.phase == Phase::Up,
            // s6 sets its flag only when the service has `notification-fd`; without
            // it, up is ready (as `s6-svc -wU` treats it).
            (None, Some(r)) => r || !self.s6_notify,
            (None, None) => true,
        }
    }

    fn ready_stamp(&self) -> Option<Tai64n> {
        if !self.ready() {
            return None;
        }
        let from_ext = self.ext.as_ref().and_then(|e| e.ready_stamp);
        Some(
            from_ext
                .or(self.svc.record.ready_stamp)
                .unwrap_or(self.svc.record.stamp),
        )
    }

    /// The last death's wait status, from the sidecar or s6's status.
    fn last_wait(&self) -> Option<i32> {
        match &self.ext {
            Some(e) => e.last_exit,
            // s6 writes 0 there until the first death, so, like s6-svstat, trust it only
            // while the service is down.
            None if !self.up() => self.svc.record.last_wait.map(i32::from),
            None => None,
        }
    }

    fn last_death(&self) -> Option<statusfmt::Death> {
        self.last_wait().map(|w| statusfmt::death(w as u16))
    }

    /// A state word: ours from the sidecar, the others derived from their status.
    fn state_word(&self) -> &'static str {
        if let Some(e) = &self.ext {
            return e.phase.word();
        }
        let r = &self.svc.record;
        if r.finishing {
            "finishing"
        } else if !self.up() {
            "down"
        } else if r.ready == Some(true) {
            "ready"
        } else {
            "up"
        }
    }

    fn want_word(&self) -> &'static str {
        match self.svc.record.want {
            Want::Up => "up",
            Want::Down => "down",
            Want::Once => "once",
        }
    }

    fn last_exit_text(&self) -> Option<String> {
        self.last_death().map(|d| match d {
            statusfmt::Death::Exit(c) => format!("exit {c}"),
            statusfmt::Death::Signal(s) => format!("signal {}", signame(s)),
        })
    }

    /// `last exit 1, 3 deaths in 10 s` (REFERENCE.md §12.4): the deaths in the history and
    /// the time from the oldest of them to now.
    fn history_text(&self) -> Option<String> {
        let first = self.deaths.first()?;
        let span = self.now.secs.saturating_sub(first.stamp.secs);
        let last = self.last_exit_text().unwrap_or_else(|| "NA".into());
        Some(format!(
            "last {last}, {} deaths in {span} s",
            self.deaths.len()
        ))
    }

    /// One `-o` field as text (`NA` when unknown). `None` for an unknown field name.
    fn field(&self, dir: &str, name: &str) -> Option<String> {
        let b = |v: bool| if v { "true" } else { "false" }.to_string();
        let r = &self.svc.record;
        let down_death = if self.up() { None } else { self.last_death() };
        let na = || "NA".to_string();
        Some(match name {
            "up" => b(self.up()),
            "wantedup" => b(r.want == Want::Up),
            "normallyup" => b(self.svc.normally_up),
            "ready" => b(self.ready()),
            "paused" => b(self.up() && r.paused),
            "pid" => {
                if self.up() {
                    r.pid.to_string()
                } else {
                    "-1".into()
                }
            }
            // As s6-svstat: exit code and signal of the last death, only while down.
            "exitcode" => match down_death {
                Some(statusfmt::Death::Exit(c)) => c.to_string(),
                _ => "-1".into(),
            },
            "signal" => match down_death {
                Some(statusfmt::Death::Signal(s)) => signame(s),
                _ => na(),
            },
            "signum" => match down_death {
                Some(statusfmt::Death::Signal(s)) => s.to_string(),
                _ => "-1".into(),
            },
            "updownsince" => r.stamp.to_string(),
            "readysince" => self.ready_stamp().map(|t| t.to_string()).unwrap_or_else(na),
            "updownfor" => self.svc.age(self.now).to_string(),
            "readyfor" => self
                .ready_stamp()
                .map(|t| self.now.secs.saturating_sub(t.secs).to_string())
                .unwrap_or_else(na),
            "dir" => dir.to_string(),
            "format" => r.format.name().to_string(),
            "state" => self.state_word().to_string(),
            "want" => self.want_word().to_string(),
            "restarts" => self
                .ext
                .as_ref()
                .map(|e| e.restarts().to_string())
                .unwrap_or_else(na),
            "deaths" => self
                .ext
                .as_ref()
                .map(|e| e.deaths.to_string())
                .unwrap_or_else(na),
            "lastexit" => self
                .last_exit_text()
                .map(|t| t.replace(' ', ":"))
                .unwrap_or_else(na),
            "lastexitsince" => self
                .ext
                .as_ref()
                .and_then(|e| e.last_exit_stamp)
                .map(|t| t.to_string())
                .unwrap_or_else(na),
            "history" => self
                .history_text()
                .map(|t| t.replace(' ', "_"))
                .unwrap_or_else(na),
            // Our supervise's sidecar only (svcore::sidecar); NA elsewhere.
            "health" => self
                .ext
                .as_ref()
                .and_then(|e| e.health)
                .map(|h| if h { "ok" } else { "fail" }.to_string())
                .unwrap_or_else(na),
            "healthfailures" => self.ext_num(|e| u64::from(e.health_failures)),
            "healthrestarts" => self.ext_num(|e| e.health_restarts),
            "healthsince" => self.ext_stamp(|e| e.health_stamp),
            "nextstart" => self.ext_stamp(|e| e.next_start),
            "backoff" => self.ext_num(|e| e.backoff_ms),
            "mainpid" => self.ext_num(|e| u64::from(e.main_pid)),
            "statustext" => self
                .ext
                .as_ref()
                .and_then(|e| e.status_text.as_deref())
                .map(|t| t.replace(' ', "_"))
                .unwrap_or_else(na),
            // How many permission hazards; --json lists their text.
            "hazards" => self.hazards.len().to_string(),
            _ => return None,
        })
    }

    /// A sidecar number as text, `NA` without a sidecar.
    fn ext_num(&self, f: impl Fn(&Ext) -> u64) -> String {
        self.ext
            .as_ref()
            .map(|e| f(e).to_string())
            .unwrap_or_else(|| "NA".into())
    }

    /// A sidecar stamp as text, `NA` without a sidecar or stamp.
    fn ext_stamp(&self, f: impl Fn(&Ext) -> Option<Tai64n>) -> String {
        self.ext
            .as_ref()
            .and_then(f)
            .map(|t| t.to_string())
            .unwrap_or_else(|| "NA".into())
    }

    fn json(&self, dir: &str) -> Value {
        let r = &self.svc.record;
        let up = self.up();
        let last = self.last_death().map(|d| match d {
            statusfmt::Death::Exit(c) => json!({"code": c}),
            statusfmt::Death::Signal(s) => json!({"signal": s, "name": signame(s)}),
        });
        let history: Vec<Value> = self
            .deaths
            .iter()
            .map(|d| {
                let mut v =
                    json!({"stamp": d.stamp.to_string(), "pid": d.pid, "wstatus": d.wstatus});
                match statusfmt::death(d.wstatus as u16) {
                    statusfmt::Death::Exit(c) => v["code"] = json!(c),
                    statusfmt::Death::Signal(s) => v["signal"] = json!(s),
                }
                v
            })
            .collect();
        json!({
            "dir": dir,
            "supervised": true,
            "error": null,
            "format": r.format.name(),
            "up": up,
            "pid": if up { json!(r.pid) } else { Value::Null },
            "normally_up": self.svc.normally_up,
            "want": self.want_word(),
            "paused": up && r.paused,
            "state": self.state_word(),
            "ready": self.ready(),
            "stamp": r.stamp.to_string(),
            "seconds": self.svc.age(self.now),
            "ready_stamp": self.ready_stamp().map(|t| t.to_string()),
            "ready_seconds": self.ready_stamp().map(|t| self.now.secs.saturating_sub(t.secs)),
            "restarts": self.ext.as_ref().map(|e| e.restarts()),
            "deaths": self.ext.as_ref().map(|e| e.deaths),
            "last_exit": last,
            "last_exit_stamp": self.ext.as_ref().and_then(|e| e.last_exit_stamp).map(|t| t.to_string()),
            "history": history,
            "summary": self.history_text(),
            "health": self.ext.as_ref().map(|e| json!({
                "result": e.health.map(|h| if h { "ok" } else { "fail" }),
                "failures": e.health_failures,
                "restarts": e.health_restarts,
                "stamp": e.health_stamp.map(|t| t.to_string()),
            })),
            "next_start": self.ext.as_ref().and_then(|e| e.next_start).map(|t| t.to_string()),
            "backoff_ms": self.ext.as_ref().map(|e| e.backoff_ms),
            "finish_pid": self.ext.as_ref().map(|e| e.finish_pid),
            "main_pid": self.ext.as_ref().map(|e| e.main_pid),
            "status_text": self.ext.as_ref().and_then(|e| e.status_text.clone()),
            "supervisor_pid": self.ext.as_ref().map(|e| e.supervisor),
            "commands": self.ext.as_ref().map(|e| e.commands),
            "hazards": self.hazards,
        })
    }
}

impl Report {
    /// The `-o` line: values separated by single spaces. `Err` names an unknown field.
    pub fn fields_line(&self, fields: &[&str]) -> Result<Option<String>, String> {
        let Ok(full) = &self.state else {
            return Ok(None);
        };
        let mut vals = Vec::with_capacity(fields.len());
        for f in fields {
            vals.push(full.field(&self.dir, f).ok_or_else(|| (*f).to_string())?);
        }
        Ok(Some(vals.join(" ")))
    }

    /// One JSON object.
    pub fn json(&self) -> Value {
        match &self.state {
            Ok(full) => full.json(&self.dir),
            Err(text) => json!({"dir": self.dir, "supervised": false, "error": text}),
        }
    }
}

/// Checks `-o` field names before anything is read.
pub fn check_fields(fields: &[&str]) -> Result<(), String> {
    match fields.iter().find(|f| !FIELDS.contains(f)) {
        Some(f) => Err((*f).to_string()),
        None => Ok(()),
    }
}

/// Escapes a Prometheus label value: backslash, double quote and newline.
fn label(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

/// One metric family: name, type, help, and how to get a value from a report.
type Metric = (
    &'static str,
    &'static str,
    &'static str,
    fn(&Report) -> Option<f64>,
);

fn full(r: &Report) -> Option<&Full> {
    r.state.as_ref().ok()
}

fn b(v: bool) -> f64 {
    if v { 1.0 } else { 0.0 }
}

const METRICS: &[Metric] = &[
    (
        "svc_supervised",
        "gauge",
        "Whether a supervisor is running for the service (1) or not (0).",
        |r| Some(b(r.state.is_ok())),
    ),
    (
        "svc_up",
        "gauge",
        "Whether the service's process is running (1) or not (0).",
        |r| Some(b(full(r).is_some_and(Full::up))),
    ),
    (
        "svc_ready",
        "gauge",
        "Whether the service is up and ready (1) or not (0).",
        |r| Some(b(full(r).is_some_and(Full::ready))),
    ),
    (
        "svc_want_up",
        "gauge",
        "Whether the supervisor wants the service up (1) or not (0).",
        |r| full(r).map(|f| b(f.svc.record.want == Want::Up)),
    ),
    (
        "svc_normally_up",
        "gauge",
        "Whether the service has no down file (1) or has one (0).",
        |r| full(r).map(|f| b(f.svc.normally_up)),
    ),
    (
        "svc_paused",
        "gauge",
        "Whether the service's process is paused (1) or not (0).",
        |r| full(r).map(|f| b(f.up() && f.svc.record.paused)),
    ),
    (
        "svc_pid",
        "gauge",
        "Process id of the service, 0 when it is not running.",
        |r| full(r).map(|f| if f.up() { f.svc.record.pid as f64 } else { 0.0 }),
    ),
    (
        "svc_uptime_seconds",
        "gauge",
        "Seconds the service has been up, 0 when it is down.",
        |r| full(r).map(|f| if f.up() { f.svc.age(f.now) as f64 } else { 0.0 }),
    ),
    (
        "svc_state_change_seconds",
        "gauge",
        "Seconds since the service last went up or down.",
        |r| full(r).map(|f| f.svc.age(f.now) as f64),
    ),
    (
        "svc_restarts_total",
        "counter",
        "Restarts of the service since its supervisor started.",
        |r| {
            full(r)
                .and_then(|f| f.ext.as_ref())
                .map(|e| e.restarts() as f64)
        },
    ),
    (
        "svc_deaths_total",
        "counter",
        "Deaths of the service's process since its supervisor started.",
        |r| {
            full(r)
                .and_then(|f| f.ext.as_ref())
                .map(|e| e.deaths as f64)
        },
    ),
    (
        "svc_last_exit_code",
        "gauge",
        "Exit code of the last death, -1 when it was killed by a signal.",
        |r| {
            full(r).and_then(Full::last_death).map(|d| match d {
                statusfmt::Death::Exit(c) => f64::from(c),
                statusfmt::Death::Signal(_) => -1.0,
            })
        },
    ),
    (
        "svc_last_exit_signal",
        "gauge",
        "Signal that killed the process at the last death, 0 when it exited.",
        |r| {
            full(r).and_then(Full::last_death).map(|d| match d {
                statusfmt::Death::Exit(_) => 0.0,
                statusfmt::Death::Signal(s) => f64::from(s),
            })
        },
    ),
    (
        "svc_permission_hazards",
        "gauge",
        "Permission hazards of the service directory (a root service whose run or directory others may write).",
        |r| full(r).map(|f| f.hazards.len() as f64),
    ),
    (
        "svc_failing",
        "gauge",
        "Whether the service is in a crash loop or failed for good (1) or not (0).",
        |r| {
            full(r)
                .and_then(|f| f.ext.as_ref())
                .map(|e| b(matches!(e.phase, Phase::Failing | Phase::Failed)))
        },
    ),
    (
        "svc_health_ok",
        "gauge",
        "Whether the last health probe succeeded (1) or failed (0).",
        |r| {
            full(r)
                .and_then(|f| f.ext.as_ref())
                .and_then(|e| e.health)
                .map(b)
        },
    ),
    (
        "svc_health_failures",
        "gauge",
        "Consecutive failed health probes of the current run.",
        |r| {
            full(r)
                .and_then(|f| f.ext.as_ref())
                .map(|e| f64::from(e.health_failures))
        },
    ),
    (
        "svc_health_restarts_total",
        "counter",
        "Restarts caused by failed health probes since the supervisor started.",
        |r| {
            full(r)
                .and_then(|f| f.ext.as_ref())
                .map(|e| e.health_restarts as f64)
        },
    ),
];

/// The Prometheus text exposition (node_exporter's textfile collector format): for each
/// family, `# HELP` and `# TYPE` once, then one sample per service that has a value.
pub fn prometheus(reports: &[Report]) -> String {
    let mut out = String::new();
    for (name, kind, help, get) in METRICS {
        let samples: Vec<(String, f64)> = reports
            .iter()
            .filter_map(|r| get(r).map(|v| (label(&r.dir), v)))
            .collect();
        if samples.is_empty() {
            continue;
        }
        // Writing to a String cannot fail.
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (service, v) in samples {
            let _ = writeln!(out, "{name}{{service=\"{service}\"}} {v}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_escaping() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn signal_names() {
        assert_eq!(signame(15), "SIGTERM");
        assert_eq!(signame(9), "SIGKILL");
        assert_eq!(signame(40), "SIG40");
    }

    #[test]
    fn unknown_fields_are_rejected() {
        assert_eq!(check_fields(&["up", "pid"]), Ok(()));
        assert_eq!(check_fields(&["up", "nope"]), Err("nope".into()));
    }

    #[test]
    fn prometheus_for_an_unsupervised_dir() {
        let r = Report {
            dir: "x\"y".into(),
            state: Err("supervise not running".into()),
        };
        let text = prometheus(&[r]);
        assert!(text.contains("svc_supervised{service=\"x\\\"y\"} 0\n"));
        assert!(text.contains("svc_up{service=\"x\\\"y\"} 0\n"));
        assert!(!text.contains("svc_pid"));
    }
}
