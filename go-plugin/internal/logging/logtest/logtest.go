// Package logtest is a KrakenD-shaped logger that records what it is given, for tests. It imports
// nothing of the plugin, so the logging package's own tests can use it.
package logtest

import (
	"encoding/json"
	"strings"
	"sync"
)

// Recorder keeps every line as "<LEVEL> <the arguments as a JSON array>".
type Recorder struct {
	mu    sync.Mutex
	lines []string
}

func (l *Recorder) add(level string, v ...interface{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, _ := json.Marshal(v)
	l.lines = append(l.lines, level+" "+string(b))
}

// Debug records at DEBUG.
func (l *Recorder) Debug(v ...interface{}) { l.add("DEBUG", v...) }

// Info records at INFO.
func (l *Recorder) Info(v ...interface{}) { l.add("INFO", v...) }

// Warning records at WARNING.
func (l *Recorder) Warning(v ...interface{}) { l.add("WARNING", v...) }

// Error records at ERROR.
func (l *Recorder) Error(v ...interface{}) { l.add("ERROR", v...) }

// Critical records at CRITICAL.
func (l *Recorder) Critical(v ...interface{}) { l.add("CRITICAL", v...) }

// Fatal records at FATAL.
func (l *Recorder) Fatal(v ...interface{}) { l.add("FATAL", v...) }

// Lines is a copy of every line recorded so far.
func (l *Recorder) Lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

// At is the lines recorded at level.
func (l *Recorder) At(level string) []string {
	var out []string
	for _, line := range l.Lines() {
		if strings.HasPrefix(line, level+" ") {
			out = append(out, line)
		}
	}
	return out
}
