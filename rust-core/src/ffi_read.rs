//! The C ABI of the read side (issue #22): a pool of Kafka readers per publisher and one call
//! that reads a page of decoded records as JSON; a topic's tail read round after round.
#![allow(non_camel_case_types)]

use std::ffi::c_char;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::error::Error;
use crate::ffi::{guarded, text, tg_publisher, tg_status};
use crate::read_page::{read_page, PageRequest, ReaderPool};
use crate::tail::Tail;
use std::sync::Mutex;
use std::time::Duration;

/// An opaque pool of Kafka readers; create with `tg_reader_new`, free with `tg_reader_free`.
pub struct tg_reader {
    pool: ReaderPool,
}

/// Creates a pool of readers of `publisher`'s cluster keeping at most `max_idle` connections
/// between pages. No network call is made yet.
///
/// # Safety
/// `publisher` must be a live publisher; `out` must be writable; `errbuf` NULL or `errbuf_len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn tg_reader_new(
    publisher: *const tg_publisher,
    max_idle: usize,
    out: *mut *mut tg_reader,
    errbuf: *mut c_char,
    errbuf_len: usize,
) -> tg_status {
    guarded(errbuf, errbuf_len, || {
        let out = out.as_mut().ok_or_else(|| Error::bad_request("out: NULL pointer"))?;
        *out = std::ptr::null_mut();
        let publisher = publisher.as_ref().ok_or_else(|| Error::bad_request("publisher: NULL pointer"))?;
        *out = Box::into_raw(Box::new(tg_reader { pool: ReaderPool::new(publisher.inner.config(), max_idle) }));
        Ok(())
    })
}

/// Frees a reader pool (NULL is ignored).
///
/// # Safety
/// `reader` must come from `tg_reader_new`, not be used afterwards nor by another thread.
#[no_mangle]
pub unsafe extern "C" fn tg_reader_free(reader: *mut tg_reader) {
    if !reader.is_null() {
        let _ = catch_unwind(AssertUnwindSafe(|| drop(Box::from_raw(reader))));
    }
}

/// Reads one page as the JSON request `request` says (`{"topic", "partitions", "offsets",
/// "start", "limit", "wait_ms", "raw_on_error"}`, see docs/design.md); on 200 `*out` holds the
/// answer's JSON (`{"records": [...], "next": {...}, "ends": {...}}`), `*out_len` bytes to free with
/// `tg_read_free`. Blocks up to `wait_ms` when nothing is there yet.
///
/// # Safety
/// `publisher` and `reader` must be live; `request` `request_len` readable bytes; `out` and
/// `out_len` writable; `errbuf` NULL or `errbuf_len` writable bytes.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn tg_read_page(
    publisher: *const tg_publisher,
    reader: *const tg_reader,
    request: *const u8,
    request_len: usize,
    out: *mut *mut u8,
    out_len: *mut usize,
    errbuf: *mut c_char,
    errbuf_len: usize,
) -> tg_status {
    guarded(errbuf, errbuf_len, || {
        let (out, out_len) = answer_out(out, out_len)?;
        let publisher = publisher.as_ref().ok_or_else(|| Error::bad_request("publisher: NULL pointer"))?;
        let reader = reader.as_ref().ok_or_else(|| Error::bad_request("reader: NULL pointer"))?;
        let req: PageRequest = serde_json::from_str(text(request, request_len, "request")?)
            .map_err(|e| Error::bad_request(format!("request: {e}")))?;
        write_answer(&read_page(&publisher.inner, &reader.pool, &req)?, out, out_len)
    })
}

/// Frees an answer of `tg_read_page` or `tg_tail_round` (NULL is ignored).
///
/// # Safety
/// `ptr` and `len` must be exactly what `tg_read_page` or `tg_tail_round` gave, freed once.
#[no_mangle]
pub unsafe extern "C" fn tg_read_free(ptr: *mut u8, len: usize) {
    if !ptr.is_null() {
        let _ = catch_unwind(AssertUnwindSafe(|| {
            drop(Box::from_raw(std::ptr::slice_from_raw_parts_mut(ptr, len)));
        }));
    }
}

/// An opaque tail of a topic (a consumer kept assigned between rounds); open with `tg_tail_open`,
/// free with `tg_tail_free`. One round at a time: a second caller waits for the first.
pub struct tg_tail {
    tail: Mutex<Tail>,
}

/// Opens the tail of a topic at the positions `request` gives (a page request's JSON: `topic`,
/// `partitions`, `offsets`, `start`, `raw_on_error`; `limit` and `wait_ms` are ignored).
///
/// # Safety
/// `publisher` must be live; `request` `request_len` readable bytes; `out` writable; `errbuf`
/// NULL or `errbuf_len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn tg_tail_open(
    publisher: *const tg_publisher,
    request: *const u8,
    request_len: usize,
    out: *mut *mut tg_tail,
    errbuf: *mut c_char,
    errbuf_len: usize,
) -> tg_status {
    guarded(errbuf, errbuf_len, || {
        let out = out.as_mut().ok_or_else(|| Error::bad_request("out: NULL pointer"))?;
        *out = std::ptr::null_mut();
        let publisher = publisher.as_ref().ok_or_else(|| Error::bad_request("publisher: NULL pointer"))?;
        let req: PageRequest = serde_json::from_str(text(request, request_len, "request")?)
            .map_err(|e| Error::bad_request(format!("request: {e}")))?;
        let tail = Tail::open(&publisher.inner, &req)?;
        *out = Box::into_raw(Box::new(tg_tail { tail: Mutex::new(tail) }));
        Ok(())
    })
}

/// Reads the tail's next round: the records that arrive within `wait_ms` (at most `limit`), as a
/// page's JSON in `*out` (`*out_len` bytes, freed with `tg_read_free`).
///
/// # Safety
/// `publisher` and `tail` must be live (`tail` opened on `publisher`); `out` and `out_len`
/// writable; `errbuf` NULL or `errbuf_len` writable bytes.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn tg_tail_round(
    publisher: *const tg_publisher,
    tail: *const tg_tail,
    wait_ms: u64,
    limit: usize,
    out: *mut *mut u8,
    out_len: *mut usize,
    errbuf: *mut c_char,
    errbuf_len: usize,
) -> tg_status {
    guarded(errbuf, errbuf_len, || {
        let (out, out_len) = answer_out(out, out_len)?;
        let publisher = publisher.as_ref().ok_or_else(|| Error::bad_request("publisher: NULL pointer"))?;
        let tail = tail.as_ref().ok_or_else(|| Error::bad_request("tail: NULL pointer"))?;
        let mut tail = tail.tail.lock().unwrap_or_else(|e| e.into_inner());
        write_answer(&tail.round(&publisher.inner, Duration::from_millis(wait_ms), limit)?, out, out_len)
    })
}

/// Frees a tail and its consumer (NULL is ignored).
///
/// # Safety
/// `tail` must come from `tg_tail_open`, not be used afterwards nor by another thread.
#[no_mangle]
pub unsafe extern "C" fn tg_tail_free(tail: *mut tg_tail) {
    if !tail.is_null() {
        let _ = catch_unwind(AssertUnwindSafe(|| drop(Box::from_raw(tail))));
    }
}

/// The caller's answer slots, checked and emptied (NULL until an answer is written).
///
/// # Safety
/// `out` and `out_len` must be NULL or writable.
unsafe fn answer_out<'a>(
    out: *mut *mut u8,
    out_len: *mut usize,
) -> crate::error::Result<(&'a mut *mut u8, &'a mut usize)> {
    let out = out.as_mut().ok_or_else(|| Error::bad_request("out: NULL pointer"))?;
    let out_len = out_len.as_mut().ok_or_else(|| Error::bad_request("out_len: NULL pointer"))?;
    *out = std::ptr::null_mut();
    *out_len = 0;
    Ok((out, out_len))
}

/// Hands `answer`'s JSON to the caller, to free with `tg_read_free`.
fn write_answer(answer: &serde_json::Value, out: &mut *mut u8, out_len: &mut usize) -> crate::error::Result<()> {
    let bytes = serde_json::to_vec(answer).map_err(|e| Error::internal(format!("answer: {e}")))?.into_boxed_slice();
    *out_len = bytes.len();
    *out = Box::into_raw(bytes).cast::<u8>();
    Ok(())
}
