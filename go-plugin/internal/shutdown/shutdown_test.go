package shutdown

import (
	"context"
	"sync"
	"testing"
	"time"
)

// reset gives a test a process that has not begun shutting down.
func reset() {
	mu.Lock()
	defer mu.Unlock()
	active, begun, closed, pubs = 0, false, false, nil
	stopping, finished = make(chan struct{}), make(chan struct{})
	watched = map[context.Context]bool{}
}

type fakePub struct {
	mu      sync.Mutex
	events  []string
	flushed time.Duration
}

func (p *fakePub) Flush(bound time.Duration) (int, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.events, p.flushed = append(p.events, "flush"), bound
	return 200, ""
}

func (p *fakePub) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.events = append(p.events, "close")
}

func (p *fakePub) seen() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.events...)
}

func TestTheContextsEndBeginsTheShutdown(t *testing.T) {
	reset()
	ctx, cancel := context.WithCancel(context.Background())
	Watch(ctx)
	Watch(ctx) // both factories watch the same context: one shutdown
	select {
	case <-Stopping():
		t.Fatal("stopping before the context ended")
	default:
	}
	cancel()
	select {
	case <-Stopping():
	case <-time.After(5 * time.Second):
		t.Fatal("the context ended but the shutdown did not begin")
	}
	<-finished // nothing to free: the drain ends at once
}

// The publisher is flushed and freed only once no request uses it, and the last request waits for
// that (the server's Shutdown waits for it, so the process does not exit first).
func TestPublishersAreFlushedAndFreedAfterTheLastRequest(t *testing.T) {
	reset()
	p := &fakePub{}
	Add(p, 3*time.Second)
	if !Enter() || !Enter() {
		t.Fatal("a request was refused before the shutdown")
	}
	Begin()
	Leave(context.Background())
	time.Sleep(50 * time.Millisecond) // a drain that did not wait would have freed it by now
	if got := p.seen(); len(got) != 0 {
		t.Fatalf("the publisher was %v while a request still used it", got)
	}
	if !Enter() { // a request on a kept-alive connection during the shutdown is still served
		t.Fatal("a request was refused while the publisher is alive")
	}
	Leave(context.Background())
	Leave(context.Background()) // the last: returns once the publisher is flushed and freed
	if got := p.seen(); len(got) != 2 || got[0] != "flush" || got[1] != "close" {
		t.Fatalf("the publisher saw %v, want flush then close", got)
	}
	if p.flushed != 3*time.Second {
		t.Fatalf("flushed for %v, want its bound 3s", p.flushed)
	}
	if Enter() {
		t.Fatal("a request was let in after the publisher was freed")
	}
}

func TestWithoutRequestsTheShutdownFreesAtOnce(t *testing.T) {
	reset()
	p := &fakePub{}
	Add(p, time.Second)
	Begin()
	select {
	case <-finished:
	case <-time.After(5 * time.Second):
		t.Fatal("the publishers were not freed")
	}
	if got := p.seen(); len(got) != 2 {
		t.Fatalf("the publisher saw %v", got)
	}
}

// blockedPub's flush lasts until release is closed.
type blockedPub struct {
	fakePub
	release chan struct{}
}

func (p *blockedPub) Flush(time.Duration) (int, string) {
	<-p.release
	return 504, "not delivered"
}

// The last request does not wait past its deadline (less the margin) for a flush that goes on:
// its answer must reach KrakenD before the endpoint's timeout replaces it. (A Leave that ignored
// the deadline would wait for the hour-long bound and the test would time out.)
func TestTheLastRequestWaitsNoLongerThanItsDeadline(t *testing.T) {
	reset()
	p := &blockedPub{release: make(chan struct{})}
	Add(p, time.Hour)
	Enter()
	Begin()
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	Leave(ctx)
	select {
	case <-finished:
		t.Fatal("the flush finished while it was blocked")
	default:
	}
	close(p.release)
	<-finished
}
