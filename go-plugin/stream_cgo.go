//go:build cgo && !topicgate_nocore

package main

/*
#include "topicgate.h"
*/
import "C"

// coreStream queues a stream's records as publish does (corePublisher.queue), and receives
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
	token, st := s.c.queue(s.topic, r, s.done, &s.errbuf)
	if st != 200 {
		return token, st, C.GoString(&s.errbuf[0])
	}
	return token, 200, ""
}
