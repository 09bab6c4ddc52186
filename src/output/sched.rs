//! `gopeek sched`'s writers: the stop-the-world summary in plain words
//! (printed first), then the target's own `schedtrace` text; or one JSON
//! document, schema `gopeek.sched/1`.

use crate::analyze::stw::{StwParty, StwReport};
use crate::gotrace::sched::{schedtrace_text, GcState, MState, PState, SchedState};
use std::io::{self, Write};

/// The JSON document of one reading (`gopeek.sched/1`).
#[derive(Debug, serde::Serialize)]
pub struct SchedJson<'a> {
    /// Always `gopeek.sched/1`.
    pub schema: &'static str,
    /// The target.
    pub pid: i32,
    /// Its executable.
    pub exe: &'a str,
    /// Its Go version.
    pub go_version: &'a str,
    /// When the reading was taken (RFC 3339).
    pub taken_at: &'a str,
    /// How long the target was held, µs (`--consistent`), else null.
    pub pause_us: Option<u64>,
    /// `SCHED <N>ms`.
    pub uptime_ms: i64,
    /// The SCHED line's fields, named as Go prints them.
    pub gomaxprocs: i32,
    /// `idleprocs=`.
    pub idleprocs: i32,
    /// `threads=`.
    pub threads: i32,
    /// `spinningthreads=`.
    pub spinningthreads: i32,
    /// `needspinning=` (1.21+).
    pub needspinning: Option<u32>,
    /// `idlethreads=`.
    pub idlethreads: i32,
    /// `runqueue=`.
    pub runqueue: i32,
    /// `gcwaiting=`.
    pub gcwaiting: bool,
    /// `nmidlelocked=`.
    pub nmidlelocked: i32,
    /// `stopwait=`.
    pub stopwait: i32,
    /// `sysmonwait=`.
    pub sysmonwait: bool,
    /// The P lines.
    pub ps: &'a [PState],
    /// The M lines.
    pub ms: &'a [MState],
    /// The GC (null where its globals were not found).
    pub gc: Option<&'a GcState>,
    /// The stop-the-world analysis.
    pub stw: &'a StwReport,
}

impl<'a> SchedJson<'a> {
    /// The document for one reading.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        pid: i32,
        exe: &'a str,
        go_version: &'a str,
        taken_at: &'a str,
        pause_us: Option<u64>,
        s: &'a SchedState,
        stw: &'a StwReport,
    ) -> Self {
        SchedJson {
            schema: "gopeek.sched/1",
            pid,
            exe,
            go_version,
            taken_at,
            pause_us,
            uptime_ms: s.uptime_ms,
            gomaxprocs: s.gomaxprocs,
            idleprocs: s.idleprocs,
            threads: s.threads,
            spinningthreads: s.spinningthreads,
            needspinning: s.needspinning,
            idlethreads: s.idlethreads,
            runqueue: s.runqueue,
            gcwaiting: s.gcwaiting,
            nmidlelocked: s.nmidlelocked,
            stopwait: s.stopwait,
            sysmonwait: s.sysmonwait,
            ps: &s.ps,
            ms: &s.ms,
            gc: s.gc.as_ref(),
            stw,
        }
    }
}

fn who(p: &StwParty) -> String {
    let mut s = format!("P{}", p.p);
    if let Some(m) = p.m {
        s.push_str(&format!(" / M{m}"));
    }
    if let Some(t) = p.thread_id {
        s.push_str(&format!(" (thread {t})"));
    }
    s
}

fn goroutine(p: &StwParty) -> String {
    match p.goroutine {
        Some(g) => {
            let mut s = format!("goroutine {g}");
            if let Some(ms) = p.running_ms {
                s.push_str(&format!(", running for {ms} ms without rescheduling"));
            }
            s
        }
        None => "no goroutine".to_string(),
    }
}

fn stack(w: &mut dyn Write, p: &StwParty) -> io::Result<()> {
    for f in &p.frames {
        let mark = if f.unsafe_point {
            "  [async-unsafe]"
        } else {
            ""
        };
        writeln!(w, "      {}{mark}", f.function)?;
        writeln!(w, "          {}:{} pc={:#x}", f.file, f.line, f.pc)?;
    }
    Ok(())
}

/// The stop-the-world summary, in words, before the detail.
pub fn write_stw(w: &mut dyn Write, r: &StwReport) -> io::Result<()> {
    if r.pending {
        let since = r
            .since_ms
            .map(|ms| format!(" for {ms} ms"))
            .unwrap_or_default();
        if r.stopwait > 0 {
            writeln!(
                w,
                "STOP-THE-WORLD PENDING{since}: waiting for {} P(s) to stop",
                r.stopwait
            )?;
        } else {
            writeln!(w, "STOP-THE-WORLD IN FORCE{since}: the world is stopped")?;
        }
        match &r.reason {
            Some(reason) => writeln!(w, "  reason: {reason}")?,
            None => writeln!(w, "  reason: not recorded by the runtime")?,
        }
        match &r.initiator {
            Some(i) => {
                writeln!(w, "  started by: {}, {}", who(i), goroutine(i))?;
                stack(w, i)?;
            }
            None => writeln!(w, "  started by: unknown (no stopped P kept its M)")?,
        }
        for b in &r.waiting_for {
            writeln!(w, "  waiting for: {}, {}", who(b), goroutine(b))?;
            for why in &b.why {
                writeln!(w, "    why: {why}")?;
            }
            stack(w, b)?;
        }
    } else if r.hogs.is_empty() {
        writeln!(w, "no stop-the-world pending; no goroutine hogging a P")?;
    } else {
        writeln!(w, "no stop-the-world pending; CPU hog(s):")?;
        for b in &r.hogs {
            writeln!(w, "  {}: {}", who(b), goroutine(b))?;
            for why in &b.why {
                writeln!(w, "    why: {why}")?;
            }
            stack(w, b)?;
        }
    }
    if !r.in_syscall.is_empty() {
        let ids: Vec<String> = r.in_syscall.iter().map(|g| g.to_string()).collect();
        writeln!(
            w,
            "  not blamed: goroutine(s) {} in a syscall or cgo call (a stop-the-world takes their P)",
            ids.join(", ")
        )?;
    }
    Ok(())
}

/// The text of one reading: the summary, a blank line, the trace.
pub fn write_sched_text(
    w: &mut dyn Write,
    s: &SchedState,
    stw: &StwReport,
    detailed: bool,
) -> io::Result<()> {
    write_stw(w, stw)?;
    writeln!(w)?;
    w.write_all(schedtrace_text(s, detailed).as_bytes())
}
