//! The C ABI: opaque handle, `(ptr, len)` inputs, HTTP-valued status, caller-owned error buffer,
//! and a panic boundary around every export.
#![allow(non_camel_case_types)]

use std::ffi::{c_char, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use crate::batch::Batch;
use crate::completion::{self, Completion, Formats};
use crate::delivery::Delivery;
use crate::error::{Error, Result, Status};
use crate::idempotency::{Finder, IntentLog};
use crate::logging;
use crate::producer::Placement;
use crate::publisher::{Publisher, Record};
use crate::value_schema::ValueSchema;

/// Every function's result; the numeric value is the HTTP status to answer with.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum tg_status {
    /// Success (the broker acknowledged, for `tg_publish`).
    Ok = 200,
    /// Bad input: JSON, schema mismatch, headers, topic name, partition, config.
    BadRequest = 400,
    /// The Kafka cluster's ACLs refuse the gateway (topic, cluster or transactional id): fix the ACLs.
    Forbidden = 403,
    /// The topic's schema (or the topic) does not exist.
    NotFound = 404,
    /// Body, key or headers over a configured limit.
    PayloadTooLarge = 413,
    /// A fault inside topicgate or a broken schema.
    InternalError = 500,
    /// Broker or registry unreachable, or the producer queue is full: retry later.
    Unavailable = 503,
    /// The broker did not acknowledge within the delivery timeout.
    Timeout = 504,
}

impl From<Status> for tg_status {
    fn from(s: Status) -> tg_status {
        match s {
            Status::Ok => tg_status::Ok,
            Status::BadRequest => tg_status::BadRequest,
            Status::Forbidden => tg_status::Forbidden,
            Status::NotFound => tg_status::NotFound,
            Status::PayloadTooLarge => tg_status::PayloadTooLarge,
            Status::InternalError => tg_status::InternalError,
            Status::Unavailable => tg_status::Unavailable,
            Status::Timeout => tg_status::Timeout,
        }
    }
}

/// An opaque publisher; create with `tg_publisher_new`, free with `tg_publisher_free`.
pub struct tg_publisher {
    pub(crate) inner: Publisher,
    /// Searches for records by header (`tg_find_by_header`), its reader made on first use.
    finder: Finder,
    /// The shared idempotency log (core option `idempotency`; `tg_intent_*`), opened at creation.
    pub(crate) intents: Option<IntentLog>,
}

/// One record header: a name (UTF-8, not NUL-terminated, not empty) and a value (any bytes).
/// `value` may be NULL only with `value_len` 0: an empty value.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct tg_header {
    /// The name's bytes: UTF-8, not empty.
    pub name: *const u8,
    /// The name's length in bytes.
    pub name_len: usize,
    /// The value's bytes, any content; NULL only with `value_len` 0.
    pub value: *const u8,
    /// The value's length in bytes.
    pub value_len: usize,
}

/// Where a record landed.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct tg_delivery {
    /// Partition the record was written to.
    pub partition: i32,
    /// Offset of the record in that partition.
    pub offset: i64,
}

impl From<Delivery> for tg_delivery {
    fn from(d: Delivery) -> tg_delivery {
        tg_delivery { partition: d.partition, offset: d.offset }
    }
}

/// Size of `tg_completion.message`, NUL included.
pub const TG_COMPLETION_MESSAGE_LEN: usize = 512;

/// The outcome of a record begun with `tg_publish_start`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct tg_completion {
    /// The token given to `tg_publish_start`.
    pub token: u64,
    /// 200 when the broker acknowledged the record; otherwise what `tg_publish` would have returned.
    pub status: tg_status,
    /// On 200, where the record landed (both -1 for a dry-run publisher).
    pub delivery: tg_delivery,
    /// Empty on 200, otherwise the error text, truncated safely and NUL-terminated.
    pub message: [c_char; TG_COMPLETION_MESSAGE_LEN],
    /// On 200, the bytes of the record's value as produced (framing included; 0 for a dry run).
    pub value_len: usize,
    /// The format the value was encoded with (`TG_FORMAT_*`: the schema the core chose).
    pub value_format: u8,
    /// The format the key was encoded with (`TG_FORMAT_NONE`: the caller's bytes, no `key_schema`).
    pub key_format: u8,
    /// The bytes of the key as produced (framing included; 0: no key).
    pub key_len: usize,
}

/// `tg_completion.value_format`/`key_format`: not encoded with a schema (a key's own bytes).
pub const TG_FORMAT_NONE: u8 = 0;
/// Avro.
pub const TG_FORMAT_AVRO: u8 = 1;
/// JSON Schema.
pub const TG_FORMAT_JSONSCHEMA: u8 = 2;
/// Protobuf.
pub const TG_FORMAT_PROTOBUF: u8 = 3;

// The C codes are the core's own.
const _: () = assert!(
    TG_FORMAT_NONE == completion::FORMAT_NONE
        && TG_FORMAT_AVRO == completion::FORMAT_AVRO
        && TG_FORMAT_JSONSCHEMA == completion::FORMAT_JSONSCHEMA
        && TG_FORMAT_PROTOBUF == completion::FORMAT_PROTOBUF
);

/// Log sink: `level` 1 error, 2 warn, 3 info, 4 debug, 5 trace; `message` is not NUL-terminated.
/// Called from any thread, also the core's own.
pub type tg_log_callback =
    Option<unsafe extern "C" fn(user_data: *mut c_void, level: i32, message: *const u8, message_len: usize)>;

/// Registers the process-wide log sink (NULL removes it); records above `max_level` are dropped.
/// Returns 500 if the process had already installed another Rust `log` logger.
#[no_mangle]
pub extern "C" fn tg_set_log_callback(callback: tg_log_callback, user_data: *mut c_void, max_level: i32) -> tg_status {
    match catch_unwind(AssertUnwindSafe(|| logging::set_callback(callback, user_data, max_level))) {
        Ok(true) => tg_status::Ok,
        _ => tg_status::InternalError,
    }
}

/// Creates a publisher from a JSON config (see README). On success `*out` owns it.
/// A bad config is 400 with a message naming the key; nothing is left half-created.
///
/// # Safety
/// `config` must point to `config_len` readable bytes; `out` must be writable;
/// `errbuf` must be NULL or point to `errbuf_len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn tg_publisher_new(
    config: *const u8,
    config_len: usize,
    out: *mut *mut tg_publisher,
    errbuf: *mut c_char,
    errbuf_len: usize,
) -> tg_status {
    guarded(errbuf, errbuf_len, || {
        if out.is_null() {
            return Err(Error::bad_request("out: NULL pointer"));
        }
        *out = std::ptr::null_mut();
        let config = text(config, config_len, "config")?;
        let inner = Publisher::new(config)?;
        let intents = match (&inner.config().idempotency, inner.config().dry_run) {
            (Some(idem), false) => {
                Some(IntentLog::open(inner.config(), &idem.topic, Duration::from_millis(idem.window_ms))?)
            }
            _ => None,
        };
        let publisher = Box::new(tg_publisher { inner, finder: Finder::default(), intents });
        *out = Box::into_raw(publisher);
        Ok(())
    })
}

/// Frees a publisher (NULL is ignored). Its shared producer lives on while other publishers use it.
///
/// # Safety
/// `publisher` must come from `tg_publisher_new`, not be used afterwards, and not be in use by another thread.
#[no_mangle]
pub unsafe extern "C" fn tg_publisher_free(publisher: *mut tg_publisher) {
    if !publisher.is_null() {
        let _ = catch_unwind(AssertUnwindSafe(|| drop(Box::from_raw(publisher))));
    }
}

/// Checks `json` against the topic's schema, encodes it and produces it with `key` and the
/// `headers_len` record headers at `headers` (in that order, duplicates kept; NULL with length 0:
/// none); blocks until the broker acknowledged the record or the delivery timeout passed. On 200,
/// `*delivery` holds partition and offset (both -1 for a dry-run publisher).
///
/// # Safety
/// Each `(ptr, len)` pair must be readable (`headers` and `key` may be NULL), `headers` must point to
/// `headers_len` `tg_header`s whose pairs are readable; `delivery` must be NULL or writable;
/// `errbuf` must be NULL or point to `errbuf_len` writable bytes.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn tg_publish(
    publisher: *const tg_publisher,
    topic: *const u8,
    topic_len: usize,
    json: *const u8,
    json_len: usize,
    headers: *const tg_header,
    headers_len: usize,
    key: *const u8,
    key_len: usize,
    delivery: *mut tg_delivery,
    errbuf: *mut c_char,
    errbuf_len: usize,
) -> tg_status {
    guarded(errbuf, errbuf_len, || {
        let publisher = handle(publisher)?;
        let args = RecordArgs { topic, topic_len, json, json_len, headers, headers_len, key, key_len };
        let d = args.with_record(|record| publisher.inner.publish(record))?;
        if let Some(out) = delivery.as_mut() {
            *out = d.into();
        }
        Ok(())
    })
}

/// Checks, encodes and queues a record like `tg_publish`, without waiting for the broker.
/// `partition` and `timestamp_ms` as for `tg_batch_add` (-1: the producer's choice). 200 means queued: exactly one `tg_completion` carrying `token` follows, through
/// `tg_publisher_completions`, within the delivery timeout. Any other status is the record's
/// final answer (it was not queued) and no completion follows.
///
/// # Safety
/// As for `tg_publish`.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn tg_publish_start(
    publisher: *const tg_publisher,
    topic: *const u8,
    topic_len: usize,
    json: *const u8,
    json_len: usize,
    headers: *const tg_header,
    headers_len: usize,
    key: *const u8,
    key_len: usize,
    partition: i32,
    timestamp_ms: i64,
    token: u64,
    errbuf: *mut c_char,
    errbuf_len: usize,
) -> tg_status {
    tg_publish_start_with_schema(
        publisher,
        topic,
        topic_len,
        json,
        json_len,
        std::ptr::null(),
        0,
        headers,
        headers_len,
        key,
        key_len,
        partition,
        timestamp_ms,
        token,
        errbuf,
        errbuf_len,
    )
}

/// `tg_publish_start` with the value's schema chosen by the record: `value_schema` is JSON
/// `{"format"?: "AVRO"|"JSONSCHEMA"|"PROTOBUF", "schema_id"?: n, "subject"?: s, "version"?: n}`
/// (NULL: the topic's schema). `schema_id`, or `subject` and/or `version` (absent: the topic's
/// subject, its latest version), select a Confluent registry's schema and frame the value in
/// Confluent's wire format with its id; `format` must be the schema's. A selector that is not one
/// is 400; a schema the registry does not have is 404.
///
/// # Safety
/// As for `tg_publish`; `value_schema` must be NULL or point to `value_schema_len` readable bytes.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn tg_publish_start_with_schema(
    publisher: *const tg_publisher,
    topic: *const u8,
    topic_len: usize,
    json: *const u8,
    json_len: usize,
    value_schema: *const u8,
    value_schema_len: usize,
    headers: *const tg_header,
    headers_len: usize,
    key: *const u8,
    key_len: usize,
    partition: i32,
    timestamp_ms: i64,
    token: u64,
    errbuf: *mut c_char,
    errbuf_len: usize,
) -> tg_status {
    guarded(errbuf, errbuf_len, || {
        let publisher = handle(publisher)?;
        let selector = selector(value_schema, value_schema_len)?;
        let args = RecordArgs { topic, topic_len, json, json_len, headers, headers_len, key, key_len };
        args.with_record(|record| {
            let placement = Placement::from_abi(partition, timestamp_ms);
            publisher.inner.start_selected(record, selector.as_ref(), placement, token)
        })
    })
}

/// Takes up to `capacity` completions of records begun with `tg_publish_start` into `out`,
/// waiting up to `timeout_ms` for the first; `*count` is how many were written (0 on timeout).
/// Any number of threads may poll one publisher; each completion goes to exactly one of them.
///
/// # Safety
/// `publisher` must be valid; `out` must point to `capacity` writable `tg_completion`s; `count`
/// must be writable.
#[no_mangle]
pub unsafe extern "C" fn tg_publisher_completions(
    publisher: *const tg_publisher,
    out: *mut tg_completion,
    capacity: usize,
    count: *mut usize,
    timeout_ms: u32,
) -> tg_status {
    guarded(std::ptr::null_mut(), 0, || {
        let publisher = handle(publisher)?;
        let count = count.as_mut().ok_or_else(|| Error::bad_request("count: NULL pointer"))?;
        *count = 0;
        if out.is_null() && capacity > 0 {
            return Err(Error::bad_request("out: NULL pointer"));
        }
        let mut taken: Vec<Completion> = Vec::with_capacity(capacity.min(1024));
        publisher.inner.completions(&mut taken, capacity, Duration::from_millis(timeout_ms.into()));
        for (i, completion) in taken.into_iter().enumerate() {
            let slot = &mut *out.add(i);
            slot.token = completion.token;
            slot.value_len = completion.value_len;
            slot.value_format = completion.formats.value;
            slot.key_format = completion.formats.key;
            slot.key_len = completion.formats.key_len;
            match completion.outcome {
                Ok(d) => {
                    slot.status = tg_status::Ok;
                    slot.delivery = d.into();
                    slot.message[0] = 0;
                }
                Err(e) => {
                    slot.status = e.status.into();
                    slot.delivery = tg_delivery { partition: -1, offset: -1 };
                    write_error(slot.message.as_mut_ptr(), TG_COMPLETION_MESSAGE_LEN, &e.message);
                }
            }
            *count = i + 1;
        }
        Ok(())
    })
}

/// Waits until every record queued on the publisher's producer is delivered; 504 after `timeout_ms`.
///
/// # Safety
/// `publisher` must be NULL or valid; `errbuf` must be NULL or point to `errbuf_len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn tg_publisher_flush(
    publisher: *const tg_publisher,
    timeout_ms: u32,
    errbuf: *mut c_char,
    errbuf_len: usize,
) -> tg_status {
    guarded(errbuf, errbuf_len, || {
        let publisher = handle(publisher)?;
        publisher.inner.flush(Duration::from_millis(u64::from(timeout_ms)))
    })
}

/// An opaque batch of checked records for one topic; create with `tg_batch_new`, free with
/// `tg_batch_free`. Not for use by two threads at once.
pub struct tg_batch {
    inner: Batch,
}

/// Creates an empty batch for `topic`; on success `*out` owns it.
///
/// # Safety
/// `topic` must point to `topic_len` readable bytes; `out` must be writable; `errbuf` must be NULL or
/// point to `errbuf_len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn tg_batch_new(
    topic: *const u8,
    topic_len: usize,
    out: *mut *mut tg_batch,
    errbuf: *mut c_char,
    errbuf_len: usize,
) -> tg_status {
    guarded(errbuf, errbuf_len, || {
        if out.is_null() {
            return Err(Error::bad_request("out: NULL pointer"));
        }
        *out = std::ptr::null_mut();
        let batch = Box::new(tg_batch { inner: Batch::new(text(topic, topic_len, "topic")?)? });
        *out = Box::into_raw(batch);
        Ok(())
    })
}

/// Checks and encodes one record for `batch` with `publisher`'s schema and limits, as `tg_publish`
/// would, and keeps it. `partition` -1 lets the partitioner choose, else the record goes there;
/// `timestamp_ms` -1 is the time of sending, else the record's timestamp (epoch milliseconds).
/// Any other status than 200 is that record's answer; it is not kept.
///
/// # Safety
/// `publisher` and `batch` must be valid; the rest as for `tg_publish`.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn tg_batch_add(
    publisher: *const tg_publisher,
    batch: *mut tg_batch,
    json: *const u8,
    json_len: usize,
    headers: *const tg_header,
    headers_len: usize,
    key: *const u8,
    key_len: usize,
    partition: i32,
    timestamp_ms: i64,
    errbuf: *mut c_char,
    errbuf_len: usize,
) -> tg_status {
    tg_batch_add_with_schema(
        publisher,
        batch,
        json,
        json_len,
        std::ptr::null(),
        0,
        headers,
        headers_len,
        key,
        key_len,
        partition,
        timestamp_ms,
        errbuf,
        errbuf_len,
    )
}

/// `tg_batch_add` with the value's schema chosen by the record, as for
/// `tg_publish_start_with_schema` (NULL `value_schema`: the topic's schema).
///
/// # Safety
/// As for `tg_batch_add`; `value_schema` must be NULL or point to `value_schema_len` readable bytes.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn tg_batch_add_with_schema(
    publisher: *const tg_publisher,
    batch: *mut tg_batch,
    json: *const u8,
    json_len: usize,
    value_schema: *const u8,
    value_schema_len: usize,
    headers: *const tg_header,
    headers_len: usize,
    key: *const u8,
    key_len: usize,
    partition: i32,
    timestamp_ms: i64,
    errbuf: *mut c_char,
    errbuf_len: usize,
) -> tg_status {
    guarded(errbuf, errbuf_len, || {
        let publisher = handle(publisher)?;
        let batch = batch.as_mut().ok_or_else(|| Error::bad_request("batch: NULL pointer"))?;
        let selector = selector(value_schema, value_schema_len)?;
        let topic = batch.inner.topic().to_owned();
        let args = RecordArgs {
            topic: topic.as_ptr(),
            topic_len: topic.len(),
            json,
            json_len,
            headers,
            headers_len,
            key,
            key_len,
        };
        args.with_record(|r| {
            let placement = Placement::from_abi(partition, timestamp_ms);
            batch.inner.add_selected(&publisher.inner, r.json, selector.as_ref(), r.headers, r.key, placement)
        })
    })
}

/// Queues every record of `batch` in order without waiting: record i completes, like a record of
/// `tg_publish_start`, with token `first_token + i`. `*queued` is how many were queued; on a status
/// other than 200 the record after them was refused for that reason and neither it nor the rest
/// was queued (they get no completion), while the queued ones complete as usual.
///
/// # Safety
/// `publisher` and `batch` must be valid; `queued` must be writable; `errbuf` as for `tg_publish`.
#[no_mangle]
pub unsafe extern "C" fn tg_batch_start(
    publisher: *const tg_publisher,
    batch: *const tg_batch,
    first_token: u64,
    queued: *mut usize,
    errbuf: *mut c_char,
    errbuf_len: usize,
) -> tg_status {
    guarded(errbuf, errbuf_len, || {
        let publisher = handle(publisher)?;
        let batch = batch.as_ref().ok_or_else(|| Error::bad_request("batch: NULL pointer"))?;
        let queued = queued.as_mut().ok_or_else(|| Error::bad_request("queued: NULL pointer"))?;
        let (n, result) = publisher.inner.start_batch(&batch.inner, first_token);
        *queued = n;
        result
    })
}

/// Writes `batch` as one Kafka transaction, blocking until it is committed or `timeout_ms` has
/// passed (the caller's deadline; negative: `transactions.timeout_ms`, which also caps it): on 200
/// `out[i]` is where record i landed. On any other status the transaction was aborted and a
/// `read_committed` consumer sees none of it; 504 says the commit's outcome is unknown (all of it
/// or none).
///
/// # Safety
/// `publisher` and `batch` must be valid; `out` must point to `capacity` writable `tg_delivery`s,
/// `capacity` at least the batch's length; `errbuf` as for `tg_publish`.
#[no_mangle]
pub unsafe extern "C" fn tg_batch_commit(
    publisher: *const tg_publisher,
    batch: *const tg_batch,
    timeout_ms: i64,
    out: *mut tg_delivery,
    capacity: usize,
    errbuf: *mut c_char,
    errbuf_len: usize,
) -> tg_status {
    guarded(errbuf, errbuf_len, || {
        let publisher = handle(publisher)?;
        let batch = batch.as_ref().ok_or_else(|| Error::bad_request("batch: NULL pointer"))?;
        if out.is_null() || capacity < batch.inner.len() {
            return Err(Error::bad_request(format!("out: room for {} deliveries needed", batch.inner.len())));
        }
        let configured = publisher.inner.config().transactions.timeout_ms;
        let timeout = match u64::try_from(timeout_ms) {
            Ok(ms) => Duration::from_millis(ms.min(configured)),
            Err(_) => Duration::from_millis(configured),
        };
        for (i, d) in publisher.inner.commit_batch_within(&batch.inner, timeout)?.into_iter().enumerate() {
            *out.add(i) = d.into();
        }
        Ok(())
    })
}

/// What record `index` of `batch` (in the order added) was encoded as: the formats a completion
/// states (`TG_FORMAT_*`) and its value's and key's bytes as produced (a transaction's deliveries
/// carry none of it); 400 when there is no such record.
///
/// # Safety
/// `batch` must be valid; `value_format`, `key_format`, `value_len` and `key_len` must be writable.
#[no_mangle]
pub unsafe extern "C" fn tg_batch_encoded(
    batch: *const tg_batch,
    index: usize,
    value_format: *mut u8,
    key_format: *mut u8,
    value_len: *mut usize,
    key_len: *mut usize,
) -> tg_status {
    guarded(std::ptr::null_mut(), 0, || {
        let batch = batch.as_ref().ok_or_else(|| Error::bad_request("batch: NULL pointer"))?;
        if value_format.is_null() || key_format.is_null() || value_len.is_null() || key_len.is_null() {
            return Err(Error::bad_request("value_format, key_format, value_len, key_len: NULL pointer"));
        }
        let (f, len): (Formats, usize) = batch.inner.encoded(index).ok_or_else(|| {
            Error::bad_request(format!("index: {index} is past the batch's {} records", batch.inner.len()))
        })?;
        (*value_format, *key_format, *value_len, *key_len) = (f.value, f.key, len, f.key_len);
        Ok(())
    })
}

/// Frees a batch (NULL is ignored).
///
/// # Safety
/// `batch` must come from `tg_batch_new` and not be used afterwards.
#[no_mangle]
pub unsafe extern "C" fn tg_batch_free(batch: *mut tg_batch) {
    if !batch.is_null() {
        let _ = catch_unwind(AssertUnwindSafe(|| drop(Box::from_raw(batch))));
    }
}

/// Writes a JSON snapshot of the core's metrics (schema cache, failed deliveries by status, each
/// producer's queue and broker connections; README "Observability") into `out`, not
/// NUL-terminated, and its length into `*len`. If `capacity` is too small nothing is written,
/// `*len` is the length needed, and the status is 413.
///
/// # Safety
/// `out` must point to `capacity` writable bytes (or be NULL with `capacity` 0); `len` must be writable.
#[no_mangle]
pub unsafe extern "C" fn tg_metrics_json(out: *mut u8, capacity: usize, len: *mut usize) -> tg_status {
    guarded(std::ptr::null_mut(), 0, || {
        let len = len.as_mut().ok_or_else(|| Error::bad_request("len: NULL pointer"))?;
        let json = crate::metrics::snapshot_json();
        *len = json.len();
        if json.len() > capacity {
            return Err(Error::too_large(format!("out: {} bytes needed, {capacity} given", json.len())));
        }
        if out.is_null() {
            return Err(Error::bad_request("out: NULL pointer"));
        }
        std::ptr::copy_nonoverlapping(json.as_ptr(), out, json.len());
        Ok(())
    })
}

/// Searches `topic` for the first record with a timestamp at or after `since_ms` (epoch
/// milliseconds) carrying the record header `name: value`, in every partition up to its end,
/// `read_committed`, for at most `timeout_ms`: whether a record whose publish ended with a 504 was
/// written after all (`Idempotency-Key`). On 200, `*found` is 1 and `*delivery` says where, or
/// `*found` is 0 (none; always 0 for a dry-run publisher). 504 when the search did not finish in
/// time, 503 when the cluster cannot be read. Blocks; one search per publisher at a time.
///
/// # Safety
/// Each `(ptr, len)` pair must be readable (`value` may be NULL with length 0); `found` and
/// `delivery` must be writable; `errbuf` must be NULL or point to `errbuf_len` writable bytes.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn tg_find_by_header(
    publisher: *const tg_publisher,
    topic: *const u8,
    topic_len: usize,
    since_ms: i64,
    name: *const u8,
    name_len: usize,
    value: *const u8,
    value_len: usize,
    timeout_ms: u32,
    found: *mut i32,
    delivery: *mut tg_delivery,
    errbuf: *mut c_char,
    errbuf_len: usize,
) -> tg_status {
    guarded(errbuf, errbuf_len, || {
        let publisher = handle(publisher)?;
        let (Some(found), Some(delivery)) = (found.as_mut(), delivery.as_mut()) else {
            return Err(Error::bad_request("found, delivery: NULL pointer"));
        };
        *found = 0;
        let topic = text(topic, topic_len, "topic")?;
        let name = text(name, name_len, "name")?;
        let value: &[u8] = match (value.is_null(), value_len) {
            (true, 0) => &[],
            (true, _) => return Err(Error::bad_request("value: NULL pointer")),
            (false, n) => std::slice::from_raw_parts(value, n),
        };
        let deadline = std::time::Instant::now() + Duration::from_millis(timeout_ms.into());
        let config = publisher.inner.config();
        if let Some(d) = publisher.finder.find(config, topic, since_ms, name, value, deadline)? {
            *found = 1;
            *delivery = d.into();
        }
        Ok(())
    })
}

/// The library version, a static NUL-terminated string.
#[no_mangle]
pub extern "C" fn tg_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// Runs `f` behind the panic boundary and reports its outcome through the status and `errbuf`.
pub(crate) unsafe fn guarded(errbuf: *mut c_char, errbuf_len: usize, f: impl FnOnce() -> Result<()>) -> tg_status {
    let (status, message) = match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => (tg_status::Ok, String::new()),
        Ok(Err(e)) => (e.status.into(), e.message),
        Err(_) => (tg_status::InternalError, "internal error: topicgate core panicked".to_owned()),
    };
    write_error(errbuf, errbuf_len, &message);
    status
}

/// The publisher behind a handle; NULL is a 400.
pub(crate) unsafe fn handle<'a>(publisher: *const tg_publisher) -> Result<&'a tg_publisher> {
    publisher.as_ref().ok_or_else(|| Error::bad_request("publisher: NULL pointer"))
}

/// The record arguments `tg_publish` and `tg_publish_start` share, as the caller passed them.
struct RecordArgs {
    topic: *const u8,
    topic_len: usize,
    json: *const u8,
    json_len: usize,
    headers: *const tg_header,
    headers_len: usize,
    key: *const u8,
    key_len: usize,
}

impl RecordArgs {
    /// Checks the arguments (NULL, UTF-8, the headers) and runs `f` on the record they make.
    unsafe fn with_record<T>(&self, f: impl FnOnce(&Record<'_>) -> Result<T>) -> Result<T> {
        let topic = text(self.topic, self.topic_len, "topic")?;
        let json = text(self.json, self.json_len, "body")?;
        let headers = headers(self.headers, self.headers_len)?;
        let key = (!self.key.is_null()).then(|| std::slice::from_raw_parts(self.key, self.key_len));
        f(&Record { topic, json, headers: &headers, key })
    }
}

/// A record's value schema selector (`value_schema`, JSON); NULL is none.
unsafe fn selector(ptr: *const u8, len: usize) -> Result<Option<ValueSchema>> {
    if ptr.is_null() {
        return Ok(None);
    }
    ValueSchema::parse(text(ptr, len, "value_schema")?).map(Some)
}

/// The `len` headers at `ptr`, copied in order; NULL with length 0 is none.
unsafe fn headers(ptr: *const tg_header, len: usize) -> Result<crate::headers::Headers> {
    if len == 0 {
        return Ok(Vec::new());
    }
    if ptr.is_null() {
        return Err(Error::bad_request("headers: NULL pointer"));
    }
    let raw = std::slice::from_raw_parts(ptr, len);
    let mut out = Vec::with_capacity(len);
    for (i, h) in raw.iter().enumerate() {
        if h.name.is_null() {
            return Err(Error::bad_request(format!("headers: header #{} name: NULL pointer", i + 1)));
        }
        let value: &[u8] = match (h.value.is_null(), h.value_len) {
            (true, 0) => &[],
            (true, _) => {
                return Err(Error::bad_request(format!("headers: header #{} value: NULL pointer", i + 1)));
            }
            (false, n) => std::slice::from_raw_parts(h.value, n),
        };
        out.push(crate::headers::header(i, std::slice::from_raw_parts(h.name, h.name_len), value)?);
    }
    Ok(out)
}

/// A `(ptr, len)` argument as UTF-8 text; NULL and invalid UTF-8 are 400s naming the argument.
pub(crate) unsafe fn text<'a>(ptr: *const u8, len: usize, what: &str) -> Result<&'a str> {
    if ptr.is_null() {
        return Err(Error::bad_request(format!("{what}: NULL pointer")));
    }
    std::str::from_utf8(std::slice::from_raw_parts(ptr, len))
        .map_err(|e| Error::bad_request(format!("{what}: not valid UTF-8 (at byte {})", e.valid_up_to())))
}

/// Copies `message` into the caller's buffer, truncated at a character boundary, NUL-terminated.
unsafe fn write_error(errbuf: *mut c_char, errbuf_len: usize, message: &str) {
    if errbuf.is_null() || errbuf_len == 0 {
        return;
    }
    let mut n = message.len().min(errbuf_len - 1);
    while !message.is_char_boundary(n) {
        n -= 1;
    }
    std::ptr::copy_nonoverlapping(message.as_ptr(), errbuf.cast::<u8>(), n);
    *errbuf.add(n) = 0;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call_new(config: &[u8], errbuf: &mut [u8]) -> (tg_status, *mut tg_publisher) {
        let mut out = std::ptr::null_mut();
        let s = unsafe {
            tg_publisher_new(config.as_ptr(), config.len(), &mut out, errbuf.as_mut_ptr().cast(), errbuf.len())
        };
        (s, out)
    }

    fn msg(buf: &[u8]) -> &str {
        std::ffi::CStr::from_bytes_until_nul(buf).unwrap().to_str().unwrap()
    }

    #[test]
    fn status_values_are_http_codes() {
        assert_eq!(tg_status::Ok as i32, 200);
        assert_eq!(tg_status::PayloadTooLarge as i32, 413);
        assert_eq!(tg_status::Timeout as i32, 504);
        assert_eq!(tg_status::from(Status::Unavailable) as i32, 503);
        assert_eq!(tg_status::from(Status::Forbidden) as i32, 403);
    }

    #[test]
    fn bad_config_and_invalid_utf8_are_400_with_message() {
        let mut buf = [0u8; 256];
        let (s, p) = call_new(b"{\"kafka\":1}", &mut buf);
        assert_eq!(s, tg_status::BadRequest);
        assert!(p.is_null());
        assert!(msg(&buf).contains("kafka"), "{}", msg(&buf));
        let (s, _) = call_new(b"{\"\xff\"}", &mut buf);
        assert_eq!(s, tg_status::BadRequest);
        assert!(msg(&buf).contains("config: not valid UTF-8 (at byte 2)"), "{}", msg(&buf));
    }

    #[test]
    fn null_arguments_are_rejected_not_crashed() {
        let mut buf = [0u8; 64];
        let s =
            unsafe { tg_publisher_new(std::ptr::null(), 5, std::ptr::null_mut(), buf.as_mut_ptr().cast(), buf.len()) };
        assert_eq!(s, tg_status::BadRequest);
        assert_eq!(msg(&buf), "out: NULL pointer");
        let s = unsafe {
            tg_publish(
                std::ptr::null(),
                std::ptr::null(),
                0,
                std::ptr::null(),
                0,
                std::ptr::null(),
                0,
                std::ptr::null(),
                0,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                0,
            )
        };
        assert_eq!(s, tg_status::BadRequest);
        unsafe { tg_publisher_free(std::ptr::null_mut()) };
        let s = unsafe { tg_publisher_flush(std::ptr::null(), 1, buf.as_mut_ptr().cast(), buf.len()) };
        assert_eq!(s, tg_status::BadRequest);
    }

    #[test]
    fn headers_are_byte_pairs_in_order_with_duplicates() {
        let (b, a, bin) = (b"b".as_slice(), b"a".as_slice(), [0x00u8, 0xff, 0x80]);
        let raw = [
            tg_header { name: b.as_ptr(), name_len: 1, value: bin.as_ptr(), value_len: 3 },
            tg_header { name: a.as_ptr(), name_len: 1, value: std::ptr::null(), value_len: 0 },
            tg_header { name: b.as_ptr(), name_len: 1, value: b"3".as_ptr(), value_len: 1 },
        ];
        let got = unsafe { headers(raw.as_ptr(), raw.len()) }.unwrap();
        assert_eq!(
            got,
            vec![("b".to_owned(), bin.to_vec()), ("a".to_owned(), vec![]), ("b".to_owned(), b"3".to_vec())]
        );
        assert!(unsafe { headers(std::ptr::null(), 0) }.unwrap().is_empty());
        assert_eq!(unsafe { headers(std::ptr::null(), 1) }.unwrap_err().message, "headers: NULL pointer");
        let null_value = [tg_header { name: a.as_ptr(), name_len: 1, value: std::ptr::null(), value_len: 2 }];
        let e = unsafe { headers(null_value.as_ptr(), 1) }.unwrap_err();
        assert_eq!((e.status, e.message.as_str()), (Status::BadRequest, "headers: header #1 value: NULL pointer"));
        let null_name = [tg_header { name: std::ptr::null(), name_len: 0, value: a.as_ptr(), value_len: 1 }];
        let e = unsafe { headers(null_name.as_ptr(), 1) }.unwrap_err();
        assert_eq!(e.message, "headers: header #1 name: NULL pointer");
    }

    #[test]
    fn error_buffer_is_truncated_on_a_char_boundary_and_terminated() {
        let mut buf = [0xffu8; 5];
        unsafe { write_error(buf.as_mut_ptr().cast(), buf.len(), "abcé-long") };
        assert_eq!(&buf, b"abc\0\xff"); // 'é' is two bytes and does not fit after "abc"
        let mut one = [0xffu8; 1];
        unsafe { write_error(one.as_mut_ptr().cast(), 1, "x") };
        assert_eq!(one, [0]);
    }

    #[test]
    fn panics_become_500() {
        let mut buf = [0u8; 64];
        let s = unsafe { guarded(buf.as_mut_ptr().cast(), buf.len(), || panic!("boom")) };
        assert_eq!(s, tg_status::InternalError);
        assert!(msg(&buf).contains("panicked"));
    }

    #[test]
    fn metrics_json_reports_the_length_it_needs() {
        let mut len = 0usize;
        assert_eq!(unsafe { tg_metrics_json(std::ptr::null_mut(), 0, &mut len) }, tg_status::PayloadTooLarge);
        assert!(len > 2);
        let mut buf = vec![0u8; len + 64];
        assert_eq!(unsafe { tg_metrics_json(buf.as_mut_ptr(), buf.len(), &mut len) }, tg_status::Ok);
        let v: serde_json::Value = serde_json::from_slice(&buf[..len]).unwrap();
        assert!(v["schema"]["hits"].is_u64() && v["producers"].is_array(), "{v}");
        assert_eq!(
            unsafe { tg_metrics_json(buf.as_mut_ptr(), buf.len(), std::ptr::null_mut()) },
            tg_status::BadRequest
        );
    }

    #[test]
    fn batch_commit_answers_by_the_callers_deadline_not_the_configured_one() {
        // No broker listens on the bootstrap port: init_transactions can only time out, after the
        // caller's 300 ms, not the configured 60 s.
        let dir = std::env::temp_dir().join(format!("tg-ffi-commit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("T.proto"), "syntax = \"proto3\";\nmessage T { string s = 1; }\n").unwrap();
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let config = format!(
            r#"{{"kafka":{{"bootstrap_servers":"{closed}"}},"registry":{{"kind":"file","directory":"{}"}},
                "transactions":{{"timeout_ms":60000}}}}"#,
            dir.display()
        );
        let mut buf = [0u8; 512];
        let (s, p) = call_new(config.as_bytes(), &mut buf);
        assert_eq!(s, tg_status::Ok, "{}", msg(&buf));
        let mut b = std::ptr::null_mut();
        let topic = b"T";
        assert_eq!(
            unsafe { tg_batch_new(topic.as_ptr(), 1, &mut b, buf.as_mut_ptr().cast(), buf.len()) },
            tg_status::Ok
        );
        let body = br#"{"s":"x"}"#;
        let (no_headers, no_key) = (std::ptr::null(), std::ptr::null());
        let add = unsafe {
            tg_batch_add(
                p,
                b,
                body.as_ptr(),
                body.len(),
                no_headers,
                0,
                no_key,
                0,
                -1,
                -1,
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        assert_eq!(add, tg_status::Ok, "{}", msg(&buf));
        // The record's formats: the topic's Protobuf schema, no key; past the batch is 400.
        let (mut vf, mut kf, mut vl, mut kl) = (9u8, 9u8, 9usize, 9usize);
        assert_eq!(unsafe { tg_batch_encoded(b, 0, &mut vf, &mut kf, &mut vl, &mut kl) }, tg_status::Ok);
        assert_eq!((vf, kf, vl, kl), (TG_FORMAT_PROTOBUF, TG_FORMAT_NONE, 3, 0)); // field 1, length 1, "x"
        assert_eq!(unsafe { tg_batch_encoded(b, 1, &mut vf, &mut kf, &mut vl, &mut kl) }, tg_status::BadRequest);
        let mut out = [tg_delivery { partition: 0, offset: 0 }];
        let started = std::time::Instant::now();
        let s = unsafe { tg_batch_commit(p, b, 300, out.as_mut_ptr(), 1, buf.as_mut_ptr().cast(), buf.len()) };
        let took = started.elapsed();
        assert_eq!(s, tg_status::Unavailable, "{}", msg(&buf));
        assert!(msg(&buf).contains("nothing written"), "{}", msg(&buf));
        // 300 ms asked, 60 s configured: anything near the latter means the caller's deadline was ignored.
        assert!(took < Duration::from_secs(30), "answered after {took:?}");
        unsafe {
            tg_batch_free(b);
            tg_publisher_free(p);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn version_is_a_c_string() {
        let v = unsafe { std::ffi::CStr::from_ptr(tg_version()) };
        assert_eq!(v.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
    }
}
