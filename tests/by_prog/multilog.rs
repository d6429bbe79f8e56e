//! Tests for multilog (REFERENCE.md §7): the script language, the log directory, rotation,
//! recovery, signals and disk errors, most of them run side by side with Debian's
//! multilog on the same input and compared byte for byte (stamps masked).
#![allow(clippy::unwrap_used)]

use crate::harness::{self, DEADLINE, Running, Scratch, oracle, wait_until};
use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Env var shortening the 5 s pause after a disk or processor error, for tests only.
const PAUSE_ENV: &str = "SVTOOLS_MULTILOG_PAUSE_MS";

/// Our multilog.
fn ours() -> PathBuf {
    harness::bin("multilog")
}

/// Debian's multilog.
fn debian() -> PathBuf {
    oracle("multilog")
}

/// The outcome of one multilog run.
struct Out {
    code: i32,
    stderr: Vec<u8>,
}

/// Runs `prog args` in `cwd` (created) with `input` as stdin (a regular file, so 0.76's
/// 1024-byte reads are deterministic) and waits for it to exit.
fn run_with(prog: &Path, cwd: &Path, args: &[&str], input: &[u8], env: &[(&str, &str)]) -> Out {
    fs::create_dir_all(cwd).unwrap();
    // Input and stderr live apart from `cwd` (whose contents some tests compare).
    let io_dir = tempfile::Builder::new().prefix("svtest").tempdir().unwrap();
    let inp = io_dir.path().join("input");
    fs::write(&inp, input).unwrap();
    let errp = io_dir.path().join("stderr");
    let mut c = harness::cmd(prog);
    c.current_dir(cwd)
        .args(args)
        .envs(env.iter().copied())
        .stdin(File::open(&inp).unwrap())
        .stdout(Stdio::null())
        .stderr(File::create(&errp).unwrap());
    let mut r = Running::spawn_raw(c);
    let st = r.wait_exit(DEADLINE * 3);
    Out {
        code: st.code().unwrap_or(-1),
        stderr: fs::read(&errp).unwrap(),
    }
}

/// Runs ours and Debian's on the same input in `s/ours` and `s/deb`; asserts the same exit
/// code and stderr; returns the two working directories.
fn both(s: &Scratch, args: &[&str], input: &[u8]) -> (PathBuf, PathBuf) {
    let (o, d) = (s.join("ours"), s.join("deb"));
    let ro = run_with(&ours(), &o, args, input, &[]);
    let rd = run_with(&debian(), &d, args, input, &[]);
    assert_eq!(ro.code, rd.code, "exit code, ours vs Debian, {args:?}");
    assert_eq!(
        mask(&ro.stderr),
        mask(&rd.stderr),
        "stderr, ours vs Debian, {args:?}"
    );
    (o, d)
}

/// Replaces every `@` + 24 hex digits with a placeholder.
pub(crate) fn mask(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'@'
            && i + 25 <= b.len()
            && b[i + 1..i + 25].iter().all(|c| c.is_ascii_hexdigit())
        {
            out.extend_from_slice(b"@STAMP");
            i += 25;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

/// A log directory as (masked name, size, mode, masked contents), in name order (archives
/// sort by their close time). `lock` is left out of the contents.
fn snapshot(dir: &Path) -> Vec<(String, u64, u32, Vec<u8>)> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|n| {
            let m = fs::metadata(dir.join(&n)).unwrap();
            let body = if n == "lock" {
                Vec::new()
            } else {
                mask(&fs::read(dir.join(&n)).unwrap())
            };
            let name = String::from_utf8(mask(n.as_bytes())).unwrap();
            (name, m.len(), m.permissions().mode() & 0o7777, body)
        })
        .collect()
}

/// Asserts that two log directories hold the same files, sizes, modes and contents.
fn same_dir(o: &Path, d: &Path) {
    let (so, sd) = (snapshot(o), snapshot(d));
    let summary = |v: &[(String, u64, u32, Vec<u8>)]| {
        v.iter()
            .map(|(n, l, m, _)| format!("{n} {l} {m:o}"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(
        summary(&so),
        summary(&sd),
        "files of {} (ours) vs {} (Debian)",
        o.display(),
        d.display()
    );
    assert!(so == sd, "contents of {} differ from Debian's", o.display());
}

/// `n` numbered lines of varying length.
fn lines(n: usize) -> Vec<u8> {
    let mut v = Vec::new();
    for i in 0..n {
        writeln!(v, "line {i} {}", "x".repeat(i * 7 % 150)).unwrap();
    }
    v
}

#[test]
fn e_cuts_at_200_bytes_plus_dots_like_debian() {
    let s = Scratch::new();
    let mut input = Vec::new();
    for n in [0, 1, 199, 200, 201, 300, 999, 1000, 1001, 5000] {
        input.extend(std::iter::repeat_n(b'a', n));
        input.push(b'\n');
    }
    let ro = run_with(&ours(), &s.join("o"), &["e"], &input, &[]);
    let rd = run_with(&debian(), &s.join("d"), &["e"], &input, &[]);
    assert_eq!(ro.code, 0);
    assert_eq!(ro.stderr, rd.stderr);
    // REFERENCE.md §7 check: a 300-byte line prints 204 bytes.
    let r = run_with(&ours(), &s.join("c"), &["e"], &[b'x'; 300], &[]);
    assert_eq!(r.stderr.len(), 204);
}

#[test]
fn status_file_is_1001_bytes_like_debian() {
    let s = Scratch::new();
    for (k, last) in [&b"a"[..], &[b'y'; 1500][..], b""].iter().enumerate() {
        let mut input = b"first line\n".to_vec();
        input.extend_from_slice(last);
        input.push(b'\n');
        let (o, d) = both(&s, &["=st"], &input);
        let (fo, fd) = (
            fs::read(o.join("st")).unwrap(),
            fs::read(d.join("st")).unwrap(),
        );
        assert_eq!(fo.len(), 1001, "case {k}");
        assert_eq!(fo, fd, "case {k}");
        let mo = fs::metadata(o.join("st")).unwrap().permissions().mode() & 0o777;
        let md = fs::metadata(d.join("st")).unwrap().permissions().mode() & 0o777;
        assert_eq!(mo, md);
        fs::remove_dir_all(o).unwrap();
        fs::remove_dir_all(d).unwrap();
    }
}

#[test]
fn patterns_select_like_debian() {
    let input = b"foo\nfoobar\nerror: disk\nan error here\nx*y\n\nwarning: a\nbar foo\n\
                  ab\nabab\n*\nzip\nzip zap\na zip\n";
    let scripts: &[&[&str]] = &[
        &["-*", "+*error*", "./d"],
        &["-foo", "./d", "+foo", "-*bar", "./e"],
        &["-*foo", "./d"],
        &["-*", "+a*b", "./d"],
        &["-*", "+*b", "e", "./d"],
        &["+*", "-*:*", "./d", "=st"],
        &["-x*y", "./d", "-*", "./e"],
        &["t", "-foo", "./d"],
        // With `t`, patterns see the stamp; hex digits in a pattern's `*c` would make the
        // outcome depend on the clock, so these use letters beyond `f`.
        &["t", "-*zip*", "+*zip zap", "./d"],
        &["t", "-*", "+* zip", "./d"],
        &["./d", "t", "-*"],
    ];
    for script in scripts {
        eprintln!("script {script:?}");
        let s = Scratch::new();
        let (o, d) = both(&s, script, input);
        for sub in ["d", "e"] {
            if d.join(sub).exists() {
                same_dir(&o.join(sub), &d.join(sub));
            }
        }
    }
}

#[test]
fn rotation_gives_same_files_and_sizes_as_debian() {
    let input = lines(20_000);
    let scripts: &[&[&str]] = &[
        &["s4096", "n3", "./d"],
        &["s5000", "n5", "./d", "s9000", "n2", "./e"],
        &["t", "s4096", "n4", "./d"],
        &["s100", "n1", "./d"],
        &["n20", "./d"],
    ];
    for script in scripts {
        let s = Scratch::new();
        let (o, d) = both(&s, script, &input);
        for sub in ["d", "e"] {
            if d.join(sub).exists() {
                same_dir(&o.join(sub), &d.join(sub));
            }
        }
    }
}

#[test]
fn reference_check_s100_n1_keeps_one_archive_of_about_2k() {
    let s = Scratch::new();
    let input: Vec<u8> = (1..=2000)
        .flat_map(|i| format!("{i}\n").into_bytes())
        .collect();
    let r = run_with(&ours(), &s.join("o"), &["s100", "n1", "./L"], &input, &[]);
    assert_eq!(r.code, 0);
    let snap = snapshot(&s.join("o/L"));
    let archives: Vec<_> = snap.iter().filter(|e| e.0.starts_with('@')).collect();
    assert_eq!(archives.len(), 1, "{snap:?}");
    assert!((2000..=4096).contains(&archives[0].1));
}

#[test]
fn processor_output_and_state_like_debian() {
    let input = lines(3000);
    let s = Scratch::new();
    // The processor upper-cases the log and counts its runs in state.
    let proc_ = "!tr a-z A-Z; n=$(cat <&4); echo $((n+1)) >&5";
    let (o, d) = both(&s, &["s4096", "n4", proc_, "./d"], &input);
    same_dir(&o.join("d"), &d.join("d"));
    let st = fs::read_to_string(o.join("d/state")).unwrap();
    assert!(st.trim().parse::<u32>().unwrap() > 10, "state {st:?}");
}

#[test]
fn long_line_rest_is_copied_and_head_is_seen_by_script() {
    let s = Scratch::new();
    let mut input = b"short\n".to_vec();
    let mut big = vec![b'x'; 1 << 20];
    big[0] = b'E';
    input.extend_from_slice(&big);
    input.extend_from_slice(b"\nafter\n");
    let (o, d) = both(
        &s,
        &["s16777215", "-*", "+E*", "e", "=st", "./d", "-*", "./e"],
        &input,
    );
    same_dir(&o.join("d"), &d.join("d"));
    same_dir(&o.join("e"), &d.join("e"));
    assert_eq!(
        fs::read(o.join("st")).unwrap(),
        fs::read(d.join("st")).unwrap()
    );
    assert_eq!(
        fs::metadata(o.join("d/current")).unwrap().len(),
        (1 << 20) + 1
    );
    // Rotation through a 1 MB line, smallest size.
    let s = Scratch::new();
    let (o, d) = both(&s, &["s4096", "n100", "./d"], &input);
    same_dir(&o.join("d"), &d.join("d"));
}

#[test]
fn binary_input_like_debian() {
    let s = Scratch::new();
    // A deterministic byte soup with NULs, high bytes and few newlines.
    let mut x: u32 = 12345;
    let input: Vec<u8> = (0..200_000)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (x >> 16) as u8
        })
        .collect();
    let (o, d) = both(
        &s,
        &["s4096", "n50", "./d", "-*\x01*", "=st", "./e"],
        &input,
    );
    same_dir(&o.join("d"), &d.join("d"));
    same_dir(&o.join("e"), &d.join("e"));
}

#[test]
fn final_newline_is_added_like_debian() {
    for input in [&b"a\nb"[..], b"no newline at all", b"", b"\n"] {
        let s = Scratch::new();
        let (o, d) = both(&s, &["t", "./d"], input);
        same_dir(&o.join("d"), &d.join("d"));
        let s = Scratch::new();
        let (o, d) = both(&s, &["./d"], input);
        same_dir(&o.join("d"), &d.join("d"));
    }
    let s = Scratch::new();
    run_with(&ours(), &s.join("o"), &["./d"], b"a\nb", &[]);
    assert_eq!(fs::read(s.join("o/d/current")).unwrap(), b"a\nb\n");
}

#[test]
fn no_arguments_reads_and_drops_everything() {
    let s = Scratch::new();
    let (o, _) = both(&s, &[], &lines(100));
    assert_eq!(fs::read_dir(&o).unwrap().count(), 0);
}

#[test]
fn t_stamps_are_valid_and_current_is_0744_after_eof() {
    let s = Scratch::new();
    let r = run_with(&ours(), &s.join("o"), &["t", "./d"], b"x\ny\n", &[]);
    assert_eq!(r.code, 0);
    let cur = fs::read(s.join("o/d/current")).unwrap();
    for l in cur.split(|&c| c == b'\n').filter(|l| !l.is_empty()) {
        assert_eq!(l[0], b'@');
        assert_eq!(l[25], b' ');
        assert!(
            l[1..25]
                .iter()
                .all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
        );
    }
    let mode = fs::metadata(s.join("o/d/current"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o744);
    let dmode = fs::metadata(s.join("o/d")).unwrap().permissions().mode();
    assert_eq!(dmode & 0o777, 0o700);
}

#[test]
fn second_multilog_on_a_locked_dir_fails_like_debian() {
    let s = Scratch::new();
    for holder in [debian(), ours()] {
        let (r, w) = pipe();
        let dir = s.join("L");
        let mut c = harness::cmd(&holder);
        c.current_dir(s.path())
            .arg("./L")
            .stdin(Stdio::from(r))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut h = Running::spawn_raw(c);
        wait_until(
            DEADLINE,
            || "holder to create current".into(),
            || dir.join("current").exists(),
        );
        for p in [ours(), debian()] {
            let o = run_with(&p, s.path(), &["./L"], b"x\n", &[]);
            assert_eq!(o.code, 111, "{}", p.display());
            assert_eq!(
                String::from_utf8_lossy(&o.stderr),
                "multilog: fatal: unable to lock directory ./L: temporary failure\n"
            );
        }
        drop(w);
        assert!(h.wait_exit(DEADLINE).success());
        fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn unopenable_directory_message_like_debian() {
    let s = Scratch::new();
    let (o, _) = both(&s, &["./nonexist/x"], b"a\n");
    assert!(!o.join("nonexist").exists());
    // `lock` that cannot be opened, and an `=` file that cannot be created.
    let s = Scratch::new();
    fs::create_dir_all(s.join("ours/L/lock")).unwrap();
    fs::create_dir_all(s.join("deb/L/lock")).unwrap();
    both(&s, &["./L"], b"a\n");
    let s = Scratch::new();
    both(&s, &["./L", "=nonexist/st"], b"a\n");
}

/// A pipe as (read end, write end).
fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two descriptors we then own.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: fresh descriptors from pipe2, owned by nobody else.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// Starts `prog args` in `cwd` reading from `stdin`; stderr goes to `cwd/<tag>.err`.
fn spawn_on(
    prog: &Path,
    cwd: &Path,
    args: &[&str],
    stdin: &OwnedFd,
    env: &[(&str, &str)],
    tag: &str,
) -> Running {
    let mut c = harness::cmd(prog);
    c.current_dir(cwd)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::from(stdin.try_clone().unwrap()))
        .stdout(Stdio::null())
        .stderr(File::create(err_path(cwd, tag)).unwrap());
    Running::spawn_raw(c)
}

/// Where [`spawn_on`] sends stderr.
fn err_path(cwd: &Path, tag: &str) -> PathBuf {
    cwd.join(format!("{tag}.err"))
}

fn file_has(p: &Path, needle: &[u8]) -> bool {
    fs::read(p)
        .map(|b| b.windows(needle.len()).any(|w| w == needle))
        .unwrap_or(false)
}

/// All archives (in name order) then `current`, concatenated.
fn all_logged(dir: &Path) -> Vec<u8> {
    let Ok(rd) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = rd
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('@'))
        .collect();
    names.sort();
    names.push("current".into());
    let mut v = Vec::new();
    for n in names {
        v.extend(fs::read(dir.join(n)).unwrap_or_default());
    }
    v
}

#[test]
fn sigkill_recovery_and_each_reads_the_others_directory() {
    // Every order: who is killed, who recovers.
    for (first, second) in [
        (ours(), debian()),
        (debian(), ours()),
        (ours(), ours()),
        (debian(), debian()),
    ] {
        let s = Scratch::new();
        let (r, w) = pipe();
        let mut wf = File::from(w);
        let m1 = spawn_on(&first, s.path(), &["./L"], &r, &[], "m1");
        wf.write_all(b"one\ntwo\n").unwrap();
        wait_until(
            DEADLINE,
            || format!("two in current: {}", s.listing()),
            || file_has(&s.join("L/current"), b"two\n"),
        );
        m1.signal(libc::SIGKILL);
        drop(m1);
        // current was left 0644: the next multilog (of the other kind) recovers it as .u.
        let mode = fs::metadata(s.join("L/current"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o100, 0);
        let mut m2 = spawn_on(&second, s.path(), &["./L"], &r, &[], "m2");
        wf.write_all(b"three\n").unwrap();
        drop(wf);
        drop(r);
        assert!(m2.wait_exit(DEADLINE).success());
        let snap = snapshot(&s.join("L"));
        let names: Vec<_> = snap.iter().map(|e| e.0.clone()).collect();
        assert_eq!(names, ["@STAMP.u", "current", "lock", "state"], "{snap:?}");
        assert_eq!(snap[0].3, b"one\ntwo\n");
        // Recovery renames current as it is: still 0644 (0.76 does no chmod there).
        assert_eq!(snap[0].2, 0o644);
        assert_eq!(snap[1].3, b"three\n");
        assert_eq!(snap[1].2, 0o744);
        // A clean close: the first kind appends to the second kind's current.
        let o = run_with(&first, s.path(), &["./L"], b"four\n", &[]);
        assert_eq!(o.code, 0);
        assert_eq!(fs::read(s.join("L/current")).unwrap(), b"three\nfour\n");
        assert_eq!(snapshot(&s.join("L")).len(), 4);
    }
}

#[test]
fn recovery_of_previous_and_processed_like_debian() {
    // A crash during processing: previous (and a half-written processed) are left.
    for processed_done in [false, true] {
        let s = Scratch::new();
        let mut dirs = Vec::new();
        for (tag, prog) in [("o", ours()), ("d", debian())] {
            let l = s.join(tag).join("L");
            fs::create_dir_all(&l).unwrap();
            fs::write(l.join("current"), b"cur\n").unwrap();
            fs::write(l.join("previous"), b"prev\n").unwrap();
            fs::write(l.join("processed"), b"PREV\n").unwrap();
            fs::write(l.join("state"), b"st\n").unwrap();
            fs::write(l.join("newstate"), b"nst\n").unwrap();
            if processed_done {
                fs::set_permissions(l.join("processed"), fs::Permissions::from_mode(0o744))
                    .unwrap();
            }
            let o = run_with(&prog, &s.join(tag), &["./L"], b"new\n", &[]);
            assert_eq!(o.code, 0);
            dirs.push(l);
        }
        same_dir(&dirs[0], &dirs[1]);
    }
}

#[test]
fn term_finishes_the_line_and_leaves_the_rest_in_the_pipe() {
    let s = Scratch::new();
    let (r, w) = pipe();
    let mut wf = File::from(w);
    let mut m = spawn_on(&ours(), s.path(), &["./L"], &r, &[], "m");
    wf.write_all(b"a\nb").unwrap();
    wait_until(
        DEADLINE,
        || "a in current".into(),
        || file_has(&s.join("L/current"), b"a\n"),
    );
    // Make sure "b" has been read before TERM (it is not written until its newline).
    wait_until(DEADLINE, || "pipe drained".into(), || pipe_len(&r) == 0);
    m.signal(libc::SIGTERM);
    // Still running: it waits for the end of the line.
    wf.write_all(b"c\nd\n").unwrap();
    assert!(m.wait_exit(DEADLINE).success());
    assert_eq!(fs::read(s.join("L/current")).unwrap(), b"a\nbc\n");
    let mode = fs::metadata(s.join("L/current"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o744);
    drop(wf);
    let mut rest = Vec::new();
    File::from(r).read_to_end(&mut rest).unwrap();
    assert_eq!(rest, b"d\n", "the next line stays in the pipe");
}

/// Bytes waiting in a pipe (FIONREAD).
fn pipe_len(fd: &OwnedFd) -> i32 {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int into `n`.
    unsafe { libc::ioctl(fd.as_raw_fd(), libc::FIONREAD, &mut n) };
    n
}

#[test]
fn alrm_rotates_a_non_empty_current() {
    let s = Scratch::new();
    let (r, w) = pipe();
    let mut wf = File::from(w);
    let mut m = spawn_on(&ours(), s.path(), &["./L"], &r, &[], "m");
    wait_until(
        DEADLINE,
        || "current".into(),
        || s.join("L/current").exists(),
    );
    m.signal(libc::SIGALRM);
    wf.write_all(b"x\n").unwrap();
    // The first ALRM may be seen before or after "x" is read: either way x is logged once.
    wait_until(
        DEADLINE,
        || "x".into(),
        || all_logged(&s.join("L")) == b"x\n",
    );
    m.signal(libc::SIGALRM);
    wait_until(
        DEADLINE,
        || format!("archive: {}", s.listing()),
        || {
            all_logged(&s.join("L")) == b"x\n"
                && fs::metadata(s.join("L/current")).ok().map(|m| m.len()) == Some(0)
        },
    );
    drop(wf);
    assert!(m.wait_exit(DEADLINE).success());
    let snap = snapshot(&s.join("L"));
    let names: Vec<_> = snap.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(names, ["@STAMP.s", "current", "lock", "state"], "{snap:?}");
}

#[test]
fn failing_processor_is_rerun_with_a_warning_and_nothing_is_lost() {
    let s = Scratch::new();
    // Fails twice, then succeeds (counting its tries in ../tries).
    let proc_ = "!n=$(cat ../tries 2>/dev/null || echo 0); echo $((n+1)) > ../tries; \
                 [ $n -ge 2 ] || exit 1; cat";
    let mut input = Vec::new();
    for i in 0..400 {
        writeln!(input, "line {i:04} {}", "y".repeat(20)).unwrap();
    }
    fs::create_dir_all(s.join("w")).unwrap();
    let r = run_with(
        &ours(),
        &s.join("w"),
        &["s4096", proc_, "./L"],
        &input,
        &[(PAUSE_ENV, "20")],
    );
    assert_eq!(r.code, 0);
    let err = String::from_utf8_lossy(&r.stderr);
    assert_eq!(
        err,
        "multilog: warning: processor failed in ./L, pausing\n".repeat(2),
        "two failures, then success"
    );
    assert_eq!(all_logged(&s.join("w/L")), input);
    assert!(!s.join("w/L/previous").exists());
}

/// A small tmpfs mounted for one test, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn new(at: PathBuf, size: &str) -> Tmpfs {
        fs::create_dir_all(&at).unwrap();
        // SAFETY: geteuid has no preconditions.
        assert_eq!(
            unsafe { libc::geteuid() },
            0,
            "this test mounts a tmpfs and must run as root (CI does)"
        );
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&at)
            .status()
            .unwrap();
        assert!(st.success(), "mount tmpfs on {}", at.display());
        Tmpfs(at)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn full_disk_pauses_and_loses_nothing() {
    let s = Scratch::new();
    let t = Tmpfs::new(s.join("mnt"), "64k");
    let (r, w) = pipe();
    let mut wf = File::from(w);
    let mut m = spawn_on(
        &ours(),
        s.path(),
        &["s4096", "n3", "./mnt/L"],
        &r,
        &[(PAUSE_ENV, "50")],
        "m",
    );
    wait_until(
        DEADLINE,
        || "current".into(),
        || t.0.join("L/current").exists(),
    );
    // Fill the file system.
    let filler = t.0.join("filler");
    {
        let mut f = File::create(&filler).unwrap();
        let chunk = [b'f'; 4096];
        while f.write_all(&chunk).is_ok() {}
    }
    let mut input = Vec::new();
    for i in 0..300 {
        writeln!(input, "line {i:04} {}", "z".repeat(30)).unwrap();
    }
    wf.write_all(&input).unwrap();
    let errp = err_path(s.path(), "m");
    wait_until(
        DEADLINE,
        || "a pausing warning".into(),
        || file_has(&errp, b"pausing: "),
    );
    let err = fs::read_to_string(&errp).unwrap();
    assert!(
        err.starts_with("multilog: warning: unable to ")
            && err.contains("./mnt/L/")
            && err.contains("pausing: "),
        "{err}"
    );
    fs::remove_file(&filler).unwrap();
    drop(wf);
    assert!(m.wait_exit(DEADLINE).success());
    // n3: at most two archives plus current, each ending on a line; the last lines are
    // all there, in order, and nothing was dropped inside what was kept.
    let logged = all_logged(&t.0.join("L"));
    assert!(input.ends_with(&logged), "logged is a tail of the input");
    assert!(logged.len() > 4096, "{}", logged.len());
}

#[test]
fn full_disk_without_rotation_keeps_every_line() {
    let s = Scratch::new();
    let t = Tmpfs::new(s.join("mnt"), "64k");
    let (r, w) = pipe();
    let mut wf = File::from(w);
    let mut m = spawn_on(
        &ours(),
        s.path(),
        &["./mnt/L"],
        &r,
        &[(PAUSE_ENV, "50")],
        "m",
    );
    wait_until(
        DEADLINE,
        || "current".into(),
        || t.0.join("L/current").exists(),
    );
    let filler = t.0.join("filler");
    {
        let mut f = File::create(&filler).unwrap();
        let chunk = [b'f'; 4096];
        while f.write_all(&chunk).is_ok() {}
    }
    let input = lines(200);
    wf.write_all(&input).unwrap();
    let errp = err_path(s.path(), "m");
    wait_until(
        DEADLINE,
        || "a pausing warning".into(),
        || file_has(&errp, b"unable to write to ./mnt/L/current, pausing: "),
    );
    fs::remove_file(&filler).unwrap();
    drop(wf);
    assert!(m.wait_exit(DEADLINE).success());
    assert_eq!(fs::read(t.0.join("L/current")).unwrap(), input);
}

#[test]
fn sigkill_mid_stream_loses_at_most_one_read() {
    let s = Scratch::new();
    let (r, w) = pipe();
    let mut wf = File::from(w);
    let m1 = spawn_on(&ours(), s.path(), &["s16777215", "./L"], &r, &[], "m1");
    let total = 200_000usize;
    let writer = std::thread::spawn(move || {
        for i in 0..total {
            writeln!(wf, "line {i:08}").unwrap();
        }
    });
    wait_until(
        DEADLINE,
        || "some lines".into(),
        || fs::metadata(s.join("L/current")).ok().map(|m| m.len()) > Some(100_000),
    );
    m1.signal(libc::SIGKILL);
    drop(m1);
    let mut m2 = spawn_on(&ours(), s.path(), &["s16777215", "./L"], &r, &[], "m2");
    drop(r);
    writer.join().unwrap();
    assert!(m2.wait_exit(DEADLINE * 3).success());
    let logged = all_logged(&s.join("L"));
    let mut last: Option<usize> = None;
    let mut missing = 0usize;
    let mut odd = 0;
    for l in logged.split(|&c| c == b'\n').filter(|l| !l.is_empty()) {
        let n = std::str::from_utf8(l)
            .ok()
            .and_then(|t| t.strip_prefix("line "))
            // A write cut short by the kill can leave a line's head: count only whole ones.
            .filter(|t| t.len() == 8)
            .and_then(|t| t.parse::<usize>().ok());
        let Some(n) = n else {
            // The kill can cut a line where a read ended and where a write was cut short.
            odd += 1;
            continue;
        };
        let expect = last.map_or(0, |x| x + 1);
        assert!(
            n >= expect,
            "line {n} after {last:?}: duplicated or reordered"
        );
        missing += n - expect;
        last = Some(n);
    }
    assert_eq!(last, Some(total - 1));
    assert!(odd <= 2, "{odd} garbled lines");
    // One read is at most 128 KiB: about 9400 lines of 14 bytes.
    assert!(missing * 14 <= 128 * 1024, "{missing} lines lost");
}

#[test]
fn extension_total_size_cap_keeps_archives_under_s_bytes() {
    let s = Scratch::new();
    let r = run_with(
        &ours(),
        &s.join("o"),
        &["s4096", "n100", "S10000", "./L"],
        &lines(3000),
        &[],
    );
    assert_eq!(r.code, 0);
    let snap = snapshot(&s.join("o/L"));
    let total: u64 = snap
        .iter()
        .filter(|e| e.0.starts_with('@'))
        .map(|e| e.1)
        .sum();
    assert!(total <= 10_000, "{snap:?}");
    assert!(snap.iter().filter(|e| e.0.starts_with('@')).count() >= 2);
    // Debian's multilog ignores the letter (REFERENCE.md §7 "anything else").
    let r = run_with(&debian(), &s.join("d"), &["S10000", "./L"], b"x\n", &[]);
    assert_eq!(r.code, 0);
}

#[test]
fn extension_iso_timestamp_beside_or_instead_of_tai64n() {
    let s = Scratch::new();
    run_with(&ours(), &s.join("a"), &["T", "./L"], b"x\n", &[]);
    let a = fs::read_to_string(s.join("a/L/current")).unwrap();
    // 2026-11-24T19:03:00.123456500Z x
    assert_eq!(a.len(), 30 + 1 + 2, "{a:?}");
    assert_eq!(&a[4..5], "-");
    assert_eq!(&a[10..11], "T");
    assert!(a.ends_with("Z x\n"), "{a:?}");
    run_with(
        &ours(),
        &s.join("b"),
        &["t", "T", "-*Z y", "./L"],
        b"x\ny\n",
        &[],
    );
    let b = fs::read_to_string(s.join("b/L/current")).unwrap();
    assert_eq!(b.len(), 26 + 31 + 2, "{b:?}");
    assert!(b.starts_with('@') && b.ends_with("Z x\n"), "{b:?}");
}

#[test]
fn extension_compression_keeps_the_archive_count() {
    let s = Scratch::new();
    let input = lines(3000);
    let r = run_with(
        &ours(),
        &s.join("o"),
        &["s4096", "n4", "z", "./L"],
        &input,
        &[],
    );
    assert_eq!(r.code, 0, "{}", String::from_utf8_lossy(&r.stderr));
    let snap = snapshot(&s.join("o/L"));
    let arch: Vec<_> = snap.iter().filter(|e| e.0.starts_with('@')).collect();
    assert_eq!(arch.len(), 3, "{snap:?}");
    assert!(arch.iter().all(|e| e.0 == "@STAMP.s.gz"), "{snap:?}");
    // The newest archive decompresses to the lines just before current.
    let dir = s.join("o/L");
    let mut names: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('@'))
        .collect();
    names.sort();
    let mut plain = Vec::new();
    for n in &names {
        let o = Command::new("gzip")
            .arg("-dc")
            .arg(dir.join(n))
            .output()
            .unwrap();
        assert!(o.status.success());
        plain.extend(o.stdout);
    }
    plain.extend(fs::read(dir.join("current")).unwrap());
    assert!(input.ends_with(&plain));
}

#[test]
fn extension_rotation_by_age() {
    let s = Scratch::new();
    let (r, w) = pipe();
    let mut wf = File::from(w);
    let mut m = spawn_on(&ours(), s.path(), &["a1", "./L"], &r, &[], "m");
    wf.write_all(b"old\n").unwrap();
    wait_until(
        DEADLINE,
        || format!("age rotation: {}", s.listing()),
        || {
            all_logged(&s.join("L")) == b"old\n"
                && fs::metadata(s.join("L/current")).ok().map(|m| m.len()) == Some(0)
        },
    );
    drop(wf);
    assert!(m.wait_exit(DEADLINE).success());
}

#[test]
fn slow_input_reaches_current_line_by_line() {
    let s = Scratch::new();
    let (r, w) = pipe();
    let mut wf = File::from(w);
    let mut m = spawn_on(&ours(), s.path(), &["t", "./L"], &r, &[], "m");
    for i in 0..5 {
        let l = format!("slow {i}\n");
        wf.write_all(l.as_bytes()).unwrap();
        wait_until(
            DEADLINE,
            || format!("{l:?} in current"),
            || file_has(&s.join("L/current"), l.as_bytes()),
        );
    }
    drop(wf);
    assert!(m.wait_exit(DEADLINE).success());
}

/// Sets or clears the immutable attribute of `p` (a directory that then refuses new
/// names, renames and unlinks, even to root: our "read-only directory").
fn chattr(flag: &str, p: &Path) {
    let st = Command::new("chattr").arg(flag).arg(p).status().unwrap();
    assert!(st.success(), "chattr {flag} {}", p.display());
}

#[test]
fn read_only_directory_pauses_rotation_and_loses_nothing() {
    let s = Scratch::new();
    // A tmpfs of our own, so chattr works whatever file system holds /tmp.
    let t = Tmpfs::new(s.join("mnt"), "1m");
    let (r, w) = pipe();
    let mut wf = File::from(w);
    let mut m = spawn_on(
        &ours(),
        s.path(),
        &["s4096", "n20", "./mnt/L"],
        &r,
        &[(PAUSE_ENV, "50")],
        "m",
    );
    let dir = t.0.join("L");
    wait_until(
        DEADLINE,
        || "current".into(),
        || dir.join("current").exists(),
    );
    chattr("+i", &dir);
    let mut input = Vec::new();
    for i in 0..300 {
        writeln!(input, "line {i:04} {}", "r".repeat(30)).unwrap();
    }
    wf.write_all(&input).unwrap();
    let errp = err_path(s.path(), "m");
    let warned = || {
        file_has(
            &errp,
            b"multilog: warning: unable to rename current to previous in directory ./mnt/L, pausing: ",
        )
    };
    let mut ok = false;
    let end = std::time::Instant::now() + DEADLINE;
    while std::time::Instant::now() < end && !ok {
        ok = warned();
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    chattr("-i", &dir);
    assert!(
        ok,
        "no rename warning: {}",
        fs::read_to_string(&errp).unwrap()
    );
    drop(wf);
    assert!(m.wait_exit(DEADLINE).success());
    assert_eq!(all_logged(&dir), input);
}

#[test]
fn read_error_on_stdin_is_a_clean_eof_like_debian() {
    let s = Scratch::new();
    for (tag, prog) in [("o", ours()), ("d", debian())] {
        let cwd = s.join(tag);
        fs::create_dir_all(&cwd).unwrap();
        // A directory as stdin: poll says readable, read fails with EISDIR.
        let mut c = harness::cmd(&prog);
        c.current_dir(&cwd)
            .arg("./L")
            .stdin(File::open(&cwd).unwrap())
            .stdout(Stdio::null())
            .stderr(File::create(s.join(format!("{tag}.err"))).unwrap());
        let mut r = Running::spawn_raw(c);
        assert_eq!(r.wait_exit(DEADLINE).code(), Some(0), "{}", prog.display());
        assert_eq!(fs::read(s.join(format!("{tag}.err"))).unwrap(), b"");
    }
    same_dir(&s.join("o/L"), &s.join("d/L"));
}

#[test]
fn e_and_status_file_with_stamps_like_debian() {
    let s = Scratch::new();
    let mut input = b"one\n".to_vec();
    input.extend(std::iter::repeat_n(b'q', 1200));
    input.extend_from_slice(b"\nlast\n");
    let (o, d) = both(&s, &["t", "e", "=st", "./d"], &input);
    let (fo, fd) = (
        fs::read(o.join("st")).unwrap(),
        fs::read(d.join("st")).unwrap(),
    );
    assert_eq!(fo.len(), 1001);
    assert_eq!(mask(&fo), mask(&fd));
    same_dir(&o.join("d"), &d.join("d"));
}
