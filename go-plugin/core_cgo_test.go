//go:build cgo && !topicgate_nocore

package main

import (
	"strings"
	"testing"
)

// These tests call the real core through cgo; they need no broker.

func TestCoreVersion(t *testing.T) {
	if v := coreVersion(); v == "" {
		t.Fatal("empty core version")
	}
}

func TestCoreRejectsBadConfig(t *testing.T) {
	for _, cfg := range []string{`not json`, `{"kafka":1}`} {
		p, status, msg := coreNewPublisher([]byte(cfg))
		if p != nil || status != 400 || strings.TrimSpace(msg) == "" {
			t.Errorf("%s: got %v %d %q, want a 400 with a message", cfg, p, status, msg)
		}
	}
}

func TestCoreAcceptsExampleConfig(t *testing.T) {
	// The core config of krakend/krakend.json; creating a producer does not connect.
	cfg := `{"kafka":{"bootstrap_servers":"127.0.0.1:1","properties":{}},"registry":{"kind":"file","directory":"../krakend/schemas"},` +
		`"schema":{"name_template":"{topic}","version":"latest","message_type":"first"},"value_format":"raw","delivery_timeout_ms":1000}`
	p, status, msg := coreNewPublisher([]byte(cfg))
	if status != 200 || p == nil {
		t.Fatalf("status %d: %s", status, msg)
	}
	// A body that does not match the schema is a 400 before anything is produced.
	st, _, msg := p.publish("MyTopic", []byte(`{"no_such_field":1}`), nil, nil)
	if st != 400 || !strings.Contains(msg, "no_such_field") {
		t.Fatalf("schema mismatch: %d %q", st, msg)
	}
}
