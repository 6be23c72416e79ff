package batch_test

import (
	"strings"
	"testing"

	"github.com/topicgate/topicgate/go-plugin/internal/config"
	"github.com/topicgate/topicgate/go-plugin/internal/plugintest"
	"github.com/topicgate/topicgate/go-plugin/internal/router"
)

func batchHandler(t *testing.T, batch string) (*plugintest.FakePublisher, func(body string, hdr map[string]string) plugintest.Reply) {
	t.Helper()
	f, h := plugintest.BatchServer(t, batch)
	return f, func(body string, hdr map[string]string) plugintest.Reply {
		return plugintest.Do(t, h, "POST", "/v1/event/MyTopic", "application/x-ndjson", body, hdr)
	}
}

func TestBatchWritesEveryLineInOrderWithTheRequestsKeyAndHeaders(t *testing.T) {
	f, post := batchHandler(t, `{}`)
	r := post("{\"sample_message\":\"a\"}\n\n{\"sample_message\":\"b\"}\r\n{\"sample_message\":\"c\"}", map[string]string{"message-key": "k", "message-headers": "h=1"})
	want := `{"statusCode":"200","message":"ok","topic":"MyTopic","records":[` +
		`{"line":1,"statusCode":"200","partition":0,"offset":0},{"line":3,"statusCode":"200","partition":0,"offset":1},` +
		`{"line":4,"statusCode":"200","partition":0,"offset":2}]}`
	if r.Status != 200 || r.Raw != want {
		t.Fatalf("%d %s", r.Status, r.Raw)
	}
	if len(f.Written) != 3 || string(f.Written[1].Value) != `{"sample_message":"b"}` {
		t.Fatalf("written %+v", f.Written)
	}
	for _, w := range f.Written {
		if string(w.Key) != "k" || plugintest.HeaderText(w.Headers) != "h=1" {
			t.Fatalf("key %q headers %s", w.Key, plugintest.HeaderText(w.Headers))
		}
	}
}

func TestBatchWithAnInvalidLineIsRefusedWhole(t *testing.T) {
	f, post := batchHandler(t, `{}`)
	r := post("{\"sample_message\":\"a\"}\n{\"other\":1}\n{\"sample_message\":\"c\"}\n[]\n", nil)
	if r.Status != 400 || len(f.Written) != 0 {
		t.Fatalf("%d %s, written %d", r.Status, r.Raw, len(f.Written))
	}
	msg := r.Body["message"].(string)
	if !strings.HasPrefix(msg, "line 2: sample_message") || !strings.Contains(msg, "nothing written (2 of 4 records invalid)") {
		t.Fatalf("message %q", msg)
	}
	errs := r.Body["errors"].([]interface{})
	if len(errs) != 2 || errs[1].(map[string]interface{})["line"].(float64) != 4 {
		t.Fatalf("errors %v", errs)
	}
}

func TestPartialBatchWritesTheValidLinesAndAnswersMultiStatus(t *testing.T) {
	f, post := batchHandler(t, `{"partial":true}`)
	r := post("{\"sample_message\":\"a\"}\n{\"other\":1}\n{\"sample_message\":\"c\"}\n", nil)
	if r.Status != 207 || len(f.Written) != 2 || !f.Mode.Partial || f.Mode.Atomic {
		t.Fatalf("%d %s, written %d, mode %+v", r.Status, r.Raw, len(f.Written), f.Mode)
	}
	recs := r.Body["records"].([]interface{})
	second := recs[1].(map[string]interface{})
	if second["statusCode"] != "400" || !strings.HasPrefix(second["message"].(string), "line 2: ") || r.Body["message"] != "2 of 3 records written" {
		t.Fatalf("%s", r.Raw)
	}
}

func TestEnvelopeLinesCarryTheirOwnKeyAndHeaders(t *testing.T) {
	f, post := batchHandler(t, `{"envelope":true,"atomic":true,"max_line_bytes":128}`)
	r := post(`{"value":{"sample_message":"a"},"key":"o","headers":{"z":"1","x":"","z":"2"}}`+"\n"+`{"value":{"sample_message":"b"}}`,
		map[string]string{"message-key": "req", "message-headers": "h=1"})
	if r.Status != 200 || len(f.Written) != 2 || !f.Mode.Atomic {
		t.Fatalf("%d %s", r.Status, r.Raw)
	}
	// An envelope's headers are written in the line's order, duplicate names kept.
	if w := f.Written[0]; string(w.Key) != "o" || plugintest.HeaderText(w.Headers) != "z=1,x=,z=2" || string(w.Value) != `{"sample_message":"a"}` {
		t.Fatalf("first %q %s %s", w.Key, plugintest.HeaderText(w.Headers), w.Value)
	}
	if w := f.Written[1]; string(w.Key) != "req" || plugintest.HeaderText(w.Headers) != "h=1" {
		t.Fatalf("second %q %s", w.Key, plugintest.HeaderText(w.Headers))
	}
	for body, want := range map[string]string{
		`{"key":"k"}`:                        "line 1: envelope: value: missing",
		`{"value":{},"extra":1}`:             `line 1: envelope: json: unknown field "extra"`,
		`{"value":{},"headers":{"a":1}}`:     "line 1: envelope: json: cannot unmarshal number",
		`{"value":{"sample_message":"a"}} x`: "line 1: envelope: text after the envelope object",
	} {
		r := post(body, nil)
		if r.Status != 400 || !strings.HasPrefix(r.Body["message"].(string), want) {
			t.Errorf("%s: %d %s", body, r.Status, r.Raw)
		}
	}
}

func TestBatchLimits(t *testing.T) {
	_, post := batchHandler(t, `{"max_records":2,"max_body_bytes":200,"max_line_bytes":30}`)
	cases := []struct {
		body   string
		status int
		msg    string
	}{
		{"{\"sample_message\":\"a\"}\n{\"sample_message\":\"b\"}\n{\"sample_message\":\"c\"}", 413, "more than 2 records"},
		{strings.Repeat(" ", 201), 413, "batch limit of 200 bytes"},
		{"{\"sample_message\":\"a\"}\n{\"sample_message\":\"" + strings.Repeat("x", 20) + "\"}", 413, "line 2: the line is 41 bytes, larger than the limit of 30 bytes"},
		{"\n \n", 400, "no records"},
	}
	for _, c := range cases {
		r := post(c.body, nil)
		if r.Status != c.status || !strings.Contains(r.Body["message"].(string), c.msg) {
			t.Errorf("%q: %d %s", c.body, r.Status, r.Raw)
		}
	}
	_, off := batchHandler(t, `{"max_records":0}`)
	if r := off(`{"sample_message":"a"}`, nil); r.Status != 415 || !strings.Contains(r.Raw, "batches") {
		t.Errorf("batches off: %d %s", r.Status, r.Raw)
	}
}

func TestBatchThatTheBrokerRefusesWholeAnswersItsStatus(t *testing.T) {
	f, post := batchHandler(t, `{}`)
	f.Status, f.Msg = 503, "Kafka broker unreachable"
	r := post("{\"sample_message\":\"a\"}\n{\"sample_message\":\"b\"}", nil)
	if r.Status != 503 || r.Header.Get("Retry-After") == "" || !strings.HasPrefix(r.Body["message"].(string), "no record acknowledged: Kafka broker unreachable") {
		t.Fatalf("%d %v %s", r.Status, r.Header, r.Raw)
	}
	if len(r.Body["records"].([]interface{})) != 2 {
		t.Fatalf("%s", r.Raw)
	}
}

// keySchemaPost posts NDJSON to a server whose core encodes keys with a key schema (or not).
func keySchemaPost(t *testing.T, keySchema bool) (*plugintest.FakePublisher, func(body string, hdr map[string]string) plugintest.Reply) {
	t.Helper()
	core := `{"k":"v"}`
	if keySchema {
		core = `{"k":"v","key_schema":{}}`
	}
	cfg, err := config.ParseServer([]byte(`{"core":`+core+`,"routes":[{"path_prefix":"/v1/event/","topics":["MyTopic"],"batch":{"envelope":true}}]}`), plugintest.Env(nil))
	if err != nil {
		t.Fatal(err)
	}
	f := &plugintest.FakePublisher{Status: 200}
	h := router.NewServer(cfg, f, plugintest.NextHandler)
	return f, func(body string, hdr map[string]string) plugintest.Reply {
		return plugintest.Do(t, h, "POST", "/v1/event/MyTopic", "application/x-ndjson", body, hdr)
	}
}

func TestEnvelopeKeysAreJSONValuesWithAKeySchema(t *testing.T) {
	f, post := keySchemaPost(t, true)
	lines := []string{
		`{"value":{"sample_message":"a"},"key":{"id": 7}}`,
		`{"value":{"sample_message":"b"},"key":"abc"}`,
		`{"value":{"sample_message":"c"},"key":null}`,
		`{"value":{"sample_message":"d"}}`,
	}
	r := post(strings.Join(lines, "\n"), map[string]string{"message-key": `{"id":1}`})
	if r.Status != 200 || len(f.Written) != 4 {
		t.Fatalf("%d %s", r.Status, r.Raw)
	}
	// A line's own key is its JSON text as sent (a string with its quotes), errors say "key"; the
	// others take the request's header, and errors about it name the header.
	for i, want := range []struct{ key, label string }{{`{"id": 7}`, ""}, {`"abc"`, ""}, {`{"id":1}`, "message-key"}, {`{"id":1}`, "message-key"}} {
		if w := f.Written[i]; string(w.Key) != want.key || w.KeyLabel != want.label {
			t.Errorf("line %d: key %q label %q, want %q %q", i+1, w.Key, w.KeyLabel, want.key, want.label)
		}
	}
}

func TestEnvelopeKeysAreStringsWithoutAKeySchema(t *testing.T) {
	f, post := keySchemaPost(t, false)
	r := post(`{"value":{"sample_message":"a"},"key":"o"}`+"\n"+`{"value":{"sample_message":"b"},"key":{"id":7}}`, nil)
	if r.Status != 400 || len(f.Written) != 0 {
		t.Fatalf("%d %s", r.Status, r.Raw)
	}
	if msg := r.Body["message"].(string); !strings.HasPrefix(msg, "line 2: envelope: key: must be a string") {
		t.Fatalf("message %q", msg)
	}
	r = post(`{"value":{"sample_message":"a"},"key":"o"}`, nil)
	if r.Status != 200 || string(f.Written[0].Key) != "o" {
		t.Fatalf("%d %s %+v", r.Status, r.Raw, f.Written)
	}
}
