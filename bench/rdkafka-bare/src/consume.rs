//! `make bench` read contender rdkafka-consumer-bare: the consumer's own limit on this machine. A
//! bare rdkafka `BaseConsumer` (no group, partitions assigned from their start, read_committed as
//! topicgate's reader) reads `count` records of `topic` and touches each payload; no decoding, no
//! HTTP. bench/read.py compares the read contenders' records/s with it.
//!
//! usage: rdkafka_bare_consume <topic> <partitions> <count> <timeout_s>
//! (KAFKA_BOOTSTRAP from the environment.) Prints one JSON line:
//! {"records": N, "bytes": B, "seconds": S, "records_per_s": R}.

use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 5 {
        eprintln!("usage: rdkafka_bare_consume <topic> <partitions> <count> <timeout_s>");
        std::process::exit(2);
    }
    let (topic, partitions, count, timeout_s) = (&args[1], num(&args[2]), num(&args[3]), num(&args[4]));
    let bootstrap = std::env::var("KAFKA_BOOTSTRAP").expect("KAFKA_BOOTSTRAP");
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", "unused-no-commits")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions as i32 {
        tpl.add_partition_offset(topic, p, Offset::Beginning).expect("partition");
    }
    consumer.assign(&tpl).expect("assign");
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs(timeout_s);
    let (mut records, mut bytes) = (0u64, 0u64);
    while records < count && Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                records += 1;
                bytes += m.payload().map_or(0, |p| p.len()) as u64;
            }
            Some(Err(e)) => eprintln!("rdkafka_bare_consume: {e}"),
            None => {}
        }
    }
    let seconds = t0.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({"records": records, "bytes": bytes, "seconds": seconds, "records_per_s": records as f64 / seconds})
    );
    if records < count {
        std::process::exit(1);
    }
}

fn num(s: &str) -> u64 {
    s.parse().unwrap_or_else(|_| {
        eprintln!("rdkafka_bare_consume: not a number: {s}");
        std::process::exit(2)
    })
}
