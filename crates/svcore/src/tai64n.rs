//! TAI64 and TAI64N stamps in daemontools' convention (REFERENCE.md §2).
//!
//! daemontools labels a Unix time `t` as `2^62 + 10 + t` and uses no leap-second table;
//! its clock reads `gettimeofday` and sets `nano = usec * 1000 + 500`. We keep both, so
//! our stamps are byte-comparable with the original's. s6 stamps are real TAI (`+ 37`
//! today); [`S6_TAI_OFFSET`] converts them for display.

use std::time::{SystemTime, UNIX_EPOCH};

/// `2^62`, the TAI64 label of the TAI epoch.
pub const TAI64_BASE: u64 = 1 << 62;
/// daemontools' label for Unix second 0 is `TAI64_BASE + 10`.
pub const DJB_OFFSET: u64 = 10;
/// s6/skalibs labels are real TAI: `TAI64_BASE + 10 + 27 leap seconds` for today's times.
pub const S6_TAI_OFFSET: u64 = 37;
/// Length of a packed TAI64N stamp.
pub const PACKED_LEN: usize = 12;
/// Length of the external form `@` + 24 hex digits.
pub const EXTERNAL_LEN: usize = 25;

/// A TAI64N stamp: TAI64 seconds label plus nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Tai64n {
    /// The TAI64 label (already including `2^62`).
    pub secs: u64,
    /// Nanoseconds, 0..1_000_000_000.
    pub nanos: u32,
}

impl Tai64n {
    /// The current time, djb style: microsecond clock, `nano = usec*1000 + 500`.
    pub fn now() -> Tai64n {
        let d = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Tai64n::from_unix(d.as_secs(), d.subsec_micros() * 1000 + 500)
    }

    /// The stamp for Unix seconds `secs` and `nanos`.
    pub fn from_unix(secs: u64, nanos: u32) -> Tai64n {
        Tai64n {
            secs: TAI64_BASE + DJB_OFFSET + secs,
            nanos,
        }
    }

    /// Unix seconds for this stamp (saturating at 0 for labels before 1970).
    pub fn unix_secs(&self) -> u64 {
        self.secs.saturating_sub(TAI64_BASE + DJB_OFFSET)
    }

    /// The 12 bytes: label then nanoseconds, both big-endian.
    pub fn pack(&self) -> [u8; PACKED_LEN] {
        let mut b = [0u8; PACKED_LEN];
        b[..8].copy_from_slice(&self.secs.to_be_bytes());
        b[8..].copy_from_slice(&self.nanos.to_be_bytes());
        b
    }

    /// Decodes 12 bytes (no range check: daemontools' readers do none).
    pub fn unpack(b: &[u8; PACKED_LEN]) -> Tai64n {
        let mut s = [0u8; 8];
        s.copy_from_slice(&b[..8]);
        let mut n = [0u8; 4];
        n.copy_from_slice(&b[8..]);
        Tai64n {
            secs: u64::from_be_bytes(s),
            nanos: u32::from_be_bytes(n),
        }
    }

    /// The external form: `@` and 24 lowercase hex digits (25 bytes).
    pub fn external(&self) -> [u8; EXTERNAL_LEN] {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; EXTERNAL_LEN];
        out[0] = b'@';
        for (i, byte) in self.pack().iter().enumerate() {
            out[1 + 2 * i] = HEX[(byte >> 4) as usize];
            out[2 + 2 * i] = HEX[(byte & 15) as usize];
        }
        out
    }

    /// Parses the 24 hex digits after an `@` (lowercase only, as tai64nlocal requires).
    /// Returns `None` for anything else, including uppercase digits.
    pub fn parse_hex(hex: &[u8]) -> Option<Tai64n> {
        if hex.len() < 24 {
            return None;
        }
        let mut b = [0u8; PACKED_LEN];
        for (i, slot) in b.iter_mut().enumerate() {
            let hi = lower_hex(hex[2 * i])?;
            let lo = lower_hex(hex[2 * i + 1])?;
            *slot = (hi << 4) | lo;
        }
        Some(Tai64n::unpack(&b))
    }
}

impl std::fmt::Display for Tai64n {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The external form is pure ASCII.
        f.write_str(std::str::from_utf8(&self.external()).unwrap_or("@"))
    }
}

fn lower_hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_is_two_to_the_62_plus_10_plus_unix() {
        let t = Tai64n::from_unix(0x6b05a75b - 10, 0x38ca4abc);
        assert_eq!(t.to_string(), "@400000006b05a75b38ca4abc");
        assert_eq!(t.unix_secs(), 0x6b05a75b - 10);
    }

    #[test]
    fn now_ends_in_500_nanoseconds() {
        let t = Tai64n::now();
        assert_eq!(t.nanos % 1000, 500);
    }

    #[test]
    fn pack_unpack_roundtrip() {
        let t = Tai64n {
            secs: 0x4000_0000_1234_5678,
            nanos: 999_999_999,
        };
        assert_eq!(Tai64n::unpack(&t.pack()), t);
        assert_eq!(Tai64n::parse_hex(&t.external()[1..]), Some(t));
    }

    #[test]
    fn parse_rejects_uppercase_and_short() {
        assert_eq!(Tai64n::parse_hex(b"400000006B05A75B38CA4ABC"), None);
        assert_eq!(Tai64n::parse_hex(b"4000"), None);
    }
}
