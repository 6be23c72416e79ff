//! AWS MSK IAM against a real broker: the secure test broker's OAUTHBEARER listener accepts a
//! token only if its SigV4 signature verifies with the test credentials (tests/kafka/MskIamValidator.java).
//! Credentials come from the standard AWS chain (here: environment variables set below), so this
//! binary runs alone in its process; msk_iam_wrong_secret.rs is its negative twin.

mod common;

use std::ffi::c_void;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use common::*;
use topicgate::ffi::{tg_set_log_callback, tg_status};
use topicgate::{Publisher, Record};

/// Tokens signed so far, and a signal for each.
static SIGNED: Mutex<usize> = Mutex::new(0);
static NEW_TOKEN: Condvar = Condvar::new();

unsafe extern "C" fn count_tokens(_: *mut c_void, _level: i32, message: *const u8, len: usize) {
    if std::slice::from_raw_parts(message, len).starts_with(b"MSK IAM token signed") {
        *SIGNED.lock().unwrap() += 1;
        NEW_TOKEN.notify_all();
    }
}

#[test]
fn broker_accepts_signed_tokens_and_they_are_refreshed_before_expiry() {
    std::env::set_var("AWS_ACCESS_KEY_ID", env("TG_MSK_ACCESS_KEY_ID"));
    std::env::set_var("AWS_SECRET_ACCESS_KEY", env("TG_MSK_SECRET_ACCESS_KEY"));
    std::env::remove_var("AWS_SESSION_TOKEN");
    assert_eq!(tg_set_log_callback(Some(count_tokens), std::ptr::null_mut(), 4), tg_status::Ok);

    let topic = unique("msk");
    let dir = schema_dir(&[(&topic, CLASSIC_PROTO)]);
    // A 3 s lifetime makes librdkafka refresh about every 2.4 s.
    let config = format!(
        r#"{{"kafka":{{"bootstrap_servers":"{}","auth":{{"mechanism":"aws-msk-iam","region":"{}","token_lifetime_ms":3000}}}},
            "registry":{{"kind":"file","directory":"{}"}}}}"#,
        env("KAFKA_OAUTH"),
        env("TG_MSK_REGION"),
        dir.display()
    );
    let p = Publisher::new(&config).unwrap();
    let mut deliveries = Vec::new();
    // Publish until the token has been refreshed twice (signed three times) and a record has been
    // acknowledged after that, i.e. with a refreshed token; between records, wait for the next
    // signing (at most 200 ms, so that records keep flowing over the re-authenticated connection).
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut signed_before = 0;
    while signed_before < 3 {
        assert!(Instant::now() < deadline, "the token was not refreshed twice within 60 s");
        signed_before = *SIGNED.lock().unwrap();
        let json = format!(r#"{{"sample_message":"m{}"}}"#, deliveries.len());
        deliveries
            .push((json.clone(), p.publish(&Record { topic: &topic, json: &json, headers: &[], key: None }).unwrap()));
        let signed = SIGNED.lock().unwrap();
        drop(NEW_TOKEN.wait_timeout_while(signed, Duration::from_millis(200), |n| *n == signed_before).unwrap());
    }
    let got = read_back_at(&env("KAFKA_SECURE_PLAINTEXT"), &topic, 0, 0, deliveries.len());
    for (r, (json, d)) in got.iter().zip(&deliveries) {
        assert_eq!((r.partition, r.offset), (d.partition, d.offset));
        let text = json.trim_start_matches(r#"{"sample_message":""#).trim_end_matches(r#""}"#);
        assert_eq!(r.value, classic_bytes(text));
    }
}
