package stream_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/topicgate/topicgate/go-plugin/internal/request"
	"github.com/topicgate/topicgate/go-plugin/internal/shutdown"
)

// The shutdown is process-wide and for good, so its test runs in a process of its own.
const inOwnProcess = "TOPICGATE_STREAM_SHUTDOWN_TEST"

// At the shutdown a stream stops reading, answers what it read and ends with its stopped-at
// report (503): on a full duplex connection and on a taken-over one.
func TestStreamStopsAtTheShutdownWithItsReport(t *testing.T) {
	if os.Getenv(inOwnProcess) == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestStreamStopsAtTheShutdownWithItsReport$", "-test.count=1")
		cmd.Env = append(os.Environ(), inOwnProcess+"=1")
		if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "PASS") {
			t.Fatalf("%v\n%s", err, out)
		}
		return
	}
	_, duplex := streamServer(t, `{}`)
	wrap := func(w http.ResponseWriter) http.ResponseWriter { return trackingWriter{w} }
	_, taken := streamServerWrapped(t, `{}`, wrap)

	type open struct {
		pw    *io.PipeWriter
		lines *bufio.Scanner
		body  io.Closer
	}
	var streams []open
	for _, url := range []string{duplex.URL, taken.URL} {
		pr, pw := io.Pipe()
		req, _ := http.NewRequest("POST", url+"/v1/event/MyTopic", pr)
		req.Header.Set("Content-Type", request.NDJSON)
		req.Header.Set("Accept", request.NDJSON)
		go func() { _, _ = pw.Write([]byte(strings.Repeat("{\"sample_message\":\"a\"}\n", 10))) }()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(resp.Body)
		for n := 1; n <= 10; n++ { // every line sent is answered before the shutdown
			if !sc.Scan() || !strings.Contains(sc.Text(), `"statusCode":"200"`) {
				t.Fatalf("line %d: %q", n, sc.Text())
			}
		}
		streams = append(streams, open{pw, sc, resp.Body})
	}

	shutdown.Begin()
	for i, s := range streams {
		if !s.lines.Scan() {
			t.Fatalf("stream %d ended without its report", i)
		}
		var end map[string]interface{}
		if err := json.Unmarshal(s.lines.Bytes(), &end); err != nil {
			t.Fatal(err)
		}
		if end["statusCode"] != "503" || end["stoppedAtLine"] != float64(11) || end["records"] != float64(10) ||
			!strings.Contains(end["message"].(string), "the stream stopped at line 11: the gateway is shutting down") {
			t.Fatalf("stream %d: %v", i, end)
		}
		s.pw.Close()
		s.body.Close()
	}
}
