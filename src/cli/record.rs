//! `gopeek record`: a CPU profile of a live Go process, sampled from
//! outside without stopping it (perf events per thread), written as pprof,
//! speedscope, folded stacks or an SVG flame graph. Progress on stderr;
//! Ctrl-C ends early and still writes the profile; a target that exits
//! mid-record gives what was sampled. `--wall` records wall-clock time
//! instead: every goroutine, running or parked, at each of repeated
//! `--nonblocking` captures.

use super::analysis::parse_duration;
use super::error::{CliError, Doing, UsageError};
use gopeek::output::{write_cpu_folded, write_cpu_pprof, write_cpu_speedscope, write_cpu_svg};
use gopeek::process::monitor::Monitor;
use gopeek::profile::record::{with_session_as, Backend, Progress, RecordOptions, Session};
use gopeek::profile::wall::{
    with_wall_session, with_wall_session_on, WallSession, DEFAULT_WALL_HZ,
};
use gopeek::profile::CpuProfile;
use gopeek::sudo::privilege::{create_output, SudoContext};
use gopeek::sudo::SudoSession;
use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `gopeek record --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum RecordFormat {
    /// Gzipped pprof CPU profile, for `go tool pprof`.
    Pprof,
    /// speedscope's JSON (open at https://www.speedscope.app).
    Speedscope,
    /// Folded stacks with sample counts (flamegraph.pl, inferno).
    Folded,
    /// An SVG flame graph.
    Svg,
}

/// `--backend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum BackendArg {
    /// perf events per thread: the target never stops (default; falls
    /// back to ptrace when perf events are refused, unless named).
    Perf,
    /// Stop the running threads for a moment at each (jittered) tick.
    Ptrace,
}

impl BackendArg {
    pub(crate) fn backend(b: Option<BackendArg>) -> Backend {
        match b {
            None => Backend::PerfOrPtrace,
            Some(BackendArg::Perf) => Backend::Perf,
            Some(BackendArg::Ptrace) => Backend::Ptrace,
        }
    }
}

/// Says on stderr that the ptrace sampler runs, and why.
pub(crate) fn announce_backend(s: &Session<'_, '_>) {
    if let Some(why) = &s.fallback {
        eprintln!("gopeek: {why}");
        eprintln!("gopeek: falling back to --backend ptrace: the running threads are stopped for a moment at each tick");
    }
}

/// `gopeek record` arguments.
#[derive(clap::Args)]
pub(crate) struct RecordArgs {
    /// The process to profile.
    #[arg(long)]
    pid: i32,
    /// How long to record (500ms, 10s, 2m); Ctrl-C ends earlier.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Samples per second of each thread's CPU time [default: 100]; with
    /// --wall, captures of every goroutine per second [default: 20].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    rate: Option<u32>,
    #[arg(long, value_enum, default_value_t = RecordFormat::Pprof)]
    format: RecordFormat,
    /// How to sample: perf (default, never stops the target) or ptrace.
    #[arg(long, value_enum)]
    backend: Option<BackendArg>,
    /// Wall-clock time instead of CPU time: every goroutine, running or
    /// parked, sampled by repeated --nonblocking captures (sample type
    /// wall/nanoseconds), so time spent waiting shows beside CPU time.
    /// The threads running Go code are stopped for a moment at each.
    #[arg(long, conflicts_with = "backend")]
    wall: bool,
    /// Write the profile to FILE instead of stdout. Never follows a
    /// symlink; an existing file must be yours.
    #[arg(short = 'o', long, value_name = "FILE")]
    output: Option<PathBuf>,
}

pub(crate) static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// Ctrl-C and SIGTERM end the recording early (the profile is still
/// written); a second one kills gopeek (SA_RESETHAND). The target is never
/// traced by the perf backend, so nothing needs undoing either way.
pub(crate) fn catch_stop_signals() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: a zeroed sigaction with a handler that only stores to an
        // atomic (async-signal-safe).
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_stop_signal as extern "C" fn(libc::c_int) as *const () as usize;
            sa.sa_flags = libc::SA_RESETHAND | libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

/// The seccomp filters of a sampling command: `forbid_writes`, with
/// `perf_event_open` admitted for per-thread sampling events only.
pub(crate) fn forbid_writes_sampling() -> Result<(), CliError> {
    gopeek::process::seccomp::install_sampling_filter()
        .doing("installing the read-only seccomp filter")?;
    gopeek::process::seccomp::forbid_open_for_write()
        .doing("installing the no-write-open seccomp filter")?;
    Ok(())
}

fn progress_line(p: &Progress, total: Duration) -> String {
    format!(
        "gopeek: recording: {:.1}s/{:.1}s, {} samples, {} lost, {} threads",
        p.elapsed.as_secs_f64(),
        total.as_secs_f64(),
        p.samples,
        p.lost,
        p.threads
    )
}

/// `record` and `top` under sudo: the session, whose policy must allow
/// profiling the target (refusals logged, exit 4), and the root monitor,
/// forked while gopeek is root and single-threaded. `perf`: the monitor
/// also opens the perf events of threads created after the drop.
pub(crate) type SudoParts = (Arc<SudoSession>, Arc<Monitor>);

/// Begins `record`'s or `top`'s sudo session (`None` without sudo).
pub(crate) fn begin_sudo(
    sudo: Option<&SudoContext>,
    pid: i32,
    perf: bool,
) -> Result<Option<SudoParts>, CliError> {
    let Some(ctx) = sudo else { return Ok(None) };
    let session = SudoSession::begin_profiling(ctx, pid)?;
    let monitor = if perf {
        session.start_profiling_monitor()?
    } else {
        session.start_monitor()?
    };
    Ok(Some((session, monitor)))
}

/// Samples the target (CPU time, or wall time with `wall_rate`) with
/// `f` as the session's body: under sudo, through the root monitor and
/// after the privilege drop.
pub(crate) fn sampled<R>(
    pid: i32,
    opts: RecordOptions,
    sudo: Option<&SudoParts>,
    f: impl FnOnce(&mut Session<'_, '_>) -> R,
) -> Result<R, CliError> {
    match sudo {
        Some((s, m)) => with_session_as(
            pid,
            opts,
            Some(Arc::clone(m)),
            || s.drop_privileges().map_err(CliError::from),
            f,
        ),
        None => with_session_as(pid, opts, None, || Ok::<(), CliError>(()), f),
    }
}

/// Under sudo without `show_memory`: the profile loses its pprof labels
/// (memory contents), and says why. Goroutine ids stay, as in `dump`.
pub(crate) fn withhold_labels(p: &mut CpuProfile, sudo: Option<&SudoParts>) {
    let Some((s, _)) = sudo.filter(|(s, _)| !s.decision().show_memory) else {
        return;
    };
    for smp in &mut p.samples {
        smp.labels = None;
    }
    let why = format!(
        "pprof labels are not shown: not allowed by the sudo policy ({})",
        s.decision().reason
    );
    eprintln!("gopeek: note: {why}");
    p.comments.push(why);
}

/// Runs `gopeek record`.
pub(crate) fn run(a: RecordArgs, sudo: Option<&SudoContext>) -> Result<ExitCode, CliError> {
    let binary = matches!(a.format, RecordFormat::Pprof);
    if binary && a.output.is_none() && io::stdout().is_terminal() {
        return Err(UsageError(
            "a pprof profile is binary: write it with -o FILE or redirect stdout".into(),
        )
        .into());
    }
    let perf = !a.wall && a.backend != Some(BackendArg::Ptrace);
    let parts = begin_sudo(sudo, a.pid, perf)?;
    let out_file = match a
        .output
        .as_ref()
        .map(|p| create_output(p, sudo))
        .transpose()
    {
        Ok(f) => f,
        Err(e) => {
            if let Some((s, _)) = &parts {
                s.finish(Err(e.to_string()));
            }
            return Err(e.into());
        }
    };
    forbid_writes_sampling()?;
    catch_stop_signals();
    let tty = io::stderr().is_terminal();
    let recorded = if a.wall {
        let rate = a.rate.unwrap_or(DEFAULT_WALL_HZ);
        match &parts {
            Some((s, m)) => super::open_target(a.pid, Some(Arc::clone(m)), Some(s)).and_then(|t| {
                Ok(with_wall_session_on(&t, a.pid, rate, |s| {
                    record_loop(s, a.duration, tty)
                })?)
            }),
            None => with_wall_session(a.pid, rate, |s| record_loop(s, a.duration, tty))
                .map_err(CliError::from),
        }
    } else {
        let rate = a.rate.unwrap_or(100);
        let opts = RecordOptions {
            backend: BackendArg::backend(a.backend),
            rate_hz: rate,
            stack_bytes: if rate > 250 { 8192 } else { 16384 },
        };
        sampled(a.pid, opts, parts.as_ref(), |s| {
            announce_backend(s);
            record_loop(s, a.duration, tty)
        })
    };
    if let Some((s, _)) = &parts {
        s.finish(match &recorded {
            Ok((p, _)) => Ok(format!(
                "recorded duration_ms={} samples={} lost={}",
                p.duration_ns / 1_000_000,
                p.stats.samples,
                p.stats.lost
            )),
            Err(e) => Err(e.to_string()),
        });
    }
    let (mut profile, ended) = recorded?;
    withhold_labels(&mut profile, parts.as_ref());
    if tty {
        eprint!("\r\x1b[K");
    }
    let stdout = io::stdout();
    let sink: Box<dyn Write> = match out_file {
        Some(f) => Box::new(f),
        None => Box::new(stdout.lock()),
    };
    let mut w = io::BufWriter::with_capacity(1 << 16, sink);
    match a.format {
        RecordFormat::Pprof => write_cpu_pprof(&profile, &mut w),
        RecordFormat::Speedscope => write_cpu_speedscope(&profile, &mut w),
        RecordFormat::Folded => write_cpu_folded(&profile, &mut w),
        RecordFormat::Svg => write_cpu_svg(&profile, &mut w),
    }
    .doing("writing the profile")?;
    w.flush()?;
    let st = &profile.stats;
    if a.wall {
        return Ok(wall_summary(&profile, a.pid, ended));
    }
    match ended {
        End::Exited => eprintln!(
            "gopeek: process {} exited during the recording; the profile has the {} samples taken before",
            a.pid, st.samples
        ),
        End::Interrupted => eprintln!("gopeek: interrupted; the profile has what was sampled until then"),
        End::Done => {}
    }
    eprintln!(
        "gopeek: recorded {:.1}s: {} samples, {} lost, {} without registers, {} partial stacks, {} outside Go, {} threads",
        profile.duration_ns as f64 / 1e9,
        st.samples,
        st.lost,
        st.unattributed,
        st.truncated,
        st.external,
        st.threads
    );
    for c in profile
        .comments
        .iter()
        .filter(|c| c.starts_with("time in system calls"))
    {
        eprintln!("gopeek: warning: {c}");
    }
    // What the ptrace backend cost the target (scripts/bench reads it).
    for c in profile
        .comments
        .iter()
        .filter(|c| c.starts_with("backend ptrace:"))
    {
        eprintln!("gopeek: {c}");
    }
    Ok(ExitCode::SUCCESS)
}

/// What the record loop needs of a session, CPU or wall-clock.
trait Recorder {
    fn sleep_hint(&self) -> Duration;
    fn tick(&mut self) -> bool;
    fn progress(&self) -> Progress;
    fn take(&mut self, comments: Vec<String>) -> CpuProfile;
    fn progress_line(&self, total: Duration) -> String {
        progress_line(&self.progress(), total)
    }
}

impl Recorder for Session<'_, '_> {
    fn sleep_hint(&self) -> Duration {
        Session::sleep_hint(self)
    }
    fn tick(&mut self) -> bool {
        Session::tick(self)
    }
    fn progress(&self) -> Progress {
        Session::progress(self)
    }
    fn take(&mut self, comments: Vec<String>) -> CpuProfile {
        Session::take(self, comments)
    }
}

impl Recorder for WallSession<'_, '_, '_, '_> {
    fn sleep_hint(&self) -> Duration {
        WallSession::sleep_hint(self)
    }
    fn tick(&mut self) -> bool {
        WallSession::tick(self)
    }
    fn progress(&self) -> Progress {
        WallSession::progress(self)
    }
    fn take(&mut self, comments: Vec<String>) -> CpuProfile {
        WallSession::take(self, comments)
    }
    fn progress_line(&self, total: Duration) -> String {
        let p = self.progress();
        format!(
            "gopeek: recording wall time: {:.1}s/{:.1}s, {} captures, {} samples, {} goroutines, {} failed",
            p.elapsed.as_secs_f64(),
            total.as_secs_f64(),
            self.captures(),
            p.samples,
            p.threads,
            p.lost
        )
    }
}

/// Ticks until the duration, Ctrl-C or the target's exit; the profile
/// and how it ended.
fn record_loop(s: &mut impl Recorder, duration: Duration, tty: bool) -> (CpuProfile, End) {
    let t0 = Instant::now();
    let mut last_print = Instant::now();
    let ended = loop {
        // Short sleeps, so that Ctrl-C is seen within 25 ms.
        std::thread::sleep(s.sleep_hint().min(Duration::from_millis(25)));
        let alive = s.tick();
        if !alive {
            break End::Exited;
        }
        if STOP.load(Ordering::SeqCst) {
            break End::Interrupted;
        }
        if t0.elapsed() >= duration {
            break End::Done;
        }
        if tty && last_print.elapsed() >= Duration::from_millis(250) {
            last_print = Instant::now();
            eprint!("\r{}\x1b[K", s.progress_line(duration));
        }
    };
    let p = s.progress();
    let mut comments = Vec::new();
    match ended {
        End::Interrupted => comments.push(format!(
            "interrupted after {:.1}s of {:.1}s",
            p.elapsed.as_secs_f64(),
            duration.as_secs_f64()
        )),
        End::Exited => comments.push(format!(
            "the process exited after {:.1}s",
            p.elapsed.as_secs_f64()
        )),
        End::Done => {}
    }
    (s.take(comments), ended)
}

/// The closing lines of `record --wall` on stderr.
fn wall_summary(profile: &CpuProfile, pid: i32, ended: End) -> ExitCode {
    let st = &profile.stats;
    match ended {
        End::Exited => eprintln!(
            "gopeek: process {pid} exited during the recording; the profile has the {} samples taken before",
            st.samples
        ),
        End::Interrupted => eprintln!("gopeek: interrupted; the profile has what was sampled until then"),
        End::Done => {}
    }
    let captures = profile.duration_ns / profile.period_ns.max(1);
    eprintln!(
        "gopeek: recorded {:.1}s of wall time: {} captures (mean {:.1} ms apart), {} goroutine samples, {} given up (stack kept changing), {} partial stacks",
        profile.duration_ns as f64 / 1e9,
        captures,
        profile.period_ns as f64 / 1e6,
        st.samples,
        st.unattributed,
        st.truncated
    );
    for c in profile
        .comments
        .iter()
        .filter(|c| c.contains("captures failed"))
    {
        eprintln!("gopeek: warning: {c}");
    }
    // How long the captures stopped the running threads (scripts/bench).
    for c in profile
        .comments
        .iter()
        .filter(|c| c.starts_with("wall clock:"))
    {
        eprintln!("gopeek: {c}");
    }
    ExitCode::SUCCESS
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Done,
    Interrupted,
    Exited,
}
