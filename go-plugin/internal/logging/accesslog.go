package logging

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Access log of refused and failed publishes: one line each, at the level the outcome deserves
// (a client's mistake is INFO, an unavailable broker or registry WARNING, a fault ERROR), at most
// accessLogBurst lines at once and accessLogPerSecond on average, so a flood of bad requests cannot
// fill a disk. Lines that are dropped are counted and reported with the next line let through.
// A line holds the status, the topic and the core's message, which never echoes the payload or a
// secret (fuzzed: README "Fuzzing").
const (
	accessLogPerSecond = 20
	accessLogBurst     = 50
)

var (
	accessLogLimit   = rate.NewLimiter(accessLogPerSecond, accessLogBurst)
	accessLogDropped atomic.Uint64
	accessLogMu      sync.Mutex // keeps "N lines suppressed" next to the line it precedes
	// accessLogNow is the limiter's clock; a test advances its own instead of sleeping.
	accessLogNow = time.Now
)

// Access writes the access-log line of a publish answered with status (not 200).
func Access(status int, topic, msg string) { access("publish", status, topic, msg) }

// AccessRead writes the access-log line of a read (package read) answered with status (not 200).
func AccessRead(status int, topic, msg string) { access("read", status, topic, msg) }

// access writes the rate-limited line of what (publish, read) answered with status.
func access(what string, status int, topic, msg string) {
	if !accessLogLimit.AllowN(accessLogNow(), 1) {
		accessLogDropped.Add(1)
		return
	}
	line := fmt.Sprintf("%s refused: status %d topic %q: %s", what, status, topic, msg)
	if status >= 500 {
		line = fmt.Sprintf("%s failed: status %d topic %q: %s", what, status, topic, msg)
	}
	accessLogMu.Lock()
	defer accessLogMu.Unlock()
	if n := accessLogDropped.Swap(0); n > 0 {
		Warning(fmt.Sprintf("access log: %d lines suppressed (more than %d per second)", n, accessLogPerSecond))
	}
	switch {
	case status == 500:
		Error(line)
	case status >= 500:
		Warning(line)
	default:
		Info(line)
	}
}
