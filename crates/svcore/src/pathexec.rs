//! Running the next program of a chain: djb's `pathexec` (REFERENCE.md §9).
//!
//! Every chain-loader (setuidgid, envdir, softlimit, ...) ends by replacing itself with
//! `CHILD...`, found through `$PATH`, and prints `PROG: fatal: unable to run CHILD: ERR`
//! (exit 111) when that fails. Scripts and admins see the errno that comes out of the
//! search, so the search reproduces daemontools' `pathexec_run` exactly:
//!
//! * a name containing `/` is executed as it is;
//! * otherwise each `$PATH` component is tried in order (an empty component means `.`;
//!   an unset `PATH` means `/bin:/usr/bin`);
//! * ENOENT moves on silently; EACCES, EPERM and EISDIR are remembered and the search
//!   moves on; any other error (ENOEXEC, ...) stops the search at once;
//! * the error reported is the remembered one, else the last one.
//!
//! There is no `/bin/sh` fallback for scripts without a shebang (execvp has one; 0.76 does
//! not, so `exec format error` is what users of the original see).
//!
//! The search reads the `PATH` of this process, **not** the modified environment passed to
//! the child: `envdir` can set `PATH` for the child without changing where the child
//! itself is found, as in 0.76.
//!
//! [`Env`] reproduces `pathexec_env` + `pathexec`: changes are applied in order to a copy
//! of the environment, each removing the **first** existing entry of that name by moving
//! the last entry into its slot, then appending the new `NAME=VALUE`. The order of the
//! child's environment is therefore the same as under daemontools (`env` output compares
//! byte for byte).

use std::ffi::{CString, OsString};
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};

/// `PATH` used when the variable is unset (daemontools' default).
pub const DEFAULT_PATH: &[u8] = b"/bin:/usr/bin";

/// Pending changes to the environment of the child (djb's `pathexec_env`).
#[derive(Debug, Default, Clone)]
pub struct Env {
    /// Raw entries: `NAME=VALUE` to set, `NAME` alone to unset.
    plus: Vec<Vec<u8>>,
}

impl Env {
    /// No changes.
    pub fn new() -> Env {
        Env::default()
    }

    /// Sets `name` to `value` in the child's environment.
    pub fn set(&mut self, name: &[u8], value: &[u8]) {
        let mut e = name.to_vec();
        e.push(b'=');
        e.extend_from_slice(value);
        self.plus.push(e);
    }

    /// Removes `name` from the child's environment.
    pub fn unset(&mut self, name: &[u8]) {
        self.plus.push(name.to_vec());
    }

    /// True when no change was recorded.
    pub fn is_empty(&self) -> bool {
        self.plus.is_empty()
    }

    /// Applies the changes to `base` (entries `NAME=VALUE`), exactly as daemontools'
    /// `pathexec` does; pure, so it is unit-tested without a process.
    ///
    /// A change's name is its bytes up to the first `=`. So an envdir file called `A=B`
    /// replaces `A` and sets `A=B=VALUE`, and an empty one unsets `A` but then appends the
    /// entry `A=B` (0.76 quirks, kept because they are visible in the child's `env`).
    pub fn apply(&self, base: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
        let mut e = base;
        for entry in &self.plus {
            let split = entry.iter().position(|&c| c == b'=').unwrap_or(entry.len());
            let name = &entry[..split];
            if let Some(t) = e
                .iter()
                .position(|x| x.len() > split && &x[..split] == name && x[split] == b'=')
            {
                // djb: --elen; e[t] = e[elen]; i.e. a swap-remove, which reorders.
                e.swap_remove(t);
            }
            if split < entry.len() {
                e.push(entry.clone());
            }
        }
        e
    }

    /// Execs `argv` with the current environment changed by `self`. Returns only on
    /// failure, with the error to report.
    pub fn exec(&self, argv: &[OsString]) -> io::Error {
        let env = self.apply(current_environ());
        run(argv, &env)
    }
}

/// The current process environment as `NAME=VALUE` byte strings, in `environ` order.
pub fn current_environ() -> Vec<Vec<u8>> {
    std::env::vars_os()
        .map(|(k, v)| {
            let mut e = k.into_vec();
            e.push(b'=');
            e.extend_from_slice(v.as_bytes());
            e
        })
        .collect()
}

/// Execs `argv` with the unchanged environment (djb's `pathexec_run(*argv, argv, envp)`).
/// Returns only on failure.
pub fn exec(argv: &[OsString]) -> io::Error {
    run(argv, &current_environ())
}

/// The candidate paths for `file`, in search order (pure): `file` itself when it contains
/// a `/`, else `DIR/file` for each component of `path` (empty component = `.`).
pub fn candidates(file: &[u8], path: Option<&[u8]>) -> Vec<Vec<u8>> {
    if file.contains(&b'/') {
        return vec![file.to_vec()];
    }
    let path = path.unwrap_or(DEFAULT_PATH);
    path.split(|&c| c == b':')
        .map(|dir| {
            let mut p = if dir.is_empty() {
                b".".to_vec()
            } else {
                dir.to_vec()
            };
            p.push(b'/');
            p.extend_from_slice(file);
            p
        })
        .collect()
}

/// djb's rule for which exec errors end the search (pure). `Some(saved)` means "stop and
/// report"; `None` means "try the next component".
fn keeps_searching(errno: i32) -> bool {
    errno == libc::ENOENT || errno == libc::EACCES || errno == libc::EPERM || errno == libc::EISDIR
}

/// `pathexec_run`: searches `$PATH` (of this process) for `argv[0]` and execs it with
/// environment `env`. Returns only on failure, with the errno daemontools would report.
/// SIGPIPE is reset to its default first: Rust's runtime ignores it before `main`, and an
/// ignored disposition would otherwise be inherited by the child (0.76 never ignores it).
pub fn run(argv: &[OsString], env: &[Vec<u8>]) -> io::Error {
    let Some(file) = argv.first() else {
        return io::Error::from_raw_os_error(libc::ENOENT);
    };
    let cargs: Result<Vec<CString>, _> = argv
        .iter()
        .map(|a| CString::new(a.as_bytes().to_vec()))
        .collect();
    let cenv: Result<Vec<CString>, _> = env.iter().map(|e| CString::new(e.clone())).collect();
    let (Ok(cargs), Ok(cenv)) = (cargs, cenv) else {
        // Arguments from argv cannot hold NUL; an envdir value with NUL was already
        // turned into newlines. Only a bug gets here.
        return io::Error::from_raw_os_error(libc::EINVAL);
    };
    let mut argp: Vec<*const libc::c_char> = cargs.iter().map(|c| c.as_ptr()).collect();
    argp.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = cenv.iter().map(|c| c.as_ptr()).collect();
    envp.push(std::ptr::null());

    let path = std::env::var_os("PATH");
    let cands = candidates(file.as_bytes(), path.as_ref().map(|p| p.as_bytes()));
    // SAFETY: signal(2) with a constant disposition; we are about to exec.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let mut saved: Option<i32> = None;
    let mut last = libc::ENOENT;
    for cand in cands {
        let Ok(c) = CString::new(cand) else {
            continue;
        };
        // SAFETY: execve with NUL-terminated arrays of pointers into CStrings that outlive
        // the call; it returns only on failure.
        unsafe {
            libc::execve(c.as_ptr(), argp.as_ptr(), envp.as_ptr());
        }
        let errno = io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EINVAL);
        last = errno;
        if errno != libc::ENOENT {
            saved = Some(errno);
            if !keeps_searching(errno) {
                break;
            }
        }
    }
    io::Error::from_raw_os_error(saved.unwrap_or(last))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<Vec<u8>> {
        s.iter().map(|x| x.as_bytes().to_vec()).collect()
    }

    #[test]
    fn unset_swaps_last_entry_into_place() {
        let mut e = Env::new();
        e.unset(b"HOME");
        e.set(b"A", b"1");
        let out = e.apply(v(&["PATH=/bin", "HOME=/root", "FOO=1"]));
        assert_eq!(out, v(&["PATH=/bin", "FOO=1", "A=1"]));
    }

    #[test]
    fn set_replaces_first_match_only() {
        let mut e = Env::new();
        e.set(b"X", b"new");
        let out = e.apply(v(&["X=1", "Y=2", "X=3"]));
        assert_eq!(out, v(&["X=3", "Y=2", "X=new"]));
    }

    #[test]
    fn name_with_equals_quirk() {
        let mut e = Env::new();
        e.set(b"W=X", b"q");
        assert_eq!(e.apply(v(&["W=1"])), v(&["W=X=q"]));
        let mut u = Env::new();
        u.unset(b"W=X");
        assert_eq!(u.apply(v(&["W=1", "Z=2"])), v(&["Z=2", "W=X"]));
    }

    #[test]
    fn prefix_is_not_a_match() {
        let mut e = Env::new();
        e.unset(b"PATH");
        assert_eq!(e.apply(v(&["PATHX=1", "PATH=2"])), v(&["PATHX=1"]));
    }

    #[test]
    fn path_search_candidates() {
        assert_eq!(candidates(b"./x", Some(b"/a")), v(&["./x"]));
        assert_eq!(
            candidates(b"x", Some(b"/a::/b")),
            v(&["/a/x", "./x", "/b/x"])
        );
        assert_eq!(candidates(b"x", Some(b"")), v(&["./x"]));
        assert_eq!(candidates(b"x", None), v(&["/bin/x", "/usr/bin/x"]));
    }

    #[test]
    fn which_errors_continue_the_search() {
        assert!(keeps_searching(libc::EACCES));
        assert!(keeps_searching(libc::ENOENT));
        assert!(!keeps_searching(libc::ENOEXEC));
    }
}
