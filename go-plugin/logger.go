package main

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

// setLogger stores KrakenD's logger (given to RegisterLogger) and routes the core's
// log records to it. Anything else is ignored.
func setLogger(v interface{}) {
	l, ok := v.(krakendLogger)
	if !ok {
		return
	}
	currentLogger.Store(loggerBox{l})
	installCoreLog()
	l.Debug(logPrefix, "logger registered; core", coreVersion())
}

func logger() krakendLogger {
	if b, ok := currentLogger.Load().(loggerBox); ok {
		return b.l
	}
	return nil
}

func logDebug(v ...interface{}) {
	if l := logger(); l != nil {
		l.Debug(append([]interface{}{logPrefix}, v...)...)
	}
}

func logInfo(v ...interface{}) {
	if l := logger(); l != nil {
		l.Info(append([]interface{}{logPrefix}, v...)...)
	}
}

func logWarning(v ...interface{}) {
	if l := logger(); l != nil {
		l.Warning(append([]interface{}{logPrefix}, v...)...)
	}
}

func logError(v ...interface{}) {
	if l := logger(); l != nil {
		l.Error(append([]interface{}{logPrefix}, v...)...)
	}
}

// coreLog receives one record from the core; level: 1 error, 2 warn, 3 info,
// 4 debug, 5 trace.
func coreLog(level int32, msg string) {
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
