//! Every generated table composes into offsets, per version and arch.

use super::*;
use crate::binary::elf::Arch;
use crate::layout::supported_minors;

/// Entries in `p.runq` (`[256]guintptr` in every supported version).
const P_RUNQ_LEN: u64 = 256;

#[test]
fn every_table_composes() {
    for &minor in supported_minors() {
        for arch in [Arch::Amd64, Arch::Arm64] {
            let layout = RuntimeLayout::from_table_for(minor, arch).unwrap();
            let o = RuntimeOffsets::from_layout(&layout)
                .unwrap_or_else(|e| panic!("go1.{minor} {arch:?}: {e}"));
            // Invariants that hold in every version.
            assert_eq!(o.g.stack_lo, 0);
            assert_eq!(o.g.stack_hi, 8);
            assert_eq!(o.g.sched_sp, 0x38);
            assert_eq!(o.g.sched_g, 0x48);
            assert_eq!(o.m.g0, 0);
            assert_eq!(o.moduledata.text, 0xb0);
            assert_eq!(o.p.runnext - o.p.runq, 8 * P_RUNQ_LEN);
            assert_eq!(o.g.parent_goid.is_some(), minor >= 21);
            assert_eq!(o.g.syscallbp.is_some(), minor >= 23);
            assert_eq!(o.g.sync_group.is_some(), minor == 24);
            assert_eq!(o.g.bubble.is_some(), minor >= 25);
            assert_eq!(o.pc_header.text_start.is_some(), minor <= 25);
            assert_eq!(o.func.start_line.is_some(), minor >= 20);
            assert_eq!(o.func.size, if minor >= 20 { 44 } else { 40 });
        }
    }
}

#[test]
fn spot_checks_against_dwarf_values() {
    // Offsets read by hand from the DWARF of the real toolchains (amd64).
    let o = |minor| RuntimeLayout::from_table(minor).unwrap().offsets().unwrap();
    assert_eq!(o(19).g.goid, 0x98);
    assert_eq!(o(19).g.lockedm, 0xe8);
    assert_eq!(o(19).g.labels, 0x168);
    assert_eq!(o(19).g.size, 0x188);
    assert_eq!(o(19).g.sched_lr, 0x38 + 0x28);
    assert_eq!(o(19).sched.runq_size, 0x70);
    assert_eq!(o(19).sched.gcwaiting, 0xe0);
    assert_eq!(o(21).g.parent_goid, Some(0x110));
    assert_eq!(o(22).m.libcallpc, 0x418);
    assert_eq!(o(22).p.m, 0x38);
    assert_eq!(o(23).g.syscallbp, Some(0x80));
    assert_eq!(o(23).g.atomicstatus, 0x98);
    assert_eq!(o(23).p.m, 0x30);
    assert_eq!(o(24).g.sync_group, Some(0x188));
    assert_eq!(o(25).g.syscallsp, 0x68);
    assert_eq!(o(25).g.sched_lr, 0x38 + 0x20);
    assert_eq!(o(25).g.sched_bp, 0x60);
    assert_eq!(o(25).m.procid, 0x40);
    assert_eq!(o(25).m.p, 0xc8);
    assert_eq!(o(25).sched.runq_head, 0x70);
    assert_eq!(o(25).sched.stopwait, 0xfc);
    assert_eq!(o(25).g.bubble, Some(0x180));
    assert_eq!(o(26).m.lockedg, 0x180);
    assert_eq!(o(26).sched.nmidle, 0x40);
    assert_eq!(o(27).m.procid, 0x40);
    assert_eq!(o(27).m.curg, 0xb8);
    assert_eq!(o(27).m.alllink, 0x160);
    assert_eq!(o(27).m.vdso_sp, 0x380);
    assert_eq!(o(27).g.waitreason, 0xb0);
    assert_eq!(o(27).g.labels, 0x160);
    assert_eq!(o(27).moduledata.gofunc, 0x158);
    assert_eq!(o(26).moduledata.gofunc, 0x140);
    assert_eq!(o(19).moduledata.gofunc, 0x130);
    assert_eq!(o(27).sched.runq_head, 0x80);
    assert_eq!(o(27).sched.gcwaiting, 0x108);
    assert_eq!(o(27).p.runq, 0x198);
    assert_eq!(o(27).p.runnext, 0x998);
}

#[test]
fn idle_m_list_changed_shape_in_1_26() {
    let o = |minor| RuntimeLayout::from_table(minor).unwrap().offsets().unwrap();
    // ≤1.25: sched.midle is a muintptr, linked by m.schedlink.
    assert_eq!(o(25).sched.midle, 0x28);
    assert_eq!(o(25).m.idle_next, o(25).m.schedlink);
    // 1.26+: sched.midle.obj, linked by m.idleNode.next.
    assert_eq!(o(27).sched.midle, 0x28);
    assert_eq!(o(27).m.idle_next, 0x170 + 8);
}

#[test]
fn a_missing_field_is_named() {
    let mut structs: Vec<_> = RuntimeLayout::from_table(27)
        .unwrap()
        .structs()
        .cloned()
        .collect();
    for s in &mut structs {
        if s.name == "runtime.g" {
            s.fields.retain(|(n, _)| n != "goid");
        }
    }
    let layout = RuntimeLayout::new(LayoutSource::Dwarf, structs);
    let e = RuntimeOffsets::from_layout(&layout).unwrap_err();
    assert_eq!(
        e.to_string(),
        "runtime layout (from DWARF) has no field runtime.g.goid"
    );
}
