//! [`Mode::Consistent`]: stacks read before the hold are kept only for
//! g's that did not change; everything else is read while held.

use super::*;
use crate::walk::capture::{strategy, Hold, Mode};
use crate::walk::WalkError;

/// Runs the three phases on `w`, calling `meanwhile` between
/// `before_hold` and `while_held` (what the target does before it is
/// stopped) and `after` once it runs again.
fn capture(
    w: &mut World,
    meanwhile: impl FnOnce(&mut World),
    after: impl FnOnce(&mut World),
) -> Capture {
    with_cfg(|cfg| {
        let mut s = strategy::<RegionMemory>(Mode::Consistent);
        assert_eq!(s.before_hold(cfg, &w.mem).unwrap(), Hold::All);
        meanwhile(w);
        s.while_held(cfg, &w.mem, w.threads(), &forever).unwrap();
        after(w);
        s.after_release(cfg, &w.mem).unwrap()
    })
}

#[test]
fn unchanged_parked_goroutines_keep_the_stack_read_before_the_hold() {
    let gs = [
        FakeG::parked(1, &[A, B, C]),
        FakeG::parked(2, &[A, C]),
        FakeG::parked(3, &[B]),
    ];
    let mut w = World::new(&gs);
    // Their stack memory changes but their g's do not: only a stack read
    // before the hold can show the old frames.
    let cap = capture(
        &mut w,
        |w| {
            for (slot, g) in gs.iter().enumerate() {
                let mut g = g.clone();
                g.pcs.truncate(1);
                w.set(slot, g);
            }
        },
        |_| {},
    );
    assert_eq!(
        stacks(&cap),
        BTreeMap::from([
            (1, Ok(vec![A, B, C])),
            (2, Ok(vec![A, C])),
            (3, Ok(vec![B])),
        ])
    );
    assert_eq!((cap.stats.reused, cap.stats.reread), (3, 0));
    assert_eq!((cap.stats.held_ranges, cap.stats.held_bytes), (0, 0));
}

#[test]
fn a_goroutine_that_changed_is_reread_while_held() {
    let gs = [FakeG::parked(1, &[A, B, C]), FakeG::parked(2, &[A, C])];
    let mut w = World::new(&gs);
    let cap = capture(
        &mut w,
        |w| w.set(1, gs[1].ran_to(&[C, B])),
        // Changes after release are not seen.
        |w| w.set(1, gs[1].ran_to(&[A]).ran_to(&[A])),
    );
    assert_eq!(
        stacks(&cap),
        BTreeMap::from([(1, Ok(vec![A, B, C])), (2, Ok(vec![C, B]))])
    );
    assert_eq!(cap.goroutines[1].rec.tracking_seq, 1);
    assert_eq!((cap.stats.reused, cap.stats.reread), (1, 1));
    assert_eq!(cap.stats.held_ranges, 1);
    assert!(cap.stats.held_bytes > 0);
}

#[test]
fn goroutines_that_appear_and_vanish() {
    let gs = [
        FakeG::parked(1, &[A, B]),
        FakeG::parked(2, &[B, C]),
        FakeG::parked(3, &[C]),
    ];
    let mut w = World::new(&gs);
    let cap = capture(
        &mut w,
        |w| {
            w.exit(0);
            // A new goroutine in a fresh g, and one reusing the dead g of
            // goroutine 3 (same address, new goid).
            w.spawn(FakeG::parked(4, &[B, A]));
            w.set(2, FakeG::parked(5, &[A, A]));
        },
        |_| {},
    );
    assert_eq!(
        stacks(&cap),
        BTreeMap::from([
            (2, Ok(vec![B, C])),
            (4, Ok(vec![B, A])),
            (5, Ok(vec![A, A])),
        ])
    );
    assert_eq!((cap.stats.reused, cap.stats.reread), (1, 2));
}

#[test]
fn a_run_of_gs_crossing_unmapped_memory_is_read_g_by_g() {
    // Slot 2 is listed in allgs but unmapped: the run of g's around it
    // cannot be read whole, and every mapped g must still be read.
    let mut w = World::new(&[FakeG::parked(1, &[A, B]), FakeG::parked(2, &[B])]);
    w.list_unmapped();
    w.spawn(FakeG::parked(3, &[C, A]));
    let cap = capture(
        &mut w,
        |w| w.set(3, FakeG::parked(3, &[C, A]).ran_to(&[C])),
        |_| {},
    );
    assert_eq!(
        stacks(&cap),
        BTreeMap::from([(1, Ok(vec![A, B])), (2, Ok(vec![B])), (3, Ok(vec![C]))])
    );
    assert_eq!(cap.warnings, vec!["1 of 4 g structs could not be read"]);
    assert_eq!((cap.stats.reused, cap.stats.reread), (2, 1));
}

#[test]
fn a_running_goroutine_is_read_while_held_from_its_thread() {
    let gs = [FakeG::parked(1, &[A]), FakeG::running(2, &[A, B])];
    let mut w = World::new(&gs);
    // It runs on between the two phases: the held copy is the one shown.
    let cap = capture(&mut w, |w| w.set(1, FakeG::running(2, &[C, A, B])), |_| {});
    assert_eq!(
        stacks(&cap),
        BTreeMap::from([(1, Ok(vec![A])), (2, Ok(vec![C, A, B]))])
    );
    assert_eq!(cap.goroutines[1].thread, Some(World::tid(1)));
    assert!(cap.goroutines[1]
        .m
        .is_some_and(|(id, addr)| id == 1 && addr != 0));
    assert_eq!((cap.stats.reused, cap.stats.reread), (1, 1));
}

#[test]
fn skipping_before_hold_reads_everything_while_held() {
    let mut w = World::new(&[FakeG::parked(1, &[A, B]), FakeG::running(2, &[C])]);
    w.exit(0);
    w.spawn(FakeG::parked(3, &[B, C]));
    let cap = with_cfg(|cfg| {
        let mut s = strategy::<RegionMemory>(Mode::Consistent);
        s.while_held(cfg, &w.mem, w.threads(), &forever).unwrap();
        s.after_release(cfg, &w.mem).unwrap()
    });
    assert_eq!(
        stacks(&cap),
        BTreeMap::from([(2, Ok(vec![C])), (3, Ok(vec![B, C]))])
    );
    assert_eq!((cap.stats.reused, cap.stats.reread), (0, 2));
}

#[test]
fn the_copy_is_abandoned_when_the_pause_budget_runs_out() {
    let w = World::new(&[FakeG::parked(1, &[A]), FakeG::running(2, &[B])]);
    with_cfg(|cfg| {
        let mut s = strategy::<RegionMemory>(Mode::Consistent);
        s.before_hold(cfg, &w.mem).unwrap();
        let r = s.while_held(cfg, &w.mem, w.threads(), &|| false);
        assert!(matches!(r, Err(WalkError::Abandoned)), "{r:?}");
        let r = s.after_release(cfg, &w.mem);
        assert!(matches!(r, Err(WalkError::Abandoned)), "{r:?}");
    });
}
