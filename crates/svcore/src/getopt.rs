//! djb's `getopt` (sgetopt/subgetopt), as the chain-loaders parse options (REFERENCE.md §9).
//!
//! Differences from POSIX getopt that users of 0.76 can see, and which we keep:
//! * parsing stops at the first argument that does not start with `-`, and at `-` alone
//!   (which is not consumed);
//! * **any** argument starting with `--` ends the options and is consumed (`--foo` acts
//!   like `--`);
//! * on a problem it prints `PROG: illegal option -- C` or
//!   `PROG: option requires an argument -- C` (PROG = basename of argv\[0\]) before the
//!   program's own usage line. Which of the two is printed depends only on whether an
//!   argument is left at the current index, as in sgetopt.c.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;

/// One result of [`Getopt::next`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opt {
    /// A valid option letter, with its argument when the spec says it takes one.
    Opt(u8, Option<OsString>),
    /// An unknown letter or a missing argument; the message line (without newline),
    /// already in sgetopt's form.
    Bad(String),
}

/// A djb-style option parser over `args` (`args[0]` is the program name).
pub struct Getopt<'a> {
    args: &'a [OsString],
    spec: &'a [u8],
    /// Index of the argument being parsed; after parsing ends, the first operand.
    pub optind: usize,
    pos: usize,
    prog: String,
}

impl<'a> Getopt<'a> {
    /// A parser for `args` with option letters `spec` (`x:` means x takes an argument).
    pub fn new(args: &'a [OsString], spec: &'a str) -> Getopt<'a> {
        let prog = args
            .first()
            .map(|a| {
                let b = a.as_bytes();
                let base = b.rsplit(|&c| c == b'/').next().unwrap_or(b);
                String::from_utf8_lossy(base).into_owned()
            })
            .unwrap_or_default();
        Getopt {
            args,
            spec: spec.as_bytes(),
            optind: 1,
            pos: 0,
            prog,
        }
    }

    fn arg(&self, i: usize) -> Option<&'a [u8]> {
        self.args.get(i).map(|a| a.as_bytes())
    }

    /// The next option, or `None` when options are done ([`Getopt::optind`] then indexes
    /// the first operand).
    pub fn next_opt(&mut self) -> Option<Opt> {
        let mut cur = self.arg(self.optind)?;
        if self.pos > 0 && self.pos >= cur.len() {
            self.optind += 1;
            self.pos = 0;
            cur = self.arg(self.optind)?;
        }
        if self.pos == 0 {
            if cur.first() != Some(&b'-') {
                return None;
            }
            self.pos = 1;
            match cur.get(1) {
                None => {
                    // "-" alone: an operand, not consumed.
                    self.pos = 0;
                    return None;
                }
                Some(b'-') => {
                    self.optind += 1;
                    self.pos = 0;
                    return None;
                }
                Some(_) => {}
            }
        }
        let c = cur[self.pos];
        self.pos += 1;
        let mut i = 0;
        while i < self.spec.len() {
            let s = self.spec[i];
            let takes = self.spec.get(i + 1) == Some(&b':');
            if s == c && s != b':' {
                if !takes {
                    return Some(Opt::Opt(c, None));
                }
                let rest = &cur[self.pos..];
                self.optind += 1;
                self.pos = 0;
                if !rest.is_empty() {
                    return Some(Opt::Opt(
                        c,
                        Some(OsString::from(std::ffi::OsStr::from_bytes(rest))),
                    ));
                }
                return match self.args.get(self.optind) {
                    Some(a) => {
                        self.optind += 1;
                        Some(Opt::Opt(c, Some(a.clone())))
                    }
                    None => Some(Opt::Bad(self.problem(c))),
                };
            }
            i += if takes { 2 } else { 1 };
        }
        Some(Opt::Bad(self.problem(c)))
    }

    fn problem(&self, c: u8) -> String {
        let what = if self.optind < self.args.len() {
            "illegal option"
        } else {
            "option requires an argument"
        };
        format!("{}: {} -- {}", self.prog, what, c as char)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &[&str]) -> Vec<OsString> {
        s.iter().map(OsString::from).collect()
    }

    fn all(args: &[OsString], spec: &str) -> (Vec<Opt>, usize) {
        let mut g = Getopt::new(args, spec);
        let mut v = Vec::new();
        while let Some(o) = g.next_opt() {
            let bad = matches!(o, Opt::Bad(_));
            v.push(o);
            if bad {
                break;
            }
        }
        (v, g.optind)
    }

    #[test]
    fn bundled_flags_and_operands() {
        let args = a(&["setlock", "-nx", "-N", "file", "-x"]);
        let (v, ind) = all(&args, "nNxX");
        assert_eq!(
            v,
            vec![
                Opt::Opt(b'n', None),
                Opt::Opt(b'x', None),
                Opt::Opt(b'N', None)
            ]
        );
        assert_eq!(ind, 3);
    }

    #[test]
    fn arguments_attached_or_separate() {
        let args = a(&["softlimit", "-o5", "-d", "7", "prog"]);
        let (v, ind) = all(&args, "d:o:");
        assert_eq!(
            v,
            vec![
                Opt::Opt(b'o', Some("5".into())),
                Opt::Opt(b'd', Some("7".into()))
            ]
        );
        assert_eq!(ind, 4);
    }

    #[test]
    fn double_dash_prefix_ends_and_is_consumed() {
        let (_, ind) = all(&a(&["p", "--foo", "x"]), "n");
        assert_eq!(ind, 2);
        let (_, ind) = all(&a(&["p", "-", "x"]), "n");
        assert_eq!(ind, 1);
    }

    #[test]
    fn messages_as_sgetopt() {
        let (v, _) = all(&a(&["/usr/bin/softlimit", "-z", "x"]), "a:");
        assert_eq!(v, vec![Opt::Bad("softlimit: illegal option -- z".into())]);
        let (v, _) = all(&a(&["softlimit", "-a"]), "a:");
        assert_eq!(
            v,
            vec![Opt::Bad(
                "softlimit: option requires an argument -- a".into()
            )]
        );
        let (v, _) = all(&a(&["softlimit", "-z"]), "a:");
        assert_eq!(v, vec![Opt::Bad("softlimit: illegal option -- z".into())]);
    }
}
