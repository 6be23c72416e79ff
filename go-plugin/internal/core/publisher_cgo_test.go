//go:build cgo && !topicgate_nocore

package core

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// These tests call the real core through cgo; they need no broker.

func TestCoreVersion(t *testing.T) {
	if v := Version(); v == "" {
		t.Fatal("empty core version")
	}
}

func TestCoreRejectsBadConfig(t *testing.T) {
	for _, cfg := range []string{`not json`, `{"kafka":1}`} {
		p, status, msg := NewPublisher([]byte(cfg))
		if p != nil || status != 400 || strings.TrimSpace(msg) == "" {
			t.Errorf("%s: got %v %d %q, want a 400 with a message", cfg, p, status, msg)
		}
	}
}

func TestCoreAcceptsExampleConfig(t *testing.T) {
	// The core config of krakend/krakend.json; creating a producer does not connect.
	cfg := `{"kafka":{"bootstrap_servers":"127.0.0.1:1","properties":{}},"registry":{"kind":"file","directory":"../../../krakend/schemas"},` +
		`"schema":{"name_template":"{topic}","version":"latest","message_type":"first"},"value_format":"raw","delivery_timeout_ms":1000}`
	p, status, msg := NewPublisher([]byte(cfg))
	if status != 200 || p == nil {
		t.Fatalf("status %d: %s", status, msg)
	}
	// A body that does not match the schema is a 400 before anything is produced.
	st, _, msg := p.Publish(context.Background(), "MyTopic", []byte(`{"no_such_field":1}`), nil, nil)
	if st != 400 || !strings.Contains(msg, "no_such_field") {
		t.Fatalf("schema mismatch: %d %q", st, msg)
	}
}

// Many requests at once through the completion queue: each gets its own outcome, valid ones
// 200 with partition/offset -1 (dry run), invalid ones the schema error, none mixed up.
func TestCoreCompletionsReachTheirRequests(t *testing.T) {
	cfg := `{"kafka":{"bootstrap_servers":"127.0.0.1:1"},"registry":{"kind":"file","directory":"../../../krakend/schemas"},"dry_run":true}`
	p, status, msg := NewPublisher([]byte(cfg))
	if status != 200 {
		t.Fatalf("status %d: %s", status, msg)
	}
	valid, err := os.ReadFile("../../../bench/payload.json")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 400)
	for i := range 400 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%2 == 0 {
				st, d, msg := p.Publish(context.Background(), "MyTopic", valid, nil, []byte("k"))
				if st != 200 || d.Partition != -1 || d.Offset != -1 || msg != "" {
					errs <- fmt.Sprintf("valid %d: %d %+v %q", i, st, d, msg)
				}
				return
			}
			st, _, msg := p.Publish(context.Background(), "MyTopic", []byte(fmt.Sprintf(`{"no_such_field_%d":1}`, i)), nil, nil)
			if st != 400 || !strings.Contains(msg, fmt.Sprintf("no_such_field_%d", i)) {
				errs <- fmt.Sprintf("invalid %d: %d %q", i, st, msg)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	c := p.(*corePublisher)
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.waiting) != 0 {
		t.Errorf("%d requests still registered after all were answered", len(c.waiting))
	}
}

// A request whose context ends stops waiting with a 504, although the core would answer only
// at the delivery timeout (20 s here: nothing listens on the broker port), and is unregistered.
func TestCorePublishStopsWaitingWhenTheRequestEnds(t *testing.T) {
	cfg := `{"kafka":{"bootstrap_servers":"127.0.0.1:1"},"registry":{"kind":"file","directory":"../../../krakend/schemas"},"delivery_timeout_ms":20000}`
	p, status, msg := NewPublisher([]byte(cfg))
	if status != 200 {
		t.Fatalf("status %d: %s", status, msg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	st, _, msg := p.Publish(ctx, "MyTopic", []byte(`{"sample_message":"x"}`), nil, nil)
	if st != 504 || !strings.Contains(msg, "endpoint timeout") || !strings.Contains(msg, "may still be written") {
		t.Fatalf("got %d %q, want a 504 saying the deadline is near", st, msg)
	}
	// The answer comes before the deadline (a 30 ms margin for 300 ms), not at it.
	if ctx.Err() != nil {
		t.Fatalf("answered after the request's deadline: KrakenD would have dropped the 504")
	}
	c := p.(*corePublisher)
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.waiting) != 0 {
		t.Errorf("%d requests still registered after their context ended", len(c.waiting))
	}
}

// At the shutdown a publisher is flushed, then freed: a queued record that the broker (absent
// here) never takes makes the flush end at its bound with a 504; Close then ends the poller and
// frees the core's publisher, and a second Close does nothing.
func TestPublisherFlushesWithinItsBoundAndCloses(t *testing.T) {
	cfg := `{"kafka":{"bootstrap_servers":"127.0.0.1:1","properties":{}},"registry":{"kind":"file","directory":"../../../krakend/schemas"},` +
		`"schema":{"name_template":"{topic}","version":"latest","message_type":"first"},"value_format":"raw","delivery_timeout_ms":5000}`
	p, status, msg := NewPublisher([]byte(cfg))
	if status != 200 {
		t.Fatalf("status %d: %s", status, msg)
	}
	c := p.(*corePublisher)
	if st, msg := c.Flush(time.Second); st != 200 {
		t.Fatalf("nothing queued: flush %d %s", st, msg)
	}
	s := p.OpenStream("MyTopic", 1)
	if _, st, msg := s.Start(Record{Value: []byte(`{"sample_message":"x"}`)}); st != 200 {
		t.Fatalf("start: %d %s", st, msg)
	}
	if st, msg := c.Flush(200 * time.Millisecond); st != 504 || msg == "" {
		t.Fatalf("flush with a record the broker never takes: %d %q, want a 504", st, msg)
	}
	done := make(chan struct{})
	go func() { c.Close(); c.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}
}
