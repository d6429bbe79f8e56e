//! supervise's state machine, as data (STYLE.md P8).
//!
//! [`step`] is a pure function: it takes the [`State`], one [`Event`] and the current
//! time, updates the state and returns the [`Action`]s for the I/O loop
//! (`event_loop.rs`) to carry out. Nothing here touches the system, so every transition
//! is unit-tested below without processes, files or clocks.
//!
//! The behaviour is daemontools 0.76's `supervise.c` (REFERENCE.md §4), with one rule
//! we deliberately do not copy: 0.76 calls a blocking `sleep(1)` after every fork. Here
//! the 1-second start-to-start floor is a timer ([`State::start_at`]); control bytes
//! and reaping go on while it runs, and `d` or `x` cancel the pending start.

use svcore::control::Command;
use svcore::status::{Status, Want};
use svcore::tai64n::Tai64n;

/// Milliseconds on a monotonic clock (the loop's, or a test's).
pub type Millis = u64;

/// Signal numbers used by the state machine (libc's, so the loop can pass them on).
pub use libc::{SIGALRM, SIGCONT, SIGHUP, SIGINT, SIGKILL, SIGQUIT, SIGSTOP, SIGTERM};
pub use libc::{SIGUSR1, SIGUSR2, SIGWINCH};

/// The current time, both clocks: monotonic for timers, TAI64N for status stamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// Monotonic milliseconds.
    pub mono: Millis,
    /// Wall clock, daemontools convention.
    pub tai: Tai64n,
}

/// Per-service settings. [`Config::default`] is exactly daemontools 0.76.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Minimum milliseconds between two starts, start to start (REFERENCE.md §4).
    pub floor_ms: Millis,
    /// Milliseconds to wait before retrying after a failed fork (0.76 sleeps 60 s).
    pub fork_retry_ms: Millis,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            floor_ms: svcore::svdir::RESTART_FLOOR_SECS * 1000,
            fork_retry_ms: 60_000,
        }
    }
}

/// Why a start is pending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PendingStart {
    /// Waiting for the 1-second floor since the last start.
    Floor,
    /// Waiting after a failed fork.
    ForkRetry,
}

/// Everything supervise knows about its service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    /// Settings.
    pub config: Config,
    /// The want byte (`u`, `d`, or once).
    pub want: Want,
    /// The paused flag (`p` sets it, `c`, `d` with a process, and every start clear it).
    pub paused: bool,
    /// The child's pid, 0 when there is none.
    pub pid: u32,
    /// Time of the last pid change (or of supervise's start): the status stamp.
    pub stamp: Tai64n,
    /// `x` was received: exit as soon as there is no process.
    pub exiting: bool,
    /// Monotonic time of the last successful start.
    pub last_start: Option<Millis>,
    /// A start waiting for its time: when, and why.
    pub start_at: Option<(Millis, PendingStart)>,
}

/// Something that happened, fed to [`step`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Startup is complete (status written, `ok` open): start `./run` unless want-down.
    Boot,
    /// One byte read from `supervise/control`; unknown bytes are ignored silently.
    Control(u8),
    /// The loop forked `./run` (after [`Action::Spawn`]).
    Spawned {
        /// The child's pid.
        pid: u32,
    },
    /// The fork for [`Action::Spawn`] failed (the loop printed the warning).
    SpawnFailed,
    /// `waitpid` returned this child.
    ChildExited {
        /// Its pid (may be a stray child that is not ours to care about).
        pid: u32,
        /// The raw wait status.
        wstatus: i32,
    },
    /// The deadline from [`State::next_deadline`] has passed.
    Timer,
}

/// Something for the loop to do, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Fork and exec `./run`, then feed back [`Event::Spawned`] or
    /// [`Event::SpawnFailed`].
    Spawn,
    /// `kill(pid, sig)`, errors ignored (as 0.76).
    Kill {
        /// Target pid.
        pid: u32,
        /// Signal number.
        sig: i32,
    },
    /// Rewrite `supervise/status` from [`State::status`].
    WriteStatus,
    /// Write status one last time and exit 0.
    Exit,
}

/// The actions of one step, in order; a fixed array so a step allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actions {
    buf: [Option<Action>; Actions::CAP],
    len: usize,
}

impl Actions {
    /// The most actions one step produces (d with a process: status, TERM, CONT, plus
    /// room for the features of issue 6).
    pub const CAP: usize = 8;

    fn new() -> Actions {
        Actions {
            buf: [None; Actions::CAP],
            len: 0,
        }
    }

    fn push(&mut self, a: Action) {
        // CAP is larger than any step's output; a silent drop here would be a bug that
        // the unit tests (which check every step's full list) would show.
        if self.len < Actions::CAP {
            self.buf[self.len] = Some(a);
            self.len += 1;
        }
    }

    /// The actions as a slice-like iterator.
    pub fn iter(&self) -> impl Iterator<Item = Action> + '_ {
        self.buf[..self.len].iter().flatten().copied()
    }

    /// The actions collected into a vector (tests).
    #[cfg(test)]
    pub fn to_vec(self) -> Vec<Action> {
        self.iter().collect()
    }
}

impl State {
    /// The state at startup: stamp = now, no process, want from the `down` file.
    pub fn new(config: Config, want_down: bool, now: Now) -> State {
        State {
            config,
            want: if want_down { Want::Down } else { Want::Up },
            paused: false,
            pid: 0,
            stamp: now.tai,
            exiting: false,
            last_start: None,
            start_at: None,
        }
    }

    /// The 18-byte record this state is published as.
    pub fn status(&self) -> Status {
        Status {
            stamp: self.stamp,
            pid: self.pid,
            paused: self.paused,
            want: self.want,
        }
    }

    /// When the loop must wake up next with [`Event::Timer`]; `None` means sleep until a
    /// signal or a control byte (an idle supervise makes no wakeups).
    pub fn next_deadline(&self) -> Option<Millis> {
        self.start_at.map(|(at, _)| at)
    }

    /// Asks for `./run` to be started: at once if the floor allows, else at
    /// `last_start + floor` through the timer. A pending floor wait is kept; a pending
    /// fork retry is replaced (an explicit `u`/`o` is a reason to try again now).
    fn request_start(&mut self, now: Now, out: &mut Actions) {
        if self.pid != 0 {
            return;
        }
        if let Some((_, PendingStart::Floor)) = self.start_at {
            return;
        }
        let at = self
            .last_start
            .map_or(now.mono, |t| t.saturating_add(self.config.floor_ms));
        if at <= now.mono {
            self.start_at = None;
            out.push(Action::Spawn);
        } else {
            self.start_at = Some((at, PendingStart::Floor));
        }
    }

    /// Sends `sig` to the child, if there is one.
    fn signal(&self, sig: i32, out: &mut Actions) {
        if self.pid != 0 {
            out.push(Action::Kill { pid: self.pid, sig });
        }
    }
}

/// The transition function. Mutates `st` and returns what the loop must do.
pub fn step(st: &mut State, ev: Event, now: Now) -> Actions {
    let mut out = Actions::new();
    match ev {
        Event::Boot => {
            // 0.76: `if (!flagwant || flagwantup) trystart();`
            if st.want != Want::Down {
                st.request_start(now, &mut out);
            }
        }
        Event::Spawned { pid } => {
            // 0.76 trystart: flagpaused = 0; pid = f; pidchange(); announce();
            st.pid = pid;
            st.paused = false;
            st.stamp = now.tai;
            st.last_start = Some(now.mono);
            st.start_at = None;
            out.push(Action::WriteStatus);
        }
        Event::SpawnFailed => {
            // 0.76 sleeps 60 s and then only retries on the next u/o; we retry by timer,
            // and keep serving the control FIFO meanwhile (REFERENCE.md §4).
            st.start_at = Some((
                now.mono.saturating_add(st.config.fork_retry_ms),
                PendingStart::ForkRetry,
            ));
        }
        Event::ChildExited { pid, .. } => {
            if pid == 0 || pid != st.pid {
                // Not our child (0.76 ignores every pid but its own).
                return out;
            }
            st.pid = 0;
            st.stamp = now.tai;
            out.push(Action::WriteStatus);
            if st.exiting {
                out.push(Action::Exit);
            } else if st.want == Want::Up {
                st.request_start(now, &mut out);
            }
        }
        Event::Timer => {
            if let Some((at, _)) = st.start_at {
                if at <= now.mono {
                    st.start_at = None;
                    if st.pid == 0 && !st.exiting && st.want != Want::Down {
                        out.push(Action::Spawn);
                    }
                }
            }
        }
        Event::Control(b) => control(st, b, now, &mut out),
    }
    out
}

/// One control byte (REFERENCE.md §4's table, plus q 1 2 w).
fn control(st: &mut State, b: u8, now: Now, out: &mut Actions) {
    let Some(cmd) = Command::from_byte(b) else {
        // Unknown bytes are ignored silently (0.76).
        return;
    };
    match cmd {
        Command::Up => {
            st.want = Want::Up;
            out.push(Action::WriteStatus);
            st.request_start(now, out);
        }
        Command::Once => {
            st.want = Want::Once;
            out.push(Action::WriteStatus);
            st.request_start(now, out);
        }
        Command::Down => {
            st.want = Want::Down;
            // Our rule (REFERENCE.md §4): d cancels a start waiting for the floor.
            st.start_at = None;
            if st.pid != 0 {
                // 0.76 kills first, then announces; the status file is the same either way.
                st.paused = false;
                out.push(Action::WriteStatus);
                out.push(Action::Kill {
                    pid: st.pid,
                    sig: SIGTERM,
                });
                // CONT wakes a paused process so it can act on the TERM. No KILL ever
                // follows by default (REFERENCE.md §4, §12.7).
                out.push(Action::Kill {
                    pid: st.pid,
                    sig: SIGCONT,
                });
            } else {
                out.push(Action::WriteStatus);
            }
        }
        Command::Pause => {
            st.paused = true;
            out.push(Action::WriteStatus);
            st.signal(SIGSTOP, out);
        }
        Command::Continue => {
            st.paused = false;
            out.push(Action::WriteStatus);
            st.signal(SIGCONT, out);
        }
        // Signal-only commands never rewrite status (REFERENCE.md §3). want is
        // unchanged, so t and k mean "restart".
        Command::Hup => st.signal(SIGHUP, out),
        Command::Alarm => st.signal(SIGALRM, out),
        Command::Interrupt => st.signal(SIGINT, out),
        Command::Term => st.signal(SIGTERM, out),
        Command::Kill => st.signal(SIGKILL, out),
        Command::Quit => st.signal(SIGQUIT, out),
        Command::Usr1 => st.signal(SIGUSR1, out),
        Command::Usr2 => st.signal(SIGUSR2, out),
        Command::Winch => st.signal(SIGWINCH, out),
        Command::Exit => {
            st.exiting = true;
            // Our rule: x cancels a pending start; the want byte keeps its value.
            st.start_at = None;
            out.push(Action::WriteStatus);
            if st.pid == 0 {
                out.push(Action::Exit);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Action::*;

    fn at(ms: Millis) -> Now {
        Now {
            mono: ms,
            tai: Tai64n::from_unix(1_000_000 + ms / 1000, (ms % 1000) as u32 * 1_000_000),
        }
    }

    fn up_state() -> State {
        State::new(Config::default(), false, at(0))
    }

    fn down_state() -> State {
        State::new(Config::default(), true, at(0))
    }

    /// A state with a child `pid` started at time `t`.
    fn running(pid: u32, t: Millis) -> State {
        let mut st = up_state();
        assert_eq!(step(&mut st, Event::Boot, at(t)).to_vec(), vec![Spawn]);
        step(&mut st, Event::Spawned { pid }, at(t));
        st
    }

    fn ctl(st: &mut State, b: u8, t: Millis) -> Vec<Action> {
        step(st, Event::Control(b), at(t)).to_vec()
    }

    fn exited(st: &mut State, pid: u32, t: Millis) -> Vec<Action> {
        step(st, Event::ChildExited { pid, wstatus: 0 }, at(t)).to_vec()
    }

    #[test]
    fn boot_starts_unless_down_file() {
        let mut st = up_state();
        assert_eq!(step(&mut st, Event::Boot, at(0)).to_vec(), vec![Spawn]);
        let mut st = down_state();
        assert!(step(&mut st, Event::Boot, at(0)).to_vec().is_empty());
        assert_eq!(st.status().want, Want::Down);
        assert_eq!(st.status().pid, 0);
    }

    #[test]
    fn spawned_sets_pid_stamp_and_clears_paused() {
        let mut st = up_state();
        st.paused = true;
        step(&mut st, Event::Boot, at(5));
        assert_eq!(
            step(&mut st, Event::Spawned { pid: 42 }, at(5)).to_vec(),
            vec![WriteStatus]
        );
        assert_eq!(st.pid, 42);
        assert!(!st.paused);
        assert_eq!(st.stamp, at(5).tai);
        assert_eq!(st.last_start, Some(5));
    }

    #[test]
    fn quick_exit_waits_for_the_floor_with_a_timer() {
        let mut st = running(42, 0);
        assert_eq!(exited(&mut st, 42, 200), vec![WriteStatus]);
        assert_eq!(st.pid, 0);
        assert_eq!(st.stamp, at(200).tai);
        assert_eq!(st.next_deadline(), Some(1000));
        // Status meanwhile says pid 0, want up: `down N seconds, normally up, want up`.
        assert_eq!(st.status().pid, 0);
        assert_eq!(st.status().want, Want::Up);
        // An early timer does nothing.
        assert!(step(&mut st, Event::Timer, at(999)).to_vec().is_empty());
        assert_eq!(step(&mut st, Event::Timer, at(1000)).to_vec(), vec![Spawn]);
        assert_eq!(st.next_deadline(), None);
    }

    #[test]
    fn long_lived_child_restarts_at_once() {
        let mut st = running(42, 0);
        assert_eq!(exited(&mut st, 42, 3_600_000), vec![WriteStatus, Spawn]);
    }

    #[test]
    fn stray_child_is_ignored() {
        let mut st = running(42, 0);
        assert!(exited(&mut st, 7, 10).is_empty());
        assert_eq!(st.pid, 42);
        let mut st = down_state();
        assert!(exited(&mut st, 0, 10).is_empty());
    }

    #[test]
    fn d_during_floor_wait_cancels_start() {
        let mut st = running(42, 0);
        exited(&mut st, 42, 100);
        assert_eq!(ctl(&mut st, b'd', 200), vec![WriteStatus]);
        assert_eq!(st.next_deadline(), None);
        assert!(step(&mut st, Event::Timer, at(1000)).to_vec().is_empty());
        assert_eq!(st.want, Want::Down);
    }

    #[test]
    fn x_during_floor_wait_cancels_start_and_exits() {
        let mut st = running(42, 0);
        exited(&mut st, 42, 100);
        assert_eq!(ctl(&mut st, b'x', 200), vec![WriteStatus, Exit]);
        assert_eq!(st.next_deadline(), None);
        // want keeps its value (REFERENCE.md §4).
        assert_eq!(st.want, Want::Up);
    }

    #[test]
    fn u_during_floor_wait_keeps_the_timer() {
        let mut st = running(42, 0);
        exited(&mut st, 42, 100);
        assert_eq!(ctl(&mut st, b'u', 200), vec![WriteStatus]);
        assert_eq!(st.next_deadline(), Some(1000));
    }

    #[test]
    fn u_after_d_during_floor_restarts_the_floor_wait() {
        let mut st = running(42, 0);
        exited(&mut st, 42, 100);
        ctl(&mut st, b'd', 200);
        assert_eq!(ctl(&mut st, b'u', 300), vec![WriteStatus]);
        assert_eq!(st.next_deadline(), Some(1000));
        assert_eq!(ctl(&mut st, b'u', 1500), vec![WriteStatus]);
        assert_eq!(step(&mut st, Event::Timer, at(1500)).to_vec(), vec![Spawn]);
    }

    #[test]
    fn u_when_down_starts_at_once() {
        let mut st = down_state();
        step(&mut st, Event::Boot, at(0));
        assert_eq!(ctl(&mut st, b'u', 10), vec![WriteStatus, Spawn]);
        assert_eq!(st.want, Want::Up);
    }

    #[test]
    fn u_when_up_only_writes_status() {
        let mut st = running(42, 0);
        assert_eq!(ctl(&mut st, b'u', 10), vec![WriteStatus]);
    }

    #[test]
    fn d_sends_term_then_cont_and_clears_paused() {
        let mut st = running(42, 0);
        ctl(&mut st, b'p', 5);
        assert!(st.paused);
        assert_eq!(
            ctl(&mut st, b'd', 10),
            vec![
                WriteStatus,
                Kill {
                    pid: 42,
                    sig: SIGTERM
                },
                Kill {
                    pid: 42,
                    sig: SIGCONT
                }
            ]
        );
        assert!(!st.paused);
        assert_eq!(st.want, Want::Down);
        // The stamp changes only when the pid does (REFERENCE.md §3).
        assert_eq!(st.stamp, at(0).tai);
    }

    #[test]
    fn down_then_exit_does_not_respawn() {
        let mut st = running(42, 0);
        ctl(&mut st, b'd', 5000);
        assert_eq!(exited(&mut st, 42, 5001), vec![WriteStatus]);
        assert_eq!(st.next_deadline(), None);
    }

    #[test]
    fn d_when_down_only_writes_status() {
        let mut st = down_state();
        assert_eq!(ctl(&mut st, b'd', 1), vec![WriteStatus]);
    }

    #[test]
    fn once_runs_and_is_not_restarted() {
        let mut st = down_state();
        assert_eq!(ctl(&mut st, b'o', 1), vec![WriteStatus, Spawn]);
        assert_eq!(st.want, Want::Once);
        step(&mut st, Event::Spawned { pid: 9 }, at(1));
        assert_eq!(exited(&mut st, 9, 5000), vec![WriteStatus]);
        assert_eq!(st.next_deadline(), None);
        assert_eq!(st.status().want, Want::Once);
    }

    #[test]
    fn o_while_running_only_changes_want() {
        let mut st = running(42, 0);
        assert_eq!(ctl(&mut st, b'o', 1), vec![WriteStatus]);
        assert_eq!(exited(&mut st, 42, 5000), vec![WriteStatus]);
    }

    #[test]
    fn o_then_quick_u_keeps_want_once_until_the_floor() {
        // REFERENCE.md §4's check: with s down, `svc -o; sleep 0.2; svc -u` keeps 00 for
        // the first second. The want byte itself follows each command at once here; the
        // floor delays the start, not the byte. (0.76's blocking sleep delays the byte.)
        let mut st = down_state();
        ctl(&mut st, b'o', 0);
        step(&mut st, Event::Spawned { pid: 3 }, at(0));
        exited(&mut st, 3, 100);
        assert_eq!(ctl(&mut st, b'u', 200), vec![WriteStatus]);
        assert_eq!(st.next_deadline(), Some(1000));
    }

    #[test]
    fn pause_and_continue() {
        let mut st = running(42, 0);
        assert_eq!(
            ctl(&mut st, b'p', 1),
            vec![
                WriteStatus,
                Kill {
                    pid: 42,
                    sig: SIGSTOP
                }
            ]
        );
        assert_eq!(svcore::status::pack(&st.status())[16], 1);
        assert_eq!(
            ctl(&mut st, b'c', 2),
            vec![
                WriteStatus,
                Kill {
                    pid: 42,
                    sig: SIGCONT
                }
            ]
        );
        assert!(!st.status().paused);
    }

    #[test]
    fn pause_without_process_writes_status_only_and_is_not_published() {
        let mut st = down_state();
        assert_eq!(ctl(&mut st, b'p', 1), vec![WriteStatus]);
        assert_eq!(
            svcore::status::pack(&st.status())[16],
            0,
            "paused is only published with a pid"
        );
        assert_eq!(ctl(&mut st, b'c', 1), vec![WriteStatus]);
    }

    #[test]
    fn signal_letters_reach_the_child_without_status() {
        for (b, sig) in [
            (b'h', SIGHUP),
            (b'a', SIGALRM),
            (b'i', SIGINT),
            (b't', SIGTERM),
            (b'k', SIGKILL),
            (b'q', SIGQUIT),
            (b'1', SIGUSR1),
            (b'2', SIGUSR2),
            (b'w', SIGWINCH),
        ] {
            let mut st = running(42, 0);
            assert_eq!(
                ctl(&mut st, b, 1),
                vec![Kill { pid: 42, sig }],
                "{}",
                b as char
            );
            assert_eq!(st.want, Want::Up);
            let mut st = down_state();
            assert!(
                ctl(&mut st, b, 1).is_empty(),
                "{} with no process",
                b as char
            );
        }
    }

    #[test]
    fn t_means_restart() {
        let mut st = running(42, 0);
        ctl(&mut st, b't', 2000);
        assert_eq!(exited(&mut st, 42, 2001), vec![WriteStatus, Spawn]);
    }

    #[test]
    fn unknown_bytes_are_ignored() {
        let mut st = running(42, 0);
        let before = st.clone();
        for b in [b'z', 0, 0xff, b'\n', b'U', b'D'] {
            assert!(ctl(&mut st, b, 1).is_empty());
        }
        assert_eq!(st, before);
    }

    #[test]
    fn x_when_down_exits_at_once() {
        let mut st = down_state();
        assert_eq!(ctl(&mut st, b'x', 1), vec![WriteStatus, Exit]);
    }

    #[test]
    fn x_with_process_waits_for_its_death_without_restart() {
        let mut st = running(42, 0);
        assert_eq!(ctl(&mut st, b'x', 1), vec![WriteStatus]);
        assert!(st.exiting);
        assert!(ctl(&mut st, b'u', 2).contains(&WriteStatus));
        assert_eq!(exited(&mut st, 42, 5000), vec![WriteStatus, Exit]);
    }

    #[test]
    fn dx_stops_then_exits() {
        let mut st = running(42, 0);
        ctl(&mut st, b'd', 1);
        assert_eq!(ctl(&mut st, b'x', 1), vec![WriteStatus]);
        assert_eq!(exited(&mut st, 42, 2), vec![WriteStatus, Exit]);
        assert_eq!(st.status().want, Want::Down);
    }

    #[test]
    fn fork_failure_retries_after_sixty_seconds() {
        let mut st = up_state();
        step(&mut st, Event::Boot, at(0));
        assert!(step(&mut st, Event::SpawnFailed, at(0)).to_vec().is_empty());
        assert_eq!(st.next_deadline(), Some(60_000));
        assert!(step(&mut st, Event::Timer, at(59_999)).to_vec().is_empty());
        assert_eq!(
            step(&mut st, Event::Timer, at(60_000)).to_vec(),
            vec![Spawn]
        );
    }

    #[test]
    fn u_during_fork_retry_tries_again_now() {
        let mut st = up_state();
        step(&mut st, Event::Boot, at(0));
        step(&mut st, Event::SpawnFailed, at(0));
        assert_eq!(ctl(&mut st, b'u', 10), vec![WriteStatus, Spawn]);
    }

    #[test]
    fn d_during_fork_retry_cancels_it() {
        let mut st = up_state();
        step(&mut st, Event::Boot, at(0));
        step(&mut st, Event::SpawnFailed, at(0));
        ctl(&mut st, b'd', 10);
        assert_eq!(st.next_deadline(), None);
    }

    #[test]
    fn exec_failure_loop_is_one_start_per_second() {
        // An exec failure is an ordinary quick death (the child exits 111).
        let mut st = running(10, 0);
        let mut starts = vec![0];
        let mut pid = 10;
        let mut t = 0;
        while starts.len() < 5 {
            t += 1;
            exited(&mut st, pid, t);
            t = st.next_deadline().unwrap();
            assert_eq!(step(&mut st, Event::Timer, at(t)).to_vec(), vec![Spawn]);
            pid += 1;
            step(&mut st, Event::Spawned { pid }, at(t));
            starts.push(t);
        }
        for w in starts.windows(2) {
            assert_eq!(w[1] - w[0], 1000);
        }
    }

    #[test]
    fn timer_with_nothing_pending_does_nothing() {
        let mut st = running(42, 0);
        assert!(step(&mut st, Event::Timer, at(99_999)).to_vec().is_empty());
    }
}
