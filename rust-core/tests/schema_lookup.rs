//! Schema lookups under load: schema compilation does not hold up the core's registry runtime.
//!
//! The tests here read process-wide figures (the time a lookup takes), so they take turns (`serial`).

mod common;

use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use topicgate::{Publisher, Record};

fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// A `.proto` whose first message reaches `n` messages: slow to compile (about 2 s for 4,000 in a
/// debug build). `tag` goes into a comment, so that two tags are two different texts.
fn big_proto(n: usize, tag: &str) -> String {
    let mut src = format!("// {tag}\nsyntax = \"proto3\";\npackage big;\n");
    for i in 0..n {
        let next = (i + 1) % n;
        src.push_str(&format!(
            "message M{i} {{ string a = 1; int64 b = 2; M{next} next = 3; repeated string c = 4; map<string, int32> d = 5; }}\n"
        ));
    }
    src
}

#[test]
fn a_schema_compiling_in_the_background_does_not_hold_up_other_lookups() {
    let _serial = serial();
    let dir = schema_dir(&[("Big", &big_proto(4000, "v1")), ("Small", CLASSIC_PROTO)]);
    let config = file_config(&dir, r#","schema":{"refresh_interval_ms":100},"dry_run":true"#);
    let p = Publisher::new(&config).unwrap();
    let publish = |topic: &str| p.publish(&Record { topic, json: "{}", headers: &[], key: None });
    let t = Instant::now();
    publish("Big").unwrap();
    let compile = t.elapsed();
    // A new text: the next refresh compiles it again, in the background.
    std::fs::write(dir.join("Big.proto"), big_proto(4000, "v2")).unwrap();
    thread::sleep(Duration::from_millis(150));
    publish("Big").unwrap(); // stale: served, and the refresh starts
    thread::sleep(Duration::from_millis(200)); // the refresh has read the file and compiles it
    let t = Instant::now();
    publish("Small").unwrap();
    let small = t.elapsed();
    eprintln!("Big compiled in {compile:?}; Small looked up during its refresh in {small:?}");
    assert!(small < compile / 3, "Small took {small:?} while Big's refresh compiled (Big compiles in {compile:?})");
}
