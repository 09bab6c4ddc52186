//! Cores built byte by byte: segments, notes, truncation, corruption.

use super::memory::ExeRange;
use super::*;
use crate::memory::{Memory, MemoryExt};

/// A minimal amd64 core: `loads` are (vaddr, memsz, bytes, writable).
pub(super) fn build_core(notes: &[(u32, Vec<u8>)], loads: &[(u64, u64, Vec<u8>, bool)]) -> Vec<u8> {
    let phnum = 1 + loads.len();
    let mut note_bytes = Vec::new();
    for (ty, desc) in notes {
        note_bytes.extend_from_slice(&5u32.to_le_bytes());
        note_bytes.extend_from_slice(&(desc.len() as u32).to_le_bytes());
        note_bytes.extend_from_slice(&ty.to_le_bytes());
        note_bytes.extend_from_slice(b"CORE\0\0\0\0");
        note_bytes.extend_from_slice(desc);
        while note_bytes.len() % 4 != 0 {
            note_bytes.push(0);
        }
    }
    let mut out = vec![0u8; 64];
    out[..4].copy_from_slice(b"\x7fELF");
    out[4] = 2; // 64-bit
    out[5] = 1; // little-endian
    out[6] = 1;
    out[16..18].copy_from_slice(&4u16.to_le_bytes()); // ET_CORE
    out[18..20].copy_from_slice(&62u16.to_le_bytes()); // EM_X86_64
    out[20..24].copy_from_slice(&1u32.to_le_bytes());
    out[32..40].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
    out[52..54].copy_from_slice(&64u16.to_le_bytes());
    out[54..56].copy_from_slice(&56u16.to_le_bytes());
    out[56..58].copy_from_slice(&(phnum as u16).to_le_bytes());
    let mut offset = 64 + 56 * phnum as u64;
    let mut ph = Vec::new();
    let mut push_ph = |ty: u32, flags: u32, off: u64, vaddr: u64, filesz: u64, memsz: u64| {
        ph.extend_from_slice(&ty.to_le_bytes());
        ph.extend_from_slice(&flags.to_le_bytes());
        ph.extend_from_slice(&off.to_le_bytes());
        ph.extend_from_slice(&vaddr.to_le_bytes());
        ph.extend_from_slice(&0u64.to_le_bytes());
        ph.extend_from_slice(&filesz.to_le_bytes());
        ph.extend_from_slice(&memsz.to_le_bytes());
        ph.extend_from_slice(&4u64.to_le_bytes());
    };
    push_ph(4, 0, offset, 0, note_bytes.len() as u64, 0);
    offset += note_bytes.len() as u64;
    for (vaddr, memsz, bytes, w) in loads {
        let flags = if *w { 6 } else { 4 };
        push_ph(1, flags, offset, *vaddr, bytes.len() as u64, *memsz);
        offset += bytes.len() as u64;
    }
    out.extend_from_slice(&ph);
    out.extend_from_slice(&note_bytes);
    for (_, _, bytes, _) in loads {
        out.extend_from_slice(bytes);
    }
    out
}

/// An amd64 NT_PRSTATUS for thread `tid` with `pc` and `sp`.
pub(super) fn prstatus(tid: i32, pc: u64, sp: u64) -> (u32, Vec<u8>) {
    let mut d = vec![0u8; 336];
    d[12..14].copy_from_slice(&3u16.to_le_bytes());
    d[32..36].copy_from_slice(&tid.to_le_bytes());
    d[112 + 16 * 8..112 + 17 * 8].copy_from_slice(&pc.to_le_bytes());
    d[112 + 19 * 8..112 + 20 * 8].copy_from_slice(&sp.to_le_bytes());
    (1, d)
}

fn nt_file(entries: &[(u64, u64, u64, &str)]) -> (u32, Vec<u8>) {
    let mut d = Vec::new();
    d.extend_from_slice(&(entries.len() as u64).to_le_bytes());
    d.extend_from_slice(&4096u64.to_le_bytes());
    for (s, e, pg, _) in entries {
        for v in [s, e, pg] {
            d.extend_from_slice(&v.to_le_bytes());
        }
    }
    for (_, _, _, p) in entries {
        d.extend_from_slice(p.as_bytes());
        d.push(0);
    }
    (0x4649_4c45, d)
}

fn auxv(pairs: &[(u64, u64)]) -> (u32, Vec<u8>) {
    let mut d = Vec::new();
    for (k, v) in pairs.iter().chain(&[(0, 0)]) {
        d.extend_from_slice(&k.to_le_bytes());
        d.extend_from_slice(&v.to_le_bytes());
    }
    (6, d)
}

fn sample() -> Vec<u8> {
    build_core(
        &[
            prstatus(101, 0x401000, 0xc000_1000),
            prstatus(102, 0x402000, 0xc000_2000),
            nt_file(&[(0x400000, 0x402000, 0, "/bin/prog")]),
            auxv(&[(AT_ENTRY, 0x401234)]),
        ],
        &[
            (0x400000, 0x2000, vec![0x7f; 16], false),
            (0xc000_0000, 0x100, (0..=255).collect(), true),
        ],
    )
}

#[test]
fn parses_threads_notes_and_segments() {
    let c = CoreFile::from_vec("core", sample()).unwrap();
    assert_eq!(c.arch(), Arch::Amd64);
    assert_eq!(c.threads().len(), 2);
    assert_eq!(c.threads()[0].tid, 101);
    assert_eq!(c.threads()[0].pc(), 0x401000);
    assert_eq!(c.threads()[1].sp(), 0xc000_2000);
    assert_eq!(c.threads()[0].signal, 3);
    assert_eq!(c.pid(), 101);
    assert_eq!(c.auxv(AT_ENTRY), Some(0x401234));
    assert_eq!(c.exe_path_from_notes(), Some("/bin/prog"));
    assert_eq!(c.segments().len(), 2);
    assert_eq!(c.truncated_segments(), 0);
}

#[test]
fn reads_present_bytes_and_refuses_absent_ones() {
    let m = CoreMemory::new(CoreFile::from_vec("core", sample()).unwrap());
    assert_eq!(m.read_u8(0xc000_0010).unwrap(), 0x10);
    assert_eq!(m.read_u64(0x400000).unwrap(), 0x7f7f_7f7f_7f7f_7f7f);
    // Left out of the core (filesz 16 of 0x2000): an error, not zeros.
    let e = m.read_u8(0x400100).unwrap_err();
    assert!(e.reason.contains("left this mapping out"), "{e}");
    assert!(m.read_u8(0x9000_0000).is_err());
    let mut b = [0u8; 2];
    assert!(m.read_at(u64::MAX, &mut b).is_err());
    assert!(
        m.read_at(0xc000_00ff, &mut b).is_err(),
        "past the segment's end"
    );
}

#[test]
fn fills_read_only_ranges_from_the_executable() {
    let exe: Vec<u8> = (0..0x2000u32).map(|i| (i % 251) as u8).collect();
    let m = CoreMemory::new(CoreFile::from_vec("core", sample()).unwrap()).with_executable(
        Box::new(exe),
        vec![ExeRange {
            start: 0x400000,
            end: 0x402000,
            file_offset: 0,
        }],
    );
    // The core's own bytes win where present; the file fills the rest.
    let mut b = [0u8; 32];
    m.read_at(0x400000, &mut b).unwrap();
    assert_eq!(&b[..16], &[0x7f; 16]);
    assert_eq!(b[16], 16);
    assert_eq!(m.read_u8(0x401000).unwrap(), (0x1000 % 251) as u8);
    assert!(m.read_u8(0x402000).is_err());
}

#[test]
fn truncation_is_named() {
    let full = sample();
    // Cut inside the second load segment: its tail is "truncated".
    let cut = full.len() - 100;
    let c = CoreFile::from_vec("core", full[..cut].to_vec()).unwrap();
    assert_eq!(c.truncated_segments(), 1);
    let m = CoreMemory::new(c);
    assert_eq!(m.read_u8(0xc000_0000).unwrap(), 0);
    let e = m.read_u8(0xc000_00f0).unwrap_err();
    assert!(e.reason.contains("truncated"), "{e}");
    // Cut inside the notes: a clear error.
    let e = CoreFile::from_vec("core", full[..300].to_vec())
        .err()
        .unwrap();
    assert!(e.to_string().contains("PT_NOTE"), "{e}");
    // Every prefix parses or fails, never panics.
    for n in 0..full.len() {
        if let Ok(c) = CoreFile::from_vec("core", full[..n].to_vec()) {
            let m = CoreMemory::new(c);
            let _ = m.read_u64(0xc000_0000);
        }
    }
}

#[test]
fn not_a_core_and_no_threads() {
    let mut exe = sample();
    exe[16] = 2; // ET_EXEC
    let e = CoreFile::from_vec("x", exe).err().unwrap();
    assert!(matches!(e, CoreError::NotCore { .. }), "{e}");
    assert!(CoreFile::from_vec("x", b"hello".to_vec()).is_err());
    let no_threads = build_core(&[auxv(&[(AT_ENTRY, 1)])], &[]);
    let e = CoreFile::from_vec("x", no_threads).err().unwrap();
    assert!(e.to_string().contains("NT_PRSTATUS"), "{e}");
    let no_notes = {
        let mut c = sample();
        c[64..68].copy_from_slice(&0u32.to_le_bytes()); // PT_NOTE -> PT_NULL
        c
    };
    let e = CoreFile::from_vec("x", no_notes).err().unwrap();
    assert!(e.to_string().contains("no PT_NOTE"), "{e}");
}

#[test]
fn nt_file_garbage_is_ignored() {
    let (_, mut d) = nt_file(&[(0x400000, 0x402000, 0, "/bin/prog")]);
    d[0..8].copy_from_slice(&u64::MAX.to_le_bytes());
    let c = build_core(&[prstatus(1, 0, 0), (0x4649_4c45, d)], &[]);
    let c = CoreFile::from_vec("x", c).unwrap();
    assert!(c.files().is_empty());
}

/// A read-only segment that claims 2^62 bytes (the fuzzer's hang): the
/// check against the core stops at what the file holds.
#[test]
fn exe_check_is_bounded_by_the_file() {
    let mut data = sample();
    // The first PT_LOAD's p_filesz (program header 1, field at +32).
    let at = 64 + 56 + 32;
    data[at..at + 8].copy_from_slice(&(1u64 << 62).to_le_bytes());
    // e_entry so that AT_ENTRY gives a page-aligned bias.
    data[24..32].copy_from_slice(&0x234u64.to_le_bytes());
    let core = CoreFile::from_vec("core", sample()).unwrap();
    let started = std::time::Instant::now();
    let _ = exe::check(&core, Path::new("exe"), &data);
    // Unbounded, this is 2^50 lookups; bounded, well under a second even
    // in a debug build on a loaded machine.
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
}
