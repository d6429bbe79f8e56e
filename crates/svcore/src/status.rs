//! `supervise/status`: the 18-byte record (REFERENCE.md §3).
//!
//! | offset | size | content |
//! |---|---|---|
//! | 0 | 12 | TAI64N stamp of the last pid change, big-endian |
//! | 12 | 4 | pid, **little-endian**; 0 = no process |
//! | 16 | 1 | paused: 1 if paused *and* a process exists |
//! | 17 | 1 | want: `u`, `d`, or 0 after `svc -o` |
//!
//! [`pack`]/[`unpack`] are pure. [`write`] does the daemontools dance: `status.new` opened
//! with `O_TRUNC`, one `write`, close, `rename` over `status`, so readers never see a
//! partial file. We never make the file longer; extra state goes in sidecar files (§12).

use crate::svdir;
use crate::tai64n::Tai64n;
use std::fs::OpenOptions;
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// What the want byte says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// `u`: keep it running.
    Up,
    /// `d`: keep it down.
    Down,
    /// 0: run once, do not restart (`svc -o`).
    Once,
}

impl Want {
    /// The byte written at offset 17.
    pub fn byte(self) -> u8 {
        match self {
            Want::Up => b'u',
            Want::Down => b'd',
            Want::Once => 0,
        }
    }

    /// Decodes offset 17. daemontools' svstat treats anything but `u`/`d` as "nothing to
    /// say", which is what [`Want::Once`] prints.
    pub fn from_byte(b: u8) -> Want {
        match b {
            b'u' => Want::Up,
            b'd' => Want::Down,
            _ => Want::Once,
        }
    }
}

/// The decoded 18-byte record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    /// Time of the last pid change (or of supervise's start).
    pub stamp: Tai64n,
    /// The child's pid, 0 when there is none.
    pub pid: u32,
    /// Paused flag as stored (only ever 1 while a process exists).
    pub paused: bool,
    /// The want byte.
    pub want: Want,
}

/// Encodes a status record.
pub fn pack(s: &Status) -> [u8; svdir::STATUS_LEN] {
    let mut b = [0u8; svdir::STATUS_LEN];
    b[..12].copy_from_slice(&s.stamp.pack());
    b[12..16].copy_from_slice(&s.pid.to_le_bytes());
    // 0.76 writes `paused` only while there is a pid (supervise.c: pid ? paused : 0).
    b[16] = u8::from(s.paused && s.pid != 0);
    b[17] = s.want.byte();
    b
}

/// Decodes the first 18 bytes; longer input is accepted (runit, encore, nosh write more).
/// Returns `None` when fewer than 18 bytes are given.
pub fn unpack(b: &[u8]) -> Option<Status> {
    if b.len() < svdir::STATUS_LEN {
        return None;
    }
    let mut stamp = [0u8; 12];
    stamp.copy_from_slice(&b[..12]);
    let mut pid = [0u8; 4];
    pid.copy_from_slice(&b[12..16]);
    Some(Status {
        stamp: Tai64n::unpack(&stamp),
        pid: u32::from_le_bytes(pid),
        paused: b[16] != 0,
        want: Want::from_byte(b[17]),
    })
}

/// Which step of [`write`] failed; supervise words each as a different warning
/// (`unable to open …status.new`, `unable to write …`, `partial write`, `unable to rename`).
#[derive(Debug)]
pub enum WriteError {
    /// Opening `status.new` failed.
    Open(io::Error),
    /// Writing it failed.
    Write(io::Error),
    /// The write was short.
    Partial,
    /// Renaming it over `status` failed.
    Rename(io::Error),
}

/// Writes `bytes` to `DIR/supervise/status.new` and renames it over `status`.
/// `dir` is the service directory (often `.`). Mode 0644 (before umask), as 0.76.
pub fn write_bytes(dir: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    let new = dir.join(svdir::STATUS_NEW);
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(&new)
        .map_err(WriteError::Open)?;
    match f.write(bytes) {
        Ok(n) if n == bytes.len() => {}
        Ok(_) => return Err(WriteError::Partial),
        Err(e) => return Err(WriteError::Write(e)),
    }
    drop(f);
    std::fs::rename(&new, dir.join(svdir::STATUS)).map_err(WriteError::Rename)
}

/// Packs and writes a status record atomically (see [`write_bytes`]).
pub fn write(dir: &Path, s: &Status) -> Result<(), WriteError> {
    write_bytes(dir, &pack(s))
}

/// Reads up to `max` bytes of `DIR/supervise/status` (the raw bytes, for multi-format
/// readers).
pub fn read_raw(dir: &Path, max: usize) -> io::Result<Vec<u8>> {
    let f = std::fs::File::open(dir.join(svdir::STATUS))?;
    let mut buf = Vec::with_capacity(max);
    f.take(max as u64).read_to_end(&mut buf)?;
    Ok(buf)
}

/// Reads and decodes `DIR/supervise/status`. A short file is `InvalidData` ("bad format").
pub fn read(dir: &Path) -> io::Result<Status> {
    let raw = read_raw(dir, svdir::STATUS_LEN)?;
    unpack(&raw).ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad format"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Status {
        Status {
            stamp: Tai64n {
                secs: 0x4000_0000_6b05_a75b,
                nanos: 0x38ca_4abc,
            },
            pid: 0x0102_0304,
            paused: true,
            want: Want::Up,
        }
    }

    #[test]
    fn pack_layout_is_the_076_layout() {
        let b = pack(&sample());
        assert_eq!(&b[..8], &[0x40, 0, 0, 0, 0x6b, 0x05, 0xa7, 0x5b]);
        assert_eq!(&b[8..12], &[0x38, 0xca, 0x4a, 0xbc]);
        assert_eq!(&b[12..16], &[4, 3, 2, 1], "pid is little-endian");
        assert_eq!(b[16], 1);
        assert_eq!(b[17], b'u');
    }

    #[test]
    fn paused_is_written_only_with_a_pid() {
        let mut s = sample();
        s.pid = 0;
        assert_eq!(pack(&s)[16], 0);
    }

    #[test]
    fn unpack_roundtrip_and_longer_input() {
        let s = sample();
        let mut b = pack(&s).to_vec();
        assert_eq!(unpack(&b), Some(s));
        b.extend_from_slice(&[1, 2]);
        assert_eq!(unpack(&b), Some(s));
        assert_eq!(unpack(&b[..17]), None);
    }

    #[test]
    fn want_bytes() {
        for w in [Want::Up, Want::Down, Want::Once] {
            assert_eq!(Want::from_byte(w.byte()), w);
        }
    }

    #[test]
    fn write_then_read() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join(svdir::SUPERVISE)).unwrap();
        write(d.path(), &sample()).unwrap();
        assert_eq!(read(d.path()).unwrap(), sample());
        assert!(!d.path().join(svdir::STATUS_NEW).exists());
    }
}
