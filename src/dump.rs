//! The snapshot as plain data (JSON schema `gopeek.dump/1`): what every
//! output format is fed, so that formats never re-read the target.

use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// One whole `gopeek dump`.
#[derive(Debug, Clone, Serialize)]
pub struct DumpSnapshot {
    /// `gopeek.dump/1`: scripts check it before reading anything else.
    pub schema: &'static str,
    /// The target as the host sees it.
    pub pid: i32,
    /// The target's pid inside its own (innermost) pid namespace, as the
    /// process and a `ps` in its container see it; equal to `pid` outside
    /// containers, `null` when unknown.
    pub nspid: Option<i32>,
    /// The container id (64 hex digits) the target's cgroup names, `null`
    /// outside containers.
    pub container: Option<String>,
    /// The target's executable (its `/proc/PID/exe` link).
    pub exe: String,
    /// The Go release the target was built with (`go1.27.4`).
    pub go_version: String,
    /// Go minor version; decides Go's own printing rules (elision, the
    /// `created by ... in goroutine N` form).
    #[serde(skip)]
    pub go_minor: u32,
    /// The target's runtime prints labels in goroutine headers
    /// (GODEBUG tracebacklabels=1, Go 1.26+), so Go-identical text does too.
    #[serde(skip)]
    pub header_labels: bool,
    /// RFC 3339, UTC.
    pub taken_at: String,
    /// How long the target was held stopped, in microseconds.
    pub pause_us: u64,
    /// `consistent` (every goroutine as of one instant, the default) or
    /// `nonblocking` (each goroutine consistent on its own).
    pub mode: &'static str,
    /// Every goroutine, system ones included (`system` marks them), in
    /// the order of the runtime's `allgs`, which is Go's own order.
    pub goroutines: Vec<GoroutineSnapshot>,
    /// Problems that did not stop the dump (a thread that vanished, a g
    /// that could not be read).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Set when memory contents were withheld (the sudo policy's
    /// `show_memory = false`): says what is missing and why, so that a
    /// `labels: null` is not mistaken for "no labels".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl DumpSnapshot {
    /// Drops every memory content the dump carries beyond stacks and
    /// states (pprof labels, argument values) and records `why` in [`Self::note`].
    pub fn hide_memory_contents(&mut self, why: &str) {
        for g in &mut self.goroutines {
            g.labels = None;
            g.args = None;
        }
        self.header_labels = false;
        self.note = Some(format!(
            "memory contents (labels, arguments) not shown: {why}"
        ));
    }
}

/// One goroutine as Go's traceback would describe it. Serialized by hand
/// (below) so that each frame object carries the goroutine's own `args`;
/// the JSON has the fields up to `error` (not `args` itself, nor those
/// after it).
#[derive(Debug, Clone)]
pub struct GoroutineSnapshot {
    /// The goroutine id (`goid`).
    pub id: u64,
    /// The text Go prints inside the header's brackets before the first
    /// comma (`chan receive`, `running`, `IO wait (scan)`). Shared: a
    /// million goroutines hold a handful of distinct texts.
    pub status: Arc<str>,
    /// Whole minutes blocked, as Go prints them (only when ≥ 1).
    pub wait_minutes: Option<u64>,
    /// Wired to its thread (`runtime.LockOSThread`): `, locked to thread`.
    pub locked_to_thread: bool,
    /// OS thread id the goroutine runs on (running, or blocked in a syscall
    /// on its M).
    pub thread: Option<i32>,
    /// pprof labels (`pprof.Do`, `SetGoroutineLabels`); `None` when the
    /// goroutine has none or they may not be shown. Shared by the
    /// goroutines that carry the same label set.
    pub labels: Option<Arc<BTreeMap<String, String>>>,
    /// The `go` statement that started it; `None` for goroutine 1.
    /// Shared by the goroutines started by the same statement.
    pub created_by: Option<Arc<CreatedBy>>,
    /// Every frame, innermost first, runtime frames included and marked.
    /// Shared by the goroutines with the same stack (100k goroutines
    /// parked in one place hold one list).
    pub frames: Arc<[Frame]>,
    /// Why the stack is incomplete, if it is.
    pub error: Option<String>,
    /// What Go prints between each frame's parentheses (`0x1, {0x2, 0x3}`),
    /// one entry per entry of `frames`; `None` for inlined frames (Go
    /// prints `...`) and where the arguments could not be read. The list
    /// is the goroutine's own (arguments differ where stacks are shared),
    /// itself shared by goroutines with the same stack and words. JSON
    /// writes each entry as its frame's `args`.
    pub args: Option<FrameArgs>,
    /// Raw `atomicstatus` with the scan bit removed (for filters).
    pub raw_status: u32,
    /// `runtime.*` start function: Go hides such goroutines from
    /// tracebacks unless GOTRACEBACK=system.
    pub system: bool,
    /// Address of the `g`, and the `id` and address of its M; Go prints
    /// them (`gp= m= mp=`) in GOTRACEBACK=system headers from Go 1.22.
    pub g_addr: u64,
    /// The M (`m.id`, address) the goroutine is on, if any.
    pub m: Option<(i64, u64)>,
}

/// Per-frame argument text of one goroutine (see
/// [`GoroutineSnapshot::args`]).
pub type FrameArgs = Arc<[Option<Arc<str>>]>;

impl Serialize for GoroutineSnapshot {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("GoroutineSnapshot", 9)?;
        st.serialize_field("id", &self.id)?;
        st.serialize_field("status", &self.status)?;
        st.serialize_field("wait_minutes", &self.wait_minutes)?;
        st.serialize_field("locked_to_thread", &self.locked_to_thread)?;
        st.serialize_field("thread", &self.thread)?;
        st.serialize_field("labels", &self.labels)?;
        st.serialize_field("created_by", &self.created_by)?;
        st.serialize_field("frames", &self.frames_json())?;
        st.serialize_field("error", &self.error)?;
        st.end()
    }
}

impl GoroutineSnapshot {
    /// The `frames` array of the JSON form: each frame with this
    /// goroutine's `args`.
    pub fn frames_json(&self) -> FramesJson<'_> {
        FramesJson {
            frames: &self.frames,
            args: self.args.as_deref(),
        }
    }
}

/// A goroutine's frames as JSON objects, each with its `args` (`null`
/// where unknown): `Frame`'s own fields, then `args`.
pub struct FramesJson<'a> {
    frames: &'a [Frame],
    args: Option<&'a [Option<Arc<str>>]>,
}

impl Serialize for FramesJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeSeq, SerializeStruct};
        struct One<'a>(&'a Frame, Option<&'a str>);
        impl Serialize for One<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let f = self.0;
                let mut st = s.serialize_struct("Frame", 7)?;
                st.serialize_field("function", &f.function)?;
                st.serialize_field("file", &f.file)?;
                st.serialize_field("line", &f.line)?;
                st.serialize_field("pc", &f.pc)?;
                st.serialize_field("inlined", &f.inlined)?;
                st.serialize_field("runtime", &f.runtime)?;
                st.serialize_field("args", &self.1)?;
                st.end()
            }
        }
        let mut seq = s.serialize_seq(Some(self.frames.len()))?;
        for (i, f) in self.frames.iter().enumerate() {
            let args = self.args.and_then(|a| a.get(i)).and_then(|a| a.as_deref());
            seq.serialize_element(&One(f, args))?;
        }
        seq.end()
    }
}

/// Where a goroutine was started.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CreatedBy {
    /// The function holding the `go` statement, as Go prints it.
    pub function: String,
    /// Its source file.
    pub file: String,
    /// The line of the `go` statement.
    pub line: i64,
    /// Parent goroutine (Go 1.21+ records it).
    pub goroutine: Option<u64>,
    /// `gopc - entry`, printed as ` +0x..` after the file:line.
    #[serde(skip)]
    pub offset: u64,
    /// The creating function is one Go hides at GOTRACEBACK=all (a
    /// runtime function), so the line prints only with `--system`.
    #[serde(skip)]
    pub runtime: bool,
}

/// One logical frame. Names and files are shared (`Arc<str>`): 100k
/// goroutines parked in the same code hold one copy of each string.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Frame {
    /// As Go prints it (generic shapes shown as `[...]`).
    pub function: Arc<str>,
    /// Source file, as the pclntab records it (`-trimpath` shortens it).
    pub file: Arc<str>,
    /// Source line of the call (or of the PC, in the innermost frame).
    pub line: i64,
    /// The frame's PC in the target (return address for callers).
    pub pc: u64,
    /// Inlined into the next frame: Go prints `(...)` and no offset.
    pub inlined: bool,
    /// Hidden by Go's traceback at GOTRACEBACK=all (runtime internals and
    /// wrappers); shown with `--system`.
    pub runtime: bool,
    /// `pc - entry` for physical frames, printed as ` +0x..`.
    #[serde(skip)]
    pub offset: Option<u64>,
    /// Stack pointer and Go's frame pointer (`fp`, the caller's SP) of the
    /// physical frame, printed at GOTRACEBACK=system.
    #[serde(skip)]
    pub sp: u64,
    /// See `sp`.
    #[serde(skip)]
    pub fp: u64,
}

/// `taken_at`'s form: RFC 3339 in UTC to the second
/// (`2026-12-01T21:16:12Z`), as pprof's `time_nanos` and the audit line
/// read it back.
pub(crate) fn rfc3339(t: std::time::SystemTime) -> String {
    let secs = t
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let when = i64::try_from(secs)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    when.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_string())
}

/// Seconds since the epoch of a `taken_at` written by [`rfc3339`]; `None`
/// for any other form (a snapshot from elsewhere).
pub(crate) fn parse_rfc3339(s: &str) -> Option<i64> {
    if s.len() != 20 || !s.ends_with('Z') {
        return None;
    }
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}
