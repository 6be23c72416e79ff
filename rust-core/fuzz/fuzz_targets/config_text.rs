//! `Config::from_json` on arbitrary text (see `check_config_text`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| topicgate_fuzz::check_config_text(data));
