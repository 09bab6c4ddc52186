//! What a snapshot reads from, as two small traits: a [`Source`] (the
//! executable, the target's memory, how to stop it) and the [`Stopped`]
//! value a hold returns (thread registers, the pause budget, the
//! release). The pipeline in `snapshot/mod.rs` is written against them
//! only; the live process ([`super::live::LiveProcess`]) is one source,
//! a core file is the next (already still, its hold a no-op).

use super::SnapshotError;
use crate::binary::elf::GoBinary;
use crate::memory::BatchRead;
use crate::process::PauseStats;
use crate::walk::capture::Hold;
use crate::walk::threads::HeldThread;
use crate::walk::{ThreadRegs, WalkError};
use std::time::Duration;

/// A target to snapshot.
pub(crate) trait Source {
    /// Where its bytes come from.
    type Memory: BatchRead + Sync;
    /// What stopping it returns.
    type Stopped<'s>: Stopped
    where
        Self: 's;

    /// The pid errors and the after-seize hook name.
    fn pid(&self) -> i32;
    /// The executable's path as the user should see it.
    fn exe_display(&self) -> String;
    /// Its pid inside its own pid namespace (containers), when known.
    fn nspid(&self) -> Option<i32> {
        None
    }
    /// The container its cgroup names, if any.
    fn container(&self) -> Option<String> {
        None
    }
    /// Parses the executable (opened earlier; under sudo this runs only
    /// after the privilege drop).
    fn parse_executable(&self) -> Result<GoBinary, SnapshotError>;
    /// The bytes of the target's environment, if known (GODEBUG decides
    /// some of Go's printing).
    fn environ(&self) -> Option<&[u8]>;
    /// Runtime address minus link address of the executable's text.
    fn load_bias(&self, bin: &GoBinary) -> Result<u64, SnapshotError>;
    /// The target's memory.
    fn memory(&self) -> &Self::Memory;
    /// Stops the threads `which` names, for at most `max_pause`.
    fn stop(&self, which: Hold, max_pause: Duration) -> Result<Self::Stopped<'_>, SnapshotError>;
    /// A walk that failed: said as "the process exited" when that is what
    /// happened.
    fn walk_error(&self, e: WalkError) -> SnapshotError;
    /// When the target's state was taken, if not now (a core: when it
    /// was written).
    fn taken_at(&self) -> Option<std::time::SystemTime> {
        None
    }
    /// Go's `nanotime` at that instant, if not the clock's now (for
    /// "N minutes" in headers).
    fn nanotime(&self) -> Option<i64> {
        None
    }
    /// What the user should know about the source itself (a truncated
    /// core, an executable that could not be checked).
    fn warnings(&self) -> Vec<String> {
        Vec::new()
    }
}

/// A target held still; releasing it is the only way to get the pause
/// figures, and dropping it releases too.
pub(crate) trait Stopped {
    /// Registers of the stopped threads.
    fn threads(&self) -> Vec<ThreadRegs>;
    /// Every register and the `/proc` state of each stopped thread
    /// (`gopeek threads`); by default only what [`Self::threads`] knows.
    fn held_threads(&self) -> Vec<HeldThread> {
        self.threads()
            .into_iter()
            .map(|regs| HeldThread {
                regs,
                state: '?',
                registers: Vec::new(),
            })
            .collect()
    }
    /// `false` once the pause budget ran out (reads then stop).
    fn within_budget(&self) -> bool;
    /// Lets the target run again; an error if the budget ran out meanwhile.
    fn release(self) -> Result<PauseStats, SnapshotError>;
}
