//! Rough figures for one machine: first vs cached schema lookup+encode, and a publish's round trip.
//! Run with the test servers up: `make roundtrip`. Not a benchmark suite (that is `make bench`).

use std::time::{Duration, Instant};

use topicgate::{Publisher, Record};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let bootstrap = std::env::var("KAFKA_BOOTSTRAP").expect("KAFKA_BOOTSTRAP (make kafka-up)");
    let dir = std::env::temp_dir().join(format!("tg-roundtrip-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let topic = format!("roundtrip-{}", std::process::id());
    std::fs::write(
        dir.join(format!("{topic}.proto")),
        "syntax = \"proto3\";\nmessage MyTopic { string sample_message = 1; }\n",
    )
    .unwrap();
    // ROUNDTRIP_PROPERTIES: extra librdkafka properties as a JSON object, e.g. '{"linger.ms":0}'.
    let props = std::env::var("ROUNDTRIP_PROPERTIES").unwrap_or_else(|_| "{}".into());
    let config = format!(
        r#"{{"kafka":{{"bootstrap_servers":"{bootstrap}","properties":{props}}},"registry":{{"kind":"file","directory":"{}"}}}}"#,
        dir.display()
    );
    let p = Publisher::new(&config).unwrap();
    let rec = Record { topic: &topic, json: r#"{"sample_message":"hello world"}"#, headers: &[], key: Some(b"k") };

    let t = Instant::now();
    p.encode(&rec).unwrap();
    let first = t.elapsed();
    let cached = median(
        (0..1000)
            .map(|_| {
                let t = Instant::now();
                p.encode(&rec).unwrap();
                t.elapsed()
            })
            .collect(),
    );
    p.publish(&rec).unwrap(); // topic creation and metadata
    let publish = median(
        (0..200)
            .map(|_| {
                let t = Instant::now();
                p.publish(&rec).unwrap();
                t.elapsed()
            })
            .collect(),
    );
    println!("first schema lookup + compile + encode: {first:?}");
    println!("cached schema lookup + encode (median of 1000): {cached:?}");
    println!("publish round trip to local broker, acks=all (median of 200): {publish:?}");
    std::fs::remove_dir_all(&dir).ok();
}
