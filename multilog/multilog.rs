//! multilog: reads a log from standard input and saves selected lines in log directories.
//!
//! # Interface
//! `multilog script...`. Each argument is one action, applied left to right to every line
//! of stdin (REFERENCE.md §7). There is no usage message: with no arguments multilog reads
//! stdin to EOF and drops every line. It sets umask 022.
//!
//! # Actions (0.76)
//! * `t` (first argument only): prefix each line with `@<24 hex> ` (TAI64N).
//! * `+pattern` / `-pattern`: select / deselect the line if the pattern matches the first
//!   1000 bytes of the line (stamp included). Only `*` is special.
//! * `e`: print the selected line to stderr (cut to 200 bytes plus `...`).
//! * `=file`: overwrite `file` with the selected line padded to 1001 bytes.
//! * `sN`, `nN`, `!processor`: size, number of files, processor for the directories that
//!   follow (defaults 99999, 10, none; `s` clamped to 4096..16777215, `n` at least 2).
//! * `./dir`, `/dir`: a log directory, which gets the line if it is selected here.
//!
//! # Actions (extensions; 0.76 ignores them silently)
//! * `T` (first argument, or right after a first `t`): prefix an RFC 3339 UTC stamp.
//! * `SN`: keep the archives of the following directories under N bytes in total.
//! * `aN`: also rotate a non-empty `current` N seconds after its first byte.
//! * `z`: gzip finished archives of the following directories (`@<stamp>.s.gz`).
//!
//! # Exit codes
//! 0 at EOF or after TERM. 111 when a directory cannot be set up at startup (for example
//! `multilog: fatal: unable to lock directory ./main: temporary failure`). A read error on
//! stdin counts as EOF (as 0.76: clean close, exit 0).
//! Disk errors once running are never fatal: multilog warns, pauses 5 s and retries.
//!
//! # Signals
//! * TERM: finish the line being read, flush, exit 0; unread input stays in the pipe.
//! * ALRM: rotate every non-empty `current` now.
//!
//! # Examples
//! * `exec multilog t ./main`: the usual `log/run`: stamp and keep 10 files of ~100 KB.
//! * `exec multilog t s1000000 n20 './main' -* '+* Error:*' =lasterror`: everything in
//!   `main`, the latest line whose message starts with `Error:` in `lasterror`. (With `t`
//!   a pattern sees the stamp: `*` + a hex digit would stop inside it, so skip it with
//!   `* `.)
//! * `exec multilog t T S50000000 z ./main`: both stamps, gzip'd archives, at most ~50 MB.
//!
//! # Notes
//! Rotation happens at exactly the bytes 0.76 would choose for the same reads, but our
//! writes are coalesced (one `write` per directory per read), and several lines arriving
//! in one read share one timestamp. See docs/multilog.md.

use std::os::unix::ffi::OsStrExt;
use svcore::errstr;
use svcore::logdir::{engine, script};

fn main() {
    // SAFETY: umask only changes this process's file-creation mask.
    unsafe {
        libc::umask(0o022);
    }
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let script = script::parse(args.iter().map(|a| a.as_bytes()));
    match engine::run(script, 0) {
        Ok(()) => std::process::exit(errstr::EXIT_OK),
        Err(engine::RunError::Start(e)) => errstr::die(
            "multilog",
            &format!("unable to {}: {}", e.what, errstr::io_str(&e.err)),
            errstr::EXIT_TEMPORARY,
        ),
        Err(engine::RunError::Read(e)) => errstr::die(
            "multilog",
            &format!("unable to read standard input: {}", errstr::io_str(&e)),
            errstr::EXIT_TEMPORARY,
        ),
    }
}
