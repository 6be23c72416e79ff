package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestExampleConfigIsValid(t *testing.T) {
	cfg, err := loadConfig("../krakend.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.Plugin.Pattern != "topicgate.so" || len(cfg.Endpoints) == 0 {
		t.Fatalf("unexpected example: %+v", cfg)
	}
}

func TestMatch(t *testing.T) {
	p := strings.Split("/v2/event/{topic}", "/")
	if m, ok := match(p, strings.Split("/v2/event/MyTopic", "/")); !ok || m["topic"] != "MyTopic" {
		t.Fatalf("%v %v", m, ok)
	}
	for _, path := range []string{"/v2/event/", "/v2/event/a/b", "/v2/other/a"} {
		if _, ok := match(p, strings.Split(path, "/")); ok {
			t.Errorf("%s matched", path)
		}
	}
}

// TestRouterLikeKrakenD checks what a client-plugin backend receives and that its
// answer passes through unchanged.
func TestRouterLikeKrakenD(t *testing.T) {
	var got *http.Request
	var gotBody string
	backend := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		b, _ := io.ReadAll(r.Body)
		gotBody = string(b)
		w.Header().Set("Retry-After", "5")
		w.WriteHeader(503)
		_, _ = w.Write([]byte(`{"statusCode":"503","message":"down"}`))
	})
	ep := endpointConfig{
		Endpoint: "/v2/event/{topic}", Method: "POST", OutputEncoding: "no-op",
		InputHeaders: []string{"Content-Type", "Message-Key"},
		Backend:      []backendConfig{{Host: []string{"http://topicgate"}, URLPattern: "/{topic}", Encoding: "no-op"}},
	}
	h := router([]route{{method: "POST", segs: strings.Split(ep.Endpoint, "/"), ep: ep, timeout: time.Minute, backend: backend}}, newLogger("ERROR"))
	req := httptest.NewRequest("POST", "/v2/event/MyTopic", strings.NewReader(`{"a":1}`)).WithContext(context.Background())
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Message-Key", "k")
	req.Header.Set("Message-Headers", "a=1") // not in input_headers: dropped, as KrakenD does
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != 503 || w.Header().Get("Retry-After") != "5" || w.Body.String() != `{"statusCode":"503","message":"down"}` {
		t.Fatalf("answer changed: %d %v %s", w.Code, w.Header(), w.Body)
	}
	if got.URL.Path != "/MyTopic" || got.Method != "POST" || gotBody != `{"a":1}` {
		t.Fatalf("backend got %s %s %q", got.Method, got.URL, gotBody)
	}
	if got.Header.Get("Content-Type") != "application/json" || got.Header.Get("Message-Key") != "k" || got.Header.Get("Message-Headers") != "" {
		t.Fatalf("headers %v", got.Header)
	}
	// Another method on a known path is 405 with Allow, an unknown path 404, as KrakenD answers.
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/v2/event/MyTopic", nil))
	if w.Code != 405 || w.Header().Get("Allow") != "POST" || w.Body.String() != "405 method not allowed" {
		t.Fatalf("GET: %d %v %q", w.Code, w.Header(), w.Body)
	}
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("POST", "/v2/other/MyTopic", nil))
	if w.Code != 404 || w.Body.String() != "404 page not found" {
		t.Fatalf("unknown path: %d %q", w.Code, w.Body)
	}
}

// The backend's context ends at the endpoint's timeout, as KrakenD's does. An answer the
// backend gives before the deadline passes through; one given after it is replaced by
// KrakenD's bare 500 with an empty body.
func TestRouterEndsTheBackendContextAtTheTimeout(t *testing.T) {
	const timeout = 200 * time.Millisecond
	backend := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		deadline, ok := r.Context().Deadline()
		if !ok {
			w.WriteHeader(599)
			return
		}
		if r.URL.Path == "/early" {
			time.Sleep(time.Until(deadline) - 100*time.Millisecond)
			w.WriteHeader(504)
			_, _ = w.Write([]byte("early"))
			return
		}
		<-r.Context().Done()
		w.WriteHeader(504)
		_, _ = w.Write([]byte(r.Context().Err().Error()))
	})
	ep := endpointConfig{Endpoint: "/e/{p}", Method: "POST", Backend: []backendConfig{{URLPattern: "/{p}"}}}
	h := router([]route{{method: "POST", segs: strings.Split(ep.Endpoint, "/"), ep: ep, timeout: timeout, backend: backend}}, newLogger("CRITICAL"))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("POST", "/e/early", strings.NewReader("{}")))
	if w.Code != 504 || w.Body.String() != "early" {
		t.Fatalf("got %d %q, want the backend's answer given before the deadline", w.Code, w.Body)
	}
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("POST", "/e/late", strings.NewReader("{}")))
	if w.Code != 500 || w.Body.Len() != 0 {
		t.Fatalf("got %d %q, want KrakenD's bare 500 for an answer after the deadline", w.Code, w.Body)
	}
}

// Timeouts as KrakenD reads them: the endpoint's, else the service's, else 2 s.
func TestEndpointTimeout(t *testing.T) {
	c := &kdConfig{}
	if d := c.endpointTimeout(endpointConfig{}); d != 2*time.Second {
		t.Errorf("default: %v", d)
	}
	c.Timeout = "15s"
	if d := c.endpointTimeout(endpointConfig{}); d != 15*time.Second {
		t.Errorf("service: %v", d)
	}
	if d := c.endpointTimeout(endpointConfig{Timeout: "500ms"}); d != 500*time.Millisecond {
		t.Errorf("endpoint: %v", d)
	}
	for _, bad := range []string{"15", "-1s", "0s"} {
		if _, err := parseTimeout(bad, time.Second); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// GET /__health answers as KrakenD's: 200, {"agents":{},"now":"…","status":"ok"}; the router
// settings move or disable it; other methods and paths go on to the endpoints.
func TestHealthLikeKrakenD(t *testing.T) {
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	var c kdConfig
	h := withHealth(c.healthPath(), next)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/__health", nil))
	var body struct {
		Agents map[string]string `json:"agents"`
		Now    string            `json:"now"`
		Status string            `json:"status"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || w.Code != 200 {
		t.Fatalf("%d %q: %v", w.Code, w.Body, err)
	}
	if body.Status != "ok" || body.Agents == nil || body.Now == "" || w.Header().Get("Content-Type") != "application/json; charset=utf-8" {
		t.Fatalf("%+v %v", body, w.Header())
	}
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/__healthz", nil))
	if w.Code != http.StatusTeapot {
		t.Errorf("GET /__healthz: %d, want it passed on", w.Code)
	}
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("HEAD", "/__health", nil))
	if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "GET" {
		t.Errorf("HEAD /__health: %d %v", w.Code, w.Header())
	}
	c.ExtraConfig = map[string]interface{}{nsRouter: map[string]interface{}{"health_path": "/up"}}
	if p := c.healthPath(); p != "/up" {
		t.Errorf("health_path: %q", p)
	}
	c.ExtraConfig = map[string]interface{}{nsRouterLura: map[string]interface{}{"disable_health": true}}
	if p := c.healthPath(); p != "" {
		t.Errorf("disable_health: %q", p)
	}
}

// The service's server timeouts are read as KrakenD reads them; none set means none.
func TestServerTimeouts(t *testing.T) {
	c := kdConfig{ReadHeaderTimeout: "5s", IdleTimeout: "1m", MaxHeaderBytes: 4096}
	srv, err := c.server()
	if err != nil {
		t.Fatal(err)
	}
	if srv.ReadHeaderTimeout != 5*time.Second || srv.IdleTimeout != time.Minute || srv.ReadTimeout != 0 || srv.WriteTimeout != 0 || srv.MaxHeaderBytes != 4096 {
		t.Fatalf("%+v", srv)
	}
	for _, bad := range []kdConfig{{ReadTimeout: "5"}, {WriteTimeout: "-1s"}, {IdleTimeout: "soon"}} {
		if _, err := bad.server(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}
