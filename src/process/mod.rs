//! Live processes: find them in `/proc`, hold them still, copy their memory.
//!
//! A `gopeek dump --pid` runs through this module in a fixed order, chosen
//! so that the target is held as briefly as possible and never modified:
//!
//! 1. [`seccomp`]: gopeek forbids itself every syscall that could write to
//!    another process (and, once its output is open, any open for writing);
//! 2. [`proc_fs`]: the executable (opened through `/proc/PID/exe`), the
//!    load bias and the thread list are read while the target still runs;
//! 3. [`SeizedProcess::seize`] stops every thread with PTRACE_SEIZE +
//!    PTRACE_INTERRUPT (no signal is sent) and reads their registers;
//! 4. [`LiveMemory`] copies the memory the walker needs, in batches;
//! 5. dropping the [`SeizedProcess`] (or [`SeizedProcess::detach`]) resumes
//!    the target and reports the pause; everything else (walking,
//!    unwinding, symbolizing, formatting) happens afterwards, on the copy.
//!
//! [`signals`] documents (and tests verify) why Ctrl-C, SIGTERM, a panic
//! or `kill -9` of gopeek all leave the target running and untraced.

mod attach;
mod error;
mod exit_codes;
mod live_memory;
pub mod monitor;
pub mod namespace;
pub mod perf;
pub mod permission;
pub mod proc_fs;
mod registers;
pub mod seccomp;
pub mod signals;
mod sys;

pub(crate) use attach::TickTracer;
pub use attach::{PauseStats, SeizeOptions, SeizedProcess, StopKind, ThreadState};
pub use error::ProcessError;
pub use live_memory::LiveMemory;
pub use registers::Registers;
