//! [`Mode::Nonblocking`]: only the running goroutines' threads are
//! stopped; every other goroutine is confirmed after release, its stack
//! read between two reads of its g, and never shown torn.

use super::*;
use crate::walk::capture::nonblocking::MAX_RETRIES;
use crate::walk::capture::{strategy, Hold, Mode};
use crate::walk::WalkError;

/// Runs the three phases on `live`: `meanwhile` between `before_hold`
/// and `while_held`, `after` once the threads run again. Only the threads
/// `before_hold` asked for are stopped.
fn capture(
    live: &Live,
    meanwhile: impl FnOnce(&mut World),
    after: impl FnOnce(&mut World),
) -> (Hold, Capture) {
    with_cfg(|cfg| {
        let mut s = strategy::<Live>(Mode::Nonblocking);
        let hold = s.before_hold(cfg, live).unwrap();
        let Hold::Threads(tids) = &hold else {
            panic!("--nonblocking must not hold the whole process")
        };
        meanwhile(&mut live.world.lock().unwrap());
        let mut threads = live.world.lock().unwrap().threads();
        threads.retain(|t| tids.contains(&t.tid));
        s.while_held(cfg, live, threads, &forever).unwrap();
        after(&mut live.world.lock().unwrap());
        (hold, s.after_release(cfg, live).unwrap())
    })
}

/// Fake memory that does not change by itself.
fn still(world: World) -> Live {
    Live::new(world, |_, _| {})
}

#[test]
fn running_goroutines_are_read_while_stopped_and_parked_ones_confirmed_after() {
    let gs = [
        FakeG::parked(1, &[A, B]),
        FakeG::running(2, &[B, C]),
        FakeG::parked(3, &[C]),
    ];
    let live = still(World::new(&gs));
    let (hold, cap) = capture(
        &live,
        |_| {},
        |w| {
            // Once released, goroutine 2 runs on (its held copy stays)
            // and goroutine 3 wakes and parks elsewhere (it is confirmed
            // as it is now).
            w.set(1, FakeG::running(2, &[A]));
            w.set(2, gs[2].ran_to(&[B, A]));
        },
    );
    assert_eq!(hold, Hold::Threads(vec![World::tid(1)]));
    assert_eq!(
        stacks(&cap),
        BTreeMap::from([
            (1, Ok(vec![A, B])),
            (2, Ok(vec![B, C])),
            (3, Ok(vec![B, A])),
        ])
    );
    assert_eq!(cap.goroutines[1].thread, Some(World::tid(1)));
    let st = &cap.stats;
    // Goroutine 3 is checked against its first read (before the hold):
    // its wake-up shows as one change, and the next round confirms it.
    assert_eq!((st.reused, st.reread, st.retry_rounds), (0, 2, 2));
    assert_eq!((st.changed, st.changing, st.held_ranges), (1, 0, 1));
}

#[test]
fn a_goroutine_that_changed_before_the_hold_is_read_as_it_was_when_stopped() {
    let gs = [FakeG::running(1, &[A, B]), FakeG::running(2, &[B])];
    let live = still(World::new(&gs));
    let (hold, cap) = capture(
        &live,
        |w| {
            // Goroutine 1 moved on; goroutine 2 parked before its thread
            // was stopped, so it is confirmed after release instead.
            w.set(0, FakeG::running(1, &[C, A]));
            w.set(1, gs[1].ran_to(&[C, C]));
        },
        |_| {},
    );
    assert_eq!(hold, Hold::Threads(vec![World::tid(0), World::tid(1)]));
    assert_eq!(
        stacks(&cap),
        BTreeMap::from([(1, Ok(vec![C, A])), (2, Ok(vec![C, C]))])
    );
    assert_eq!(cap.goroutines[0].thread, Some(World::tid(0)));
    assert_eq!(cap.goroutines[1].thread, None);
    // Both were read while held (they were running when picked), but
    // only the one still running keeps that copy.
    assert_eq!((cap.stats.reread, cap.stats.held_ranges), (1, 2));
}

#[test]
fn goroutines_that_appear_and_vanish() {
    let gs = [
        FakeG::parked(1, &[A]),
        FakeG::parked(2, &[B]),
        FakeG::running(3, &[C]),
    ];
    let live = still(World::new(&gs));
    let (_, cap) = capture(
        &live,
        |w| {
            w.spawn(FakeG::parked(4, &[A, B]));
        },
        |w| {
            w.exit(0);
            w.exit(2);
            w.spawn(FakeG::parked(5, &[B, C]));
        },
    );
    assert_eq!(
        stacks(&cap),
        BTreeMap::from([
            (2, Ok(vec![B])),
            // Exited after its thread was stopped: shown as it was then.
            (3, Ok(vec![C])),
            (4, Ok(vec![A, B])),
            (5, Ok(vec![B, C])),
        ])
    );
}

#[test]
fn a_run_of_gs_crossing_unmapped_memory_is_read_g_by_g() {
    let mut w = World::new(&[FakeG::parked(1, &[A, B]), FakeG::running(2, &[B])]);
    w.list_unmapped();
    w.spawn(FakeG::parked(3, &[C, A]));
    let live = still(w);
    let (_, cap) = capture(&live, |_| {}, |_| {});
    assert_eq!(
        stacks(&cap),
        BTreeMap::from([(1, Ok(vec![A, B])), (2, Ok(vec![B])), (3, Ok(vec![C, A]))])
    );
    assert_eq!(cap.warnings, vec!["1 of 4 g structs could not be read"]);
}

#[test]
fn a_torn_read_is_retried_and_never_shown() {
    // Goroutine 1 wakes and re-parks elsewhere right after its stack is
    // read, once: the stack read belongs to the old g, the g read after it
    // to the new one. That pair must be thrown away, not unwound.
    let gs = [FakeG::parked(1, &[A, B]), FakeG::parked(2, &[C])];
    let mut woke = false;
    let live = Live::new(World::new(&gs), move |addr, w| {
        if addr == Live::stack_read_at(0) && !woke {
            woke = true;
            w.set(0, gs[0].ran_to(&[C, A, A]));
        }
    });
    let (_, cap) = capture(&live, |_| {}, |_| {});
    assert_eq!(
        stacks(&cap),
        BTreeMap::from([(1, Ok(vec![C, A, A])), (2, Ok(vec![C]))])
    );
    assert_eq!(cap.goroutines[0].rec.tracking_seq, 1);
    let st = &cap.stats;
    assert_eq!(
        (st.changed, st.retry_rounds, st.changing, st.reread),
        (1, 2, 0, 2)
    );
}

#[test]
fn a_goroutine_that_keeps_changing_is_reported_as_changing() {
    let gs = [FakeG::parked(1, &[A, B]), FakeG::parked(2, &[C])];
    let mut g = gs[0].clone();
    let live = Live::new(World::new(&gs), move |addr, w| {
        if addr == Live::stack_read_at(0) {
            g = g.ran_to(&[B, A]);
            w.set(0, g.clone());
        }
    });
    let (_, cap) = capture(&live, |_| {}, |_| {});
    let want = format!(
        "changing while read with --nonblocking ({MAX_RETRIES} attempts); \
         run again, or without --nonblocking for a consistent snapshot"
    );
    assert_eq!(
        stacks(&cap),
        BTreeMap::from([(1, Err(want)), (2, Ok(vec![C]))])
    );
    let st = &cap.stats;
    assert_eq!(
        (st.changed, st.retry_rounds, st.changing),
        (MAX_RETRIES, MAX_RETRIES, 1)
    );
}

#[test]
fn a_goroutine_running_on_a_thread_that_was_not_stopped_is_reported() {
    let gs = [FakeG::parked(1, &[A]), FakeG::parked(2, &[B])];
    let live = still(World::new(&gs));
    let (hold, cap) = capture(&live, |_| {}, |w| w.set(1, FakeG::running(2, &[C])));
    assert_eq!(hold, Hold::Threads(Vec::new()));
    let got = stacks(&cap);
    assert_eq!(got[&1], Ok(vec![A]));
    assert!(
        got[&2]
            .as_ref()
            .is_err_and(|e| e.starts_with("running on a thread that was not stopped while")),
        "{got:?}"
    );
    // Seen changed against its first read, then running in every round.
    assert_eq!((cap.stats.changing, cap.stats.changed), (1, 1));
}

#[test]
fn the_copy_is_abandoned_when_the_pause_budget_runs_out() {
    let live = still(World::new(&[FakeG::running(1, &[A])]));
    let threads = live.world.lock().unwrap().threads();
    with_cfg(|cfg| {
        let mut s = strategy::<Live>(Mode::Nonblocking);
        s.before_hold(cfg, &live).unwrap();
        let r = s.while_held(cfg, &live, threads, &|| false);
        assert!(matches!(r, Err(WalkError::Abandoned)), "{r:?}");
    });
}
