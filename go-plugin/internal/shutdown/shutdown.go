// Package shutdown is the plugin's graceful shutdown (docs/design.md "Shutdown"): it learns of the
// gateway's shutdown from the context KrakenD hands the plugin factories (cancelled on SIGINT and
// SIGTERM), tells streams to stop reading, waits for the requests in flight, then flushes each
// publisher (bounded by its delivery timeout) and frees it once nothing uses it.
package shutdown

import (
	"context"
	"sync"
	"time"

	"github.com/topicgate/topicgate/go-plugin/internal/logging"
)

// Publisher is what the shutdown does with a publisher: flush it, then free it.
type Publisher interface {
	// Flush waits up to bound for every record queued on the publisher to be delivered; 200, or
	// another status and why.
	Flush(bound time.Duration) (status int, msg string)
	// Close frees the publisher; nothing may use it afterwards.
	Close()
}

type registered struct {
	p     Publisher
	bound time.Duration
}

// freeMargin: how long the last request waits beyond the flush bounds for the publishers to be
// freed (the core's pollers end within a second).
const freeMargin = 3 * time.Second

var (
	mu       sync.Mutex
	idle     = sync.NewCond(&mu)
	active   int  // requests inside Enter/Leave
	begun    bool // the shutdown began
	closed   bool // publishers are being freed: no request may use them
	pubs     []registered
	stopping = make(chan struct{}) // closed when the shutdown begins
	finished = make(chan struct{}) // closed when every publisher is flushed and freed
	watched  = map[context.Context]bool{}
)

// Watch begins the shutdown when ctx ends. Both factories pass KrakenD's context: KrakenD CE
// cancels it on SIGINT and SIGTERM, just before its HTTP server's Shutdown.
func Watch(ctx context.Context) {
	if ctx == nil || ctx.Done() == nil {
		return
	}
	mu.Lock()
	defer mu.Unlock()
	if !watched[ctx] { // the client factory runs once per backend, with the same context
		watched[ctx] = true
		context.AfterFunc(ctx, Begin)
	}
}

// Add has p flushed (for up to bound) and freed at the shutdown.
func Add(p Publisher, bound time.Duration) {
	mu.Lock()
	defer mu.Unlock()
	pubs = append(pubs, registered{p, bound})
}

// Stopping is closed when the shutdown begins: streams stop reading then.
func Stopping() <-chan struct{} { return stopping }

// Enter registers a request that uses a publisher; false when the publishers are being freed
// (the request must not start). Each true is followed by one Leave.
func Enter() bool {
	mu.Lock()
	defer mu.Unlock()
	if closed {
		return false
	}
	active++
	return true
}

// deadlineMargin: the last request stops waiting for the flush this long before its deadline, so
// that its answer reaches KrakenD before the endpoint's timeout replaces it.
const deadlineMargin = 250 * time.Millisecond

// Leave ends a request registered with Enter; ctx is the request's. The last request to end during
// the shutdown waits for the publishers' flush (until its deadline, less a margin, at most): until
// its handler returns, the server's Shutdown waits for it, so the process does not exit before the
// flush.
func Leave(ctx context.Context) {
	mu.Lock()
	active--
	last := begun && active == 0
	var bound time.Duration
	if last {
		idle.Broadcast()
		bound = flushBounds() + freeMargin
	}
	mu.Unlock()
	if !last {
		return
	}
	if d, ok := ctx.Deadline(); ok {
		bound = min(bound, time.Until(d)-deadlineMargin)
	}
	if bound <= 0 {
		return
	}
	t := time.NewTimer(bound)
	defer t.Stop()
	select {
	case <-finished:
	case <-ctx.Done():
	case <-t.C:
	}
}

// Begin begins the shutdown (once): streams stop reading; when no request is in flight any more,
// every publisher is flushed and freed.
func Begin() {
	mu.Lock()
	if begun {
		mu.Unlock()
		return
	}
	begun = true
	n := active
	close(stopping)
	mu.Unlock()
	logging.Info("shutting down: streams stop reading;", n, "requests in flight")
	go drain()
}

// flushBounds is the sum of the publishers' flush bounds; mu held.
func flushBounds() time.Duration {
	var d time.Duration
	for _, r := range pubs {
		d += r.bound
	}
	return d
}

func drain() {
	mu.Lock()
	for active > 0 {
		idle.Wait()
	}
	closed = true
	list := pubs
	pubs = nil
	mu.Unlock()
	for _, r := range list {
		start := time.Now()
		if st, msg := r.p.Flush(r.bound); st != 200 {
			logging.Warning("shutdown: the publisher's flush did not complete within", r.bound, "(delivery_timeout_ms):", msg)
		} else {
			logging.Info("shutdown: publisher flushed in", time.Since(start).Round(time.Millisecond))
		}
		r.p.Close()
	}
	close(finished)
}
