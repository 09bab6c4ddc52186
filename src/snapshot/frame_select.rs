//! `gopeek print --goroutine N [--frame K]`: which frame of which
//! goroutine, and where its variables are looked up.
//!
//! Frames are counted as `gopeek dump` prints them (without `--system`:
//! the frames Go's traceback shows at GOTRACEBACK=all, inlined calls
//! included), innermost first, from 0. Without `--frame`, the frame is the
//! innermost one that is user code: not in the runtime or the standard
//! library (its file is not under the GOROOT the runtime's frames were
//! built in; with -trimpath, its package path's first element has a dot
//! or is `main`); the innermost shown frame if there is none.

use crate::dump::{Frame, GoroutineSnapshot};
use crate::value::locals::FrameAt;
use crate::value::regs::FrameRegs;

/// `_Grunning`, the same in every Go release.
const GRUNNING: u32 = 2;

/// The frame asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameSel {
    /// Goroutine id.
    pub goroutine: u64,
    /// Frame index as `dump` prints them; `None`: the innermost user frame.
    pub frame: Option<usize>,
    /// Print every argument and local instead of expressions.
    pub all_locals: bool,
}

/// The frame that was read, for the output's header.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FrameInfo {
    /// Goroutine id.
    pub goroutine: u64,
    /// Index among the frames `dump` prints.
    pub frame: usize,
    /// Function, as dump prints it.
    pub function: String,
    /// Source file.
    pub file: String,
    /// Line of the PC (the call, in a caller).
    pub line: i64,
}

/// The GOROOT source prefix the runtime's frames show (`/usr/lib/go/src/`),
/// empty with -trimpath.
fn goroot_src(frames: &[Frame]) -> String {
    frames
        .iter()
        .filter(|f| f.function.starts_with("runtime."))
        .find_map(|f| {
            f.file
                .find("/src/runtime/")
                .map(|i| f.file[..i + 5].to_string())
        })
        .unwrap_or_default()
}

fn is_std(f: &Frame, goroot: &str) -> bool {
    if !goroot.is_empty() {
        return f.file.starts_with(goroot);
    }
    let (first, has_path) = match f.function.find('/') {
        Some(i) => (&f.function[..i], true),
        None => (f.function.split('.').next().unwrap_or(""), false),
    };
    !(first == "main" || (has_path && first.contains('.')))
}

/// Picks the frame of `g` that `sel` names and where to look its
/// variables up. `bias`: runtime minus link address.
pub fn select(
    g: &GoroutineSnapshot,
    sel: &FrameSel,
    bias: u64,
) -> Result<(FrameInfo, FrameAt), String> {
    let shown: Vec<usize> = (0..g.frames.len())
        .filter(|&i| !g.frames[i].runtime)
        .collect();
    if shown.is_empty() {
        return Err(format!(
            "goroutine {} has no frames to read{}",
            g.id,
            g.error
                .as_deref()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default()
        ));
    }
    let k = match sel.frame {
        Some(k) => {
            if k >= shown.len() {
                return Err(format!(
                    "goroutine {} has {} frames (0 to {}); --frame {k} is past them (gopeek dump shows them)",
                    g.id,
                    shown.len(),
                    shown.len() - 1
                ));
            }
            k
        }
        None => {
            let root = goroot_src(&g.frames);
            shown
                .iter()
                .position(|&i| !is_std(&g.frames[i], &root))
                .unwrap_or(0)
        }
    };
    let i = shown[k];
    let f = &g.frames[i];
    // The physical frame this one is (inlined into): the next non-inlined.
    let phys = (i..g.frames.len())
        .find(|&j| !g.frames[j].inlined)
        .ok_or("the frame's physical frame is missing")?;
    let pf = &g.frames[phys];
    if pf.fp == 0 {
        return Err(format!(
            "the frame of {} has no frame size (no pcsp)",
            pf.function
        ));
    }
    // The innermost physical frame, or one a signal interrupted, is at its
    // PC; a caller is at its call instruction (return address - 1).
    let prev_phys = g.frames[..phys].iter().rev().find(|p| !p.inlined);
    let at_pc = match prev_phys {
        None => true,
        Some(p) => matches!(
            &*p.function,
            "runtime.sigpanic" | "runtime.asyncPreempt" | "runtime.debugCallV2"
        ),
    };
    let pc = if at_pc { pf.pc } else { pf.pc.wrapping_sub(1) };
    Ok((
        FrameInfo {
            goroutine: g.id,
            frame: k,
            function: f.function.to_string(),
            file: f.file.to_string(),
            line: f.line,
        },
        FrameAt {
            pc: pc.wrapping_sub(bias),
            cfa: pf.fp,
            bias,
            inline_level: phys - i,
            // Only a running goroutine's innermost frame has its own
            // registers (the caller fills them in when it holds them).
            regs: if prev_phys.is_none() && g.raw_status == GRUNNING {
                FrameRegs::Running
            } else {
                FrameRegs::NotOwn
            },
            arm64: false,
        },
    ))
}
