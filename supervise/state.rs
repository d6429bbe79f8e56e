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
//!
//! The features of issue 6 are all driven by [`Config`], whose default is exactly 0.76:
//! `down-signal` and `timeout-kill` (s6, REFERENCE.md §11.4), `./finish` with s6's
//! arguments (§11.1), readiness through `notification-fd` (§11.2), exponential backoff
//! with reset (§12.2), exit codes that mean "do not restart", process-group and cgroup
//! kill (§12.7), readiness by a polled `check` program or a NOTIFY_SOCKET (§12.5), and
//! health probes that restart the service after N failures. With the default config, the
//! actions for every event are those of 0.76 (plus event-fifodir notifications, which
//! only readers that ask for them see).
//!
//! Helper children (the check and the probe, [`Aux`]) are timers plus a pid each
//! ([`AuxState`]): a timer starts one ([`Action::SpawnAux`]), its reap is its result, and
//! an overrun is a KILL to its process group. Their results only count for the run they
//! were started for.

use std::collections::VecDeque;
use svcore::control::Command;
use svcore::sidecar::{Death, Ext, Phase};
use svcore::status::{Status, Want};
use svcore::tai64n::Tai64n;

/// Milliseconds on a monotonic clock (the loop's, or a test's).
pub type Millis = u64;

/// Signal numbers used by the state machine (libc's, so the loop can pass them on).
pub use libc::{SIGALRM, SIGCONT, SIGHUP, SIGINT, SIGKILL, SIGQUIT, SIGSTOP, SIGTERM};
pub use libc::{SIGUSR1, SIGUSR2, SIGWINCH};

/// s6's convention: a `./finish` exiting 125 means "permanent failure, do not restart"
/// (REFERENCE.md §11.1).
pub const FINISH_PERMANENT_FAILURE: i32 = 125;

/// The current time, both clocks: monotonic for timers, TAI64N for status stamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// Monotonic milliseconds.
    pub mono: Millis,
    /// Wall clock, daemontools convention.
    pub tai: Tai64n,
}

/// Exponential restart delays (REFERENCE.md §12.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay after the first quick death, ms (measured from the death).
    pub initial_ms: Millis,
    /// Cap on the delay, ms.
    pub max_ms: Millis,
    /// Multiplier per consecutive quick death (at least 1).
    pub factor: u32,
    /// A run that stayed up this long (ms) resets the delay to `initial_ms`.
    pub reset_after_ms: Millis,
}

/// A set of exit codes 0..=255 (a 256-bit mask, so [`Config`] stays `Copy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExitSet([u64; 4]);

impl ExitSet {
    /// Adds `code`.
    pub fn insert(&mut self, code: u8) {
        self.0[usize::from(code / 64)] |= 1 << (code % 64);
    }

    /// True if `code` is in the set.
    pub fn contains(&self, code: u8) -> bool {
        self.0[usize::from(code / 64)] & (1 << (code % 64)) != 0
    }
}

/// Readiness by polling a `check` program (`[readiness]` in service.toml).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckCfg {
    /// Delay between the end of a failed attempt and the next, ms.
    pub interval_ms: Millis,
    /// An attempt running longer is killed (and is a "not yet").
    pub timeout_ms: Millis,
}

/// The health probe (`[health]` in service.toml).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthCfg {
    /// Delay between the end of a probe and the next, ms.
    pub interval_ms: Millis,
    /// A probe running longer is killed and counts as a failure.
    pub timeout_ms: Millis,
    /// Consecutive failures that restart the service.
    pub failures: u32,
    /// Delay after the start (or readiness, when configured) before the first probe.
    pub grace_ms: Millis,
}

/// A helper child of supervise that is not `./run` or `./finish`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aux {
    /// The readiness `check` program.
    Check,
    /// The health probe.
    Probe,
}

/// Per-service settings. [`Config::default`] is exactly daemontools 0.76.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Minimum milliseconds between two starts, start to start (REFERENCE.md §4).
    pub floor_ms: Millis,
    /// Milliseconds to wait before retrying after a failed fork (0.76 sleeps 60 s).
    pub fork_retry_ms: Millis,
    /// The signal `d` sends before CONT (s6's `down-signal`; 0.76: TERM).
    pub down_signal: i32,
    /// KILL this long after `d` if run is still alive (s6's `timeout-kill`; 0.76: never).
    pub timeout_kill_ms: Option<Millis>,
    /// KILL `./finish` after this long (s6's `timeout-finish`, default 5000; `None`
    /// waits for ever, s6's 0).
    pub timeout_finish_ms: Option<Millis>,
    /// s6's `notification-fd`: the fd run writes a newline to when ready.
    pub notify_fd: Option<i32>,
    /// Start run under setsid and signal its whole process group.
    pub process_group: bool,
    /// Exponential backoff; `None` is the plain 1-second floor.
    pub backoff: Option<Backoff>,
    /// Exit codes of run that mean "do not restart".
    pub no_restart: ExitSet,
    /// Length of the death history (s6's `max-death-tally`).
    pub max_death_tally: usize,
    /// Poll a check program for readiness.
    pub check: Option<CheckCfg>,
    /// Probe the running service's health.
    pub health: Option<HealthCfg>,
    /// Readiness through a NOTIFY_SOCKET (sd_notify's `READY=1`).
    pub notify_socket: bool,
    /// One cgroup v2 per service (the loop owns it; the state only needs to know).
    pub cgroup: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            floor_ms: svcore::svdir::RESTART_FLOOR_SECS * 1000,
            fork_retry_ms: 60_000,
            down_signal: SIGTERM,
            timeout_kill_ms: None,
            timeout_finish_ms: Some(5000),
            notify_fd: None,
            process_group: false,
            backoff: None,
            no_restart: ExitSet::default(),
            max_death_tally: svcore::sidecar::DEFAULT_DEATH_TALLY,
            check: None,
            health: None,
            notify_socket: false,
            cgroup: false,
        }
    }
}

impl Config {
    /// True when "up" is not enough and run must report (or be found) ready.
    pub fn readiness(&self) -> bool {
        self.notify_fd.is_some() || self.notify_socket || self.check.is_some()
    }
}

/// A running helper child (check or probe): its pid, the run it is about, and when it
/// is killed for overrunning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuxRun {
    /// Its pid.
    pub pid: u32,
    /// The pid of the run it examines (its result is ignored once that run is gone).
    pub for_pid: u32,
    /// When to KILL it.
    pub kill_at: Millis,
}

/// The state of one kind of helper child.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AuxState {
    /// When to start the next one.
    pub next_at: Option<Millis>,
    /// The one running, if any.
    pub running: Option<AuxRun>,
}

/// Why a start is pending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PendingStart {
    /// Waiting for the 1-second floor since the last start, or a backoff delay.
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
    /// pid of `./finish` while it runs, else 0.
    pub finish_pid: u32,
    /// When to KILL a run that ignores the down signal (`timeout-kill`).
    pub kill_at: Option<Millis>,
    /// When to KILL a `./finish` that overruns (`timeout-finish`).
    pub finish_kill_at: Option<Millis>,
    /// Run reported readiness (cleared when it dies).
    pub ready: bool,
    /// When readiness was last reported.
    pub ready_stamp: Option<Tai64n>,
    /// Control bytes handled (acknowledged control, REFERENCE.md §12.6).
    pub commands: u64,
    /// Starts of run.
    pub starts: u64,
    /// Deaths of run.
    pub deaths: u64,
    /// The last deaths, oldest first, at most `max_death_tally`.
    pub history: VecDeque<Death>,
    /// Consecutive quick deaths (for backoff).
    pub failures: u32,
    /// Delay of the current or last planned restart, ms.
    pub backoff_ms: Millis,
    /// The planned restart as a wall-clock stamp (for the sidecar).
    pub next_start: Option<Tai64n>,
    /// Gave up: a do-not-restart exit code, or finish exited 125.
    pub failed: bool,
    /// `u` or `o` arrived while `./finish` ran: start run when finish is done.
    pub start_after_finish: bool,
    /// The readiness check program.
    pub check: AuxState,
    /// The health probe.
    pub probe: AuxState,
    /// Result of the last probe of the current run (`None`: none yet).
    pub health: Option<bool>,
    /// Consecutive failed probes of the current run.
    pub health_failures: u32,
    /// End of the last probe.
    pub health_stamp: Option<Tai64n>,
    /// Restarts caused by failed probes.
    pub health_restarts: u64,
    /// Last `STATUS=` from the notify socket for the current run (published only; the
    /// loop sets it, nothing decides on it).
    pub status_text: Option<String>,
    /// Last `MAINPID=` from the notify socket for the current run (published only).
    pub main_pid: u32,
    /// Why the last probe failed (published only; the loop sets it from the probe's
    /// stderr when it reaps it, and clears it when a probe passes).
    pub health_message: Option<String>,
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
    /// The loop forked `./finish` (after [`Action::SpawnFinish`]).
    FinishSpawned {
        /// Its pid.
        pid: u32,
    },
    /// There is no `./finish`, or its fork failed: carry on as if it had exited 0.
    FinishSkipped,
    /// `waitpid` returned this child.
    ChildExited {
        /// Its pid (may be a stray child that is not ours to care about).
        pid: u32,
        /// The raw wait status.
        wstatus: i32,
    },
    /// Run wrote a newline on its notification fd.
    Ready {
        /// The run it came from (a late report from a dead run is ignored).
        pid: u32,
    },
    /// The deadline from [`State::next_deadline`] has passed.
    Timer,
    /// The loop forked a helper child (after [`Action::SpawnAux`]).
    AuxSpawned {
        /// Which.
        aux: Aux,
        /// Its pid.
        pid: u32,
    },
    /// A helper child could not be started (the loop printed why).
    AuxFailed {
        /// Which.
        aux: Aux,
    },
}

/// Something for the loop to do, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Fork and exec `./run`, then feed back [`Event::Spawned`] or
    /// [`Event::SpawnFailed`].
    Spawn,
    /// Fork and exec `./finish EXITCODE SIGNAL NAME` (s6's arguments), then feed back
    /// [`Event::FinishSpawned`] or [`Event::FinishSkipped`].
    SpawnFinish {
        /// run's wait status, from which the arguments are made.
        wstatus: i32,
    },
    /// `kill(pid, sig)`, errors ignored (as 0.76). A negative pid is a process group.
    Kill {
        /// Target pid (negative: process group).
        pid: i32,
        /// Signal number.
        sig: i32,
    },
    /// Rewrite `supervise/status` from [`State::status`].
    WriteStatus,
    /// Rewrite `supervise/deaths` from [`State::history`].
    WriteDeaths,
    /// Write one byte to every FIFO in `event/` (s6's fifodir, REFERENCE.md §11.5).
    Notify(u8),
    /// Kill everything left in the service's cgroup (`cgroup.kill`), when it has one.
    KillCgroup,
    /// Fork a helper child (check or probe) under setsid, then feed back
    /// [`Event::AuxSpawned`] or [`Event::AuxFailed`].
    SpawnAux(Aux),
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
    /// The most actions one step produces, with room to spare.
    pub const CAP: usize = 12;

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

    /// The actions in order.
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
            finish_pid: 0,
            kill_at: None,
            finish_kill_at: None,
            ready: false,
            ready_stamp: None,
            commands: 0,
            starts: 0,
            deaths: 0,
            history: VecDeque::new(),
            failures: 0,
            backoff_ms: 0,
            next_start: None,
            failed: false,
            start_after_finish: false,
            check: AuxState::default(),
            probe: AuxState::default(),
            health: None,
            health_failures: 0,
            health_stamp: None,
            health_restarts: 0,
            status_text: None,
            main_pid: 0,
            health_message: None,
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

    /// The `state` word of the sidecar.
    pub fn phase(&self) -> Phase {
        if self.finish_pid != 0 {
            Phase::Finishing
        } else if self.pid != 0 {
            if self.ready {
                Phase::Ready
            } else if self.config.readiness() {
                Phase::Starting
            } else {
                Phase::Up
            }
        } else if self.failed {
            Phase::Failed
        } else if self.start_at.is_some() {
            match self.config.backoff {
                Some(b) if self.failures > 0 && self.backoff_ms >= b.max_ms => Phase::Failing,
                _ => Phase::Backoff,
            }
        } else {
            Phase::Down
        }
    }

    /// The sidecar record (`supervise/status.ext`) for this state.
    pub fn ext(&self, supervisor: u32) -> Ext {
        Ext {
            supervisor,
            commands: self.commands,
            phase: self.phase(),
            pid: self.pid,
            finish_pid: self.finish_pid,
            want: match self.want {
                Want::Up => b'u',
                Want::Down => b'd',
                Want::Once => b'o',
            },
            paused: self.paused && self.pid != 0,
            exiting: self.exiting,
            stamp: self.stamp,
            ready: self.ready,
            ready_stamp: self.ready_stamp,
            starts: self.starts,
            deaths: self.deaths,
            last_exit: self.history.back().map(|d| d.wstatus),
            last_exit_stamp: self.history.back().map(|d| d.stamp),
            next_start: if self.start_at.is_some() {
                self.next_start
            } else {
                None
            },
            backoff_ms: self.backoff_ms,
            health: self.health,
            health_failures: self.health_failures,
            health_stamp: self.health_stamp,
            health_restarts: self.health_restarts,
            status_text: self.status_text.clone(),
            main_pid: self.main_pid,
            health_message: self.health_message.clone(),
        }
    }

    /// When the loop must wake up next with [`Event::Timer`]; `None` means sleep until a
    /// signal or a control byte (an idle supervise makes no wakeups).
    pub fn next_deadline(&self) -> Option<Millis> {
        [
            self.start_at.map(|(at, _)| at),
            self.kill_at,
            self.finish_kill_at,
            self.check.next_at,
            self.check.running.map(|r| r.kill_at),
            self.probe.next_at,
            self.probe.running.map(|r| r.kill_at),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The target of a signal to run: its pid, or its process group.
    fn target(&self) -> i32 {
        if self.config.process_group {
            -(self.pid as i32)
        } else {
            self.pid as i32
        }
    }

    /// Plans a start at `at` (or at once), remembering the wall-clock time for the
    /// sidecar.
    fn plan_start(&mut self, at: Millis, now: Now, out: &mut Actions) {
        if at <= now.mono {
            self.start_at = None;
            self.next_start = None;
            out.push(Action::Spawn);
        } else {
            self.start_at = Some((at, PendingStart::Floor));
            let ahead = at - now.mono;
            let t = now.tai;
            let nanos = u64::from(t.nanos) + (ahead % 1000) * 1_000_000;
            self.next_start = Some(Tai64n {
                secs: t.secs + ahead / 1000 + nanos / 1_000_000_000,
                nanos: (nanos % 1_000_000_000) as u32,
            });
        }
    }

    /// Asks for `./run` to be started: at once if the floor allows, else at
    /// `last_start + floor` through the timer. A pending floor wait is kept; a pending
    /// fork retry is replaced (an explicit `u`/`o` is a reason to try again now).
    /// Nothing starts while `./finish` runs; its end calls this again.
    fn request_start(&mut self, now: Now, out: &mut Actions) {
        if self.pid != 0 {
            return;
        }
        if self.finish_pid != 0 {
            // Remembered: `o` (or `u`) during finish starts run once finish is done.
            self.start_after_finish = true;
            return;
        }
        if let Some((_, PendingStart::Floor)) = self.start_at {
            return;
        }
        self.failed = false;
        let at = self
            .last_start
            .map_or(now.mono, |t| t.saturating_add(self.config.floor_ms));
        self.plan_start(at, now, out);
    }

    /// Run is ready (notification fd, socket or check): set the flag and stamp, emit
    /// `U`, and start the health grace period. Only once per run.
    fn become_ready(&mut self, now: Now, out: &mut Actions) {
        if self.ready || self.pid == 0 {
            return;
        }
        self.ready = true;
        self.ready_stamp = Some(now.tai);
        self.check.next_at = None;
        out.push(Action::Notify(b'U'));
        self.schedule_first_probe(now);
    }

    /// Plans the first health probe of this run, `grace` from now.
    fn schedule_first_probe(&mut self, now: Now) {
        if let Some(h) = self.config.health {
            self.probe.next_at = Some(now.mono.saturating_add(h.grace_ms));
        }
    }

    /// KILLs a helper child (its whole group: it runs under setsid) and forgets its
    /// schedule; its result, when reaped, is ignored.
    fn stop_aux(which: &mut AuxState, out: &mut Actions) {
        which.next_at = None;
        if let Some(r) = which.running.as_mut() {
            // Mark it as belonging to no run, so its exit is ignored.
            r.for_pid = 0;
            out.push(Action::Kill {
                pid: -(r.pid as i32),
                sig: SIGKILL,
            });
        }
    }

    /// After run's death (and finish, if any): restart, exit, or stay down.
    fn after_death(&mut self, wstatus: i32, finish_code: Option<i32>, now: Now, out: &mut Actions) {
        if self.exiting {
            out.push(Action::Notify(b'x'));
            out.push(Action::Exit);
            return;
        }
        // A `u` or `o` that arrived while finish ran is a fresh request, made after the
        // death: it wins over "once" and over a permanent failure.
        let requested = std::mem::take(&mut self.start_after_finish);
        if requested && self.want == Want::Once {
            self.failed = false;
            let at = self
                .last_start
                .map_or(now.mono, |t| t.saturating_add(self.config.floor_ms));
            self.plan_start(at, now, out);
            return;
        }
        let code = svcore::proc::exit_code(wstatus);
        let permanent = !requested
            && (finish_code == Some(FINISH_PERMANENT_FAILURE)
                || code.is_some_and(|c| self.config.no_restart.contains(c as u8)));
        if permanent && self.want == Want::Up {
            // Like s6's permanent failure: stop wanting it up, say so, and emit O.
            self.failed = true;
            self.want = Want::Down;
            out.push(Action::WriteStatus);
            out.push(Action::Notify(b'O'));
            return;
        }
        if self.want != Want::Up {
            return;
        }
        let floor_at = self
            .last_start
            .map_or(now.mono, |t| t.saturating_add(self.config.floor_ms));
        let at = match self.config.backoff {
            None => {
                self.backoff_ms = floor_at.saturating_sub(now.mono);
                floor_at
            }
            Some(b) => {
                let uptime = self.last_start.map_or(0, |t| now.mono.saturating_sub(t));
                if uptime >= b.reset_after_ms {
                    self.failures = 0;
                }
                let mut delay = b.initial_ms;
                for _ in 0..self.failures {
                    delay = delay.saturating_mul(u64::from(b.factor.max(1)));
                    if delay >= b.max_ms {
                        break;
                    }
                }
                delay = delay.min(b.max_ms);
                self.failures = self.failures.saturating_add(1);
                self.backoff_ms = delay;
                floor_at.max(now.mono.saturating_add(delay))
            }
        };
        self.plan_start(at, now, out);
    }
}

/// The transition function. Mutates `st` and returns what the loop must do.
pub fn step(st: &mut State, ev: Event, now: Now) -> Actions {
    let mut out = Actions::new();
    match ev {
        Event::Boot => {
            out.push(Action::Notify(b's'));
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
            st.next_start = None;
            st.ready = false;
            st.starts += 1;
            st.health = None;
            st.health_failures = 0;
            st.status_text = None;
            st.main_pid = 0;
            if st.config.check.is_some() {
                // The first check runs at once (through the timer); later ones after
                // check-interval.
                st.check.next_at = Some(now.mono);
            }
            if !st.config.readiness() {
                st.schedule_first_probe(now);
            }
            out.push(Action::WriteStatus);
            out.push(Action::Notify(b'u'));
        }
        Event::SpawnFailed => {
            // 0.76 sleeps 60 s and then only retries on the next u/o; we retry by timer,
            // and keep serving the control FIFO meanwhile (REFERENCE.md §4).
            st.start_at = Some((
                now.mono.saturating_add(st.config.fork_retry_ms),
                PendingStart::ForkRetry,
            ));
        }
        Event::FinishSpawned { pid } => {
            st.finish_pid = pid;
            st.finish_kill_at = st
                .config
                .timeout_finish_ms
                .map(|t| now.mono.saturating_add(t));
        }
        Event::FinishSkipped => {
            let w = st.history.back().map_or(0, |d| d.wstatus);
            out.push(Action::Notify(b'D'));
            st.after_death(w, None, now, &mut out);
        }
        Event::ChildExited { pid, wstatus } => {
            if pid != 0 && pid == st.pid {
                run_died(st, wstatus, now, &mut out);
            } else if pid != 0 && st.check.running.is_some_and(|r| r.pid == pid) {
                check_done(st, pid, wstatus, now, &mut out);
            } else if pid != 0 && st.probe.running.is_some_and(|r| r.pid == pid) {
                probe_done(st, pid, wstatus, now, &mut out);
            } else if pid != 0 && pid == st.finish_pid {
                st.finish_pid = 0;
                st.finish_kill_at = None;
                let w = st.history.back().map_or(0, |d| d.wstatus);
                out.push(Action::Notify(b'D'));
                st.after_death(w, svcore::proc::exit_code(wstatus), now, &mut out);
            }
            // Any other pid is not ours to care about (0.76 ignores every pid but its own).
        }
        Event::Ready { pid } => {
            if pid != 0 && pid == st.pid {
                st.become_ready(now, &mut out);
            }
        }
        Event::Timer => timer(st, now, &mut out),
        Event::AuxSpawned { aux, pid } => {
            let (timeout, a) = match aux {
                Aux::Check => (st.config.check.map_or(0, |c| c.timeout_ms), &mut st.check),
                Aux::Probe => (st.config.health.map_or(0, |h| h.timeout_ms), &mut st.probe),
            };
            a.running = Some(AuxRun {
                pid,
                for_pid: st.pid,
                kill_at: now.mono.saturating_add(timeout),
            });
        }
        Event::AuxFailed { aux } => {
            // Try again after the interval, as after a failed attempt.
            match aux {
                Aux::Check => {
                    st.check.next_at = st
                        .config
                        .check
                        .map(|c| now.mono.saturating_add(c.interval_ms));
                }
                Aux::Probe => {
                    st.probe.next_at = st
                        .config
                        .health
                        .map(|h| now.mono.saturating_add(h.interval_ms));
                }
            }
        }
        Event::Control(b) => {
            st.commands += 1;
            control(st, b, now, &mut out);
        }
    }
    out
}

/// Run's death: pid 0, stamp, status (0.76), history; then finish or the restart rule.
fn run_died(st: &mut State, wstatus: i32, now: Now, out: &mut Actions) {
    let pid = st.pid;
    st.pid = 0;
    st.stamp = now.tai;
    st.ready = false;
    st.kill_at = None;
    st.deaths += 1;
    State::stop_aux(&mut st.check, out);
    State::stop_aux(&mut st.probe, out);
    st.health = None;
    st.health_failures = 0;
    if st.config.max_death_tally > 0 {
        while st.history.len() >= st.config.max_death_tally {
            st.history.pop_front();
        }
        st.history.push_back(Death {
            stamp: now.tai,
            pid,
            wstatus,
        });
    }
    if st.config.cgroup {
        // run is gone: whatever it left behind in its cgroup goes with it, so a
        // restart or a stop leaves no stray grandchild (REFERENCE.md §12.7). Before
        // finish, which does not run in the cgroup.
        out.push(Action::KillCgroup);
    }
    out.push(Action::WriteStatus);
    out.push(Action::WriteDeaths);
    out.push(Action::Notify(b'd'));
    // ./finish runs after every death (the loop skips it when there is no file). 0.76
    // has no finish, and a missing file leads straight to the restart rule below.
    out.push(Action::SpawnFinish { wstatus });
}

/// The readiness check exited: exit 0 means ready; anything else, try again later.
fn check_done(st: &mut State, pid: u32, wstatus: i32, now: Now, out: &mut Actions) {
    let for_pid = st.check.running.map_or(0, |r| r.for_pid);
    let _ = pid;
    st.check.running = None;
    if for_pid == 0 || for_pid != st.pid || st.ready {
        return;
    }
    if svcore::proc::exit_code(wstatus) == Some(0) {
        st.become_ready(now, out);
    } else if let Some(c) = st.config.check {
        st.check.next_at = Some(now.mono.saturating_add(c.interval_ms));
    }
}

/// The health probe exited: exit 0 is healthy. After `failures` consecutive failures,
/// restart run the way `svc -t` would, with the down signal (want stays up).
fn probe_done(st: &mut State, pid: u32, wstatus: i32, now: Now, out: &mut Actions) {
    let for_pid = st.probe.running.map_or(0, |r| r.for_pid);
    let _ = pid;
    st.probe.running = None;
    if for_pid == 0 || for_pid != st.pid {
        return;
    }
    let Some(h) = st.config.health else {
        return;
    };
    st.health_stamp = Some(now.tai);
    if svcore::proc::exit_code(wstatus) == Some(0) {
        st.health = Some(true);
        st.health_failures = 0;
    } else {
        st.health = Some(false);
        st.health_failures = st.health_failures.saturating_add(1);
    }
    if st.health_failures >= h.failures && st.want == Want::Up && st.kill_at.is_none() {
        st.health_restarts += 1;
        out.push(Action::Kill {
            pid: st.target(),
            sig: st.config.down_signal,
        });
        out.push(Action::Kill {
            pid: st.target(),
            sig: SIGCONT,
        });
        if let Some(t) = st.config.timeout_kill_ms {
            st.kill_at = Some(now.mono.saturating_add(t));
        }
        return;
    }
    st.probe.next_at = Some(now.mono.saturating_add(h.interval_ms));
}

fn timer(st: &mut State, now: Now, out: &mut Actions) {
    if st.kill_at.is_some_and(|at| at <= now.mono) {
        st.kill_at = None;
        if st.pid != 0 {
            // timeout-kill: the down signal was ignored (s6, REFERENCE.md §11.4).
            out.push(Action::Kill {
                pid: st.target(),
                sig: SIGKILL,
            });
            if st.config.cgroup {
                out.push(Action::KillCgroup);
            }
        }
    }
    if st.finish_kill_at.is_some_and(|at| at <= now.mono) {
        st.finish_kill_at = None;
        if st.finish_pid != 0 {
            out.push(Action::Kill {
                pid: st.finish_pid as i32,
                sig: SIGKILL,
            });
        }
    }
    for aux in [Aux::Check, Aux::Probe] {
        let a = match aux {
            Aux::Check => &mut st.check,
            Aux::Probe => &mut st.probe,
        };
        if let Some(r) = a.running {
            if r.kill_at <= now.mono {
                // Overran its timeout: KILL its group; the reap counts it as a failure.
                // Pushed out so it is not killed again while the reap is pending.
                a.running = Some(AuxRun {
                    kill_at: Millis::MAX,
                    ..r
                });
                out.push(Action::Kill {
                    pid: -(r.pid as i32),
                    sig: SIGKILL,
                });
            }
        }
    }
    if st.check.next_at.is_some_and(|at| at <= now.mono) {
        st.check.next_at = None;
        if st.pid != 0 && !st.ready && st.check.running.is_none() && st.config.check.is_some() {
            out.push(Action::SpawnAux(Aux::Check));
        }
    }
    if st.probe.next_at.is_some_and(|at| at <= now.mono) {
        st.probe.next_at = None;
        if st.paused && st.pid != 0 {
            // A stopped service cannot answer; probing it would restart it. Look again
            // after the interval.
            st.probe.next_at = st
                .config
                .health
                .map(|h| now.mono.saturating_add(h.interval_ms));
        } else if st.pid != 0
            && st.want == Want::Up
            && st.kill_at.is_none()
            && st.probe.running.is_none()
            && st.config.health.is_some()
        {
            out.push(Action::SpawnAux(Aux::Probe));
        }
    }
    if let Some((at, _)) = st.start_at {
        if at <= now.mono {
            st.start_at = None;
            st.next_start = None;
            if st.pid == 0 && st.finish_pid == 0 && !st.exiting && st.want != Want::Down {
                out.push(Action::Spawn);
            }
        }
    }
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
            st.start_after_finish = false;
            // Our rule (REFERENCE.md §4): d cancels a start waiting for the floor.
            st.start_at = None;
            st.next_start = None;
            if st.pid != 0 {
                // 0.76 kills first, then announces; the status file is the same either way.
                st.paused = false;
                out.push(Action::WriteStatus);
                out.push(Action::Kill {
                    pid: st.target(),
                    sig: st.config.down_signal,
                });
                // CONT wakes a paused process so it can act on the TERM. No KILL follows
                // unless timeout-kill asks for it (REFERENCE.md §4, §12.7).
                out.push(Action::Kill {
                    pid: st.target(),
                    sig: SIGCONT,
                });
                if let Some(t) = st.config.timeout_kill_ms {
                    st.kill_at = Some(now.mono.saturating_add(t));
                }
            } else {
                out.push(Action::WriteStatus);
            }
        }
        Command::Pause => {
            st.paused = true;
            out.push(Action::WriteStatus);
            signal(st, SIGSTOP, out);
        }
        Command::Continue => {
            st.paused = false;
            out.push(Action::WriteStatus);
            signal(st, SIGCONT, out);
        }
        // Signal-only commands never rewrite status (REFERENCE.md §3). want is
        // unchanged, so t and k mean "restart".
        Command::Hup => signal(st, SIGHUP, out),
        Command::Alarm => signal(st, SIGALRM, out),
        Command::Interrupt => signal(st, SIGINT, out),
        Command::Term => signal(st, SIGTERM, out),
        Command::Kill => signal(st, SIGKILL, out),
        Command::Quit => signal(st, SIGQUIT, out),
        Command::Usr1 => signal(st, SIGUSR1, out),
        Command::Usr2 => signal(st, SIGUSR2, out),
        Command::Winch => signal(st, SIGWINCH, out),
        Command::Exit => {
            st.exiting = true;
            st.start_after_finish = false;
            // Our rule: x cancels a pending start; the want byte keeps its value.
            st.start_at = None;
            st.next_start = None;
            out.push(Action::WriteStatus);
            if st.pid == 0 && st.finish_pid == 0 {
                out.push(Action::Notify(b'x'));
                out.push(Action::Exit);
            }
        }
    }
}

/// Sends `sig` to run (or its group), if there is one.
fn signal(st: &State, sig: i32, out: &mut Actions) {
    if st.pid != 0 {
        out.push(Action::Kill {
            pid: st.target(),
            sig,
        });
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
        assert_eq!(run(&mut st, Event::Boot, t), vec![Spawn]);
        step(&mut st, Event::Spawned { pid }, at(t));
        st
    }

    /// Feeds `ev` and the follow-up events the loop would feed when there is no
    /// `./finish` file; returns every action.
    fn drive(st: &mut State, ev: Event, t: Millis) -> Vec<Action> {
        let mut all = Vec::new();
        let mut queue = vec![ev];
        while let Some(ev) = queue.pop() {
            for a in step(st, ev, at(t)).iter() {
                match a {
                    SpawnFinish { .. } => queue.push(Event::FinishSkipped),
                    a => all.push(a),
                }
            }
        }
        all
    }

    /// The actions 0.76 has (no notifications, no history): what these tests compare.
    fn run(st: &mut State, ev: Event, t: Millis) -> Vec<Action> {
        drive(st, ev, t)
            .into_iter()
            .filter(|a| !matches!(a, Notify(_) | WriteDeaths))
            .collect()
    }

    fn ctl(st: &mut State, b: u8, t: Millis) -> Vec<Action> {
        run(st, Event::Control(b), t)
    }

    fn exited(st: &mut State, pid: u32, t: Millis) -> Vec<Action> {
        run(st, Event::ChildExited { pid, wstatus: 0 }, t)
    }

    #[test]
    fn boot_starts_unless_down_file() {
        let mut st = up_state();
        assert_eq!(run(&mut st, Event::Boot, 0), vec![Spawn]);
        let mut st = down_state();
        assert!(run(&mut st, Event::Boot, 0).is_empty());
        assert_eq!(st.status().want, Want::Down);
        assert_eq!(st.status().pid, 0);
    }

    #[test]
    fn spawned_sets_pid_stamp_and_clears_paused() {
        let mut st = up_state();
        st.paused = true;
        step(&mut st, Event::Boot, at(5));
        assert_eq!(
            run(&mut st, Event::Spawned { pid: 42 }, 5),
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
        assert!(run(&mut st, Event::Timer, 999).is_empty());
        assert_eq!(run(&mut st, Event::Timer, 1000), vec![Spawn]);
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
        assert!(run(&mut st, Event::Timer, 1000).is_empty());
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
        assert_eq!(run(&mut st, Event::Timer, 1500), vec![Spawn]);
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
        // Only the command counter moves: unknown bytes are handled too (acknowledged
        // control counts bytes, REFERENCE.md §12.6).
        assert_eq!(st.commands, before.commands + 6);
        let mut before = before;
        before.commands = st.commands;
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
        assert!(run(&mut st, Event::SpawnFailed, 0).is_empty());
        assert_eq!(st.next_deadline(), Some(60_000));
        assert!(run(&mut st, Event::Timer, 59_999).is_empty());
        assert_eq!(run(&mut st, Event::Timer, 60_000), vec![Spawn]);
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
            assert_eq!(run(&mut st, Event::Timer, t), vec![Spawn]);
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
        assert!(run(&mut st, Event::Timer, 99_999).is_empty());
    }

    // ---- issue 6 features (each off by default) ----

    fn with(config: Config) -> State {
        let mut st = State::new(config, false, at(0));
        assert_eq!(run(&mut st, Event::Boot, 0), vec![Spawn]);
        step(&mut st, Event::Spawned { pid: 42 }, at(0));
        st
    }

    #[test]
    fn notifications_follow_s6_event_letters() {
        let mut st = up_state();
        assert_eq!(drive(&mut st, Event::Boot, 0), vec![Notify(b's'), Spawn]);
        assert_eq!(
            drive(&mut st, Event::Spawned { pid: 5 }, 0),
            vec![WriteStatus, Notify(b'u')]
        );
        assert_eq!(
            drive(&mut st, Event::ChildExited { pid: 5, wstatus: 0 }, 5000),
            vec![WriteStatus, WriteDeaths, Notify(b'd'), Notify(b'D'), Spawn]
        );
        step(&mut st, Event::Spawned { pid: 6 }, at(5000));
        assert_eq!(
            drive(&mut st, Event::Control(b'x'), 5001),
            vec![WriteStatus]
        );
        assert_eq!(
            drive(&mut st, Event::ChildExited { pid: 6, wstatus: 0 }, 5002),
            vec![
                WriteStatus,
                WriteDeaths,
                Notify(b'd'),
                Notify(b'D'),
                Notify(b'x'),
                Exit
            ]
        );
    }

    #[test]
    fn timeout_kill_escalates_after_d() {
        let mut st = with(Config {
            timeout_kill_ms: Some(500),
            ..Config::default()
        });
        ctl(&mut st, b'd', 100);
        assert_eq!(st.next_deadline(), Some(600));
        assert!(run(&mut st, Event::Timer, 599).is_empty());
        assert_eq!(
            run(&mut st, Event::Timer, 600),
            vec![Kill {
                pid: 42,
                sig: SIGKILL
            }]
        );
        assert_eq!(st.next_deadline(), None);
    }

    #[test]
    fn timeout_kill_is_cancelled_by_the_death() {
        let mut st = with(Config {
            timeout_kill_ms: Some(500),
            ..Config::default()
        });
        ctl(&mut st, b'd', 100);
        exited(&mut st, 42, 200);
        assert_eq!(st.next_deadline(), None);
        assert!(run(&mut st, Event::Timer, 600).is_empty());
    }

    #[test]
    fn down_signal_replaces_term() {
        let mut st = with(Config {
            down_signal: SIGHUP,
            ..Config::default()
        });
        assert_eq!(
            ctl(&mut st, b'd', 1),
            vec![
                WriteStatus,
                Kill {
                    pid: 42,
                    sig: SIGHUP
                },
                Kill {
                    pid: 42,
                    sig: SIGCONT
                }
            ]
        );
    }

    #[test]
    fn process_group_signals_the_group() {
        let mut st = with(Config {
            process_group: true,
            ..Config::default()
        });
        assert_eq!(
            ctl(&mut st, b't', 1),
            vec![Kill {
                pid: -42,
                sig: SIGTERM
            }]
        );
    }

    #[test]
    fn finish_runs_after_run_and_delays_the_restart() {
        let mut st = with(Config::default());
        let w = 3 << 8;
        assert_eq!(
            step(
                &mut st,
                Event::ChildExited {
                    pid: 42,
                    wstatus: w
                },
                at(5000)
            )
            .to_vec(),
            vec![
                WriteStatus,
                WriteDeaths,
                Notify(b'd'),
                SpawnFinish { wstatus: w }
            ]
        );
        assert!(
            step(&mut st, Event::FinishSpawned { pid: 50 }, at(5000))
                .to_vec()
                .is_empty()
        );
        assert_eq!(st.phase(), Phase::Finishing);
        assert_eq!(st.status().pid, 0, "status shows run's death, not finish");
        // u during finish does not start run.
        assert_eq!(ctl(&mut st, b'u', 5001), vec![WriteStatus]);
        assert_eq!(
            step(
                &mut st,
                Event::ChildExited {
                    pid: 50,
                    wstatus: 0
                },
                at(5002)
            )
            .to_vec(),
            vec![Notify(b'D'), Spawn]
        );
        assert_eq!(st.finish_pid, 0);
    }

    #[test]
    fn finish_timeout_kills_finish() {
        let mut st = with(Config::default());
        step(
            &mut st,
            Event::ChildExited {
                pid: 42,
                wstatus: 0,
            },
            at(5000),
        );
        step(&mut st, Event::FinishSpawned { pid: 50 }, at(5000));
        assert_eq!(st.next_deadline(), Some(10_000));
        assert_eq!(
            run(&mut st, Event::Timer, 10_000),
            vec![Kill {
                pid: 50,
                sig: SIGKILL
            }]
        );
    }

    #[test]
    fn finish_exit_125_is_a_permanent_failure() {
        let mut st = with(Config::default());
        step(
            &mut st,
            Event::ChildExited {
                pid: 42,
                wstatus: 0,
            },
            at(5000),
        );
        step(&mut st, Event::FinishSpawned { pid: 50 }, at(5000));
        assert_eq!(
            step(
                &mut st,
                Event::ChildExited {
                    pid: 50,
                    wstatus: 125 << 8
                },
                at(5001)
            )
            .to_vec(),
            vec![Notify(b'D'), WriteStatus, Notify(b'O')]
        );
        assert_eq!(st.phase(), Phase::Failed);
        assert_eq!(st.want, Want::Down);
        assert_eq!(st.next_deadline(), None);
        // u clears the failure and starts again.
        assert_eq!(ctl(&mut st, b'u', 6000), vec![WriteStatus, Spawn]);
        assert!(!st.failed);
    }

    #[test]
    fn x_during_finish_exits_after_it() {
        let mut st = with(Config::default());
        step(
            &mut st,
            Event::ChildExited {
                pid: 42,
                wstatus: 0,
            },
            at(5000),
        );
        step(&mut st, Event::FinishSpawned { pid: 50 }, at(5000));
        assert_eq!(ctl(&mut st, b'x', 5001), vec![WriteStatus]);
        assert_eq!(
            run(
                &mut st,
                Event::ChildExited {
                    pid: 50,
                    wstatus: 0
                },
                5002
            ),
            vec![Exit]
        );
    }

    #[test]
    fn no_restart_exit_code_stops_the_service() {
        let mut no = ExitSet::default();
        no.insert(100);
        let mut st = with(Config {
            no_restart: no,
            ..Config::default()
        });
        assert_eq!(
            run(
                &mut st,
                Event::ChildExited {
                    pid: 42,
                    wstatus: 100 << 8
                },
                5000
            ),
            vec![WriteStatus, WriteStatus]
        );
        assert_eq!(st.phase(), Phase::Failed);
        assert_eq!(st.status().want, Want::Down);
        // Another exit code restarts as usual.
        let mut st = with(Config {
            no_restart: no,
            ..Config::default()
        });
        assert_eq!(
            run(
                &mut st,
                Event::ChildExited {
                    pid: 42,
                    wstatus: 1 << 8
                },
                5000
            ),
            vec![WriteStatus, Spawn]
        );
    }

    #[test]
    fn readiness_sets_ready_and_emits_u_once() {
        let mut st = with(Config {
            notify_fd: Some(3),
            ..Config::default()
        });
        assert_eq!(st.phase(), Phase::Starting);
        assert!(
            drive(&mut st, Event::Ready { pid: 7 }, 10).is_empty(),
            "stale run"
        );
        assert_eq!(
            drive(&mut st, Event::Ready { pid: 42 }, 10),
            vec![Notify(b'U')]
        );
        assert_eq!(st.phase(), Phase::Ready);
        assert_eq!(st.ready_stamp, Some(at(10).tai));
        assert!(drive(&mut st, Event::Ready { pid: 42 }, 11).is_empty());
        exited(&mut st, 42, 5000);
        assert!(!st.ready);
    }

    #[test]
    fn backoff_grows_caps_and_resets_after_a_healthy_run() {
        let b = Backoff {
            initial_ms: 1000,
            max_ms: 4000,
            factor: 2,
            reset_after_ms: 10_000,
        };
        let mut st = with(Config {
            backoff: Some(b),
            ..Config::default()
        });
        let mut t = 0;
        let mut delays = Vec::new();
        let mut pid = 42;
        for _ in 0..5 {
            t += 100;
            exited(&mut st, pid, t);
            let at_ = st.next_deadline().unwrap();
            delays.push(at_ - t);
            assert!(matches!(st.phase(), Phase::Backoff | Phase::Failing));
            t = at_;
            assert_eq!(run(&mut st, Event::Timer, t), vec![Spawn]);
            pid += 1;
            step(&mut st, Event::Spawned { pid }, at(t));
        }
        assert_eq!(delays, vec![1000, 2000, 4000, 4000, 4000]);
        // At the cap the sidecar says failing.
        exited(&mut st, pid, t + 100);
        assert_eq!(st.phase(), Phase::Failing);
        assert!(st.ext(1).next_start.is_some());
        // A run that stays up past reset-after starts over at the initial delay.
        t = st.next_deadline().unwrap();
        run(&mut st, Event::Timer, t);
        pid += 1;
        step(&mut st, Event::Spawned { pid }, at(t));
        exited(&mut st, pid, t + 20_000);
        assert_eq!(st.next_deadline(), Some(t + 21_000));
        assert_eq!(st.phase(), Phase::Backoff);
    }

    #[test]
    fn history_is_bounded_by_max_death_tally() {
        let mut st = with(Config {
            max_death_tally: 3,
            ..Config::default()
        });
        for i in 0..5u64 {
            let t = 10_000 * (i + 1);
            let pid = 42 + i as u32;
            exited(&mut st, pid, t);
            step(&mut st, Event::Spawned { pid: pid + 1 }, at(t));
        }
        assert_eq!(st.history.len(), 3);
        assert_eq!(st.deaths, 5);
        assert_eq!(st.history.back().unwrap().pid, 46);
        assert_eq!(st.ext(1).starts, 6);
        assert_eq!(st.ext(1).restarts(), 5);
    }

    #[test]
    fn commands_count_every_byte() {
        let mut st = with(Config::default());
        for b in b"hz\n" {
            ctl(&mut st, *b, 1);
        }
        assert_eq!(st.ext(1).commands, 3);
    }

    fn check_cfg() -> Config {
        Config {
            check: Some(CheckCfg {
                interval_ms: 100,
                timeout_ms: 1000,
            }),
            ..Config::default()
        }
    }

    fn health_cfg() -> Config {
        Config {
            health: Some(HealthCfg {
                interval_ms: 100,
                timeout_ms: 50,
                failures: 2,
                grace_ms: 300,
            }),
            ..Config::default()
        }
    }

    const FAIL: i32 = 1 << 8;

    #[test]
    fn check_is_polled_until_it_succeeds_then_ready() {
        let mut st = with(check_cfg());
        assert_eq!(st.phase(), Phase::Starting);
        assert_eq!(st.next_deadline(), Some(0));
        assert_eq!(run(&mut st, Event::Timer, 0), vec![SpawnAux(Aux::Check)]);
        step(
            &mut st,
            Event::AuxSpawned {
                aux: Aux::Check,
                pid: 500,
            },
            at(0),
        );
        // Not yet: again after the interval.
        let a = drive(
            &mut st,
            Event::ChildExited {
                pid: 500,
                wstatus: FAIL,
            },
            50,
        );
        assert!(a.is_empty(), "{a:?}");
        assert!(!st.ready);
        assert_eq!(st.next_deadline(), Some(150));
        assert_eq!(run(&mut st, Event::Timer, 150), vec![SpawnAux(Aux::Check)]);
        step(
            &mut st,
            Event::AuxSpawned {
                aux: Aux::Check,
                pid: 501,
            },
            at(150),
        );
        let a = drive(
            &mut st,
            Event::ChildExited {
                pid: 501,
                wstatus: 0,
            },
            200,
        );
        assert_eq!(a, vec![Notify(b'U')]);
        assert!(st.ready);
        assert_eq!(st.phase(), Phase::Ready);
        assert_eq!(st.next_deadline(), None, "no more checks once ready");
        // The 18-byte status never changed for it.
        assert_eq!(st.status().pid, 42);
    }

    #[test]
    fn check_that_overruns_is_killed_with_its_group() {
        let mut st = with(check_cfg());
        run(&mut st, Event::Timer, 0);
        step(
            &mut st,
            Event::AuxSpawned {
                aux: Aux::Check,
                pid: 500,
            },
            at(0),
        );
        assert_eq!(st.next_deadline(), Some(1000));
        assert_eq!(
            run(&mut st, Event::Timer, 1000),
            vec![Kill {
                pid: -500,
                sig: SIGKILL
            }]
        );
        // Killed: a "not yet", so it is tried again.
        drive(
            &mut st,
            Event::ChildExited {
                pid: 500,
                wstatus: SIGKILL,
            },
            1001,
        );
        assert!(!st.ready);
        assert_eq!(st.next_deadline(), Some(1101));
    }

    #[test]
    fn run_death_kills_the_check_and_ignores_its_result() {
        let mut st = with(check_cfg());
        run(&mut st, Event::Timer, 0);
        step(
            &mut st,
            Event::AuxSpawned {
                aux: Aux::Check,
                pid: 500,
            },
            at(0),
        );
        let a = drive(
            &mut st,
            Event::ChildExited {
                pid: 42,
                wstatus: 0,
            },
            10,
        );
        assert!(a.contains(&Kill {
            pid: -500,
            sig: SIGKILL
        }));
        let a = drive(
            &mut st,
            Event::ChildExited {
                pid: 500,
                wstatus: 0,
            },
            20,
        );
        assert!(a.is_empty(), "{a:?}");
        assert!(!st.ready);
        assert!(st.check.running.is_none());
    }

    #[test]
    fn probe_failures_restart_the_service() {
        let mut st = with(health_cfg());
        assert_eq!(st.phase(), Phase::Up);
        assert_eq!(st.next_deadline(), Some(300), "first probe after grace");
        assert_eq!(run(&mut st, Event::Timer, 300), vec![SpawnAux(Aux::Probe)]);
        step(
            &mut st,
            Event::AuxSpawned {
                aux: Aux::Probe,
                pid: 600,
            },
            at(300),
        );
        assert!(
            drive(
                &mut st,
                Event::ChildExited {
                    pid: 600,
                    wstatus: FAIL
                },
                310
            )
            .is_empty()
        );
        assert_eq!(st.health, Some(false));
        assert_eq!(st.health_failures, 1);
        assert_eq!(st.ext(1).health_failures, 1);
        assert_eq!(st.next_deadline(), Some(410));
        assert_eq!(run(&mut st, Event::Timer, 410), vec![SpawnAux(Aux::Probe)]);
        step(
            &mut st,
            Event::AuxSpawned {
                aux: Aux::Probe,
                pid: 601,
            },
            at(410),
        );
        assert_eq!(
            drive(
                &mut st,
                Event::ChildExited {
                    pid: 601,
                    wstatus: FAIL
                },
                420
            ),
            vec![
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
        assert_eq!(st.health_restarts, 1);
        assert_eq!(st.want, Want::Up, "want stays up: it is a restart");
        assert_eq!(st.next_deadline(), None, "no probe until the next start");
        // The death restarts it (after the floor), and health starts over.
        exited(&mut st, 42, 430);
        assert_eq!(st.health, None);
        assert_eq!(run(&mut st, Event::Timer, 1000), vec![Spawn]);
        step(&mut st, Event::Spawned { pid: 43 }, at(1000));
        assert_eq!(st.next_deadline(), Some(1300));
    }

    #[test]
    fn probe_success_resets_the_failure_count() {
        let mut st = with(health_cfg());
        run(&mut st, Event::Timer, 300);
        step(
            &mut st,
            Event::AuxSpawned {
                aux: Aux::Probe,
                pid: 600,
            },
            at(300),
        );
        drive(
            &mut st,
            Event::ChildExited {
                pid: 600,
                wstatus: FAIL,
            },
            310,
        );
        run(&mut st, Event::Timer, 410);
        step(
            &mut st,
            Event::AuxSpawned {
                aux: Aux::Probe,
                pid: 601,
            },
            at(410),
        );
        assert!(
            drive(
                &mut st,
                Event::ChildExited {
                    pid: 601,
                    wstatus: 0
                },
                420
            )
            .is_empty()
        );
        assert_eq!(st.health, Some(true));
        assert_eq!(st.health_failures, 0);
        assert_eq!(st.ext(1).health, Some(true));
    }

    #[test]
    fn probe_overrun_is_a_failure() {
        let mut st = with(health_cfg());
        run(&mut st, Event::Timer, 300);
        step(
            &mut st,
            Event::AuxSpawned {
                aux: Aux::Probe,
                pid: 600,
            },
            at(300),
        );
        assert_eq!(
            run(&mut st, Event::Timer, 350),
            vec![Kill {
                pid: -600,
                sig: SIGKILL
            }]
        );
        drive(
            &mut st,
            Event::ChildExited {
                pid: 600,
                wstatus: SIGKILL,
            },
            351,
        );
        assert_eq!(st.health_failures, 1);
    }

    #[test]
    fn no_probes_while_down_or_paused() {
        let mut st = with(health_cfg());
        ctl(&mut st, b'p', 100);
        assert!(run(&mut st, Event::Timer, 300).is_empty());
        assert_eq!(st.next_deadline(), Some(400));
        ctl(&mut st, b'c', 350);
        assert_eq!(run(&mut st, Event::Timer, 400), vec![SpawnAux(Aux::Probe)]);
        step(
            &mut st,
            Event::AuxSpawned {
                aux: Aux::Probe,
                pid: 600,
            },
            at(400),
        );
        drive(
            &mut st,
            Event::ChildExited {
                pid: 600,
                wstatus: FAIL,
            },
            410,
        );
        // After d, no more probes (and a failing result restarts nothing).
        ctl(&mut st, b'd', 420);
        assert!(run(&mut st, Event::Timer, 510).is_empty());
    }

    #[test]
    fn with_readiness_the_probe_waits_for_ready() {
        let mut st = with(Config {
            notify_fd: Some(3),
            ..health_cfg()
        });
        assert_eq!(st.next_deadline(), None);
        assert_eq!(
            drive(&mut st, Event::Ready { pid: 42 }, 1000),
            vec![Notify(b'U')]
        );
        assert_eq!(st.next_deadline(), Some(1300));
    }

    #[test]
    fn default_config_never_runs_helpers() {
        let st = with(Config::default());
        assert_eq!(st.next_deadline(), None);
        assert!(!st.config.readiness());
        assert_eq!(st.ext(1).health, None);
    }

    #[test]
    fn cgroup_is_killed_after_each_death_and_on_escalation() {
        let mut st = with(Config {
            cgroup: true,
            timeout_kill_ms: Some(100),
            ..Config::default()
        });
        ctl(&mut st, b'd', 10);
        assert_eq!(
            run(&mut st, Event::Timer, 110),
            vec![
                Kill {
                    pid: 42,
                    sig: SIGKILL
                },
                KillCgroup
            ]
        );
        let a = drive(
            &mut st,
            Event::ChildExited {
                pid: 42,
                wstatus: SIGKILL,
            },
            120,
        );
        assert_eq!(a.first(), Some(&KillCgroup));
        // Without the setting, never.
        let mut st = with(Config::default());
        let a = drive(
            &mut st,
            Event::ChildExited {
                pid: 42,
                wstatus: 0,
            },
            120,
        );
        assert!(!a.contains(&KillCgroup));
    }

    /// run (pid 42) dies at `t` and `./finish` (pid 900) starts.
    fn with_finish_running(st: &mut State, t: Millis) {
        let a = step(
            st,
            Event::ChildExited {
                pid: 42,
                wstatus: 0,
            },
            at(t),
        )
        .to_vec();
        assert!(a.contains(&SpawnFinish { wstatus: 0 }), "{a:?}");
        step(st, Event::FinishSpawned { pid: 900 }, at(t));
    }

    #[test]
    fn o_during_finish_starts_once_finish_is_done() {
        let mut st = with(Config::default());
        ctl(&mut st, b'd', 10);
        // run's death: finish runs (the test driver feeds it by hand here).
        let a = step(
            &mut st,
            Event::ChildExited {
                pid: 42,
                wstatus: 15,
            },
            at(20),
        )
        .to_vec();
        assert!(a.contains(&SpawnFinish { wstatus: 15 }));
        step(&mut st, Event::FinishSpawned { pid: 900 }, at(20));
        assert_eq!(ctl(&mut st, b'o', 30), vec![WriteStatus]);
        assert_eq!(st.phase(), Phase::Finishing);
        let a = run(
            &mut st,
            Event::ChildExited {
                pid: 900,
                wstatus: 0,
            },
            2000,
        );
        assert_eq!(a, vec![Spawn], "the o is not lost");
        assert_eq!(st.want, Want::Once);
    }

    #[test]
    fn d_during_finish_cancels_a_remembered_start() {
        let mut st = with(Config::default());
        ctl(&mut st, b'd', 10);
        with_finish_running(&mut st, 20);
        ctl(&mut st, b'u', 30);
        ctl(&mut st, b'd', 40);
        assert!(
            run(
                &mut st,
                Event::ChildExited {
                    pid: 900,
                    wstatus: 0
                },
                2000
            )
            .is_empty()
        );
        assert_eq!(st.next_deadline(), None);
    }

    #[test]
    fn once_run_dying_with_finish_is_not_restarted() {
        let mut st = with(Config::default());
        ctl(&mut st, b'o', 10);
        with_finish_running(&mut st, 20);
        assert!(
            run(
                &mut st,
                Event::ChildExited {
                    pid: 900,
                    wstatus: 0
                },
                2000
            )
            .is_empty()
        );
    }
}
