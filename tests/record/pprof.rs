//! A small test-only decoder of gzipped pprof profiles (profile.proto),
//! enough to compare Go's own CPU profile with gopeek's: samples with
//! their stacks (function names per location, innermost inline level
//! first), values and labels; the sample and period types. It reads
//! trusted test files only, so it panics on malformed input.

use std::collections::HashMap;
use std::io::Read;

#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// Logical frames, leaf first (inline levels expanded).
    pub frames: Vec<(String, i64)>,
    /// Number of logical frames per location (leaf first).
    pub per_location: Vec<usize>,
    pub values: Vec<i64>,
    pub str_labels: Vec<(String, String)>,
    pub num_labels: Vec<(String, i64)>,
}

#[derive(Debug, Clone, Default)]
pub struct Profile {
    pub sample_types: Vec<(String, String)>,
    pub period_type: (String, String),
    pub period: i64,
    pub samples: Vec<Sample>,
    pub comments: Vec<String>,
}

fn varint(b: &mut &[u8]) -> u64 {
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

enum Val<'a> {
    Int(u64),
    Bytes(&'a [u8]),
}

fn fields(mut b: &[u8]) -> Vec<(u64, Val<'_>)> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let k = varint(&mut b);
        match k & 7 {
            0 => out.push((k >> 3, Val::Int(varint(&mut b)))),
            2 => {
                let n = varint(&mut b) as usize;
                let (d, rest) = b.split_at(n);
                b = rest;
                out.push((k >> 3, Val::Bytes(d)));
            }
            1 => {
                b = &b[8..];
            }
            5 => {
                b = &b[4..];
            }
            w => panic!("wire type {w}"),
        }
    }
    out
}

/// A repeated integer field, packed or not.
fn ints(v: &Val<'_>, out: &mut Vec<u64>) {
    match v {
        Val::Int(i) => out.push(*i),
        Val::Bytes(mut b) => {
            while !b.is_empty() {
                out.push(varint(&mut b));
            }
        }
    }
}

fn int(v: &Val<'_>) -> u64 {
    match v {
        Val::Int(i) => *i,
        Val::Bytes(_) => panic!("expected an integer"),
    }
}

fn bytes<'a>(v: &Val<'a>) -> &'a [u8] {
    match v {
        Val::Bytes(b) => b,
        Val::Int(_) => panic!("expected bytes"),
    }
}

/// Decodes a gzipped (or plain) profile.
pub fn decode(data: &[u8]) -> Profile {
    let mut raw = Vec::new();
    if data.starts_with(&[0x1f, 0x8b]) {
        flate2::read::GzDecoder::new(data)
            .read_to_end(&mut raw)
            .unwrap();
    } else {
        raw = data.to_vec();
    }
    let top = fields(&raw);
    let strings: Vec<String> = top
        .iter()
        .filter(|(f, _)| *f == 6)
        .map(|(_, v)| String::from_utf8_lossy(bytes(v)).into_owned())
        .collect();
    let s = |i: u64| strings[i as usize].clone();
    let mut functions: HashMap<u64, String> = HashMap::new();
    for (_, v) in top.iter().filter(|(f, _)| *f == 5) {
        let (mut id, mut name) = (0, 0);
        for (f, x) in fields(bytes(v)) {
            match f {
                1 => id = int(&x),
                2 => name = int(&x),
                _ => {}
            }
        }
        functions.insert(id, s(name));
    }
    let mut locations: HashMap<u64, Vec<(String, i64)>> = HashMap::new();
    for (_, v) in top.iter().filter(|(f, _)| *f == 4) {
        let mut id = 0;
        let mut lines = Vec::new();
        for (f, x) in fields(bytes(v)) {
            match f {
                1 => id = int(&x),
                4 => {
                    let (mut fid, mut line) = (0, 0i64);
                    for (lf, lx) in fields(bytes(&x)) {
                        match lf {
                            1 => fid = int(&lx),
                            2 => line = int(&lx) as i64,
                            _ => {}
                        }
                    }
                    lines.push((functions.get(&fid).cloned().unwrap_or_default(), line));
                }
                _ => {}
            }
        }
        locations.insert(id, lines);
    }
    let vt = |b: &[u8]| {
        let (mut t, mut u) = (0, 0);
        for (f, x) in fields(b) {
            match f {
                1 => t = int(&x),
                2 => u = int(&x),
                _ => {}
            }
        }
        (s(t), s(u))
    };
    let mut p = Profile::default();
    for (f, v) in &top {
        match f {
            1 => p.sample_types.push(vt(bytes(v))),
            11 => p.period_type = vt(bytes(v)),
            12 => p.period = int(v) as i64,
            13 => {
                let mut ids = Vec::new();
                ints(v, &mut ids);
                p.comments.extend(ids.into_iter().map(s));
            }
            2 => {
                let mut smp = Sample::default();
                let mut locs = Vec::new();
                let mut vals = Vec::new();
                for (sf, x) in fields(bytes(v)) {
                    match sf {
                        1 => ints(&x, &mut locs),
                        2 => ints(&x, &mut vals),
                        3 => {
                            let (mut k, mut st, mut num, mut has_num) = (0, 0, 0i64, false);
                            for (lf, lx) in fields(bytes(&x)) {
                                match lf {
                                    1 => k = int(&lx),
                                    2 => st = int(&lx),
                                    3 => {
                                        num = int(&lx) as i64;
                                        has_num = true
                                    }
                                    _ => {}
                                }
                            }
                            if st != 0 {
                                smp.str_labels.push((s(k), s(st)));
                            } else if has_num {
                                smp.num_labels.push((s(k), num));
                            }
                        }
                        _ => {}
                    }
                }
                for l in locs {
                    let lines = &locations[&l];
                    smp.per_location.push(lines.len());
                    smp.frames.extend(lines.iter().cloned());
                }
                smp.values = vals.into_iter().map(|v| v as i64).collect();
                p.samples.push(smp);
            }
            _ => {}
        }
    }
    p
}
