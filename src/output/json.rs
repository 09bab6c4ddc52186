//! `--format json`: schema `gopeek.dump/1`, one document.
//!
//! The compact form (what scripts and pipes get) is written goroutine by
//! goroutine, and each distinct frame list is serialized once: goroutines
//! that share a stack share its JSON bytes too. At 100k goroutines parked
//! in a dozen places this turns most of the output into copies.

use super::Outputter;
use crate::dump::{CreatedBy, DumpSnapshot, Frame, GoroutineSnapshot};
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

/// Goroutines serialized per chunk by the serializing thread: a chunk is
/// a few MB of JSON, so a handful in flight bound the memory.
const CHUNK_GOROUTINES: usize = 512;
/// Chunk buffers in flight: one being written, the others being filled.
const CHUNK_BUFFERS: usize = 3;

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
    write_goroutines(&dump.goroutines, w)?;
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

/// The goroutine objects, comma-separated. A large dump is serialized on
/// a second thread, chunk by chunk, while this thread writes the chunks
/// already done: writing hundreds of MB costs the kernel about as much
/// CPU as serializing them, and the two overlap on two cores.
fn write_goroutines(gs: &[GoroutineSnapshot], w: &mut dyn Write) -> io::Result<()> {
    if gs.len() <= CHUNK_GOROUTINES {
        let mut ser = ChunkSerializer::default();
        let mut buf = Vec::new();
        ser.chunk(gs, true, &mut buf)?;
        return w.write_all(&buf);
    }
    std::thread::scope(|scope| {
        // A fixed pool of chunk buffers going round between the two
        // threads: each is grown once, then reused (no fresh pages, no
        // unmapping per chunk).
        let (full_tx, full_rx) = std::sync::mpsc::channel::<io::Result<Vec<u8>>>();
        let (empty_tx, empty_rx) = std::sync::mpsc::channel::<Vec<u8>>();
        for _ in 0..CHUNK_BUFFERS {
            let _ = empty_tx.send(Vec::with_capacity(CHUNK_GOROUTINES * 2048));
        }
        scope.spawn(move || {
            let mut ser = ChunkSerializer::default();
            for (k, chunk) in gs.chunks(CHUNK_GOROUTINES).enumerate() {
                // None: the writer hung up (it failed).
                let Ok(mut buf) = empty_rx.recv() else { return };
                buf.clear();
                let r = ser.chunk(chunk, k == 0, &mut buf).map(|()| buf);
                let failed = r.is_err();
                if full_tx.send(r).is_err() || failed {
                    return;
                }
            }
        });
        // Until the serializer is done (it drops its sender) or a write
        // fails: returning drops both of this thread's channel ends, which
        // stops the serializer wherever it waits.
        for r in full_rx {
            let buf = r?;
            w.write_all(&buf)?;
            let _ = empty_tx.send(buf);
        }
        Ok(())
    })
}

/// Serializes goroutines, each distinct frame list once: goroutines that
/// share a stack (and their argument list) share its bytes.
#[derive(Default)]
struct ChunkSerializer {
    scratch: Vec<u8>,
    /// Keyed by the frame list and the argument list: goroutines share
    /// bytes when they share both (each list is shared by its own rules).
    frames_json: HashMap<(*const Frame, *const Option<Arc<str>>), Vec<u8>>,
}

impl ChunkSerializer {
    /// Appends `gs` to `out`, each goroutine preceded by a comma unless it
    /// is the very first of the list (`first` chunk).
    fn chunk(
        &mut self,
        gs: &[GoroutineSnapshot],
        first: bool,
        out: &mut Vec<u8>,
    ) -> io::Result<()> {
        for (n, g) in gs.iter().enumerate() {
            if n > 0 || !first {
                out.push(b',');
            }
            self.one(g, out)?;
        }
        Ok(())
    }

    fn one(&mut self, g: &GoroutineSnapshot, out: &mut Vec<u8>) -> io::Result<()> {
        open_object(
            out,
            &mut self.scratch,
            &GHead {
                id: g.id,
                status: &g.status,
                wait_minutes: g.wait_minutes,
                locked_to_thread: g.locked_to_thread,
                thread: g.thread,
                labels: g.labels.as_deref(),
                created_by: g.created_by.as_deref(),
            },
        )?;
        out.extend_from_slice(b",\"frames\":");
        let args_shared = g.args.as_ref().is_none_or(|a| Arc::strong_count(a) > 1);
        if Arc::strong_count(&g.frames) > 1 && args_shared {
            let key = (
                Arc::as_ptr(&g.frames) as *const Frame,
                g.args.as_ref().map_or(std::ptr::null(), |a| {
                    Arc::as_ptr(a) as *const Option<Arc<str>>
                }),
            );
            let bytes = match self.frames_json.get(&key) {
                Some(b) => b,
                None => {
                    let b = serde_json::to_vec(&g.frames_json())?;
                    self.frames_json.entry(key).or_insert(b)
                }
            };
            out.extend_from_slice(bytes);
        } else {
            serde_json::to_writer(&mut *out, &g.frames_json())?;
        }
        out.extend_from_slice(b",\"error\":");
        serde_json::to_writer(&mut *out, &g.error)?;
        out.push(b'}');
        Ok(())
    }
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
            labels: (id == 2)
                .then(|| Arc::new(BTreeMap::from([("k".to_string(), "v\n".to_string())]))),
            created_by: (id > 1).then(|| {
                Arc::new(CreatedBy {
                    function: "main.main".into(),
                    file: "/src/main.go".into(),
                    line: 9,
                    goroutine: Some(1),
                    offset: 0x20,
                    runtime: false,
                })
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

    /// A dump large enough to be serialized on the second thread, chunk by
    /// chunk, is the same document, commas and shared frames included.
    #[test]
    fn chunked_output_equals_serde() {
        let shared: Arc<[Frame]> = vec![frame("main.park", 12), frame("main.worker", 4)].into();
        let n = 2 * CHUNK_GOROUTINES as u64 + 17;
        let goroutines = (1..=n)
            .map(|id| GoroutineSnapshot {
                args: (id % 3 == 0)
                    .then(|| Arc::from(vec![Some(Arc::from(format!("0x{id:x}").as_str())), None])),
                ..goroutine(id, shared.clone())
            })
            .collect();
        let dump = DumpSnapshot {
            schema: "gopeek.dump/1",
            nspid: Some(7),
            container: None,
            pid: 42,
            exe: "/bin/x".into(),
            go_version: "go1.27.4".into(),
            go_minor: 27,
            header_labels: false,
            taken_at: "2026-11-28T00:00:00Z".into(),
            pause_us: 1,
            mode: "consistent",
            note: None,
            goroutines,
            warnings: vec!["w".into()],
        };
        let mut out = Vec::new();
        JsonOutput { pretty: false }.write(&dump, &mut out).unwrap();
        let got: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(got["goroutines"].as_array().map(Vec::len), Some(n as usize));
        assert_eq!(got, serde_json::to_value(&dump).unwrap());
    }

    /// A writer that fails stops the serializing thread and reports the
    /// error instead of hanging.
    #[test]
    fn a_failing_writer_is_reported() {
        struct Full(usize);
        impl Write for Full {
            fn write(&mut self, b: &[u8]) -> io::Result<usize> {
                if self.0 > 100_000 {
                    return Err(io::Error::other("disk full"));
                }
                self.0 += b.len();
                Ok(b.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let shared: Arc<[Frame]> = vec![frame("main.park", 12)].into();
        let gs: Vec<GoroutineSnapshot> = (1..=20_000)
            .map(|id| goroutine(id, shared.clone()))
            .collect();
        let err = write_goroutines(&gs, &mut Full(0)).unwrap_err();
        assert_eq!(err.to_string(), "disk full");
    }
}
