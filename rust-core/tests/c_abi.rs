//! Proves the C ABI from C: tests/c/publish.c is compiled with `cc` against include/topicgate.h and
//! the static library, publishes to the real broker from several threads and asynchronously through the
//! completion queue, and every record is read back.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;

use common::*;

/// The staticlib cargo built beside this test binary (target/<profile>/libtopicgate.a).
fn static_lib() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    let lib = profile_dir.join("libtopicgate.a");
    assert!(
        lib.exists(),
        "{} missing: `cargo build -p topicgate` builds it (make test does; cargo test builds only the rlib)",
        lib.display()
    );
    lib
}

#[test]
fn c_program_publishes_through_the_header_and_library() {
    let out_dir = std::env::temp_dir().join(unique("tg-c"));
    std::fs::create_dir_all(&out_dir).unwrap();
    let exe = out_dir.join("publish");
    let cc = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-O1", "-D_POSIX_C_SOURCE=200809L"])
        .arg("-I")
        .arg(repo().join("include"))
        .arg(repo().join("tests/c/publish.c"))
        .arg(static_lib())
        .args(["-lssl", "-lcrypto", "-lz", "-lm", "-ldl", "-lpthread", "-o"])
        .arg(&exe)
        .output()
        .expect("cc runs");
    assert!(cc.status.success(), "cc failed:\n{}", String::from_utf8_lossy(&cc.stderr));

    let topic = unique("cabi");
    let dir = schema_dir(&[(&topic, CLASSIC_PROTO)]);
    let config = out_dir.join("config.json");
    std::fs::write(&config, file_config(&dir, "")).unwrap();
    let run = Command::new(&exe).arg(&config).arg(&topic).args(["4", "10"]).output().expect("program runs");
    let stdout = String::from_utf8_lossy(&run.stdout).to_string();
    assert!(run.status.success(), "C program failed:\n{stdout}\n{}", String::from_utf8_lossy(&run.stderr));
    assert!(stdout.starts_with(&format!("version {}", env!("CARGO_PKG_VERSION"))), "{stdout}");

    let mut expected: HashMap<(i32, i64), (Vec<u8>, Vec<u8>)> = HashMap::new();
    for line in stdout.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        match f[0] {
            "classic" => {
                expected.insert(
                    (f[1].parse().unwrap(), f[2].parse().unwrap()),
                    (b"messageKey".to_vec(), classic_bytes("hello world")),
                );
            }
            "record" => {
                expected.insert(
                    (f[2].parse().unwrap(), f[3].parse().unwrap()),
                    (f[1].as_bytes().to_vec(), classic_bytes(f[1])),
                );
            }
            _ => {}
        }
    }
    // The classic record, 4 threads × 10 with tg_publish, and 40 more with tg_publish_start.
    assert_eq!(expected.len(), 1 + 2 * 4 * 10, "{stdout}");
    assert_eq!(records_on_topic(&topic), expected.len() as i64);
    let mut per_partition: HashMap<i32, usize> = HashMap::new();
    for (p, _) in expected.keys() {
        *per_partition.entry(*p).or_default() += 1;
    }
    for (partition, count) in per_partition {
        for r in read_back(&topic, partition, 0, count) {
            let (key, value) = &expected[&(r.partition, r.offset)];
            assert_eq!(r.key.as_ref(), Some(key));
            assert_eq!(&r.value, value);
            if key == b"messageKey" {
                assert_eq!(
                    r.headers,
                    vec![
                        ("my_key".to_owned(), b"myvalue".to_vec()),
                        ("bin".to_owned(), vec![0x00, 0xff, 0x80]),
                        ("my_key".to_owned(), b"42".to_vec()),
                        ("empty".to_owned(), vec![]),
                    ]
                );
            }
        }
    }
}
