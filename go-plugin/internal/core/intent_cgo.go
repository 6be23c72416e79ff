//go:build cgo && !topicgate_nocore

package core

// #include "topicgate.h"
import "C"

import (
	"encoding/binary"
	"encoding/json"
	"time"
	"unsafe"
)

// intentRecordHead is TG_INTENT_RECORD_HEAD: partition, offset, timestamp, value length.
const intentRecordHead = 24

// sharedOf reads from a core config whether it has the "idempotency" option (and not dry_run),
// and its delivery timeout (the core's default 5 s when absent).
func sharedOf(config []byte) (bool, time.Duration) {
	var c struct {
		Idempotency       *json.RawMessage `json:"idempotency"`
		DryRun            bool             `json:"dry_run"`
		DeliveryTimeoutMs *int64           `json:"delivery_timeout_ms"`
	}
	if json.Unmarshal(config, &c) != nil {
		return false, 0
	}
	dt := 5 * time.Second
	if c.DeliveryTimeoutMs != nil {
		dt = time.Duration(*c.DeliveryTimeoutMs) * time.Millisecond
	}
	return c.Idempotency != nil && string(*c.Idempotency) != "null" && !c.DryRun, dt
}

// Shared implements IntentLog.
func (c *corePublisher) Shared() (bool, time.Duration) { return c.shared, c.deliveryTimeout }

// IntentAppend implements IntentLog with tg_intent_append.
func (c *corePublisher) IntentAppend(key, value []byte) (Delivery, int, string) {
	var errbuf [errBufLen]C.char
	var d C.tg_delivery
	st := C.tg_intent_append(c.p, bytesPtr(key), C.size_t(len(key)), bytesPtr(value), C.size_t(len(value)),
		&d, &errbuf[0], C.size_t(len(errbuf)))
	if int(st) != 200 {
		return Delivery{}, int(st), C.GoString(&errbuf[0])
	}
	return Delivery{Partition: int32(d.partition), Offset: int64(d.offset)}, 200, ""
}

// IntentWaitRead implements IntentLog with tg_intent_wait_read.
func (c *corePublisher) IntentWaitRead(partition int32, offset int64, timeout time.Duration) (bool, int, string) {
	var errbuf [errBufLen]C.char
	var read C.int32_t
	ms := min(max(timeout.Milliseconds(), 0), 1<<31)
	st := C.tg_intent_wait_read(c.p, C.int32_t(partition), C.int64_t(offset), C.uint32_t(ms), &read,
		&errbuf[0], C.size_t(len(errbuf)))
	if int(st) != 200 {
		return false, int(st), C.GoString(&errbuf[0])
	}
	return read == 1, 200, ""
}

// IntentWaitKey implements IntentLog with tg_intent_wait_key.
func (c *corePublisher) IntentWaitKey(key []byte, seen int, timeout time.Duration) (bool, int, string) {
	var errbuf [errBufLen]C.char
	var changed C.int32_t
	ms := min(max(timeout.Milliseconds(), 0), 1<<31)
	st := C.tg_intent_wait_key(c.p, bytesPtr(key), C.size_t(len(key)), C.size_t(seen), C.uint32_t(ms), &changed,
		&errbuf[0], C.size_t(len(errbuf)))
	if int(st) != 200 {
		return false, int(st), C.GoString(&errbuf[0])
	}
	return changed == 1, 200, ""
}

// IntentRecords implements IntentLog with tg_intent_records (called again with the size it
// asks for when the first buffer is too small).
func (c *corePublisher) IntentRecords(key []byte) ([]IntentRecord, int, string) {
	buf := make([]byte, 4096)
	for range 3 {
		var errbuf [errBufLen]C.char
		var n C.size_t
		st := C.tg_intent_records(c.p, bytesPtr(key), C.size_t(len(key)), (*C.uint8_t)(unsafe.Pointer(&buf[0])),
			C.size_t(len(buf)), &n, &errbuf[0], C.size_t(len(errbuf)))
		if int(st) == 413 {
			buf = make([]byte, int(n))
			continue
		}
		if int(st) != 200 {
			return nil, int(st), C.GoString(&errbuf[0])
		}
		return parseIntentRecords(buf[:int(n)]), 200, ""
	}
	return nil, 503, "the idempotency log's records kept growing while read; retry"
}

// parseIntentRecords splits tg_intent_records' output.
func parseIntentRecords(b []byte) []IntentRecord {
	var out []IntentRecord
	for len(b) >= intentRecordHead {
		n := int(binary.LittleEndian.Uint32(b[20:24]))
		if len(b) < intentRecordHead+n {
			break
		}
		out = append(out, IntentRecord{
			Partition:   int32(binary.LittleEndian.Uint32(b[0:4])),
			Offset:      int64(binary.LittleEndian.Uint64(b[4:12])),
			TimestampMs: int64(binary.LittleEndian.Uint64(b[12:20])),
			Value:       append([]byte(nil), b[intentRecordHead:intentRecordHead+n]...),
		})
		b = b[intentRecordHead+n:]
	}
	return out
}
