//! JSON → Protobuf against the messages of `schemas/fuzz.proto` (see `check_json_to_protobuf`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| topicgate_fuzz::check_json_to_protobuf(data));
