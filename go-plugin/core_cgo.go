//go:build cgo && !topicgate_nocore

package main

/*
#cgo CFLAGS: -I${SRCDIR}/../include
#cgo LDFLAGS: ${SRCDIR}/../target/release/libtopicgate.a -lssl -lcrypto -lz -lm -ldl -lpthread
#include <stdlib.h>
#include "topicgate.h"

// Defined in corelog_cgo.go (//export topicgateGoLog).
extern void topicgateGoLog(void *user_data, int32_t level, uint8_t *message, size_t message_len);

static tg_status topicgate_install_log(int32_t max_level) {
	return tg_set_log_callback((tg_log_callback)topicgateGoLog, NULL, max_level);
}
*/
import "C"

import (
	"sync"
	"unsafe"
)

// errBufLen is the size of the error buffers handed to the core.
const errBufLen = 2048

// coreLogMaxLevel: records above it (4 debug, 5 trace) never cross the boundary.
const coreLogMaxLevel = 3

// corePublisher owns a tg_publisher; the core is thread-safe, so one serves every request.
type corePublisher struct {
	p *C.tg_publisher
}

func coreNewPublisher(config []byte) (publisher, int, string) {
	var out *C.tg_publisher
	var errbuf [errBufLen]C.char
	st := C.tg_publisher_new(bytesPtr(config), C.size_t(len(config)), &out, &errbuf[0], C.size_t(len(errbuf)))
	if int(st) != 200 || out == nil {
		return nil, int(st), C.GoString(&errbuf[0])
	}
	return &corePublisher{p: out}, 200, ""
}

func (c *corePublisher) publish(topic string, body, headersJSON, key []byte) (int, delivery, string) {
	var d C.tg_delivery
	var errbuf [errBufLen]C.char
	tb := []byte(topic)
	var keyPtr *C.uint8_t // NULL = no key
	if key != nil {
		keyPtr = bytesPtr(key)
	}
	var hdrPtr *C.uint8_t
	if len(headersJSON) > 0 {
		hdrPtr = bytesPtr(headersJSON)
	}
	st := C.tg_publish(c.p,
		bytesPtr(tb), C.size_t(len(tb)),
		bytesPtr(body), C.size_t(len(body)),
		hdrPtr, C.size_t(len(headersJSON)),
		keyPtr, C.size_t(len(key)),
		&d, &errbuf[0], C.size_t(len(errbuf)))
	if int(st) != 200 {
		return int(st), delivery{}, C.GoString(&errbuf[0])
	}
	return 200, delivery{Partition: int32(d.partition), Offset: int64(d.offset)}, ""
}

// bytesPtr points at b's bytes for the duration of a call (the core copies what it
// keeps). An empty slice gets a pointer to a static byte, never NULL.
func bytesPtr(b []byte) *C.uint8_t {
	if len(b) == 0 {
		return (*C.uint8_t)(unsafe.Pointer(&zeroByte))
	}
	return (*C.uint8_t)(unsafe.Pointer(unsafe.SliceData(b)))
}

var zeroByte byte

var installLogOnce sync.Once

// installCoreLog routes the core's log records to KrakenD's logger (once per process).
func installCoreLog() {
	installLogOnce.Do(func() {
		C.topicgate_install_log(coreLogMaxLevel)
	})
}

func coreVersion() string {
	return C.GoString(C.tg_version())
}
