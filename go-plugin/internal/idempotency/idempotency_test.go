package idempotency

import (
	"container/list"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/topicgate/topicgate/go-plugin/internal/config"
	"github.com/topicgate/topicgate/go-plugin/internal/core"
	"github.com/topicgate/topicgate/go-plugin/internal/request"
)

func route(maxKeys int) *config.Route {
	return &config.Route{Idempotency: config.Idempotency{Header: "Idempotency-Key", Window: time.Hour, MaxKeys: maxKeys}}
}

// counter is a serve func that reads the body, answers status with a body naming the call, and
// counts its calls; it records the idempotency record header it would write.
type counter struct {
	calls  atomic.Int32
	status int
	header atomic.Value
}

func (c *counter) serve(w http.ResponseWriter, r *http.Request) {
	n := c.calls.Add(1)
	io.ReadAll(r.Body)
	h := request.WithIdempotencyHeader(r, nil, 0)
	if len(h) == 1 {
		c.header.Store(h[0])
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(c.status)
	io.WriteString(w, `{"call":`+string(rune('0'+n))+`}`)
}

func post(rc *config.Route, c *counter, key, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, "/v1/event/T", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	if key != "" {
		r.Header.Set("Idempotency-Key", key)
	}
	w := httptest.NewRecorder()
	Serve(w, r, rc, "T", 1<<20, 1, noFinder{}, c.serve)
	return w
}

func TestARepeatGetsTheFirstAnswerAndWritesNothing(t *testing.T) {
	rc, c := route(10), &counter{status: 200}
	first := post(rc, c, `"k-1"`, `{"a":1}`)
	again := post(rc, c, "k-1", `{"a":1}`) // the draft's quoted form and a bare token are the same key
	if c.calls.Load() != 1 || again.Code != 200 || again.Body.String() != first.Body.String() {
		t.Fatalf("calls %d, first %q, again %d %q", c.calls.Load(), first.Body, again.Code, again.Body)
	}
	if again.Header().Get(ReplayedHeader) != "true" || first.Header().Get(ReplayedHeader) != "" {
		t.Fatalf("replayed header: first %q again %q", first.Header().Get(ReplayedHeader), again.Header().Get(ReplayedHeader))
	}
	if h := c.header.Load().(core.Header); h.Name != "Idempotency-Key" || string(h.Value) != "k-1" {
		t.Fatalf("record header %+v", h)
	}
}

func TestADifferentRequestWithTheSameKeyIs422(t *testing.T) {
	rc, c := route(10), &counter{status: 200}
	post(rc, c, "k", `{"a":1}`)
	w := post(rc, c, "k", `{"a":2}`)
	if w.Code != http.StatusUnprocessableEntity || c.calls.Load() != 1 || !strings.Contains(w.Body.String(), "different request") {
		t.Fatalf("%d %q calls %d", w.Code, w.Body, c.calls.Load())
	}
	// Another topic, or no key at all, is another request.
	if w := post(rc, c, "", `{"a":2}`); w.Code != 200 || c.calls.Load() != 2 {
		t.Fatalf("without a key: %d calls %d", w.Code, c.calls.Load())
	}
}

func TestAFailedFirstRequestIsNotKept(t *testing.T) {
	rc, c := route(10), &counter{status: 503}
	post(rc, c, "k", `{}`)
	c.status = 200
	if w := post(rc, c, "k", `{}`); w.Code != 200 || c.calls.Load() != 2 || w.Header().Get(ReplayedHeader) != "" {
		t.Fatalf("%d calls %d", w.Code, c.calls.Load())
	}
}

func TestARepeatWaitsForTheFirstInFlight(t *testing.T) {
	rc := route(10)
	release, entered := make(chan struct{}), make(chan struct{})
	var calls atomic.Int32
	serve := func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		io.ReadAll(r.Body)
		close(entered)
		<-release
		w.WriteHeader(200)
		io.WriteString(w, "first")
	}
	var wg sync.WaitGroup
	answers := make([]*httptest.ResponseRecorder, 2)
	for i := range answers {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if i == 1 {
				<-entered
			}
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader("{}"))
			r.Header.Set("Idempotency-Key", "k")
			answers[i] = httptest.NewRecorder()
			Serve(answers[i], r, rc, "T", 1<<20, 1, noFinder{}, serve)
		}(i)
	}
	<-entered
	deadline := time.Now().Add(5 * time.Second) // a hang guard, not a timing assertion
	for storeFor(rc).waiting.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	if calls.Load() != 1 || answers[1].Body.String() != "first" || answers[1].Header().Get(ReplayedHeader) != "true" {
		t.Fatalf("calls %d, repeat %d %q", calls.Load(), answers[1].Code, answers[1].Body)
	}
}

func TestKeysExpireAfterTheWindowAndAreBounded(t *testing.T) {
	t0 := time.Unix(1e9, 0)
	clock := t0
	now = func() time.Time { return clock }
	defer func() { now = time.Now }()
	rc, c := route(3), &counter{status: 200}
	post(rc, c, "k", `{}`)
	clock = t0.Add(time.Hour - time.Second)
	post(rc, c, "k", `{}`)
	if c.calls.Load() != 1 {
		t.Fatalf("replayed within the window: calls %d", c.calls.Load())
	}
	clock = t0.Add(time.Hour)
	post(rc, c, "k", `{}`)
	if c.calls.Load() != 2 {
		t.Fatalf("written again after the window: calls %d", c.calls.Load())
	}
	for _, k := range []string{"a", "b", "c", "d"} {
		post(rc, c, k, `{}`)
	}
	if n := len(storeFor(rc).entries); n != 3 {
		t.Fatalf("%d keys kept, bound 3", n)
	}
	if post(rc, c, "d", `{}`); c.calls.Load() != 6 { // "d" is kept: replayed
		t.Fatalf("calls %d", c.calls.Load())
	}
	if post(rc, c, "k", `{}`); c.calls.Load() != 7 { // "k" was the oldest: evicted, written again
		t.Fatalf("calls %d", c.calls.Load())
	}
}

func TestBadKeysAre400sNamingTheHeader(t *testing.T) {
	rc, c := route(10), &counter{status: 200}
	for _, k := range []string{`""`, strings.Repeat("x", MaxKeyLen+1), "a b", "é"} {
		w := post(rc, c, k, `{}`)
		if w.Code != 400 || !strings.Contains(w.Body.String(), "Idempotency-Key") {
			t.Fatalf("key %q: %d %q", k, w.Code, w.Body)
		}
	}
	if c.calls.Load() != 0 {
		t.Fatalf("calls %d", c.calls.Load())
	}
}

// noFinder finds nothing: these tests never leave a key unknown.
type noFinder struct{}

func (noFinder) FindByHeader(string, int64, string, []byte, time.Duration) (bool, core.Delivery, int, string) {
	return false, core.Delivery{}, 200, ""
}

// A key settled unknown (a 504 that may have been written) is taken over by its next request,
// which gets the attempt to search for; it expires with the window like an answer.
func TestAnUnknownKeyIsTakenOverWithItsAttempt(t *testing.T) {
	s := &store{entries: map[string]*entry{}, order: list.New(), window: time.Minute, max: 10}
	e, _, first, prior := s.begin("k")
	if !first || prior != nil {
		t.Fatalf("first request: first %v prior %v", first, prior)
	}
	unk := &attempt{at: time.Unix(100, 0)}
	s.finish(e, nil, unk)
	e2, a, first, prior := s.begin("k")
	if !first || a != nil || prior != unk || e2 == e {
		t.Fatalf("retry: first %v answer %v prior %v", first, a, prior)
	}
	if _, _, first, _ := s.begin("k"); first {
		t.Fatal("a third request while the retry is in flight must wait for it")
	}
	s.finish(e2, nil, unk)
	old := now
	defer func() { now = old }()
	now = func() time.Time { return old().Add(2 * time.Minute) }
	if _, _, first, prior := s.begin("k"); !first || prior != nil {
		t.Fatalf("after the window: first %v prior %v", first, prior)
	}
}
