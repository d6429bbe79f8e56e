//! Parsing multilog's script (REFERENCE.md §7 "Actions"): pure, unit-tested.
//!
//! Every argument is one action. Unknown actions are ignored silently, as in 0.76, which is
//! also why our extensions are safe: an old multilog skips them (REFERENCE.md §12.8).

use std::path::PathBuf;

/// 0.76's default size for `current` (`s`).
pub const DEFAULT_SIZE: u64 = 99999;
/// 0.76's smallest `sN`.
pub const MIN_SIZE: u64 = 4096;
/// 0.76's largest `sN`.
pub const MAX_SIZE: u64 = 16_777_215;
/// 0.76's default `nN`.
pub const DEFAULT_NUM: u64 = 10;
/// 0.76's smallest `nN`.
pub const MIN_NUM: u64 = 2;
/// Bytes of each line that patterns, `e` and `=` see (the timestamp included).
pub const LINE_MAX: usize = 1000;
/// Size of the `=file` status record: the line padded with `\n`.
pub const STATUS_FILE_LEN: usize = 1001;
/// `e` prints at most this many bytes of a line, then `...`.
pub const ALERT_MAX: usize = 200;

/// One log directory and the settings that were in force where it appears in the script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirSpec {
    /// The name as written in the script (`./main`); messages use it verbatim.
    pub path: PathBuf,
    /// `sN`: rotate when `current` reaches this size.
    pub size: u64,
    /// `nN`: keep at most `num - 1` archives.
    pub num: u64,
    /// `!prog`: processor run as `sh -c prog`.
    pub processor: Option<String>,
    /// Extension `SN` (s6-log's letter): cap on the total bytes of the archives.
    pub total: Option<u64>,
    /// Extension `aN`: also rotate a non-empty `current` whose first byte is N seconds old.
    pub age: Option<u64>,
    /// Extension `z`: gzip each finished archive to `@<stamp>.s.gz`.
    pub compress: bool,
}

/// One action of the script, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `+pattern`.
    Select(Vec<u8>),
    /// `-pattern`.
    Deselect(Vec<u8>),
    /// `e`.
    Alert,
    /// `=file`: index into [`Script::status_files`].
    Status(usize),
    /// `./dir` or `/dir`: index into [`Script::dirs`].
    Dir(usize),
}

/// A parsed script.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Script {
    /// `t` as the first argument: prefix each line with `@<24 hex> `.
    pub tai64n: bool,
    /// Extension `T` (s6-log's letter) in the leading position (first argument, or right
    /// after a leading `t`): prefix each line with an RFC 3339 UTC stamp and a space.
    pub iso: bool,
    /// The actions, left to right.
    pub actions: Vec<Action>,
    /// The log directories, in script order.
    pub dirs: Vec<DirSpec>,
    /// The `=file` names, in script order.
    pub status_files: Vec<PathBuf>,
}

impl Script {
    /// True when some action needs to look at the line's contents (patterns, `e`, `=`).
    pub fn inspects_lines(&self) -> bool {
        self.actions.iter().any(|a| !matches!(a, Action::Dir(_)))
    }
}

/// djb's `scan_ulong`: leading decimal digits, 0 when there are none; saturates.
fn scan_ulong(s: &[u8]) -> u64 {
    let mut v: u64 = 0;
    for &c in s {
        if !c.is_ascii_digit() {
            break;
        }
        v = v.saturating_mul(10).saturating_add(u64::from(c - b'0'));
    }
    v
}

/// Parses the script. Never fails: anything unknown is ignored (0.76 has no usage message).
pub fn parse<I, S>(args: I) -> Script
where
    I: IntoIterator<Item = S>,
    S: AsRef<[u8]>,
{
    let mut script = Script::default();
    let mut size = DEFAULT_SIZE;
    let mut num = DEFAULT_NUM;
    let mut processor: Option<String> = None;
    let mut total: Option<u64> = None;
    let mut age: Option<u64> = None;
    let mut compress = false;
    for (i, arg) in args.into_iter().enumerate() {
        let a = arg.as_ref();
        let Some(&first) = a.first() else { continue };
        let rest = &a[1..];
        match first {
            // `t` counts only as the first argument; anywhere else it is ignored (§7).
            b't' if i == 0 => script.tai64n = true,
            b'T' if i == 0 || (i == 1 && script.tai64n) => script.iso = true,
            b'+' => script.actions.push(Action::Select(rest.to_vec())),
            b'-' => script.actions.push(Action::Deselect(rest.to_vec())),
            b'e' => script.actions.push(Action::Alert),
            b'=' => {
                script.status_files.push(bytes_path(rest));
                script
                    .actions
                    .push(Action::Status(script.status_files.len() - 1));
            }
            b's' => size = scan_ulong(rest).clamp(MIN_SIZE, MAX_SIZE),
            b'n' => num = scan_ulong(rest).max(MIN_NUM),
            b'!' => processor = Some(String::from_utf8_lossy(rest).into_owned()),
            b'S' => total = Some(scan_ulong(rest)).filter(|&v| v > 0),
            b'a' => age = Some(scan_ulong(rest)).filter(|&v| v > 0),
            b'z' => compress = true,
            b'.' | b'/' => {
                script.dirs.push(DirSpec {
                    path: bytes_path(a),
                    size,
                    num,
                    processor: processor.clone(),
                    total,
                    age,
                    compress,
                });
                script.actions.push(Action::Dir(script.dirs.len() - 1));
            }
            _ => {}
        }
    }
    script
}

fn bytes_path(b: &[u8]) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    PathBuf::from(std::ffi::OsStr::from_bytes(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_only_counts_first() {
        assert!(parse(["t", "./a"]).tai64n);
        assert!(!parse(["./a", "t"]).tai64n);
        assert!(!parse(["e", "t"]).tai64n);
    }

    #[test]
    fn sizes_are_clamped_and_apply_to_following_dirs() {
        let s = parse(["s100", "n1", "./a", "s99999999", "n5", "./b", "./c"]);
        assert_eq!(s.dirs[0].size, MIN_SIZE);
        assert_eq!(s.dirs[0].num, MIN_NUM);
        assert_eq!(s.dirs[1].size, MAX_SIZE);
        assert_eq!(s.dirs[1].num, 5);
        assert_eq!(s.dirs[2].num, 5);
    }

    #[test]
    fn defaults() {
        let s = parse(["/abs"]);
        assert_eq!(s.dirs[0].size, DEFAULT_SIZE);
        assert_eq!(s.dirs[0].num, DEFAULT_NUM);
        assert_eq!(s.dirs[0].processor, None);
    }

    #[test]
    fn unknown_and_empty_are_ignored() {
        let s = parse(["", "x", "?", "1", "./d"]);
        assert_eq!(s.actions, vec![Action::Dir(0)]);
        assert!(!s.inspects_lines());
    }

    #[test]
    fn actions_keep_order() {
        let s = parse(["-*", "+*err*", "e", "=st", "!gzip", "./d"]);
        assert_eq!(
            s.actions,
            vec![
                Action::Deselect(b"*".to_vec()),
                Action::Select(b"*err*".to_vec()),
                Action::Alert,
                Action::Status(0),
                Action::Dir(0)
            ]
        );
        assert_eq!(s.dirs[0].processor.as_deref(), Some("gzip"));
    }

    #[test]
    fn extensions() {
        let s = parse(["t", "T", "S5000", "a60", "z", "./d"]);
        assert!(s.tai64n && s.iso);
        assert_eq!(s.dirs[0].total, Some(5000));
        assert_eq!(s.dirs[0].age, Some(60));
        assert!(s.dirs[0].compress);
        assert!(!parse(["e", "T"]).iso);
    }
}
