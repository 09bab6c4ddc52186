//! Synthetic pclntabs built in code, in the style of gimli's `test_util`.

use super::*;

fn uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Encodes a pc-value table: `(value, pc_end_offset)` runs starting at -1.
pub(crate) fn pcvalue_table(runs: &[(i32, u64)]) -> Vec<u8> {
    let mut out = Vec::new();
    let (mut val, mut pc) = (-1i32, 0u64);
    for &(v, end) in runs {
        let d = (v - val) as i64;
        let zz = if d < 0 {
            ((!d as u64) << 1) | 1
        } else {
            (d as u64) << 1
        };
        uvarint(&mut out, zz);
        uvarint(&mut out, end - pc);
        val = v;
        pc = end;
    }
    out.push(0);
    out
}

pub(crate) struct FuncSpec {
    pub(crate) name: &'static str,
    pub(crate) size: u64,
    pub(crate) pcsp: Vec<(i32, u64)>,
    pub(crate) pcfile: Vec<(i32, u64)>,
    pub(crate) pcln: Vec<(i32, u64)>,
    pub(crate) inl_index: Option<Vec<(i32, u64)>>,
    pub(crate) flag: u8,
    pub(crate) args: Option<ArgsSpec>,
}

/// `FUNCDATA_ArgLiveInfo` bytes and the `(value, end pc)` runs of
/// `PCDATA_ArgLiveIndex`.
pub(crate) type LiveSpec = (Vec<u8>, Vec<(i32, u64)>);

/// A function's argument funcdata: the `FUNCDATA_ArgInfo` bytes, and
/// optionally `FUNCDATA_ArgLiveInfo` with its `PCDATA_ArgLiveIndex` runs.
pub(crate) struct ArgsSpec {
    pub(crate) info: Vec<u8>,
    pub(crate) live: Option<LiveSpec>,
}

/// Builds a Go 1.20-format pclntab at address `addr` with text at `text`;
/// returns the bytes and the go:func blob (inline trees).
pub(crate) fn build(
    text: u64,
    files: &[&str],
    funcs: &[FuncSpec],
    inl_tree: &[(&'static str, i32)],
) -> (Vec<u8>, Vec<u8>) {
    let mut names = Vec::new();
    let mut name_off = std::collections::HashMap::new();
    for n in funcs
        .iter()
        .map(|f| f.name)
        .chain(inl_tree.iter().map(|e| e.0))
    {
        if !name_off.contains_key(n) {
            name_off.insert(n, names.len() as i32);
            names.extend_from_slice(n.as_bytes());
            names.push(0);
        }
    }
    let mut filetab = Vec::new();
    let mut cutab = Vec::new();
    for f in files {
        cutab.extend_from_slice(&(filetab.len() as u32).to_le_bytes());
        filetab.extend_from_slice(f.as_bytes());
        filetab.push(0);
    }
    let mut pctab = vec![0u8];
    let mut add_table = |runs: &[(i32, u64)]| {
        let off = pctab.len() as u32;
        pctab.extend(pcvalue_table(runs));
        off
    };
    // go:func: one inline tree (1.20 format, 16-byte entries).
    let mut gofunc = Vec::new();
    for (name, parent_pc) in inl_tree {
        gofunc.push(0); // funcID normal
        gofunc.extend_from_slice(&[0, 0, 0]);
        gofunc.extend_from_slice(&name_off[name].to_le_bytes());
        gofunc.extend_from_slice(&parent_pc.to_le_bytes());
        gofunc.extend_from_slice(&0i32.to_le_bytes());
    }
    let mut records = Vec::new();
    let mut entries = Vec::new();
    let mut entry = 0u64;
    let nfunc = funcs.len();
    let functab_len = (nfunc + 1) * 8;
    for f in funcs {
        let funcoff = functab_len + records.len();
        entries.push((entry as u32, funcoff as u32));
        let pcsp = add_table(&f.pcsp);
        let pcfile = add_table(&f.pcfile);
        let pcln = add_table(&f.pcln);
        let inl = f.inl_index.as_ref().map(|r| add_table(r));
        let live_idx = f
            .args
            .as_ref()
            .and_then(|a| a.live.as_ref())
            .map(|(_, runs)| add_table(runs));
        let (arg_info, arg_live) = match &f.args {
            None => (u32::MAX, u32::MAX),
            Some(a) => {
                let info = gofunc.len() as u32;
                gofunc.extend_from_slice(&a.info);
                let live = match &a.live {
                    Some((bytes, _)) => {
                        let at = gofunc.len() as u32;
                        gofunc.extend_from_slice(bytes);
                        at
                    }
                    None => u32::MAX,
                };
                (info, live)
            }
        };
        let mut r = Vec::new();
        r.extend_from_slice(&(entry as u32).to_le_bytes());
        r.extend_from_slice(&name_off[f.name].to_le_bytes());
        r.extend_from_slice(&0i32.to_le_bytes()); // args
        r.extend_from_slice(&0u32.to_le_bytes()); // deferreturn
        r.extend_from_slice(&pcsp.to_le_bytes());
        r.extend_from_slice(&pcfile.to_le_bytes());
        r.extend_from_slice(&pcln.to_le_bytes());
        let npcdata: u32 = if f.args.is_some() {
            4
        } else if inl.is_some() {
            3
        } else {
            0
        };
        r.extend_from_slice(&npcdata.to_le_bytes());
        r.extend_from_slice(&0u32.to_le_bytes()); // cuOffset
        r.extend_from_slice(&7i32.to_le_bytes()); // startLine
        r.push(0); // funcID
        r.push(f.flag);
        r.push(0);
        let nfuncdata: u8 = if f.args.is_some() {
            7
        } else if inl.is_some() {
            4
        } else {
            0
        };
        r.push(nfuncdata);
        let tree = if inl.is_some() { 0 } else { u32::MAX };
        if npcdata > 0 {
            for v in [0u32, 0, inl.unwrap_or(0)] {
                r.extend_from_slice(&v.to_le_bytes());
            }
            if npcdata > 3 {
                r.extend_from_slice(&live_idx.unwrap_or(0).to_le_bytes());
            }
            for v in [u32::MAX, u32::MAX, u32::MAX, tree] {
                r.extend_from_slice(&v.to_le_bytes());
            }
            if nfuncdata > 4 {
                for v in [u32::MAX, arg_info, arg_live] {
                    r.extend_from_slice(&v.to_le_bytes());
                }
            }
        }
        records.extend(r);
        entry += f.size;
    }
    entries.push((entry as u32, 0));
    let mut functab = Vec::new();
    for (e, o) in entries {
        functab.extend_from_slice(&e.to_le_bytes());
        functab.extend_from_slice(&o.to_le_bytes());
    }
    functab.extend(records);
    let mut out = vec![0u8; 0x48];
    let funcname_off = out.len();
    out.extend(&names);
    let cu_off = out.len();
    out.extend(&cutab);
    let filetab_off = out.len();
    out.extend(&filetab);
    let pctab_off = out.len();
    out.extend(&pctab);
    while out.len() % 8 != 0 {
        out.push(0);
    }
    let functab_off = out.len();
    out.extend(&functab);
    out[0..4].copy_from_slice(&0xfffffff1u32.to_le_bytes());
    out[6] = 1;
    out[7] = 8;
    let words = [
        nfunc as u64,
        files.len() as u64,
        text,
        funcname_off as u64,
        cu_off as u64,
        filetab_off as u64,
        pctab_off as u64,
        functab_off as u64,
    ];
    for (i, w) in words.iter().enumerate() {
        out[8 + 8 * i..16 + 8 * i].copy_from_slice(&w.to_le_bytes());
    }
    (out, gofunc)
}

pub(super) fn sample() -> (Vec<u8>, Vec<u8>) {
    let funcs = vec![
        FuncSpec {
            name: "main.outer",
            size: 0x40,
            pcsp: vec![(0, 4), (0x18, 0x3c), (0, 0x40)],
            pcfile: vec![(0, 0x10), (1, 0x20), (0, 0x40)],
            pcln: vec![(10, 0x10), (33, 0x20), (12, 0x40)],
            inl_index: Some(vec![(-1, 0x10), (0, 0x20), (-1, 0x40)]),
            flag: 0,
            args: None,
        },
        FuncSpec {
            name: "main.(*T[go.shape.string]).Wait",
            size: 0x20,
            pcsp: vec![(0, 0x20)],
            pcfile: vec![(0, 0x20)],
            pcln: vec![(50, 0x20)],
            inl_index: None,
            flag: 2,
            args: None,
        },
    ];
    // The inlined call sits at outer+0x10..0x20; its parent PC is 0x08
    // (line 10 of a.go, where the call was made).
    build(
        0x401000,
        &["a.go", "b.go"],
        &funcs,
        &[("main.inlined", 0x08)],
    )
}

#[test]
fn finds_functions_and_lines() {
    let (tab, gofunc) = sample();
    let p = Pclntab::parse(&tab, 0x500000, None)
        .unwrap()
        .with_gofunc(0x600000, &gofunc);
    assert_eq!(p.version(), PclntabVersion::Go120);
    assert_eq!(p.nfunc(), 2);
    let f = p.find_func(0x401005).unwrap();
    assert_eq!(f.name(), "main.outer");
    assert_eq!(f.sp_delta(0x401002).unwrap(), 0);
    assert_eq!(f.sp_delta(0x401010).unwrap(), 0x18);
    let (file, line) = f.file_line(0x401030).unwrap();
    assert_eq!((file, line), (&b"a.go"[..], 12));
    let g = p.find_func(0x401041).unwrap();
    assert_eq!(g.print_name(), "main.(*T[...]).Wait");
    assert!(g.flags.writes_sp());
    assert!(p.find_func(0x401060).is_err());
    assert!(p.find_func(0x400fff).is_err());
    assert!(p.func_by_name("main.outer").is_some());
}

#[test]
fn expands_inline_frames_innermost_first() {
    let (tab, gofunc) = sample();
    let p = Pclntab::parse(&tab, 0x500000, None)
        .unwrap()
        .with_gofunc(0x600000, &gofunc);
    let f = p.find_func(0x401000).unwrap();
    let frames = f.frames_at(0x401014).unwrap();
    let got: Vec<_> = frames
        .iter()
        .map(|fr| {
            (
                fr.name_str().into_owned(),
                fr.file_str().into_owned(),
                fr.line,
                fr.inlined,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("main.inlined".to_string(), "b.go".to_string(), 33, true),
            ("main.outer".to_string(), "a.go".to_string(), 10, false)
        ]
    );
    // Outside the inlined range there is one physical frame.
    assert_eq!(f.frames_at(0x401030).unwrap().len(), 1);
    // Without go:func the inline tree is unavailable: physical frame only.
    let p2 = Pclntab::parse(&tab, 0x500000, None).unwrap();
    assert_eq!(
        p2.find_func(0x401000)
            .unwrap()
            .frames_at(0x401014)
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn names_for_print() {
    assert_eq!(name_for_print("main.F[go.shape.int]"), "main.F[...]");
    assert_eq!(
        name_for_print("main.(*T[go.shape.string,go.shape.int]).M"),
        "main.(*T[...]).M"
    );
    assert_eq!(name_for_print("main.main"), "main.main");
    assert_eq!(name_for_print("weird]name[x"), "weird]name[x");
}

#[test]
fn every_truncation_fails_cleanly() {
    let (tab, gofunc) = sample();
    for n in 0..tab.len() {
        let cut = &tab[..n];
        if let Ok(p) = Pclntab::parse(cut, 0, None) {
            let p = p.with_gofunc(0, &gofunc);
            for pc in (0x401000..0x401062).step_by(3) {
                if let Ok(f) = p.find_func(pc) {
                    let _ = f.frames_at(pc);
                    let _ = f.sp_delta(pc);
                }
            }
        }
    }
    for n in 0..gofunc.len() {
        let p = Pclntab::parse(&tab, 0, None)
            .unwrap()
            .with_gofunc(0, &gofunc[..n]);
        let _ = p.find_func(0x401014).unwrap().frames_at(0x401014);
    }
}

#[test]
fn rejects_old_and_bad_magics() {
    let mut b = vec![0u8; 0x48];
    b[..4].copy_from_slice(&0xfffffffbu32.to_le_bytes());
    assert!(matches!(
        Pclntab::parse(&b, 0, Some(1)),
        Err(PclntabError::UnsupportedFormat { .. })
    ));
    b[..4].copy_from_slice(&0x12345678u32.to_le_bytes());
    assert!(matches!(
        Pclntab::parse(&b, 0, Some(1)),
        Err(PclntabError::BadMagic { .. })
    ));
}

#[test]
fn looping_pcvalue_tables_are_bounded() {
    let (mut tab, _) = sample();
    // Make nfunc huge: header must refuse it.
    tab[8..16].copy_from_slice(&(u64::MAX / 2).to_le_bytes());
    assert!(Pclntab::parse(&tab, 0, None).is_err());
}

/// The synthetic tables as a fuzz seed: two length bytes giving the table
/// size, the table, then go:func.
#[test]
fn fuzz_seed_is_current() {
    let (tab, gofunc) = sample();
    let mut seed = (tab.len() as u16).to_le_bytes().to_vec();
    seed.extend(&tab);
    seed.extend(&gofunc);
    crate::binary::fuzz_seeds::check_seed("pclntab", "synthetic-inline", &seed);
}
