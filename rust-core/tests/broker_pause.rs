//! 504 by a real cause: the broker process is frozen (SIGSTOP) after it received the record,
//! so no acknowledgement comes back within the delivery timeout. This binary has one test, so
//! no other test runs while the broker is frozen.

mod common;

use std::process::Command;

use common::*;
use topicgate::{Publisher, Record, Status};

/// Thaws the broker even if the test fails.
struct Frozen(String);

impl Frozen {
    fn freeze(pid: &str) -> Frozen {
        assert!(Command::new("kill").args(["-STOP", pid]).status().unwrap().success());
        Frozen(pid.to_owned())
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-CONT", &self.0]).status();
    }
}

#[test]
fn unacknowledged_record_is_504_and_the_broker_serves_again_after() {
    let pid =
        std::fs::read_to_string(repo().join(".run/kafka.pid")).expect(".run/kafka.pid: start Kafka with make kafka-up");
    let topic = unique("frozen");
    let dir = schema_dir(&[(&topic, CLASSIC_PROTO)]);
    let p = Publisher::new(&file_config(&dir, r#","delivery_timeout_ms":2000"#)).unwrap();
    let rec = |json| Record { topic: &topic, json, headers: &[], key: None };
    // Warm up: metadata known, connection open, so the next record is really sent.
    p.publish(&rec(r#"{"sample_message":"before"}"#)).unwrap();
    {
        let _frozen = Frozen::freeze(pid.trim());
        let e = p.publish(&rec(r#"{"sample_message":"during"}"#)).unwrap_err();
        assert_eq!(e.status, Status::Timeout, "{e}");
        assert!(e.message.contains("did not acknowledge"), "{e}");
    }
    // Thawed: publishing works again within a bounded number of tries.
    let mut last = None;
    for _ in 0..20 {
        match p.publish(&rec(r#"{"sample_message":"after"}"#)) {
            Ok(_) => return,
            Err(e) => last = Some(e),
        }
    }
    panic!("broker did not serve again after thawing: {last:?}");
}
