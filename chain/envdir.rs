//! envdir: run a program with environment variables set from the files of a directory.
//!
//! # Interface
//!
//! `envdir DIR CHILD...`
//!
//! For each entry of DIR whose name does not start with `.`, in directory order:
//! * an empty (0-byte) file **removes** the variable of that name;
//! * otherwise the variable is set to the file's first line, with trailing spaces and
//!   tabs removed and every NUL byte turned into a newline. A file holding only `\n`
//!   sets the variable to the empty string.
//!
//! Then envdir execs CHILD through `$PATH`. The search uses envdir's **own** `PATH`, not
//! one set from DIR (0.76's pathexec).
//!
//! # Options
//!
//! None.
//!
//! # Exit codes
//!
//! * **111 for usage** (`envdir: usage: envdir dir child`): a 0.76 quirk we keep, because
//!   scripts may test for it (REFERENCE.md §9).
//! * 111: `envdir: fatal: unable to switch to directory DIR: ERR`,
//!   `unable to read directory DIR: ERR`, `unable to read DIR/NAME: ERR` (a subdirectory
//!   gives `is a directory`), `unable to open current directory: ERR`,
//!   `unable to switch to starting directory: ERR`, `unable to run CHILD: ERR`.
//!
//! # Examples
//!
//! `exec envdir ./env nsd -i -t config.tcl -u site -g web`, with `env/oacs_httpport`
//! holding `8001` (OPENACS.md §3: two instances of one tree differ only by env files).
//!
//! # Notes
//!
//! Same as 0.76, quirks included: the child's environment has the same order as under
//! daemontools (see svcore::pathexec), and an entry that vanishes between `readdir` and
//! `open` (a dangling symlink) reuses the previous entry's value plus a newline, as
//! 0.76's reused buffer does.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use svcore::errstr::{self, EXIT_TEMPORARY, io_str};
use svcore::pathexec::Env;

const PROG: &str = "envdir";

fn main() {
    let args: Vec<OsString> = std::env::args_os().collect();
    if args.len() < 3 {
        // 0.76 exits 111 here, not 100 (REFERENCE.md §9); kept on purpose.
        errstr::emit("envdir: usage: envdir dir child");
        std::process::exit(EXIT_TEMPORARY);
    }
    let dir = args[1].to_string_lossy().into_owned();
    let env = match read_env(&args[1], &dir) {
        Ok(e) => e,
        Err(text) => die(&text),
    };
    let err = env.exec(&args[2..]);
    die(&format!(
        "unable to run {}: {}",
        args[2].to_string_lossy(),
        io_str(&err)
    ));
}

/// Reads DIR into environment changes, leaving the current directory as it was.
fn read_env(path: &std::ffi::OsStr, dir: &str) -> Result<Env, String> {
    let orig =
        File::open(".").map_err(|e| format!("unable to open current directory: {}", io_str(&e)))?;
    std::env::set_current_dir(path)
        .map_err(|e| format!("unable to switch to directory {dir}: {}", io_str(&e)))?;
    let rd = std::fs::read_dir(".")
        .map_err(|e| format!("unable to read directory {dir}: {}", io_str(&e)))?;
    let mut env = Env::new();
    // 0.76 reads every file into one reused buffer; see `value`.
    let mut sa: Vec<u8> = Vec::new();
    for ent in rd {
        let ent = ent.map_err(|e| format!("unable to read directory {dir}: {}", io_str(&e)))?;
        let name = ent.file_name();
        let nb = name.as_bytes();
        if nb.first() == Some(&b'.') {
            continue;
        }
        match read_file(&name) {
            Ok(Some(content)) => sa = content,
            // openreadclose: ENOENT is "no file" and leaves the buffer as it was.
            Ok(None) => {}
            Err(e) => {
                return Err(format!(
                    "unable to read {dir}/{}: {}",
                    name.to_string_lossy(),
                    io_str(&e)
                ));
            }
        }
        if sa.is_empty() {
            env.unset(nb);
        } else {
            value(&mut sa);
            env.set(nb, &sa[..sa.len() - 1]);
        }
    }
    nix::unistd::fchdir(orig.as_raw_fd()).map_err(|e| {
        format!(
            "unable to switch to starting directory: {}",
            errstr::errno_str(e as i32)
        )
    })?;
    Ok(env)
}

/// Turns the buffer into 0.76's value in place, C-string style: cut at the first newline,
/// strip trailing spaces and tabs, NUL to newline, then a terminating NUL (which stays in
/// the buffer and becomes a newline if the buffer is reused; see the module notes).
fn value(sa: &mut Vec<u8>) {
    if let Some(nl) = sa.iter().position(|&c| c == b'\n') {
        sa.truncate(nl);
    }
    while matches!(sa.last(), Some(b' ') | Some(b'\t')) {
        sa.pop();
    }
    for c in sa.iter_mut() {
        if *c == 0 {
            *c = b'\n';
        }
    }
    sa.push(0);
}

/// The whole file (`O_RDONLY|O_NONBLOCK`, as 0.76's open_read), `None` if it does not
/// exist.
fn read_file(name: &std::ffi::OsStr) -> io::Result<Option<Vec<u8>>> {
    let mut f = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(name)
    {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut buf = Vec::new();
    f.read_to_end(&mut buf)?;
    Ok(Some(buf))
}

fn die(text: &str) -> ! {
    errstr::die(PROG, text, EXIT_TEMPORARY)
}

#[cfg(test)]
mod tests {
    use super::value;

    #[test]
    fn first_line_trimmed_and_nul_to_newline() {
        let mut v = b"a b \t \nsecond".to_vec();
        value(&mut v);
        assert_eq!(v, b"a b\0");
        let mut v = b"x\0y".to_vec();
        value(&mut v);
        assert_eq!(v, b"x\ny\0");
        let mut v = b"\n".to_vec();
        value(&mut v);
        assert_eq!(v, b"\0");
    }

    #[test]
    fn reused_buffer_gains_a_newline() {
        let mut v = b"val".to_vec();
        value(&mut v);
        value(&mut v);
        assert_eq!(v, b"val\n\0");
    }
}
