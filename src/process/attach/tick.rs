//! [`TickTracer`]: one tracer thread for a whole recording, holding the
//! target briefly at each tick (the ptrace sampler's).

use super::tracer::{hold_once, tune_tick_thread};
use super::{PauseStats, ThreadState};
use crate::process::error::ProcessError;
use std::sync::mpsc;
use std::time::Duration;

/// What one tick of a [`TickTracer`] hands back.
pub(crate) type TickResult<T> = Result<(T, PauseStats), ProcessError>;

/// A tracer thread kept for a whole recording, running one short hold
/// per tick ([`super::SeizedProcess::run_held`]'s protocol): the ptrace
/// sampler's, so that a thread is not created and torn down 100 times a
/// second (about 6% of gopeek's own CPU at 100 Hz). Between ticks it
/// holds nothing (every tick detaches what it stopped) and waits for the
/// next request; it ends when this value is dropped, and if gopeek dies
/// meanwhile the kernel detaches whatever it held, as for any tracer
/// thread (see the parent module).
pub(crate) struct TickTracer<T> {
    jobs: Option<mpsc::Sender<(i32, Duration, Vec<i32>)>>,
    results: mpsc::Receiver<TickResult<T>>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl<T: Send + 'static> TickTracer<T> {
    /// Starts the thread; `f` runs on it at each tick, on the stopped
    /// threads' registers, before they are let go (keep it short: reads
    /// of registers and stacks only).
    pub(crate) fn start(
        mut f: impl FnMut(&[ThreadState]) -> T + Send + 'static,
    ) -> Result<Self, ProcessError> {
        let (jobs, job_rx) = mpsc::channel::<(i32, Duration, Vec<i32>)>();
        let (res_tx, results) = mpsc::channel::<TickResult<T>>();
        let handle = std::thread::Builder::new()
            .name("gopeek-tracer".into())
            .spawn(move || {
                tune_tick_thread();
                for (pid, budget, only) in job_rx {
                    let r = hold_once(pid, budget, Some(only), &mut f);
                    if res_tx.send(r).is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| ProcessError::TracerThread(e.to_string()))?;
        Ok(TickTracer {
            jobs: Some(jobs),
            results,
            handle: Some(handle),
        })
    }

    /// Stops the threads `only` of `pid` (which must have passed
    /// [`super::SeizedProcess::precheck`]), runs `f` on them, lets them go.
    pub(crate) fn tick(&mut self, pid: i32, budget: Duration, only: Vec<i32>) -> TickResult<T> {
        let ended = || ProcessError::TracerThread("the tracer thread ended unexpectedly".into());
        let _defer = crate::process::signals::StopSignalDeferral::new();
        self.jobs
            .as_ref()
            .ok_or_else(ended)?
            .send((pid, budget, only))
            .map_err(|_| ended())?;
        self.results.recv().map_err(|_| ended())?
    }
}

impl<T> Drop for TickTracer<T> {
    /// Ends the thread (it holds nothing between ticks) and waits for it.
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
