//! The C ABI of the shared idempotency log (issue #21, core option `idempotency`): append an
//! intent or answer record, wait until the log is read past an offset, list a key's records.
//! Every call on a publisher without the option (or a dry-run one) is a 404.

use std::ffi::c_char;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::ffi::{guarded, handle, tg_delivery, tg_publisher, tg_status};
use crate::idempotency::IntentLog;

/// Bytes of a record's fixed part in `tg_intent_records`' output: partition (i32), offset (i64),
/// timestamp (i64, -1 none), value length (u32), all little-endian; the value follows.
pub const TG_INTENT_RECORD_HEAD: usize = 24;

/// The publisher's log, or a 404 naming the option.
unsafe fn log_of<'a>(publisher: *const tg_publisher) -> Result<&'a IntentLog> {
    handle(publisher)?.intents.as_ref().ok_or_else(|| {
        Error::not_found("idempotency: the core option idempotency.topic is not set (or dry_run is on): no shared log")
    })
}

/// `(ptr, len)` as bytes; NULL only with length 0.
unsafe fn bytes<'a>(ptr: *const u8, len: usize, what: &str) -> Result<&'a [u8]> {
    match (ptr.is_null(), len) {
        (true, 0) => Ok(&[]),
        (true, _) => Err(Error::bad_request(format!("{what}: NULL pointer"))),
        (false, n) => Ok(std::slice::from_raw_parts(ptr, n)),
    }
}

/// Appends the record `value` under `key` (not empty) to the publisher's idempotency log and
/// waits for the broker's acknowledgement: on 200 `*delivery` says where it landed. 503/504 as
/// `tg_publish`.
///
/// # Safety
/// Each `(ptr, len)` pair must be readable (`value` may be NULL with length 0); `delivery` must
/// be writable; `errbuf` NULL or `errbuf_len` writable bytes.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn tg_intent_append(
    publisher: *const tg_publisher,
    key: *const u8,
    key_len: usize,
    value: *const u8,
    value_len: usize,
    delivery: *mut tg_delivery,
    errbuf: *mut c_char,
    errbuf_len: usize,
) -> tg_status {
    guarded(errbuf, errbuf_len, || {
        let delivery = delivery.as_mut().ok_or_else(|| Error::bad_request("delivery: NULL pointer"))?;
        let log = log_of(publisher)?;
        let key = bytes(key, key_len, "key")?;
        if key.is_empty() {
            return Err(Error::bad_request("key: empty"));
        }
        *delivery = log.append(key, bytes(value, value_len, "value")?)?.into();
        Ok(())
    })
}

/// Waits at most `timeout_ms` until the log has been read past `offset` of `partition`: `*read`
/// 1 when it has, 0 when the time ran out.
///
/// # Safety
/// `read` must be writable; `errbuf` NULL or `errbuf_len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn tg_intent_wait_read(
    publisher: *const tg_publisher,
    partition: i32,
    offset: i64,
    timeout_ms: u32,
    read: *mut i32,
    errbuf: *mut c_char,
    errbuf_len: usize,
) -> tg_status {
    guarded(errbuf, errbuf_len, || {
        let read = read.as_mut().ok_or_else(|| Error::bad_request("read: NULL pointer"))?;
        *read = 0;
        let log = log_of(publisher)?;
        let deadline = Instant::now() + Duration::from_millis(timeout_ms.into());
        *read = i32::from(log.wait_read(partition, offset, deadline));
        Ok(())
    })
}

/// Waits at most `timeout_ms` until the number of `key`'s records read differs from `seen` (a
/// record of it came in): `*changed` 1 when it does, 0 when the time ran out.
///
/// # Safety
/// `key` must be readable; `changed` writable; `errbuf` NULL or `errbuf_len` writable bytes.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn tg_intent_wait_key(
    publisher: *const tg_publisher,
    key: *const u8,
    key_len: usize,
    seen: usize,
    timeout_ms: u32,
    changed: *mut i32,
    errbuf: *mut c_char,
    errbuf_len: usize,
) -> tg_status {
    guarded(errbuf, errbuf_len, || {
        let changed = changed.as_mut().ok_or_else(|| Error::bad_request("changed: NULL pointer"))?;
        *changed = 0;
        let log = log_of(publisher)?;
        let key = bytes(key, key_len, "key")?;
        let deadline = Instant::now() + Duration::from_millis(timeout_ms.into());
        *changed = i32::from(log.wait_key(key, seen, deadline));
        Ok(())
    })
}

/// Writes the records of `key` read so far, in offset order, to `out` (each
/// `TG_INTENT_RECORD_HEAD` bytes then its value) and their total size to `*len`; 413 when
/// `capacity` is smaller (`*len` says how much is needed: call again).
///
/// # Safety
/// `key` must be readable; `out` NULL (with capacity 0) or `capacity` writable bytes; `len`
/// writable; `errbuf` NULL or `errbuf_len` writable bytes.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn tg_intent_records(
    publisher: *const tg_publisher,
    key: *const u8,
    key_len: usize,
    out: *mut u8,
    capacity: usize,
    len: *mut usize,
    errbuf: *mut c_char,
    errbuf_len: usize,
) -> tg_status {
    guarded(errbuf, errbuf_len, || {
        let len = len.as_mut().ok_or_else(|| Error::bad_request("len: NULL pointer"))?;
        *len = 0;
        let log = log_of(publisher)?;
        let mut buf = Vec::new();
        for r in log.records(bytes(key, key_len, "key")?) {
            let value_len = u32::try_from(r.value.len()).map_err(|_| Error::internal("record value over 4 GiB"))?;
            buf.extend_from_slice(&r.partition.to_le_bytes());
            buf.extend_from_slice(&r.offset.to_le_bytes());
            buf.extend_from_slice(&r.timestamp_ms.unwrap_or(-1).to_le_bytes());
            buf.extend_from_slice(&value_len.to_le_bytes());
            buf.extend_from_slice(&r.value);
        }
        *len = buf.len();
        if buf.len() > capacity {
            return Err(Error::too_large(format!("out: {} bytes needed, {capacity} given", buf.len())));
        }
        if !buf.is_empty() {
            if out.is_null() {
                return Err(Error::bad_request("out: NULL pointer"));
            }
            std::ptr::copy_nonoverlapping(buf.as_ptr(), out, buf.len());
        }
        Ok(())
    })
}
