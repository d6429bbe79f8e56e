//! readproctitle: shows the last bytes of its input in its own process title.
//!
//! # Interface
//!
//! `readproctitle ARG... DOTS`
//!
//! readproctitle overwrites its last argument with dots, then reads stdin. For each byte
//! (NUL bytes are dropped, newlines kept) it shifts that argument left by one, keeping its
//! first 3 characters, and puts the byte at the end. `ps -o args` (or `ps auxw`) thus shows
//! the most recent output of whatever writes into it: svscanboot pipes svscan's errors in,
//! under the title `readproctitle service errors: ...` (REFERENCE.md §6, §8).
//!
//! # Options
//!
//! None.
//!
//! # Exit codes
//!
//! 0 at end of input; 111 on a read error other than EINTR; 100, **without a message**,
//! when there is no argument or the last one is shorter than 5 bytes (as 0.76).
//!
//! # Notes
//!
//! Rust does not expose `argv`; the argument memory is found through `/proc/self/stat`
//! (`svcore::proctitle`), so this program needs Linux with `/proc` mounted. If the memory
//! cannot be found, it still consumes its input (so writers never block) without showing
//! it. Input is read in blocks rather than byte by byte; the title is the same.

use std::io::{self, Read};
use std::process::ExitCode;

use svcore::proctitle;

fn main() -> ExitCode {
    // Collected before the title memory is touched: std reads argv lazily.
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    let Some(last) = args.last() else {
        return ExitCode::from(100);
    };
    if last.len() < 5 {
        return ExitCode::from(100);
    }
    let mut title = proctitle::last_arg(last).ok();
    if let Some(t) = title.as_deref_mut() {
        t.fill(b'.');
    }
    let mut stdin = io::stdin().lock();
    let mut buf = [0u8; 4096];
    loop {
        match stdin.read(&mut buf) {
            Ok(0) => return ExitCode::SUCCESS,
            Ok(n) => {
                if let Some(t) = title.as_deref_mut() {
                    for &b in &buf[..n] {
                        proctitle::roll(t, b);
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return ExitCode::from(111),
        }
    }
}
