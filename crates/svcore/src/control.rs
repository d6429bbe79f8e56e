//! The control FIFO, `supervise/control`: one byte per command (REFERENCE.md §4, §5).
//!
//! The FIFO is the whole protocol: runit's `sv`, s6's `s6-svc` and `printf dx >control`
//! write the same bytes. [`send`] opens it the way 0.76's svc does, `O_WRONLY|O_NONBLOCK`,
//! so ENXIO (no reader) means "supervise not running" instead of a hang.

use crate::svdir;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// A control command understood by our supervise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// `u`: want up; start if down.
    Up,
    /// `d`: want down; TERM then CONT.
    Down,
    /// `o`: run once.
    Once,
    /// `p`: STOP, paused.
    Pause,
    /// `c`: CONT, unpaused.
    Continue,
    /// `h`: HUP.
    Hup,
    /// `a`: ALRM.
    Alarm,
    /// `i`: INT.
    Interrupt,
    /// `t`: TERM.
    Term,
    /// `k`: KILL.
    Kill,
    /// `x`: exit when the service is down.
    Exit,
    /// `q`: QUIT (runit, daemontools-encore).
    Quit,
    /// `1`: USR1 (runit, daemontools-encore).
    Usr1,
    /// `2`: USR2 (runit, daemontools-encore).
    Usr2,
    /// `w`: WINCH (daemontools-encore).
    Winch,
}

impl Command {
    /// Decodes a control byte; unknown bytes are `None` and are ignored silently (0.76).
    pub fn from_byte(b: u8) -> Option<Command> {
        Some(match b {
            b'u' => Command::Up,
            b'd' => Command::Down,
            b'o' => Command::Once,
            b'p' => Command::Pause,
            b'c' => Command::Continue,
            b'h' => Command::Hup,
            b'a' => Command::Alarm,
            b'i' => Command::Interrupt,
            b't' => Command::Term,
            b'k' => Command::Kill,
            b'x' => Command::Exit,
            b'q' => Command::Quit,
            b'1' => Command::Usr1,
            b'2' => Command::Usr2,
            b'w' => Command::Winch,
            _ => return None,
        })
    }

    /// The byte on the wire.
    pub fn byte(self) -> u8 {
        match self {
            Command::Up => b'u',
            Command::Down => b'd',
            Command::Once => b'o',
            Command::Pause => b'p',
            Command::Continue => b'c',
            Command::Hup => b'h',
            Command::Alarm => b'a',
            Command::Interrupt => b'i',
            Command::Term => b't',
            Command::Kill => b'k',
            Command::Exit => b'x',
            Command::Quit => b'q',
            Command::Usr1 => b'1',
            Command::Usr2 => b'2',
            Command::Winch => b'w',
        }
    }
}

/// Why [`send`] failed; svc words each differently.
#[derive(Debug)]
pub enum SendError {
    /// ENXIO on open: nobody reads the FIFO (`supervise not running`).
    NotSupervised,
    /// Any other open failure (`unable to control DIR: ERR`).
    Open(io::Error),
    /// The write failed (`error writing commands to DIR: ERR`).
    Write(io::Error),
}

/// Opens `DIR/supervise/control` with `O_WRONLY|O_NONBLOCK`, makes it blocking, and writes
/// `bytes` in one `write` (0.76 svc). An empty `bytes` still opens the FIFO.
pub fn send(dir: &Path, bytes: &[u8]) -> Result<(), SendError> {
    let f = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(dir.join(svdir::CONTROL))
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ENXIO) {
                SendError::NotSupervised
            } else {
                SendError::Open(e)
            }
        })?;
    crate::fifo::set_blocking(&f).map_err(SendError::Write)?;
    if bytes.is_empty() {
        return Ok(());
    }
    let mut f = f;
    match f.write(bytes) {
        Ok(n) if n == bytes.len() => Ok(()),
        Ok(_) => Err(SendError::Write(io::Error::from_raw_os_error(libc::EIO))),
        Err(e) => Err(SendError::Write(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_letter_roundtrips() {
        for b in b"udopchaitkxq12w" {
            assert_eq!(Command::from_byte(*b).map(Command::byte), Some(*b));
        }
        assert_eq!(Command::from_byte(b'z'), None);
        assert_eq!(Command::from_byte(0), None);
    }
}
