//! Schema lookups under load: one registry fetch per schema however many requests wait for it,
//! and schema compilation does not hold up the core's registry runtime.
//!
//! The tests here read process-wide figures (the registry fetch counter, the time a lookup
//! takes), so they take turns (`serial`).

mod common;

use std::sync::{Barrier, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use topicgate::{Publisher, Record};

fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// The core's count of registry fetches (first fetches and refreshes) since the process started.
fn registry_fetches() -> u64 {
    let v: serde_json::Value = serde_json::from_str(&topicgate::metrics::snapshot_json()).unwrap();
    v["schema"]["fetches"].as_u64().expect("schema.fetches in the metrics snapshot")
}

#[test]
fn concurrent_first_publishes_make_one_registry_fetch() {
    let _serial = serial();
    const REQUESTS: usize = 50;
    let topic = unique("single-flight");
    glue_create_schema(TEST_REGISTRY, &topic, CLASSIC_PROTO);
    let p = Publisher::new(&glue_config(TEST_REGISTRY, "")).unwrap();
    let before = registry_fetches();
    let barrier = Barrier::new(REQUESTS);
    let deliveries: Vec<_> = thread::scope(|s| {
        let requests: Vec<_> = (0..REQUESTS)
            .map(|i| {
                let (p, topic, barrier) = (&p, &topic, &barrier);
                s.spawn(move || {
                    let json = format!(r#"{{"sample_message":"first {i}"}}"#);
                    barrier.wait();
                    p.publish(&Record { topic, json: &json, headers: &[], key: None })
                })
            })
            .collect();
        requests.into_iter().map(|r| r.join().unwrap()).collect()
    });
    for d in &deliveries {
        assert!(d.is_ok(), "{d:?}");
    }
    assert_eq!(registry_fetches() - before, 1, "registry fetches for {REQUESTS} concurrent first publishes");
    assert_eq!(records_on_topic(&topic), REQUESTS as i64);
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
