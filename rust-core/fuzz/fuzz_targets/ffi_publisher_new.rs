//! C ABI: `tg_publisher_new` on arbitrary bytes (see `check_ffi_publisher_new`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| topicgate_fuzz::check_ffi_publisher_new(data));
