//! `--format json`: schema `gopeek.dump/1`, one document.
//!
//! The compact form (what scripts and pipes get) is written goroutine by
//! goroutine, and each distinct frame list is serialized once: goroutines
//! that share a stack share its JSON bytes too. At 100k goroutines parked
//! in a dozen places this turns most of the output into copies.

use super::Outputter;
use crate::dump::{CreatedBy, DumpSnapshot, Frame};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::io::{self, Write};
use std::sync::Arc;

/// Pretty or compact JSON.
pub struct JsonOutput {
    /// Indented (for a person) rather than compact with shared frame
    /// lists (for pipes and files).
    pub pretty: bool,
}

/// The document's fields before `goroutines`, in schema order.
#[derive(Serialize)]
struct Head<'a> {
    schema: &'a str,
    pid: i32,
    nspid: Option<i32>,
    container: Option<&'a str>,
    exe: &'a str,
    go_version: &'a str,
    taken_at: &'a str,
    pause_us: u64,
    mode: &'a str,
}

/// A goroutine's fields before `frames`, in schema order.
#[derive(Serialize)]
struct GHead<'a> {
    id: u64,
    status: &'a str,
    wait_minutes: Option<u64>,
    locked_to_thread: bool,
    thread: Option<i32>,
    labels: Option<&'a BTreeMap<String, String>>,
    created_by: Option<&'a CreatedBy>,
}

/// Writes `value` as JSON without its closing brace, so that more fields
/// can follow.
fn open_object<T: Serialize>(
    w: &mut dyn Write,
    scratch: &mut Vec<u8>,
    value: &T,
) -> io::Result<()> {
    scratch.clear();
    serde_json::to_writer(&mut *scratch, value)?;
    match scratch.pop() {
        Some(b'}') => w.write_all(scratch),
        _ => Err(io::Error::other("expected a JSON object")),
    }
}

fn write_compact(dump: &DumpSnapshot, w: &mut dyn Write) -> io::Result<()> {
    let mut scratch = Vec::with_capacity(1024);
    open_object(
        w,
        &mut scratch,
        &Head {
            schema: dump.schema,
            pid: dump.pid,
            nspid: dump.nspid,
            container: dump.container.as_deref(),
            exe: &dump.exe,
            go_version: &dump.go_version,
            taken_at: &dump.taken_at,
            pause_us: dump.pause_us,
            mode: dump.mode,
        },
    )?;
    w.write_all(b",\"goroutines\":[")?;
    // Keyed by the frame list and the argument list: goroutines share
    // bytes when they share both (each list is shared by its own rules).
    let mut frames_json: HashMap<(*const Frame, *const Option<Arc<str>>), Vec<u8>> = HashMap::new();
    for (n, g) in dump.goroutines.iter().enumerate() {
        if n > 0 {
            w.write_all(b",")?;
        }
        open_object(
            w,
            &mut scratch,
            &GHead {
                id: g.id,
                status: &g.status,
                wait_minutes: g.wait_minutes,
                locked_to_thread: g.locked_to_thread,
                thread: g.thread,
                labels: g.labels.as_ref(),
                created_by: g.created_by.as_ref(),
            },
        )?;
        w.write_all(b",\"frames\":")?;
        let args_shared = g.args.as_ref().is_none_or(|a| Arc::strong_count(a) > 1);
        if Arc::strong_count(&g.frames) > 1 && args_shared {
            let key = (
                Arc::as_ptr(&g.frames) as *const Frame,
                g.args.as_ref().map_or(std::ptr::null(), |a| {
                    Arc::as_ptr(a) as *const Option<Arc<str>>
                }),
            );
            let bytes = match frames_json.get(&key) {
                Some(b) => b,
                None => {
                    let b = serde_json::to_vec(&g.frames_json())?;
                    frames_json.entry(key).or_insert(b)
                }
            };
            w.write_all(bytes)?;
        } else {
            serde_json::to_writer(&mut *w, &g.frames_json())?;
        }
        w.write_all(b",\"error\":")?;
        serde_json::to_writer(&mut *w, &g.error)?;
        w.write_all(b"}")?;
    }
    w.write_all(b"]")?;
    if !dump.warnings.is_empty() {
        w.write_all(b",\"warnings\":")?;
        serde_json::to_writer(&mut *w, &dump.warnings)?;
    }
    if let Some(note) = &dump.note {
        w.write_all(b",\"note\":")?;
        serde_json::to_writer(&mut *w, note)?;
    }
    w.write_all(b"}")
}

impl Outputter for JsonOutput {
    fn write(&self, dump: &DumpSnapshot, w: &mut dyn Write) -> io::Result<()> {
        if self.pretty {
            serde_json::to_writer_pretty(&mut *w, dump)?;
        } else {
            write_compact(dump, w)?;
        }
        writeln!(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dump::GoroutineSnapshot;

    fn frame(f: &str, line: i64) -> Frame {
        Frame {
            function: f.into(),
            file: "/src/a \"b\".go".into(),
            line,
            pc: 0x401000 + line as u64,
            inlined: line % 2 == 0,
            runtime: line > 10,
            offset: Some(4),
            sp: 0,
            fp: 0,
        }
    }

    fn goroutine(id: u64, frames: Arc<[Frame]>) -> GoroutineSnapshot {
        GoroutineSnapshot {
            id,
            status: "chan receive".into(),
            wait_minutes: if id % 2 == 0 { Some(3) } else { None },
            locked_to_thread: id == 3,
            thread: if id == 3 { Some(77) } else { None },
            labels: (id == 2).then(|| BTreeMap::from([("k".to_string(), "v\n".to_string())])),
            created_by: (id > 1).then(|| CreatedBy {
                function: "main.main".into(),
                file: "/src/main.go".into(),
                line: 9,
                goroutine: Some(1),
                offset: 0x20,
                runtime: false,
            }),
            frames,
            error: (id == 4).then(|| "stack unavailable".to_string()),
            args: None,
            raw_status: 4,
            system: false,
            g_addr: 0xc000001000,
            m: None,
        }
    }

    /// The compact writer emits exactly what serde would for the whole
    /// snapshot (same fields, same values), shared frames included.
    #[test]
    fn compact_output_equals_serde() {
        let shared: Arc<[Frame]> = vec![frame("main.park", 12), frame("main.worker", 4)].into();
        let own: Arc<[Frame]> = vec![frame("main.main", 1)].into();
        for (warnings, note) in [
            (vec![], None),
            (
                vec!["a \"warning\"".to_string()],
                Some("labels withheld".to_string()),
            ),
        ] {
            let dump = DumpSnapshot {
                schema: "gopeek.dump/1",
                nspid: None,
                container: None,
                pid: 42,
                exe: "/usr/bin/a\tb".into(),
                go_version: "go1.27.4".into(),
                go_minor: 27,
                header_labels: false,
                taken_at: "2026-11-28T00:00:00Z".into(),
                pause_us: 812,
                mode: "consistent",
                note,
                goroutines: vec![
                    goroutine(1, own.clone()),
                    goroutine(2, shared.clone()),
                    goroutine(3, shared.clone()),
                    goroutine(4, Arc::from(Vec::new())),
                    // Own arguments on shared frames (the unshared path),
                    // one of them not known (inlined: null).
                    GoroutineSnapshot {
                        args: Some(Arc::from(vec![
                            Some(Arc::from("0xc000012345, \"x\"")),
                            None,
                        ])),
                        ..goroutine(5, shared.clone())
                    },
                    GoroutineSnapshot {
                        args: Some(Arc::from(vec![
                            Some(Arc::from("{...}")),
                            Some(Arc::from("0x1")),
                        ])),
                        ..goroutine(6, shared.clone())
                    },
                ],
                warnings,
            };
            let mut out = Vec::new();
            JsonOutput { pretty: false }.write(&dump, &mut out).unwrap();
            let got: serde_json::Value = serde_json::from_slice(&out).unwrap();
            assert_eq!(got, serde_json::to_value(&dump).unwrap());
            assert!(out.ends_with(b"}\n"));
        }
    }
}
