//! Argument info and liveness on synthetic pclntabs.

use super::super::tests::{build, ArgsSpec, FuncSpec};
use super::*;
use crate::binary::pclntab::Pclntab;

/// `f(a int, s string, p struct{ x, y int32 })` as the compiler encodes
/// it: words at 0, 8 and 16, then an aggregate of two 4-byte words.
const PROGRAM: [u8; 13] = [0, 8, 8, 8, 16, 8, 0xfe, 24, 4, 28, 4, 0xfd, 0xff];

#[test]
fn decodes_words_aggregates_and_markers() {
    let ops = parse_arg_info(&PROGRAM).unwrap();
    assert_eq!(
        ops,
        vec![
            ArgOp::Word { off: 0, size: 8 },
            ArgOp::Word { off: 8, size: 8 },
            ArgOp::Word { off: 16, size: 8 },
            ArgOp::StartAgg,
            ArgOp::Word { off: 24, size: 4 },
            ArgOp::Word { off: 28, size: 4 },
            ArgOp::EndAgg,
        ]
    );
    assert_eq!(
        parse_arg_info(&[0xfc, 0xfb, 0xff]).unwrap(),
        vec![ArgOp::Dotdotdot, ArgOp::OffsetTooLarge]
    );
    // Nothing after the end marker is read.
    assert_eq!(parse_arg_info(&[0xff, 1, 2]).unwrap(), vec![]);
}

#[test]
fn programs_without_an_end_fail_cleanly() {
    for n in 0..PROGRAM.len() {
        assert!(parse_arg_info(&PROGRAM[..n]).is_err(), "cut at {n}");
    }
    // A word whose size byte is missing.
    assert!(parse_arg_info(&[0, 8, 16]).is_err());
    // Go reads at most TraceArgsMaxLen bytes: an end marker after them
    // does not count.
    let mut long = vec![0xfc; ARG_INFO_MAX_LEN];
    long.push(0xff);
    assert!(parse_arg_info(&long).is_err());
    long[ARG_INFO_MAX_LEN - 1] = 0xff;
    assert_eq!(parse_arg_info(&long).unwrap().len(), ARG_INFO_MAX_LEN - 1);
}

/// Two functions: `main.f` with argument info and liveness (stack-passed
/// words below offset 0x10 always live; spill slots tracked from 0x10),
/// `main.g` without either.
fn table() -> (Vec<u8>, Vec<u8>) {
    let f = FuncSpec {
        name: "main.f",
        size: 0x40,
        pcsp: vec![(0, 0x40)],
        pcfile: vec![(0, 0x40)],
        pcln: vec![(3, 0x40)],
        inl_index: None,
        flag: 0,
        args: Some(ArgsSpec {
            info: vec![0, 8, 8, 8, 0x10, 8, 0x18, 8, 0x20, 8, 0xff],
            // start offset 0x10; bitmap at 1: slot 0 only; at 2: slots 0, 2.
            live: Some((
                vec![0x10, 0b001, 0b101],
                vec![(-1, 0x08), (1, 0x10), (2, 0x20), (0, 0x40)],
            )),
        }),
    };
    let g = FuncSpec {
        name: "main.g",
        size: 0x20,
        pcsp: vec![(0, 0x20)],
        pcfile: vec![(0, 0x20)],
        pcln: vec![(9, 0x20)],
        inl_index: None,
        flag: 0,
        args: None,
    };
    build(0x401000, &["a.go"], &[f, g], &[])
}

#[test]
fn reads_argument_info_and_liveness_from_funcdata() {
    let (tab, gofunc) = table();
    let p = Pclntab::parse(&tab, 0x500000, None)
        .unwrap()
        .with_gofunc(0x600000, &gofunc);
    let f = p.find_func(0x401000).unwrap();
    let ops = f.arg_info().unwrap().unwrap();
    assert_eq!(ops.len(), 5);
    assert_eq!(ops[2], ArgOp::Word { off: 0x10, size: 8 });

    // Index -1: everything live.
    let l = f.arg_liveness(0x401004).unwrap();
    assert_eq!(l.start_offset(), 0x10);
    assert!(l.is_live(0x10, 0).unwrap() && l.is_live(0x20, 2).unwrap());
    // Index 1: spill slot 0 live, slots 1 and 2 not; stack words always.
    let l = f.arg_liveness(0x40100c).unwrap();
    assert!(l.is_live(0, 0).unwrap());
    assert!(l.is_live(0x10, 0).unwrap());
    assert!(!l.is_live(0x18, 1).unwrap());
    assert!(!l.is_live(0x20, 2).unwrap());
    // Index 2: slots 0 and 2.
    let l = f.arg_liveness(0x401010).unwrap();
    assert!(l.is_live(0x10, 0).unwrap());
    assert!(!l.is_live(0x18, 1).unwrap());
    assert!(l.is_live(0x20, 2).unwrap());
    // Index 0 means "all live" too (Go tests liveIdx <= 0).
    assert!(f.arg_liveness(0x401030).unwrap().is_live(0x18, 1).unwrap());
    // A slot past the bitmap's funcdata is an error, not a guess.
    assert!(f.arg_liveness(0x401010).unwrap().is_live(0x80, 8).is_err());

    let g = p.find_func(0x401040).unwrap();
    assert_eq!(g.arg_info().unwrap(), None, "no funcdata: Go prints ()");
    assert!(g.arg_liveness(0x401040).unwrap().is_live(0x30, 5).unwrap());

    // Without go:func.* the funcdata exists but cannot be read: an error,
    // never an empty argument list.
    let bare = Pclntab::parse(&tab, 0x500000, None).unwrap();
    let f = bare.find_func(0x401000).unwrap();
    assert!(matches!(f.arg_info(), Err(PclntabError::NoGofunc)));
    assert!(f.arg_liveness(0x40100c).is_err());
}

#[test]
fn truncated_funcdata_fails_cleanly() {
    let (tab, gofunc) = table();
    for n in 0..gofunc.len() {
        let p = Pclntab::parse(&tab, 0, None)
            .unwrap()
            .with_gofunc(0, &gofunc[..n]);
        let f = p.find_func(0x401000).unwrap();
        // The 11 bytes of argument info come first, then 3 of liveness.
        assert_eq!(f.arg_info().is_ok(), n >= 11, "go:func cut at {n}");
        let live = f.arg_liveness(0x401010).and_then(|l| l.is_live(0x20, 2));
        assert_eq!(live.is_ok(), n >= 14, "go:func cut at {n}");
    }
}

#[test]
fn outermost_pc_follows_the_inline_tree() {
    let (tab, gofunc) = super::super::tests::sample();
    let p = Pclntab::parse(&tab, 0x500000, None)
        .unwrap()
        .with_gofunc(0x600000, &gofunc);
    let f = p.find_func(0x401000).unwrap();
    // 0x401014 is inside the inlined call whose call site is outer+0x08.
    assert_eq!(f.outermost_pc(0x401014).unwrap(), 0x401008);
    assert_eq!(f.outermost_pc(0x401030).unwrap(), 0x401030);
}

/// The argument table as a fuzz seed, in the pclntab target's form: two
/// length bytes, the table, go:func.
#[test]
fn fuzz_seed_is_current() {
    let (tab, gofunc) = table();
    let mut seed = (tab.len() as u16).to_le_bytes().to_vec();
    seed.extend(&tab);
    seed.extend(&gofunc);
    crate::binary::fuzz_seeds::check_seed("pclntab", "synthetic-args", &seed);
}

/// One function `main.f` at 0x401000 (0x40 bytes) with argument info
/// `info` and liveness funcdata `live`, whose index is -1 (all live) over
/// the first 0x10 bytes and 1 after: for the formatter's tests.
pub(crate) fn liveness_table(info: &[u8], live: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let f = FuncSpec {
        name: "main.f",
        size: 0x40,
        pcsp: vec![(0, 0x40)],
        pcfile: vec![(0, 0x40)],
        pcln: vec![(3, 0x40)],
        inl_index: None,
        flag: 0,
        args: Some(ArgsSpec {
            info: info.to_vec(),
            live: Some((live.to_vec(), vec![(-1, 0x10), (1, 0x40)])),
        }),
    };
    build(0x401000, &["a.go"], &[f], &[])
}
