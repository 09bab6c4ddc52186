//! A goroutine count of a live process with nothing stopped (`gopeek ps`):
//! the snapshot's loading steps, then one read of `allgs` and the g's.

use super::live::LiveProcess;
use super::source::Source;
use super::{walk_config, SnapshotError};
use crate::layout::load_program;
use crate::walk::census::{self, GoroutineCount};

/// Counts the goroutines of process `pid` while it runs: never attaches,
/// never stops a thread (the reads are racy, as `ps` itself is).
pub fn count_goroutines(pid: i32) -> Result<GoroutineCount, SnapshotError> {
    let src = LiveProcess::open(pid, None)?;
    let bin = src.parse_executable()?;
    let (prog, layout) =
        load_program(&bin).map_err(|source| SnapshotError::NotGo { pid, source })?;
    let off = layout?.offsets()?;
    let cfg = walk_config(&src, &bin, &prog, &off, false)?;
    census::count_goroutines(&cfg, src.memory()).map_err(|e| src.walk_error(e))
}
