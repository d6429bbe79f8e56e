//! The process title: the argument strings the kernel shows in `/proc/PID/cmdline` and
//! `ps -o args` (REFERENCE.md §8, readproctitle).
//!
//! C programs write into `argv[i]` directly. Rust's std does not hand out that memory, so
//! we find it the way `ps` does: fields 48 and 49 of `/proc/self/stat` (`arg_start`,
//! `arg_end`, Linux 3.5 and later) give the address range of the NUL-separated argument
//! strings in our own address space. The strings keep their length and their NUL
//! terminators, so the kernel keeps showing them as separate arguments.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;

/// `arg_start` and `arg_end` of a `/proc/PID/stat` line (fields 48 and 49, counting the
/// pid as field 1; the command name in parentheses may contain spaces).
pub fn arg_range(stat: &str) -> Option<(usize, usize)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state).
    let start = f.get(48 - 3)?.parse().ok()?;
    let end = f.get(49 - 3)?.parse().ok()?;
    (start < end).then_some((start, end))
}

/// The memory of our last command-line argument, without its NUL terminator, to be
/// overwritten in place.
///
/// `expected` must be that argument as the program received it (from
/// `std::env::args_os()`, read *before* calling this): the bytes found in memory are
/// checked against it, and a mismatch is an `InvalidData` error rather than a write into
/// the wrong place. After this call the program must not read `std::env::args_os()` again
/// (std reads the same memory lazily).
pub fn last_arg(expected: &OsString) -> io::Result<&'static mut [u8]> {
    let stat = fs::read_to_string("/proc/self/stat")?;
    let (start, end) =
        arg_range(&stat).ok_or_else(|| io::Error::from(io::ErrorKind::InvalidData))?;
    // SAFETY: [arg_start, arg_end) is the argument area the kernel set up for this
    // process: mapped, writable (it lives on the initial stack), and alive for the whole
    // life of the process, hence 'static. Nothing else in a Rust program writes it, and
    // std only reads it when `env::args` is called, which the caller promises not to do
    // afterwards, so this is the only reference to it.
    let area: &'static mut [u8] =
        unsafe { std::slice::from_raw_parts_mut(start as *mut u8, end - start) };
    // The area ends with the NUL of the last argument.
    let body_end = match area.last() {
        Some(0) => area.len() - 1,
        _ => return Err(io::Error::from(io::ErrorKind::InvalidData)),
    };
    let begin = area[..body_end]
        .iter()
        .rposition(|&b| b == 0)
        .map_or(0, |i| i + 1);
    let arg = &mut area[begin..body_end];
    if arg != expected.as_bytes() {
        return Err(io::Error::from(io::ErrorKind::InvalidData));
    }
    Ok(arg)
}

/// readproctitle's rolling text (REFERENCE.md §8): drops `byte` if it is NUL, else shifts
/// `title[3..]` left by one and puts `byte` at the end. The first 3 bytes stay.
pub fn roll(title: &mut [u8], byte: u8) {
    if byte == 0 || title.len() < 4 {
        return;
    }
    title.copy_within(4.., 3);
    if let Some(last) = title.last_mut() {
        *last = byte;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roll_keeps_first_three_and_drops_nul() {
        let mut t = *b"..........";
        for &b in b"he\0llo\n" {
            roll(&mut t, b);
        }
        assert_eq!(&t, b"....hello\n");
        let mut t = *b"abcdef";
        roll(&mut t, b'X');
        assert_eq!(&t, b"abcefX");
    }

    #[test]
    fn arg_range_of_our_own_stat() {
        let s = fs::read_to_string("/proc/self/stat").unwrap();
        let (a, b) = arg_range(&s).unwrap();
        assert!(a < b);
    }

    #[test]
    fn last_arg_is_found_in_memory() {
        let last = std::env::args_os().last().unwrap();
        let mem = last_arg(&last).unwrap();
        assert_eq!(mem, last.as_bytes());
    }
}
