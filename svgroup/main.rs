//! svgroup: let the members of a Unix group control a service with svc, svok and svstat.
//!
//! # Interface
//!
//! * `svgroup GROUP DIR...`: delegate each service DIR (and `DIR/log` when it is a
//!   directory) to GROUP. As OpenACS's svgroup script does, GROUP becomes the group of
//!   `supervise/`, `supervise/control`, `supervise/ok` and `supervise/status`, with group
//!   traverse on the directory, group write on the two FIFOs and group read on `status`.
//!   Modes are set exactly: `supervise/` `(mode & 0750) | 0710`, `control` and `ok` `0620`,
//!   so nobody outside GROUP (and no earlier `chmod -R go+rwX`) can control the service.
//!   The delegation is also recorded in `DIR/group` (REFERENCE.md §12.11), and our
//!   supervise re-applies it every time it starts, so it works **before** supervise has
//!   created `supervise/`, and survives a restart or a wiped `supervise/`.
//! * `svgroup -w SECS GROUP DIR...`: as above, then wait up to SECS seconds for each
//!   `DIR/supervise/ok` to appear and apply the modes to it. This is for a supervise that
//!   does not read `group` (daemontools 0.76), instead of OpenACS's `sleep 10`.
//! * `svgroup -l DIR...`: show each delegation (`DIR: group web`, `DIR: no group`), whether
//!   the files under `supervise/` carry it yet, and permission hazards
//!   (`DIR: hazard: ...`, see svcore::perms).
//! * `svgroup -r DIR...`: remove the delegation: delete `DIR/group` (and `DIR/log/group`),
//!   give `supervise/` and its files back to supervise's group with 0.76's modes (0700,
//!   FIFOs 0600).
//!
//! # Options
//!
//! Options come first; group names cannot start with `-`, so `svgroup GROUP DIR...` keeps
//! its original meaning.
//!
//! # Exit codes
//!
//! * 0: done.
//! * 2: usage (fewer than two arguments, as the original script; or an option without its
//!   arguments): `svgroup: usage: ...`.
//! * 100: refused before anything was changed: `svgroup: fatal: unknown group GROUP`,
//!   `unable to delegate DIR: not a directory` (or `file does not exist`),
//!   `unable to delegate DIR to group GROUP: permission denied` (not root, and not the
//!   owner of DIR in GROUP).
//! * 111: a change failed: `svgroup: fatal: unable to write DIR/group: ERR`,
//!   `unable to delegate PATH to group GROUP: ERR`; with `-w`, `timed out waiting for
//!   DIR/supervise/ok`.
//!
//! # Examples
//!
//! `svgroup web /service/site` (as root, once per site), then as a member of `web`:
//! `svc -t /service/site`, `svstat /service/site /service/site/log`.
//!
//! # Notes
//!
//! Differences from the OpenACS script (OPENACS.md §5): `DIR/log` is covered; no timing
//! gap; paths with spaces work; failures exit nonzero with one clear line instead of eight
//! chgrp/chmod errors and exit 1; `-w`, `-l`, `-r` are new. `status` is re-created by
//! supervise at every change (group reverts), which is harmless: it is 0644 and only the
//! owner and GROUP can traverse `supervise/`.

use std::ffi::OsString;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use svcore::errstr::{self, EXIT_OK, EXIT_PERMANENT, EXIT_TEMPORARY, io_str};
use svcore::{perms, svdir};

const PROG: &str = "svgroup";
/// The original script's usage exit code (OPENACS.md §5).
const EXIT_USAGE: i32 = 2;
const USAGE: &str =
    "svgroup: usage: svgroup [ -w secs ] group dir ... | svgroup -l dir ... | svgroup -r dir ...";

/// A fatal error: message text and exit code.
struct Fatal(String, i32);

fn main() {
    let args: Vec<OsString> = std::env::args_os().collect();
    let code = match run(&args[1.min(args.len())..]) {
        Ok(code) => code,
        Err(Fatal(text, code)) => {
            if code == EXIT_USAGE {
                errstr::emit(&text);
            } else {
                errstr::fatal(PROG, &text);
            }
            code
        }
    };
    std::process::exit(code);
}

fn usage() -> Fatal {
    Fatal(USAGE.to_string(), EXIT_USAGE)
}

fn run(args: &[OsString]) -> Result<i32, Fatal> {
    match args.first().map(|a| a.to_string_lossy().into_owned()) {
        Some(o) if o == "-l" => {
            if args.len() < 2 {
                return Err(usage());
            }
            Ok(list(&args[1..]))
        }
        Some(o) if o == "-r" => {
            if args.len() < 2 {
                return Err(usage());
            }
            remove(&args[1..])
        }
        Some(o) if o == "-w" => {
            let secs: u64 = args
                .get(1)
                .and_then(|s| s.to_str())
                .and_then(|s| s.parse().ok())
                .ok_or_else(usage)?;
            if args.len() < 4 {
                return Err(usage());
            }
            delegate(&args[2], &args[3..], Some(Duration::from_secs(secs)))
        }
        Some(o) if o.starts_with('-') && o.len() > 1 => Err(usage()),
        _ => {
            if args.len() < 2 {
                return Err(usage());
            }
            delegate(&args[0], &args[1..], None)
        }
    }
}

fn shown(p: &Path) -> String {
    p.display().to_string()
}

/// DIR and, when it is a directory, DIR/log: the service dirs one argument covers.
fn targets(dir: &Path) -> Vec<PathBuf> {
    let mut v = vec![dir.to_path_buf()];
    let log = dir.join(svdir::LOG);
    if std::fs::metadata(&log).map(|m| m.is_dir()).unwrap_or(false) {
        v.push(log);
    }
    v
}

/// Whether the caller may change the group of `path` to `gid`: root may; otherwise only
/// the owner, and only to a group it belongs to (chown(2) rules).
fn may_chgrp(path: &Path, gid: u32) -> bool {
    let euid = nix::unistd::geteuid();
    if euid.is_root() {
        return true;
    }
    let owner_ok = std::fs::metadata(path)
        .map(|m| m.uid() == euid.as_raw())
        .unwrap_or(true);
    let member = nix::unistd::getegid().as_raw() == gid
        || nix::unistd::getgroups()
            .map(|gs| gs.iter().any(|g| g.as_raw() == gid))
            .unwrap_or(false);
    owner_ok && member
}

fn delegate(group_arg: &OsString, dirs: &[OsString], wait: Option<Duration>) -> Result<i32, Fatal> {
    let group = group_arg.to_string_lossy().into_owned();
    let gid = perms::resolve_group(&group)
        .ok_or_else(|| Fatal(format!("unknown group {group}"), EXIT_PERMANENT))?;

    // Check everything first, so a refusal changes nothing.
    let mut all = Vec::new();
    for d in dirs {
        let dir = PathBuf::from(d);
        match std::fs::metadata(&dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(Fatal(
                    format!("unable to delegate {}: not a directory", shown(&dir)),
                    EXIT_PERMANENT,
                ));
            }
            Err(e) => {
                return Err(Fatal(
                    format!("unable to delegate {}: {}", shown(&dir), io_str(&e)),
                    EXIT_PERMANENT,
                ));
            }
        }
        for t in targets(&dir) {
            let sup = t.join(svdir::SUPERVISE);
            if !may_chgrp(&t, gid) || !may_chgrp(&sup, gid) {
                return Err(Fatal(
                    format!(
                        "unable to delegate {} to group {group}: permission denied (run svgroup as root)",
                        shown(&t)
                    ),
                    EXIT_PERMANENT,
                ));
            }
            all.push(t);
        }
    }

    for t in &all {
        perms::write_group(t, &group).map_err(|e| {
            Fatal(
                format!(
                    "unable to write {}: {}",
                    shown(&t.join(svdir::GROUP)),
                    io_str(&e)
                ),
                EXIT_TEMPORARY,
            )
        })?;
        apply_now(t, gid, &group)?;
    }

    if let Some(limit) = wait {
        let end = Instant::now() + limit;
        for t in &all {
            let ok = t.join(svdir::OK);
            while !ok.exists() {
                if Instant::now() >= end {
                    return Err(Fatal(
                        format!("timed out waiting for {}", shown(&ok)),
                        EXIT_TEMPORARY,
                    ));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            apply_now(t, gid, &group)?;
        }
    }
    Ok(EXIT_OK)
}

fn apply_now(t: &Path, gid: u32, group: &str) -> Result<(), Fatal> {
    perms::delegate(t, gid).map_err(|e| {
        Fatal(
            format!(
                "unable to delegate {} to group {group}: {}",
                shown(&e.path),
                io_str(&e.error)
            ),
            EXIT_TEMPORARY,
        )
    })
}

fn remove(dirs: &[OsString]) -> Result<i32, Fatal> {
    for d in dirs {
        for t in targets(Path::new(d)) {
            perms::remove_group(&t).map_err(|e| {
                Fatal(
                    format!(
                        "unable to remove {}: {}",
                        shown(&t.join(svdir::GROUP)),
                        io_str(&e)
                    ),
                    EXIT_TEMPORARY,
                )
            })?;
            perms::undelegate(&t, perms::supervisor_gid(&t)).map_err(|e| {
                Fatal(
                    format!("unable to restore {}: {}", shown(&e.path), io_str(&e.error)),
                    EXIT_TEMPORARY,
                )
            })?;
        }
    }
    Ok(EXIT_OK)
}

/// `svgroup -l`: one line per service dir, then its hazards. Exits 0 like svstat; a dir
/// that cannot be inspected gets a line saying why.
fn list(dirs: &[OsString]) -> i32 {
    let mut out = String::new();
    for d in dirs {
        for t in targets(Path::new(d)) {
            let name = shown(&t);
            match perms::inspect(&t) {
                Ok(r) => {
                    out.push_str(&name);
                    match &r.group {
                        None => out.push_str(": no group"),
                        Some(g) => {
                            out.push_str(&format!(": group {g}"));
                            if perms::resolve_group(g).is_none() {
                                out.push_str(", unknown group");
                            } else if !r.started {
                                out.push_str(", pending until supervise starts");
                            } else if !r.pending.is_empty() {
                                out.push_str(&format!(", not applied to {}", r.pending.join(" ")));
                            }
                            if let Some(f) = &r.file {
                                if f != &t.join(svdir::GROUP) {
                                    out.push_str(&format!(" (from {})", shown(f)));
                                }
                            }
                        }
                    }
                    out.push('\n');
                }
                Err(e) => out.push_str(&format!(
                    "{name}: unable to read {}: {}\n",
                    svdir::GROUP,
                    io_str(&e)
                )),
            }
            for h in perms::hazards(&t) {
                out.push_str(&format!("{name}: hazard: {h}\n"));
            }
        }
    }
    use std::io::Write;
    let _ = std::io::stdout().lock().write_all(out.as_bytes());
    EXIT_OK
}
