//! Raw and Glue wire framing of arbitrary payloads (see `check_wire`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| topicgate_fuzz::check_wire(data));
