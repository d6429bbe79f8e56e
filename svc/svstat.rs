//! svstat: print the status of supervised services.
//!
//! # Interface
//!
//! `svstat DIR...`
//!
//! One line per DIR on stdout, `DIR: ` followed by the first of these that applies
//! (REFERENCE.md §5):
//!
//! * `unable to chdir: ERR`
//! * `unable to stat down: ERR` (anything but "does not exist")
//! * `supervise not running`
//! * `unable to open supervise/ok: ERR`
//! * `unable to open supervise/status: ERR`
//! * `unable to read supervise/status: bad format` (or `: ERR`)
//! * `up (pid P) S seconds` or `down S seconds`, then, in this order, `, normally down`
//!   (up with a `down` file), `, normally up` (down without one), `, paused` (up),
//!   `, want up` (down), `, want down` (up).
//!
//! S is whole seconds since the last change, 0 when the stamp is in the future; the plural
//! is fixed (`1 seconds`).
//!
//! # Options (ours; REFERENCE.md §12.3)
//!
//! Options are recognised only before the first DIR, and only these; any other argument
//! (including an unknown `-x`) is a DIR, as in 0.76.
//!
//! * `-o FIELD,...`: one line per readable DIR, the values separated by spaces. Fields as
//!   s6-svstat's: `up wantedup normallyup ready paused pid exitcode signal signum
//!   updownsince readysince updownfor readyfor`, plus `dir format state want restarts
//!   deaths lastexit lastexitsince history` and, from our supervise only, `health
//!   healthfailures healthrestarts healthsince nextstart backoff mainpid statustext`. Booleans are `true`/`false`; `pid` is -1 when
//!   down; `exitcode`/`signum` are -1 and `signal` is `NA` unless the service is down after
//!   such a death; stamps are TAI64N (`@...`, daemontools' clock); unknown values are `NA`.
//! * `--json`: a JSON array, one object per DIR (`supervised`, `error`, `format`, `up`,
//!   `pid`, `normally_up`, `want`, `paused`, `state`, `ready`, `stamp`, `seconds`,
//!   `ready_stamp`, `ready_seconds`, `restarts`, `deaths`, `last_exit`, `last_exit_stamp`,
//!   `history`, `summary`, `health`, `next_start`, `backoff_ms`, `finish_pid`, `main_pid`,
//!   `status_text`, `supervisor_pid`, `commands`).
//! * `--prometheus`: the Prometheus text format (node_exporter textfile collector):
//!   `svc_supervised`, `svc_up`, `svc_ready`, `svc_want_up`, `svc_normally_up`,
//!   `svc_paused`, `svc_pid`, `svc_uptime_seconds`, `svc_state_change_seconds`,
//!   `svc_restarts_total`, `svc_deaths_total`, `svc_last_exit_code`,
//!   `svc_last_exit_signal`, `svc_failing`, `svc_health_ok`, `svc_health_failures`,
//!   `svc_health_restarts_total`, each labelled `service="DIR"`.
//!
//! Restarts, deaths, readiness and the exit history come from our supervise's sidecar
//! files (svcore::sidecar); s6's status gives readiness and the last wait status; the
//! other formats give what their status file holds.
//!
//! # Exit codes
//!
//! * 0 always, whatever the services' states (the 0.76 line, `--json`, `--prometheus`).
//! * 1 with `-o` when some DIR could not be read (its 0.76 text goes to stderr as
//!   `svstat: warning: DIR: TEXT` and it gets no line).
//! * 100: `-o` without fields or with an unknown field.
//! * 111: `svstat: fatal: unable to open current directory: ERR` or
//!   `svstat: fatal: unable to set directory: ERR`.
//!
//! # Notes
//!
//! * The line is 0.76's, byte for byte. With no DIR nothing is printed. Arguments are all
//!   directories: 0.76 has no options, so `svstat -x` reports a directory named `-x`.
//! * It reads every supervisor's status file (REFERENCE.md §11.7): daemontools and ours
//!   (18 bytes), runit (20, with `supervise/stat`), daemontools-encore (20 or 40), nosh (87)
//!   and s6 (35, real-TAI stamps converted, liveness from an fcntl lock on
//!   `supervise/lock` because s6 has no `ok` FIFO). A 0.76 svstat reads the first four
//!   through their common 18-byte prefix and calls an s6 service
//!   `unable to open supervise/ok: file does not exist`.
//! * A read error on `status` prints `unable to read supervise/status: ERR`, as the table
//!   says. 0.76 misses it (it compares `r < sizeof status` with `r == -1` as unsigned) and
//!   prints whatever the previous DIR left in its buffer; we do not copy that bug.

mod origdir;
mod report;

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use svcore::errstr::{self, EXIT_OK, EXIT_PERMANENT, EXIT_TEMPORARY, io_str};
use svcore::svstat;
use svcore::tai64n::Tai64n;

const USAGE: &str = "svstat: usage: svstat [ -o field,... | --json | --prometheus ] dir ...";

/// What to print.
#[derive(Debug, PartialEq, Eq)]
enum Mode {
    /// 0.76's line.
    Line,
    /// `-o`: these fields.
    Fields(Vec<String>),
    /// `--json`.
    Json,
    /// `--prometheus`.
    Prometheus,
}

/// Splits the options off. Only our options count; the first other argument is a DIR.
fn parse(args: &[OsString]) -> Result<(Mode, &[OsString]), String> {
    let mut mode = Mode::Line;
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_bytes();
        match a {
            b"--" => {
                i += 1;
                break;
            }
            b"--json" => mode = Mode::Json,
            b"--prometheus" => mode = Mode::Prometheus,
            b"-o" => {
                i += 1;
                let f = args.get(i).ok_or_else(|| USAGE.to_string())?;
                mode = Mode::Fields(split_fields(&f.to_string_lossy())?);
            }
            _ if a.starts_with(b"-o") && a.len() > 2 => {
                mode = Mode::Fields(split_fields(&String::from_utf8_lossy(&a[2..]))?);
            }
            _ => break,
        }
        i += 1;
    }
    Ok((mode, &args[i..]))
}

fn split_fields(s: &str) -> Result<Vec<String>, String> {
    let v: Vec<String> = s.split(',').map(str::to_string).collect();
    let names: Vec<&str> = v.iter().map(String::as_str).collect();
    report::check_fields(&names).map_err(|f| format!("svstat: fatal: unknown field: {f}"))?;
    Ok(v)
}

/// The text after `DIR: ` for the current directory (the caller has just entered it).
fn describe_here() -> String {
    match svstat::probe(Path::new(".")) {
        // 0.76 reads the clock after reading the status.
        Ok(s) => svstat::line(&s, Tai64n::now()),
        Err(p) => p.text(),
    }
}

/// Visits each DIR as 0.76 does (chdir, then fchdir back) and calls `visit` inside it, or
/// with the chdir error. `Err` is one of the two fatal cwd problems.
fn visit_all(
    dirs: &[OsString],
    mut visit: impl FnMut(&OsString, Result<(), String>),
) -> Result<(), String> {
    let orig = origdir::OrigDir::open()
        .map_err(|e| format!("unable to open current directory: {}", io_str(&e)))?;
    for dir in dirs {
        match origdir::enter(dir) {
            Err(e) => visit(dir, Err(format!("unable to chdir: {}", io_str(&e)))),
            Ok(()) => visit(dir, Ok(())),
        }
        orig.restore()
            .map_err(|e| format!("unable to set directory: {}", io_str(&e)))?;
    }
    Ok(())
}

/// The 0.76 report for each DIR.
fn lines(dirs: &[OsString]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    visit_all(dirs, |dir, entered| {
        out.extend_from_slice(dir.as_bytes());
        out.extend_from_slice(b": ");
        let text = entered.map(|()| describe_here()).unwrap_or_else(|e| e);
        out.extend_from_slice(text.as_bytes());
        out.push(b'\n');
    })?;
    Ok(out)
}

/// The machine-readable reports for each DIR.
fn reports(dirs: &[OsString]) -> Result<Vec<report::Report>, String> {
    let mut v = Vec::new();
    visit_all(dirs, |dir, entered| {
        let name = dir.to_string_lossy().into_owned();
        v.push(match entered {
            Ok(()) => report::build(name),
            Err(text) => report::Report {
                dir: name,
                state: Err(text),
            },
        });
    })?;
    Ok(v)
}

/// Renders the chosen mode: (stdout, exit code).
fn render(mode: &Mode, dirs: &[OsString]) -> Result<(Vec<u8>, i32), String> {
    if *mode == Mode::Line {
        return lines(dirs).map(|o| (o, EXIT_OK));
    }
    let reps = reports(dirs)?;
    Ok(match mode {
        Mode::Json => {
            let v: Vec<serde_json::Value> = reps.iter().map(report::Report::json).collect();
            let mut s = serde_json::Value::Array(v).to_string();
            s.push('\n');
            (s.into_bytes(), EXIT_OK)
        }
        Mode::Prometheus => (report::prometheus(&reps).into_bytes(), EXIT_OK),
        Mode::Fields(fields) => {
            let names: Vec<&str> = fields.iter().map(String::as_str).collect();
            let mut out = Vec::new();
            let mut code = EXIT_OK;
            for r in &reps {
                match (r.fields_line(&names), &r.state) {
                    (Ok(Some(l)), _) => {
                        out.extend_from_slice(l.as_bytes());
                        out.push(b'\n');
                    }
                    (_, Err(text)) => {
                        errstr::warn("svstat", &format!("{}: {text}", r.dir));
                        code = 1;
                    }
                    // Field names were checked while parsing.
                    _ => {}
                }
            }
            (out, code)
        }
        Mode::Line => (Vec::new(), EXIT_OK),
    })
}

fn main() {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let (mode, dirs) = match parse(&args) {
        Ok(p) => p,
        Err(msg) => {
            errstr::emit(&msg);
            std::process::exit(EXIT_PERMANENT);
        }
    };
    match render(&mode, dirs) {
        Ok((out, code)) => {
            // 0.76 ignores a failing stdout too; the exit code stays.
            let _ = std::io::stdout().lock().write_all(&out);
            std::process::exit(code);
        }
        Err(text) => errstr::die("svstat", &text, EXIT_TEMPORARY),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: &[&str]) -> Result<(Mode, Vec<String>), String> {
        let a: Vec<OsString> = v.iter().map(OsString::from).collect();
        parse(&a).map(|(m, d)| {
            (
                m,
                d.iter().map(|x| x.to_string_lossy().into_owned()).collect(),
            )
        })
    }

    #[test]
    fn plain_arguments_are_dirs_even_with_dashes() {
        assert_eq!(
            p(&["-x", "a"]),
            Ok((Mode::Line, vec!["-x".into(), "a".into()]))
        );
        assert_eq!(p(&[]), Ok((Mode::Line, vec![])));
    }

    #[test]
    fn options() {
        assert_eq!(p(&["--json", "a"]), Ok((Mode::Json, vec!["a".into()])));
        assert_eq!(
            p(&["--prometheus", "--", "--json"]),
            Ok((Mode::Prometheus, vec!["--json".into()]))
        );
        assert_eq!(
            p(&["-o", "up,pid", "a"]),
            Ok((
                Mode::Fields(vec!["up".into(), "pid".into()]),
                vec!["a".into()]
            ))
        );
        assert_eq!(
            p(&["-oup", "a"]),
            Ok((Mode::Fields(vec!["up".into()]), vec!["a".into()]))
        );
        assert!(p(&["-o"]).is_err());
        assert_eq!(
            p(&["-o", "up,bogus"]),
            Err("svstat: fatal: unknown field: bogus".into())
        );
    }
}
