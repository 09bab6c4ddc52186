//! Build info from synthetic records built in code.

use super::modinfo::*;
use super::*;
use crate::memory::RegionMemory;

const INFO_START: &[u8; 16] = b"\x30\x77\xaf\x0c\x92\x74\x08\x02\x41\xe1\xc1\x07\xe6\xd6\x18\xe6";
const INFO_END: &[u8; 16] = b"\xf9\x32\x43\x31\x86\x18\x20\x72\x00\x82\x42\x10\x41\x16\xd8\xf2";

fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Modinfo as `cmd/go` embeds it: text between the two sentinels.
fn wrap(modinfo: impl AsRef<[u8]>) -> Vec<u8> {
    let mut m = INFO_START.to_vec();
    m.extend_from_slice(modinfo.as_ref());
    m.extend_from_slice(INFO_END);
    m
}

/// A Go 1.18+ `.go.buildinfo` record with inline strings.
fn inline_blob(version: &[u8], modinfo: &[u8]) -> Vec<u8> {
    let mut b = MAGIC.to_vec();
    b.push(8);
    b.push(FLAG_VERSION_INLINE);
    b.resize(HEADER_SIZE, 0);
    put_uvarint(&mut b, version.len() as u64);
    b.extend_from_slice(version);
    put_uvarint(&mut b, modinfo.len() as u64);
    b.extend_from_slice(modinfo);
    b
}

const NORMAL: &str = "path\texample.com/app/cmd/app\n\
    mod\texample.com/app\t(devel)\t\n\
    dep\tgolang.org/x/sys\tv0.20.0\th1:abc=\n\
    dep\tgithub.com/pkg/errors\tv0.9.1\n\
    build\t-buildmode=exe\n\
    build\t-compiler=gc\n\
    build\t-trimpath=true\n\
    build\tCGO_ENABLED=0\n\
    build\tGOARCH=amd64\n\
    build\tGOOS=linux\n\
    build\tGOAMD64=v1\n\
    build\tDefaultGODEBUG=httplaxcontentlength=1,tracebacklabels=0\n";

#[test]
fn parses_a_normal_record() {
    let bi = BuildInfo::parse(&inline_blob(b"go1.27.3", &wrap(NORMAL))).unwrap();
    assert_eq!(bi.go_version, "go1.27.3");
    assert_eq!(bi.version().unwrap().minor, 27);
    assert_eq!(bi.path.as_deref(), Some("example.com/app/cmd/app"));
    let main = bi.main.as_ref().unwrap();
    assert_eq!(
        (main.path.as_str(), main.version.as_str(), main.sum.as_str()),
        ("example.com/app", "(devel)", "")
    );
    assert_eq!(bi.deps.len(), 2);
    assert_eq!(bi.deps[0].sum, "h1:abc=");
    assert_eq!(bi.deps[1].sum, "");
    let keys: Vec<&str> = bi.settings.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "-buildmode",
            "-compiler",
            "-trimpath",
            "CGO_ENABLED",
            "GOARCH",
            "GOOS",
            "GOAMD64",
            "DefaultGODEBUG"
        ]
    );
    assert_eq!(bi.setting("GOARCH"), Some("amd64"));
    assert_eq!(bi.setting("nope"), None);
    assert_eq!(
        bi.default_godebug(),
        Some("httplaxcontentlength=1,tracebacklabels=0")
    );
    // Trailing bytes after the record (section padding) are ignored.
    let mut padded = inline_blob(b"go1.27.3", &wrap(NORMAL));
    padded.resize(padded.len() + 100, 0);
    assert_eq!(BuildInfo::parse(&padded).unwrap(), bi);
    let json = serde_json::to_string(&bi).unwrap();
    assert!(
        json.contains("\"settings\":[[\"-buildmode\",\"exe\"]"),
        "{json}"
    );
}

#[test]
fn parses_replacements() {
    let text = "path\tex.com/a\nmod\tex.com/a\t(devel)\t\n\
        dep\tex.com/b\tv1.0.0\th1:b=\n\
        dep\tex.com/c\tv1.2.3\n=>\t../c\t(devel)\t\n\
        dep\tex.com/d\tv0.1.0\n=>\tex.com/fork/d\tv0.1.1\th1:d=\n";
    let bi = BuildInfo::parse(&inline_blob(b"go1.22.1", &wrap(text))).unwrap();
    assert!(bi.deps[0].replace.is_none());
    let c = bi.deps[1].replace.as_deref().unwrap();
    assert_eq!(
        (c.path.as_str(), c.version.as_str(), c.sum.as_str()),
        ("../c", "(devel)", "")
    );
    let d = bi.deps[2].replace.as_deref().unwrap();
    assert_eq!(
        (d.path.as_str(), d.version.as_str(), d.sum.as_str()),
        ("ex.com/fork/d", "v0.1.1", "h1:d=")
    );
    // The main module can be replaced too (Go's parser allows it).
    let bi = BuildInfo::parse(&inline_blob(
        b"go1.22.1",
        &wrap("mod\tm\tv1\n=>\tn\tv2\ts\n"),
    ))
    .unwrap();
    assert_eq!(bi.main.unwrap().replace.unwrap().path, "n");
}

#[test]
fn unquotes_build_settings() {
    let text = concat!(
        "build\t-ldflags=\"-s -w -X \\\"main.version=1.2 3\\\" -X main.x=\\ttab\"\n",
        "build\t-gcflags=all=-N -l\n", // Go would reject this: unquoted space
    );
    let e = BuildInfo::parse(&inline_blob(b"go1.21.0", &wrap(text))).unwrap_err();
    assert!(matches!(e, BuildInfoError::Modinfo { line: 2, .. }), "{e}");
    assert!(e.to_string().contains("must be quoted"), "{e}");

    let text = concat!(
        "build\t-ldflags=\"-s -w -X \\\"main.version=1.2 3\\\" -X main.x=\\ttab\"\n",
        "build\t-tags=\n",
        "build\t\"we=ird key\"=`raw \"value\"`\n",
        "build\tesc=\"\\a\\b\\f\\n\\r\\v\\\\\\x41\\101\\u00e9\\U0001F600\"\n",
        "build\tCGO_CFLAGS=\n",
        "build\tvcs.modified=true\n",
    );
    let bi = BuildInfo::parse(&inline_blob(b"go1.21.0", &wrap(text))).unwrap();
    assert_eq!(
        bi.setting("-ldflags"),
        Some("-s -w -X \"main.version=1.2 3\" -X main.x=\ttab")
    );
    assert_eq!(bi.setting("-tags"), Some(""));
    assert_eq!(bi.setting("we=ird key"), Some("raw \"value\""));
    assert_eq!(bi.setting("esc"), Some("\x07\x08\x0c\n\r\x0b\\AAé😀"));
    assert_eq!(bi.setting("vcs.modified"), Some("true"));
    assert_eq!(bi.settings.len(), 6);
}

#[test]
fn unquote_matches_go_strconv() {
    assert_eq!(unquote_prefix("\"a\"rest"), Some(("a".into(), 3)));
    assert_eq!(unquote_prefix("`a\r\nb`"), Some(("a\nb".into(), 6)));
    assert_eq!(unquote_prefix("\"\\xff\""), Some(("\u{fffd}".into(), 6)));
    for bad in [
        "\"",
        "\"abc",
        "\"\\q\"",
        "\"\\'\"",
        "\"\\x4\"",
        "\"\\xzz\"",
        "\"\\400\"",
        "\"\\18\"",
        "\"\\ud800\"",
        "\"\\U00110000\"",
        "\"a\nb\"",
        "`abc",
        "'a'",
        "\"\\",
        "\"\\u12",
    ] {
        assert_eq!(unquote_prefix(bad), None, "{bad:?}");
    }
}

#[test]
fn rejects_malformed_modinfo_lines() {
    for (text, line, what) in [
        ("mod\tonly\n", 1, "2 or 3 columns"),
        ("dep\ta\tb\tc\td\n", 1, "2 or 3 columns"),
        ("path\tp\n=>\ta\tb\tc\n", 2, "no module"),
        ("dep\ta\tv\n=>\ta\tb\tc\n=>\ta\tb\tc\n", 3, "no module"),
        ("dep\ta\tv\n=>\ta\tb\n", 2, "3 columns"),
        ("build\t\n", 1, "missing '='"),
        ("build\t=v\n", 1, "missing key"),
        ("build\tkey\n", 1, "missing '=' after key"),
        ("build\t\"k\"\n", 1, "missing '=' after quoted key"),
        ("build\t\"k\"x\n", 1, "unexpected character"),
        ("build\t\"k\n", 1, "invalid quoted key"),
        ("build\tk=\"v\"x\n", 1, "invalid quoted value"),
        ("build\tk=v\"\n", 1, "must be quoted"),
        ("build\tk y=v\n", 1, "must be quoted"),
    ] {
        match BuildInfo::parse(&inline_blob(b"go1.21.0", &wrap(text))) {
            Err(BuildInfoError::Modinfo { line: l, reason }) => {
                assert_eq!(l, line, "{text:?}");
                assert!(reason.contains(what), "{text:?}: {reason}");
            }
            other => panic!("{text:?}: {other:?}"),
        }
    }
    // Unknown lines are skipped; a last line without '\n' is ignored
    // (through `parse`, the sentinel check already requires the '\n').
    let bi = parse_modinfo("go\tgo1.21\nfoo\nbuild\ta=b\nbuild\tc=d").unwrap();
    assert_eq!(bi.settings, [("a".to_string(), "b".to_string())]);
}

#[test]
fn modinfo_without_sentinels_is_empty() {
    for m in [&b""[..], b"path\tx\n", &[b'x'; 40][..]] {
        let bi = BuildInfo::parse(&inline_blob(b"go1.19.8", m)).unwrap();
        assert_eq!(
            bi,
            BuildInfo {
                go_version: "go1.19.8".into(),
                ..Default::default()
            }
        );
    }
    // Non-UTF-8 bytes are replaced, not fatal.
    let bi = BuildInfo::parse(&inline_blob(b"go1.21\xff", &wrap(b"path\tp\xc3\n"))).unwrap();
    assert_eq!(bi.go_version, "go1.21\u{fffd}");
    assert_eq!(bi.path.as_deref(), Some("p\u{fffd}"));
}

#[test]
fn every_truncation_is_an_error() {
    let text =
        "path\tex.com/a\nmod\tex.com/a\t(devel)\t\ndep\tex.com/c\tv1.2.3\n=>\t../c\t(devel)\t\n\
        build\t-ldflags=\"-X \\\"a=b c\\\"\"\n";
    let blob = inline_blob(b"go1.27.3", &wrap(text));
    assert!(BuildInfo::parse(&blob).is_ok());
    for n in 0..blob.len() {
        let r = BuildInfo::parse(&blob[..n]);
        assert!(r.is_err(), "prefix {n} parsed: {r:?}");
    }
    assert!(matches!(
        BuildInfo::parse(&blob[..20]),
        Err(BuildInfoError::Truncated(_))
    ));
    assert!(matches!(
        BuildInfo::parse(&blob[..40]),
        Err(BuildInfoError::Truncated(_))
    ));
    let msg = BuildInfo::parse(&blob[..40]).unwrap_err().to_string();
    assert!(
        msg.contains("go.buildinfo") && msg.contains("offset"),
        "{msg}"
    );
}

#[test]
fn bad_magic_and_empty_version() {
    let mut blob = inline_blob(b"go1.27.3", &wrap(NORMAL));
    blob[3] = b'X';
    let e = BuildInfo::parse(&blob).unwrap_err();
    assert!(matches!(e, BuildInfoError::BadMagic { .. }));
    assert!(
        e.to_string().contains("bad magic \"\\xff GX buildinf:\""),
        "{e}"
    );
    assert!(matches!(
        BuildInfo::parse(b"\x7fELF"),
        Err(BuildInfoError::BadMagic { .. })
    ));
    assert!(matches!(
        BuildInfo::parse(b""),
        Err(BuildInfoError::Truncated(_))
    ));
    assert_eq!(
        BuildInfo::parse(&inline_blob(b"", &wrap(NORMAL))),
        Err(BuildInfoError::EmptyVersion)
    );
}

#[test]
fn huge_lengths_are_refused() {
    let mut b = inline_blob(b"", b"");
    b.truncate(HEADER_SIZE);
    let mut huge = b.clone();
    put_uvarint(&mut huge, u64::MAX);
    assert!(matches!(
        BuildInfo::parse(&huge),
        Err(BuildInfoError::TooLong {
            what: "Go version",
            ..
        })
    ));
    let mut over = b.clone();
    over.extend_from_slice(&[0xff; 11]);
    assert!(matches!(
        BuildInfo::parse(&over),
        Err(BuildInfoError::Truncated(ReadError::VarintOverflow {
            offset: 32,
            ..
        }))
    ));
    let mut big_mod = b.clone();
    put_uvarint(&mut big_mod, 2);
    big_mod.extend_from_slice(b"go");
    put_uvarint(&mut big_mod, MAX_MODINFO_LEN + 1);
    assert!(matches!(
        BuildInfo::parse(&big_mod),
        Err(BuildInfoError::TooLong {
            what: "module info",
            ..
        })
    ));
    // A length under the cap but past the end is truncation, not an allocation.
    let mut short = b;
    put_uvarint(&mut short, MAX_VERSION_LEN);
    assert!(matches!(
        BuildInfo::parse(&short),
        Err(BuildInfoError::Truncated(_))
    ));
}

#[test]
fn entry_counts_are_capped() {
    let text = "dep\ta\tv\n".repeat(MAX_MODULES + 1);
    let e = BuildInfo::parse(&inline_blob(b"go1.21.0", &wrap(&text))).unwrap_err();
    assert!(
        matches!(
            e,
            BuildInfoError::TooLong {
                what: "dependency list",
                ..
            }
        ),
        "{e}"
    );
    let text = "build\ta=b\n".repeat(MAX_SETTINGS + 1);
    let e = BuildInfo::parse(&inline_blob(b"go1.21.0", &wrap(&text))).unwrap_err();
    assert!(
        matches!(
            e,
            BuildInfoError::TooLong {
                what: "build settings list",
                ..
            }
        ),
        "{e}"
    );
}

/// A pre-1.18 header whose pointers lead to Go string headers at `base`.
fn pointer_blob(ptr_size: u8, big_endian: bool, base: u64) -> (Vec<u8>, RegionMemory) {
    let (hdr, regions) = pointer_parts(ptr_size, big_endian, base);
    let mut mem = RegionMemory::new();
    for (addr, bytes) in regions {
        mem.insert(addr, bytes);
    }
    (hdr, mem)
}

/// The header of a pre-1.18 record and the (address, bytes) it points to.
fn pointer_parts(ptr_size: u8, big_endian: bool, base: u64) -> (Vec<u8>, Vec<(u64, Vec<u8>)>) {
    let ps = usize::from(ptr_size);
    let word = |v: u64| -> Vec<u8> {
        if big_endian {
            v.to_be_bytes()[8 - ps..].to_vec()
        } else {
            v.to_le_bytes()[..ps].to_vec()
        }
    };
    let mut hdr = MAGIC.to_vec();
    hdr.push(ptr_size);
    hdr.push(u8::from(big_endian));
    hdr.extend(word(base));
    hdr.extend(word(base + 0x10));
    hdr.resize(HEADER_SIZE, 0);
    let version = b"go1.17.13".to_vec();
    let modinfo = wrap("path\tex.com/old\nmod\tex.com/old\t(devel)\t\n");
    let mut strings = Vec::new();
    strings.extend(word(base + 0x100));
    strings.extend(word(version.len() as u64));
    strings.resize(0x10, 0);
    strings.extend(word(base + 0x200));
    strings.extend(word(modinfo.len() as u64));
    (
        hdr,
        vec![
            (base, strings),
            (base + 0x100, version),
            (base + 0x200, modinfo),
        ],
    )
}

#[test]
fn pointer_format_through_memory() {
    for (ps, be) in [(8, false), (4, false), (8, true), (4, true)] {
        let (hdr, mem) = pointer_blob(ps, be, 0x50_0000);
        assert_eq!(BuildInfo::parse(&hdr), Err(BuildInfoError::PointerFormat));
        let bi = BuildInfo::parse_with_memory(&hdr, &mem).unwrap();
        assert_eq!(bi.go_version, "go1.17.13", "ptr {ps} be {be}");
        assert_eq!(bi.path.as_deref(), Some("ex.com/old"));
        assert_eq!(bi.main.unwrap().path, "ex.com/old");
    }
    let (mut hdr, mem) = pointer_blob(8, false, 0x50_0000);
    hdr[14] = 2;
    assert_eq!(
        BuildInfo::parse_with_memory(&hdr, &mem),
        Err(BuildInfoError::PointerSize(2))
    );
    // Pointers to nowhere and huge lengths fail cleanly.
    let (hdr, _) = pointer_blob(8, false, 0x50_0000);
    assert!(matches!(
        BuildInfo::parse_with_memory(&hdr, &RegionMemory::new()),
        Err(BuildInfoError::Memory(_))
    ));
    let mut mem = RegionMemory::new();
    let mut sh = 0x50_0100u64.to_le_bytes().to_vec();
    sh.extend(u64::MAX.to_le_bytes());
    mem.insert(0x50_0000, sh);
    assert!(matches!(
        BuildInfo::parse_with_memory(&hdr, &mem),
        Err(BuildInfoError::TooLong { .. })
    ));
}

/// One PT_LOAD program header: (p_flags, p_offset, p_vaddr, p_filesz, p_memsz).
type Load = (u32, u64, u64, u64, u64);

/// A minimal ELF64 x86-64 executable without section headers: the given
/// PT_LOAD headers, then `body` placed at file offset `body_off`.
fn elf_with_loads(loads: &[Load], body_off: usize, body: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0");
    f.extend(2u16.to_le_bytes()); // ET_EXEC
    f.extend(62u16.to_le_bytes()); // EM_X86_64
    f.extend(1u32.to_le_bytes());
    f.extend(0x40_1000u64.to_le_bytes()); // entry
    f.extend(64u64.to_le_bytes()); // phoff
    f.extend(0u64.to_le_bytes()); // shoff
    f.extend(0u32.to_le_bytes());
    f.extend(64u16.to_le_bytes());
    f.extend(56u16.to_le_bytes());
    f.extend((loads.len() as u16).to_le_bytes()); // phnum
    f.extend(64u16.to_le_bytes());
    f.extend(0u16.to_le_bytes());
    f.extend(0u16.to_le_bytes());
    for &(flags, off, va, filesz, memsz) in loads {
        f.extend(1u32.to_le_bytes()); // PT_LOAD
        f.extend(flags.to_le_bytes());
        f.extend(off.to_le_bytes());
        f.extend(va.to_le_bytes());
        f.extend(va.to_le_bytes());
        f.extend(filesz.to_le_bytes());
        f.extend(memsz.to_le_bytes());
        f.extend(0x1000u64.to_le_bytes());
    }
    assert!(f.len() <= body_off);
    f.resize(body_off, 0);
    f.extend_from_slice(body);
    f
}

/// One R+X segment for the headers and one RW segment holding `payload`
/// at link address `vaddr` (the file offset is congruent mod 16).
fn tiny_elf(vaddr: u64, payload: &[u8]) -> Vec<u8> {
    let data_off = 0x100 + (vaddr % 16);
    let len = payload.len() as u64;
    elf_with_loads(
        &[
            (5, 0, 0x40_0000, 0x100, 0x100),
            (6, data_off, vaddr, len, len + 0x40),
        ],
        data_off as usize,
        payload,
    )
}

/// Regression for a panic the `buildinfo` fuzz target found in
/// `GoBinary::read_at` (src/elf.rs, `seg.file_offset + r` overflows when
/// a segment's p_offset is near u64::MAX). A pre-1.18 record points into
/// such a segment (fixed in elf.rs with checked arithmetic).
#[test]
fn pointer_into_segment_with_huge_file_offset_is_an_error() {
    let mut hdr = MAGIC.to_vec();
    hdr.extend([8, 0]);
    hdr.extend(0x60_0040u64.to_le_bytes()); // version string header
    hdr.extend(0x60_0050u64.to_le_bytes());
    hdr.resize(HEADER_SIZE, 0);
    let loads = [
        (6, 0x100, 0x50_0100, HEADER_SIZE as u64, 0x100),
        (6, u64::MAX, 0x60_0000, 0x100, 0x100),
    ];
    let bin = GoBinary::from_vec("huge-offset", elf_with_loads(&loads, 0x100, &hdr)).unwrap();
    assert!(BuildInfo::from_binary(&bin).is_err());
}

#[test]
fn from_binary_scans_segments_without_sections() {
    let blob = inline_blob(b"go1.27.3", &wrap(NORMAL));
    // Aligned: found by the scan, behind a misaligned decoy and junk.
    let mut payload = vec![0u8; 0x20];
    payload[3..17].copy_from_slice(MAGIC);
    payload.extend_from_slice(&blob);
    let bin = GoBinary::from_vec("tiny", tiny_elf(0x60_0000, &payload)).unwrap();
    let bi = BuildInfo::from_binary(&bin).unwrap();
    assert_eq!(bi, BuildInfo::parse(&blob).unwrap());
    // The same bytes at a misaligned address are not build info.
    let bin = GoBinary::from_vec("tiny", tiny_elf(0x60_0008, &blob)).unwrap();
    assert_eq!(BuildInfo::from_binary(&bin), Err(BuildInfoError::NotFound));
    // A candidate that fails to parse reports its error.
    let bin = GoBinary::from_vec("tiny", tiny_elf(0x60_0000, &blob[..40])).unwrap();
    assert!(matches!(
        BuildInfo::from_binary(&bin),
        Err(BuildInfoError::Truncated(_))
    ));
    // Pre-1.18 pointers are followed through the binary's own image.
    let bin = GoBinary::from_vec("tiny", tiny_elf(0x60_0000, &pointer_image(0x60_0000))).unwrap();
    let bi = BuildInfo::from_binary(&bin).unwrap();
    assert_eq!(bi.go_version, "go1.17.13");
    assert_eq!(bi.path.as_deref(), Some("ex.com/old"));
}

/// A data segment image at `base` holding a pre-1.18 record at its start
/// and the string headers and strings it points to after it.
fn pointer_image(base: u64) -> Vec<u8> {
    let (mut image, regions) = pointer_parts(8, false, base + 0x40);
    image.resize(0x300, 0);
    for (addr, bytes) in regions {
        let off = (addr - base) as usize;
        image[off..off + bytes.len()].copy_from_slice(&bytes);
    }
    image
}

/// The synthetic seeds of the buildinfo fuzz corpus.
#[test]
fn fuzz_seeds_are_current() {
    use crate::binary::fuzz_seeds::check_seed;
    let text =
        "path\tex.com/a\nmod\tex.com/a\t(devel)\t\ndep\tex.com/c\tv1.2.3\n=>\t../c\t(devel)\t\n\
        build\t-ldflags=\"-X \\\"a=b c\\\" \\x41\\u00e9\"\nbuild\t\"k y\"=`v`\n";
    let blob = inline_blob(b"go1.27.3", &wrap(text));
    check_seed("buildinfo", "synthetic-inline", &blob);
    check_seed(
        "buildinfo",
        "synthetic-elf-inline",
        &tiny_elf(0x60_0000, &blob),
    );
    check_seed(
        "buildinfo",
        "synthetic-elf-pointer",
        &tiny_elf(0x60_0000, &pointer_image(0x60_0000)),
    );
}
