package metrics

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/topicgate/topicgate/go-plugin/internal/budget"
)

// series gives the series of the metric family name in reg: each one's label values (in
// label order) and its gauge value.
func series(t *testing.T, reg prometheus.Gatherer, name string) (labels [][]string, values []float64) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, l.GetValue())
			}
			labels = append(labels, ls)
			values = append(values, m.GetGauge().GetValue()+m.GetCounter().GetValue())
		}
	}
	return labels, values
}

func topicCount() int {
	n := 0
	topics.Range(func(any, any) bool { n++; return true })
	return n
}

// Client-chosen topic names (a topic_pattern route) must not grow the series without bound.
func TestTopicSeriesCapped(t *testing.T) {
	Enable()
	List("listed-topic")
	for i := range 10000 {
		For(fmt.Sprintf("orders-%d", i)).Answered(200, time.Now())
	}
	For("listed-topic").Answered(200, time.Now())
	For("").Answered(404, time.Now())
	const extra = 3 // other, listed-topic, ""
	for _, name := range []string{"topicgate_requests_total", "topicgate_request_duration_seconds"} {
		ls, _ := series(t, registry, name)
		if len(ls) > topicCap+extra {
			t.Errorf("%s: %d series for 10000 topics, want at most %d", name, len(ls), topicCap+extra)
		}
		var sawOther, sawListed bool
		for _, l := range ls {
			switch l[len(l)-1] { // topic: labels sort by name
			case OtherTopic:
				sawOther = true
			case "listed-topic":
				sawListed = true
			}
		}
		if !sawOther || !sawListed {
			t.Errorf("%s: other series %v, listed topic's series %v; want both", name, sawOther, sawListed)
		}
	}
	// Memory stays flat: more new names keep no state.
	before := topicCount()
	for i := range 10000 {
		For(fmt.Sprintf("more-%d", i)).Answered(200, time.Now())
	}
	if after := topicCount(); after != before {
		t.Errorf("topics kept: %d, then %d after 10000 more names", before, after)
	}
	if ls, _ := series(t, registry, "topicgate_requests_total"); len(ls) > topicCap+extra {
		t.Errorf("requests_total: %d series after 20000 topics", len(ls))
	}
}

// Two core configs caching one schema name (one entry per cache key in the snapshot) must give
// one series per name, not a duplicate that fails the scrape.
func TestSchemaEntriesMerged(t *testing.T) {
	saved := coreMetricsJSON
	defer func() { coreMetricsJSON = saved }()
	coreMetricsJSON = func() []byte {
		return []byte(`{"schema":{"cached":[
			{"name":"orders-value","registry":"confluent","format":"avro","version":3,"age_seconds":40},
			{"name":"orders-value","registry":"confluent","format":"avro","version":5,"age_seconds":70},
			{"name":"users-value","registry":"file","format":"json","version":null,"age_seconds":2}]}}`)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(coreCollector{})
	want := map[string]map[string]float64{
		"topicgate_schema_version":     {"orders-value": 5, "users-value": 0},
		"topicgate_schema_age_seconds": {"orders-value": 40, "users-value": 2},
	}
	for name, values := range want {
		ls, vs := series(t, reg, name)
		if len(ls) != len(values) {
			t.Errorf("%s: %d series, want %d", name, len(ls), len(values))
		}
		for i, l := range ls {
			schema := l[2] // labels sort by name: format, registry, schema
			if got := vs[i]; got != values[schema] {
				t.Errorf("%s{schema=%q} = %v, want %v", name, schema, got, values[schema])
			}
		}
	}
}

// The schema counters carry the registry kind and format the core reports them by.
func TestSchemaCountersByRegistryAndFormat(t *testing.T) {
	saved := coreMetricsJSON
	defer func() { coreMetricsJSON = saved }()
	coreMetricsJSON = func() []byte {
		return []byte(`{"schema":{"by_source":[
			{"registry":"confluent","format":"avro","hits":7,"misses":1,"stale_served":2,"fetches":3,"fetch_failures":1},
			{"registry":"glue","format":"unknown","hits":0,"misses":4,"stale_served":0,"fetches":4,"fetch_failures":4}]}}`)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(coreCollector{})
	got := map[string]float64{}
	for _, name := range []string{"topicgate_schema_lookups_total", "topicgate_schema_registry_fetches_total",
		"topicgate_schema_registry_fetch_failures_total"} {
		ls, vs := series(t, reg, name)
		for i, l := range ls {
			got[name+fmt.Sprint(l)] = vs[i]
		}
	}
	want := map[string]float64{
		"topicgate_schema_lookups_total[avro hit confluent]":             7,
		"topicgate_schema_lookups_total[avro miss confluent]":            1,
		"topicgate_schema_lookups_total[avro stale_served confluent]":    2,
		"topicgate_schema_lookups_total[unknown miss glue]":              4,
		"topicgate_schema_lookups_total[unknown hit glue]":               0,
		"topicgate_schema_lookups_total[unknown stale_served glue]":      0,
		"topicgate_schema_registry_fetches_total[avro confluent]":        3,
		"topicgate_schema_registry_fetches_total[unknown glue]":          4,
		"topicgate_schema_registry_fetch_failures_total[avro confluent]": 1,
		"topicgate_schema_registry_fetch_failures_total[unknown glue]":   4,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
}

// Readiness says whether the gateway can answer publish requests: 200 while the broker is
// unreachable (reported in "broker" and topicgate_broker_up), 503 then only with requireBroker.
func TestReadyReportsTheBrokerAndRequiresItOnlyWhenAsked(t *testing.T) {
	saved := coreMetricsJSON
	defer func() { coreMetricsJSON = saved }()
	const down = `{"producers":[{"id":1,"bootstrap":"b-1:9092","stats_age_seconds":0.5,"brokers":1,"brokers_up":0},
		{"id":2,"bootstrap":"b-2:9092","stats_age_seconds":0.5,"brokers":1,"brokers_up":1}]}`
	const up = `{"producers":[{"id":1,"bootstrap":"b-1:9092","stats_age_seconds":0.5,"brokers":1,"brokers_up":1}]}`
	reg := prometheus.NewRegistry()
	reg.MustRegister(coreCollector{})
	missing := `"missing":["Kafka producer for b-1:9092: no broker connection up"]`
	for _, c := range []struct {
		snapshot      string
		requireBroker bool
		status        int
		body          string
		brokerUp      float64
	}{
		{down, false, 200, `{"ready":true,"broker":{"up":false,` + missing + `}}`, 0},
		{down, true, 503, `{"ready":false,"broker":{"up":false,` + missing + `},` + missing + `}`, 0},
		{up, false, 200, `{"ready":true,"broker":{"up":true}}`, 1},
		{up, true, 200, `{"ready":true,"broker":{"up":true}}`, 1},
		{`{}`, true, 200, `{"ready":true,"broker":{"up":true}}`, 1}, // no producer (dry run, no core)
		{`not json`, false, 503, "", 0},
	} {
		coreMetricsJSON = func() []byte { return []byte(c.snapshot) }
		w := httptest.NewRecorder()
		Ready(w, httptest.NewRequest(http.MethodGet, "/ready", nil), c.requireBroker)
		if w.Code != c.status || c.body != "" && w.Body.String() != c.body {
			t.Errorf("%.20s require %v: %d %s; want %d %s", c.snapshot, c.requireBroker, w.Code, w.Body, c.status, c.body)
		}
		if c.body == "" {
			continue
		}
		if _, vs := series(t, reg, "topicgate_broker_up"); len(vs) != 1 || vs[0] != c.brokerUp {
			t.Errorf("%.20s: topicgate_broker_up %v, want %v", c.snapshot, vs, c.brokerUp)
		}
	}
}

// The buffered-body gauges read the process's budget.
func TestBufferedBodyGauges(t *testing.T) {
	if budget.Bodies.Take(0, 1234) != budget.Taken {
		t.Fatal("take")
	}
	defer budget.Bodies.Give(1234)
	if _, vs := series(t, registry, "topicgate_buffered_body_bytes"); len(vs) != 1 || vs[0] != 1234 {
		t.Fatalf("topicgate_buffered_body_bytes %v, want [1234]", vs)
	}
	if _, vs := series(t, registry, "topicgate_buffered_body_bytes_limit"); len(vs) != 1 || vs[0] != budget.Default {
		t.Fatalf("topicgate_buffered_body_bytes_limit %v, want [%d]", vs, budget.Default)
	}
}
