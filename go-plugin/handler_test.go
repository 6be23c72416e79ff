package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// fakePublisher records calls and answers with a fixed status.
type fakePublisher struct {
	mu      sync.Mutex
	status  int
	msg     string
	calls   int
	topic   string
	body    string
	headers string
	key     []byte
	written []batchRecord // records of batches, in order
	mode    batchMode     // of the last batch that was written
}

func (f *fakePublisher) publish(_ context.Context, topic string, body, headersJSON, key []byte) (int, delivery, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	f.topic, f.body, f.headers, f.key = topic, string(body), string(headersJSON), key
	if f.status != 200 {
		return f.status, delivery{}, f.msg
	}
	return 200, delivery{Partition: 3, Offset: 42}, ""
}

// publishBatch checks records as the fake schema would (a JSON object with a string
// "sample_message") and writes the valid ones at consecutive offsets of partition 0, or answers
// every one with f.status when that is not 200.
func (f *fakePublisher) publishBatch(_ context.Context, topic string, records []batchRecord, mode batchMode) ([]outcome, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]outcome, len(records))
	valid := 0
	for i, r := range records {
		var v struct {
			S *string `json:"sample_message"`
		}
		if json.Unmarshal(r.value, &v) != nil || v.S == nil {
			out[i] = outcome{status: 400, msg: "sample_message: missing or not a string"}
			continue
		}
		valid++
	}
	if valid < len(records) && !mode.partial {
		return out, false
	}
	f.topic, f.mode = topic, mode
	for i, r := range records {
		if out[i].status != 0 {
			continue
		}
		if f.status != 200 {
			out[i] = outcome{status: f.status, msg: f.msg}
			continue
		}
		f.written = append(f.written, r)
		out[i] = outcome{status: 200, d: delivery{Partition: 0, Offset: int64(len(f.written) - 1)}}
	}
	return out, valid == len(records)
}

// openStream's records are checked like publishBatch's; the valid ones are written at once (or
// answered f.status) and their outcomes are on the channel before start returns.
func (f *fakePublisher) openStream(topic string, capacity int) recordStream {
	return &fakeStream{f: f, topic: topic, done: make(chan outcome, capacity)}
}

type fakeStream struct {
	f     *fakePublisher
	topic string
	next  uint64
	done  chan outcome
}

func (s *fakeStream) outcomes() <-chan outcome { return s.done }

func (s *fakeStream) start(r batchRecord) (uint64, int, string) {
	s.next++
	out, _ := s.f.publishBatch(context.Background(), s.topic, []batchRecord{r}, batchMode{})
	o := out[0]
	if o.status == 400 {
		return s.next, o.status, o.msg
	}
	o.token = s.next
	s.done <- o
	return s.next, 200, ""
}

func serverCfg(t *testing.T) *pluginConfig {
	t.Helper()
	cfg, err := parseServerConfig([]byte(`{"core":{"k":"v"},"max_body_bytes":64,
		"routes":[{"path_prefix":"/v1/event/","topics":["MyTopic"]}]}`), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

var nextHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Next", "yes")
	w.WriteHeader(http.StatusTeapot)
})

type reply struct {
	status int
	header http.Header
	body   map[string]interface{}
	raw    string
}

func do(t *testing.T, h http.Handler, method, path, ct, body string, hdr map[string]string) reply {
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
	r := reply{status: res.StatusCode, header: res.Header, raw: string(raw)}
	if strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &r.body); err != nil {
			t.Fatalf("bad JSON answer %q: %v", raw, err)
		}
	}
	return r
}

func TestServerPublishes(t *testing.T) {
	f := &fakePublisher{status: 200}
	h := newServerHandler(serverCfg(t), f, nextHandler)
	r := do(t, h, "POST", "/v1/event/MyTopic", "application/json; charset=utf-8", `{"sample_message":"hi"}`,
		map[string]string{"message-key": "k1", "message-headers": "a=1, b_c = x y"})
	if r.status != 200 {
		t.Fatalf("status %d %s", r.status, r.raw)
	}
	if r.raw != `{"statusCode":"200","message":"ok","topic":"MyTopic","partition":3,"offset":42}` {
		t.Fatalf("body %s", r.raw)
	}
	if f.topic != "MyTopic" || f.body != `{"sample_message":"hi"}` || f.headers != `{"a":"1","b_c":"x y"}` || string(f.key) != "k1" {
		t.Fatalf("publisher got %+v", f)
	}
	// no key header = nil key
	do(t, h, "POST", "/v1/event/MyTopic", "application/json", `{}`, nil)
	if f.key != nil || f.headers != "" {
		t.Fatalf("key %v headers %q", f.key, f.headers)
	}
}

func TestServerPassesOtherPaths(t *testing.T) {
	f := &fakePublisher{status: 200}
	h := newServerHandler(serverCfg(t), f, nextHandler)
	for _, p := range []string{"/", "/v1/other", "/v1/event"} {
		r := do(t, h, "GET", p, "", "", nil)
		if r.status != http.StatusTeapot || r.header.Get("X-Next") != "yes" {
			t.Fatalf("%s: not passed on (%d)", p, r.status)
		}
	}
	if f.calls != 0 {
		t.Fatal("publisher called")
	}
}

func TestContractErrors(t *testing.T) {
	f := &fakePublisher{status: 200}
	h := newServerHandler(serverCfg(t), f, nextHandler)
	big := `{"x":"` + strings.Repeat("a", 64) + `"}`
	cases := []struct {
		name, method, path, ct, body string
		hdr                          map[string]string
		status                       int
		msg                          string
	}{
		{"unknown topic", "POST", "/v1/event/Other", "application/json", `{}`, nil, 404, `"Other" is not exposed`},
		{"wrong case", "POST", "/v1/event/mytopic", "application/json", `{}`, nil, 404, "not exposed"},
		{"nested", "POST", "/v1/event/a/MyTopic", "application/json", `{}`, nil, 404, "no topic is exposed"},
		{"GET", "GET", "/v1/event/MyTopic", "", "", nil, 405, "use POST"},
		{"no content type", "POST", "/v1/event/MyTopic", "", `{}`, nil, 415, "missing Content-Type"},
		{"text", "POST", "/v1/event/MyTopic", "text/plain", `{}`, nil, 415, "not supported"},
		{"latin1", "POST", "/v1/event/MyTopic", "application/json; charset=latin1", `{}`, nil, 415, "charset"},
		{"too big", "POST", "/v1/event/MyTopic", "application/json", big, nil, 413, "limit of 64 bytes"},
		{"empty", "POST", "/v1/event/MyTopic", "application/json", "", nil, 400, "empty"},
		{"bad headers", "POST", "/v1/event/MyTopic", "application/json", `{}`, map[string]string{"message-headers": "a=1,b"}, 400, `entry "b" has no '='`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := do(t, h, c.method, c.path, c.ct, c.body, c.hdr)
			if r.status != c.status || r.body["statusCode"] != itoa(c.status) {
				t.Fatalf("status %d body %s", r.status, r.raw)
			}
			if msg, _ := r.body["message"].(string); !strings.Contains(msg, c.msg) {
				t.Fatalf("message %q lacks %q", msg, c.msg)
			}
			if len(r.body) != 2 {
				t.Fatalf("error body has extra fields: %s", r.raw)
			}
		})
	}
	if f.calls != 0 {
		t.Fatalf("publisher called %d times", f.calls)
	}
	r := do(t, h, "PUT", "/v1/event/MyTopic", "application/json", `{}`, nil)
	if r.header.Get("Allow") != "POST" {
		t.Fatal("405 without Allow")
	}
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

func TestCoreStatusesMapOneToOne(t *testing.T) {
	for _, st := range []int{400, 404, 413, 500, 503, 504, 299} {
		f := &fakePublisher{status: st, msg: "field x: bad"}
		h := newServerHandler(serverCfg(t), f, nextHandler)
		r := do(t, h, "POST", "/v1/event/MyTopic", "application/json", `{"x":1}`, nil)
		want := st
		if st == 299 {
			want = 500
		}
		if r.status != want || r.body["statusCode"] != itoa(want) {
			t.Fatalf("core %d: got %d %s", st, r.status, r.raw)
		}
		if msg, _ := r.body["message"].(string); !strings.Contains(msg, "field x: bad") {
			t.Fatalf("core message lost: %s", r.raw)
		}
		if got := r.header.Get("Retry-After"); (st == 503) != (got != "") {
			t.Fatalf("core %d: Retry-After %q", st, got)
		}
	}
}

func TestClientHandler(t *testing.T) {
	cfg, err := parseClientConfig([]byte(`{"core":{},"topic_pattern":"My.*","max_body_bytes":10}`), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	f := &fakePublisher{status: 200}
	h := newClientHandler(cfg, f)
	if r := do(t, h, "POST", "/v1/event/MyTopic", "application/json", `{"a":1}`, nil); r.status != 200 || r.body["topic"] != "MyTopic" {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	if r := do(t, h, "POST", "/v1/event/Other", "application/json", `{"a":1}`, nil); r.status != 404 {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	if r := do(t, h, "POST", "/MyTopic", "application/json", `{"a":"0123456789"}`, nil); r.status != 413 {
		t.Fatalf("%d %s", r.status, r.raw)
	}
}

// TestRegisterers drives the exported symbols the way KrakenD's loaders do.
func TestRegisterers(t *testing.T) {
	created := 0
	fake := &fakePublisher{status: 200}
	old := newCorePublisher
	newCorePublisher = func(cfg []byte) (publisher, int, string) {
		if strings.Contains(string(cfg), "refuse") {
			return nil, 400, "bad config"
		}
		created++
		return fake, 200, ""
	}
	defer func() { newCorePublisher = old }()

	var sym interface{} = &HandlerRegisterer
	type serverReg interface {
		RegisterHandlers(func(string, func(context.Context, map[string]interface{}, http.Handler) (http.Handler, error)))
	}
	type clientReg interface {
		RegisterClients(func(string, func(context.Context, map[string]interface{}) (http.Handler, error)))
	}
	type loggerReg interface{ RegisterLogger(interface{}) }
	sr, ok := sym.(serverReg)
	if !ok {
		t.Fatal("HandlerRegisterer is not a server registerer")
	}
	var csym interface{} = &ClientRegisterer
	cr, ok := csym.(clientReg)
	if !ok {
		t.Fatal("ClientRegisterer is not a client registerer")
	}
	if _, ok := sym.(loggerReg); !ok {
		t.Fatal("no RegisterLogger")
	}
	var sf func(context.Context, map[string]interface{}, http.Handler) (http.Handler, error)
	sr.RegisterHandlers(func(name string, f func(context.Context, map[string]interface{}, http.Handler) (http.Handler, error)) {
		if name != "topicgate" {
			t.Fatalf("server name %q", name)
		}
		sf = f
	})
	var cf func(context.Context, map[string]interface{}) (http.Handler, error)
	cr.RegisterClients(func(name string, f func(context.Context, map[string]interface{}) (http.Handler, error)) {
		if name != "topicgate" {
			t.Fatalf("client name %q", name)
		}
		cf = f
	})

	var extra map[string]interface{}
	_ = json.Unmarshal([]byte(`{"name":["topicgate"],"topicgate":{"core":{"shared":"TEST-REG","b":1},
		"routes":[{"path_prefix":"/v1/event/","topics":["MyTopic"]}]}}`), &extra)
	sh, err := sf(context.Background(), extra, nextHandler)
	if err != nil {
		t.Fatal(err)
	}
	var cextra map[string]interface{}
	// same core config, keys in another order: must share the publisher
	_ = json.Unmarshal([]byte(`{"name":"topicgate","topicgate":{"core":{"b":1,"shared":"TEST-REG"},"topics":["MyTopic"]}}`), &cextra)
	ch, err := cf(context.Background(), cextra)
	if err != nil {
		t.Fatal(err)
	}
	if created != 1 {
		t.Fatalf("%d publishers created for one core config", created)
	}
	if r := do(t, sh, "POST", "/v1/event/MyTopic", "application/json", `{}`, nil); r.status != 200 {
		t.Fatalf("server %d", r.status)
	}
	if r := do(t, ch, "POST", "/x/MyTopic", "application/json", `{}`, nil); r.status != 200 {
		t.Fatalf("client %d", r.status)
	}
	_ = json.Unmarshal([]byte(`{"name":"topicgate","topicgate":{"core":{"refuse":true},"topics":["MyTopic"]}}`), &cextra)
	if _, err := cf(context.Background(), cextra); err == nil || !strings.Contains(err.Error(), "bad config") {
		t.Fatalf("refused core config: %v", err)
	}
}

// recLogger is a KrakenD-shaped logger.
type recLogger struct {
	mu    sync.Mutex
	lines []string
}

func (l *recLogger) add(level string, v ...interface{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, _ := json.Marshal(v)
	l.lines = append(l.lines, level+" "+string(b))
}
func (l *recLogger) Debug(v ...interface{})    { l.add("DEBUG", v...) }
func (l *recLogger) Info(v ...interface{})     { l.add("INFO", v...) }
func (l *recLogger) Warning(v ...interface{})  { l.add("WARNING", v...) }
func (l *recLogger) Error(v ...interface{})    { l.add("ERROR", v...) }
func (l *recLogger) Critical(v ...interface{}) { l.add("CRITICAL", v...) }
func (l *recLogger) Fatal(v ...interface{})    { l.add("FATAL", v...) }

func TestLoggerRouting(t *testing.T) {
	l := &recLogger{}
	HandlerRegisterer.RegisterLogger(l)
	HandlerRegisterer.RegisterLogger("not a logger") // ignored
	coreLog(1, "broken")
	coreLog(2, "careful")
	coreLog(3, "hello")
	coreLog(4, "detail")
	l.mu.Lock()
	defer l.mu.Unlock()
	joined := strings.Join(l.lines, "\n")
	for _, want := range []string{`ERROR ["[PLUGIN: topicgate] [core]","broken"]`, `WARNING ["[PLUGIN: topicgate] [core]","careful"]`,
		`INFO ["[PLUGIN: topicgate] [core]","hello"]`, `DEBUG ["[PLUGIN: topicgate] [core]","detail"]`} {
		if !strings.Contains(joined, want) {
			t.Errorf("missing %s in\n%s", want, joined)
		}
	}
}

func TestDryRunAnswerSaysNothingWasPublished(t *testing.T) {
	w := httptest.NewRecorder()
	writeOK(w, "MyTopic", delivery{Partition: -1, Offset: -1})
	want := `{"statusCode":"200","message":"valid; not published (dry_run)","topic":"MyTopic","partition":-1,"offset":-1}`
	if got := w.Body.String(); got != want {
		t.Fatalf("body %s", got)
	}
}
