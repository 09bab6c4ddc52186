//! Diagnosis over plain snapshots: filters, panicparse-style grouping and
//! leak detection across several snapshots. Everything here works on
//! [`DumpSnapshot`](crate::dump::DumpSnapshot) data only, so it is tested
//! without a process and never touches the target.

#![warn(missing_docs)]


pub mod filter;
pub mod group;
pub mod leaks;
use crate::dump::{Frame, GoroutineSnapshot};

/// The frames a reader of Go's traceback sees: runtime internals and
/// wrappers are hidden unless `system` (GOTRACEBACK=system) is asked for.
pub fn shown_frames(g: &GoroutineSnapshot, system: bool) -> impl Iterator<Item = &Frame> {
    g.frames.iter().filter(move |f| system || !f.runtime)
}

/// The status without the ` (scan)` suffix a GC in progress adds: the same
/// goroutine parked in the same place belongs in the same bucket whether or
/// not its stack was being scanned at that instant.
pub fn base_status(g: &GoroutineSnapshot) -> &str {
    g.status.strip_suffix(" (scan)").unwrap_or(&g.status)
}

/// Whether a goroutine is listed at all: Go hides goroutines started by
/// the runtime (GC workers, finalizers...) unless GOTRACEBACK=system, and
/// so do its goroutine profiles.
pub fn listed(g: &GoroutineSnapshot, system: bool) -> bool {
    system || !g.system
}
