//! softlimit: run a program with lower soft resource limits.
//!
//! # Interface
//!
//! `softlimit [-a allbytes] [-c corebytes] [-d databytes] [-f filebytes] [-l lockbytes]
//! [-m membytes] [-o openfiles] [-p processes] [-r residentbytes] [-s stackbytes]
//! [-t cpusecs] CHILD...`
//!
//! Each option sets one soft limit (`setrlimit`), in the order given, then softlimit execs
//! CHILD through `$PATH`.
//!
//! # Options
//!
//! | option | limit |
//! |---|---|
//! | `-a` | RLIMIT_AS |
//! | `-c` | RLIMIT_CORE |
//! | `-d` | RLIMIT_DATA |
//! | `-f` | RLIMIT_FSIZE |
//! | `-l` | RLIMIT_MEMLOCK |
//! | `-m` | RLIMIT_DATA, RLIMIT_STACK, RLIMIT_MEMLOCK and RLIMIT_AS together |
//! | `-o` | RLIMIT_NOFILE |
//! | `-p` | RLIMIT_NPROC |
//! | `-r` | RLIMIT_RSS |
//! | `-s` | RLIMIT_STACK |
//! | `-t` | RLIMIT_CPU |
//!
//! The value is a decimal number or `=`, which means "the hard limit". A number above the
//! hard limit is clamped to it. As in 0.76, digits are read with wrap-around (djb's
//! `scan_ulong`) and an empty value means 0.
//!
//! # Exit codes
//!
//! * 100: usage (a value that is not a number, an unknown option, a missing argument or a
//!   missing CHILD): sgetopt's line if any, then the long usage line.
//! * 111: `softlimit: fatal: getrlimit failed: ERR`, `setrlimit failed: ERR`,
//!   `unable to run CHILD: ERR`.
//!
//! # Notes
//!
//! Same as 0.76 (REFERENCE.md §9). Linux has no RLIMIT_VMEM, and its RLIMIT_OFILE is
//! RLIMIT_NOFILE, so those 0.76 branches collapse into the ones above.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use svcore::errstr::{self, EXIT_PERMANENT, EXIT_TEMPORARY, io_str};
use svcore::getopt::{Getopt, Opt};
use svcore::pathexec;

const PROG: &str = "softlimit";
const USAGE: &str = "softlimit: usage: softlimit [-a allbytes] [-c corebytes] [-d databytes] [-f filebytes] [-l lockbytes] [-m membytes] [-o openfiles] [-p processes] [-r residentbytes] [-s stackbytes] [-t cpusecs] child";

fn usage() -> ! {
    errstr::emit(USAGE);
    std::process::exit(EXIT_PERMANENT);
}

fn fatal(text: &str) -> ! {
    errstr::die(PROG, text, EXIT_TEMPORARY)
}

/// The resources an option letter sets, in 0.76's order.
fn resources(letter: u8) -> &'static [libc::__rlimit_resource_t] {
    match letter {
        b'a' => &[libc::RLIMIT_AS],
        b'c' => &[libc::RLIMIT_CORE],
        b'd' => &[libc::RLIMIT_DATA],
        b'f' => &[libc::RLIMIT_FSIZE],
        b'l' => &[libc::RLIMIT_MEMLOCK],
        b'm' => &[
            libc::RLIMIT_DATA,
            libc::RLIMIT_STACK,
            libc::RLIMIT_MEMLOCK,
            libc::RLIMIT_AS,
        ],
        b'o' => &[libc::RLIMIT_NOFILE],
        b'p' => &[libc::RLIMIT_NPROC],
        b'r' => &[libc::RLIMIT_RSS],
        b's' => &[libc::RLIMIT_STACK],
        b't' => &[libc::RLIMIT_CPU],
        _ => &[],
    }
}

/// djb's `scan_ulong` over the whole argument: `None` if a non-digit follows the digits.
/// Wraps on overflow, as the C code does.
fn parse(arg: &[u8]) -> Option<u64> {
    let mut u: u64 = 0;
    for &c in arg {
        if !c.is_ascii_digit() {
            return None;
        }
        u = u.wrapping_mul(10).wrapping_add(u64::from(c - b'0'));
    }
    Some(u)
}

/// The new soft limit (pure): `=` means the hard limit; numbers are clamped to it.
fn soft(arg: &[u8], hard: libc::rlim_t) -> Option<libc::rlim_t> {
    if arg == b"=" {
        return Some(hard);
    }
    let u = parse(arg)?;
    Some(if u > hard { hard } else { u })
}

fn doit(resource: libc::__rlimit_resource_t, arg: &[u8]) {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit with a valid pointer to a local struct.
    if unsafe { libc::getrlimit(resource, &mut r) } == -1 {
        fatal(&format!(
            "getrlimit failed: {}",
            io_str(&std::io::Error::last_os_error())
        ));
    }
    let Some(cur) = soft(arg, r.rlim_max) else {
        usage();
    };
    r.rlim_cur = cur;
    // SAFETY: setrlimit with a valid pointer to an initialised struct.
    if unsafe { libc::setrlimit(resource, &r) } == -1 {
        fatal(&format!(
            "setrlimit failed: {}",
            io_str(&std::io::Error::last_os_error())
        ));
    }
}

fn main() {
    let args: Vec<OsString> = std::env::args_os().collect();
    let mut g = Getopt::new(&args, "a:c:d:f:l:m:o:p:r:s:t:");
    while let Some(o) = g.next_opt() {
        match o {
            Opt::Bad(line) => {
                errstr::emit(&line);
                usage();
            }
            Opt::Opt(c, arg) => {
                let arg = arg.unwrap_or_default();
                // Limits are set as options are read, as in 0.76.
                for &res in resources(c) {
                    doit(res, arg.as_bytes());
                }
            }
        }
    }
    let child = &args[g.optind.min(args.len())..];
    if child.is_empty() {
        usage();
    }
    let err = pathexec::exec(child);
    fatal(&format!(
        "unable to run {}: {}",
        child[0].to_string_lossy(),
        io_str(&err)
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_as_0_76() {
        assert_eq!(soft(b"=", 20000), Some(20000));
        assert_eq!(soft(b"10", 20000), Some(10));
        assert_eq!(soft(b"99999999999", 20000), Some(20000));
        assert_eq!(soft(b"", 20000), Some(0));
        assert_eq!(soft(b"5x", 20000), None);
        assert_eq!(parse(b"18446744073709551617"), Some(1));
    }
}
