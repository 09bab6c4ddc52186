//! Fuzzes the perf ring-buffer decoder: the record splitter and every
//! record type gopeek reads (samples with their registers and copied user
//! stack, LOST, THROTTLE). The stack bytes are the target's memory and
//! the sizes come from the ring, so any panic or huge allocation is a bug.
#![no_main]

use gopeek::process::perf::ring::{decode_record, split_records, Record};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for rec in split_records(data) {
        if let Some(Record::Sample(s)) = decode_record(rec) {
            assert!(s.stack.len() <= rec.len());
        }
    }
});
