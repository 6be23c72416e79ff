//go:build cgo && !topicgate_nocore

package core

/*
#include "topicgate.h"
*/
import "C"

// coreStream queues a stream's records as Publish does (corePublisher.queue), and receives
// their outcomes from the publisher's poller on one buffered channel.
type coreStream struct {
	c     *corePublisher
	topic string
	done  chan Outcome
	// errbuf is per stream: Start fills it through queue (tg_publish_start).
	errbuf [errBufLen]C.char
}

// OpenStream gives a stream whose outcomes are buffered for capacity records.
func (c *corePublisher) OpenStream(topic string, capacity int) Stream {
	return &coreStream{c: c, topic: topic, done: make(chan Outcome, capacity)}
}

func (s *coreStream) Outcomes() <-chan Outcome { return s.done }

func (s *coreStream) Start(r Record) (uint64, int, string) {
	token, st := s.c.queue(s.topic, r, s.done, &s.errbuf)
	if st != 200 {
		return token, st, KeyMessage(C.GoString(&s.errbuf[0]), r.KeyLabel)
	}
	return token, 200, ""
}
