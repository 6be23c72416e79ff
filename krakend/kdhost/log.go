package main

import (
	"fmt"
	"log"
	"os"
	"strings"
)

// logger has the method set of KrakenD's logging.Logger.
type logger struct {
	min int
	l   *log.Logger
}

var levels = map[string]int{"DEBUG": 0, "INFO": 1, "WARNING": 2, "ERROR": 3, "CRITICAL": 4}

func newLogger(level string) *logger {
	min, ok := levels[strings.ToUpper(level)]
	if !ok {
		min = 1
	}
	return &logger{min: min, l: log.New(os.Stdout, "[KDHOST] ", log.LstdFlags|log.Lmicroseconds)}
}

func (g *logger) out(level string, v ...interface{}) {
	if levels[level] < g.min {
		return
	}
	g.l.Print(level+" ", strings.TrimSuffix(fmt.Sprintln(v...), "\n"))
}

func (g *logger) Debug(v ...interface{})    { g.out("DEBUG", v...) }
func (g *logger) Info(v ...interface{})     { g.out("INFO", v...) }
func (g *logger) Warning(v ...interface{})  { g.out("WARNING", v...) }
func (g *logger) Error(v ...interface{})    { g.out("ERROR", v...) }
func (g *logger) Critical(v ...interface{}) { g.out("CRITICAL", v...) }
func (g *logger) Fatal(v ...interface{})    { g.out("CRITICAL", v...); os.Exit(1) }
