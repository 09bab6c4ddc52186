//! Which frames and goroutines Go's traceback shows (runtime/traceback.go,
//! per version): `showframe`, wrapper hiding by FuncID, the elision of
//! deep stacks, and `isSystemGoroutine`. The walker marks frames with these
//! rules, and the text, grouping and profile writers read the marks, so a
//! frame is hidden for the same reason everywhere.

use crate::dump::{Frame, GoroutineSnapshot};

/// FuncIDs that the filter compares against; Go renumbers them between
/// releases (runtime/abi/symtab.go of each version).
#[derive(Debug, Clone, Copy)]
pub(crate) struct FuncIds {
    pub(crate) wrapper: u8,
    pub(crate) gopanic: u8,
    pub(crate) sigpanic: u8,
    pub(crate) panicwrap: u8,
    /// `runFinalizers`/`runCleanups`: always shown from Go 1.25.
    pub(crate) always_shown: [u8; 2],
}

impl FuncIds {
    pub(crate) fn for_minor(minor: u32) -> FuncIds {
        match minor {
            0..=21 => FuncIds {
                wrapper: 21,
                gopanic: 9,
                sigpanic: 18,
                panicwrap: 14,
                always_shown: [0, 0],
            },
            22..=24 => FuncIds {
                wrapper: 22,
                gopanic: 10,
                sigpanic: 19,
                panicwrap: 15,
                always_shown: [0, 0],
            },
            _ => FuncIds {
                wrapper: 23,
                gopanic: 10,
                sigpanic: 20,
                panicwrap: 15,
                always_shown: [18, 19],
            },
        }
    }
}

/// Go's `isExportedRuntime`: `runtime.Goexit`, `runtime.(*Func).Name`.
pub(crate) fn is_exported_runtime(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("runtime.") else {
        return false;
    };
    if rest.is_empty() {
        return false;
    }
    let (rcvr, func) = match rest.rfind('.') {
        Some(i) => {
            let mut r = &rest[..i];
            if r.len() >= 3 && r.starts_with("(*") && r.ends_with(')') {
                r = &r[2..r.len() - 1];
            }
            (r, &rest[i + 1..])
        }
        None => ("", rest),
    };
    let upper = |s: &str| {
        s.as_bytes()
            .first()
            .map(|c| c.is_ascii_uppercase())
            .unwrap_or(false)
    };
    upper(func) && (rcvr.is_empty() || upper(rcvr))
}

/// Go's `showfuncinfo` at GOTRACEBACK=all: `true` if the frame prints.
pub(crate) fn shows_frame(
    ids: &FuncIds,
    raw_name: &str,
    func_id: u8,
    first_frame: bool,
    callee_id: u8,
) -> bool {
    if func_id != 0
        && func_id == ids.wrapper
        && !(callee_id == ids.gopanic || callee_id == ids.sigpanic || callee_id == ids.panicwrap)
    {
        return false;
    }
    if func_id != 0 && ids.always_shown.contains(&func_id) {
        return true;
    }
    if raw_name == "runtime.gopanic" && !first_frame {
        return true;
    }
    raw_name.contains('.') && (!raw_name.starts_with("runtime.") || is_exported_runtime(raw_name))
}

/// A logical frame before filtering, with what the filter needs.
#[derive(Debug, Clone)]
pub(crate) struct RawFrame {
    pub(crate) frame: Frame,
    pub(crate) raw_name: std::sync::Arc<str>,
    pub(crate) func_id: u8,
}

/// Marks each frame `runtime` (hidden) or not, following Go's walk: the
/// first-frame rule and the callee's FuncID carry along the stack. If no
/// frame would print, Go prints them all, and so do we.
pub(crate) fn mark_hidden(frames: &mut [RawFrame], ids: &FuncIds) {
    let mut printed = 0usize;
    let mut callee = 0u8; // FuncIDNormal
    for f in frames.iter_mut() {
        let show = shows_frame(ids, &f.raw_name, f.func_id, printed == 0, callee);
        callee = f.func_id;
        f.frame.runtime = !show;
        if show {
            printed += 1;
        }
    }
}

/// What the text output prints for a stack: the visible frames, and where
/// Go would put its elision marker.
pub(crate) enum Elided<'a> {
    All(Vec<&'a Frame>),
    /// Go 1.21+: first 50, `...N frames elided...`, last 50.
    Middle {
        head: Vec<&'a Frame>,
        elided: usize,
        tail: Vec<&'a Frame>,
    },
    /// Go 1.19/1.20: the walk stops after 100 physical frames, then
    /// `...additional frames elided...`.
    Truncated(Vec<&'a Frame>),
}

/// Applies the version's elision rule to the printable frames.
/// `physical_of[i]` (the physical frame of logical frame `i`) serves the
/// pre-1.21 rule.
pub(crate) fn elide<'a>(
    minor: u32,
    frames: &'a [Frame],
    physical_of: &[usize],
    system: bool,
) -> Elided<'a> {
    let visible: Vec<(usize, &Frame)> = frames
        .iter()
        .enumerate()
        .filter(|(_, f)| system || !f.runtime)
        .collect();
    let any_visible = !visible.is_empty();
    // "If nothing would print, print everything."
    let visible: Vec<(usize, &Frame)> = if any_visible {
        visible
    } else {
        frames.iter().enumerate().collect()
    };
    if minor >= 21 {
        const INNER: usize = 50;
        const OUTER: usize = 50;
        if visible.len() <= INNER + OUTER {
            return Elided::All(visible.into_iter().map(|(_, f)| f).collect());
        }
        let head = visible[..INNER].iter().map(|(_, f)| *f).collect();
        let tail = visible[visible.len() - OUTER..]
            .iter()
            .map(|(_, f)| *f)
            .collect();
        Elided::Middle {
            head,
            elided: visible.len() - INNER - OUTER,
            tail,
        }
    } else {
        // Go 1.19 walks at most 100 physical frames (hidden ones count)
        // and prints the marker only if it printed exactly 100 frames.
        const MAX_PHYSICAL: usize = 100;
        let kept: Vec<&Frame> = visible
            .into_iter()
            .filter(|(i, _)| physical_of.get(*i).copied().unwrap_or(0) < MAX_PHYSICAL)
            .map(|(_, f)| f)
            .collect();
        if kept.len() == MAX_PHYSICAL {
            Elided::Truncated(kept)
        } else {
            Elided::All(kept)
        }
    }
}

/// Go's `isSystemGoroutine` by the name of the goroutine's start
/// function: runtime goroutines are hidden at GOTRACEBACK=all, except the
/// ones that run user code.
pub(crate) fn is_system_start(start_function: &str) -> bool {
    start_function.starts_with("runtime.")
        && !matches!(
            start_function,
            "runtime.main" | "runtime.corostart" | "runtime.handleAsyncEvent"
        )
}

/// The frames a reader of Go's traceback sees: runtime internals and
/// wrappers are hidden unless `system` (GOTRACEBACK=system) is asked for.
pub(crate) fn shown_frames(g: &GoroutineSnapshot, system: bool) -> impl Iterator<Item = &Frame> {
    g.frames.iter().filter(move |f| system || !f.runtime)
}

/// Whether a goroutine is listed at all: Go hides goroutines started by
/// the runtime (GC workers, finalizers...) unless GOTRACEBACK=system, and
/// so do its goroutine profiles.
pub fn listed(g: &GoroutineSnapshot, system: bool) -> bool {
    system || !g.system
}

/// For Go 1.19's 100-frame limit, which counts physical frames: the
/// physical index of each logical frame (inlined frames share their
/// caller's).
pub(crate) fn physical_indices(frames: &[Frame]) -> Vec<usize> {
    let mut phys = Vec::with_capacity(frames.len());
    let mut n = 0usize;
    for f in frames {
        phys.push(n);
        if !f.inlined {
            n += 1;
        }
    }
    phys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exported_runtime_names() {
        assert!(is_exported_runtime("runtime.Goexit"));
        assert!(is_exported_runtime("runtime.(*Func).Name"));
        assert!(!is_exported_runtime("runtime.gopark"));
        assert!(!is_exported_runtime("runtime.(*mheap).Alloc"));
        assert!(!is_exported_runtime("main.main"));
    }

    #[test]
    fn filter_hides_runtime_and_wrappers() {
        let ids = FuncIds::for_minor(27);
        assert!(!shows_frame(&ids, "runtime.gopark", 0, true, 0));
        assert!(shows_frame(&ids, "main.worker", 0, true, 0));
        assert!(!shows_frame(&ids, "main.(*T).M", ids.wrapper, false, 0));
        assert!(shows_frame(
            &ids,
            "main.(*T).M",
            ids.wrapper,
            false,
            ids.gopanic
        ));
        assert!(shows_frame(&ids, "runtime.gopanic", ids.gopanic, false, 0));
        assert!(!shows_frame(&ids, "runtime.gopanic", ids.gopanic, true, 0));
        assert!(!shows_frame(&ids, "nodot", 0, true, 0));
    }

    fn frame(name: &str) -> Frame {
        Frame {
            function: name.into(),
            file: "f.go".into(),
            line: 1,
            pc: 0,
            inlined: false,
            runtime: false,
            offset: None,
            sp: 0,
            fp: 0,
        }
    }

    #[test]
    fn elision_matches_go_121() {
        let frames: Vec<Frame> = (0..151).map(|i| frame(&format!("main.f{i}"))).collect();
        let phys: Vec<usize> = (0..151).collect();
        match elide(21, &frames, &phys, false) {
            Elided::Middle { head, elided, tail } => {
                assert_eq!((head.len(), elided, tail.len()), (50, 51, 50));
                assert_eq!(&*tail[0].function, "main.f101");
            }
            _ => panic!("expected elision"),
        }
        assert!(
            matches!(elide(21, &frames[..100], &phys[..100], false), Elided::All(v) if v.len() == 100)
        );
        match elide(19, &frames, &phys, false) {
            Elided::Truncated(v) => assert_eq!(v.len(), 100),
            _ => panic!("expected truncation"),
        }
        // Go 1.19 quirk: hidden frames count against the 100-frame walk but
        // the marker needs 100 printed frames.
        let mut hidden = frames.clone();
        hidden[0].runtime = true;
        assert!(matches!(elide(19, &hidden, &phys, false), Elided::All(v) if v.len() == 99));
    }
}
