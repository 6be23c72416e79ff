package stream_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/topicgate/topicgate/go-plugin/internal/config"
	"github.com/topicgate/topicgate/go-plugin/internal/plugintest"
	"github.com/topicgate/topicgate/go-plugin/internal/request"
	"github.com/topicgate/topicgate/go-plugin/internal/router"
)

// streamServer serves a route with the given batch block on a real HTTP server (deadlines and
// full duplex need one).
func streamServer(t *testing.T, batch string) (*plugintest.FakePublisher, *httptest.Server) {
	t.Helper()
	return streamServerWrapped(t, batch, nil)
}

// trackingWriter hides the server's writer as KrakenD's telemetry/opentelemetry wrapper does:
// Flush and Hijack, no Unwrap.
type trackingWriter struct {
	http.ResponseWriter
}

func (w trackingWriter) Flush() { w.ResponseWriter.(http.Flusher).Flush() }
func (w trackingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return w.ResponseWriter.(http.Hijacker).Hijack()
}

// streamServerWrapped is streamServer with wrap (nil: none) around the writer the handler gets.
func streamServerWrapped(t *testing.T, batch string, wrap func(http.ResponseWriter) http.ResponseWriter) (*plugintest.FakePublisher, *httptest.Server) {
	t.Helper()
	f, h := plugintest.BatchServer(t, batch)
	if wrap != nil {
		inner := h
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { inner.ServeHTTP(wrap(w), r) })
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return f, srv
}

// postStream sends body as a chunked stream and returns the status and the answer's lines.
func postStream(t *testing.T, srv *httptest.Server, body io.Reader) (int, []map[string]interface{}) {
	t.Helper()
	req, _ := http.NewRequest("POST", srv.URL+"/v1/event/MyTopic", body)
	req.Header.Set("Content-Type", request.NDJSON)
	req.Header.Set("Accept", request.NDJSON)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var lines []map[string]interface{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var m map[string]interface{}
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("answer line %q: %v", sc.Text(), err)
		}
		lines = append(lines, m)
	}
	return resp.StatusCode, lines
}

func TestStreamAnswersEveryLineInOrderThenItsEnd(t *testing.T) {
	f, srv := streamServer(t, `{}`)
	var b strings.Builder
	for range 3000 {
		b.WriteString("{\"sample_message\":\"a\"}\n\n")
	}
	status, lines := postStream(t, srv, io.MultiReader(strings.NewReader(b.String()))) // unknown length: chunked
	if status != 200 || len(lines) != 3001 || len(f.Written) != 3000 {
		t.Fatalf("%d, %d lines, %d written", status, len(lines), len(f.Written))
	}
	for i, l := range lines[:3000] {
		if l["line"].(float64) != float64(2*i+1) || l["statusCode"] != "200" || l["offset"].(float64) != float64(i) {
			t.Fatalf("line %d: %v", i, l)
		}
	}
	end := lines[3000]
	if end["statusCode"] != "200" || end["records"].(float64) != 3000 || end["written"].(float64) != 3000 || end["line"] != nil {
		t.Fatalf("end %v", end)
	}
}

func TestStreamStopsAtAnInvalidLine(t *testing.T) {
	f, srv := streamServer(t, `{}`)
	status, lines := postStream(t, srv, strings.NewReader("{\"sample_message\":\"a\"}\n{\"x\":1}\n{\"sample_message\":\"c\"}\n"))
	if status != 200 || len(lines) != 3 || len(f.Written) != 1 {
		t.Fatalf("%d %v, %d written", status, lines, len(f.Written))
	}
	if lines[1]["statusCode"] != "400" || !strings.HasPrefix(lines[1]["message"].(string), "line 2: sample_message") {
		t.Fatalf("bad line %v", lines[1])
	}
	end := lines[2]
	if end["statusCode"] != "400" || end["stoppedAtLine"].(float64) != 2 || end["written"].(float64) != 1 ||
		!strings.HasPrefix(end["message"].(string), "the stream stopped at line 2: sample_message") {
		t.Fatalf("end %v", end)
	}
}

func TestPartialStreamGoesPastInvalidAndOverLongLines(t *testing.T) {
	f, srv := streamServer(t, `{"partial":true,"max_line_bytes":40}`)
	long := "{\"sample_message\":\"" + strings.Repeat("x", 100000) + "\"}"
	status, lines := postStream(t, srv, strings.NewReader("{\"x\":1}\n"+long+"\n{\"sample_message\":\"c\"}"))
	if status != 200 || len(lines) != 4 || len(f.Written) != 1 {
		t.Fatalf("%d %v, %d written", status, lines, len(f.Written))
	}
	if lines[1]["statusCode"] != "413" || !strings.Contains(lines[1]["message"].(string), "limit of 40 bytes (batch.max_line_bytes)") {
		t.Fatalf("long line %v", lines[1])
	}
	if lines[2]["line"].(float64) != 3 || lines[2]["statusCode"] != "200" || lines[3]["statusCode"] != "207" {
		t.Fatalf("%v", lines)
	}
}

func TestStreamOfAClientThatSendsNothingIsCutAfterTheIdleTimeout(t *testing.T) {
	f, srv := streamServer(t, `{"stream":{"idle_timeout_ms":200}}`)
	pr, pw := io.Pipe()
	defer pw.Close()
	go func() { _, _ = pw.Write([]byte("{\"sample_message\":\"a\"}\n{\"sample_m")) }() // then silence, mid-line
	started := time.Now()
	status, lines := postStream(t, srv, pr)
	if status != 200 || len(lines) != 2 || len(f.Written) != 1 {
		t.Fatalf("%d %v, %d written", status, lines, len(f.Written))
	}
	end := lines[1]
	if end["statusCode"] != "408" || end["stoppedAtLine"].(float64) != 2 || !strings.Contains(end["message"].(string), "sent nothing for 200ms") {
		t.Fatalf("end %v", end)
	}
	if time.Since(started) > 10*time.Second {
		t.Fatalf("cut after %s", time.Since(started))
	}
}

func TestStreamIsRefusedWhereItCannotBeServed(t *testing.T) {
	for name, batch := range map[string]string{
		"atomic": `{"atomic":true}`,
		"off":    `{"stream":{"in_flight":0}}`,
	} {
		_, srv := streamServer(t, batch)
		req, _ := http.NewRequest("POST", srv.URL+"/v1/event/MyTopic", strings.NewReader("{}\n"))
		req.Header.Set("Content-Type", request.NDJSON)
		req.Header.Set("Accept", "application/json, "+request.NDJSON+";q=0.5")
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 406 || !strings.Contains(string(body), "without Accept: application/x-ndjson") {
			t.Fatalf("%s: %d %s", name, resp.StatusCode, body)
		}
	}
	cfg, err := config.ParseClient([]byte(`{"core":{"k":"v"},"topics":["MyTopic"]}`), plugintest.Env(nil))
	if err != nil {
		t.Fatal(err)
	}
	r := plugintest.Do(t, router.NewClient(cfg, &plugintest.FakePublisher{Status: 200}), "POST", "/MyTopic", request.NDJSON, "{}\n", map[string]string{"Accept": request.NDJSON})
	if r.Status != 406 || !strings.Contains(r.Raw, "http-server mounting") {
		t.Fatalf("client mounting: %d %s", r.Status, r.Raw)
	}
}

func TestStreamConfigIsChecked(t *testing.T) {
	for _, bad := range []string{`{"stream":{"in_flight":-1}}`, `{"stream":{"in_flight":100001}}`, `{"stream":{"idle_timeout_ms":0}}`} {
		if _, err := config.ParseServer([]byte(`{"core":{"k":"v"},"routes":[{"path_prefix":"/v1/","topics":["T"],"batch":`+bad+`}]}`), plugintest.Env(nil)); err == nil {
			t.Fatalf("%s: accepted", bad)
		}
	}
}

// endless is a body that never ends: 'x' forever.
type endless struct{}

func (endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	return len(p), nil
}

func TestStreamStopsAtAnOverLongLineWithoutReadingItToTheEnd(t *testing.T) {
	f, srv := streamServer(t, `{"max_line_bytes":100}`)
	status, lines := postStream(t, srv, io.MultiReader(strings.NewReader("{\"sample_message\":\"a\"}\n"), endless{}))
	if status != 200 || len(lines) != 3 || len(f.Written) != 1 {
		t.Fatalf("%d %v, %d written", status, lines, len(f.Written))
	}
	if lines[1]["statusCode"] != "413" || lines[2]["statusCode"] != "413" || lines[2]["stoppedAtLine"].(float64) != 2 {
		t.Fatalf("%v", lines)
	}
}

// A stream stopped while its client still sends: the answer reaches the client whole (a
// connection closed with unread input would be reset and lose it).
func TestStreamStoppedWhileTheClientSendsIsAnsweredWhole(t *testing.T) {
	f, srv := streamServer(t, `{"max_line_bytes":4096}`)
	pr, pw := io.Pipe()
	go func() {
		_, _ = pw.Write([]byte("{\"sample_message\":\"a\"}\n"))
		b := []byte(strings.Repeat("x", 1<<20))
		for range 100 {
			if _, err := pw.Write(b); err != nil {
				return // the server closed the connection
			}
		}
		pw.Close()
	}()
	status, lines := postStream(t, srv, pr)
	if status != 200 || len(lines) != 3 || len(f.Written) != 1 || lines[2]["stoppedAtLine"].(float64) != 2 {
		t.Fatalf("%d %v", status, lines)
	}
}

// Behind a writer without Unwrap the stream takes the connection over: the same answers, an idle
// cut, and a whole answer to a client that still sends.
func TestStreamThroughAWrappedWriterTakesTheConnectionOver(t *testing.T) {
	wrap := func(w http.ResponseWriter) http.ResponseWriter { return trackingWriter{w} }
	f, srv := streamServerWrapped(t, `{"max_line_bytes":4096,"stream":{"idle_timeout_ms":300}}`, wrap)
	var b strings.Builder
	for range 2000 {
		b.WriteString("{\"sample_message\":\"a\"}\n")
	}
	status, lines := postStream(t, srv, io.MultiReader(strings.NewReader(b.String())))
	if status != 200 || len(lines) != 2001 || len(f.Written) != 2000 || lines[2000]["statusCode"] != "200" {
		t.Fatalf("%d, %d lines, %d written, end %v", status, len(lines), len(f.Written), lines[len(lines)-1])
	}
	// Content-Length framing, on the same kind of connection.
	req, _ := http.NewRequest("POST", srv.URL+"/v1/event/MyTopic", strings.NewReader("{\"sample_message\":\"a\"}\n"))
	req.Header.Set("Content-Type", request.NDJSON)
	req.Header.Set("Accept", request.NDJSON)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.HasSuffix(string(body), "\"records\":1,\"written\":1}\n") {
		t.Fatalf("%s", body)
	}

	pr, pw := io.Pipe()
	defer pw.Close()
	go func() { _, _ = pw.Write([]byte("{\"sample_message\":\"a\"}\n")) }()
	if _, lines := postStream(t, srv, pr); len(lines) != 2 || lines[1]["statusCode"] != "408" {
		t.Fatalf("idle: %v", lines)
	}

	pr2, pw2 := io.Pipe()
	go func() {
		_, _ = pw2.Write([]byte("{\"sample_message\":\"a\"}\n"))
		x := []byte(strings.Repeat("x", 1<<20))
		for range 100 {
			if _, err := pw2.Write(x); err != nil {
				return
			}
		}
		pw2.Close()
	}()
	if _, lines := postStream(t, srv, pr2); len(lines) != 3 || lines[2]["stoppedAtLine"].(float64) != 2 {
		t.Fatalf("stopped while sending: %v", lines)
	}
}
