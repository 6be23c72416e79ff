package logging

import (
	"strings"
	"testing"
	"time"

	"github.com/topicgate/topicgate/go-plugin/internal/logging/logtest"
)

func TestAccessLogLevelsAndRateLimit(t *testing.T) {
	l := &logtest.Recorder{}
	currentLogger.Store(loggerBox{l})
	defer currentLogger.Store(loggerBox{})
	now := time.Now()
	accessLogNow = func() time.Time { return now }
	defer func() { accessLogNow = time.Now }()
	Access(400, "T", "field `x`: bad")
	Access(503, "T", "Kafka broker unreachable")
	Access(500, "T", "internal")
	if len(l.At("INFO")) != 1 || len(l.At("WARNING")) != 1 || len(l.At("ERROR")) != 1 {
		t.Fatalf("levels: %v", l.Lines())
	}
	if !strings.Contains(l.At("INFO")[0], `publish refused: status 400 topic \"T\": field`) {
		t.Fatalf("line: %q", l.At("INFO")[0])
	}
	// A flood: at most the burst gets through, then a line says how many were dropped.
	for range 10 * accessLogBurst {
		Access(404, "", "topic \"x\" is not exposed here")
	}
	if n := len(l.At("INFO")); n > accessLogBurst+1 {
		t.Fatalf("%d lines for a flood, want at most %d", n, accessLogBurst+1)
	}
	if accessLogDropped.Load() == 0 {
		t.Fatal("nothing was dropped")
	}
	// Once the limiter's clock has moved on, the next line let through reports the dropped ones first.
	now = now.Add(3 * time.Second / accessLogPerSecond)
	Access(504, "T", "no acknowledgement")
	if w := l.At("WARNING"); len(w) != 3 || !strings.Contains(w[1], "lines suppressed") || !strings.Contains(w[2], "status 504") {
		t.Fatalf("after the flood: %q", w)
	}
}
