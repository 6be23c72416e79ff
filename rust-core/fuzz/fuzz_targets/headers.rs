//! Record headers: `headers::header` and `headers::check` (see `check_headers`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| topicgate_fuzz::check_headers(data));
