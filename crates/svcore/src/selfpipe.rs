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

    /// Empties the pipe and returns the signals seen since the last drain (each once).
    pub fn drain(&mut self) -> Vec<i32> {
        let mut buf = [0u8; 64];
        loop {
            match self.rx.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break, // WouldBlock: empty
            }
        }
        self.flags
            .iter()
            .filter(|(_, f)| f.swap(false, Ordering::SeqCst))
            .map(|(s, _)| *s)
            .collect()
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
