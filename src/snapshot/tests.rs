//! The pipeline over a fake [`Source`] that records what was done to the
//! target, in order: what is held when, and that nothing of the target is
//! parsed before the after-seize hook has run (the sudo guarantee).

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

fn hook(src: &Fake, result: fn() -> Result<(), HookError>) -> AfterSeize {
    let events = Arc::clone(&src.events);
    AfterSeize(Arc::new(move |pid| {
        events.lock().unwrap().push(format!("hook {pid}"));
        result()
    }))
}

fn opts(after_seize: Option<AfterSeize>, nonblocking: bool) -> SnapshotOptions {
    SnapshotOptions {
        after_seize,
        nonblocking,
        ..SnapshotOptions::default()
    }
}

#[test]
fn held_mode_stops_and_runs_the_hook_before_parsing() {
    let src = Fake::new();
    let o = opts(Some(hook(&src, || Ok(()))), false);
    let e = run(&src, o.mode().unwrap(), &o, Instant::now())
        .err()
        .unwrap();
    assert!(matches!(e, SnapshotError::Exe { .. }), "{e}");
    assert_eq!(src.events(), ["stop All", "hook 4242", "parse", "released"]);
}

#[test]
fn a_refusing_hook_releases_the_target_unparsed_with_its_exit_code() {
    #[derive(Debug, thiserror::Error)]
    #[error("the policy says no")]
    struct No;
    impl crate::exit::ExitStatus for No {
        fn exit_code(&self) -> u8 {
            crate::exit::PERMISSION
        }
    }
    let src = Fake::new();
    let o = opts(Some(hook(&src, || Err(Box::new(No)))), false);
    let e = run(&src, o.mode().unwrap(), &o, Instant::now())
        .err()
        .unwrap();
    use crate::exit::ExitStatus;
    assert_eq!(
        (e.to_string(), e.exit_code()),
        ("the policy says no".to_string(), 4)
    );
    assert_eq!(src.events(), ["stop All", "hook 4242", "released"]);
}

#[test]
fn default_modes_hold_nothing_when_the_executable_is_unreadable() {
    for nonblocking in [false, true] {
        let src = Fake::new();
        let o = opts(None, nonblocking);
        let e = run(&src, o.mode().unwrap(), &o, Instant::now())
            .err()
            .unwrap();
        assert!(matches!(e, SnapshotError::Exe { .. }), "{e}");
        assert_eq!(src.events(), ["parse"]);
    }
}

#[test]
fn nonblocking_under_sudo_is_refused_before_anything() {
    let src = Fake::new();
    let o = opts(Some(hook(&src, || Ok(()))), true);
    assert!(matches!(o.mode(), Err(SnapshotError::NonblockingUnderSudo)));
}
