//! How many goroutines a process has, read while it runs (nothing is
//! stopped): what `gopeek ps` shows beside each Go process, as
//! `runtime.NumGoroutine()` would count them.

use super::capture::reads::read_allgs;
use super::gscan::ScanPlan;
use super::gstruct::GRecord;
use super::{is_system, WalkConfig, WalkError};
use crate::memory::BatchRead;
use serde::Serialize;
use std::collections::HashMap;

/// The goroutines of one process by kind, read without a hold (so a
/// goroutine created or ended meanwhile may be counted or not).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct GoroutineCount {
    /// Live goroutines Go's traceback shows at GOTRACEBACK=all:
    /// `runtime.NumGoroutine()`.
    pub user: u64,
    /// Live runtime goroutines (GC workers, the finalizer goroutine...).
    pub system: u64,
    /// g structs kept for reuse (`allgs` entries whose goroutine ended).
    pub dead: u64,
    /// g structs that could not be read (freed memory, a torn read).
    pub unreadable: u64,
}

/// Counts the goroutines of the process `src` reads, from `allgs` and
/// the status and start function of each g.
pub fn count_goroutines<R: BatchRead + Sync + ?Sized>(
    cfg: &WalkConfig<'_, '_>,
    src: &R,
) -> Result<GoroutineCount, WalkError> {
    let gs = read_allgs(cfg, src)?;
    let window = GRecord::bytes_needed(&cfg.off.g) as usize;
    // Only what the count needs, per g: never the whole table.
    let (kinds, _) = ScanPlan::new(&gs, window).collect(src, &|i, b: Option<&[u8]>| {
        let g = GRecord::decode(gs[i], b?, &cfg.off.g);
        Some((g.looks_valid(), g.is_dead(), g.startpc))
    });
    let mut n = GoroutineCount::default();
    let mut system_cache: HashMap<u64, bool> = HashMap::new();
    for kind in kinds {
        let Some((valid, dead, startpc)) = kind else {
            n.unreadable += 1;
            continue;
        };
        if !valid {
            n.unreadable += 1;
        } else if dead {
            n.dead += 1;
        } else if *system_cache
            .entry(startpc)
            .or_insert_with(|| is_system(cfg.prog, startpc.wrapping_sub(cfg.bias)))
        {
            n.system += 1;
        } else {
            n.user += 1;
        }
    }
    Ok(n)
}
