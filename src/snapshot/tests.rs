//! The pipeline over a fake [`Source`] that records what was done to the
//! target, in order: what is held when, and that a failed parse releases
//! the target.

use super::*;
use crate::binary::elf::GoBinary;
use crate::memory::RegionMemory;
use crate::process::PauseStats;
use crate::walk::ThreadRegs;
use std::cell::RefCell;
use std::sync::{Arc, Mutex};

/// A target that is never there: it records each step and fails to parse.
struct Fake {
    events: Arc<Mutex<Vec<String>>>,
    mem: RegionMemory,
}

impl Fake {
    fn new() -> Fake {
        Fake {
            events: Arc::new(Mutex::new(Vec::new())),
            mem: RegionMemory::new(),
        }
    }
    fn log(&self, e: impl Into<String>) {
        self.events.lock().unwrap().push(e.into());
    }
    fn events(&self) -> Vec<String> {
        self.events.lock().unwrap().clone()
    }
}

struct FakeStopped<'a> {
    src: &'a Fake,
    released: RefCell<bool>,
}

impl Stopped for FakeStopped<'_> {
    fn threads(&self) -> Vec<ThreadRegs> {
        Vec::new()
    }
    fn within_budget(&self) -> bool {
        true
    }
    fn release(self) -> Result<PauseStats, SnapshotError> {
        Ok(PauseStats::default())
    }
}

impl Drop for FakeStopped<'_> {
    fn drop(&mut self) {
        if !*self.released.borrow() {
            *self.released.borrow_mut() = true;
            self.src.log("released");
        }
    }
}

impl Source for Fake {
    type Memory = RegionMemory;
    type Stopped<'s> = FakeStopped<'s>;

    fn pid(&self) -> i32 {
        4242
    }
    fn exe_display(&self) -> String {
        "/fake".into()
    }
    fn parse_executable(&self) -> Result<GoBinary, SnapshotError> {
        self.log("parse");
        GoBinary::from_vec("/fake", b"not an ELF file".to_vec())
            .map_err(|source| SnapshotError::Exe { pid: 4242, source })
    }
    fn environ(&self) -> Option<&[u8]> {
        None
    }
    fn load_bias(&self, _bin: &GoBinary) -> Result<u64, SnapshotError> {
        Ok(0)
    }
    fn memory(&self) -> &RegionMemory {
        &self.mem
    }
    fn stop(&self, which: Hold, _max_pause: Duration) -> Result<FakeStopped<'_>, SnapshotError> {
        self.log(format!("stop {which:?}"));
        Ok(FakeStopped {
            src: self,
            released: RefCell::new(false),
        })
    }
    fn walk_error(&self, source: WalkError) -> SnapshotError {
        SnapshotError::Walk { pid: 4242, source }
    }
}

fn opts(nonblocking: bool) -> SnapshotOptions {
    SnapshotOptions {
        nonblocking,
        ..SnapshotOptions::default()
    }
}

#[test]
fn held_mode_stops_before_parsing_and_releases_on_failure() {
    let src = Fake::new();
    let o = opts(false);
    let e = run(&src, Mode::Held, &o, Instant::now()).err().unwrap();
    assert!(matches!(e, SnapshotError::Exe { .. }), "{e}");
    assert_eq!(src.events(), ["stop All", "parse", "released"]);
}

#[test]
fn default_modes_hold_nothing_when_the_executable_is_unreadable() {
    for nonblocking in [false, true] {
        let src = Fake::new();
        let o = opts(nonblocking);
        let e = run(&src, o.mode(), &o, Instant::now()).err().unwrap();
        assert!(matches!(e, SnapshotError::Exe { .. }), "{e}");
        assert_eq!(src.events(), ["parse"]);
    }
}
