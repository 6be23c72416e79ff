package main

import (
	"net/http"
	"strings"
	"testing"
)

// batchServer is the server handler of one route, /v1/event/ for MyTopic, with the given batch
// block, over a fake publisher.
func batchServer(t *testing.T, batch string) (*fakePublisher, http.Handler) {
	t.Helper()
	cfg, err := parseServerConfig([]byte(`{"core":{"k":"v"},"max_body_bytes":64,
		"routes":[{"path_prefix":"/v1/event/","topics":["MyTopic"],"batch":`+batch+`}]}`), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	f := &fakePublisher{status: 200}
	return f, newServerHandler(cfg, f, nextHandler)
}

func batchHandler(t *testing.T, batch string) (*fakePublisher, func(body string, hdr map[string]string) reply) {
	t.Helper()
	f, h := batchServer(t, batch)
	return f, func(body string, hdr map[string]string) reply {
		return do(t, h, "POST", "/v1/event/MyTopic", "application/x-ndjson", body, hdr)
	}
}

func TestBatchWritesEveryLineInOrderWithTheRequestsKeyAndHeaders(t *testing.T) {
	f, post := batchHandler(t, `{}`)
	r := post("{\"sample_message\":\"a\"}\n\n{\"sample_message\":\"b\"}\r\n{\"sample_message\":\"c\"}", map[string]string{"message-key": "k", "message-headers": "h=1"})
	want := `{"statusCode":"200","message":"ok","topic":"MyTopic","records":[` +
		`{"line":1,"statusCode":"200","partition":0,"offset":0},{"line":3,"statusCode":"200","partition":0,"offset":1},` +
		`{"line":4,"statusCode":"200","partition":0,"offset":2}]}`
	if r.status != 200 || r.raw != want {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	if len(f.written) != 3 || string(f.written[1].value) != `{"sample_message":"b"}` {
		t.Fatalf("written %+v", f.written)
	}
	for _, w := range f.written {
		if string(w.key) != "k" || string(w.headersJSON) != `{"h":"1"}` {
			t.Fatalf("key %q headers %s", w.key, w.headersJSON)
		}
	}
}

func TestBatchWithAnInvalidLineIsRefusedWhole(t *testing.T) {
	f, post := batchHandler(t, `{}`)
	r := post("{\"sample_message\":\"a\"}\n{\"other\":1}\n{\"sample_message\":\"c\"}\n[]\n", nil)
	if r.status != 400 || len(f.written) != 0 {
		t.Fatalf("%d %s, written %d", r.status, r.raw, len(f.written))
	}
	msg := r.body["message"].(string)
	if !strings.HasPrefix(msg, "line 2: sample_message") || !strings.Contains(msg, "nothing written (2 of 4 records invalid)") {
		t.Fatalf("message %q", msg)
	}
	errs := r.body["errors"].([]interface{})
	if len(errs) != 2 || errs[1].(map[string]interface{})["line"].(float64) != 4 {
		t.Fatalf("errors %v", errs)
	}
}

func TestPartialBatchWritesTheValidLinesAndAnswersMultiStatus(t *testing.T) {
	f, post := batchHandler(t, `{"partial":true}`)
	r := post("{\"sample_message\":\"a\"}\n{\"other\":1}\n{\"sample_message\":\"c\"}\n", nil)
	if r.status != 207 || len(f.written) != 2 || !f.mode.partial || f.mode.atomic {
		t.Fatalf("%d %s, written %d, mode %+v", r.status, r.raw, len(f.written), f.mode)
	}
	recs := r.body["records"].([]interface{})
	second := recs[1].(map[string]interface{})
	if second["statusCode"] != "400" || !strings.HasPrefix(second["message"].(string), "line 2: ") || r.body["message"] != "2 of 3 records written" {
		t.Fatalf("%s", r.raw)
	}
}

func TestEnvelopeLinesCarryTheirOwnKeyAndHeaders(t *testing.T) {
	f, post := batchHandler(t, `{"envelope":true,"atomic":true}`)
	r := post(`{"value":{"sample_message":"a"},"key":"own","headers":{"x":"y"}}`+"\n"+`{"value":{"sample_message":"b"}}`,
		map[string]string{"message-key": "req", "message-headers": "h=1"})
	if r.status != 200 || len(f.written) != 2 || !f.mode.atomic {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	if w := f.written[0]; string(w.key) != "own" || string(w.headersJSON) != `{"x":"y"}` || string(w.value) != `{"sample_message":"a"}` {
		t.Fatalf("first %q %s %s", w.key, w.headersJSON, w.value)
	}
	if w := f.written[1]; string(w.key) != "req" || string(w.headersJSON) != `{"h":"1"}` {
		t.Fatalf("second %q %s", w.key, w.headersJSON)
	}
	for body, want := range map[string]string{
		`{"key":"k"}`:                        "line 1: envelope: value: missing",
		`{"value":{},"extra":1}`:             `line 1: envelope: json: unknown field "extra"`,
		`{"value":{},"headers":{"a":1}}`:     "line 1: envelope: json: cannot unmarshal number",
		`{"value":{"sample_message":"a"}} x`: "line 1: envelope: text after the envelope object",
	} {
		r := post(body, nil)
		if r.status != 400 || !strings.HasPrefix(r.body["message"].(string), want) {
			t.Errorf("%s: %d %s", body, r.status, r.raw)
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
		if r.status != c.status || !strings.Contains(r.body["message"].(string), c.msg) {
			t.Errorf("%q: %d %s", c.body, r.status, r.raw)
		}
	}
	_, off := batchHandler(t, `{"max_records":0}`)
	if r := off(`{"sample_message":"a"}`, nil); r.status != 415 || !strings.Contains(r.raw, "batches") {
		t.Errorf("batches off: %d %s", r.status, r.raw)
	}
}

func TestBatchThatTheBrokerRefusesWholeAnswersItsStatus(t *testing.T) {
	f, post := batchHandler(t, `{}`)
	f.status, f.msg = 503, "Kafka broker unreachable"
	r := post("{\"sample_message\":\"a\"}\n{\"sample_message\":\"b\"}", nil)
	if r.status != 503 || r.header.Get("Retry-After") == "" || !strings.HasPrefix(r.body["message"].(string), "no record acknowledged: Kafka broker unreachable") {
		t.Fatalf("%d %v %s", r.status, r.header, r.raw)
	}
	if len(r.body["records"].([]interface{})) != 2 {
		t.Fatalf("%s", r.raw)
	}
}
