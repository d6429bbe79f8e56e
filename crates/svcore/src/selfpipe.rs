//! Signals delivered to a single-threaded event loop (STYLE.md P5).
//!
//! Each registered signal sets an `AtomicBool` (through `signal_hook::flag`) and writes a
//! byte into a socketpair (through `signal_hook::low_level::pipe`). The loop polls the read
//! end together with its other descriptors; on wakeup it calls [`SelfPipe::drain`], which
//! empties the pipe and returns the signals that arrived. Only this module touches signal
//! dispositions.

use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A self-pipe with per-signal flags.
pub struct SelfPipe {
    rx: UnixStream,
    flags: Vec<(i32, Arc<AtomicBool>)>,
}

impl SelfPipe {
    /// Registers handlers for `signals`. Call before the first spawn so no signal is lost.
    pub fn new(signals: &[i32]) -> io::Result<SelfPipe> {
        let (rx, tx) = UnixStream::pair()?;
        rx.set_nonblocking(true)?;
        tx.set_nonblocking(true)?;
        let mut flags = Vec::with_capacity(signals.len());
        for &sig in signals {
            let flag = Arc::new(AtomicBool::new(false));
            // The flag is set before the byte is written, so a drain that sees the byte
            // also sees the flag.
            signal_hook::flag::register(sig, Arc::clone(&flag))?;
            signal_hook::low_level::pipe::register(sig, tx.try_clone()?)?;
            flags.push((sig, flag));
        }
        Ok(SelfPipe { rx, flags })
    }

    /// Empties the pipe and returns the signals seen since the last drain (each once, in
    /// ascending order). Allocates nothing: it runs at every SIGCHLD, that is at every
    /// respawn.
    pub fn drain(&mut self) -> Signals {
        let mut buf = [0u8; 64];
        loop {
            match self.rx.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break, // WouldBlock: empty
            }
        }
        let mut seen = Signals(0);
        for (sig, f) in &self.flags {
            if f.swap(false, Ordering::SeqCst) {
                seen.insert(*sig);
            }
        }
        seen
    }
}

/// A set of signal numbers (1 to 64, Linux's range), iterated in ascending order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Signals(u64);

impl Signals {
    fn insert(&mut self, sig: i32) {
        if (1..=64).contains(&sig) {
            self.0 |= 1 << (sig - 1);
        }
    }
}

impl Iterator for Signals {
    type Item = i32;

    fn next(&mut self) -> Option<i32> {
        if self.0 == 0 {
            return None;
        }
        let bit = self.0.trailing_zeros();
        self.0 &= self.0 - 1;
        Some(bit as i32 + 1)
    }
}

impl AsRawFd for SelfPipe {
    fn as_raw_fd(&self) -> RawFd {
        self.rx.as_raw_fd()
    }
}

impl AsFd for SelfPipe {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.rx.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_iterate_ascending_once_each() {
        let mut s = Signals::default();
        for sig in [
            libc::SIGTERM,
            libc::SIGCHLD,
            libc::SIGHUP,
            libc::SIGTERM,
            64,
            0,
            65,
        ] {
            s.insert(sig);
        }
        assert_eq!(
            s.collect::<Vec<_>>(),
            vec![libc::SIGHUP, libc::SIGTERM, libc::SIGCHLD, 64]
        );
        assert_eq!(Signals::default().next(), None);
    }

    #[test]
    fn a_raised_signal_is_drained_once() {
        let mut sp = SelfPipe::new(&[libc::SIGUSR2]).unwrap();
        // SAFETY: raise(3) delivers to this thread; the handler is registered above.
        unsafe { libc::raise(libc::SIGUSR2) };
        assert_eq!(sp.drain().collect::<Vec<_>>(), vec![libc::SIGUSR2]);
        assert_eq!(sp.drain().next(), None);
    }
}
