//! CPU profiles of a live Go process taken from outside (`gopeek record`,
//! `gopeek top`): samples from the kernel ([`crate::process::perf`]),
//! unwound after the fact with gopeek's pclntab unwinder, attributed to a
//! goroutine and its pprof labels ([`attribute`]), aggregated into a
//! [`CpuProfile`], plain data that the writers in `output/` turn into
//! pprof, speedscope, folded stacks or a flame graph.
//!
//! Nothing here stops the target: the kernel copies registers and the top
//! of the stack at each sample; gopeek reads the g's and M's it needs
//! while the target runs, once per drain (every few tens of ms).

pub(crate) mod attribute;
mod ptrace;
pub mod record;
mod symbols;
pub mod top;
pub mod wall;

use std::collections::BTreeMap;
use std::sync::Arc;

/// A goroutine's pprof labels (shared by every sample that has them).
pub type Labels = Arc<BTreeMap<String, String>>;

/// One logical frame of a profile stack.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProfFrame {
    /// The function as Go's own profile names it.
    pub function: Arc<str>,
    /// Source file.
    pub file: Arc<str>,
    /// Source line.
    pub line: i64,
    /// Runtime address of the physical frame (shared by its inlined
    /// frames).
    pub pc: u64,
    /// Inlined into the next frame (same physical frame).
    pub inlined: bool,
}

/// Aggregated samples with one stack, goroutine, label set and thread.
#[derive(Debug, Clone)]
pub struct CpuSample {
    /// Frames, leaf first, inlined frames before their physical frame.
    pub frames: Arc<[ProfFrame]>,
    /// The goroutine the thread ran (on the system stack: the M's current
    /// goroutine, as Go's profiler attributes labels); `None` for a
    /// thread with no goroutine (the scheduler, idle GC).
    pub goid: Option<u64>,
    /// That goroutine's pprof labels.
    pub labels: Option<Labels>,
    /// The thread sampled.
    pub tid: i32,
    /// Number of samples.
    pub count: u64,
    /// Taken in the kernel (system call time, as Go counts it, is on the
    /// Go frame that made the call).
    pub kernel: bool,
    /// Taken in C code (through cgo): outside Go and outside the vDSO,
    /// whose time calls are Go's own.
    pub external: bool,
}

/// What the recording saw besides the samples: nothing dropped silently.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RecordStats {
    /// Samples in the profile.
    pub samples: u64,
    /// Samples the kernel dropped (ring full).
    pub lost: u64,
    /// Samples without user registers (not in the profile).
    pub unattributed: u64,
    /// Samples whose stack could be followed only part of the way (in
    /// the profile, with the frames found).
    pub truncated: u64,
    /// Samples outside Go code that no frame pointer led back from
    /// (in the profile as `runtime._ExternalCode`, as Go counts them).
    pub external: u64,
    /// Threads seen.
    pub threads: u64,
    /// Times the kernel throttled the sampling.
    pub throttled: u64,
}

/// What a profile's samples measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Clock {
    /// CPU time: a thread sampled every period of the CPU time it used.
    #[default]
    Cpu,
    /// Wall-clock time (`record --wall`): every goroutine sampled every
    /// period of real time, running or parked.
    Wall,
}

impl Clock {
    /// The sample (and period) type's name in pprof: `cpu` or `wall`.
    pub fn pprof_type(self) -> &'static str {
        match self {
            Clock::Cpu => "cpu",
            Clock::Wall => "wall",
        }
    }

    /// How titles name the profile: `CPU` or `Wall time`.
    pub fn title(self) -> &'static str {
        match self {
            Clock::Cpu => "CPU",
            Clock::Wall => "Wall time",
        }
    }
}

/// A CPU (or wall-clock) profile of one process over one interval.
#[derive(Debug, Clone)]
pub struct CpuProfile {
    /// CPU or wall-clock time.
    pub clock: Clock,
    /// The process.
    pub pid: i32,
    /// Its executable, as the user should see it.
    pub exe: String,
    /// Its Go version (`go1.22.3`).
    pub go_version: String,
    /// Sampling period in nanoseconds of CPU time (of wall time for a
    /// wall-clock profile: the mean interval between its snapshots).
    pub period_ns: u64,
    /// When recording started (Unix nanoseconds).
    pub start_unix_ns: u64,
    /// How long it recorded (ns).
    pub duration_ns: u64,
    /// The samples.
    pub samples: Vec<CpuSample>,
    /// Counts of what was lost or partial.
    pub stats: RecordStats,
    /// How it was taken (backend, caveats), for the profile's comments.
    pub comments: Vec<String>,
}
