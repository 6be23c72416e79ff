// Package logging writes the plugin's and the core's log lines to KrakenD's logger, and keeps the
// rate-limited access log of refused and failed publishes.
package logging

import (
	"fmt"
	"sync/atomic"
)

// krakendLogger is the method set of KrakenD's logging.Logger that the plugin uses.
type krakendLogger interface {
	Debug(v ...interface{})
	Info(v ...interface{})
	Warning(v ...interface{})
	Error(v ...interface{})
	Critical(v ...interface{})
}

const logPrefix = "[PLUGIN: topicgate]"

var currentLogger atomic.Value // holds loggerBox

type loggerBox struct{ l krakendLogger }

// Set stores KrakenD's logger (given to RegisterLogger); false when v is not one (it is then
// ignored).
func Set(v interface{}) bool {
	l, ok := v.(krakendLogger)
	if !ok {
		return false
	}
	currentLogger.Store(loggerBox{l})
	return true
}

func logger() krakendLogger {
	if b, ok := currentLogger.Load().(loggerBox); ok {
		return b.l
	}
	return nil
}

// Debug logs at DEBUG, after the plugin's prefix.
func Debug(v ...interface{}) {
	if l := logger(); l != nil {
		l.Debug(append([]interface{}{logPrefix}, v...)...)
	}
}

// Info logs at INFO, after the plugin's prefix.
func Info(v ...interface{}) {
	if l := logger(); l != nil {
		l.Info(append([]interface{}{logPrefix}, v...)...)
	}
}

// Warning logs at WARNING, after the plugin's prefix.
func Warning(v ...interface{}) {
	if l := logger(); l != nil {
		l.Warning(append([]interface{}{logPrefix}, v...)...)
	}
}

// Error logs at ERROR, after the plugin's prefix.
func Error(v ...interface{}) {
	if l := logger(); l != nil {
		l.Error(append([]interface{}{logPrefix}, v...)...)
	}
}

// Core receives one record from the core; level: 1 error, 2 warn, 3 info,
// 4 debug, 5 trace.
func Core(level int32, msg string) {
	l := logger()
	if l == nil {
		return
	}
	tag := logPrefix + " [core]"
	switch level {
	case 1:
		l.Error(tag, msg)
	case 2:
		l.Warning(tag, msg)
	case 3:
		l.Info(tag, msg)
	case 4, 5:
		l.Debug(tag, msg)
	default:
		l.Debug(tag, fmt.Sprintf("(level %d)", level), msg)
	}
}
