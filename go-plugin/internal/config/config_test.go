package config

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

const coreJSON = `{"kafka":{"bootstrap_servers":"${KAFKA_BOOTSTRAP:-127.0.0.1:9092}","properties":{}},"value_format":"raw","delivery_timeout_ms":10000}`

// routeOf parses one server route beside coreJSON: the route or the config error.
func routeOf(route string) (Route, error) {
	cfg, err := ParseServer([]byte(`{"core":`+coreJSON+`,"routes":[`+route+`]}`), env(nil))
	if err != nil {
		return Route{}, err
	}
	return cfg.Routes[0], nil
}

func TestParseServerConfig(t *testing.T) {
	block := `{"core":` + coreJSON + `,"max_body_bytes":1000,"retry_after_seconds":2,
		"routes":[{"path_prefix":"/v1/event","topics":["MyTopic"]},{"path_prefix":"/v2/","topic_pattern":"orders-.*","max_body_bytes":10}]}`
	cfg, err := ParseServer([]byte(block), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Routes) != 2 || cfg.Routes[0].Prefix != "/v1/event/" || cfg.Routes[0].MaxBodyBytes != 1000 || cfg.Routes[1].MaxBodyBytes != 10 {
		t.Fatalf("routes: %+v", cfg.Routes)
	}
	if !cfg.Routes[1].Allows("orders-1") || cfg.Routes[1].Allows("xorders-1") || cfg.Routes[1].Allows("orders") {
		t.Fatal("pattern must match the whole name")
	}
	if cfg.RetryAfterSeconds != 2 {
		t.Fatal("retry_after_seconds ignored")
	}
	want := `{"delivery_timeout_ms":10000,"kafka":{"bootstrap_servers":"127.0.0.1:9092","properties":{}},"value_format":"raw"}`
	if string(cfg.Core) != want {
		t.Fatalf("core = %s", cfg.Core)
	}
	cfg2, err := ParseServer([]byte(block), env(map[string]string{"KAFKA_BOOTSTRAP": "10.0.0.1:9094"}))
	if err != nil || !strings.Contains(string(cfg2.Core), `"10.0.0.1:9094"`) {
		t.Fatalf("env override: %s %v", cfg2.Core, err)
	}
}

func TestParseClientConfig(t *testing.T) {
	cfg, err := ParseClient([]byte(`{"core":`+coreJSON+`,"topics":["MyTopic"]}`), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Routes) != 1 || cfg.Routes[0].Prefix != "" || cfg.Routes[0].MaxBodyBytes != defaultMaxBodyBytes || cfg.RetryAfterSeconds != DefaultRetryAfterSeconds {
		t.Fatalf("%+v", cfg)
	}
}

func TestConfigErrors(t *testing.T) {
	cases := map[string]struct {
		server bool
		block  string
		err    string
	}{
		"no core":          {true, `{"routes":[{"path_prefix":"/e/","topics":["T"]}]}`, `missing "core"`},
		"core not object":  {true, `{"core":[1],"routes":[{"path_prefix":"/e/","topics":["T"]}]}`, `must be a JSON object`},
		"unknown field":    {true, `{"core":{},"routez":[]}`, `unknown field`},
		"no routes":        {true, `{"core":{},"metrics_path":"","ready_path":""}`, `at least one entry`},
		"relative metrics": {true, `{"metrics_path":"metrics"}`, `must start with`},
		"client metrics":   {false, `{"core":{},"topics":["T"],"metrics_path":"/m"}`, `belong in the plugin/http-server block`},
		"route fields top": {true, `{"core":{},"topics":["T"],"routes":[{"path_prefix":"/e/","topics":["T"]}]}`, `inside "routes"`},
		"no prefix":        {true, `{"core":{},"routes":[{"topics":["T"]}]}`, `path_prefix is required`},
		"relative prefix":  {true, `{"core":{},"routes":[{"path_prefix":"e/","topics":["T"]}]}`, `must start with`},
		"dup prefix":       {true, `{"core":{},"routes":[{"path_prefix":"/e","topics":["T"]},{"path_prefix":"/e/","topics":["U"]}]}`, `used twice`},
		"no topics":        {true, `{"core":{},"routes":[{"path_prefix":"/e/"}]}`, `"topics" or give a "topic_pattern"`},
		"bad topic":        {true, `{"core":{},"routes":[{"path_prefix":"/e/","topics":["a b"]}]}`, `Kafka does not allow`},
		"bad pattern":      {true, `{"core":{},"routes":[{"path_prefix":"/e/","topic_pattern":"("}]}`, `topic_pattern`},
		"zero limit":       {true, `{"core":{},"max_body_bytes":0,"routes":[{"path_prefix":"/e/","topics":["T"]}]}`, `at least 1`},
		"unset env":        {true, `{"core":{"a":"${NOPE}"},"routes":[{"path_prefix":"/e/","topics":["T"]}]}`, `NOPE is not set`},
		"client routes":    {false, `{"core":{},"routes":[{"path_prefix":"/e/","topics":["T"]}]}`, `takes no "routes"`},
		"client no topics": {false, `{"core":{}}`, `"topics" or give a "topic_pattern"`},
		"bad retry":        {false, `{"core":{},"topics":["T"],"retry_after_seconds":0}`, `retry_after_seconds`},
		"zero budget":      {true, `{"routes":[],"max_buffered_body_bytes":0}`, `max_buffered_body_bytes must be at least 1`},
		"client budget":    {false, `{"core":{},"topics":["T"],"max_buffered_body_bytes":10}`, `belong in the plugin/http-server block`},
		"negative readers": {true, `{"routes":[],"max_gateway_readers":-1}`, `max_gateway_readers must be 1 to 1000000 (0 or absent: the default, 10000)`},
		"too many readers": {true, `{"routes":[],"max_gateway_readers":1000001}`, `max_gateway_readers must be 1 to 1000000`},
		"not a number":     {true, `{"routes":[],"max_gateway_readers":"5"}`, `max_gateway_readers`},
		"client readers":   {false, `{"core":{},"topics":["T"],"max_gateway_readers":10}`, `belong in the plugin/http-server block`},
		"client ready":     {false, `{"core":{},"topics":["T"],"ready_requires_broker":true}`, `belong in the plugin/http-server block`},
		"v3 no records":    {false, `{"core":{},"topics":["T"],"api":"confluent-v3","batch":{"max_records":0}}`, `max_records must be at least 1 on an "api": "confluent-v3" route`},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			var err error
			if c.server {
				_, err = ParseServer([]byte(c.block), env(nil))
			} else {
				_, err = ParseClient([]byte(c.block), env(nil))
			}
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Fatalf("error = %v, want it to contain %q", err, c.err)
			}
		})
	}
}

func TestExpandString(t *testing.T) {
	e := env(map[string]string{"A": "x", "E": ""})
	cases := map[string]string{
		"plain":         "plain",
		"${A}":          "x",
		"pre-${A}-post": "pre-x-post",
		"${B:-dflt}":    "dflt",
		"${E:-dflt}":    "dflt",
		"${A:-dflt}":    "x",
		"$${A}":         "${A}",
		"${A}${B:-}":    "x",
	}
	for in, want := range cases {
		got, err := expandString(in, e)
		if err != nil || got != want {
			t.Errorf("%q: got %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestPluginBlock(t *testing.T) {
	if _, err := Block(map[string]interface{}{"name": "topicgate"}); err == nil {
		t.Fatal("missing block accepted")
	}
	b, err := Block(map[string]interface{}{"topicgate": map[string]interface{}{"core": map[string]interface{}{}}})
	if err != nil || string(b) != `{"core":{}}` {
		t.Fatalf("%s %v", b, err)
	}
}

// Metrics and readiness are on by default in server mode; a block without routes serves only them
// and needs no core.
func TestServerMetricsAndReadyPaths(t *testing.T) {
	cfg, err := ParseServer([]byte(`{"core":`+coreJSON+`,"routes":[{"path_prefix":"/e/","topics":["T"]}]}`), env(nil))
	if err != nil || cfg.MetricsPath != defaultMetricsPath || cfg.ReadyPath != defaultReadyPath {
		t.Fatalf("defaults: %+v %v", cfg, err)
	}
	cfg, err = ParseServer([]byte(`{"routes":[],"metrics_path":"/m","ready_path":""}`), env(nil))
	if err != nil || cfg.Core != nil || cfg.MetricsPath != "/m" || cfg.ReadyPath != "" || len(cfg.Routes) != 0 {
		t.Fatalf("metrics only: %+v %v", cfg, err)
	}
}

// The process-wide settings: unset by default (the budget's default, readiness without the
// broker), taken from the server block when given.
func TestServerProcessSettings(t *testing.T) {
	cfg, err := ParseServer([]byte(`{"routes":[]}`), env(nil))
	if err != nil || cfg.MaxBufferedBodyBytes != 0 || cfg.ReadyRequiresBroker || cfg.MaxGatewayReaders != 0 {
		t.Fatalf("defaults: %+v %v", cfg, err)
	}
	cfg, err = ParseServer([]byte(`{"routes":[],"max_buffered_body_bytes":4096,"ready_requires_broker":true,"max_gateway_readers":7}`), env(nil))
	if err != nil || cfg.MaxBufferedBodyBytes != 4096 || !cfg.ReadyRequiresBroker || cfg.MaxGatewayReaders != 7 {
		t.Fatalf("set: %+v %v", cfg, err)
	}
	// 0 is the default, as when absent (the read package reads it so).
	if cfg, err = ParseServer([]byte(`{"routes":[],"max_gateway_readers":0}`), env(nil)); err != nil || cfg.MaxGatewayReaders != 0 {
		t.Fatalf("zero: %+v %v", cfg, err)
	}
}

// The one ${VAR} expansion: `$${` is a literal `${` (so `$$${` is a literal `$${`), and a value taken
// from the environment is not expanded again. The core takes the result as written
// (rust-core/tests/security.rs publishes with such a SCRAM password on the secure broker).
func TestCoreSecretExpandedOnce(t *testing.T) {
	block := `{"core":{"kafka":{"bootstrap_servers":"b:1","auth":{"mechanism":"scram-sha-512","username":"carol",` +
		`"password":"tg$${TG_NOT_A_VARIABLE}-$$${x}-${PW}"}}},"routes":[{"path_prefix":"/e/","topics":["T"]}]}`
	cfg, err := ParseServer([]byte(block), env(map[string]string{"PW": "h${TG_OTHER}-$${y}"}))
	if err != nil {
		t.Fatal(err)
	}
	var core struct {
		Kafka struct {
			Auth struct{ Password string }
		}
	}
	if err := json.Unmarshal(cfg.Core, &core); err != nil {
		t.Fatal(err)
	}
	if want := "tg${TG_NOT_A_VARIABLE}-$${x}-h${TG_OTHER}-$${y}"; core.Kafka.Auth.Password != want {
		t.Fatalf("password %q, want %q", core.Kafka.Auth.Password, want)
	}
}

func TestDeliveryTimeoutIsTheCoresOrItsDefault(t *testing.T) {
	for core, want := range map[string]time.Duration{
		`{"delivery_timeout_ms":2500,"kafka":{}}`: 2500 * time.Millisecond,
		`{"kafka":{}}`: 5 * time.Second,
	} {
		if got := DeliveryTimeout([]byte(core)); got != want {
			t.Errorf("%s: %v, want %v", core, got, want)
		}
	}
}

func TestKeySchemaIsReadFromTheCore(t *testing.T) {
	for core, want := range map[string]bool{
		`{"k":"v"}`:                   false,
		`{"k":"v","key_schema":null}`: false,
		`{"k":"v","key_schema":{}}`:   true,
		`{"k":"v","key_schema":{"name_template":"${X:-{topic}-key}"}}`: true,
	} {
		cfg, err := ParseClient([]byte(`{"core":`+core+`,"topics":["T"]}`), env(nil))
		if err != nil || cfg.KeySchema != want {
			t.Errorf("%s: KeySchema %v (%v), want %v", core, cfg != nil && cfg.KeySchema, err, want)
		}
	}
}
