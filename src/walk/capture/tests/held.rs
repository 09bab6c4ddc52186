//! [`Mode::Held`] (the sudo path): nothing before the hold, everything in
//! one pass while held.

use super::*;
use crate::walk::capture::{strategy, Hold, Mode};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Runs the three phases on `live`: `meanwhile` between `before_hold`
/// and `while_held`, `after` once the target runs again.
fn capture(
    live: &Live,
    meanwhile: impl FnOnce(&mut World),
    after: impl FnOnce(&mut World),
) -> Capture {
    with_cfg(|cfg| {
        let mut s = strategy::<Live>(Mode::Held);
        assert_eq!(s.before_hold(cfg, live).unwrap(), Hold::All);
        meanwhile(&mut live.world.lock().unwrap());
        let threads = live.world.lock().unwrap().threads();
        s.while_held(cfg, live, threads, &forever).unwrap();
        after(&mut live.world.lock().unwrap());
        s.after_release(cfg, live).unwrap()
    })
}

/// Fake memory that counts its reads.
fn counted(world: World) -> (Live, Arc<AtomicUsize>) {
    let reads = Arc::new(AtomicUsize::new(0));
    let n = reads.clone();
    let live = Live::new(world, move |_, _| {
        n.fetch_add(1, Ordering::Relaxed);
    });
    (live, reads)
}

#[test]
fn everything_is_read_while_held_and_nothing_before() {
    let gs = [FakeG::parked(1, &[A, B]), FakeG::running(2, &[C, A])];
    let (live, reads) = counted(World::new(&gs));
    let mut before_hold_reads = None;
    let cap = capture(
        &live,
        |w| {
            before_hold_reads = Some(reads.load(Ordering::Relaxed));
            // What the target did before the hold is what gets read.
            w.set(0, gs[0].ran_to(&[B, C]));
        },
        // After release nothing is read any more.
        |w| w.set(0, gs[0].ran_to(&[A]).ran_to(&[A])),
    );
    assert_eq!(before_hold_reads, Some(0), "before_hold must read nothing");
    assert_eq!(
        stacks(&cap),
        BTreeMap::from([(1, Ok(vec![B, C])), (2, Ok(vec![C, A]))])
    );
    assert_eq!(cap.goroutines[1].thread, Some(World::tid(1)));
    assert_eq!((cap.stats.reused, cap.stats.reread), (0, 2));
}

#[test]
fn while_held_works_without_before_hold() {
    let w = World::new(&[FakeG::parked(1, &[A, B]), FakeG::running(2, &[C])]);
    let cap = with_cfg(|cfg| {
        let mut s = strategy::<RegionMemory>(Mode::Held);
        s.while_held(cfg, &w.mem, w.threads(), &forever).unwrap();
        s.after_release(cfg, &w.mem).unwrap()
    });
    assert_eq!(
        stacks(&cap),
        BTreeMap::from([(1, Ok(vec![A, B])), (2, Ok(vec![C]))])
    );
}

#[test]
fn goroutines_that_appear_and_vanish() {
    let gs = [FakeG::parked(1, &[A]), FakeG::parked(2, &[B])];
    let (live, _) = counted(World::new(&gs));
    let cap = capture(
        &live,
        |w| {
            w.exit(0);
            w.spawn(FakeG::running(3, &[C, B]));
            w.set(1, FakeG::parked(4, &[A, C]));
        },
        |_| {},
    );
    assert_eq!(
        stacks(&cap),
        BTreeMap::from([(3, Ok(vec![C, B])), (4, Ok(vec![A, C]))])
    );
    assert_eq!(cap.stats.reread, 2);
}

#[test]
fn a_run_of_gs_crossing_unmapped_memory_is_read_g_by_g() {
    let mut w = World::new(&[FakeG::parked(1, &[A, B]), FakeG::running(2, &[B])]);
    w.list_unmapped();
    w.spawn(FakeG::parked(3, &[C, A]));
    let (live, _) = counted(w);
    let cap = capture(&live, |_| {}, |_| {});
    assert_eq!(
        stacks(&cap),
        BTreeMap::from([(1, Ok(vec![A, B])), (2, Ok(vec![B])), (3, Ok(vec![C, A]))])
    );
    assert_eq!(cap.warnings, vec!["1 of 4 g structs could not be read"]);
}

#[test]
fn the_pause_budget_is_left_to_the_caller() {
    // As the sudo path always did: the copy is finished, and the caller
    // then finds the budget exceeded and discards it.
    let w = World::new(&[FakeG::parked(1, &[A])]);
    let cap = with_cfg(|cfg| {
        let mut s = strategy::<RegionMemory>(Mode::Held);
        s.while_held(cfg, &w.mem, Vec::new(), &|| false).unwrap();
        s.after_release(cfg, &w.mem).unwrap()
    });
    assert_eq!(stacks(&cap), BTreeMap::from([(1, Ok(vec![A]))]));
}
