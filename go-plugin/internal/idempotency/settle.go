package idempotency

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/topicgate/topicgate/go-plugin/internal/config"
	"github.com/topicgate/topicgate/go-plugin/internal/core"
	"github.com/topicgate/topicgate/go-plugin/internal/logging"
	"github.com/topicgate/topicgate/go-plugin/internal/metrics"
	"github.com/topicgate/topicgate/go-plugin/internal/respond"
)

// Finder searches a topic for a record by header (core.Publisher does).
type Finder interface {
	FindByHeader(topic string, sinceMs int64, name string, value []byte, timeout time.Duration) (found bool, d core.Delivery, status int, msg string)
}

// attempt is a single record's publish that ended with a 504 from its delivery report: the
// broker may have written it, so the key's next request searches for it first.
type attempt struct {
	fp [sha256.Size]byte // the request's fingerprint
	at time.Time         // when it was sent: records written for it are timestamped later
}

// searchSkew is how far before an attempt the search starts: a topic with LogAppendTime stamps
// records with the broker's clock, which may be behind the gateway's.
const searchSkew = 10 * time.Second

// defaultSearchTime bounds a search of a request without a deadline.
const defaultSearchTime = 5 * time.Second

// settle serves the first request after an attempt with an unknown outcome (prior): a different
// request is a 422; a record carrying the key written since the attempt is the answer
// (Idempotent-Replayed, outcome found_written); a failed search is answered with its status.
// Each of these finishes e and answers: false. True when nothing was found: the caller serves r
// (its body restored) as new, on e.
func settle(w http.ResponseWriter, r *http.Request, s *store, e *entry, prior *attempt, ic *config.Idempotency,
	key, topic string, bodyLimit int64, find Finder, fail func(int, string)) bool {
	body, err := io.ReadAll(io.LimitReader(r.Body, bodyLimit+1))
	if err == nil && int64(len(body)) > bodyLimit {
		err = fmt.Errorf("the body is larger than the limit of %d bytes", bodyLimit)
	}
	if err != nil {
		s.finish(e, nil, prior)
		fail(http.StatusBadRequest, "cannot read the request body: "+err.Error())
		return false
	}
	h := sha256.New()
	writePrefix(h, r, topic)
	h.Write(body)
	var fp [sha256.Size]byte
	copy(fp[:], h.Sum(nil))
	if fp != prior.fp {
		s.finish(e, nil, prior)
		metrics.Idempotency(metrics.IdemConflict)
		fail(http.StatusUnprocessableEntity, fmt.Sprintf("%s %q was used for a different request on this topic (body, message-key or message-headers differ); nothing written; send it with a new key", ic.Header, key))
		return false
	}
	// Half the time left for the search, the rest for writing if nothing is found.
	limit := defaultSearchTime
	if d, ok := r.Context().Deadline(); ok {
		limit = time.Until(d) / 2
	}
	found, d, st, msg := find.FindByHeader(topic, prior.at.Add(-searchSkew).UnixMilli(), ic.Header, []byte(key), limit)
	switch {
	case st != http.StatusOK:
		s.finish(e, nil, prior) // still unknown: the next retry searches again
		code, msg := respond.CoreStatus(st, fmt.Sprintf("%s %q: cannot tell whether an earlier attempt was written (%s); nothing written; retry later", ic.Header, key, msg))
		fail(code, msg)
		return false
	case found:
		e.fp = fp
		a := okAnswer(topic, d)
		s.finish(e, a, nil)
		metrics.Idempotency(metrics.IdemFoundWritten)
		logging.Access(a.status, topic, fmt.Sprintf("%s %q: an earlier attempt answered 504 was written; its answer given", ic.Header, key))
		a.write(w)
		return false
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return true
}

// okAnswer is the answer of a single record written at d, as kept for replay.
func okAnswer(topic string, d core.Delivery) *answer {
	rec := &recorder{ResponseWriter: &headerOnly{h: http.Header{}}}
	respond.OK(rec, topic, d)
	return &answer{status: rec.status, contentType: rec.Header().Get("Content-Type"), body: rec.body.Bytes()}
}

// headerOnly is a ResponseWriter that keeps headers and drops the rest (recorder keeps the body).
type headerOnly struct{ h http.Header }

func (w *headerOnly) Header() http.Header         { return w.h }
func (w *headerOnly) Write(p []byte) (int, error) { return len(p), nil }
func (w *headerOnly) WriteHeader(int)             {}
