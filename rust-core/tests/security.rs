//! TLS, mutual TLS and SASL/SCRAM against the project's secure test broker
//! (`make kafka-secure-up`, `.run/kafka-secure.env`); records are read back over its plaintext listener.

mod common;

use std::ffi::c_void;
use std::sync::Mutex;

use common::*;
use topicgate::ffi::{tg_set_log_callback, tg_status};
use topicgate::producer::Placement;
use topicgate::{Batch, Publisher, Record, Status};

static LINES: Mutex<Vec<(i32, String)>> = Mutex::new(Vec::new());

unsafe extern "C" fn collect(_user_data: *mut c_void, level: i32, message: *const u8, len: usize) {
    let text = String::from_utf8_lossy(std::slice::from_raw_parts(message, len)).into_owned();
    LINES.lock().unwrap().push((level, text));
}

fn cert(name: &str) -> String {
    format!("{}/{name}", env("TG_CERT_DIR"))
}

/// A publisher config for the secure broker at `bootstrap` with the given `kafka` extras.
fn config(bootstrap: &str, kafka_extra: &str, dir: &std::path::Path) -> String {
    format!(
        r#"{{"kafka":{{"bootstrap_servers":"{bootstrap}"{kafka_extra}}},"registry":{{"kind":"file","directory":"{}"}},"delivery_timeout_ms":4000}}"#,
        dir.display()
    )
}

/// Publishes one classic record to a fresh topic; on success checks it byte for byte.
fn publish(bootstrap: &str, kafka_extra: &str) -> Result<(), topicgate::Error> {
    let topic = unique("secure");
    let dir = schema_dir(&[(&topic, CLASSIC_PROTO)]);
    let p = Publisher::new(&config(bootstrap, kafka_extra, &dir))?;
    let d =
        p.publish(&Record { topic: &topic, json: r#"{"sample_message":"secure"}"#, headers: &[], key: Some(b"k") })?;
    let r = &read_back_at(&env("KAFKA_SECURE_PLAINTEXT"), &topic, d.partition, d.offset, 1)[0];
    assert_eq!(r.value, classic_bytes("secure"));
    assert_eq!(r.key.as_deref(), Some(&b"k"[..]));
    Ok(())
}

fn assert_auth_failure(result: Result<(), topicgate::Error>, what: &str) {
    let e = result.expect_err(what);
    assert_eq!(e.status, Status::Unavailable, "{what}: {e}");
    assert!(e.message.contains("authentication failed"), "{what}: {e}");
}

#[test]
fn tls_with_the_right_ca_publishes() {
    publish(&env("KAFKA_SSL"), &format!(r#","tls":{{"ca_file":"{}"}}"#, cert("ca.pem"))).unwrap();
}

#[test]
fn tls_with_a_wrong_ca_fails_clearly() {
    assert_auth_failure(
        publish(&env("KAFKA_SSL"), &format!(r#","tls":{{"ca_file":"{}"}}"#, cert("ca-wrong.pem"))),
        "wrong CA",
    );
}

#[test]
fn tls_hostname_mismatch_fails_unless_verification_is_off() {
    // The broker certificate names only `localhost`.
    let by_ip = env("KAFKA_SSL").replace("localhost", "127.0.0.1");
    let tls = |verify: bool| format!(r#","tls":{{"ca_file":"{}","verify_hostname":{verify}}}"#, cert("ca.pem"));
    assert_auth_failure(publish(&by_ip, &tls(true)), "hostname mismatch");
    publish(&by_ip, &tls(false)).unwrap();
}

#[test]
fn mutual_tls_needs_the_client_certificate() {
    let mtls = env("KAFKA_MTLS");
    let with_cert = format!(
        r#","tls":{{"ca_file":"{}","cert_file":"{}","key_file":"{}"}}"#,
        cert("ca.pem"),
        cert("client.pem"),
        cert("client.key")
    );
    publish(&mtls, &with_cert).unwrap();
    assert_auth_failure(
        publish(&mtls, &format!(r#","tls":{{"ca_file":"{}"}}"#, cert("ca.pem"))),
        "missing client cert",
    );
}

#[test]
fn mutual_tls_with_an_encrypted_key() {
    let encrypted = format!(
        r#","tls":{{"ca_file":"{}","cert_file":"{}","key_file":"{}","key_password":"{}"}}"#,
        cert("ca.pem"),
        cert("client.pem"),
        cert("client-encrypted.key"),
        env("TG_CLIENT_KEY_PASSWORD")
    );
    publish(&env("KAFKA_MTLS"), &encrypted).unwrap();
}

#[test]
fn scram_sha_512_over_tls_right_password_publishes_wrong_password_writes_nothing() {
    let bootstrap = env("KAFKA_SASL_SSL");
    let auth = |password: &str| {
        format!(
            r#","tls":{{"ca_file":"{}"}},"auth":{{"mechanism":"scram-sha-512","username":"{}","password":"{password}"}}"#,
            cert("ca.pem"),
            env("TG_SCRAM_USER")
        )
    };
    let topic = unique("scram");
    let dir = schema_dir(&[(&topic, CLASSIC_PROTO)]);
    let good = Publisher::new(&config(&bootstrap, &auth(&env("TG_SCRAM_PASSWORD")), &dir)).unwrap();
    let rec = Record { topic: &topic, json: r#"{"sample_message":"scram"}"#, headers: &[], key: None };
    let d = good.publish(&rec).unwrap();
    assert_eq!(
        read_back_at(&env("KAFKA_SECURE_PLAINTEXT"), &topic, d.partition, d.offset, 1)[0].value,
        classic_bytes("scram")
    );

    let bad = Publisher::new(&config(&bootstrap, &auth("not-the-password"), &dir)).unwrap();
    let e = bad.publish(&rec).unwrap_err();
    assert_eq!(e.status, Status::Unavailable, "{e}");
    assert!(e.message.contains("authentication failed"), "{e}");
    assert!(!e.message.contains("not-the-password") && !e.message.contains(&env("TG_SCRAM_PASSWORD")), "{e}");
    assert_eq!(records_on_topic_at(&env("KAFKA_SECURE_PLAINTEXT"), &topic), 1, "the refused record was written");
}

/// `kafka` extras for user alice over SCRAM-SHA-512 and TLS (the core expands no `${VAR}`).
fn alice() -> String {
    format!(
        r#","tls":{{"ca_file":"{}"}},"auth":{{"mechanism":"scram-sha-512","username":{},"password":{}}}"#,
        cert("ca.pem"),
        serde_json::to_string(&env("TG_SCRAM_USER")).unwrap(),
        serde_json::to_string(&env("TG_SCRAM_PASSWORD")).unwrap()
    )
}

/// The secure broker's ACLs deny alice writes to topics under TG_DENIED_PREFIX: a configuration
/// fault, answered 403 (not a 503 that invites endless retries), and logged once per producer.
#[test]
fn a_topic_the_broker_denies_is_403_and_logged_once() {
    assert_eq!(tg_set_log_callback(Some(collect), std::ptr::null_mut(), 3), tg_status::Ok);
    let topic = unique(&format!("{}-topic", env("TG_DENIED_PREFIX")));
    let dir = schema_dir(&[(&topic, CLASSIC_PROTO)]);
    let p = Publisher::new(&config(&env("KAFKA_SASL_SSL"), &alice(), &dir)).unwrap();
    let rec = Record { topic: &topic, json: r#"{"sample_message":"denied"}"#, headers: &[], key: None };
    let mut answers = vec![p.publish(&rec).unwrap_err(), p.publish(&rec).unwrap_err()];
    // Started without waiting: refused at once, or by its completion.
    if let Err(e) = p.start(&rec, Placement::default(), 7) {
        answers.push(e);
    } else {
        let mut done = Vec::new();
        while done.is_empty() {
            p.completions(&mut done, 8, std::time::Duration::from_secs(1));
        }
        answers.push(done[0].outcome.clone().unwrap_err());
    }
    for e in &answers {
        assert_eq!(e.status.code(), 403, "{e}");
        assert!(e.message.contains("not authorized") && e.message.contains("ACL"), "{e}");
    }
    // Every answer came after its refusal was logged (the log is written before the answer).
    let logged: Vec<_> = LINES.lock().unwrap().iter().filter(|(_, l)| l.contains(&topic)).cloned().collect();
    assert_eq!(logged.len(), 1, "logged once per producer: {logged:?}");
    assert_eq!(logged[0].0, 1, "as an error: {logged:?}");
}

/// The ACLs deny alice the transactional ids under TG_DENIED_PREFIX: an atomic batch is 403.
#[test]
fn a_transactional_id_the_broker_denies_is_403() {
    let topic = unique("txn-denied-id");
    let dir = schema_dir(&[(&topic, CLASSIC_PROTO)]);
    let transactions = format!(
        r#""delivery_timeout_ms":4000,"transactions":{{"id_prefix":"{}-txn","timeout_ms":5000}}}}"#,
        env("TG_DENIED_PREFIX")
    );
    let text =
        config(&env("KAFKA_SASL_SSL"), &alice(), &dir).replacen(r#""delivery_timeout_ms":4000}"#, &transactions, 1);
    let p = Publisher::new(&text).unwrap();
    let mut b = Batch::new(&topic).unwrap();
    b.add(&p, r#"{"sample_message":"txn"}"#, &[], None, Placement::default()).unwrap();
    let e = p.commit_batch(&b).unwrap_err();
    assert_eq!(e.status.code(), 403, "{e}");
    assert!(e.message.contains("not authorized") && e.message.contains("nothing written"), "{e}");
}

/// The password of the secure broker's second SCRAM user (`TG_SCRAM_DOLLAR_USER`): a fixed part
/// holding `${` and `$${` (scripts/kafka-secure.sh, `SCRAM_DOLLAR_PREFIX`) + the instance's password.
fn dollar_password() -> String {
    format!("tg${{TG_NOT_A_VARIABLE}}-$${{x}}-{}", env("TG_SCRAM_PASSWORD"))
}

#[test]
fn scram_password_with_dollar_braces_is_taken_as_written() {
    // The core expands nothing: `${` and `$${` in a secret reach the broker unchanged (the plugin
    // did its one expansion before; another host passes the value it means).
    let bootstrap = env("KAFKA_SASL_SSL");
    for mechanism in ["scram-sha-512", "scram-sha-256"] {
        let kafka = format!(
            r#","tls":{{"ca_file":"{}"}},"auth":{{"mechanism":"{mechanism}","username":"{}","password":{}}}"#,
            cert("ca.pem"),
            env("TG_SCRAM_DOLLAR_USER"),
            serde_json::to_string(&dollar_password()).unwrap()
        );
        let topic = unique("scramdollar");
        let dir = schema_dir(&[(&topic, CLASSIC_PROTO)]);
        let p = Publisher::new(&config(&bootstrap, &kafka, &dir)).unwrap_or_else(|e| panic!("{mechanism}: {e}"));
        let rec = Record { topic: &topic, json: r#"{"sample_message":"dollar"}"#, headers: &[], key: None };
        let d = p.publish(&rec).unwrap_or_else(|e| panic!("{mechanism}: {e}"));
        assert_eq!(
            read_back_at(&env("KAFKA_SECURE_PLAINTEXT"), &topic, d.partition, d.offset, 1)[0].value,
            classic_bytes("dollar")
        );
    }
}
