//! Client benchmark: acknowledged control and waiting (issue 6), ours beside runit's and
//! s6's equivalents, and svstat beside Debian's. Not a test: it prints a results table.
//!
//! Run: `cargo bench --bench clients` (release profile). `SVBENCH_ROUNDS` sets the latency
//! samples per row (default 10), `SVBENCH_IDLE_SECS` the waiter's idle window (default 5).
//!
//! Rows:
//! 1. "down, acknowledged": the time of one command that returns once the service is down:
//!    `svc --wait -d` (ours, against our supervise and against Debian's 0.76 supervise),
//!    `sv -w 10 down` (runit), `s6-svc -wd -d` (s6).
//! 2. "up, acknowledged": the same for up (`svc --wait -u`, `sv -w 10 up`,
//!    `s6-svc -wu -u`). The child lived more than 1 s, so no start-to-start floor applies.
//! 3. Wakeups of a waiter for a state that never comes, over the idle window: voluntary +
//!    nonvoluntary context switches (`/proc/PID/status`) of `svwait -d` (ours, on our
//!    supervise: event fifodir; on Debian's: the polling fallback), `s6-svwait -d`, and
//!    runit's `sv -w 3600 down` on a service that ignores TERM (runit has no pure waiter,
//!    so its row is `sv` waiting after a `down` that the service ignores).
//! 4. svstat per call (fork + exec + read), ours and Debian's, on the same service.

use anyhow::{Context, Result, bail};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(10);
/// Longer than the 1 s start-to-start floor every supervisor has.
const MIN_AGE: Duration = Duration::from_millis(1200);

fn ours(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    // target/release/deps/clients-HASH -> target/release/NAME
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_default();
    dir.join(name)
}

/// A supervisor process in its own group, killed with its children on drop.
struct Sup(Child);

impl Drop for Sup {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the process group this bench created.
        unsafe {
            libc::kill(-(self.0.id() as i32), libc::SIGKILL);
        }
        let _ = self.0.wait();
    }
}

fn spawn_sup(program: &str, dir: &Path) -> Result<Sup> {
    let child = Command::new(program)
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .with_context(|| format!("spawn {program}"))?;
    Ok(Sup(child))
}

fn service(root: &Path, name: &str, body: &str) -> Result<PathBuf> {
    let d = root.join(name);
    fs::create_dir_all(&d)?;
    fs::write(d.join("run"), format!("#!/bin/sh\n{body}\n"))?;
    fs::set_permissions(d.join("run"), fs::Permissions::from_mode(0o755))?;
    Ok(d)
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) -> Result<()> {
    let end = Instant::now() + DEADLINE;
    while !f() {
        if Instant::now() > end {
            bail!("timed out waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

fn quiet(program: &Path, args: &[&str]) -> Result<bool> {
    Ok(Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .with_context(|| format!("run {}", program.display()))?
        .success())
}

/// One timed command; fails the bench if it does not succeed.
fn timed(program: &Path, args: &[&str]) -> Result<Duration> {
    let t = Instant::now();
    if !quiet(program, args)? {
        bail!("{} {args:?} failed", program.display());
    }
    Ok(t.elapsed())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// A way to take a service down and up with acknowledgement.
struct Control {
    label: &'static str,
    supervisor: PathBuf,
    down: (PathBuf, Vec<&'static str>),
    up: (PathBuf, Vec<&'static str>),
    /// Up, by the tools of the same suite (used to wait for the first start).
    is_up: fn(&Path) -> bool,
}

fn our_up(dir: &Path) -> bool {
    Command::new(ours("svwait"))
        .args(["-u", "-t", "0"])
        .arg(dir)
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Median (down, up) latencies over `rounds`, per control. The columns run interleaved,
/// round by round, so a change in the machine's load hits all of them alike.
fn control_rows(root: &Path, cs: &[Control], rounds: usize) -> Result<Vec<(Duration, Duration)>> {
    let mut sups = Vec::new();
    let mut dirs = Vec::new();
    for c in cs {
        let dir = service(root, c.label, "exec sleep 600")?;
        sups.push(spawn_sup(&c.supervisor.to_string_lossy(), &dir)?);
        wait_for(&format!("{} up", c.label), || (c.is_up)(&dir))?;
        dirs.push(dir.to_string_lossy().into_owned());
    }
    let mut samples = vec![(Vec::new(), Vec::new()); cs.len()];
    for _ in 0..rounds {
        std::thread::sleep(MIN_AGE);
        for (i, c) in cs.iter().enumerate() {
            let mut a = c.down.1.clone();
            a.push(&dirs[i]);
            samples[i].0.push(timed(&c.down.0, &a)?);
        }
        for (i, c) in cs.iter().enumerate() {
            let mut a = c.up.1.clone();
            a.push(&dirs[i]);
            samples[i].1.push(timed(&c.up.0, &a)?);
        }
    }
    Ok(samples
        .into_iter()
        .map(|(d, u)| (median(d), median(u)))
        .collect())
}

fn switches(pid: u32) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("ctxt_switches"))
        .filter_map(|l| l.split_whitespace().last()?.parse::<u64>().ok())
        .sum()
}

/// Context switches of a waiter over `idle`, after it settled.
fn waiter_row(
    root: &Path,
    label: &str,
    supervisor: &str,
    body: &str,
    waiter: &[String],
    idle: Duration,
) -> Result<u64> {
    let dir = service(root, label, body)?;
    let _sup = spawn_sup(supervisor, &dir)?;
    wait_for(&format!("{label} up"), || our_up(&dir))?;
    let d = dir.to_string_lossy().into_owned();
    if label.ends_with("runit") {
        // runit has no pure waiter: ask for down (ignored by the service), then wait.
        quiet(Path::new("/usr/bin/sv"), &["down", &d])?;
    }
    let mut c = Command::new(&waiter[0]);
    c.args(&waiter[1..])
        .arg(&d)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut w = c.spawn()?;
    std::thread::sleep(Duration::from_millis(500));
    let before = switches(w.id());
    std::thread::sleep(idle);
    let after = switches(w.id());
    let still = w.try_wait()?.is_none();
    let _ = w.kill();
    let _ = w.wait();
    if !still {
        bail!("{label}: the waiter exited early");
    }
    Ok(after - before)
}

/// Mean time of one call of each program, the calls interleaved.
fn svstat_rows(programs: &[PathBuf], dir: &Path, calls: usize) -> Result<Vec<Duration>> {
    let d = dir.to_string_lossy().into_owned();
    let mut total = vec![Duration::ZERO; programs.len()];
    for _ in 0..calls {
        for (i, p) in programs.iter().enumerate() {
            let t = Instant::now();
            quiet(p, &[&d])?;
            total[i] += t.elapsed();
        }
    }
    Ok(total.into_iter().map(|t| t / calls as u32).collect())
}

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> Result<()> {
    let rounds = env_num("SVBENCH_ROUNDS", 10) as usize;
    let idle = Duration::from_secs(env_num("SVBENCH_IDLE_SECS", 5));
    let tmp = tempfile::tempdir()?;
    let root = tmp.path();
    let svc = ours("svc");
    let controls = [
        Control {
            label: "ours",
            supervisor: ours("supervise"),
            down: (svc.clone(), vec!["--wait=10", "-d"]),
            up: (svc.clone(), vec!["--wait=10", "-u"]),
            is_up: our_up,
        },
        Control {
            label: "ours-on-0.76",
            supervisor: PathBuf::from("/usr/bin/supervise"),
            down: (svc.clone(), vec!["--wait=10", "-d"]),
            up: (svc.clone(), vec!["--wait=10", "-u"]),
            is_up: our_up,
        },
        Control {
            label: "runit",
            supervisor: PathBuf::from("/usr/bin/runsv"),
            down: (PathBuf::from("/usr/bin/sv"), vec!["-w", "10", "down"]),
            up: (PathBuf::from("/usr/bin/sv"), vec!["-w", "10", "up"]),
            is_up: our_up,
        },
        Control {
            label: "s6",
            supervisor: PathBuf::from("/usr/bin/s6-supervise"),
            down: (
                PathBuf::from("/usr/bin/s6-svc"),
                vec!["-T", "10000", "-wd", "-d"],
            ),
            up: (
                PathBuf::from("/usr/bin/s6-svc"),
                vec!["-T", "10000", "-wu", "-u"],
            ),
            is_up: our_up,
        },
    ];
    println!("clients benchmark: {rounds} rounds, idle window {idle:?}");
    println!();
    println!("| command that waits for its effect | down (median) | up (median) |");
    println!("|---|---|---|");
    let results = control_rows(root, &controls, rounds)?;
    for (c, (d, u)) in controls.iter().zip(results) {
        println!(
            "| {} (`{} {}`) | {} | {} |",
            c.label,
            c.down.0.file_name().unwrap_or_default().to_string_lossy(),
            c.down.1.join(" "),
            ms(d),
            ms(u)
        );
    }
    println!();
    println!("| waiter for a state that never comes | context switches in {idle:?} |");
    println!("|---|---|");
    let svwait = ours("svwait").to_string_lossy().into_owned();
    let ignore_term = "trap '' TERM; while :; do sleep 1; done";
    let rows: [(&str, String, &str, Vec<String>); 4] = [
        (
            "ours",
            ours("supervise").to_string_lossy().into_owned(),
            "exec sleep 600",
            vec![svwait.clone(), "-d".into()],
        ),
        (
            "ours-on-0.76",
            "/usr/bin/supervise".into(),
            "exec sleep 600",
            vec![svwait.clone(), "-d".into()],
        ),
        (
            "s6",
            "/usr/bin/s6-supervise".into(),
            "exec sleep 600",
            vec!["/usr/bin/s6-svwait".into(), "-d".into()],
        ),
        (
            "runit",
            "/usr/bin/runsv".into(),
            ignore_term,
            vec![
                "/usr/bin/sv".into(),
                "-w".into(),
                "3600".into(),
                "down".into(),
            ],
        ),
    ];
    for (label, sup, body, waiter) in rows {
        let n = waiter_row(root, &format!("w-{label}"), &sup, body, &waiter, idle)?;
        println!("| {label} (`{}`) | {n} |", waiter.join(" "));
    }
    println!();
    let dir = service(root, "stat", "exec sleep 600")?;
    let _sup = spawn_sup("/usr/bin/supervise", &dir)?;
    wait_for("stat up", || our_up(&dir))?;
    let calls = rounds * 20;
    println!("| svstat, one call ({calls} calls) | mean |");
    println!("|---|---|");
    let programs = [ours("svstat"), PathBuf::from("/usr/bin/svstat")];
    let means = svstat_rows(&programs, &dir, calls)?;
    for (label, m) in ["ours", "daemontools"].iter().zip(means) {
        println!("| {label} | {} |", ms(m));
    }
    Ok(())
}
