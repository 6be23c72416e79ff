//go:build cgo && !topicgate_nocore

package core

/*
#include <stdlib.h>
#include "topicgate.h"
*/
import "C"

import (
	"sync"
	"unsafe"
)

// maxIdleReaders is how many Kafka readers a publisher keeps connected between pages.
const maxIdleReaders = 16

// readers holds each publisher's reader pool (made on its first page, freed with the publisher).
var readers sync.Map // *corePublisher -> *C.tg_reader

// ReadPage reads a page of decoded records as request (JSON, see tg_read_page) says: the
// answer's JSON on 200, else the status and why. Blocks up to the request's wait_ms.
func ReadPage(pub Publisher, request []byte) (page []byte, status int, msg string) {
	c, ok := pub.(*corePublisher)
	if !ok || c.closing.Load() {
		return nil, 503, "the gateway is shutting down; nothing read"
	}
	r, st, msg := readerOf(c)
	if st != 200 {
		return nil, st, msg
	}
	var errbuf [errBufLen]C.char
	var out *C.uint8_t
	var outLen C.size_t
	st2 := C.tg_read_page(c.p, r, bytesPtr(request), C.size_t(len(request)), &out, &outLen, &errbuf[0], C.size_t(len(errbuf)))
	if st2 != C.TG_STATUS_OK {
		return nil, int(st2), C.GoString(&errbuf[0])
	}
	page = C.GoBytes(unsafe.Pointer(out), C.int(outLen))
	C.tg_read_free(out, outLen)
	return page, 200, ""
}

// readerOf is c's reader pool, made on first use.
func readerOf(c *corePublisher) (*C.tg_reader, int, string) {
	if r, ok := readers.Load(c); ok {
		return r.(*C.tg_reader), 200, ""
	}
	var errbuf [errBufLen]C.char
	var out *C.tg_reader
	st := C.tg_reader_new(c.p, C.size_t(maxIdleReaders), &out, &errbuf[0], C.size_t(len(errbuf)))
	if st != C.TG_STATUS_OK {
		return nil, int(st), C.GoString(&errbuf[0])
	}
	if prev, loaded := readers.LoadOrStore(c, out); loaded {
		C.tg_reader_free(out)
		return prev.(*C.tg_reader), 200, ""
	}
	return out, 200, ""
}

// freeReaders frees c's reader pool; called by Close once no request uses c.
func freeReaders(c *corePublisher) {
	if r, ok := readers.LoadAndDelete(c); ok {
		C.tg_reader_free(r.(*C.tg_reader))
	}
}

// Tail is a topic's tail read round after round by a consumer kept assigned between rounds
// (tg_tail_*): the reader of a follower that shares its rounds among event streams.
type Tail struct {
	c *corePublisher
	t *C.tg_tail
}

// OpenTail opens the tail of a topic at the positions request (a page request's JSON) gives.
func OpenTail(pub Publisher, request []byte) (*Tail, int, string) {
	c, ok := pub.(*corePublisher)
	if !ok || c.closing.Load() {
		return nil, 503, "the gateway is shutting down; nothing read"
	}
	var errbuf [errBufLen]C.char
	var out *C.tg_tail
	st := C.tg_tail_open(c.p, bytesPtr(request), C.size_t(len(request)), &out, &errbuf[0], C.size_t(len(errbuf)))
	if st != C.TG_STATUS_OK {
		return nil, int(st), C.GoString(&errbuf[0])
	}
	return &Tail{c: c, t: out}, 200, ""
}

// Round reads the records that arrive within waitMs (at most limit) as a page's JSON.
func (t *Tail) Round(waitMs, limit int) (page []byte, status int, msg string) {
	if t.c.closing.Load() {
		return nil, 503, "the gateway is shutting down; nothing read"
	}
	var errbuf [errBufLen]C.char
	var out *C.uint8_t
	var outLen C.size_t
	st := C.tg_tail_round(t.c.p, t.t, C.uint64_t(waitMs), C.size_t(limit), &out, &outLen, &errbuf[0], C.size_t(len(errbuf)))
	if st != C.TG_STATUS_OK {
		return nil, int(st), C.GoString(&errbuf[0])
	}
	page = C.GoBytes(unsafe.Pointer(out), C.int(outLen))
	C.tg_read_free(out, outLen)
	return page, 200, ""
}

// Close frees the tail and its consumer.
func (t *Tail) Close() {
	C.tg_tail_free(t.t)
	t.t = nil
}
