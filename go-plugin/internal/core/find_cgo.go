//go:build cgo && !topicgate_nocore

package core

// #include "topicgate.h"
import "C"

import "time"

// FindByHeader searches topic for a record by header with tg_find_by_header (blocking, at most
// timeout): whether a record whose publish ended with a 504 was written after all.
func (c *corePublisher) FindByHeader(topic string, sinceMs int64, name string, value []byte, timeout time.Duration) (bool, Delivery, int, string) {
	var errbuf [errBufLen]C.char
	var found C.int32_t
	var d C.tg_delivery
	ms := min(max(timeout.Milliseconds(), 1), 1<<31)
	st := C.tg_find_by_header(c.p, stringPtr(topic), C.size_t(len(topic)), C.int64_t(sinceMs),
		stringPtr(name), C.size_t(len(name)), bytesPtr(value), C.size_t(len(value)),
		C.uint32_t(ms), &found, &d, &errbuf[0], C.size_t(len(errbuf)))
	if int(st) != 200 {
		return false, Delivery{}, int(st), C.GoString(&errbuf[0])
	}
	return found == 1, Delivery{Partition: int32(d.partition), Offset: int64(d.offset)}, 200, ""
}
