//! The idempotency log (rust-core/src/idempotency.rs `IntentLog`, issue #21 step 2's building
//! block) against the real broker: two logs on one topic, as two gateway replicas would hold,
//! append intents for the same key; once each has read past its own intent, both see the key's
//! records in the same order (the earliest intent is the same for both); a log opened later sees
//! them too, as long as they are within its window.

mod common;

use std::ffi::{c_char, CStr};
use std::time::{Duration, Instant};

use common::*;
use topicgate::config::Config;
use topicgate::ffi::*;
use topicgate::ffi_intent::*;
use topicgate::idempotency::IntentLog;

#[test]
fn two_logs_agree_on_the_order_of_a_keys_intents() {
    let topic = unique("idemlog");
    let dir = schema_dir(&[]);
    let config = Config::from_json(&file_config(&dir, "")).unwrap();
    let window = Duration::from_secs(600);
    let a = IntentLog::open(&config, &topic, window).unwrap();
    let b = IntentLog::open(&config, &topic, window).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);

    // The log creates its topic itself (admin API), before anything is appended.
    let reader = topicgate::reader::Reader::new(&config).unwrap();
    while reader.partitions(&topic).is_err() {
        assert!(Instant::now() < deadline, "the log did not create its topic {topic}");
        std::thread::sleep(Duration::from_millis(100));
    }

    let key = b"route\x00Topic\x00k-1";
    // Each log's tail creates the topic (admin API) if it is missing, then follows it.
    let da = a.append(key, b"intent a").unwrap();
    let db = b.append(key, b"intent b").unwrap();
    let other = a.append(b"route\x00Topic\x00k-2", b"intent other").unwrap();
    assert_eq!(da.partition, db.partition, "one key, one partition");
    assert!(da.offset < db.offset);
    assert!(a.wait_read(da.partition, da.offset, deadline), "a did not read past its own intent");
    assert!(b.wait_read(db.partition, db.offset, deadline), "b did not read past its own intent");
    // b has read past its own intent, so it sees a's, which came first: both agree.
    let seen_by_b: Vec<_> = b.records(key).into_iter().map(|r| (r.offset, r.value)).collect();
    assert_eq!(seen_by_b, vec![(da.offset, b"intent a".to_vec()), (db.offset, b"intent b".to_vec())]);
    assert!(a.wait_read(db.partition, db.offset, deadline));
    assert_eq!(a.records(key), b.records(key));
    assert!(a.wait_read(other.partition, other.offset, deadline));
    assert_eq!(a.records(b"route\x00Topic\x00k-2").len(), 1);
    assert!(a.records(b"route\x00Topic\x00k-3").is_empty());

    // A wait for another record of a key ends when one comes in, not before.
    let seen = a.records(key).len();
    assert!(!a.wait_key(key, seen, Instant::now() + Duration::from_millis(200)), "woken with nothing new");
    let (a, key_owned) = (std::sync::Arc::new(a), key.to_vec());
    let waiter = {
        let a = a.clone();
        std::thread::spawn(move || a.wait_key(&key_owned, seen, Instant::now() + Duration::from_secs(60)))
    };
    let answer = b.append(key, b"answer b").unwrap();
    assert!(waiter.join().unwrap(), "the wait did not end when the key's next record came in");
    assert_eq!(a.records(key).last().map(|r| r.offset), Some(answer.offset));

    // A log opened later (a restarted replica) reads the window back.
    let c = IntentLog::open(&config, &topic, window).unwrap();
    assert!(c.wait_read(answer.partition, answer.offset, deadline), "c did not read the window back");
    assert_eq!(c.records(key), a.records(key));
    // Kafka's own consumer reads the same records there.
    let java = read_back(&topic, da.partition, da.offset, 1);
    assert_eq!(java[0].value, b"intent a".to_vec());
}

fn publisher(config: &str) -> *mut tg_publisher {
    let mut p: *mut tg_publisher = std::ptr::null_mut();
    let mut errbuf = [0 as c_char; 512];
    // SAFETY: config is live; p and errbuf are writable.
    let st = unsafe { tg_publisher_new(config.as_ptr(), config.len(), &mut p, errbuf.as_mut_ptr(), errbuf.len()) };
    assert_eq!(st, tg_status::Ok);
    p
}

/// The C ABI of the log: a publisher with the core option appends, waits and lists a key's
/// records; one without it answers 404 naming the option; bad arguments are 400s naming them.
#[test]
fn the_c_abi_appends_waits_and_lists_and_refuses_without_the_option() {
    let topic = unique("idemabi");
    let dir = schema_dir(&[]);
    let p = publisher(&file_config(&dir, &format!(r#","idempotency":{{"topic":"{topic}","window_ms":600000}}"#)));
    let mut errbuf = [0 as c_char; 512];
    let msg = |e: &[c_char; 512]| unsafe { CStr::from_ptr(e.as_ptr()) }.to_string_lossy().into_owned();
    let (key, value) = (b"r\x00T\x00k".as_slice(), b"intent".as_slice());
    let mut d = tg_delivery::default();
    // SAFETY: every pointer is to a live local of the given length.
    let st = unsafe {
        tg_intent_append(p, key.as_ptr(), key.len(), value.as_ptr(), value.len(), &mut d, errbuf.as_mut_ptr(), 512)
    };
    assert_eq!(st, tg_status::Ok, "{}", msg(&errbuf));
    let mut read = 0;
    // SAFETY: as above.
    let st = unsafe { tg_intent_wait_read(p, d.partition, d.offset, 60_000, &mut read, errbuf.as_mut_ptr(), 512) };
    assert_eq!((st, read), (tg_status::Ok, 1), "{}", msg(&errbuf));
    let mut changed = 1;
    // SAFETY: as above; the key has one record, so a wait for another runs out.
    let st = unsafe { tg_intent_wait_key(p, key.as_ptr(), key.len(), 1, 50, &mut changed, errbuf.as_mut_ptr(), 512) };
    assert_eq!((st, changed), (tg_status::Ok, 0), "{}", msg(&errbuf));
    // SAFETY: as above; seen 0 differs from the one record read.
    let st = unsafe { tg_intent_wait_key(p, key.as_ptr(), key.len(), 0, 50, &mut changed, errbuf.as_mut_ptr(), 512) };
    assert_eq!((st, changed), (tg_status::Ok, 1), "{}", msg(&errbuf));
    let mut len = 0usize;
    // SAFETY: out NULL with capacity 0 asks for the size.
    let st = unsafe {
        tg_intent_records(p, key.as_ptr(), key.len(), std::ptr::null_mut(), 0, &mut len, errbuf.as_mut_ptr(), 512)
    };
    assert_eq!((st, len), (tg_status::PayloadTooLarge, TG_INTENT_RECORD_HEAD + value.len()));
    let mut out = vec![0u8; len];
    // SAFETY: out holds len bytes.
    let st = unsafe {
        tg_intent_records(p, key.as_ptr(), key.len(), out.as_mut_ptr(), len, &mut len, errbuf.as_mut_ptr(), 512)
    };
    assert_eq!(st, tg_status::Ok);
    assert_eq!(i32::from_le_bytes(out[0..4].try_into().unwrap()), d.partition);
    assert_eq!(i64::from_le_bytes(out[4..12].try_into().unwrap()), d.offset);
    assert_eq!(&out[TG_INTENT_RECORD_HEAD..], value);
    // SAFETY: a NULL delivery is refused before it is used.
    let st = unsafe {
        tg_intent_append(p, key.as_ptr(), 0, value.as_ptr(), 1, std::ptr::null_mut(), errbuf.as_mut_ptr(), 512)
    };
    assert_eq!(st, tg_status::BadRequest);
    assert!(msg(&errbuf).contains("delivery"), "{}", msg(&errbuf));
    // SAFETY: as above.
    let st = unsafe { tg_intent_append(p, key.as_ptr(), 0, value.as_ptr(), 1, &mut d, errbuf.as_mut_ptr(), 512) };
    assert_eq!(st, tg_status::BadRequest);
    assert!(msg(&errbuf).contains("key"), "{}", msg(&errbuf));

    let plain = publisher(&file_config(&dir, ""));
    // SAFETY: as above.
    let st = unsafe {
        tg_intent_append(plain, key.as_ptr(), key.len(), value.as_ptr(), 1, &mut d, errbuf.as_mut_ptr(), 512)
    };
    assert_eq!(st, tg_status::NotFound);
    assert!(msg(&errbuf).contains("idempotency.topic"), "{}", msg(&errbuf));
    // SAFETY: both come from tg_publisher_new and are not used afterwards.
    unsafe {
        tg_publisher_free(p);
        tg_publisher_free(plain);
    }
}
