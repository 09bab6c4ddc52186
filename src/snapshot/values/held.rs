//! A live target seen as a [`Source`] whose first hold is kept: `print
//! --consistent --goroutine` takes the goroutine's frames as `dump` does
//! (the executable parsed and most of it read while it runs, then held),
//! and reads its variables under that same hold, so a running
//! goroutine's registers, stack and heap are all of one instant.

use crate::binary::elf::GoBinary;
use crate::process::PauseStats;
use crate::snapshot::source::{Source, Stopped};
use crate::snapshot::SnapshotError;
use crate::walk::capture::Hold;
use crate::walk::threads::HeldThread;
use crate::walk::{ThreadRegs, WalkError};
use std::cell::OnceCell;
use std::time::Duration;

/// `src`, and its hold once one was asked for (which dropping releases).
pub(crate) struct HeldSource<'s, S: Source + 's> {
    src: &'s S,
    max_pause: Duration,
    hold: OnceCell<S::Stopped<'s>>,
}

impl<'s, S: Source + 's> HeldSource<'s, S> {
    /// Nothing held yet.
    pub(crate) fn new(src: &'s S, max_pause: Duration) -> Self {
        HeldSource {
            src,
            max_pause,
            hold: OnceCell::new(),
        }
    }

    /// The hold: the one taken already, or every thread now.
    pub(crate) fn hold(&self) -> Result<&S::Stopped<'s>, SnapshotError> {
        if let Some(h) = self.hold.get() {
            return Ok(h);
        }
        let h = self.src.stop(Hold::All, self.max_pause)?;
        Ok(self.hold.get_or_init(|| h))
    }

    /// Lets the target go; the pause figures of the one hold.
    pub(crate) fn release(self) -> Result<PauseStats, SnapshotError> {
        match self.hold.into_inner() {
            Some(h) => h.release(),
            None => Ok(PauseStats::default()),
        }
    }
}

/// The inner "hold": the outer one's threads, released by the outer one.
pub(crate) struct View<'s, H: Stopped> {
    hold: &'s H,
}

impl<H: Stopped> Stopped for View<'_, H> {
    fn threads(&self) -> Vec<ThreadRegs> {
        self.hold.threads()
    }

    fn held_threads(&self) -> Vec<HeldThread> {
        self.hold.held_threads()
    }

    fn within_budget(&self) -> bool {
        self.hold.within_budget()
    }

    /// Nothing to let go: the pause is the outer hold's.
    fn release(self) -> Result<PauseStats, SnapshotError> {
        Ok(PauseStats::default())
    }
}

impl<'s, S: Source + 's> Source for HeldSource<'s, S> {
    type Memory = S::Memory;
    type Stopped<'x>
        = View<'x, S::Stopped<'s>>
    where
        Self: 'x;

    fn pid(&self) -> i32 {
        self.src.pid()
    }

    fn exe_display(&self) -> String {
        self.src.exe_display()
    }

    fn nspid(&self) -> Option<i32> {
        self.src.nspid()
    }

    fn container(&self) -> Option<String> {
        self.src.container()
    }

    fn parse_executable(&self) -> Result<GoBinary, SnapshotError> {
        self.src.parse_executable()
    }

    fn environ(&self) -> Option<&[u8]> {
        self.src.environ()
    }

    fn load_bias(&self, bin: &GoBinary) -> Result<u64, SnapshotError> {
        self.src.load_bias(bin)
    }

    fn memory(&self) -> &Self::Memory {
        self.src.memory()
    }

    /// Every thread is held (not only those `which` names): the
    /// variables are read under the same hold.
    fn stop(&self, _which: Hold, _max_pause: Duration) -> Result<Self::Stopped<'_>, SnapshotError> {
        Ok(View { hold: self.hold()? })
    }

    fn walk_error(&self, e: WalkError) -> SnapshotError {
        self.src.walk_error(e)
    }
}
