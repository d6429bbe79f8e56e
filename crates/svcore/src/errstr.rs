//! djb's error strings and the daemontools message format (REFERENCE.md §0).
//!
//! Admins grep for these exact strings, so `strerror` is not used for the errnos djb named.

use std::io;

/// Exit code: success.
pub const EXIT_OK: i32 = 0;
/// Exit code: usage error or permanent failure.
pub const EXIT_PERMANENT: i32 = 100;
/// Exit code: temporary or system failure.
pub const EXIT_TEMPORARY: i32 = 111;

/// djb's text for an errno, as daemontools' `error_str` prints it.
pub fn errno_str(errno: i32) -> String {
    let s = match errno {
        libc::ENOENT => "file does not exist",
        libc::EACCES => "access denied",
        libc::EAGAIN => "temporary failure",
        libc::EPERM => "permission denied",
        libc::ENXIO => "device not configured",
        libc::ENOTDIR => "not a directory",
        libc::EEXIST => "file already exists",
        libc::EISDIR => "is a directory",
        libc::EINTR => "interrupted system call",
        libc::EINVAL => "invalid argument",
        libc::ENOMEM => "out of memory",
        libc::ENOSPC => "out of disk space",
        libc::EROFS => "read-only file system",
        libc::EPIPE => "broken pipe",
        libc::EBUSY => "device busy",
        libc::ESRCH => "no such process",
        libc::EBADF => "file descriptor not open",
        libc::EIO => "input/output error",
        libc::ENOEXEC => "exec format error",
        libc::ECHILD => "no child processes",
        libc::ETXTBSY => "text busy",
        libc::ELOOP => "symbolic link loop",
        libc::ENAMETOOLONG => "file name too long",
        libc::EMFILE => "out of file descriptors",
        libc::ENFILE => "file table overflow",
        libc::EDQUOT => "disk quota exceeded",
        libc::ENOTEMPTY => "directory not empty",
        libc::EXDEV => "cross-device link",
        libc::ESPIPE => "unseekable descriptor",
        libc::E2BIG => "argument list too long",
        libc::EOPNOTSUPP => "operation not supported",
        _ => return io::Error::from_raw_os_error(errno).to_string(),
    };
    s.to_string()
}

/// djb's text for an `io::Error`: the errno string when there is an errno, else the
/// error's own text (for example `bad format` from our own decoders).
pub fn io_str(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => errno_str(n),
        None => e.to_string(),
    }
}

/// `PROG: fatal: TEXT` (no newline).
pub fn fatal_line(prog: &str, text: &str) -> String {
    format!("{prog}: fatal: {text}")
}

/// `PROG: warning: TEXT` (no newline).
pub fn warning_line(prog: &str, text: &str) -> String {
    format!("{prog}: warning: {text}")
}

/// Writes one diagnostic line to stderr with a single `write`, so lines from several
/// processes sharing a stderr pipe (readproctitle) never interleave mid-line.
pub fn emit(line: &str) {
    use std::io::Write;
    let mut buf = Vec::with_capacity(line.len() + 1);
    buf.extend_from_slice(line.as_bytes());
    buf.push(b'\n');
    // Nothing useful can be done if stderr is gone.
    let _ = io::stderr().lock().write_all(&buf);
}

/// Prints `PROG: warning: TEXT`.
pub fn warn(prog: &str, text: &str) {
    emit(&warning_line(prog, text));
}

/// Prints `PROG: fatal: TEXT` (the caller exits).
pub fn fatal(prog: &str, text: &str) {
    emit(&fatal_line(prog, text));
}

/// Prints `PROG: fatal: TEXT` and exits with `code` (djb's `strerr_die`).
pub fn die(prog: &str, text: &str, code: i32) -> ! {
    fatal(prog, text);
    std::process::exit(code);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn djb_strings_for_common_errnos() {
        assert_eq!(errno_str(libc::ENOENT), "file does not exist");
        assert_eq!(errno_str(libc::ENXIO), "device not configured");
        assert_eq!(errno_str(libc::EAGAIN), "temporary failure");
        assert_eq!(
            io_str(&io::Error::from_raw_os_error(libc::EACCES)),
            "access denied"
        );
    }

    #[test]
    fn message_format() {
        assert_eq!(
            fatal_line("svok", "unable to chdir to /x: file does not exist"),
            "svok: fatal: unable to chdir to /x: file does not exist"
        );
        assert_eq!(warning_line("svc", "x"), "svc: warning: x");
    }
}
