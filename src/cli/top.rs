//! `gopeek top`: a live view of where a Go process spends CPU, refreshed
//! every second (per function, goroutine, label set or thread; keys f, g,
//! l, t; q or Ctrl-C quits), sampled like `gopeek record` without stopping
//! the target. `--once` records for `--duration` and prints one report
//! (text, or JSON with schema `gopeek.top/1`) for scripts.

use super::analysis::parse_duration;
use super::error::{CliError, Doing, UsageError};
use super::record::{
    announce_backend, begin_sudo, catch_stop_signals, forbid_writes_sampling, sampled,
    withhold_labels, BackendArg, STOP,
};
use super::ReportFormat;
use gopeek::output::{render_top, write_json, TopView};
use gopeek::profile::record::{RecordOptions, Session};
use gopeek::profile::top::TopReport;
use gopeek::sudo::privilege::SudoContext;
use std::collections::BTreeMap;
use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// `gopeek top` arguments.
#[derive(clap::Args)]
pub(crate) struct TopArgs {
    /// The process to watch.
    #[arg(long)]
    pid: i32,
    /// Samples per second of each thread's CPU time.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    rate: u32,
    /// Record for --duration, print one report and exit (for scripts).
    #[arg(long)]
    once: bool,
    /// With --once: how long to record.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    duration: Duration,
    /// With --once: text, or JSON (schema gopeek.top/1).
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    format: ReportFormat,
    /// How to sample: perf (default, never stops the target) or ptrace.
    #[arg(long, value_enum)]
    backend: Option<BackendArg>,
}

/// The terminal in non-canonical, no-echo mode on the alternate screen,
/// restored on drop (Ctrl-C still raises SIGINT, which ends the loop).
struct Screen {
    saved: libc::termios,
}

impl Screen {
    fn enter() -> Option<Screen> {
        // SAFETY: termios is plain data; tcgetattr fills it.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: fd 0 and a valid out-pointer.
        if unsafe { libc::tcgetattr(0, &mut t) } != 0 {
            return None;
        }
        let saved = t;
        t.c_lflag &= !(libc::ICANON | libc::ECHO);
        t.c_cc[libc::VMIN] = 0;
        t.c_cc[libc::VTIME] = 0;
        // SAFETY: fd 0 and a termios derived from the current one.
        unsafe { libc::tcsetattr(0, libc::TCSANOW, &t) };
        print!("\x1b[?1049h\x1b[?25l");
        let _ = io::stdout().flush();
        Some(Screen { saved })
    }

    fn size() -> (usize, usize) {
        // SAFETY: winsize is plain data; TIOCGWINSZ fills it.
        let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
        // SAFETY: fd 1 and a valid out-pointer.
        if unsafe { libc::ioctl(1, libc::TIOCGWINSZ, &mut ws) } == 0 && ws.ws_col > 0 {
            (usize::from(ws.ws_col), usize::from(ws.ws_row))
        } else {
            (120, 40)
        }
    }

    /// Keys typed within `wait`.
    fn keys(wait: Duration) -> Vec<u8> {
        let mut pfd = libc::pollfd {
            fd: 0,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, wait.as_millis() as i32) };
        if n <= 0 {
            return Vec::new();
        }
        let mut buf = [0u8; 64];
        // SAFETY: reading into our buffer.
        let r = unsafe { libc::read(0, buf.as_mut_ptr().cast(), buf.len()) };
        buf[..r.max(0) as usize].to_vec()
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        print!("\x1b[?25h\x1b[?1049l");
        let _ = io::stdout().flush();
        // SAFETY: restoring the attributes read at entry.
        unsafe { libc::tcsetattr(0, libc::TCSANOW, &self.saved) };
    }
}

/// Runs `gopeek top`.
pub(crate) fn run(a: TopArgs, sudo: Option<&SudoContext>) -> Result<ExitCode, CliError> {
    let live = !a.once;
    if live && !(io::stdin().is_terminal() && io::stdout().is_terminal()) {
        return Err(UsageError(
            "gopeek top needs a terminal; for scripts use --once [--duration 5s] [--format json]"
                .into(),
        )
        .into());
    }
    // Under sudo: the policy must allow profiling; the root monitor opens
    // the events of later threads (or makes the ptrace ticks' holds).
    let parts = begin_sudo(sudo, a.pid, a.backend != Some(BackendArg::Ptrace))?;
    forbid_writes_sampling()?;
    catch_stop_signals();
    let opts = RecordOptions {
        backend: BackendArg::backend(a.backend),
        rate_hz: a.rate,
        stack_bytes: if a.rate > 250 { 8192 } else { 16384 },
    };
    let p = parts.as_ref();
    let shown = |mut profile| {
        withhold_labels(&mut profile, p);
        TopReport::from_profile(&profile)
    };
    let watched = sampled(a.pid, opts, p, |s| {
        announce_backend(s);
        if live {
            live_view(s, &shown).map(|exited| (None, exited))
        } else {
            let t0 = Instant::now();
            let mut alive = true;
            while t0.elapsed() < a.duration && alive && !STOP.load(Ordering::SeqCst) {
                std::thread::sleep(s.sleep_hint());
                alive = s.tick();
            }
            Ok((Some(shown(s.take(Vec::new()))), !alive))
        }
    });
    if let Some((s, _)) = &parts {
        s.finish(match &watched {
            Ok(Ok((r, _))) => Ok(format!(
                "top {}",
                r.as_ref().map_or("live view".to_string(), |r| format!(
                    "duration_s={:.1}",
                    r.duration_s
                ))
            )),
            Ok(Err(e)) => Err(e.to_string()),
            Err(e) => Err(e.to_string()),
        });
    }
    let (report, exited) = watched??;
    if exited {
        eprintln!("gopeek: process {} exited", a.pid);
    }
    if let Some(r) = report {
        let stdout = io::stdout();
        let mut w = io::BufWriter::new(stdout.lock());
        match a.format {
            ReportFormat::Json => write_json(&r, true, &mut w).doing("writing the report")?,
            ReportFormat::Text => {
                let totals = r
                    .functions
                    .iter()
                    .map(|f| (f.function.clone(), (f.own_s, f.total_s)))
                    .collect();
                let text = render_top(
                    &r,
                    TopView::Functions,
                    &totals,
                    r.duration_s,
                    usize::MAX,
                    usize::MAX,
                );
                w.write_all(text.as_bytes())?;
            }
        }
        w.flush()?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The refreshing screen; `Ok(true)` when the target exited.
fn live_view(
    s: &mut Session<'_, '_>,
    shown: &dyn Fn(gopeek::profile::CpuProfile) -> TopReport,
) -> io::Result<bool> {
    let screen = Screen::enter();
    let t0 = Instant::now();
    let mut view = TopView::Functions;
    let mut last = Instant::now();
    let mut report: Option<TopReport> = None;
    let mut totals: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    let mut out = io::stdout();
    let exited = loop {
        let mut redraw = false;
        for k in Screen::keys(s.sleep_hint()) {
            let v = match k {
                b'f' => TopView::Functions,
                b'g' => TopView::Goroutines,
                b'l' => TopView::Labels,
                b't' => TopView::Threads,
                b'q' => {
                    STOP.store(true, Ordering::SeqCst);
                    continue;
                }
                _ => continue,
            };
            redraw |= v != view;
            view = v;
        }
        let alive = s.tick();
        if !alive {
            break true;
        }
        if STOP.load(Ordering::SeqCst) {
            break false;
        }
        if last.elapsed() >= Duration::from_secs(1) {
            last = Instant::now();
            let r = shown(s.take(Vec::new()));
            for f in &r.functions {
                let e = totals.entry(f.function.clone()).or_default();
                e.0 += f.own_s;
                e.1 += f.total_s;
            }
            report = Some(r);
            redraw = true;
        }
        if redraw {
            if let Some(r) = &report {
                let (w, h) = Screen::size();
                let text = render_top(
                    r,
                    view,
                    &totals,
                    t0.elapsed().as_secs_f64(),
                    w,
                    h.saturating_sub(1),
                );
                write!(out, "\x1b[H\x1b[2J{}", text.replace('\n', "\r\n"))?;
                out.flush()?;
            }
        }
    };
    drop(screen);
    Ok(exited)
}
