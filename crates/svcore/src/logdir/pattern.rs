//! multilog's patterns (REFERENCE.md §7 "Patterns"): pure, unit-tested.
//!
//! Only `*` is special. A `*` followed by a character `c` skips the shortest run of bytes
//! that contains no `c` (it stops at the first `c`, which the pattern then matches); a `*`
//! at the end matches whatever is left. No other wildcards, no escapes. This is 0.76's
//! `match.c` semantics, so `*a*b` is not a general glob.

/// True when `pattern` matches the whole of `line`.
pub fn matches(pattern: &[u8], line: &[u8]) -> bool {
    let mut p = 0;
    let mut b = 0;
    loop {
        let Some(&ch) = pattern.get(p) else {
            return b == line.len();
        };
        p += 1;
        if ch == b'*' {
            let Some(&next) = pattern.get(p) else {
                return true;
            };
            // Skip to the first `next`; it is not consumed here.
            match line[b..].iter().position(|&x| x == next) {
                Some(i) => b += i,
                None => return false,
            }
            continue;
        }
        match line.get(b) {
            Some(&x) if x == ch => b += 1,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn literal_must_match_whole_line() {
        assert!(matches(b"foo", b"foo"));
        assert!(!matches(b"foo", b"foobar"));
        assert!(!matches(b"foo", b"fo"));
        assert!(matches(b"", b""));
        assert!(!matches(b"", b"x"));
    }

    #[test]
    fn trailing_star_matches_rest() {
        assert!(matches(b"foo*", b"foobar"));
        assert!(matches(b"*", b""));
        assert!(matches(b"*", b"anything"));
    }

    #[test]
    fn star_stops_at_first_occurrence() {
        // `*o` stops at the first `o`, so `*ob` cannot match "foob" via the second o
        // when the first o is not followed by b: 0.76 semantics, not a glob.
        assert!(matches(b"*foo", b"@4000 foo"));
        assert!(!matches(b"*bar", b"xbabar"));
        assert!(matches(b"* foo", b"@400000006b05a75b38ca4abc foo"));
        assert!(!matches(b"-foo", b"@400000006b05a75b38ca4abc foo"));
    }

    #[test]
    fn star_without_next_char_fails() {
        assert!(!matches(b"*x", b"abc"));
    }
}
