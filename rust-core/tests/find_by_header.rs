//! `tg_find_by_header` (rust-core/src/idempotency.rs behind the C ABI) against the real broker: a
//! record published with an `Idempotency-Key` header is found where the broker acknowledged it;
//! another value, or a search from after the record, finds nothing; bad arguments are 400s naming
//! the argument.

mod common;

use std::ffi::{c_char, CStr};
use std::time::{SystemTime, UNIX_EPOCH};

use common::*;
use topicgate::ffi::*;

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

struct Found {
    status: tg_status,
    found: i32,
    delivery: tg_delivery,
    message: String,
}

fn find(p: *const tg_publisher, topic: &str, since_ms: i64, name: &str, value: &str) -> Found {
    let mut found = -1;
    let mut delivery = tg_delivery::default();
    let mut errbuf = [0 as c_char; 512];
    // SAFETY: every pointer is to a live local of the given length.
    let status = unsafe {
        tg_find_by_header(
            p,
            topic.as_ptr(),
            topic.len(),
            since_ms,
            name.as_ptr(),
            name.len(),
            value.as_ptr(),
            value.len(),
            30_000,
            &mut found,
            &mut delivery,
            errbuf.as_mut_ptr(),
            errbuf.len(),
        )
    };
    // SAFETY: the core NUL-terminates errbuf.
    let message = unsafe { CStr::from_ptr(errbuf.as_ptr()) }.to_string_lossy().into_owned();
    Found { status, found, delivery, message }
}

#[test]
fn finds_a_published_record_by_its_idempotency_key_header() {
    let topic = unique("find");
    let dir = schema_dir(&[(&topic, CLASSIC_PROTO)]);
    let config = file_config(&dir, "");
    let mut p: *mut tg_publisher = std::ptr::null_mut();
    let mut errbuf = [0 as c_char; 512];
    // SAFETY: config is live; p and errbuf are writable.
    let st = unsafe { tg_publisher_new(config.as_ptr(), config.len(), &mut p, errbuf.as_mut_ptr(), errbuf.len()) };
    assert_eq!(st, tg_status::Ok);

    let since = now_ms();
    let mut written = Vec::new();
    for (msg, key) in [("a", "k-1"), ("b", "k-2"), ("c", "k-3")] {
        let json = format!(r#"{{"sample_message":"{msg}"}}"#);
        let (name, value) = ("Idempotency-Key", key);
        let h = tg_header { name: name.as_ptr(), name_len: name.len(), value: value.as_ptr(), value_len: value.len() };
        let mut d = tg_delivery::default();
        // SAFETY: every pointer is to a live local of the given length.
        let st = unsafe {
            tg_publish(
                p,
                topic.as_ptr(),
                topic.len(),
                json.as_ptr(),
                json.len(),
                &h,
                1,
                std::ptr::null(),
                0,
                &mut d,
                errbuf.as_mut_ptr(),
                errbuf.len(),
            )
        };
        assert_eq!(st, tg_status::Ok);
        written.push(d);
    }

    let f = find(p, &topic, since - 10_000, "Idempotency-Key", "k-2");
    assert_eq!((f.status, f.found), (tg_status::Ok, 1), "{}", f.message);
    assert_eq!((f.delivery.partition, f.delivery.offset), (written[1].partition, written[1].offset));
    let java = read_back(&topic, written[1].partition, written[1].offset, 1);
    assert_eq!(java[0].value, classic_bytes("b"));

    // Another value, another header name, or a search from after every record: nothing.
    for (since, name, value) in [
        (since - 10_000, "Idempotency-Key", "k-4"),
        (since - 10_000, "Other", "k-2"),
        (now_ms() + 60_000, "Idempotency-Key", "k-2"),
    ] {
        let f = find(p, &topic, since, name, value);
        assert_eq!((f.status, f.found), (tg_status::Ok, 0), "{name} {value}: {}", f.message);
    }

    // Bad arguments: 400 naming what is wrong, nothing searched.
    let f = find(p, &topic, since, "", "k-2");
    assert_eq!(f.status, tg_status::BadRequest);
    assert!(f.message.contains("name"), "{}", f.message);
    let f = find(std::ptr::null(), &topic, since, "Idempotency-Key", "k-2");
    assert_eq!(f.status, tg_status::BadRequest);
    assert!(f.message.contains("publisher"), "{}", f.message);
    let mut d = tg_delivery::default();
    // SAFETY: found is NULL on purpose; the rest is live.
    let st = unsafe {
        tg_find_by_header(
            p,
            topic.as_ptr(),
            topic.len(),
            0,
            "x".as_ptr(),
            1,
            std::ptr::null(),
            0,
            1000,
            std::ptr::null_mut(),
            &mut d,
            errbuf.as_mut_ptr(),
            errbuf.len(),
        )
    };
    assert_eq!(st, tg_status::BadRequest);

    // SAFETY: p came from tg_publisher_new and is not used afterwards.
    unsafe { tg_publisher_free(p) };
}
