//! The value decoder on hostile and changing memory, with the real types
//! of the `printvals` fixture (go1.23: bucket maps; go1.27: Swiss tables):
//!
//! - every global of the binary (the runtime's included, several hundred
//!   types) decoded over memory where every address holds garbage: each
//!   ends as a value or an error, never a panic, and never reads more than
//!   the byte budget;
//! - a value whose bytes change between the two reads is read again, and
//!   given up with an error (never printed torn) when it never settles.

mod common;
use common::*;
use gopeek::binary::elf::GoBinary;
use gopeek::layout::Sections;
use gopeek::memory::{Memory, MemoryError};
use gopeek::value::{evaluate, Decoder, DwarfInfo, Limits, Program};
use std::cell::Cell;

/// Every address readable, holding bytes derived from the address and a
/// seed (so pointers, lengths and counts are garbage of every size).
struct Garbage(u64);

impl Memory for Garbage {
    fn read_at(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        if addr < 0x1000 {
            return Err(MemoryError::new(addr, buf.len(), "unmapped"));
        }
        for (i, b) in buf.iter_mut().enumerate() {
            let mut x = addr.wrapping_add(i as u64) ^ self.0;
            x ^= x >> 33;
            x = x.wrapping_mul(0xff51afd7ed558ccd);
            x ^= x >> 29;
            *b = x as u8;
        }
        Ok(())
    }
}

fn binary(version: &str) -> Option<GoBinary> {
    let p = fixture(version, "default", "printvals")?;
    Some(GoBinary::open(&p).unwrap())
}

#[test]
fn garbage_memory_gives_errors_not_panics() {
    for version in ["1.23", "1.27"] {
        let Some(bin) = binary(version) else { return };
        let sections = Sections::load(&bin).unwrap();
        let dwarf = DwarfInfo::new(&sections);
        let globals = dwarf.globals();
        assert!(globals.len() > 300, "{}", globals.len());
        let limits = Limits {
            max_depth: 6,
            max_len: 32,
            max_bytes: 1 << 16,
        };
        let names = |_: u64| None;
        let mut errors = 0;
        for seed in [1u64, 0xdead_beef] {
            let mem = Garbage(seed);
            for (_, g) in &globals {
                let d = Decoder::new(&dwarf, &mem, limits, Some(0x40_0000), &names);
                let v = d.load(g.ty, g.addr, 0);
                assert!(d.bytes_used() <= limits.max_bytes);
                let _ = gopeek::value::gofmt::go_syntax(&v);
                let _ = gopeek::value::gojson::encode(&v, 27);
                errors += v.incomplete() as usize;
            }
        }
        // Garbage must actually hit the error paths.
        assert!(
            errors > 100,
            "go{version}: only {errors} values were refused"
        );
    }
}

/// Memory whose 8 bytes at `addr` change on every read for the first
/// `flips` reads of that word.
struct Flipping<'m> {
    inner: &'m dyn Memory,
    addr: u64,
    flips: u32,
    reads: Cell<u32>,
}

impl Memory for Flipping<'_> {
    fn read_at(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        self.inner.read_at(addr, buf)?;
        if addr <= self.addr && self.addr + 8 <= addr + buf.len() as u64 {
            let n = self.reads.get();
            self.reads.set(n + 1);
            if n < self.flips {
                let o = (self.addr - addr) as usize;
                buf[o..o + 8].copy_from_slice(&(1000 + n as u64).to_le_bytes());
            }
        }
        Ok(())
    }
}

#[test]
fn torn_reads_are_retried_then_refused() {
    let Some(bin) = binary("1.27") else { return };
    let sections = Sections::load(&bin).unwrap();
    let dwarf = DwarfInfo::new(&sections);
    let g = dwarf.global("main.vInt").unwrap();
    // The executable's own image as memory: main.vInt holds -42 there.
    let names = |_: u64| None;
    let p = Program {
        dwarf: &dwarf,
        bias: 0,
        types_base: None,
        func_name: &names,
    };
    let exprs = vec!["main.vInt".to_string()];
    // Changes on the first three reads: the third decoding's two reads agree.
    let mem = Flipping {
        inner: &bin,
        addr: g.addr,
        flips: 3,
        reads: Cell::new(0),
    };
    let r = evaluate(&p, &mem, Limits::default(), &exprs, true);
    let v = r[0].value.as_ref().expect("settles after retries");
    assert_eq!(gopeek::value::gofmt::go_syntax(v), "-42");
    assert_eq!(
        mem.reads.get(),
        4 + 2,
        "two torn attempts, then two agreeing reads"
    );
    // Never settles: an error, not a value.
    let mem = Flipping {
        inner: &bin,
        addr: g.addr,
        flips: u32::MAX,
        reads: Cell::new(0),
    };
    let r = evaluate(&p, &mem, Limits::default(), &exprs, true);
    assert!(r[0].value.is_none());
    assert!(
        r[0].error
            .as_deref()
            .unwrap()
            .contains("changed between reads"),
        "{:?}",
        r[0].error
    );
    // Without the second read (under --consistent's hold) the first read is kept.
    let mem = Flipping {
        inner: &bin,
        addr: g.addr,
        flips: u32::MAX,
        reads: Cell::new(0),
    };
    let r = evaluate(&p, &mem, Limits::default(), &exprs, false);
    assert_eq!(
        gopeek::value::gofmt::go_syntax(r[0].value.as_ref().unwrap()),
        "1000"
    );
}
