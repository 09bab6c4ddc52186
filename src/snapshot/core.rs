//! A core file as a snapshot [`Source`]: the dead process is already
//! still, so stopping it does nothing and costs no pause. The executable
//! comes from the core's NT_FILE note (or `--exe`) and is checked against
//! the core's bytes before anything is parsed with its tables.

use super::source::{Source, Stopped};
use super::SnapshotError;
use crate::binary::elf::{ElfError, GoBinary};
use crate::corefile::exe::{self, ExeMatch};
use crate::corefile::{CoreError, CoreFile, CoreMemory};
use crate::process::PauseStats;
use crate::walk::capture::Hold;
use crate::walk::threads::HeldThread;
use crate::walk::{ThreadRegs, WalkError};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// A core file opened for a snapshot, with its executable.
pub(crate) struct CoreSource {
    pid: i32,
    exe_path: PathBuf,
    exe: File,
    matched: ExeMatch,
    threads: Vec<HeldThread>,
    written: Option<SystemTime>,
    truncated: usize,
    mem: CoreMemory,
}

impl CoreSource {
    /// Opens the core and its executable (`exe_override`, else the one the
    /// core names) and checks that they belong together.
    pub(crate) fn open(
        core: &Path,
        exe_override: Option<&Path>,
    ) -> Result<CoreSource, SnapshotError> {
        let file = CoreFile::open(core)?;
        let pid = file.pid();
        let exe_path = match exe_override {
            Some(p) => p.to_path_buf(),
            None => exe::exe_path(&file)?,
        };
        let exe_err = |source| SnapshotError::Exe {
            pid,
            source: ElfError::Open {
                path: exe_path.clone(),
                source,
            },
        };
        let exe_file = File::open(&exe_path).map_err(exe_err)?;
        // SAFETY: a private read-only mapping of the executable; reads are
        // bounds-checked, a file truncated underneath may fault (the risk
        // every reader of a mapped executable takes).
        let map = unsafe { memmap2::Mmap::map(&exe_file) }.map_err(exe_err)?;
        let matched = exe::check(&file, &exe_path, &map)?;
        let threads = file
            .threads()
            .iter()
            .map(|t| HeldThread {
                regs: ThreadRegs {
                    tid: t.tid,
                    pc: t.pc(),
                    sp: t.sp(),
                    lr: t.lr().unwrap_or(0),
                    fp: t.fp(),
                },
                // No /proc state in a core: `-`.
                state: '-',
                registers: t.named(),
            })
            .collect();
        let written = std::fs::metadata(core).and_then(|m| m.modified()).ok();
        let truncated = file.truncated_segments();
        let mem = CoreMemory::new(file).with_executable(Box::new(map), matched.ranges.clone());
        Ok(CoreSource {
            pid,
            exe_path,
            exe: exe_file,
            matched,
            threads,
            written,
            truncated,
            mem,
        })
    }
}

impl CoreSource {
    /// The executable, checked against the core.
    pub(crate) fn exe_path(&self) -> &Path {
        &self.exe_path
    }
}

impl From<CoreError> for SnapshotError {
    fn from(e: CoreError) -> Self {
        SnapshotError::Core(e)
    }
}

impl Source for CoreSource {
    type Memory = CoreMemory;
    type Stopped<'s> = CoreHold;

    fn pid(&self) -> i32 {
        self.pid
    }

    fn exe_display(&self) -> String {
        self.exe_path.display().to_string()
    }

    fn parse_executable(&self) -> Result<GoBinary, SnapshotError> {
        GoBinary::from_file(&self.exe_path, &self.exe).map_err(|source| SnapshotError::Exe {
            pid: self.pid,
            source,
        })
    }

    fn environ(&self) -> Option<&[u8]> {
        None
    }

    fn load_bias(&self, _bin: &GoBinary) -> Result<u64, SnapshotError> {
        Ok(self.matched.bias)
    }

    fn memory(&self) -> &CoreMemory {
        &self.mem
    }

    fn stop(&self, _which: Hold, _max_pause: Duration) -> Result<CoreHold, SnapshotError> {
        Ok(CoreHold(self.threads.clone()))
    }

    fn walk_error(&self, source: WalkError) -> SnapshotError {
        SnapshotError::Walk {
            pid: self.pid,
            source,
        }
    }

    fn taken_at(&self) -> Option<SystemTime> {
        self.written
    }

    fn nanotime(&self) -> Option<i64> {
        // Go's nanotime when the core was written, estimated from the
        // file's time: now on CLOCK_MONOTONIC minus the file's age. Zero
        // (no "N minutes") when that would predate this boot.
        let age = SystemTime::now().duration_since(self.written?).ok()?;
        let now = crate::walk::capture::monotonic_now();
        Some(
            now.saturating_sub(i64::try_from(age.as_nanos()).ok()?)
                .max(0),
        )
    }

    fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        if self.matched.checked_by.is_none() {
            w.push(format!(
                "the core holds none of {}'s bytes, so gopeek could not check that it is the right executable",
                self.exe_path.display()
            ));
        }
        if self.truncated > 0 {
            w.push(format!(
                "the core file is truncated: {} memory segments are cut short; goroutines there are reported as unavailable",
                self.truncated
            ));
        }
        w
    }
}

/// The "hold" of a core: its threads' registers as written.
pub(crate) struct CoreHold(Vec<HeldThread>);

impl Stopped for CoreHold {
    fn threads(&self) -> Vec<ThreadRegs> {
        self.0.iter().map(|t| t.regs).collect()
    }

    fn held_threads(&self) -> Vec<HeldThread> {
        self.0.clone()
    }

    fn within_budget(&self) -> bool {
        true
    }

    fn release(self) -> Result<PauseStats, SnapshotError> {
        Ok(PauseStats {
            threads: self.0.len(),
            ..PauseStats::default()
        })
    }
}
