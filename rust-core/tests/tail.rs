//! A topic's tail (rust-core/src/tail.rs) against the real broker: rounds answer the records
//! written since the last round, decoded, with the positions after them; a round waits for its
//! first record; a limit splits what is at hand between rounds; explicit offsets start there.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use topicgate::read_page::PageRequest;
use topicgate::tail::Tail;
use topicgate::{Publisher, Record};

fn publish(p: &Publisher, topic: &str, msg: &str) -> topicgate::Delivery {
    let json = format!(r#"{{"sample_message":"{msg}"}}"#);
    p.publish(&Record { topic, json: &json, headers: &[], key: Some(b"k") }).unwrap()
}

fn request(v: Value) -> PageRequest {
    serde_json::from_value(v).unwrap()
}

/// Rounds until `n` records came (at most 20 rounds of up to 5 s); their messages, in order.
fn messages(tail: &mut Tail, p: &Publisher, n: usize, limit: usize) -> Vec<(i64, String)> {
    let mut got = Vec::new();
    for _ in 0..20 {
        if got.len() >= n {
            break;
        }
        let round = tail.round(p, Duration::from_secs(5), limit).unwrap();
        let records = round["records"].as_array().unwrap();
        assert!(records.len() <= limit, "{round}");
        for r in records {
            got.push((r["offset"].as_i64().unwrap(), r["value"]["sample_message"].as_str().unwrap().to_owned()));
        }
    }
    got
}

#[test]
fn rounds_answer_what_was_written_since_the_last_one() {
    let topic = unique("tail");
    let dir = schema_dir(&[(&topic, CLASSIC_PROTO)]);
    let p = Publisher::new(&file_config(&dir, "")).unwrap();
    let first = publish(&p, &topic, "before");
    let partition = first.partition;

    // From the end: an idle round answers nothing, positioned at the end.
    let mut tail = Tail::open(&p, &request(json!({"topic": topic, "start": "latest", "limit": 1}))).unwrap();
    let idle = tail.round(&p, Duration::from_millis(300), 1000).unwrap();
    assert_eq!(idle["records"], json!([]), "{idle}");
    assert_eq!(idle["next"][partition.to_string()], json!(first.offset + 1), "{idle}");

    // Records written now come in the next rounds, in order, once each.
    let written: Vec<_> = (0..5).map(|i| publish(&p, &topic, &format!("m{i}"))).collect();
    let got = messages(&mut tail, &p, 5, 1000);
    assert_eq!(
        got,
        written.iter().enumerate().map(|(i, d)| (d.offset, format!("m{i}"))).collect::<Vec<_>>(),
        "the tail's records"
    );
    let after = tail.round(&p, Duration::from_millis(100), 1000).unwrap();
    assert_eq!(after["records"], json!([]), "a record answered twice: {after}");
    assert_eq!(after["next"][partition.to_string()], json!(written[4].offset + 1), "{after}");
    assert_eq!(after["ends"][partition.to_string()], json!(written[4].offset + 1), "{after}");

    // A limit answers what is at hand over several rounds, none lost.
    let more: Vec<_> = (0..4).map(|i| publish(&p, &topic, &format!("n{i}"))).collect();
    let got = messages(&mut tail, &p, 4, 2);
    assert_eq!(got.iter().map(|(o, _)| *o).collect::<Vec<_>>(), more.iter().map(|d| d.offset).collect::<Vec<_>>());

    // Explicit offsets start there.
    let mut from =
        Tail::open(&p, &request(json!({"topic": topic, "offsets": {partition.to_string(): first.offset}, "limit": 1})))
            .unwrap();
    let got = messages(&mut from, &p, 10, 1000);
    assert_eq!(got.first(), Some(&(first.offset, "before".to_owned())));
    assert_eq!(got.len(), 10, "{got:?}");

    // A round's bounds are checked.
    let e = tail.round(&p, Duration::from_millis(10), 0).unwrap_err();
    assert_eq!(e.status, topicgate::Status::BadRequest, "{}", e.message);
    let e = tail.round(&p, Duration::from_millis(10), 1001).unwrap_err();
    assert!(e.message.contains("limit"), "{}", e.message);
}
