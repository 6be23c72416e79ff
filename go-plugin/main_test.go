package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/topicgate/topicgate/go-plugin/internal/core"
	"github.com/topicgate/topicgate/go-plugin/internal/logging"
	"github.com/topicgate/topicgate/go-plugin/internal/logging/logtest"
	"github.com/topicgate/topicgate/go-plugin/internal/plugintest"
)

// TestRegisterers drives the exported symbols the way KrakenD's loaders do.
func TestRegisterers(t *testing.T) {
	created := 0
	fake := &plugintest.FakePublisher{Status: 200}
	old := newCorePublisher
	newCorePublisher = func(cfg []byte) (core.Publisher, int, string) {
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
	sh, err := sf(context.Background(), extra, plugintest.NextHandler)
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
	if r := plugintest.Do(t, sh, "POST", "/v1/event/MyTopic", "application/json", `{}`, nil); r.Status != 200 {
		t.Fatalf("server %d", r.Status)
	}
	if r := plugintest.Do(t, ch, "POST", "/x/MyTopic", "application/json", `{}`, nil); r.Status != 200 {
		t.Fatalf("client %d", r.Status)
	}
	_ = json.Unmarshal([]byte(`{"name":"topicgate","topicgate":{"core":{"refuse":true},"topics":["MyTopic"]}}`), &cextra)
	if _, err := cf(context.Background(), cextra); err == nil || !strings.Contains(err.Error(), "bad config") {
		t.Fatalf("refused core config: %v", err)
	}
}

func TestLoggerRouting(t *testing.T) {
	l := &logtest.Recorder{}
	HandlerRegisterer.RegisterLogger(l)
	HandlerRegisterer.RegisterLogger("not a logger") // ignored
	logging.Core(1, "broken")
	logging.Core(2, "careful")
	logging.Core(3, "hello")
	logging.Core(4, "detail")
	joined := strings.Join(l.Lines(), "\n")
	for _, want := range []string{`ERROR ["[PLUGIN: topicgate] [core]","broken"]`, `WARNING ["[PLUGIN: topicgate] [core]","careful"]`,
		`INFO ["[PLUGIN: topicgate] [core]","hello"]`, `DEBUG ["[PLUGIN: topicgate] [core]","detail"]`} {
		if !strings.Contains(joined, want) {
			t.Errorf("missing %s in\n%s", want, joined)
		}
	}
}
