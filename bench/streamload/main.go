// Command streamload is make bench's load generator for streams (vegeta sends whole bodies): each
// of -streams connections POSTs one NDJSON stream of the payload, -chunk lines per write, for
// -seconds, and reads its answer lines as they come. It prints one JSON line: records answered 200,
// others, records/s, and the latency from a chunk's write to its first line's answer.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"
)

func main() {
	url := flag.String("url", "", "the stream route's URL (…/<Topic>)")
	payload := flag.String("payload", "", "a JSON file: the value of every record")
	streams := flag.Int("streams", 32, "concurrent streams")
	seconds := flag.Float64("seconds", 6, "how long each stream sends")
	chunk := flag.Int("chunk", 100, "lines per write")
	rate := flag.Float64("rate", 0, "records/s over all streams (0: as fast as answers allow)")
	flag.Parse()
	raw, err := os.ReadFile(*payload)
	if err != nil {
		fail(err)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, raw); err != nil {
		fail(err)
	}
	line := append(compact.Bytes(), '\n')
	block := bytes.Repeat(line, *chunk)
	var interval time.Duration // between one stream's writes at a fixed rate
	if *rate > 0 {
		interval = time.Duration(float64(*chunk*(*streams)) / *rate * float64(time.Second))
	}

	var wg sync.WaitGroup
	results := make([]result, *streams)
	started := time.Now()
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = stream(*url, block, *chunk, time.Duration(*seconds*float64(time.Second)), interval)
		}()
	}
	wg.Wait()
	elapsed := time.Since(started).Seconds()
	var total result
	for _, r := range results {
		total.ok += r.ok
		total.failed += r.failed
		total.latencies = append(total.latencies, r.latencies...)
		if total.err == "" {
			total.err = r.err
		}
	}
	slices.Sort(total.latencies)
	pct := func(p float64) float64 {
		if len(total.latencies) == 0 {
			return 0
		}
		return total.latencies[int(p*float64(len(total.latencies)-1))].Seconds() * 1000
	}
	out, _ := json.Marshal(map[string]any{
		"ok": total.ok, "failed": total.failed, "seconds": elapsed, "rps": float64(total.ok) / elapsed,
		"p50_ms": pct(0.5), "p99_ms": pct(0.99), "max_ms": pct(1), "error": total.err,
	})
	fmt.Println(string(out))
}

// result is one stream's count of answers and its sampled latencies.
type result struct {
	ok, failed int
	latencies  []time.Duration
	err        string
}

// stream sends block (chunk lines) repeatedly for d, every interval (0: back to back), and
// counts the answers.
func stream(url string, block []byte, chunk int, d time.Duration, interval time.Duration) result {
	pr, pw := io.Pipe()
	var mu sync.Mutex
	var written []time.Time // written[k]: when chunk k was written
	go func() {
		end := time.Now().Add(d)
		next := time.Now()
		for time.Now().Before(end) {
			mu.Lock()
			written = append(written, time.Now())
			mu.Unlock()
			if _, err := pw.Write(block); err != nil {
				return
			}
			if interval > 0 {
				next = next.Add(interval)
				time.Sleep(time.Until(next))
			}
		}
		pw.Close()
	}()
	req, _ := http.NewRequest("POST", url, pr)
	req.Header.Set("Content-Type", "application/x-ndjson")
	req.Header.Set("Accept", "application/x-ndjson")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		pr.CloseWithError(err)
		return result{err: err.Error()}
	}
	defer resp.Body.Close()
	var r result
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	n := 0
	var last []byte
	for sc.Scan() {
		b := sc.Bytes()
		if !bytes.HasPrefix(b, []byte(`{"line":`)) {
			last = append(last[:0], b...) // the stream's end
			continue
		}
		if bytes.Contains(b, []byte(`"statusCode":"200"`)) {
			r.ok++
		} else {
			r.failed++
		}
		if n%chunk == 0 {
			mu.Lock()
			r.latencies = append(r.latencies, time.Since(written[n/chunk]))
			mu.Unlock()
		}
		n++
	}
	pr.Close()
	if !bytes.Contains(last, []byte(`"statusCode":"200"`)) {
		r.err = fmt.Sprintf("stream end: %s (%v)", last, sc.Err())
	}
	return r
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "streamload:", err)
	os.Exit(1)
}
