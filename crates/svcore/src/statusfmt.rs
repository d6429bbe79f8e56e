//! Every supervisor's `supervise/status`, decoded into one shape (REFERENCE.md §11.7).
//!
//! daemontools writes 18 bytes; runit 20; daemontools-encore 20 or 40; nosh 87; s6 35.
//! The first four share the daemontools prefix (stamp, little-endian pid, paused, want), so
//! a 0.76 svstat already reads them through their first 18 bytes. s6 is laid out
//! differently and stamps in real TAI. This module is pure: [`detect`] picks the format from
//! facts the caller gathered on disk, [`decode`] turns the bytes into a [`Record`] whose
//! stamps all use daemontools' clock convention (REFERENCE.md §2), so ages computed from
//! them are right whatever wrote the file.

use crate::status::Want;
use crate::svdir;
use crate::tai64n::{DJB_OFFSET, S6_TAI_OFFSET, Tai64n};

/// Which supervisor wrote the status file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// daemontools 0.76 (and ours): 18 bytes.
    Daemontools,
    /// runit's runsv: 20 bytes, with `supervise/stat` beside it.
    Runit,
    /// daemontools-encore: 20 or 40 bytes, no `supervise/stat`.
    Encore,
    /// nosh: 87 bytes.
    Nosh,
    /// s6-supervise: 35 bytes, real-TAI stamps, no `ok` FIFO.
    S6,
}

impl Format {
    /// A short lowercase name, used by `svstat -o format` and `--json`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Daemontools => "daemontools",
            Format::Runit => "runit",
            Format::Encore => "encore",
            Format::Nosh => "nosh",
            Format::S6 => "s6",
        }
    }
}

/// What the caller found on disk besides the status bytes, for [`detect`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Clues {
    /// `supervise/stat` exists (runit writes it).
    pub runit_stat: bool,
    /// The service has an `event/` directory (s6 makes it).
    pub event_dir: bool,
    /// `supervise/ok` exists (every format but s6 has it).
    pub ok_fifo: bool,
}

/// Picks the format from the size of the status file and the clues (REFERENCE.md §11.7,
/// "Telling them apart"). Byte 18 means different things to runit and encore, so size alone
/// is not enough: `supervise/stat` decides. A 35-byte file is s6 when there is an `event/`
/// dir or no `ok` FIFO; anything else of unknown size is read as daemontools (first 18
/// bytes), which is what 0.76's svstat does with every file.
pub fn detect(len: usize, clues: Clues) -> Format {
    match len {
        svdir::STATUS_LEN_S6 if clues.event_dir || !clues.ok_fifo => Format::S6,
        svdir::STATUS_LEN_NOSH => Format::Nosh,
        svdir::STATUS_LEN_RUNIT if clues.runit_stat => Format::Runit,
        svdir::STATUS_LEN_RUNIT | svdir::STATUS_LEN_ENCORE_LOG => Format::Encore,
        _ => Format::Daemontools,
    }
}

/// One status record, whatever wrote it. Fields a format does not have are `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    /// Which supervisor wrote it.
    pub format: Format,
    /// Last up/down change, in daemontools' clock convention (s6's real TAI converted).
    pub stamp: Tai64n,
    /// The process's pid, 0 when none. runit puts finish's pid here while finish runs.
    pub pid: u64,
    /// Paused flag as stored.
    pub paused: bool,
    /// The want byte (s6: bit 2 set is `Up`, clear is `Down`).
    pub want: Want,
    /// s6 only: the ready flag (bit 3). s6 also sets it on a service that is down once its
    /// finish script is done, so it means "ready" only while `pid != 0`.
    pub ready: Option<bool>,
    /// s6 only: the last readiness change, or the end of finish (converted to djb clock).
    pub ready_stamp: Option<Tai64n>,
    /// runit (state 2) and s6 (bit 1): the finish script is running.
    pub finishing: bool,
    /// runit only: TERM was sent and the process has not died yet ("got TERM").
    pub got_term: bool,
    /// s6 only: the raw wait status of the last death.
    pub last_wait: Option<u16>,
    /// encore and nosh only: the state byte (0 stopped, 1 starting, 2 started, 3 running,
    /// 4 stopping, 5 failed).
    pub encore_state: Option<u8>,
}

/// Converts an s6 (real TAI) label to daemontools' convention: s6 adds the 27 leap seconds
/// that djb's clock leaves out (REFERENCE.md §2).
pub fn s6_to_djb(t: Tai64n) -> Tai64n {
    Tai64n {
        secs: t.secs.saturating_sub(S6_TAI_OFFSET - DJB_OFFSET),
        nanos: t.nanos,
    }
}

fn stamp_at(b: &[u8], at: usize) -> Tai64n {
    let mut s = [0u8; 12];
    s.copy_from_slice(&b[at..at + 12]);
    Tai64n::unpack(&s)
}

/// Decodes `bytes` as `format`. `None` when the file is too short for that format (the
/// caller reports `bad format`). Only the first 18 bytes are required for the
/// daemontools-prefixed formats, as a 0.76 reader requires.
pub fn decode(format: Format, b: &[u8]) -> Option<Record> {
    if format == Format::S6 {
        return decode_s6(b);
    }
    let base = crate::status::unpack(b)?;
    let mut r = Record {
        format,
        stamp: base.stamp,
        pid: u64::from(base.pid),
        paused: base.paused,
        want: base.want,
        ready: None,
        ready_stamp: None,
        finishing: false,
        got_term: false,
        last_wait: None,
        encore_state: None,
    };
    match format {
        Format::Runit if b.len() >= svdir::STATUS_LEN_RUNIT => {
            r.got_term = b[18] != 0;
            r.finishing = b[19] == 2;
        }
        Format::Encore | Format::Nosh if b.len() > 18 => {
            r.encore_state = Some(b[18]);
        }
        _ => {}
    }
    Some(r)
}

/// s6's 35 bytes: stamp (real TAI), ready stamp, pid u64 BE, wait status u16 BE, flags.
fn decode_s6(b: &[u8]) -> Option<Record> {
    if b.len() < svdir::STATUS_LEN_S6 {
        return None;
    }
    let mut pid = [0u8; 8];
    pid.copy_from_slice(&b[24..32]);
    let flags = b[34];
    Some(Record {
        format: Format::S6,
        stamp: s6_to_djb(stamp_at(b, 0)),
        pid: u64::from_be_bytes(pid),
        paused: flags & 1 != 0,
        want: if flags & 4 != 0 { Want::Up } else { Want::Down },
        ready: Some(flags & 8 != 0),
        ready_stamp: Some(s6_to_djb(stamp_at(b, 12))),
        finishing: flags & 2 != 0,
        got_term: false,
        last_wait: Some(u16::from_be_bytes([b[32], b[33]])),
        encore_state: None,
    })
}

/// A decoded wait status: how the last process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Death {
    /// It exited with this code.
    Exit(u8),
    /// It was killed by this signal.
    Signal(u8),
}

/// Splits a raw wait status the way `WIFEXITED`/`WTERMSIG` do on Linux.
pub fn death(wait_status: u16) -> Death {
    let sig = (wait_status & 0x7f) as u8;
    if sig == 0 {
        Death::Exit((wait_status >> 8) as u8)
    } else {
        Death::Signal(sig)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Real files captured from runsv and s6-supervise 2.11 (REFERENCE.md §11.7 checks).
    const RUNIT_UP: [u8; 20] = [
        0x40, 0, 0, 0, 0x6b, 0x05, 0xd9, 0xfa, 0x27, 0x0b, 0xcb, 0xd4, 0xb1, 0x1b, 0, 0, 0, 0x75,
        0, 1,
    ];
    const S6_UP: [u8; 35] = [
        0x40, 0, 0, 0, 0x6b, 0x05, 0xda, 0x15, 0x27, 0x30, 0xef, 0xcf, 0x40, 0, 0, 0, 0x6b, 0x05,
        0xda, 0x15, 0x27, 0x26, 0x8d, 0x54, 0, 0, 0, 0, 0, 0, 0x1b, 0xb2, 0, 0, 4,
    ];
    const S6_DOWN: [u8; 35] = [
        0x40, 0, 0, 0, 0x6b, 0x05, 0xda, 0x1a, 0x08, 0xd5, 0x02, 0x6a, 0x40, 0, 0, 0, 0x6b, 0x05,
        0xda, 0x1a, 0x08, 0xe0, 0x21, 0x89, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0f, 8,
    ];

    #[test]
    fn detect_by_size_and_clues() {
        let none = Clues::default();
        let ok = Clues {
            ok_fifo: true,
            ..none
        };
        assert_eq!(detect(18, ok), Format::Daemontools);
        assert_eq!(detect(35, none), Format::S6);
        assert_eq!(
            detect(
                35,
                Clues {
                    event_dir: true,
                    ok_fifo: true,
                    ..none
                }
            ),
            Format::S6
        );
        assert_eq!(detect(35, ok), Format::Daemontools);
        assert_eq!(detect(87, ok), Format::Nosh);
        assert_eq!(
            detect(
                20,
                Clues {
                    runit_stat: true,
                    ..ok
                }
            ),
            Format::Runit
        );
        assert_eq!(detect(20, ok), Format::Encore);
        assert_eq!(detect(40, ok), Format::Encore);
        assert_eq!(detect(5, ok), Format::Daemontools);
    }

    #[test]
    fn runit_record() {
        let r = decode(Format::Runit, &RUNIT_UP).unwrap();
        assert_eq!(r.pid, 0x1bb1);
        assert_eq!(r.want, Want::Up);
        assert!(!r.finishing && !r.got_term && !r.paused);
        assert_eq!(r.stamp.secs, 0x4000_0000_6b05_d9fa);
    }

    #[test]
    fn s6_record_is_converted_to_djb_clock() {
        let r = decode(Format::S6, &S6_UP).unwrap();
        assert_eq!(r.pid, 0x1bb2, "pid is u64 big-endian");
        assert_eq!(r.want, Want::Up);
        assert_eq!(r.ready, Some(false));
        // s6 stamped 27 s later than runit for the same moment: real TAI.
        assert_eq!(r.stamp.secs, 0x4000_0000_6b05_da15 - 27);
        let d = decode(Format::S6, &S6_DOWN).unwrap();
        assert_eq!(d.pid, 0);
        assert_eq!(d.want, Want::Down);
        assert_eq!(d.last_wait.map(death), Some(Death::Signal(15)));
        assert!(decode(Format::S6, &S6_DOWN[..34]).is_none());
    }

    #[test]
    fn encore_and_nosh_state_byte() {
        let mut b = RUNIT_UP.to_vec();
        b[18] = 3;
        assert_eq!(
            decode(Format::Encore, &b).unwrap().encore_state,
            Some(3),
            "running"
        );
        assert!(decode(Format::Daemontools, &b[..17]).is_none());
    }

    #[test]
    fn wait_status_split() {
        assert_eq!(death(0x0100), Death::Exit(1));
        assert_eq!(death(0x0009), Death::Signal(9));
        assert_eq!(death(0), Death::Exit(0));
    }
}
