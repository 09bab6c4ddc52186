//! Many `--nonblocking` captures of one live process with its executable
//! parsed once (`gopeek record --wall` takes one every tick): each capture
//! stops only the threads running Go code, for their registers and
//! stacks, and confirms every other goroutine while the process runs, as
//! `gopeek dump --nonblocking` does. Nothing is symbolized here; the
//! caller gets the physical frames.

use super::live::LiveProcess;
use super::source::{Source, Stopped};
use super::{walk_config, SnapshotError};
use crate::layout::load_program;
use crate::process::PauseStats;
use crate::walk::capture::{self, Mode};
use crate::walk::{Capture, WalkConfig};
use std::time::Duration;

/// Longest one capture may hold its running threads.
const MAX_PAUSE: Duration = Duration::from_millis(500);

/// A live process opened once for repeated captures.
pub(crate) struct Repeated<'s, 'p, 'a> {
    src: &'s LiveProcess,
    /// The program and its layout, for the caller's symbolization.
    pub(crate) cfg: WalkConfig<'p, 'a>,
}

/// Opens `pid`, parses its executable and runtime layout once, and runs
/// `f` with a [`Repeated`] that captures it as often as asked.
pub(crate) fn with_repeated<R>(
    pid: i32,
    f: impl FnOnce(&Repeated<'_, '_, '_>) -> R,
) -> Result<R, SnapshotError> {
    let src = LiveProcess::open(pid, None)?;
    with_repeated_on(&src, f)
}

/// [`with_repeated`] on a target opened already (under sudo: as root,
/// with the root monitor making each capture's hold, before the drop).
pub(crate) fn with_repeated_target<R>(
    target: &super::LiveTarget,
    f: impl FnOnce(&Repeated<'_, '_, '_>) -> R,
) -> Result<R, SnapshotError> {
    with_repeated_on(&target.0, f)
}

fn with_repeated_on<R>(
    src: &LiveProcess,
    f: impl FnOnce(&Repeated<'_, '_, '_>) -> R,
) -> Result<R, SnapshotError> {
    let pid = src.pid();
    let bin = src.parse_executable()?;
    let (prog, layout) =
        load_program(&bin).map_err(|source| SnapshotError::NotGo { pid, source })?;
    let off = layout?.offsets()?;
    let cfg = walk_config(src, &bin, &prog, &off, false)?;
    Ok(f(&Repeated { src, cfg }))
}

impl Repeated<'_, '_, '_> {
    /// The executable's path as the user should see it.
    pub(crate) fn exe_display(&self) -> String {
        self.src.exe_display()
    }

    /// One `--nonblocking` capture: every goroutine, its stack unwound to
    /// physical frames, and what holding the running threads cost. A
    /// process that exited is [`crate::process::ProcessError::Exited`]
    /// (or `NoSuchProcess`).
    pub(crate) fn capture(&self) -> Result<(Capture, PauseStats), SnapshotError> {
        let (src, cfg) = (self.src, &self.cfg);
        let mem = src.memory();
        let mut strategy = capture::strategy::<crate::process::LiveMemory>(Mode::Nonblocking);
        let which = strategy
            .before_hold(cfg, mem)
            .map_err(|e| src.walk_error(e))?;
        let stopped = src.stop(which, MAX_PAUSE)?;
        let threads = crate::walk::signal::interrupted_contexts(cfg, mem, stopped.threads());
        let read = strategy.while_held(cfg, mem, threads, &|| stopped.within_budget());
        let pause = stopped.release()?;
        let captured = read
            .and_then(|()| strategy.after_release(cfg, mem))
            .map_err(|e| src.walk_error(e))?;
        Ok((captured, pause))
    }

    /// `true` for a goroutine Go's own goroutine profile leaves out
    /// (`isSystemGoroutine`), by its start PC (runtime address).
    pub(crate) fn is_system(&self, startpc: u64) -> bool {
        crate::walk::is_system(self.cfg.prog, startpc.wrapping_sub(self.cfg.bias))
    }
}
