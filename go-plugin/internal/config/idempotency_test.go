package config

import (
	"strings"
	"testing"
	"time"
)

func TestIdempotencyBlock(t *testing.T) {
	rc, err := routeOf(`{"path_prefix":"/v1/","topics":["T"]}`)
	if err != nil || rc.Idempotency != (Idempotency{Header: "Idempotency-Key", Window: 24 * time.Hour, MaxKeys: 100000}) {
		t.Fatalf("default: %+v %v", rc.Idempotency, err)
	}
	rc, err = routeOf(`{"path_prefix":"/v1/","topics":["T"],"idempotency":{"header":"x-request-key","window_ms":60000,"max_keys":5}}`)
	if err != nil || rc.Idempotency != (Idempotency{Header: "X-Request-Key", Window: time.Minute, MaxKeys: 5}) {
		t.Fatalf("set: %+v %v", rc.Idempotency, err)
	}
	rc, err = routeOf(`{"path_prefix":"/v1/","topics":["T"],"idempotency":{"enabled":false}}`)
	if err != nil || rc.Idempotency.Header != "" {
		t.Fatalf("off: %+v %v", rc.Idempotency, err)
	}
	rc, err = routeOf(`{"path_prefix":"/v3/","api":"confluent-v3","topics":["T"]}`)
	if err != nil || rc.Idempotency.Header != "" {
		t.Fatalf("v3: %+v %v", rc.Idempotency, err)
	}
	for bad, words := range map[string]string{
		`"idempotency":{"header":"a b"}`:                    "idempotency.header",
		`"idempotency":{"window_ms":10}`:                    "idempotency.window_ms",
		`"idempotency":{"max_keys":0}`:                      "idempotency.max_keys",
		`"idempotency":{"nope":1}`:                          "nope",
		`"api":"confluent-v3","idempotency":{"max_keys":1}`: "confluent-v3",
	} {
		if _, err := routeOf(`{"path_prefix":"/v1/","topics":["T"],` + bad + `}`); err == nil || !strings.Contains(err.Error(), words) {
			t.Errorf("%s: %v", bad, err)
		}
	}
}
