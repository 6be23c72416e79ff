package config

import (
	"strings"
	"testing"
)

func TestReadBlock(t *testing.T) {
	rc, err := routeOf(`{"path_prefix":"/v1/","topics":["T"]}`)
	if err != nil || rc.Read != nil || rc.Readable("T") {
		t.Fatalf("no read block: %+v %v", rc.Read, err)
	}
	// Readable topics are their own list: writable T is not readable, readable R is not writable.
	rc, err = routeOf(`{"path_prefix":"/v1/","topics":["T"],"read":{"topics":["R"],"limit":10,"raw_on_error":true}}`)
	if err != nil || !rc.Readable("R") || rc.Readable("T") || rc.Allows("R") || rc.Read.Limit != 10 || !rc.Read.RawOnError {
		t.Fatalf("read block: %+v %v", rc.Read, err)
	}
	if rc, err = routeOf(`{"path_prefix":"/v1/","read":{"topics":["R"]}}`); err != nil || rc.Allows("R") {
		t.Fatalf("read-only route: %v", err)
	}
	// A topic's share defaults to the route's; a stream's queue to 4 MiB.
	rc, err = routeOf(`{"path_prefix":"/v1/","read":{"topics":["R"],"max_readers":10}}`)
	if err != nil || rc.Read.MaxReadersPerTopic != 10 || rc.Read.MaxClientBufferBytes != 4<<20 || rc.Read.MaxPageBytes != 16<<20 {
		t.Fatalf("read bounds' defaults: %+v %v", rc.Read, err)
	}
	rc, err = routeOf(`{"path_prefix":"/v1/","read":{"topics":["R"],"max_readers":10,"max_readers_per_topic":3,"max_client_buffer_bytes":65536,"max_page_bytes":2048}}`)
	if err != nil || rc.Read.MaxReadersPerTopic != 3 || rc.Read.MaxClientBufferBytes != 65536 || rc.Read.MaxPageBytes != 2048 {
		t.Fatalf("read bounds: %+v %v", rc.Read, err)
	}
	for bad, words := range map[string]string{
		`"read":{"topics":["R"],"max_readers":10,"max_readers_per_topic":11}`: "read.max_readers_per_topic must be 1 to 10",
		`"read":{"topics":["R"],"max_client_buffer_bytes":100}`:               "read.max_client_buffer_bytes",
		`"read":{"topics":["R"],"max_page_bytes":10}`:                         "read.max_page_bytes",
		`"read":{}`:                                    "read.topics",
		`"read":{"topics":["a/b"]}`:                    "read.topics",
		`"read":{"topics":["R"],"limit":0}`:            "read.limit",
		`"read":{"topics":["R"],"max_limit":5000}`:     "read.max_limit",
		`"read":{"topics":["R"],"max_stall_ms":5}`:     "read.max_stall_ms",
		`"read":{"topics":["R"],"nope":1}`:             "nope",
		`"api":"confluent-v3","read":{"topics":["R"]}`: "confluent-v3",
	} {
		if _, err := routeOf(`{"path_prefix":"/v1/","topics":["T"],` + bad + `}`); err == nil || !strings.Contains(err.Error(), words) {
			t.Errorf("%s: %v", bad, err)
		}
	}
	if _, err := ParseClient([]byte(`{"core":`+coreJSON+`,"topics":["T"],"read":{"topics":["R"]}}`), env(nil)); err == nil || !strings.Contains(err.Error(), "plugin/http-server") {
		t.Errorf("client mounting: %v", err)
	}
}
