//! Chain-loader overhead, ours beside Debian's daemontools: how long one `PROG ... true`
//! takes from spawn to exit, for each chain-loader and for a typical run-file chain.
//! Not a timed test (STYLE.md): `cargo bench --bench chain` prints a table; results are
//! kept in docs/BENCHMARKS-chain.md.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const RUNS: u32 = 300;

/// Where a program comes from: ours or Debian's.
type Which = fn(&str) -> PathBuf;
/// Builds one case's argv for a given origin.
type Argv<'a> = dyn Fn(Which) -> Vec<String> + 'a;

fn ours(name: &str) -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_supervise"))
        .parent()
        .unwrap()
        .join(name)
}

fn debian(name: &str) -> PathBuf {
    Path::new("/usr/bin").join(name)
}

/// Median wall time of running `argv` (argv[0] resolved by `prog`) to completion.
fn median(argv: &[String], cwd: &Path) -> Duration {
    let mut v = Vec::with_capacity(RUNS as usize);
    for _ in 0..RUNS {
        let t = Instant::now();
        let st = Command::new(&argv[0])
            .args(&argv[1..])
            .current_dir(cwd)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        v.push(t.elapsed());
        assert!(st.success(), "{argv:?} failed");
    }
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let env = dir.path().join("env");
    std::fs::create_dir(&env).unwrap();
    for i in 0..20 {
        std::fs::write(env.join(format!("VAR{i}")), format!("value {i}\n")).unwrap();
    }
    let have_debian = debian("setuidgid").exists();

    // (label, program, args before "true")
    let cases: &[(&str, &str, &[&str])] = &[
        ("setuidgid root", "setuidgid", &["root"]),
        ("envuidgid root", "envuidgid", &["root"]),
        ("envdir (20 files)", "envdir", &["env"]),
        ("softlimit -o =", "softlimit", &["-o", "="]),
        ("setlock lk", "setlock", &["lk"]),
        ("pgrphack", "pgrphack", &[]),
        ("fghack", "fghack", &[]),
    ];

    let base = median(&["/bin/true".to_string()], dir.path());
    println!("chain-loader overhead: median of {RUNS} runs of `PROG ... /bin/true`");
    println!("baseline /bin/true alone: {:>7.1} us", us(base));
    println!();
    println!(
        "| {:<34} | {:>10} | {:>10} | {:>6} |",
        "program", "ours us", "0.76 us", "ratio"
    );
    println!("|{:-<36}|{:->12}|{:->12}|{:->8}|", "", "", "", "");
    let row = |label: &str, mk: &Argv| {
        let o = median(&mk(ours), dir.path());
        if have_debian {
            let d = median(&mk(debian), dir.path());
            println!(
                "| {:<34} | {:>10.1} | {:>10.1} | {:>6.2} |",
                label,
                us(o),
                us(d),
                us(o) / us(d)
            );
        } else {
            println!(
                "| {:<34} | {:>10.1} | {:>10} | {:>6} |",
                label,
                us(o),
                "-",
                "-"
            );
        }
    };
    for (label, prog, args) in cases {
        row(label, &|which: Which| {
            let mut v = vec![which(prog).display().to_string()];
            v.extend(args.iter().map(|s| s.to_string()));
            v.push("/bin/true".into());
            v
        });
    }
    // A typical run file: envdir ./env softlimit -o = setlock lk pgrphack setuidgid root CHILD.
    row("chain of envdir..setuidgid (5)", &|which: Which| {
        let p = |n: &str| which(n).display().to_string();
        vec![
            p("envdir"),
            "env".into(),
            p("softlimit"),
            "-o".into(),
            "=".into(),
            p("setlock"),
            "lk".into(),
            p("pgrphack"),
            p("setuidgid"),
            "root".into(),
            "/bin/true".into(),
        ]
    });
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
