//! `--format pprof`: a goroutine profile in pprof's protobuf, gzipped, the
//! way Go's `/debug/pprof/goroutine` writes it (sample type
//! `goroutine/count`, one sample per distinct stack and label set, labels as
//! `Sample.label`), so `go tool pprof -top`, `-http` and every tool built on
//! profiles open a snapshot taken from outside.
//!
//! The encoder is hand-written (field numbers from profile.proto): a
//! profile is a handful of repeated messages, and a protobuf code generator
//! would cost more than it saves. Functions, locations and strings are
//! deduplicated; inlined frames share their physical frame's location as
//! extra `Line`s, innermost first, as pprof expects.

use super::Outputter;
use crate::dump::{parse_rfc3339, DumpSnapshot, Frame};
use crate::gotrace::frames::listed;
use flate2::write::GzEncoder;
use flate2::Compression;
use std::collections::{BTreeMap, HashMap};
use std::io::{self, Write};
use std::sync::Arc;

/// Goroutine profile writer.
pub struct PprofOutput {
    /// System goroutines too (Go's own goroutine profile leaves them out).
    pub system: bool,
}

/// Protobuf wire types.
const VARINT: u64 = 0;
const LEN: u64 = 2;

pub(super) fn varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

pub(super) fn key(buf: &mut Vec<u8>, field: u64, wire: u64) {
    varint(buf, (field << 3) | wire);
}

/// An integer field; zero is the default and is not written (proto3).
pub(super) fn uint(buf: &mut Vec<u8>, field: u64, v: u64) {
    if v != 0 {
        key(buf, field, VARINT);
        varint(buf, v);
    }
}

pub(super) fn int(buf: &mut Vec<u8>, field: u64, v: i64) {
    uint(buf, field, v as u64);
}

pub(super) fn bool_field(buf: &mut Vec<u8>, field: u64, v: bool) {
    uint(buf, field, v as u64);
}

pub(super) fn bytes(buf: &mut Vec<u8>, field: u64, data: &[u8]) {
    key(buf, field, LEN);
    varint(buf, data.len() as u64);
    buf.extend_from_slice(data);
}

/// A packed repeated integer field.
pub(super) fn packed(buf: &mut Vec<u8>, field: u64, vals: impl IntoIterator<Item = u64>) {
    let mut tmp = Vec::new();
    for v in vals {
        varint(&mut tmp, v);
    }
    if !tmp.is_empty() {
        bytes(buf, field, &tmp);
    }
}

/// The string table: index 0 is "" as the format requires.
#[derive(Default)]
pub(super) struct Strings {
    pub(super) list: Vec<String>,
    index: HashMap<String, u64>,
}

impl Strings {
    pub(super) fn new() -> Strings {
        let mut s = Strings::default();
        s.id("");
        s
    }

    pub(super) fn id(&mut self, s: &str) -> u64 {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        let i = self.list.len() as u64;
        self.list.push(s.to_string());
        self.index.insert(s.to_string(), i);
        i
    }
}

/// One `Location`: an address and its logical lines, innermost first.
struct Location {
    address: u64,
    lines: Vec<(u64, i64)>,
    mapped: bool,
}

/// A sample's identity: location ids (leaf first) and (key, value)
/// string ids of its labels, sorted.
type SampleKey = (Vec<u64>, Vec<(u64, u64)>);

/// Builds the profile's tables from goroutines.
struct Builder {
    strings: Strings,
    functions: HashMap<(Arc<str>, Arc<str>), u64>,
    function_list: Vec<(u64, u64)>,
    locations: HashMap<(u64, Vec<(u64, i64)>), u64>,
    location_list: Vec<Location>,
    samples: BTreeMap<SampleKey, i64>,
}

impl Builder {
    fn function(&mut self, name: &Arc<str>, file: &Arc<str>) -> u64 {
        if let Some(&id) = self.functions.get(&(name.clone(), file.clone())) {
            return id;
        }
        let n = self.strings.id(name);
        let f = self.strings.id(file);
        self.function_list.push((n, f));
        let id = self.function_list.len() as u64;
        self.functions.insert((name.clone(), file.clone()), id);
        id
    }

    fn location(&mut self, address: u64, lines: Vec<(u64, i64)>, mapped: bool) -> u64 {
        let k = (address, lines);
        if let Some(&id) = self.locations.get(&k) {
            return id;
        }
        self.location_list.push(Location {
            address,
            lines: k.1.clone(),
            mapped,
        });
        let id = self.location_list.len() as u64;
        self.locations.insert(k, id);
        id
    }

    /// Location ids of a stack, leaf first: each physical frame with the
    /// inlined frames before it folded into one location. Frames Go's own
    /// goroutine profile leaves out (wrappers, `runtime.goexit`) are left
    /// out here too.
    fn stack(&mut self, frames: &[Frame]) -> Vec<u64> {
        let mut ids = Vec::new();
        let mut pending: Vec<(u64, i64)> = Vec::new();
        for f in frames.iter().filter(|f| in_go_profile(f)) {
            let fid = self.function(&f.function, &f.file);
            pending.push((fid, f.line));
            if !f.inlined {
                let lines = std::mem::take(&mut pending);
                ids.push(self.location(f.pc, lines, true));
            }
        }
        if !pending.is_empty() {
            let pc = frames.last().map(|f| f.pc).unwrap_or(0);
            ids.push(self.location(pc, pending, true));
        }
        if ids.is_empty() {
            let name: Arc<str> = Arc::from("(stack unavailable)");
            let fid = self.function(&name, &Arc::from(""));
            ids.push(self.location(0, vec![(fid, 0)], false));
        }
        ids
    }
}

/// Whether Go's goroutine profile has this frame: it keeps the runtime's
/// own frames (`runtime.gopark`, `runtime.chanrecv`...) that the traceback
/// hides, but not wrappers (`main.main.gowrap1`, autogenerated methods),
/// which the traceback hides too and which are not runtime functions, nor
/// the `runtime.goexit` every goroutine starts from.
fn in_go_profile(f: &Frame) -> bool {
    let name = &*f.function;
    if name == "runtime.goexit" {
        return false;
    }
    !f.runtime
        || name.starts_with("runtime.")
        || name.starts_with("internal/runtime/")
        || name.starts_with("runtime/internal/")
}

/// The profile, uncompressed (exposed for tests and for tools that want
/// the raw message).
pub fn encode_profile(dump: &DumpSnapshot, system: bool) -> Vec<u8> {
    let mut b = Builder {
        strings: Strings::new(),
        functions: HashMap::new(),
        function_list: Vec::new(),
        locations: HashMap::new(),
        location_list: Vec::new(),
        samples: BTreeMap::new(),
    };
    let goroutine = b.strings.id("goroutine");
    let count = b.strings.id("count");
    for g in dump.goroutines.iter().filter(|g| listed(g, system)) {
        let locs = b.stack(&g.frames);
        let mut labels: Vec<(u64, u64)> = Vec::new();
        for (k, v) in g.labels.iter().flat_map(|l| l.iter()) {
            let k = b.strings.id(k);
            let v = b.strings.id(v);
            labels.push((k, v));
        }
        labels.sort_unstable();
        *b.samples.entry((locs, labels)).or_default() += 1;
    }

    let mut p = Vec::new();
    // sample_type = 1: one ValueType {type = 1, unit = 2}.
    let mut vt = Vec::new();
    uint(&mut vt, 1, goroutine);
    uint(&mut vt, 2, count);
    bytes(&mut p, 1, &vt);
    // sample = 2
    for ((locs, labels), n) in &b.samples {
        let mut s = Vec::new();
        packed(&mut s, 1, locs.iter().copied());
        packed(&mut s, 2, [*n as u64]);
        for (k, v) in labels {
            let mut l = Vec::new();
            uint(&mut l, 1, *k);
            uint(&mut l, 2, *v);
            bytes(&mut s, 3, &l);
        }
        bytes(&mut p, 2, &s);
    }
    // mapping = 3: the executable, covering every address seen; symbols
    // come with the profile, so pprof never needs the binary.
    let mapped = b.location_list.iter().filter(|l| l.mapped);
    let lo = mapped.clone().map(|l| l.address).min().unwrap_or(0);
    let hi = mapped.map(|l| l.address).max().unwrap_or(0);
    let exe = b.strings.id(&dump.exe);
    {
        let mut m = Vec::new();
        uint(&mut m, 1, 1);
        uint(&mut m, 2, lo & !0xfff);
        uint(&mut m, 3, (hi | 0xfff).saturating_add(1));
        uint(&mut m, 5, exe);
        bool_field(&mut m, 7, true);
        bool_field(&mut m, 8, true);
        bool_field(&mut m, 9, true);
        bool_field(&mut m, 10, true);
        bytes(&mut p, 3, &m);
    }
    // location = 4
    for (i, loc) in b.location_list.iter().enumerate() {
        let mut l = Vec::new();
        uint(&mut l, 1, i as u64 + 1);
        if loc.mapped {
            uint(&mut l, 2, 1);
        }
        uint(&mut l, 3, loc.address);
        for (fid, line) in &loc.lines {
            let mut ln = Vec::new();
            uint(&mut ln, 1, *fid);
            int(&mut ln, 2, *line);
            bytes(&mut l, 4, &ln);
        }
        bytes(&mut p, 4, &l);
    }
    // function = 5
    for (i, (name, file)) in b.function_list.iter().enumerate() {
        let mut f = Vec::new();
        uint(&mut f, 1, i as u64 + 1);
        uint(&mut f, 2, *name);
        uint(&mut f, 3, *name);
        uint(&mut f, 4, *file);
        bytes(&mut p, 5, &f);
    }
    let comment = b.strings.id(&format!(
        "gopeek snapshot of pid {} ({}), target held {} us",
        dump.pid, dump.exe, dump.pause_us
    ));
    // string_table = 6 (after every id was taken).
    for s in &b.strings.list {
        bytes(&mut p, 6, s.as_bytes());
    }
    // time_nanos = 9
    if let Some(secs) = parse_rfc3339(&dump.taken_at) {
        int(&mut p, 9, secs.saturating_mul(1_000_000_000));
    }
    // period_type = 11, period = 12
    bytes(&mut p, 11, &vt);
    int(&mut p, 12, 1);
    // comment = 13
    packed(&mut p, 13, [comment]);
    p
}

impl Outputter for PprofOutput {
    fn write(&self, dump: &DumpSnapshot, w: &mut dyn Write) -> io::Result<()> {
        let raw = encode_profile(dump, self.system);
        let mut gz = GzEncoder::new(w, Compression::default());
        gz.write_all(&raw)?;
        gz.finish()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::filter::tests::{frame, goroutine};

    /// A minimal protobuf reader for the tests: (field, wire, value or
    /// bytes) of one message level.
    fn fields(mut b: &[u8]) -> Vec<(u64, Result<u64, Vec<u8>>)> {
        fn rd(b: &mut &[u8]) -> u64 {
            let mut v = 0u64;
            let mut shift = 0;
            loop {
                let byte = b[0];
                *b = &b[1..];
                v |= u64::from(byte & 0x7f) << shift;
                if byte < 0x80 {
                    return v;
                }
                shift += 7;
            }
        }
        let mut out = Vec::new();
        while !b.is_empty() {
            let k = rd(&mut b);
            match k & 7 {
                0 => out.push((k >> 3, Ok(rd(&mut b)))),
                2 => {
                    let n = rd(&mut b) as usize;
                    out.push((k >> 3, Err(b[..n].to_vec())));
                    b = &b[n..];
                }
                w => panic!("unexpected wire type {w}"),
            }
        }
        out
    }

    #[test]
    fn profile_structure() {
        let mut inl = frame("main.inner", "/src/a.go", 5, false);
        inl.inlined = true;
        let mut phys = frame("main.outer", "/src/a.go", 9, false);
        phys.pc = inl.pc;
        let mut a = goroutine(
            1,
            "chan receive",
            vec![inl.clone(), phys.clone()],
            "main.main",
        );
        a.labels = Some(std::sync::Arc::new(
            [("k".to_string(), "v".to_string())].into(),
        ));
        let b = goroutine(2, "chan receive", vec![inl, phys], "main.main");
        let c = goroutine(3, "chan receive", vec![], "main.main");
        let mut d = goroutine(4, "chan receive", vec![], "main.main");
        d.system = true;
        let dump = DumpSnapshot {
            schema: "gopeek.dump/1",
            nspid: None,
            container: None,
            pid: 7,
            exe: "/bin/x".into(),
            go_version: "go1.27".into(),
            go_minor: 27,
            header_labels: false,
            taken_at: "2026-11-28T01:02:03Z".into(),
            pause_us: 5,
            mode: "consistent",
            note: None,
            goroutines: vec![a, b.clone(), b, c, d],
            warnings: vec![],
        };
        let p = encode_profile(&dump, false);
        let top = fields(&p);
        let strings: Vec<String> = top
            .iter()
            .filter(|(f, _)| *f == 6)
            .map(|(_, v)| String::from_utf8(v.clone().unwrap_err()).unwrap())
            .collect();
        assert_eq!(strings[0], "");
        let samples: Vec<_> = top.iter().filter(|(f, _)| *f == 2).collect();
        // {a}, {b, b}, {c}: three samples, values summing to 4 (d is a
        // system goroutine).
        assert_eq!(samples.len(), 3);
        let mut total = 0;
        let mut labelled = 0;
        for (_, s) in samples {
            let s = fields(s.as_ref().unwrap_err());
            for (f, v) in &s {
                if *f == 2 {
                    let packed = v.as_ref().unwrap_err();
                    total += fields(&[&[0x08u8][..], packed].concat())[0]
                        .1
                        .clone()
                        .unwrap();
                }
                if *f == 3 {
                    labelled += 1;
                }
            }
        }
        assert_eq!(total, 4);
        assert_eq!(labelled, 1);
        // Two locations: the inlined pair folded into one (two lines),
        // and the unavailable stack.
        let locs: Vec<_> = top.iter().filter(|(f, _)| *f == 4).collect();
        assert_eq!(locs.len(), 2);
        let first = fields(locs[0].1.as_ref().unwrap_err());
        assert_eq!(first.iter().filter(|(f, _)| *f == 4).count(), 2);
        assert_eq!(top.iter().filter(|(f, _)| *f == 5).count(), 3);
        let t = top
            .iter()
            .find(|(f, _)| *f == 9)
            .unwrap()
            .1
            .clone()
            .unwrap();
        assert_eq!(t, 1_795_827_723 * 1_000_000_000);
    }

    #[test]
    fn rfc3339_round_trip() {
        for secs in [0i64, 951_782_400, 1_795_827_723, 4_102_444_800] {
            let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs as u64);
            assert_eq!(parse_rfc3339(&crate::dump::rfc3339(t)), Some(secs));
        }
        assert_eq!(parse_rfc3339("2026-13-01T00:00:00Z"), None);
        assert_eq!(parse_rfc3339("garbage"), None);
    }
}
