package confluent_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/topicgate/topicgate/go-plugin/internal/config"
	"github.com/topicgate/topicgate/go-plugin/internal/confluent"
	"github.com/topicgate/topicgate/go-plugin/internal/plugintest"
	"github.com/topicgate/topicgate/go-plugin/internal/router"
)

// v3StreamServer serves a confluent-v3 route for MyTopic under /kafka/v3/ with the given batch
// block, on a real HTTP server.
func v3StreamServer(t *testing.T, batch string) (*plugintest.FakePublisher, *httptest.Server) {
	t.Helper()
	cfg, err := config.ParseServer([]byte(`{"core":{"k":"v"},"routes":[{"path_prefix":"/kafka/v3/","api":"confluent-v3",
		"topics":["MyTopic"],"batch":`+batch+`}]}`), plugintest.Env(nil))
	if err != nil {
		t.Fatal(err)
	}
	f := &plugintest.FakePublisher{Status: 200}
	srv := httptest.NewServer(router.NewServer(cfg, f, plugintest.NextHandler))
	t.Cleanup(srv.Close)
	return f, srv
}

// v3Reports reads an answer's "\r\n"-separated reports as they come, onto a channel closed at
// the answer's end.
func v3Reports(t *testing.T, body io.Reader) <-chan map[string]any {
	t.Helper()
	out := make(chan map[string]any, 100000)
	go func() {
		defer close(out)
		sc := bufio.NewScanner(body)
		sc.Split(func(data []byte, atEOF bool) (int, []byte, error) {
			if i := bytes.Index(data, []byte("\r\n")); i >= 0 {
				return i + 2, data[:i], nil
			}
			if atEOF && len(data) > 0 {
				return len(data), data, nil
			}
			return 0, nil, nil
		})
		for sc.Scan() {
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				m = map[string]any{"unparsed": sc.Text()}
			}
			out <- m
		}
	}()
	return out
}

// openV3Stream posts a chunked …/records request whose body is written through the returned pipe.
func openV3Stream(t *testing.T, srv *httptest.Server) (*io.PipeWriter, *http.Response) {
	t.Helper()
	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.Close() })
	req, _ := http.NewRequest("POST", srv.URL+"/kafka/v3/clusters/c1/topics/MyTopic/records", pr)
	req.Header.Set("Content-Type", "application/json")
	type result struct {
		resp *http.Response
		err  error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := srv.Client().Do(req)
		got <- result{resp, err}
	}()
	// The answer's header comes before any record: the stream is open.
	select {
	case r := <-got:
		if r.err != nil {
			t.Fatal(r.err)
		}
		t.Cleanup(func() { r.resp.Body.Close() })
		return pw, r.resp
	case <-time.After(10 * time.Second):
		t.Fatal("no answer header within 10 s")
	}
	return nil, nil
}

func nextReport(t *testing.T, reports <-chan map[string]any) map[string]any {
	t.Helper()
	select {
	case m, ok := <-reports:
		if !ok {
			t.Fatal("the answer ended early")
		}
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no report within 10 s")
	}
	return nil
}

func TestV3StreamAnswersEachRecordWhileTheBodyIsOpen(t *testing.T) {
	f, srv := v3StreamServer(t, `{}`)
	pw, resp := openV3Stream(t, srv)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json; charset=utf-8" {
		t.Fatalf("%d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	reports := v3Reports(t, resp.Body)
	// Two records in one write, with no separator, then one more, each answered before the next is sent.
	fmt.Fprint(pw, `{"value":{"data":{"sample_message":"a"}},"partition_id":2,"key":{"type":"STRING","data":"k"}}{"value":{"data":{"x":1}}}`)
	first, second := nextReport(t, reports), nextReport(t, reports)
	if first["error_code"] != 200.0 || first["offset"] != 0.0 || first["topic_name"] != "MyTopic" || first["cluster_id"] != "c1" ||
		first["key"].(map[string]any)["size"] != 1.0 {
		t.Fatalf("first report %v", first)
	}
	// The fake refuses a value without sample_message, as the core does a value off the schema.
	if second["error_code"] != float64(confluent.SerializationErr) || !strings.Contains(second["message"].(string), "sample_message") {
		t.Fatalf("second report %v", second)
	}
	fmt.Fprint(pw, "\n  {\"value\":{\"data\":{\"sample_message\":\"b\"}},\"timestamp\":\"2021-02-05T19:14:42Z\"}\n")
	third := nextReport(t, reports)
	if third["error_code"] != 200.0 || third["offset"] != 1.0 || third["timestamp"] != "2021-02-05T19:14:42.000Z" {
		t.Fatalf("third report %v", third)
	}
	pw.Close()
	if m, more := <-reports; more {
		t.Fatalf("a report after the last record: %v", m)
	}
	if len(f.Written) != 2 || *f.Written[0].Partition != 2 || string(f.Written[0].Key) != "k" ||
		*f.Written[1].TimestampMs != time.Date(2021, 2, 5, 19, 14, 42, 0, time.UTC).UnixMilli() {
		t.Fatalf("written %+v", f.Written)
	}
}

func TestV3StreamEndsAtMalformedJSONWithAnErrorReport(t *testing.T) {
	f, srv := v3StreamServer(t, `{}`)
	pw, resp := openV3Stream(t, srv)
	reports := v3Reports(t, resp.Body)
	go fmt.Fprint(pw, `{"value":{"data":{"sample_message":"a"}}} {"value": nope} {"value":{"data":{"sample_message":"never"}}}`)
	if r := nextReport(t, reports); r["error_code"] != 200.0 {
		t.Fatalf("first %v", r)
	}
	end := nextReport(t, reports)
	if end["error_code"] != 400.0 || !strings.Contains(end["message"].(string), "stopped at record 2") ||
		!strings.Contains(end["message"].(string), "not JSON") {
		t.Fatalf("end %v", end)
	}
	if _, more := <-reports; more || len(f.Written) != 1 {
		t.Fatalf("more after the end, or %d written", len(f.Written))
	}
}

func TestV3StreamRefusesAHugeRecordWithoutReadingIt(t *testing.T) {
	f, srv := v3StreamServer(t, `{"max_line_bytes": 1000}`)
	pw, resp := openV3Stream(t, srv)
	reports := v3Reports(t, resp.Body)
	fmt.Fprint(pw, `{"value":{"data":{"sample_message":"a"}}}`)
	if r := nextReport(t, reports); r["error_code"] != 200.0 {
		t.Fatalf("first %v", r)
	}
	// A record that never ends: the stream must stop once it is past the limit, not read on.
	sent := make(chan int64, 1)
	go func() {
		n, _ := io.Copy(pw, io.LimitReader(neverEnding('x'), 100<<20))
		sent <- n
	}()
	fmt.Fprint(pw, `{"value":{"data":{"sample_message":"`)
	end := nextReport(t, reports)
	if end["error_code"] != 413.0 || !strings.Contains(end["message"].(string), "record 2 is larger than the limit of 1000 bytes") {
		t.Fatalf("end %v", end)
	}
	pw.Close()
	if n := <-sent; n >= 100<<20 {
		t.Fatalf("the whole 100 MB was read (%d bytes)", n)
	}
	if len(f.Written) != 1 {
		t.Fatalf("%d written", len(f.Written))
	}
}

func TestV3StreamOfNothingIsAnErrorReport(t *testing.T) {
	_, srv := v3StreamServer(t, `{}`)
	pw, resp := openV3Stream(t, srv)
	reports := v3Reports(t, resp.Body)
	pw.Close()
	if r := nextReport(t, reports); r["error_code"] != 400.0 || !strings.Contains(r["message"].(string), "empty") {
		t.Fatalf("%v", r)
	}
}

type neverEnding byte

func (b neverEnding) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(b)
	}
	return len(p), nil
}
