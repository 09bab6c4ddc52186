//! Reading every goroutine with the target held for as short a time as
//! possible: read while it runs, then confirm while it is held.
//!
//! A goroutine that is off every thread (waiting, runnable, preempted)
//! cannot change its stack until it runs again, and running leaves marks
//! in its g: the status, the saved context (`sched`), and `trackingSeq`,
//! bumped on every transition out of running. So gopeek reads the g's and
//! unwinds the stacks of parked goroutines *while the process runs*, and
//! then, with the target held, reads only the g's again, in a few large
//! copies (see [`super::gtable`]). A g whose state is unchanged keeps the
//! stack read earlier: it is exactly the stack at the held instant.
//! Everything else (running goroutines, syscalls, g's that changed or
//! appeared) is read while held. The snapshot is as consistent as one
//! copied entirely while held, and the pause is the time to copy the g's,
//! not their stacks.
//!
//! A snapshot runs in three phases, [`Strategy::before_hold`],
//! [`Strategy::while_held`] and [`Strategy::after_release`], and the
//! [`Mode`] picks what each phase does:
//!
//! - [`Mode::Consistent`] (`consistent.rs`): as above;
//! - [`Mode::Nonblocking`] (`nonblocking.rs`, `--nonblocking`): only the
//!   threads running Go code are stopped, for their registers and stacks;
//!   every other goroutine is re-read until two reads around its stack
//!   agree, or reported as changing;
//! - [`Mode::Held`] (`held.rs`, core files): everything is read in one
//!   pass, the source being still already.
//!
//! All of them copy stacks through one batch helper (`batch.rs`).

mod batch;
mod consistent;
mod held;
mod nonblocking;
mod pre_read;
pub(crate) mod reads;
#[cfg(test)]
mod tests;

use super::gstruct::GInfo;
use super::unwind::SharedStack;
use super::{ThreadRegs, WalkConfig, WalkError};
use crate::memory::BatchRead;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// pprof labels of one goroutine, shared by every goroutine that carries
/// the same label set (they share the runtime's map too).
pub(crate) type Labels = Arc<BTreeMap<String, String>>;

/// Everything the dump needs about one live goroutine, its stack already
/// unwound to physical frames; symbolizing comes later, after release.
#[derive(Debug, Clone)]
pub struct GoroutineCopy {
    /// The g as read (at the held instant, or when confirmed): what the
    /// dump prints of it.
    pub(crate) rec: GInfo,
    /// `(m.id, m address)` of the M running it: the dump prints `m=N`.
    pub(crate) m: Option<(i64, u64)>,
    /// Thread (TID) of a running or syscall goroutine, to match it with
    /// the thread list.
    pub(crate) thread: Option<i32>,
    /// The unwound stack (shared with every goroutine parked in the same
    /// code), or why there is none.
    pub(crate) stack: Result<SharedStack, String>,
    /// Its pprof labels, if any.
    pub(crate) labels: Option<Labels>,
}

/// How a snapshot was read, for `GOPEEK_DEBUG_TIMING` and the bench.
#[derive(Debug, Clone, Default)]
pub struct CaptureStats {
    /// Goroutines whose stack read while the target ran was confirmed.
    pub reused: usize,
    /// Goroutines read (again) while held or stopped.
    pub reread: usize,
    /// Re-read rounds in `--nonblocking` mode.
    pub retry_rounds: usize,
    /// Goroutines given up on as changing (`--nonblocking`).
    pub changing: usize,
    /// Times a goroutine was seen to change between two reads and was
    /// read again (`--nonblocking`).
    pub changed: usize,
    /// Stack bytes copied while the target was held: what the pause paid.
    pub held_bytes: usize,
    /// Stack ranges copied while the target was held.
    pub held_ranges: usize,
    /// Where the reads' time went, phase by phase, in the order they ran.
    pub phases: Vec<Phase>,
}

/// One phase of the reads, timed (`GOPEEK_DEBUG_TIMING` prints them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// One batched read of stacks (unwinding excluded).
    StackReads(Duration),
    /// The first pass, while the target ran: the g table, planned, read
    /// and decoded, then the stack reads planned, read and unwound.
    Running {
        /// Reading `allgs` and sorting the g's into runs.
        plan: Duration,
        /// Reading and decoding every g (in steps, on every core).
        g_table: Duration,
        /// Planning the stack reads.
        jobs: Duration,
        /// Reading and unwinding the stacks.
        stacks_unwind: Duration,
        /// Stacks read.
        stacks: usize,
        /// Distinct stack shapes among them.
        shapes: usize,
    },
    /// The consistent strategy's held pass over the g's.
    Held {
        /// Reading `allgs`.
        allgs: Duration,
        /// Reading the g table.
        g_table: Duration,
        /// Ranges the g table was read in.
        ranges: usize,
        /// Bytes read.
        bytes: usize,
        /// Deciding which goroutines changed.
        compare: Duration,
    },
}

/// The result of a snapshot's reads.
#[derive(Debug, Default)]
pub struct Capture {
    /// Live goroutines, in `allgs` order.
    pub(crate) goroutines: Vec<GoroutineCopy>,
    /// CLOCK_MONOTONIC at the held instant, in ns (Go's `nanotime`): what
    /// `g.waitsince` is compared with.
    pub(crate) nanotime: i64,
    /// What the dump should say was incomplete.
    pub(crate) warnings: Vec<String>,
    /// How the capture was read.
    pub(crate) stats: CaptureStats,
}

/// Which threads a strategy needs stopped while it reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hold {
    /// The whole process: the g's are confirmed at one instant.
    All,
    /// Only these threads (TIDs): `--nonblocking` stops the threads
    /// running Go code, whose goroutines' stacks move under any reader.
    Threads(Vec<i32>),
}

/// How goroutines are read (chosen by the command line).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The default: one instant, held only to confirm the g's.
    Consistent,
    /// `--nonblocking`: only running threads are stopped; each goroutine
    /// is consistent on its own, not all at one instant.
    Nonblocking,
    /// A core file (already still): everything is read in one pass.
    Held,
}

/// One capture strategy, in the three phases of a snapshot. The caller
/// owns the hold (it seizes and releases the threads and enforces the
/// pause budget); a strategy only reads.
pub trait Strategy<R: BatchRead + Sync + ?Sized> {
    /// Reads done while the process runs, before anything is stopped; says
    /// which threads to stop. May be skipped: [`Mode::Held`] reads nothing here anyway, and
    /// the other strategies then have nothing confirmed and read every
    /// goroutine again.
    fn before_hold(&mut self, cfg: &WalkConfig<'_, '_>, mem: &R) -> Result<Hold, WalkError>;

    /// Reads done while the chosen threads are stopped (`threads`: their
    /// registers). `keep_going` turns false when the pause budget runs
    /// out; the strategy then stops with [`WalkError::Abandoned`].
    fn while_held(
        &mut self,
        cfg: &WalkConfig<'_, '_>,
        mem: &R,
        threads: Vec<ThreadRegs>,
        keep_going: &dyn Fn() -> bool,
    ) -> Result<(), WalkError>;

    /// Work after the target runs again; the finished capture.
    /// [`WalkError::Abandoned`] if [`Self::while_held`] did not complete.
    fn after_release(
        self: Box<Self>,
        cfg: &WalkConfig<'_, '_>,
        mem: &R,
    ) -> Result<Capture, WalkError>;
}

/// The strategy of `mode`, ready for its first phase.
pub fn strategy<R: BatchRead + Sync + ?Sized>(mode: Mode) -> Box<dyn Strategy<R>> {
    match mode {
        Mode::Consistent => Box::<consistent::Consistent>::default(),
        Mode::Nonblocking => Box::<nonblocking::Nonblocking>::default(),
        Mode::Held => Box::<held::Held>::default(),
    }
}

/// CLOCK_MONOTONIC now, in ns (Go's `nanotime`): a source that is not
/// live (a core) estimates its own instant from it.
pub(crate) fn monotonic_now() -> i64 {
    reads::monotonic_ns()
}
