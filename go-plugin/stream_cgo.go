//go:build cgo && !topicgate_nocore

package main

/*
#include "topicgate.h"
*/
import "C"

// coreStream queues a stream's records with tg_publish_start, one cgo call each, and receives
// their outcomes from the publisher's poller on one buffered channel.
type coreStream struct {
	c     *corePublisher
	topic string
	done  chan outcome
	// errbuf is per stream, not on start's stack: a cgo argument would move it to the heap per call.
	errbuf [errBufLen]C.char
}

func (c *corePublisher) openStream(topic string, capacity int) recordStream {
	return &coreStream{c: c, topic: topic, done: make(chan outcome, capacity)}
}

func (s *coreStream) outcomes() <-chan outcome { return s.done }

func (s *coreStream) start(r batchRecord) (uint64, int, string) {
	c := s.c
	c.mu.Lock()
	c.next++
	token := c.next
	c.waiting[token] = s.done
	c.mu.Unlock()

	var keyPtr, hdrPtr *C.uint8_t // NULL = none
	if r.key != nil {
		keyPtr = bytesPtr(r.key)
	}
	if len(r.headersJSON) > 0 {
		hdrPtr = bytesPtr(r.headersJSON)
	}
	st := C.tg_publish_start(c.p,
		stringPtr(s.topic), C.size_t(len(s.topic)),
		bytesPtr(r.value), C.size_t(len(r.value)),
		hdrPtr, C.size_t(len(r.headersJSON)),
		keyPtr, C.size_t(len(r.key)),
		C.uint64_t(token), &s.errbuf[0], C.size_t(len(s.errbuf)))
	if int(st) != 200 {
		c.take(token) // not queued: no completion will come
		return token, int(st), C.GoString(&s.errbuf[0])
	}
	return token, 200, ""
}
