// Package plugintest holds what the packages' tests share: a fake publisher, a server over it,
// and a request helper. Only tests import it.
package plugintest

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/topicgate/topicgate/go-plugin/internal/config"
	"github.com/topicgate/topicgate/go-plugin/internal/core"
	"github.com/topicgate/topicgate/go-plugin/internal/router"
)

// HeaderText is record headers as "name=value" entries joined with ',', in order.
func HeaderText(hs []core.Header) string {
	parts := make([]string, len(hs))
	for i, h := range hs {
		parts[i] = h.Name + "=" + string(h.Value)
	}
	return strings.Join(parts, ",")
}

// FakePublisher records calls and answers with a fixed status.
type FakePublisher struct {
	mu      sync.Mutex
	Status  int
	Msg     string
	Calls   int
	Topic   string
	Body    string
	Headers string // the last publish's headers as HeaderText gives them
	Key     []byte
	Written []core.Record  // records of batches, in order
	Mode    core.BatchMode // of the last batch that was written
}

// Publish records the call and answers f.Status (200: partition 3, offset 42).
func (f *FakePublisher) Publish(_ context.Context, topic string, body []byte, headers []core.Header, key []byte) (int, core.Delivery, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Calls++
	f.Topic, f.Body, f.Headers, f.Key = topic, string(body), HeaderText(headers), key
	if f.Status != 200 {
		return f.Status, core.Delivery{}, f.Msg
	}
	return 200, core.Delivery{Partition: 3, Offset: 42}, ""
}

// PublishBatch checks records as the fake schema would (a JSON object with a string
// "sample_message") and writes the valid ones at consecutive offsets of partition 0, or answers
// every one with f.Status when that is not 200.
func (f *FakePublisher) PublishBatch(_ context.Context, topic string, records []core.Record, mode core.BatchMode) ([]core.Outcome, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]core.Outcome, len(records))
	valid := 0
	for i, r := range records {
		var v struct {
			S *string `json:"sample_message"`
		}
		if json.Unmarshal(r.Value, &v) != nil || v.S == nil {
			out[i] = core.Outcome{Status: 400, Msg: "sample_message: missing or not a string"}
			continue
		}
		valid++
	}
	if valid < len(records) && !mode.Partial {
		return out, false
	}
	f.Topic, f.Mode = topic, mode
	for i, r := range records {
		if out[i].Status != 0 {
			continue
		}
		if f.Status != 200 {
			out[i] = core.Outcome{Status: f.Status, Msg: f.Msg}
			continue
		}
		f.Written = append(f.Written, r)
		out[i] = core.Outcome{Status: 200, Delivery: core.Delivery{Partition: 0, Offset: int64(len(f.Written) - 1)}}
	}
	return out, valid == len(records)
}

// FindByHeader finds nothing: the fake keeps no headers to search.
func (f *FakePublisher) FindByHeader(string, int64, string, []byte, time.Duration) (bool, core.Delivery, int, string) {
	return false, core.Delivery{}, 200, ""
}

// OpenStream's records are checked like PublishBatch's; the valid ones are written at once (or
// answered f.Status) and their outcomes are on the channel before Start returns.
func (f *FakePublisher) OpenStream(topic string, capacity int) core.Stream {
	return &fakeStream{f: f, topic: topic, done: make(chan core.Outcome, capacity)}
}

type fakeStream struct {
	f     *FakePublisher
	topic string
	next  uint64
	done  chan core.Outcome
}

func (s *fakeStream) Outcomes() <-chan core.Outcome { return s.done }

func (s *fakeStream) Start(r core.Record) (uint64, int, string) {
	s.next++
	out, _ := s.f.PublishBatch(context.Background(), s.topic, []core.Record{r}, core.BatchMode{})
	o := out[0]
	if o.Status == 400 {
		return s.next, o.Status, o.Msg
	}
	o.Token = s.next
	s.done <- o
	return s.next, 200, ""
}

// Env is a getenv over m.
func Env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// NextHandler stands for KrakenD behind the plugin: 418 with X-Next: yes.
var NextHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Next", "yes")
	w.WriteHeader(http.StatusTeapot)
})

// Reply is an answer as Do read it; Body is set for a JSON answer.
type Reply struct {
	Status int
	Header http.Header
	Body   map[string]interface{}
	Raw    string
}

// Do sends a request to h: ct and hdr (either may be empty) as its headers.
func Do(t *testing.T, h http.Handler, method, path, ct, body string, hdr map[string]string) Reply {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	res := w.Result()
	raw, _ := io.ReadAll(res.Body)
	r := Reply{Status: res.StatusCode, Header: res.Header, Raw: string(raw)}
	if strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &r.Body); err != nil {
			t.Fatalf("bad JSON answer %q: %v", raw, err)
		}
	}
	return r
}

// BatchServer is the server handler of one route, /v1/event/ for MyTopic, with the given batch
// block, over a fake publisher.
func BatchServer(t *testing.T, batch string) (*FakePublisher, http.Handler) {
	t.Helper()
	cfg, err := config.ParseServer([]byte(`{"core":{"k":"v"},"max_body_bytes":64,
		"routes":[{"path_prefix":"/v1/event/","topics":["MyTopic"],"batch":`+batch+`}]}`), Env(nil))
	if err != nil {
		t.Fatal(err)
	}
	f := &FakePublisher{Status: 200}
	return f, router.NewServer(cfg, f, NextHandler)
}
