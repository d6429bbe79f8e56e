//! svscan benchmark: our svscan + supervise beside Debian's daemontools (`svscan` +
//! `supervise`), runit (`runsvdir` + `runsv`) and s6 (`s6-svscan` + `s6-supervise`), in
//! one run (issue 3, "A benchmark" under Proof). Not a test: it prints a results table.
//!
//! Run: `cargo bench --bench svscan` (release profile). Knobs, from the environment:
//! `SVSCAN_BENCH_SERVICES` (tree size, default 1000), `SVSCAN_BENCH_IDLE_SECS` (idle
//! window, default 60), `SVSCAN_BENCH_PICKUPS` (pickup samples, default 5) and
//! `SVSCAN_BENCH_BIG` (the size of the extra large-tree run, default 5000; 0 skips it).
//!
//! Every service's `run` is `: > MARKS/NAME` then `exec sleep 100000`: the marker file
//! appears once the service's own process runs, so "running" means the same thing for
//! all four suites, whatever their status format. Each suite gets a fresh scan dir.
//!
//! What is measured, per suite:
//! 1. **start**: from spawning the scanner until every service's marker exists.
//! 2. **pickup**: in a small tree (10 services) that has settled, a service directory
//!    built elsewhere is renamed into the scan dir; the time until its marker appears.
//!    s6-svscan scans only on demand, so for it `s6-svscanctl -a` is run right after
//!    the rename (the column says so). daemontools and runit pick up at their next
//!    5 s pass, hence the spread.
//! 3. **idle**: over the idle window, in the settled big tree, the CPU time (ns, first
//!    field of `/proc/PID/schedstat`; the tick-based utime+stime of `/proc/PID/stat` is
//!    printed too, but at 10 ms per tick it cannot resolve a target of 1 ms) and the
//!    wakeups (voluntary + nonvoluntary context switches of `/proc/PID/status`) of the
//!    scanner plus every supervisor (its direct children), per minute.
//! 4. **PSS**: `Pss` of `/proc/PID/smaps_rollup` summed over the scanner and every
//!    supervisor, divided by the number of services.
//!
//! Then one more tree of `SVSCAN_BENCH_BIG` services for ours and s6 (daemontools and
//! runit both stop at 1000): start time and PSS.
//!
//! The bench process is a child subreaper: whatever a suite leaves behind becomes our
//! child and is killed and reaped before the next suite runs.

use anyhow::{Context, Result, bail};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One suite: its scanner, how to call it, where it finds its supervisor.
struct Suite {
    label: &'static str,
    scanner: PathBuf,
    /// Options before the scan dir, given the number of services.
    opts: fn(usize) -> Vec<String>,
    /// `PATH` for the scanner (it finds its supervisor there).
    path: String,
    /// The hard limit on services, if any (the suite is skipped above it).
    max: Option<usize>,
    /// Run after the rename of a new service (s6 scans only on demand).
    rescan: Option<&'static str>,
    /// The supervisor's name as the scanner looks it up on `PATH`, for the stub run
    /// (`None`: the scanner has the supervisor's path built in).
    stub: Option<&'static str>,
}

fn suites() -> Vec<Suite> {
    let ours = PathBuf::from(env!("CARGO_BIN_EXE_svscan"));
    let bin = ours
        .parent()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let mut all = vec![
        Suite {
            label: "ours",
            scanner: ours.clone(),
            opts: |_| vec![],
            path: format!("{bin}:/usr/bin:/bin"),
            max: None,
            rescan: None,
            stub: Some("supervise"),
        },
        Suite {
            label: "daemontools",
            scanner: "/usr/bin/svscan".into(),
            opts: |_| vec![],
            path: "/usr/bin:/bin".into(),
            // REFERENCE.md §6: "running too many services" beyond 1000 entries.
            max: Some(1000),
            rescan: None,
            stub: Some("supervise"),
        },
        Suite {
            label: "runit",
            scanner: "/usr/bin/runsvdir".into(),
            opts: |_| vec![],
            path: "/usr/bin:/bin".into(),
            // runsvdir's MAXSERVICES.
            max: Some(1000),
            rescan: None,
            stub: Some("runsv"),
        },
        Suite {
            label: "s6",
            scanner: "/usr/bin/s6-svscan".into(),
            // The default maximum is 500 services.
            opts: |n| vec!["-c".into(), (n + 100).to_string()],
            path: "/usr/bin:/bin".into(),
            max: None,
            rescan: Some("/usr/bin/s6-svscanctl"),
            stub: None,
        },
    ];
    // The supervise that README's install step ships (`cargo build-static`), when it
    // has been built: the same svscan, finding the static supervise first on PATH.
    if let Some(dir) = static_supervise_dir(&bin) {
        all.insert(
            1,
            Suite {
                label: "ours, static supervise",
                scanner: ours,
                opts: |_| vec![],
                path: format!("{}:{bin}:/usr/bin:/bin", dir.display()),
                max: None,
                rescan: None,
                stub: Some("supervise"),
            },
        );
    }
    all
}

/// A directory holding only `supervise`, a symlink to the static build
/// (`target/<triple>/release/supervise`, from `cargo build-static`), or `None` when it
/// has not been built. `SVSCAN_BENCH_STATIC=0` leaves it out.
fn static_supervise_dir(bin: &str) -> Option<PathBuf> {
    if std::env::var("SVSCAN_BENCH_STATIC").as_deref() == Ok("0") {
        return None;
    }
    let target = Path::new(bin).parent()?;
    let exe = std::fs::read_dir(target)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path().join("release").join("supervise"))
        .find(|p| p.is_file())?;
    // One fixed name, replaced at every run, so runs leave no litter behind.
    let dir = std::env::temp_dir().join("svscan-bench-static-supervise");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).ok()?;
    std::os::unix::fs::symlink(&exe, dir.join("supervise")).ok()?;
    Some(dir)
}

/// A scan dir with `n` services, their marker dir and a staging dir for new services.
struct Tree {
    _tmp: tempfile::TempDir,
    scan: PathBuf,
    marks: PathBuf,
    stage: PathBuf,
}

impl Tree {
    fn new(n: usize) -> Result<Tree> {
        let tmp = tempfile::Builder::new().prefix("svscan-bench").tempdir()?;
        let scan = tmp.path().join("scan");
        let marks = tmp.path().join("marks");
        let stage = tmp.path().join("stage");
        for d in [&scan, &marks, &stage] {
            fs::create_dir(d)?;
        }
        let t = Tree {
            _tmp: tmp,
            scan,
            marks,
            stage,
        };
        for i in 0..n {
            t.service(&t.scan, &format!("s{i:05}"))?;
        }
        Ok(t)
    }

    /// Makes service `name` in `parent`.
    fn service(&self, parent: &Path, name: &str) -> Result<()> {
        let dir = parent.join(name);
        fs::create_dir(&dir)?;
        let run = dir.join("run");
        fs::write(
            &run,
            format!(
                "#!/bin/sh\n: > {}/{name}\nexec sleep 100000\n",
                self.marks.display()
            ),
        )?;
        fs::set_permissions(&run, fs::Permissions::from_mode(0o755))?;
        Ok(())
    }

    fn marks(&self) -> usize {
        fs::read_dir(&self.marks).map_or(0, |rd| rd.count())
    }
}

/// A running scanner; everything it started is killed on drop.
struct Scanner {
    pid: u32,
    log: PathBuf,
}

impl Scanner {
    fn start(s: &Suite, tree: &Tree, n: usize) -> Result<Scanner> {
        Scanner::start_with(s, tree, n, None)
    }

    /// With `stub`, a directory holding the stub supervisor: it goes first on `PATH`
    /// and the stub learns where to put its markers from the environment.
    fn start_with(s: &Suite, tree: &Tree, n: usize, stub: Option<&Path>) -> Result<Scanner> {
        let log = tree.scan.with_file_name("scanner.log");
        let out = fs::File::create(&log)?;
        let mut c = Command::new(&s.scanner);
        c.args((s.opts)(n)).arg(&tree.scan).env_clear();
        match stub {
            Some(dir) => c
                .env("PATH", format!("{}:{}", dir.display(), s.path))
                .env(STUB_ENV, &tree.marks),
            None => c.env("PATH", &s.path),
        };
        let child = c
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {}", s.scanner.display()))?;
        Ok(Scanner {
            pid: child.id(),
            log,
        })
    }

    /// The scanner and its direct children (the supervisors).
    fn tree(&self) -> Vec<u32> {
        let mut v = vec![self.pid];
        v.extend(
            processes()
                .into_iter()
                .filter(|&(_, pp)| pp == self.pid)
                .map(|(p, _)| p),
        );
        v
    }

    fn log(&self) -> String {
        let s = fs::read_to_string(&self.log).unwrap_or_default();
        s.lines().take(3).collect::<Vec<_>>().join(" / ")
    }
}

impl Drop for Scanner {
    fn drop(&mut self) {
        kill_all_descendants();
    }
}

/// Waits until `cond` holds, polling every `every`; errors after `limit`.
fn wait(
    limit: Duration,
    every: Duration,
    what: &str,
    mut cond: impl FnMut() -> bool,
) -> Result<()> {
    let end = Instant::now() + limit;
    while !cond() {
        if Instant::now() > end {
            bail!("timed out waiting for {what}");
        }
        std::thread::sleep(every);
    }
    Ok(())
}

/// `(pid, ppid)` of every process.
fn processes() -> Vec<(u32, u32)> {
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir("/proc") else {
        return out;
    };
    for d in rd.flatten() {
        let Some(pid) = d.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        if let Some(f) = stat_fields(pid) {
            if let Some(pp) = f.get(1).and_then(|v| v.parse().ok()) {
                out.push((pid, pp));
            }
        }
    }
    out
}

/// The fields of `/proc/PID/stat` after the command name (index 0 is field 3, state).
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(String::from).collect())
}

/// SIGKILLs every descendant of this process and reaps them, until none is left.
fn kill_all_descendants() {
    let me = std::process::id();
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        let all = processes();
        let mut desc = Vec::new();
        let mut frontier = vec![me];
        while let Some(p) = frontier.pop() {
            for &(c, pp) in &all {
                if pp == p {
                    desc.push(c);
                    frontier.push(c);
                }
            }
        }
        reap();
        if desc.is_empty() || Instant::now() > end {
            return;
        }
        for p in desc {
            // SAFETY: kill(2) of a descendant of this bench process.
            unsafe {
                libc::kill(p as i32, libc::SIGKILL);
            }
        }
        std::thread::sleep(Duration::from_millis(20));
        reap();
    }
}

fn reap() {
    loop {
        let mut st = 0;
        // SAFETY: waitpid writes the status into our local.
        if unsafe { libc::waitpid(-1, &mut st, libc::WNOHANG) } <= 0 {
            return;
        }
    }
}

/// What the idle window is measured in, per process.
#[derive(Default, Clone, Copy)]
struct Sample {
    ns: u64,
    ticks: u64,
    switches: u64,
}

fn sample(pid: u32) -> Option<Sample> {
    let ns = fs::read_to_string(format!("/proc/{pid}/schedstat"))
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let f = stat_fields(pid)?;
    let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let mut switches = 0;
    for line in status.lines() {
        if let Some(v) = line
            .strip_prefix("voluntary_ctxt_switches:")
            .or_else(|| line.strip_prefix("nonvoluntary_ctxt_switches:"))
        {
            switches += v.trim().parse::<u64>().ok()?;
        }
    }
    Some(Sample {
        ns,
        ticks,
        switches,
    })
}

fn pss_kib(pid: u32) -> u64 {
    let s = fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("Pss:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One suite's results; `None` where not measured.
#[derive(Default)]
struct Res {
    /// Start times of every round (the big tree's included); the median is reported.
    starts: Vec<Duration>,
    /// Start times with the stub supervisor.
    stub_starts: Vec<Duration>,
    start: Option<Duration>,
    pickup: Vec<Duration>,
    idle_ms_min: Option<f64>,
    idle_tick_ms_min: Option<f64>,
    wakeups_min: Option<f64>,
    pss_kib: Option<f64>,
    procs: usize,
    big_start: Option<Duration>,
    big_pss_kib: Option<f64>,
    note: String,
}

/// Start time, idle CPU and wakeups, PSS, for a tree of `n`.
fn big_tree(s: &Suite, n: usize, idle: Duration, r: &mut Res) -> Result<()> {
    let tree = Tree::new(n)?;
    let t0 = Instant::now();
    let sc = Scanner::start(s, &tree, n)?;
    wait(
        Duration::from_secs(300),
        Duration::from_millis(10),
        "services",
        || tree.marks() >= n,
    )
    .with_context(|| {
        format!(
            "{} of {n} running; scanner says: {}",
            tree.marks(),
            sc.log()
        )
    })?;
    r.start = Some(t0.elapsed());
    // Let start-up work finish (daemontools' supervise sleeps 1 s after a start, and
    // the 5 s scanners have one pass to run) before the idle window opens.
    std::thread::sleep(Duration::from_secs(6));
    let procs = sc.tree();
    r.procs = procs.len();
    let before: Vec<(u32, Sample)> = procs
        .iter()
        .filter_map(|&p| sample(p).map(|s| (p, s)))
        .collect();
    std::thread::sleep(idle);
    let (mut ns, mut ticks, mut sw) = (0u64, 0u64, 0u64);
    for (p, b) in before {
        if let Some(a) = sample(p) {
            ns += a.ns.saturating_sub(b.ns);
            ticks += a.ticks.saturating_sub(b.ticks);
            sw += a.switches.saturating_sub(b.switches);
        }
    }
    let per_min = 60.0 / idle.as_secs_f64();
    // SAFETY: sysconf has no memory-safety preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    r.idle_ms_min = Some(ns as f64 / 1e6 * per_min);
    r.idle_tick_ms_min = Some(ticks as f64 * 1000.0 / hz * per_min);
    r.wakeups_min = Some(sw as f64 * per_min);
    let pss: u64 = sc.tree().into_iter().map(pss_kib).sum();
    r.pss_kib = Some(pss as f64 / n as f64);
    Ok(())
}

/// One start of a fresh tree of `n` (real supervisors, or the stub in `stub`): the time
/// until every marker exists.
fn start_once(s: &Suite, n: usize, stub: Option<&Path>) -> Result<Duration> {
    let tree = Tree::new(n)?;
    let t0 = Instant::now();
    let sc = Scanner::start_with(s, &tree, n, stub)?;
    wait(
        Duration::from_secs(300),
        Duration::from_millis(10),
        "services",
        || tree.marks() >= n,
    )
    .with_context(|| {
        format!(
            "{} of {n} running; scanner says: {}",
            tree.marks(),
            sc.log()
        )
    })?;
    let d = t0.elapsed();
    drop(sc);
    Ok(d)
}

/// The stub supervisor (this very program, run under the supervisor's name with
/// `STUB_ENV` set): creates its marker, `MARKS/NAME`, then sleeps. With it the start
/// measures the scanner alone: its readdir, stats and forks, and one exec each.
const STUB_ENV: &str = "SVSCAN_BENCH_STUB_MARKS";

fn stub(marks: std::ffi::OsString) -> ! {
    if let Some(name) = std::env::args_os().nth(1) {
        let _ = fs::File::create(Path::new(&marks).join(name));
    }
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// A directory with `supervise` and `runsv` as symlinks to this program.
fn stub_dir() -> Result<tempfile::TempDir> {
    let d = tempfile::Builder::new()
        .prefix("svscan-bench-stub")
        .tempdir()?;
    let me = std::env::current_exe()?;
    for name in ["supervise", "runsv"] {
        std::os::unix::fs::symlink(&me, d.path().join(name))?;
    }
    Ok(d)
}

/// Pickup delay of a new service, `samples` times, in a settled tree of 10.
fn pickup(s: &Suite, samples: usize, r: &mut Res) -> Result<()> {
    let tree = Tree::new(10)?;
    let sc = Scanner::start(s, &tree, 10)?;
    wait(
        Duration::from_secs(30),
        Duration::from_millis(10),
        "10 services",
        || tree.marks() >= 10,
    )
    .with_context(|| sc.log())?;
    std::thread::sleep(Duration::from_millis(1500));
    for k in 0..samples {
        let name = format!("new{k}");
        tree.service(&tree.stage, &name)?;
        let mark = tree.marks.join(&name);
        let t0 = Instant::now();
        fs::rename(tree.stage.join(&name), tree.scan.join(&name))?;
        if let Some(ctl) = s.rescan {
            Command::new(ctl).arg("-a").arg(&tree.scan).status()?;
        }
        wait(
            Duration::from_secs(15),
            Duration::from_micros(500),
            "pickup",
            || mark.exists(),
        )
        .with_context(|| sc.log())?;
        r.pickup.push(t0.elapsed());
        // Spread the samples over the 5 s pass of the polling scanners.
        std::thread::sleep(Duration::from_millis(700 + 300 * k as u64));
    }
    Ok(())
}

fn big_only(s: &Suite, n: usize, r: &mut Res) -> Result<()> {
    let tree = Tree::new(n)?;
    let t0 = Instant::now();
    let sc = Scanner::start(s, &tree, n)?;
    wait(
        Duration::from_secs(600),
        Duration::from_millis(20),
        "services",
        || tree.marks() >= n,
    )
    .with_context(|| {
        format!(
            "{} of {n} running; scanner says: {}",
            tree.marks(),
            sc.log()
        )
    })?;
    r.big_start = Some(t0.elapsed());
    std::thread::sleep(Duration::from_secs(3));
    let pss: u64 = sc.tree().into_iter().map(pss_kib).sum();
    r.big_pss_kib = Some(pss as f64 / n as f64);
    Ok(())
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e3)
}

fn opt(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.1}"))
}

fn main() {
    if let Some(marks) = std::env::var_os(STUB_ENV) {
        stub(marks);
    }
    if let Err(e) = bench() {
        eprintln!("svscan bench: {e:#}");
        kill_all_descendants();
        std::process::exit(1);
    }
}

fn bench() -> Result<()> {
    // SAFETY: prctl with integer arguments only: orphans of the suites become ours, so
    // nothing outlives its suite (see kill_all_descendants).
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    }
    let n = env_num("SVSCAN_BENCH_SERVICES", 1000) as usize;
    let idle = Duration::from_secs(env_num("SVSCAN_BENCH_IDLE_SECS", 60));
    let picks = env_num("SVSCAN_BENCH_PICKUPS", 5) as usize;
    let big = env_num("SVSCAN_BENCH_BIG", 5000) as usize;
    let rounds = env_num("SVSCAN_BENCH_ROUNDS", 3) as usize;
    println!(
        "svscan bench: {n} services, idle window {} s, {picks} pickups, big tree {big}; {} cores, load {}",
        idle.as_secs(),
        std::thread::available_parallelism().map_or(0, |p| p.get()),
        fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );

    let stubs = stub_dir()?;
    let mut results = Vec::new();
    for s in suites() {
        let mut r = Res::default();
        if !s.scanner.exists() {
            // Never skip silently (STYLE.md P14).
            r.note = format!("NOT INSTALLED: {}", s.scanner.display());
            eprintln!("{}: {}", s.label, r.note);
            results.push((s, r));
            continue;
        }
        eprintln!("{}: {n} services ...", s.label);
        if s.max.is_none_or(|m| n <= m) {
            if let Err(e) = big_tree(&s, n, idle, &mut r) {
                r.note = format!("big tree: {e:#}");
            }
        } else {
            r.note = format!("limit {} services", s.max.unwrap_or(0));
        }
        kill_all_descendants();
        eprintln!("{}: pickup ...", s.label);
        if let Err(e) = pickup(&s, picks, &mut r) {
            r.note.push_str(&format!(" pickup: {e:#}"));
        }
        kill_all_descendants();
        if big > 0 && s.max.is_none_or(|m| big <= m) {
            eprintln!("{}: {big} services ...", s.label);
            if let Err(e) = big_only(&s, big, &mut r) {
                r.note.push_str(&format!(" {big}: {e:#}"));
            }
            kill_all_descendants();
        }
        results.push((s, r));
    }
    // More start rounds, the suites taking turns, so that a burst of load elsewhere on
    // the machine does not land on one suite only; then the same with the stub.
    for round in 1..rounds.max(1) {
        for (s, r) in results.iter_mut() {
            if !s.scanner.exists() || s.max.is_some_and(|m| n > m) {
                continue;
            }
            eprintln!("{}: start round {} ...", s.label, round + 1);
            match start_once(s, n, None) {
                Ok(d) => r.starts.push(d),
                Err(e) => r.note.push_str(&format!(" round {round}: {e:#}")),
            }
            kill_all_descendants();
        }
    }
    for _ in 0..rounds.max(1) {
        for (s, r) in results.iter_mut() {
            if !s.scanner.exists() || s.stub.is_none() || s.max.is_some_and(|m| n > m) {
                continue;
            }
            eprintln!("{}: start with the stub supervisor ...", s.label);
            match start_once(s, n, Some(stubs.path())) {
                Ok(d) => r.stub_starts.push(d),
                Err(e) => r.note.push_str(&format!(" stub: {e:#}")),
            }
            kill_all_descendants();
        }
    }
    for (_, r) in results.iter_mut() {
        r.starts.extend(r.start);
        r.start = median(&r.starts);
    }
    report(&results, n, idle, big, rounds);
    Ok(())
}

fn median(v: &[Duration]) -> Option<Duration> {
    let mut v = v.to_vec();
    v.sort();
    v.get(v.len() / 2).copied()
}

fn report(results: &[(Suite, Res)], n: usize, idle: Duration, big: usize, rounds: usize) {
    let get = |label: &str| {
        results
            .iter()
            .find(|(s, _)| s.label == label)
            .map(|(_, r)| r)
    };
    let dt_start = get("daemontools").and_then(|r| r.start);
    let dt_pss = get("daemontools").and_then(|r| r.pss_kib);
    let ours = get("ours");

    println!();
    print!("| measure |");
    for (s, _) in results {
        print!(" {} |", s.label);
    }
    println!(" target | ours |");
    print!("|---|");
    for _ in results {
        print!("---:|");
    }
    println!("---|---|");

    let row = |name: &str, f: &dyn Fn(&Res) -> String, target: &str, verdict: String| {
        print!("| {name} |");
        for (_, r) in results {
            print!(" {} |", f(r));
        }
        println!(" {target} | {verdict} |");
    };
    let pass = |ok: Option<bool>| match ok {
        Some(true) => "PASS".to_string(),
        Some(false) => "FAIL".to_string(),
        None => "n/a".to_string(),
    };

    let o_start = ours.and_then(|r| r.start);
    row(
        &format!("start {n} services, median of {rounds} (ms)"),
        &|r| r.start.map_or("-".into(), ms),
        "<= 0.8x daemontools",
        pass(
            o_start
                .zip(dt_start)
                .map(|(o, d)| o.as_secs_f64() <= 0.8 * d.as_secs_f64()),
        ),
    );
    row(
        &format!("start {n} services, all rounds (ms)"),
        &|r| {
            r.starts
                .iter()
                .map(|d| format!("{:.0}", d.as_secs_f64() * 1e3))
                .collect::<Vec<_>>()
                .join(" ")
        },
        "-",
        String::new(),
    );
    let dt_stub = get("daemontools").and_then(|r| median(&r.stub_starts));
    let o_stub = ours.and_then(|r| median(&r.stub_starts));
    row(
        &format!("start {n}, stub supervisor: the scanner alone (ms)"),
        &|r| median(&r.stub_starts).map_or("-".into(), ms),
        "<= 0.8x daemontools",
        pass(
            o_stub
                .zip(dt_stub)
                .map(|(o, d)| o.as_secs_f64() <= 0.8 * d.as_secs_f64()),
        ),
    );
    let med = median;
    let max = |v: &[Duration]| v.iter().max().copied();
    row(
        "pickup, median (ms)",
        &|r| med(&r.pickup).map_or("-".into(), ms),
        "< 20 ms",
        pass(
            ours.and_then(|r| med(&r.pickup))
                .map(|d| d < Duration::from_millis(20)),
        ),
    );
    row(
        "pickup, max (ms)",
        &|r| max(&r.pickup).map_or("-".into(), ms),
        "< 20 ms",
        pass(
            ours.and_then(|r| max(&r.pickup))
                .map(|d| d < Duration::from_millis(20)),
        ),
    );
    row(
        "idle CPU, whole tree (ms/min, schedstat)",
        &|r| opt(r.idle_ms_min),
        "<= 1 ms/min",
        pass(ours.and_then(|r| r.idle_ms_min).map(|v| v <= 1.0)),
    );
    row(
        "idle CPU, whole tree (ms/min, utime+stime ticks)",
        &|r| opt(r.idle_tick_ms_min),
        "(10 ms resolution)",
        String::new(),
    );
    row(
        "idle wakeups, whole tree (per min)",
        &|r| opt(r.wakeups_min),
        "-",
        String::new(),
    );
    row(
        "processes measured (scanner + supervisors)",
        &|r| r.procs.to_string(),
        "-",
        String::new(),
    );
    row(
        "PSS per service (KiB)",
        &|r| opt(r.pss_kib),
        "<= daemontools",
        {
            let verdict =
                |r: Option<&Res>| pass(r.and_then(|r| r.pss_kib).zip(dt_pss).map(|(o, d)| o <= d));
            match get("ours, static supervise") {
                Some(st) => format!(
                    "{} (static supervise: {})",
                    verdict(ours),
                    verdict(Some(st))
                ),
                None => verdict(ours),
            }
        },
    );
    if big > 0 {
        row(
            &format!("start {big} services (ms)"),
            &|r| r.big_start.map_or("-".into(), ms),
            "works",
            pass(ours.map(|r| r.big_start.is_some())),
        );
        row(
            &format!("PSS per service, {big} (KiB)"),
            &|r| opt(r.big_pss_kib),
            "-",
            String::new(),
        );
    }
    println!();
    println!(
        "idle window {} s; s6 pickup includes `s6-svscanctl -a` (it scans only on demand).",
        idle.as_secs()
    );
    for (s, r) in results {
        if !r.note.is_empty() {
            println!("{}: {}", s.label, r.note.trim());
        }
    }
}
