package request

import (
	"context"
	"net/http"
	"strconv"

	"github.com/topicgate/topicgate/go-plugin/internal/core"
)

// idempotencyMark is the record header a request's records carry (package idempotency sets it).
type idempotencyMark struct{ name, key string }

type idempotencyCtx struct{}

// WithIdempotencyKey returns ctx marking its request's records with the record header name: key.
func WithIdempotencyKey(ctx context.Context, name, key string) context.Context {
	return context.WithValue(ctx, idempotencyCtx{}, idempotencyMark{name, key})
}

// WithIdempotencyHeader adds r's idempotency record header to headers (a copy), if r is marked:
// its value is the key for a single record, "<key>/<line>" for a batch's line (line > 0), so that
// every record written for a key is told apart by consumers that deduplicate.
func WithIdempotencyHeader(r *http.Request, headers []core.Header, line int) []core.Header {
	m, ok := r.Context().Value(idempotencyCtx{}).(idempotencyMark)
	if !ok {
		return headers
	}
	v := m.key
	if line > 0 {
		v += "/" + strconv.Itoa(line)
	}
	out := make([]core.Header, len(headers), len(headers)+1)
	copy(out, headers)
	return append(out, core.Header{Name: m.name, Value: []byte(v)})
}
