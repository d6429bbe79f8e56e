//! tai64n: puts a precise TAI64N timestamp on each line.
//!
//! # Interface
//! `tai64n` reads lines from standard input and writes each one to standard output
//! prefixed with `@`, 24 lowercase hex digits (TAI64N, daemontools' label: REFERENCE.md
//! §2) and a space. Arguments are ignored (REFERENCE.md §8).
//!
//! # Options
//! None.
//!
//! # Exit codes
//! 0 at end of input, and when the reader of the output goes away (broken pipe; 0.76
//! dies of SIGPIPE there). 111 when reading or writing fails otherwise
//! (`tai64n: fatal: unable to read input: ERR`, `tai64n: fatal: unable to write output: ERR`).
//!
//! # Examples
//! `some-daemon 2>&1 | tai64n | tai64nlocal`
//!
//! # Notes
//! The stamp is the time at which the `read(2)` delivering a line's first byte returned,
//! so lines arriving together share a stamp (0.76 reads the clock again for each line,
//! which for lines of one read differs only by its own processing time). Everything read is written before the next read: a line is never held back in
//! a pipeline. A last line without a newline is passed on without one (as 0.76).

use std::io::{self, Write};
use svcore::errstr;
use svcore::tai64n::Tai64n;

/// How much we read at a time: a pipe's worth, so a busy pipeline costs few syscalls.
const READ_SIZE: usize = 64 * 1024;

/// Adds stamps to one read's worth of input; `at_start` carries "the next byte begins a
/// line" from one read to the next. Pure apart from the stamp given by the caller.
fn stamp_chunk(data: &[u8], stamp: &[u8], at_start: &mut bool, out: &mut Vec<u8>) {
    let mut i = 0;
    while i < data.len() {
        if *at_start {
            out.extend_from_slice(stamp);
            out.push(b' ');
            *at_start = false;
        }
        match data[i..].iter().position(|&c| c == b'\n') {
            Some(j) => {
                out.extend_from_slice(&data[i..=i + j]);
                i += j + 1;
                *at_start = true;
            }
            None => {
                out.extend_from_slice(&data[i..]);
                i = data.len();
            }
        }
    }
}

/// Reads fd 0 and writes fd 1 until EOF; `Err((what, e))` names the failing side.
fn run() -> Result<(), (&'static str, io::Error)> {
    let mut buf = vec![0u8; READ_SIZE];
    let mut out = Vec::with_capacity(READ_SIZE * 2);
    let mut at_start = true;
    let stdout = io::stdout();
    loop {
        // SAFETY: reading into a buffer we own, at most its length.
        let n = unsafe { libc::read(0, buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(("read input", e));
        }
        if n == 0 {
            return Ok(());
        }
        let stamp = Tai64n::now().external();
        out.clear();
        stamp_chunk(&buf[..n as usize], &stamp, &mut at_start, &mut out);
        // Written (and flushed) before the next read: nothing waits for a full buffer.
        let mut lock = stdout.lock();
        lock.write_all(&out)
            .and_then(|()| lock.flush())
            .map_err(|e| ("write output", e))?;
    }
}

fn main() {
    match run() {
        Ok(()) => std::process::exit(errstr::EXIT_OK),
        // The reader went away (`... | head`): 0.76 dies of SIGPIPE without a word; we
        // stop quietly too, as a success (ripgrep's policy, STYLE.md).
        Err((_, e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            std::process::exit(errstr::EXIT_OK)
        }
        Err((what, e)) => errstr::die(
            "tai64n",
            &format!("unable to {what}: {}", errstr::io_str(&e)),
            errstr::EXIT_TEMPORARY,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::stamp_chunk;

    #[test]
    fn stamps_each_line_across_reads() {
        let mut at = true;
        let mut out = Vec::new();
        stamp_chunk(b"a\nb", b"@S", &mut at, &mut out);
        stamp_chunk(b"c\n\nd", b"@T", &mut at, &mut out);
        assert_eq!(out, b"@S a\n@S bc\n@T \n@T d");
        assert!(!at);
    }
}
