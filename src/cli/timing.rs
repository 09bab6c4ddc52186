//! `GOPEEK_DEBUG_TIMING=1`: where a snapshot's time went, on stderr, in
//! the lines `scripts/bench` reads (`pause N us, of which held reads N
//! us, ... stop latency N us`).

use gopeek::snapshot::Timing;
use gopeek::walk::capture::Mode;
use std::time::Duration;

/// Whether the timing lines were asked for.
pub(crate) fn wanted() -> bool {
    std::env::var_os("GOPEEK_DEBUG_TIMING").is_some()
}

/// Prints one snapshot's timing lines.
pub(crate) fn print(t: &Timing) {
    let us = |d: Duration| d.as_micros();
    if t.mode == Mode::Held {
        eprintln!(
            "gopeek: timing: pause {} us, of which held reads {} us (parse and read, under sudo), stop latency {} us",
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
