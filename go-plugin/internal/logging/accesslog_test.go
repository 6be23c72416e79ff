package logging

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestAccessLogLevelsAndRateLimit(t *testing.T) {
	l := &recLogger{}
	currentLogger.Store(loggerBox{l})
	defer currentLogger.Store(loggerBox{})
	Access(400, "T", "field `x`: bad")
	Access(503, "T", "Kafka broker unreachable")
	Access(500, "T", "internal")
	if len(l.at("INFO")) != 1 || len(l.at("WARNING")) != 1 || len(l.at("ERROR")) != 1 {
		t.Fatalf("levels: %v", l.lines)
	}
	if !strings.Contains(l.at("INFO")[0], `publish refused: status 400 topic \"T\": field`) {
		t.Fatalf("line: %q", l.at("INFO")[0])
	}
	// A flood: at most the burst gets through, then a line says how many were dropped.
	for range 10 * accessLogBurst {
		Access(404, "", "topic \"x\" is not exposed here")
	}
	if n := len(l.at("INFO")); n > accessLogBurst+1 {
		t.Fatalf("%d lines for a flood, want at most %d", n, accessLogBurst+1)
	}
	if accessLogDropped.Load() == 0 {
		t.Fatal("nothing was dropped")
	}
	// The next line let through reports the dropped ones first.
	time.Sleep(3 * time.Second / accessLogPerSecond)
	Access(504, "T", "no acknowledgement")
	if w := l.at("WARNING"); len(w) != 3 || !strings.Contains(w[1], "lines suppressed") || !strings.Contains(w[2], "status 504") {
		t.Fatalf("after the flood: %q", w)
	}
}

// at returns the lines logged at level.
func (l *recLogger) at(level string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range l.lines {
		if strings.HasPrefix(line, level+" ") {
			out = append(out, line)
		}
	}
	return out
}

// recLogger is a KrakenD-shaped logger.
type recLogger struct {
	mu    sync.Mutex
	lines []string
}

func (l *recLogger) add(level string, v ...interface{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, _ := json.Marshal(v)
	l.lines = append(l.lines, level+" "+string(b))
}
func (l *recLogger) Debug(v ...interface{})    { l.add("DEBUG", v...) }
func (l *recLogger) Info(v ...interface{})     { l.add("INFO", v...) }
func (l *recLogger) Warning(v ...interface{})  { l.add("WARNING", v...) }
func (l *recLogger) Error(v ...interface{})    { l.add("ERROR", v...) }
func (l *recLogger) Critical(v ...interface{}) { l.add("CRITICAL", v...) }
func (l *recLogger) Fatal(v ...interface{})    { l.add("FATAL", v...) }
