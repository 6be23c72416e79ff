//! C ABI: `tg_publish` on a dry-run publisher with arbitrary inputs (see `check_ffi_publish`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| topicgate_fuzz::check_ffi_publish(data));
