//! tai64nlocal: converts TAI64N timestamps at the start of lines to local time.
//!
//! # Interface
//! `tai64nlocal` copies standard input to standard output. A line that starts with `@`
//! followed by 24 lowercase hex digits (a TAI64N stamp, REFERENCE.md §2) has the stamp
//! replaced by the local time, `YYYY-MM-DD HH:MM:SS.NNNNNNNNN`, honouring `TZ`; the rest of
//! the line follows unchanged. Every other line passes through untouched (REFERENCE.md §8).
//!
//! # Options
//! None; arguments are ignored.
//!
//! # Exit codes
//! 0 at end of input, and when the reader of the output goes away (broken pipe; 0.76
//! dies of SIGPIPE there). 111 when reading or writing fails otherwise
//! (`tai64nlocal: fatal: unable to read input: ERR` or `... unable to write output: ERR`).
//!
//! # Examples
//! `tai64nlocal < /service/openacs/log/main/current | less`
//!
//! # Notes
//! 0.76 crashes (SIGSEGV) on a stamp it cannot convert (one out of range, or with uppercase
//! hex) and converts any run of hex digits after `@`; we convert exactly 24 lowercase
//! digits and pass any other line through unchanged. Output is written before every read,
//! so a line is never held back in a pipeline.

use std::io::{self, Write};
use svcore::errstr;
use svcore::tai64n::{DJB_OFFSET, TAI64_BASE, Tai64n};

/// How much we read at a time.
const READ_SIZE: usize = 64 * 1024;
/// Hex digits in a TAI64N stamp.
const HEX_DIGITS: usize = 24;

/// Where we are in the input, carried from one read to the next.
enum At {
    /// The next byte begins a line.
    Start,
    /// Inside a candidate stamp: `@` and the lowercase hex digits seen so far (held back
    /// until we know whether the line starts with a stamp; at most 26 bytes).
    Stamp(Vec<u8>),
    /// Copying the rest of a line.
    Rest,
}

/// Converts stamps to local time, caching the last second's broken-down time.
struct Converter {
    at: At,
    cache: Option<(i64, String)>,
}

/// `YYYY-MM-DD HH:MM:SS` for Unix second `t` in the local zone (`TZ`), or `None` when the
/// C library cannot represent it.
fn local_seconds(t: i64) -> Option<String> {
    let tt = libc::time_t::try_from(t).ok()?;
    // SAFETY: an all-zero `tm` is a valid value of this plain C struct.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: localtime_r reads `tt` and writes only `tm`, both ours; it returns NULL on
    // failure, which we check.
    let r = unsafe { libc::localtime_r(&tt, &mut tm) };
    if r.is_null() {
        return None;
    }
    // 0.76 prints the year with fmt_ulong: no padding.
    Some(format!(
        "{}-{:02}-{:02} {:02}:{:02}:{:02}",
        1900 + i64::from(tm.tm_year),
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    ))
}

impl Converter {
    fn new() -> Converter {
        Converter {
            at: At::Start,
            cache: None,
        }
    }

    /// The local-time text for `@` + 24 hex digits, or `None` to pass them through.
    fn convert(&mut self, stamp: &[u8]) -> Option<String> {
        if stamp.len() != 1 + HEX_DIGITS {
            return None;
        }
        let t = Tai64n::parse_hex(&stamp[1..])?;
        if t.nanos >= 1_000_000_000 {
            return None;
        }
        // Unix seconds; labels before 1970 give negative times, which localtime handles.
        let unix = i64::try_from(i128::from(t.secs) - i128::from(TAI64_BASE + DJB_OFFSET)).ok()?;
        let secs = match &self.cache {
            Some((c, s)) if *c == unix => s.clone(),
            _ => {
                let s = local_seconds(unix)?;
                self.cache = Some((unix, s.clone()));
                s
            }
        };
        Some(format!("{secs}.{:09}", t.nanos))
    }

    /// Ends a candidate stamp: writes it converted, or as it was.
    fn end_stamp(&mut self, stamp: Vec<u8>, out: &mut Vec<u8>) {
        match self.convert(&stamp) {
            Some(s) => out.extend_from_slice(s.as_bytes()),
            None => out.extend_from_slice(&stamp),
        }
    }

    /// Converts one read's worth of input into `out`.
    fn feed(&mut self, data: &[u8], out: &mut Vec<u8>) {
        let mut i = 0;
        while i < data.len() {
            match std::mem::replace(&mut self.at, At::Rest) {
                At::Start => {
                    if data[i] == b'@' {
                        self.at = At::Stamp(vec![b'@']);
                        i += 1;
                    } else {
                        self.at = At::Rest;
                    }
                }
                At::Stamp(mut s) => {
                    let c = data[i];
                    // One digit beyond 24 is enough to know the stamp is not ours.
                    if matches!(c, b'0'..=b'9' | b'a'..=b'f') && s.len() <= 1 + HEX_DIGITS {
                        s.push(c);
                        self.at = At::Stamp(s);
                        i += 1;
                    } else {
                        self.end_stamp(s, out);
                        self.at = At::Rest;
                    }
                }
                At::Rest => match data[i..].iter().position(|&c| c == b'\n') {
                    Some(j) => {
                        out.extend_from_slice(&data[i..=i + j]);
                        i += j + 1;
                        self.at = At::Start;
                    }
                    None => {
                        out.extend_from_slice(&data[i..]);
                        i = data.len();
                    }
                },
            }
        }
    }

    /// At EOF: a pending stamp is written out.
    fn finish(&mut self, out: &mut Vec<u8>) {
        if let At::Stamp(s) = std::mem::replace(&mut self.at, At::Start) {
            self.end_stamp(s, out);
        }
    }
}

/// Reads fd 0 and writes fd 1 until EOF; `Err((what, e))` names the failing side.
fn run() -> Result<(), (&'static str, io::Error)> {
    let mut conv = Converter::new();
    let mut buf = vec![0u8; READ_SIZE];
    let mut out = Vec::with_capacity(READ_SIZE * 2);
    let stdout = io::stdout();
    loop {
        // SAFETY: reading into a buffer we own, at most its length.
        let n = unsafe { libc::read(0, buf.as_mut_ptr().cast(), buf.len()) };
        out.clear();
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(("read input", e));
        }
        if n == 0 {
            conv.finish(&mut out);
        } else {
            conv.feed(&buf[..n as usize], &mut out);
        }
        let mut lock = stdout.lock();
        lock.write_all(&out)
            .and_then(|()| lock.flush())
            .map_err(|e| ("write output", e))?;
        if n == 0 {
            return Ok(());
        }
    }
}

fn main() {
    // SAFETY: tzset only reads TZ and initialises the C library's zone data; we are
    // single-threaded.
    unsafe { tzset() };
    match run() {
        Ok(()) => std::process::exit(errstr::EXIT_OK),
        // The reader went away (`... | head`): 0.76 dies of SIGPIPE without a word; we
        // stop quietly too, as a success (ripgrep's policy, STYLE.md).
        Err((_, e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            std::process::exit(errstr::EXIT_OK)
        }
        Err((what, e)) => errstr::die(
            "tai64nlocal",
            &format!("unable to {what}: {}", errstr::io_str(&e)),
            errstr::EXIT_TEMPORARY,
        ),
    }
}

unsafe extern "C" {
    /// POSIX `tzset(3)`: loads the zone named by `TZ` for `localtime_r`.
    fn tzset();
}

#[cfg(test)]
mod tests {
    use super::Converter;

    fn conv(input: &[&[u8]]) -> Vec<u8> {
        let mut c = Converter::new();
        let mut out = Vec::new();
        for chunk in input {
            c.feed(chunk, &mut out);
        }
        c.finish(&mut out);
        out
    }

    #[test]
    fn bad_stamps_pass_through() {
        for l in [
            &b"@4000000000000000 x\n"[..],
            b"@400000006B05A760192F74D4 x\n",
            b"@400000006b05a760192f74d4aa x\n",
            b"@ x\n",
            b"x @400000006b05a760192f74d4\n",
            b"@ffffffffffffffffffffffff x\n",
        ] {
            assert_eq!(conv(&[l]), l.to_vec(), "{}", String::from_utf8_lossy(l));
        }
    }

    #[test]
    fn stamp_split_across_reads_converts() {
        // TZ is process-wide and tests run in threads, so compare with a one-chunk run
        // rather than a fixed text (the integration tests check TZ against Debian's).
        let whole = conv(&[b"@400000006b05a760192f74d4 x\nplain\n"]);
        let split = conv(&[b"@400000006b05a7", b"60192f74d4 x\npla", b"in\n"]);
        assert_eq!(whole, split);
        assert!(whole.ends_with(b".422540500 x\nplain\n"));
        assert!(!whole.starts_with(b"@"));
    }
}
