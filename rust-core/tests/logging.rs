//! The core never prints: its logs (its own and librdkafka's) go to the host's callback,
//! and no secret or payload appears in them or in error messages.

mod common;

use std::ffi::c_void;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::*;
use topicgate::ffi::{tg_set_log_callback, tg_status};
use topicgate::{Publisher, Record, Status};

static LINES: Mutex<Vec<(i32, String)>> = Mutex::new(Vec::new());

unsafe extern "C" fn collect(user_data: *mut c_void, level: i32, message: *const u8, len: usize) {
    assert_eq!(user_data as usize, 0x5eed);
    let text = String::from_utf8_lossy(std::slice::from_raw_parts(message, len)).into_owned();
    LINES.lock().unwrap().push((level, text));
}

#[test]
fn logs_reach_the_callback_without_secrets_or_payloads() {
    assert_eq!(tg_set_log_callback(Some(collect), 0x5eed as *mut c_void, 4), tg_status::Ok);
    let dir = schema_dir(&[("T", CLASSIC_PROTO)]);
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    // A broker that is not there, reached with a password: librdkafka logs connection failures.
    let config = format!(
        r#"{{"kafka":{{"bootstrap_servers":"127.0.0.1:{dead}","properties":{{"security.protocol":"sasl_plaintext","sasl.mechanism":"PLAIN","sasl.username":"user","sasl.password":"S3CRET-PASSWORD"}}}},
            "registry":{{"kind":"file","directory":"{}"}},"delivery_timeout_ms":1500}}"#,
        dir.display()
    );
    let p = Publisher::new(&config).unwrap();
    let e = p
        .publish(&Record {
            topic: "T",
            json: r#"{"sample_message":"PAYLOAD-MARKER"}"#,
            headers: &[],
            key: Some(b"KEY-MARKER"),
        })
        .unwrap_err();
    assert_eq!(e.status, Status::Unavailable);
    let e2 =
        p.publish(&Record { topic: "T", json: r#"{"sample_message":12345678}"#, headers: &[], key: None }).unwrap_err();
    assert_eq!(e2.status, Status::BadRequest);

    let deadline = Instant::now() + Duration::from_secs(10);
    while LINES.lock().unwrap().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let lines = LINES.lock().unwrap().clone();
    assert!(!lines.is_empty(), "no log line reached the callback");
    assert!(lines.iter().all(|(level, _)| (1..=4).contains(level)), "{lines:?}");
    assert!(
        lines.iter().any(|(_, l)| l.contains(&dead.to_string())),
        "expected a connection log naming the broker: {lines:?}"
    );
    for text in lines.iter().map(|(_, l)| l.as_str()).chain([e.message.as_str(), e2.message.as_str()]) {
        for secret in ["S3CRET-PASSWORD", "PAYLOAD-MARKER", "KEY-MARKER", "12345678"] {
            assert!(!text.contains(secret), "`{secret}` leaked into: {text}");
        }
    }

    // Removing the callback silences the core.
    assert_eq!(tg_set_log_callback(None, std::ptr::null_mut(), 5), tg_status::Ok);
    LINES.lock().unwrap().clear();
    let _ = p.publish(&Record { topic: "T", json: "{}", headers: &[], key: None });
    assert!(LINES.lock().unwrap().is_empty());
}
