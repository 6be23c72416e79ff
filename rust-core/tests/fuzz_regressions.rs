//! Replays the fuzz targets' committed inputs under stable `cargo test`, with the very checks the
//! fuzzers run (rust-core/fuzz/src/lib.rs, included here without libFuzzer): every seed in
//! rust-core/fuzz/seeds/<target>/ and every saved crash in rust-core/fuzz/regressions/<target>/.
//! For config_mutations a regression is the mutated config document (`*.json`).

#[allow(dead_code)]
#[path = "../fuzz/src/lib.rs"]
mod fuzz_checks;

use std::path::{Path, PathBuf};

fn inputs(kind: &str, target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz").join(kind).join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).filter(|p| p.is_file()).collect();
    files.sort();
    files.into_iter().map(|p| (p.clone(), std::fs::read(&p).unwrap())).collect()
}

/// Runs `check` on every seed and regression of `target`; there must be at least `min_seeds` seeds.
fn replay(target: &str, min_seeds: usize, check: fn(&[u8])) {
    let seeds = inputs("seeds", target);
    assert!(seeds.len() >= min_seeds, "{target}: {} seeds, expected at least {min_seeds}", seeds.len());
    for (path, data) in seeds.iter().chain(&inputs("regressions", target)) {
        if let Err(panic) = std::panic::catch_unwind(|| check(data)) {
            let why = panic.downcast_ref::<String>().cloned().or(panic.downcast_ref::<&str>().map(|s| s.to_string()));
            panic!("{}: {}", path.display(), why.unwrap_or_default());
        }
    }
}

#[test]
fn headers() {
    replay("headers", 5, fuzz_checks::check_headers);
}

#[test]
fn json_to_protobuf() {
    replay("json_to_protobuf", 9, fuzz_checks::check_json_to_protobuf);
}

#[test]
fn wire() {
    replay("wire", 3, fuzz_checks::check_wire);
}

#[test]
fn config_text() {
    replay("config_text", 3, fuzz_checks::check_config_text);
}

#[test]
fn config_mutations() {
    for (path, data) in inputs("regressions", "config_mutations") {
        let text = String::from_utf8(data).unwrap();
        if let Err(e) = std::panic::catch_unwind(|| fuzz_checks::check_config_document(&text)) {
            panic!("{}: {:?}", path.display(), e.downcast_ref::<String>());
        }
    }
}

#[test]
fn ffi_publisher_new() {
    replay("ffi_publisher_new", 3, fuzz_checks::check_ffi_publisher_new);
}

#[test]
fn ffi_publish() {
    replay("ffi_publish", 5, fuzz_checks::check_ffi_publish);
}
