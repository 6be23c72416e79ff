//! The negative twin of msk_iam.rs: a token signed with a wrong secret is refused by the broker,
//! the publish fails as an authentication failure, and nothing is written.

mod common;

use common::*;
use topicgate::{Publisher, Record, Status};

#[test]
fn token_signed_with_a_wrong_secret_is_refused() {
    std::env::set_var("AWS_ACCESS_KEY_ID", env("TG_MSK_ACCESS_KEY_ID"));
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "not-the-test-secret");
    std::env::remove_var("AWS_SESSION_TOKEN");
    let topic = unique("msk-wrong");
    let dir = schema_dir(&[(&topic, CLASSIC_PROTO)]);
    let config = format!(
        r#"{{"kafka":{{"bootstrap_servers":"{}","auth":{{"mechanism":"aws-msk-iam","region":"{}"}}}},
            "registry":{{"kind":"file","directory":"{}"}},"delivery_timeout_ms":4000}}"#,
        env("KAFKA_OAUTH"),
        env("TG_MSK_REGION"),
        dir.display()
    );
    let p = Publisher::new(&config).unwrap();
    let e =
        p.publish(&Record { topic: &topic, json: r#"{"sample_message":"x"}"#, headers: &[], key: None }).unwrap_err();
    assert_eq!(e.status, Status::Unavailable, "{e}");
    assert!(e.message.contains("authentication failed"), "{e}");
    assert!(!e.message.contains("not-the-test-secret"), "{e}");
}
