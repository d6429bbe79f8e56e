//! svprobe: is a web service healthy? One HTTP GET, judged by its status and body.
//!
//! # Interface
//!
//! `svprobe [ -t ms ] url [ expect ]`
//!
//! svprobe connects to the host and port of `url` (`http://host[:port][/path]`, port 80 by
//! default, `[::1]` for IPv6), sends `GET /path HTTP/1.0` with a `Host:` header, and reads
//! the response until the server closes the connection, or until as many body bytes as
//! its `Content-Length` says have arrived (at most 1 MiB is kept). The probe
//! succeeds when the status is 2xx and, if `expect` is given, the body (not the headers)
//! contains `expect` as a byte string. It prints nothing on success.
//!
//! It is the health check of supervise's `[health] url = ...` (docs/supervise.md), and it
//! replaces OpenACS's `keepalive.sh` cron job (OPENACS.md): for example
//! `svprobe http://127.0.0.1:8000/SYSTEM/dbtest.tcl success`.
//!
//! # Options
//!
//! * `-t ms`: the whole probe (name lookup aside: connect, send, read) must finish within
//!   `ms` milliseconds; default 5000. `ms` is a positive decimal number.
//!
//! # Exit codes
//!
//! * 0: the probe succeeded.
//! * 1: the probe failed, with one line `svprobe: probe failed: REASON` on stderr. REASONs:
//!   `unable to connect to ADDR: connection refused` (or another network error),
//!   `timed out after MS ms`, `status 500: "BODY"`, `body does not contain "EXPECT": "BODY"`,
//!   `empty response`, `bad status line: "LINE"`, `unable to resolve HOST: ...`. BODY is
//!   the first 60 bytes of the body, quoted, with control and non-ASCII bytes escaped and
//!   `...` after it when the body is longer.
//! * 100: usage (`svprobe: usage: svprobe [ -t ms ] url [ expect ]`), after sgetopt's line
//!   for a bad option; or `svprobe: fatal: unsupported URL ...` / `bad URL ...` for a URL
//!   that is not `http://host[:port][/path]`.
//!
//! # Examples
//!
//! ```sh
//! svprobe -t 2000 http://127.0.0.1:8000/SYSTEM/dbtest.tcl success || svc -t /service/web
//! ```
//!
//! # Notes
//!
//! Not part of daemontools. Plain HTTP only: no TLS, no redirects (a 3xx is a failure),
//! no proxy, no user info in the URL. HTTP/1.0 means the server never answers with chunked
//! encoding. The name is looked up before the timeout starts (the system resolver has its
//! own timeouts; use an address to avoid it).

mod http;

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::process::ExitCode;
use std::time::Duration;
use svcore::errstr::{self, EXIT_PERMANENT};
use svcore::getopt::{Getopt, Opt};

const PROG: &str = "svprobe";
const USAGE: &str = "svprobe: usage: svprobe [ -t ms ] url [ expect ]";
/// Default for `-t`: 5 s, the same as s6's `timeout-finish`-style defaults.
const DEFAULT_TIMEOUT_MS: u64 = 5000;
/// Exit code of a probe that ran and failed (distinct from 100 usage and 111 temporary).
const EXIT_FAILED: u8 = 1;

fn usage() -> ExitCode {
    errstr::emit(USAGE);
    ExitCode::from(EXIT_PERMANENT as u8)
}

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    let mut g = Getopt::new(&args, "t:");
    let mut timeout_ms = DEFAULT_TIMEOUT_MS;
    while let Some(opt) = g.next_opt() {
        match opt {
            Opt::Opt(b't', Some(v)) => match v.to_str().and_then(|s| s.parse::<u64>().ok()) {
                Some(ms) if ms > 0 => timeout_ms = ms,
                _ => return usage(),
            },
            Opt::Opt(..) => return usage(),
            Opt::Bad(line) => {
                errstr::emit(&line);
                return usage();
            }
        }
    }
    let operands = &args[g.optind.min(args.len())..];
    let (url, expect) = match operands {
        [u] => (u, None),
        [u, e] => (u, Some(e.as_bytes())),
        _ => return usage(),
    };
    let url = match http::parse_url(&url.to_string_lossy()) {
        Ok(u) => u,
        Err(e) => {
            errstr::fatal(PROG, &e);
            return ExitCode::from(EXIT_PERMANENT as u8);
        }
    };
    match http::probe(&url, expect, Duration::from_millis(timeout_ms)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(http::Failure(why)) => {
            errstr::emit(&format!("{PROG}: probe failed: {why}"));
            ExitCode::from(EXIT_FAILED)
        }
    }
}
