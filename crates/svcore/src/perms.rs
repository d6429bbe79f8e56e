//! Group delegation of a service's `supervise/`, and permission hazards
//! (svgroup; REFERENCE.md §1, §10, §12.11; OPENACS.md §5 and gotcha 2).
//!
//! # What a delegation is
//!
//! OpenACS's `svgroup GROUP DIR` lets the members of GROUP run svc, svok and svstat on a
//! service and nobody else: GROUP becomes the group of `supervise/`, `control`, `ok` and
//! `status`, with `g+x` on the directory, `g+w` on the two FIFOs and `g+r` on `status`.
//!
//! We record the delegation in the service directory itself, in the file `group`
//! ([`svdir::GROUP`]: the group name and a newline). supervise calls [`apply`] right after it
//! has created `supervise/` and its files, so a delegation made before supervise ever ran
//! (no `sleep 10`), or before `supervise/` was wiped by a checkout, takes effect at once.
//!
//! # Modes
//!
//! | object | with a `group` file | without |
//! |---|---|---|
//! | `supervise/` | group GROUP, `(mode & 0750) \| 0710`: traverse only, nothing for others | `go-w` |
//! | `control`, `ok` | group GROUP, exactly `0620` | `o-rwx` |
//! | `status` | group GROUP, `g+r` | unchanged |
//! | `lock` | unchanged (root, 0600) | unchanged |
//! | `event/` (if any) | group GROUP, `3730` (s6's fifodir mode) | unchanged |
//!
//! * Without a `group` file the group bits are left alone, because an admin (or the original
//!   svgroup script) may have delegated by hand, and 0.76 keeps such modes across a supervise
//!   restart (REFERENCE.md §1). Only the bits that let **any** local user control or
//!   starve the service are removed: world access to the FIFOs (a world reader could even
//!   steal command bytes) and write access to the directory.
//! * `status` is replaced by a rename at every state change, so its group reverts to
//!   supervise's. That is sufficient: supervise creates it 0644, and with `supervise/` at
//!   0710 only the owner and GROUP can reach it. Nothing needs re-applying after a rewrite.
//! * Modes are set exactly (not just added to), so a `chmod -R go+rwX` run by an installer
//!   before supervise starts is undone at the next supervise start.
//! * For a log service (`NAME/log`), a missing `log/group` falls back to `NAME/group`, so
//!   one delegation covers both (REFERENCE.md §12.11 "for log/ too").
//!
//! # Hazards
//!
//! [`hazards`] lists what makes a root service dangerous (OPENACS.md gotcha 2): `run` or the
//! service directory writable by group or others (anyone who can edit `run` gets root at
//! the next restart), `supervise/` writable by group or others, and world-writable FIFOs.
//! supervise prints them as warnings at start (through [`apply`]); svstat or svgroup `-l`
//! can show them at any time.

use crate::svdir;
use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Mode of `control` and `ok` under a delegation: owner rw, group w.
pub const FIFO_MODE_DELEGATED: u32 = 0o620;
/// Bits of `supervise/` forced on under a delegation: owner rwx, group x.
pub const DIR_BITS_DELEGATED: u32 = 0o710;
/// Bits of `supervise/` kept under a delegation (group read may stay; others get nothing).
pub const DIR_KEEP_DELEGATED: u32 = 0o750;

/// Mode of the `event/` fifodir (s6's): setgid and sticky, owner rwx, group wx.
pub const EVENT_MODE: u32 = 0o3730;

/// The delegation recorded for `dir`: the first line of `dir/group`, trimmed, or `None`
/// when the file does not exist.
pub fn read_group(dir: &Path) -> io::Result<Option<String>> {
    match fs::read(dir.join(svdir::GROUP)) {
        Ok(b) => {
            let line = b.split(|&c| c == b'\n').next().unwrap_or(&[]);
            let s = String::from_utf8_lossy(line).trim().to_string();
            if s.is_empty() {
                Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "empty group file",
                ))
            } else {
                Ok(Some(s))
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The delegation that applies to `dir`: its own `group` file, or for a log service
/// without one, the parent service's (see the module docs). Returns the group name and the
/// file it came from.
pub fn effective_group(dir: &Path) -> io::Result<Option<(String, PathBuf)>> {
    if let Some(g) = read_group(dir)? {
        return Ok(Some((g, dir.join(svdir::GROUP))));
    }
    let canon = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    if canon.file_name().map(|n| n == svdir::LOG).unwrap_or(false) {
        if let Some(parent) = canon.parent() {
            if let Some(g) = read_group(parent)? {
                return Ok(Some((g, parent.join(svdir::GROUP))));
            }
        }
    }
    Ok(None)
}

/// Records a delegation to `group` in `dir/group` (written to `group.new`, then renamed,
/// mode 0644).
pub fn write_group(dir: &Path, group: &str) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = dir.join(format!("{}.new", svdir::GROUP));
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(&tmp)?;
    f.write_all(format!("{group}\n").as_bytes())?;
    f.sync_all()?;
    drop(f);
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o644))?;
    fs::rename(&tmp, dir.join(svdir::GROUP))
}

/// Removes `dir/group`. Returns whether there was one.
pub fn remove_group(dir: &Path) -> io::Result<bool> {
    match fs::remove_file(dir.join(svdir::GROUP)) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// The group database a statically linked build reads by hand (see [`resolve_group`]).
pub const ETC_GROUP: &str = "/etc/group";

/// The gid for a group name, or for a decimal number when no group has that name
/// (as chgrp accepts). `None` for an unknown group.
///
/// A dynamically linked build asks NSS (`getgrnam`), so groups from LDAP or sssd work. A
/// statically linked build (`cargo build-static`, the low-memory supervise) must not:
/// static glibc `dlopen`s the NSS modules, and a module linked against the shared libc
/// crashes it (seen here: a segfault in `getgrnam` for an unknown group with
/// `group: files systemd`). It reads [`ETC_GROUP`] instead, so a group known only to a
/// directory service is given by number in the `group` file (`svgroup 1234 DIR`).
pub fn resolve_group(name: &str) -> Option<u32> {
    let by_name = if cfg!(target_feature = "crt-static") {
        fs::read(ETC_GROUP)
            .ok()
            .and_then(|db| gid_in_group_db(&db, name))
    } else {
        nix::unistd::Group::from_name(name)
            .ok()
            .flatten()
            .map(|g| g.gid.as_raw())
    };
    if by_name.is_some() {
        return by_name;
    }
    if !name.is_empty() && name.bytes().all(|c| c.is_ascii_digit()) {
        return name.parse().ok();
    }
    None
}

/// The gid of `name` in the text of a group(5) file (`name:password:gid:members` per
/// line); the first matching line wins, as in glibc's files module. Comment lines (`#`),
/// NIS compat lines (`+`/`-`) and malformed lines are skipped.
pub fn gid_in_group_db(db: &[u8], name: &str) -> Option<u32> {
    db.split(|&c| c == b'\n').find_map(|line| {
        if line
            .first()
            .is_some_and(|c| matches!(c, b'#' | b'+' | b'-'))
        {
            return None;
        }
        let mut fields = line.split(|&c| c == b':');
        let n = fields.next()?;
        let _password = fields.next()?;
        let gid = fields.next()?;
        if n != name.as_bytes() || gid.is_empty() || !gid.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(gid).ok()?.parse().ok()
    })
}

/// A failure on one path: the path and the error.
#[derive(Debug)]
pub struct PathError {
    /// The file that could not be changed.
    pub path: PathBuf,
    /// Why.
    pub error: io::Error,
}

fn chgrp(path: &Path, gid: u32) -> Result<(), PathError> {
    std::os::unix::fs::chown(path, None, Some(gid)).map_err(|error| PathError {
        path: path.to_path_buf(),
        error,
    })
}

fn chmod(path: &Path, mode: u32) -> Result<(), PathError> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(|error| PathError {
        path: path.to_path_buf(),
        error,
    })
}

/// Current permission bits of `path` (following symlinks), or `None` if it does not exist.
fn mode_of(path: &Path) -> Result<Option<u32>, PathError> {
    match fs::metadata(path) {
        Ok(m) => Ok(Some(m.permissions().mode() & 0o7777)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(PathError {
            path: path.to_path_buf(),
            error,
        }),
    }
}

/// The mode `supervise/` gets under a delegation (pure).
pub fn delegated_dir_mode(cur: u32) -> u32 {
    (cur & DIR_KEEP_DELEGATED & 0o7777) | DIR_BITS_DELEGATED
}

/// Gives group `gid` access to whatever of `dir/supervise/` exists now (the OpenACS
/// svgroup effect, with exact modes; see the module docs). Missing files are skipped:
/// supervise completes the job through [`apply`] when it creates them.
pub fn delegate(dir: &Path, gid: u32) -> Result<(), PathError> {
    let sup = dir.join(svdir::SUPERVISE);
    for rel in [svdir::CONTROL, svdir::OK] {
        let p = dir.join(rel);
        if mode_of(&p)?.is_some() {
            chgrp(&p, gid)?;
            chmod(&p, FIFO_MODE_DELEGATED)?;
        }
    }
    let st = dir.join(svdir::STATUS);
    if let Some(m) = mode_of(&st)? {
        // status may be renamed over between the two calls; the new file is 0644 anyway.
        match chgrp(&st, gid).and_then(|()| chmod(&st, m | 0o040)) {
            Err(e) if e.error.kind() == io::ErrorKind::NotFound => {}
            other => other?,
        }
    }
    if let Some(m) = mode_of(&sup)? {
        chgrp(&sup, gid)?;
        chmod(&sup, delegated_dir_mode(m))?;
    }
    // The s6-style event fifodir (REFERENCE.md §11.5), if supervise made one: group GROUP
    // with s6's mode 3730, so members can subscribe (svwait), as s6-svperms -g does.
    let ev = dir.join(svdir::EVENT);
    if fs::metadata(&ev).map(|m| m.is_dir()).unwrap_or(false) {
        chgrp(&ev, gid)?;
        chmod(&ev, EVENT_MODE)?;
    }
    Ok(())
}

/// Undoes a delegation on the existing files: group back to `gid` (supervise's own, taken
/// from `supervise/lock` by callers), 0.76 modes (`supervise/` 0700, FIFOs 0600).
pub fn undelegate(dir: &Path, gid: u32) -> Result<(), PathError> {
    let sup = dir.join(svdir::SUPERVISE);
    if mode_of(&sup)?.is_some() {
        chmod(&sup, 0o700)?;
        chgrp(&sup, gid)?;
    }
    for rel in [svdir::CONTROL, svdir::OK] {
        let p = dir.join(rel);
        if mode_of(&p)?.is_some() {
            chmod(&p, 0o600)?;
            chgrp(&p, gid)?;
        }
    }
    let st = dir.join(svdir::STATUS);
    if mode_of(&st)?.is_some() {
        match chgrp(&st, gid) {
            Err(e) if e.error.kind() == io::ErrorKind::NotFound => {}
            other => other?,
        }
    }
    let ev = dir.join(svdir::EVENT);
    if fs::metadata(&ev).map(|m| m.is_dir()).unwrap_or(false) {
        chgrp(&ev, gid)?;
        chmod(&ev, EVENT_MODE)?;
    }
    Ok(())
}

/// The group supervise runs with, as seen on `supervise/lock` (which svgroup never
/// touches); else the owner group of `supervise/`; else our own effective gid.
pub fn supervisor_gid(dir: &Path) -> u32 {
    fs::metadata(dir.join(svdir::LOCK))
        .or_else(|_| fs::metadata(dir.join(svdir::SUPERVISE)))
        .map(|m| m.gid())
        .unwrap_or_else(|_| nix::unistd::getegid().as_raw())
}

/// True when the service runs as root: `supervise/lock` (created by supervise) is owned by
/// uid 0; without one, when we are root.
pub fn runs_as_root(dir: &Path) -> bool {
    match fs::metadata(dir.join(svdir::LOCK)) {
        Ok(m) => m.uid() == 0,
        Err(_) => nix::unistd::geteuid().is_root(),
    }
}

/// How a path is shown in messages: absolute when it can be resolved (supervise passes
/// `.`), else as given.
fn shown(dir: &Path, rel: &str) -> String {
    let base = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    if rel.is_empty() {
        base.display().to_string()
    } else {
        base.join(rel).display().to_string()
    }
}

/// Called by supervise once `supervise/`, `control`, `status` and `ok` exist: applies
/// `dir`'s delegation, if any, and removes world access to `control` and `ok` whatever
/// umask or recursive chmod ran before. Never fatal: returns warning texts (without the
/// `supervise: warning: ` prefix) for the caller to print, including every [`hazards`]
/// entry.
pub fn apply(dir: &Path) -> Vec<String> {
    let mut warnings = Vec::new();
    let delegation = match effective_group(dir) {
        Ok(d) => d,
        Err(e) => {
            warnings.push(format!(
                "unable to read {}: {}",
                shown(dir, svdir::GROUP),
                crate::errstr::io_str(&e)
            ));
            None
        }
    };
    // What was open before we touch anything, to say so once it is fixed: a loud warning
    // rather than a silent repair, since something (an installer's `chmod -R go+rwX`,
    // OPENACS.md gotcha 2) made it so and may do it again.
    let before: Vec<(&str, u32)> = [
        (svdir::CONTROL, 0o002),
        (svdir::OK, 0o002),
        (svdir::SUPERVISE, 0o022),
    ]
    .into_iter()
    .filter_map(|(rel, bad)| match mode_of(&dir.join(rel)) {
        Ok(Some(m)) if m & bad != 0 => Some((rel, m)),
        _ => None,
    })
    .collect();
    let mut delegated = false;
    if let Some((name, file)) = delegation {
        match resolve_group(&name) {
            Some(gid) => match delegate(dir, gid) {
                Ok(()) => delegated = true,
                Err(e) => warnings.push(format!(
                    "unable to delegate {} to group {name}: {}",
                    e.path.display(),
                    crate::errstr::io_str(&e.error)
                )),
            },
            None => warnings.push(format!(
                "unknown group {name} in {}; delegation not applied",
                file.display()
            )),
        }
    }
    if !delegated {
        for (rel, strip) in [
            (svdir::CONTROL, 0o007),
            (svdir::OK, 0o007),
            (svdir::SUPERVISE, 0o022),
        ] {
            let p = dir.join(rel);
            match mode_of(&p) {
                Ok(Some(m)) if m & strip != 0 => {
                    if let Err(e) = chmod(&p, m & !strip) {
                        warnings.push(format!(
                            "unable to restrict {}: {}",
                            shown(dir, rel),
                            crate::errstr::io_str(&e.error)
                        ));
                    }
                }
                _ => {}
            }
        }
    }
    for (rel, was) in before {
        if let Ok(Some(now)) = mode_of(&dir.join(rel)) {
            if now != was {
                warnings.push(format!(
                    "{} was mode {was:04o}, writable by {}: set to {now:04o}",
                    shown(dir, rel),
                    if rel == svdir::SUPERVISE {
                        "group or others"
                    } else {
                        "everyone (any local user could control the service)"
                    }
                ));
            }
        }
    }
    warnings.extend(hazards_as(dir, nix::unistd::geteuid().is_root()));
    warnings
}

/// Permission hazards of the service `dir` (see the module docs), one sentence each, for
/// svstat, svgroup `-l` or a health check to show. Whether the service runs as root is
/// read from `supervise/lock`'s owner ([`runs_as_root`]).
pub fn hazards(dir: &Path) -> Vec<String> {
    hazards_as(dir, runs_as_root(dir))
}

fn hazards_as(dir: &Path, root: bool) -> Vec<String> {
    let mut out = Vec::new();
    let m = |rel: &str| -> Option<u32> {
        let p = if rel.is_empty() {
            dir.to_path_buf()
        } else {
            dir.join(rel)
        };
        fs::metadata(p)
            .ok()
            .map(|md| md.permissions().mode() & 0o7777)
    };
    if root {
        if let Some(mode) = m(svdir::RUN) {
            if mode & 0o022 != 0 {
                out.push(format!(
                    "{} is writable by group or others and runs as root: anyone who can edit it gets root (chmod go-w it)",
                    shown(dir, svdir::RUN)
                ));
            }
        }
        if let Some(mode) = m("") {
            if mode & 0o022 != 0 && mode & 0o1000 == 0 {
                out.push(format!(
                    "{} is writable by group or others and the service runs as root: anyone who can replace run gets root (chmod go-w it)",
                    shown(dir, "")
                ));
            }
        }
        if let Some(mode) = m(svdir::SUPERVISE) {
            if mode & 0o022 != 0 {
                out.push(format!(
                    "{} is writable by group or others: they can replace control, ok and status (chmod go-w it)",
                    shown(dir, svdir::SUPERVISE)
                ));
            }
        }
    }
    for rel in [svdir::CONTROL, svdir::OK] {
        if let Some(mode) = m(rel) {
            if mode & 0o002 != 0 {
                out.push(format!(
                    "{} is writable by everyone: any local user can control the service (chmod o-rwx it, or use svgroup)",
                    shown(dir, rel)
                ));
            }
        }
    }
    out
}

/// What `svgroup -l` reports about one service directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The delegated group name, if a `group` file applies.
    pub group: Option<String>,
    /// The file the delegation comes from (`DIR/group`, or the parent's for a log).
    pub file: Option<PathBuf>,
    /// Whether `supervise/` exists yet.
    pub started: bool,
    /// Files under `supervise/` that do not (yet) carry the delegation.
    pub pending: Vec<&'static str>,
}

/// Inspects `dir`'s delegation and whether the existing files carry it.
pub fn inspect(dir: &Path) -> io::Result<Report> {
    let eff = effective_group(dir)?;
    let started = fs::metadata(dir.join(svdir::SUPERVISE)).is_ok();
    let mut pending = Vec::new();
    let (group, file) = match eff {
        Some((g, f)) => (Some(g), Some(f)),
        None => (None, None),
    };
    if let Some(gid) = group.as_deref().and_then(resolve_group) {
        for (rel, want_bits) in [
            (svdir::SUPERVISE, 0o010),
            (svdir::CONTROL, 0o020),
            (svdir::OK, 0o020),
        ] {
            if let Ok(md) = fs::metadata(dir.join(rel)) {
                let mode = md.permissions().mode();
                if md.gid() != gid || mode & want_bits != want_bits || mode & 0o002 != 0 {
                    pending.push(rel);
                }
            }
        }
    }
    Ok(Report {
        group,
        file,
        started,
        pending,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_db_lookup_reads_group5_lines() {
        let db = b"# comment\nroot:x:0:\n+nis\nweb:x:33:alice,bob\nbad:x:zz:\nweb:x:99:\nshort:x\nnopw::1234:\n";
        assert_eq!(gid_in_group_db(db, "root"), Some(0));
        // The first line for a name wins, as in glibc's files module.
        assert_eq!(gid_in_group_db(db, "web"), Some(33));
        assert_eq!(gid_in_group_db(db, "nopw"), Some(1234));
        assert_eq!(gid_in_group_db(db, "bad"), None);
        assert_eq!(gid_in_group_db(db, "short"), None);
        assert_eq!(gid_in_group_db(db, "nis"), None);
        assert_eq!(gid_in_group_db(db, "+nis"), None);
        assert_eq!(gid_in_group_db(db, "we"), None);
        assert_eq!(gid_in_group_db(db, ""), None);
        assert_eq!(gid_in_group_db(b"last:x:7:", "last"), Some(7));
    }

    #[test]
    fn resolve_group_by_name_or_number() {
        assert_eq!(resolve_group("root"), Some(0));
        assert_eq!(resolve_group("4242"), Some(4242));
        assert_eq!(resolve_group("no-such-group-here"), None);
    }

    #[test]
    fn delegated_dir_mode_is_traverse_only_for_group() {
        assert_eq!(delegated_dir_mode(0o700), 0o710);
        assert_eq!(delegated_dir_mode(0o777), 0o750);
        assert_eq!(delegated_dir_mode(0o755), 0o750);
        assert_eq!(delegated_dir_mode(0o000), 0o710);
    }

    #[test]
    fn group_file_round_trip_and_log_fallback() {
        let d = tempfile::tempdir().unwrap();
        let svc = d.path().join("svc");
        fs::create_dir_all(svc.join("log")).unwrap();
        assert_eq!(read_group(&svc).unwrap(), None);
        write_group(&svc, "web").unwrap();
        assert_eq!(read_group(&svc).unwrap().as_deref(), Some("web"));
        let (g, f) = effective_group(&svc.join("log")).unwrap().unwrap();
        assert_eq!(g, "web");
        assert_eq!(f, fs::canonicalize(&svc).unwrap().join("group"));
        assert!(remove_group(&svc).unwrap());
        assert!(!remove_group(&svc).unwrap());
        assert_eq!(effective_group(&svc.join("log")).unwrap(), None);
    }

    #[test]
    fn apply_without_group_strips_world_access_only() {
        let d = tempfile::tempdir().unwrap();
        let sup = d.path().join("supervise");
        fs::create_dir(&sup).unwrap();
        crate::fifo::make(&sup.join("control"), 0o600).unwrap();
        crate::fifo::make(&sup.join("ok"), 0o600).unwrap();
        fs::set_permissions(sup.join("control"), fs::Permissions::from_mode(0o666)).unwrap();
        fs::set_permissions(sup.join("ok"), fs::Permissions::from_mode(0o620)).unwrap();
        fs::set_permissions(&sup, fs::Permissions::from_mode(0o777)).unwrap();
        let w = apply(d.path());
        assert!(
            w.iter()
                .any(|l| l.ends_with("/supervise/control was mode 0666, writable by everyone (any local user could control the service): set to 0660")),
            "{w:?}"
        );
        assert!(
            w.iter().any(|l| l
                .ends_with("/supervise was mode 0777, writable by group or others: set to 0755")),
            "{w:?}"
        );
        // ok was 0620: not world-writable, nothing to say.
        assert!(!w.iter().any(|l| l.contains("/ok was")), "{w:?}");
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(&sup.join("control")), 0o660);
        assert_eq!(mode(&sup.join("ok")), 0o620);
        assert_eq!(mode(&sup), 0o755);
    }

    #[test]
    fn hazards_name_writable_run() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("run"), "#!/bin/sh\n").unwrap();
        fs::set_permissions(d.path().join("run"), fs::Permissions::from_mode(0o777)).unwrap();
        fs::set_permissions(d.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let h = hazards_as(d.path(), true);
        assert_eq!(h.len(), 1, "{h:?}");
        assert!(h[0].contains("/run is writable by group or others"));
        assert!(hazards_as(d.path(), false).is_empty());
    }
}
