//! `GOPEEK_DEBUG_TIMING=1`: where a snapshot's time went, on stderr, in
//! the lines `scripts/bench` reads (`pause N us, of which held reads N
//! us, ... stop latency N us`).

use gopeek::snapshot::Timing;
use gopeek::walk::capture::{Mode, Phase};
use std::time::Duration;

/// Whether the timing lines were asked for.
pub(crate) fn wanted() -> bool {
    std::env::var_os("GOPEEK_DEBUG_TIMING").is_some()
}

/// Prints one snapshot's timing lines: the read phases in the order they
/// ran, then the pause and the totals.
pub(crate) fn print(t: &Timing) {
    let us = |d: Duration| d.as_micros();
    for p in &t.capture.phases {
        match p {
            Phase::StackReads(d) => eprintln!("gopeek: timing: stack reads {} us", us(*d)),
            Phase::Running {
                plan,
                g_table,
                jobs,
                stacks_unwind,
                stacks,
                shapes,
            } => eprintln!(
                "gopeek: timing: running: plan {} us, g table {} us, jobs {} us, \
                 stacks+unwind {} us ({stacks} stacks, {shapes} shapes)",
                us(*plan),
                us(*g_table),
                us(*jobs),
                us(*stacks_unwind)
            ),
            Phase::Held {
                allgs,
                g_table,
                ranges,
                bytes,
                compare,
            } => eprintln!(
                "gopeek: timing: held: allgs {} us, g table {} us ({ranges} ranges, {bytes} bytes), \
                 compare {} us",
                us(*allgs),
                us(*g_table),
                us(*compare)
            ),
        }
    }
    if t.mode == Mode::Held {
        eprintln!(
            "gopeek: timing: pause {} us, of which held reads {} us (parse and read, a core), stop latency {} us",
            t.pause.pause_us(),
            us(t.held),
            us(t.pause.stop_latency)
        );
        eprintln!("gopeek: timing: total {} us", us(t.total));
        return;
    }
    let c = &t.capture;
    eprintln!(
        "gopeek: timing: pause {} us, of which held reads {} us, stop latency {} us; \
         read while running {} us; reused {} stacks, re-read {} ({} bytes, {} ranges held), \
         retry rounds {}, changed {}, changing {}",
        t.pause.pause_us(),
        us(t.held),
        us(t.pause.stop_latency),
        us(t.read_running),
        c.reused,
        c.reread,
        c.held_bytes,
        c.held_ranges,
        c.retry_rounds,
        c.changed,
        c.changing
    );
    eprintln!(
        "gopeek: timing: load {} us, symbolize {} us, total {} us",
        us(t.load),
        us(t.symbolize),
        us(t.total)
    );
}
