//go:build cgo && !topicgate_nocore

package core

/*
#include <stdlib.h>
#include "topicgate.h"
*/
import "C"

import (
	"context"
	"runtime"
	"time"
)

// PublishBatch: every record goes through tg_batch_add_with_schema (checked and encoded, nothing produced yet);
// then tg_batch_commit (atomic: one transaction, a blocking call) or tg_batch_start (queued; the
// outcomes come through the poller like single records, under consecutive tokens).
func (c *corePublisher) PublishBatch(ctx context.Context, topic string, records []Record, mode BatchMode) ([]Outcome, bool) {
	out := make([]Outcome, len(records))
	var errbuf [errBufLen]C.char
	var b *C.tg_batch
	if st := C.tg_batch_new(stringPtr(topic), C.size_t(len(topic)), &b, &errbuf[0], C.size_t(len(errbuf))); int(st) != 200 {
		msg := C.GoString(&errbuf[0])
		for i := range out {
			out[i] = Outcome{Status: int(st), Msg: msg}
		}
		return out, false
	}
	defer C.tg_batch_free(b)

	valid := make([]int, 0, len(records)) // indexes of the records the batch holds, in order
	for i, r := range records {
		var pin runtime.Pinner
		a := recordArgs(r, &pin)
		st := C.tg_batch_add_with_schema(c.p, b, bytesPtr(r.Value), C.size_t(len(r.Value)),
			a.valueSchema, C.size_t(len(r.ValueSchema)), a.headers, a.nHeaders,
			a.key, C.size_t(len(r.Key)), a.partition, a.timestamp, &errbuf[0], C.size_t(len(errbuf)))
		pin.Unpin()
		if int(st) != 200 {
			out[i] = Outcome{Status: int(st), Msg: KeyMessage(C.GoString(&errbuf[0]), r.KeyLabel)}
			continue
		}
		valid = append(valid, i)
	}
	allValid := len(valid) == len(records)
	if len(valid) == 0 || (!allValid && !mode.Partial) {
		return out, allValid
	}
	if mode.Atomic {
		c.commit(ctx, b, valid, out)
	} else {
		c.start(ctx, b, valid, out)
	}
	return out, allValid
}

// commit writes the batch as one transaction; every valid record gets the transaction's outcome.
// The core answers by the request's deadline (less the early-504 margin, so KrakenD still takes the
// answer), else by transactions.timeout_ms; a client that leaves cannot cut a commit short.
func (c *corePublisher) commit(ctx context.Context, b *C.tg_batch, valid []int, out []Outcome) {
	var errbuf [errBufLen]C.char
	ds := make([]C.tg_delivery, len(valid))
	timeout := C.int64_t(-1)
	if d, ok := answerWithin(ctx); ok {
		timeout = C.int64_t(max(d, 0).Milliseconds())
	}
	started := time.Now()
	st := C.tg_batch_commit(c.p, b, timeout, &ds[0], C.size_t(len(ds)), &errbuf[0], C.size_t(len(errbuf)))
	msg := C.GoString(&errbuf[0])
	for j, i := range valid {
		if int(st) == 200 {
			d := Delivery{Partition: int32(ds[j].partition), Offset: int64(ds[j].offset), Acked: time.Since(started)}
			// A transaction answers deliveries only; the rest was fixed when the record was added.
			var vf, kf C.uint8_t
			var vl, kl C.size_t
			if C.tg_batch_encoded(b, C.size_t(j), &vf, &kf, &vl, &kl) == 200 {
				d.ValueFormat, d.KeyFormat, d.Bytes, d.KeyBytes = formatName(int(vf)), formatName(int(kf)), int(vl), int(kl)
			}
			out[i] = Outcome{Status: 200, Delivery: d}
		} else {
			out[i] = Outcome{Status: int(st), Msg: msg}
		}
	}
}

// start queues the batch and waits for each record's outcome, as Publish waits for one.
func (c *corePublisher) start(ctx context.Context, b *C.tg_batch, valid []int, out []Outcome) {
	done := make(chan Outcome, len(valid))
	c.mu.Lock()
	first := c.next + 1
	c.next += uint64(len(valid))
	for j := range valid {
		c.waiting[first+uint64(j)] = done
	}
	c.mu.Unlock()

	var errbuf [errBufLen]C.char
	var queued C.size_t
	st := C.tg_batch_start(c.p, b, C.uint64_t(first), &queued, &errbuf[0], C.size_t(len(errbuf)))
	if int(st) != 200 { // the records from `queued` on were not queued: that is their answer
		msg := C.GoString(&errbuf[0])
		for j := int(queued); j < len(valid); j++ {
			c.take(first + uint64(j))
			out[valid[j]] = Outcome{Status: int(st), Msg: msg}
		}
	}
	n := int(queued)
	started := time.Now()
	var early <-chan time.Time
	if d, ok := answerWithin(ctx); ok {
		t := time.NewTimer(d)
		defer t.Stop()
		early = t.C
	}
	answered := 0
	put := func(o Outcome) {
		o.Delivery.Acked = time.Since(started)
		out[valid[o.Token-first]] = o
		answered++
	}
	for answered < n {
		select {
		case o := <-done:
			put(o)
			continue
		case <-ctx.Done():
		case <-early:
		}
		// Out of time: records still waiting get a 504; those the poller already took are on their way.
		late := 0
		for j := range n {
			if out[valid[j]].Status == 0 {
				if c.take(first+uint64(j)) != nil {
					out[valid[j]] = Outcome{Status: 504, Msg: endedMessage(ctx)}
					answered++
				} else {
					late++
				}
			}
		}
		for range late {
			put(<-done)
		}
		return
	}
}
