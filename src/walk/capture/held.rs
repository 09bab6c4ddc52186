//! Everything read in one pass while the whole process is held: for
//! memory that is already consistent (a core file, the fuzzer's fake),
//! where there is nothing to confirm. (Under sudo the live modes run
//! since the root monitor makes the holds.)

use super::pre_read::{pre_read, Stacks};
use super::reads::{copy_of, inconsistent, monotonic_ns};
use super::{Capture, CaptureStats, Hold, Strategy};
use crate::memory::BatchRead;
use crate::walk::{ThreadRegs, WalkConfig, WalkError};

/// State of a held snapshot: the capture, once read.
#[derive(Default)]
pub(super) struct Held {
    capture: Option<Capture>,
}

impl<R: BatchRead + Sync + ?Sized> Strategy<R> for Held {
    /// Reads nothing: everything is read in the one held pass.
    fn before_hold(&mut self, _cfg: &WalkConfig<'_, '_>, _mem: &R) -> Result<Hold, WalkError> {
        Ok(Hold::All)
    }

    /// Reads every g and every live goroutine's stack. `keep_going` is not
    /// asked: the caller checks the pause budget once the copy is done.
    fn while_held(
        &mut self,
        cfg: &WalkConfig<'_, '_>,
        mem: &R,
        threads: Vec<ThreadRegs>,
        _keep_going: &dyn Fn() -> bool,
    ) -> Result<(), WalkError> {
        self.capture = Some(capture_once(cfg, mem, threads)?);
        Ok(())
    }

    fn after_release(
        self: Box<Self>,
        _cfg: &WalkConfig<'_, '_>,
        _mem: &R,
    ) -> Result<Capture, WalkError> {
        self.capture.ok_or(WalkError::Abandoned)
    }
}

/// Every goroutine from memory that is already consistent, in one pass.
fn capture_once<R: BatchRead + Sync + ?Sized>(
    cfg: &WalkConfig<'_, '_>,
    src: &R,
    threads: Vec<ThreadRegs>,
) -> Result<Capture, WalkError> {
    let nanotime = monotonic_ns();
    let mut pre = pre_read(cfg, src, Stacks::All(&threads))?;
    let recs = std::mem::take(&mut pre.recs);
    let mut goroutines = Vec::new();
    let mut stats = CaptureStats {
        phases: std::mem::take(&mut pre.phases),
        ..CaptureStats::default()
    };
    for (i, g) in recs.into_iter().enumerate() {
        let Some(g) = g else { continue };
        if g.is_dead() {
            continue;
        }
        let stack = if !g.looks_valid() {
            Err(inconsistent(&g))
        } else {
            match pre.stacks[i].take() {
                Some(uw) => Ok(uw),
                None => Err("stack not read".to_string()),
            }
        };
        stats.reread += 1;
        goroutines.push(copy_of(g, &pre.ms, &threads, stack, &pre.labels));
    }
    Ok(Capture {
        goroutines,
        nanotime,
        warnings: pre.warnings,
        stats,
    })
}
