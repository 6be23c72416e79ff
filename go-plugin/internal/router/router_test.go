package router_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/topicgate/topicgate/go-plugin/internal/config"
	"github.com/topicgate/topicgate/go-plugin/internal/plugintest"
	"github.com/topicgate/topicgate/go-plugin/internal/router"
)

func serverCfg(t *testing.T) *config.Plugin {
	t.Helper()
	cfg, err := config.ParseServer([]byte(`{"core":{"k":"v"},"max_body_bytes":64,
		"routes":[{"path_prefix":"/v1/event/","topics":["MyTopic"]}]}`), plugintest.Env(nil))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestServerPublishes(t *testing.T) {
	f := &plugintest.FakePublisher{Status: 200}
	h := router.NewServer(serverCfg(t), f, plugintest.NextHandler)
	r := plugintest.Do(t, h, "POST", "/v1/event/MyTopic", "application/json; charset=utf-8", `{"sample_message":"hi"}`,
		map[string]string{"message-key": "k1", "message-headers": "a=1, b_c = x y"})
	if r.Status != 200 {
		t.Fatalf("status %d %s", r.Status, r.Raw)
	}
	if r.Raw != `{"statusCode":"200","message":"ok","topic":"MyTopic","partition":3,"offset":42}` {
		t.Fatalf("body %s", r.Raw)
	}
	if f.Topic != "MyTopic" || f.Body != `{"sample_message":"hi"}` || f.Headers != "a=1,b_c=x y" || string(f.Key) != "k1" {
		t.Fatalf("publisher got %+v", f)
	}
	// no key header = nil key
	plugintest.Do(t, h, "POST", "/v1/event/MyTopic", "application/json", `{}`, nil)
	if f.Key != nil || f.Headers != "" {
		t.Fatalf("key %v headers %q", f.Key, f.Headers)
	}
}

func TestServerPassesOtherPaths(t *testing.T) {
	f := &plugintest.FakePublisher{Status: 200}
	h := router.NewServer(serverCfg(t), f, plugintest.NextHandler)
	for _, p := range []string{"/", "/v1/other", "/v1/event"} {
		r := plugintest.Do(t, h, "GET", p, "", "", nil)
		if r.Status != http.StatusTeapot || r.Header.Get("X-Next") != "yes" {
			t.Fatalf("%s: not passed on (%d)", p, r.Status)
		}
	}
	if f.Calls != 0 {
		t.Fatal("publisher called")
	}
}

func TestContractErrors(t *testing.T) {
	f := &plugintest.FakePublisher{Status: 200}
	h := router.NewServer(serverCfg(t), f, plugintest.NextHandler)
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
			r := plugintest.Do(t, h, c.method, c.path, c.ct, c.body, c.hdr)
			if r.Status != c.status || r.Body["statusCode"] != itoa(c.status) {
				t.Fatalf("status %d body %s", r.Status, r.Raw)
			}
			if msg, _ := r.Body["message"].(string); !strings.Contains(msg, c.msg) {
				t.Fatalf("message %q lacks %q", msg, c.msg)
			}
			if len(r.Body) != 2 {
				t.Fatalf("error body has extra fields: %s", r.Raw)
			}
		})
	}
	if f.Calls != 0 {
		t.Fatalf("publisher called %d times", f.Calls)
	}
	r := plugintest.Do(t, h, "PUT", "/v1/event/MyTopic", "application/json", `{}`, nil)
	if r.Header.Get("Allow") != "POST" {
		t.Fatal("405 without Allow")
	}
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

func TestCoreStatusesMapOneToOne(t *testing.T) {
	for _, st := range []int{400, 403, 404, 413, 500, 503, 504, 299} {
		f := &plugintest.FakePublisher{Status: st, Msg: "field x: bad"}
		h := router.NewServer(serverCfg(t), f, plugintest.NextHandler)
		r := plugintest.Do(t, h, "POST", "/v1/event/MyTopic", "application/json", `{"x":1}`, nil)
		want := st
		if st == 299 {
			want = 500
		}
		if r.Status != want || r.Body["statusCode"] != itoa(want) {
			t.Fatalf("core %d: got %d %s", st, r.Status, r.Raw)
		}
		if msg, _ := r.Body["message"].(string); !strings.Contains(msg, "field x: bad") {
			t.Fatalf("core message lost: %s", r.Raw)
		}
		if got := r.Header.Get("Retry-After"); (st == 503) != (got != "") {
			t.Fatalf("core %d: Retry-After %q", st, got)
		}
	}
}

func TestClientHandler(t *testing.T) {
	cfg, err := config.ParseClient([]byte(`{"core":{},"topic_pattern":"My.*","max_body_bytes":10}`), plugintest.Env(nil))
	if err != nil {
		t.Fatal(err)
	}
	f := &plugintest.FakePublisher{Status: 200}
	h := router.NewClient(cfg, f)
	if r := plugintest.Do(t, h, "POST", "/v1/event/MyTopic", "application/json", `{"a":1}`, nil); r.Status != 200 || r.Body["topic"] != "MyTopic" {
		t.Fatalf("%d %s", r.Status, r.Raw)
	}
	if r := plugintest.Do(t, h, "POST", "/v1/event/Other", "application/json", `{"a":1}`, nil); r.Status != 404 {
		t.Fatalf("%d %s", r.Status, r.Raw)
	}
	if r := plugintest.Do(t, h, "POST", "/MyTopic", "application/json", `{"a":"0123456789"}`, nil); r.Status != 413 {
		t.Fatalf("%d %s", r.Status, r.Raw)
	}
}
