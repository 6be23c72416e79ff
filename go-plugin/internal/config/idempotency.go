package config

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Defaults of a route's "idempotency" block.
const (
	DefaultIdempotencyHeader = "Idempotency-Key"
	defaultIdempotencyWindow = 24 * time.Hour
	defaultIdempotencyKeys   = 100000
	maxIdempotencyKeys       = 10000000
)

// Idempotency is how a route answers a retry that carries an Idempotency-Key (package idempotency).
type Idempotency struct {
	// Header names the request header holding the key ("" turns the feature off for the route).
	Header string
	// Window is how long an answer is remembered for its key.
	Window time.Duration
	// MaxKeys bounds the keys remembered at once (per route); the oldest go first when it is reached.
	MaxKeys int
}

// rawIdempotency is the JSON shape of a route's "idempotency" block.
type rawIdempotency struct {
	Enabled  *bool   `json:"enabled"`
	Header   *string `json:"header"`
	WindowMs *int64  `json:"window_ms"`
	MaxKeys  *int    `json:"max_keys"`
}

// parseIdempotency reads a route's "idempotency" block (nil: on, with the defaults).
func parseIdempotency(ri *rawIdempotency, where string) (Idempotency, error) {
	ic := Idempotency{Header: DefaultIdempotencyHeader, Window: defaultIdempotencyWindow, MaxKeys: defaultIdempotencyKeys}
	if ri == nil {
		return ic, nil
	}
	bad := func(key, why string) (Idempotency, error) {
		return ic, fmt.Errorf("%s: %s: idempotency.%s %s", Name, where, key, why)
	}
	if ri.Enabled != nil && !*ri.Enabled {
		return Idempotency{}, nil
	}
	if ri.Header != nil {
		h := http.CanonicalHeaderKey(*ri.Header)
		if h == "" || !validHeaderName(h) {
			return bad("header", fmt.Sprintf("%q is not an HTTP header name", *ri.Header))
		}
		ic.Header = h
	}
	if ri.WindowMs != nil {
		if *ri.WindowMs < 1000 {
			return bad("window_ms", "must be at least 1000")
		}
		ic.Window = time.Duration(*ri.WindowMs) * time.Millisecond
	}
	if ri.MaxKeys != nil {
		if *ri.MaxKeys < 1 || *ri.MaxKeys > maxIdempotencyKeys {
			return bad("max_keys", fmt.Sprintf("must be from 1 to %d", maxIdempotencyKeys))
		}
		ic.MaxKeys = *ri.MaxKeys
	}
	return ic, nil
}

// validHeaderName says whether h is an RFC 9110 token.
func validHeaderName(h string) bool {
	for _, c := range h {
		if c > 0x7e || c <= 0x20 || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, c) {
			return false
		}
	}
	return true
}
