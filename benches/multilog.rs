//! multilog throughput and latency, ours beside Debian's multilog, runit's svlogd and
//! s6-log. Not a timed test (STYLE.md): `cargo bench --bench multilog` prints a table;
//! results are kept in docs/BENCHMARKS-multilog.md.
//!
//! Throughput: `BENCH_MB` (default 200) MB of 100-byte lines are written through a pipe
//! into each logger, rotating with `s1000000 n10`, with and without TAI64N stamps. The log
//! directories live in /dev/shm (when present) so the disk does not hide the loggers' own
//! cost. We report wall-clock MB/s and the logger's CPU seconds (user + system, from
//! `getrusage(RUSAGE_CHILDREN)`; the writer is a thread of this process, not a child).
//!
//! Latency: with slow input (one line, then wait), the time from `write(2)` of the line
//! into the pipe until `current` has grown by it, median and 99th percentile of 300 lines.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const LINE: usize = 100;
const LAT_LINES: usize = 300;

fn ours() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_multilog"))
}

/// A logger under test: a label and how to run it on a directory.
struct Logger {
    name: &'static str,
    prog: PathBuf,
    /// Builds the argument list for `dir`, with or without stamps; may prepare `dir`.
    args: fn(&Path, bool) -> Vec<String>,
}

fn multilog_args(dir: &Path, t: bool) -> Vec<String> {
    let mut v = Vec::new();
    if t {
        v.push("t".into());
    }
    v.extend(["s1000000".into(), "n10".into(), dir.display().to_string()]);
    v
}

fn svlogd_args(dir: &Path, t: bool) -> Vec<String> {
    // svlogd takes size and count from DIR/config; -t prefixes a TAI64N stamp.
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join("config"), "s1000000\nn10\n").unwrap();
    let mut v = Vec::new();
    if t {
        v.push("-t".into());
    }
    v.push(dir.display().to_string());
    v
}

fn s6_log_args(dir: &Path, t: bool) -> Vec<String> {
    let mut v = Vec::new();
    if t {
        v.push("t".into());
    }
    v.extend(["n10".into(), "s1000000".into(), dir.display().to_string()]);
    v
}

/// CPU seconds used by reaped children so far.
fn children_cpu() -> f64 {
    // SAFETY: an all-zero rusage is a valid value; getrusage fills it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_CHILDREN with a valid pointer.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Runs `l` over `data` once; returns (wall seconds, CPU seconds).
fn throughput(l: &Logger, base: &Path, data: &'static [u8], t: bool) -> (f64, f64) {
    let dir = base.join(format!("{}-{}", l.name.replace(' ', "_"), t));
    let _ = fs::remove_dir_all(&dir);
    let args = (l.args)(&dir, t);
    let cpu0 = children_cpu();
    let start = Instant::now();
    let mut child = Command::new(&l.prog)
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        stdin.write_all(data).unwrap();
    });
    writer.join().unwrap();
    let st = child.wait().unwrap();
    let wall = start.elapsed().as_secs_f64();
    assert!(st.success(), "{} {args:?}: {st}", l.name);
    let cpu = children_cpu() - cpu0;
    let _ = fs::remove_dir_all(&dir);
    (wall, cpu)
}

/// Median and p99 of the time a single line takes to reach `current` with slow input.
fn latency(l: &Logger, base: &Path) -> (Duration, Duration) {
    let dir = base.join(format!("{}-lat", l.name.replace(' ', "_")));
    let _ = fs::remove_dir_all(&dir);
    let args = (l.args)(&dir, true);
    let mut child = Command::new(&l.prog)
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let cur = dir.join("current");
    let size = || fs::metadata(&cur).map(|m| m.size()).unwrap_or(0);
    let line = format!("{}\n", "l".repeat(LINE - 1));
    let mut v = Vec::with_capacity(LAT_LINES);
    for _ in 0..LAT_LINES {
        let before = size();
        let t0 = Instant::now();
        stdin.write_all(line.as_bytes()).unwrap();
        let give_up = t0 + Duration::from_secs(5);
        while size() <= before {
            assert!(
                Instant::now() < give_up,
                "{}: line never reached current",
                l.name
            );
            std::hint::spin_loop();
        }
        v.push(t0.elapsed());
        std::thread::sleep(Duration::from_millis(1));
    }
    drop(stdin);
    child.wait().unwrap();
    let _ = fs::remove_dir_all(&dir);
    v.sort();
    (v[v.len() / 2], v[v.len() * 99 / 100])
}

fn main() {
    let mb: usize = std::env::var("BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let mut data = Vec::with_capacity(mb * 1_000_000);
    let mut i = 0u64;
    while data.len() + LINE <= mb * 1_000_000 {
        let head = format!("{i:012} GET /openacs/page?id={i} HTTP/1.1 200 ");
        data.extend_from_slice(head.as_bytes());
        data.extend(std::iter::repeat_n(b'x', LINE - 1 - head.len()));
        data.push(b'\n');
        i += 1;
    }
    let data: &'static [u8] = data.leak();
    let shm = Path::new("/dev/shm");
    let base = tempfile::Builder::new()
        .prefix("mlbench")
        .tempdir_in(if shm.is_dir() { shm } else { Path::new("/tmp") })
        .unwrap();

    let mut loggers = vec![Logger {
        name: "ours multilog",
        prog: ours(),
        args: multilog_args,
    }];
    for (name, prog, args) in [
        (
            "daemontools multilog",
            "/usr/bin/multilog",
            multilog_args as fn(&Path, bool) -> Vec<String>,
        ),
        ("runit svlogd", "/usr/bin/svlogd", svlogd_args),
        ("s6-log", "/usr/bin/s6-log", s6_log_args),
    ] {
        if Path::new(prog).exists() {
            loggers.push(Logger {
                name,
                prog: PathBuf::from(prog),
                args,
            });
        } else {
            println!("({prog} is missing: left out)");
        }
    }

    let mbytes = data.len() as f64 / 1e6;
    let lines = data.len() / LINE;
    println!(
        "throughput: {mbytes:.0} MB, {lines} lines of {LINE} bytes, s1000000 n10, logs in {}",
        base.path().display()
    );
    println!(
        "{:<22} {:>5} {:>9} {:>9} {:>12}",
        "logger", "stamp", "MB/s", "CPU s", "CPU ns/line"
    );
    for t in [true, false] {
        for l in &loggers {
            let (wall, cpu) = throughput(l, base.path(), data, t);
            println!(
                "{:<22} {:>5} {:>9.0} {:>9.2} {:>12.0}",
                l.name,
                if t { "t" } else { "-" },
                mbytes / wall,
                cpu,
                cpu * 1e9 / lines as f64
            );
        }
    }
    println!();
    println!("latency with slow input ({LAT_LINES} single lines, 1 ms apart, with stamps):");
    println!("{:<22} {:>12} {:>12}", "logger", "median us", "p99 us");
    for l in &loggers {
        let (med, p99) = latency(l, base.path());
        println!(
            "{:<22} {:>12.1} {:>12.1}",
            l.name,
            med.as_secs_f64() * 1e6,
            p99.as_secs_f64() * 1e6
        );
    }
}
