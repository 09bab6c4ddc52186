//! `gopeek record --format pprof`: a CPU profile in pprof's protobuf,
//! gzipped, laid out as Go's runtime/pprof writes one (sample types
//! `samples/count` and `cpu/nanoseconds`, period type `cpu/nanoseconds`
//! with the sampling period, values `[n, n*period]`, a `Line` per inlined
//! level in one location per physical PC), plus what only an outside
//! view has: the goroutine's pprof labels as string labels and its id as
//! the numeric label `goroutine`, so `go tool pprof -tagfocus` splits by
//! either. The encoder primitives are the goroutine profile's
//! (`output/pprof.rs`).

use super::pprof::{bool_field, bytes, int, packed, uint, Strings};
use crate::profile::{CpuProfile, ProfFrame};
use flate2::write::GzEncoder;
use flate2::Compression;
use std::collections::HashMap;
use std::io::{self, Write};

/// The numeric label holding the goroutine id.
pub const GOROUTINE_LABEL: &str = "goroutine";

#[derive(Default)]
struct Tables {
    functions: HashMap<(String, String), u64>,
    function_list: Vec<(u64, u64)>,
    locations: HashMap<(u64, Vec<(u64, i64)>), u64>,
    location_list: Vec<(u64, Vec<(u64, i64)>)>,
}

impl Tables {
    fn function(&mut self, strings: &mut Strings, f: &ProfFrame) -> u64 {
        let k = (f.function.to_string(), f.file.to_string());
        if let Some(&id) = self.functions.get(&k) {
            return id;
        }
        let n = strings.id(&f.function);
        let file = strings.id(&f.file);
        self.function_list.push((n, file));
        let id = self.function_list.len() as u64;
        self.functions.insert(k, id);
        id
    }

    fn location(&mut self, pc: u64, lines: Vec<(u64, i64)>) -> u64 {
        let k = (pc, lines);
        if let Some(&id) = self.locations.get(&k) {
            return id;
        }
        self.location_list.push(k.clone());
        let id = self.location_list.len() as u64;
        self.locations.insert(k, id);
        id
    }

    /// Location ids, leaf first: inlined frames share their physical
    /// frame's location as extra lines, innermost first.
    fn stack(&mut self, strings: &mut Strings, frames: &[ProfFrame]) -> Vec<u64> {
        let mut ids = Vec::new();
        let mut pending = Vec::new();
        for f in frames {
            pending.push((self.function(strings, f), f.line));
            if !f.inlined {
                let pc = f.pc;
                ids.push(self.location(pc, std::mem::take(&mut pending)));
            }
        }
        if !pending.is_empty() {
            let pc = frames.last().map_or(0, |f| f.pc);
            ids.push(self.location(pc, pending));
        }
        ids
    }
}

fn value_type(strings: &mut Strings, ty: &str, unit: &str) -> Vec<u8> {
    let mut vt = Vec::new();
    uint(&mut vt, 1, strings.id(ty));
    uint(&mut vt, 2, strings.id(unit));
    vt
}

/// The profile, uncompressed.
pub fn encode_cpu_profile(p: &CpuProfile) -> Vec<u8> {
    let mut s = Strings::new();
    let mut t = Tables::default();
    let mut out = Vec::new();
    // sample_type = 1
    let samples_vt = value_type(&mut s, "samples", "count");
    let cpu_vt = value_type(&mut s, p.clock.pprof_type(), "nanoseconds");
    bytes(&mut out, 1, &samples_vt);
    bytes(&mut out, 1, &cpu_vt);
    // sample = 2
    let goroutine_key = s.id(GOROUTINE_LABEL);
    for smp in &p.samples {
        let locs = t.stack(&mut s, &smp.frames);
        let mut m = Vec::new();
        packed(&mut m, 1, locs);
        packed(
            &mut m,
            2,
            [smp.count, smp.count.saturating_mul(p.period_ns)],
        );
        for (k, v) in smp.labels.iter().flat_map(|l| l.iter()) {
            let mut l = Vec::new();
            uint(&mut l, 1, s.id(k));
            uint(&mut l, 2, s.id(v));
            bytes(&mut m, 3, &l);
        }
        if let Some(goid) = smp.goid {
            let mut l = Vec::new();
            uint(&mut l, 1, goroutine_key);
            int(&mut l, 3, goid as i64);
            bytes(&mut m, 3, &l);
        }
        bytes(&mut out, 2, &m);
    }
    // mapping = 3: the executable, covering every address; the profile
    // carries its symbols, so pprof never needs the binary.
    let pcs = t
        .location_list
        .iter()
        .map(|(pc, _)| *pc)
        .filter(|&pc| pc != 0);
    let lo = pcs.clone().min().unwrap_or(0);
    let hi = pcs.max().unwrap_or(0);
    {
        let mut m = Vec::new();
        uint(&mut m, 1, 1);
        uint(&mut m, 2, lo & !0xfff);
        uint(&mut m, 3, (hi | 0xfff).saturating_add(1));
        uint(&mut m, 5, s.id(&p.exe));
        for f in 7..=10 {
            bool_field(&mut m, f, true);
        }
        bytes(&mut out, 3, &m);
    }
    // location = 4
    for (i, (pc, lines)) in t.location_list.iter().enumerate() {
        let mut l = Vec::new();
        uint(&mut l, 1, i as u64 + 1);
        uint(&mut l, 2, 1);
        uint(&mut l, 3, *pc);
        for (fid, line) in lines {
            let mut ln = Vec::new();
            uint(&mut ln, 1, *fid);
            int(&mut ln, 2, *line);
            bytes(&mut l, 4, &ln);
        }
        bytes(&mut out, 4, &l);
    }
    // function = 5
    for (i, (name, file)) in t.function_list.iter().enumerate() {
        let mut f = Vec::new();
        uint(&mut f, 1, i as u64 + 1);
        uint(&mut f, 2, *name);
        uint(&mut f, 3, *name);
        uint(&mut f, 4, *file);
        bytes(&mut out, 5, &f);
    }
    let first = match p.clock {
        crate::profile::Clock::Cpu => format!(
            "gopeek record of pid {} ({}, {}): {} samples, {} lost, {} without registers, {} partial stacks",
            p.pid, p.exe, p.go_version, p.stats.samples, p.stats.lost, p.stats.unattributed, p.stats.truncated
        ),
        crate::profile::Clock::Wall => format!(
            "gopeek record --wall of pid {} ({}, {}): {} samples, {} goroutine reads given up (stack kept changing), {} partial stacks",
            p.pid, p.exe, p.go_version, p.stats.samples, p.stats.unattributed, p.stats.truncated
        ),
    };
    let mut comments = vec![s.id(&first)];
    for c in &p.comments {
        comments.push(s.id(c));
    }
    // period_type = 11 (its strings are in the table before it is written)
    let period_vt = value_type(&mut s, p.clock.pprof_type(), "nanoseconds");
    // string_table = 6
    for st in &s.list {
        bytes(&mut out, 6, st.as_bytes());
    }
    int(&mut out, 9, p.start_unix_ns as i64);
    int(&mut out, 10, p.duration_ns as i64);
    bytes(&mut out, 11, &period_vt);
    int(&mut out, 12, p.period_ns as i64);
    packed(&mut out, 13, comments);
    out
}

/// Writes the gzipped profile.
pub fn write_cpu_pprof(p: &CpuProfile, w: &mut dyn Write) -> io::Result<()> {
    let mut gz = GzEncoder::new(w, Compression::default());
    gz.write_all(&encode_cpu_profile(p))?;
    gz.finish()?;
    Ok(())
}
