// Package idempotency answers a retried request the way its first attempt was answered (the IETF
// HTTP API working group's draft "The Idempotency-Key HTTP Header Field"): a request whose key this
// gateway already answered with a 2xx for the same route and topic gets that answer again and
// writes nothing; one arriving while the first is in flight waits for the first's answer; a key
// reused with a different request is a 422. Each record written carries the key in a record
// header, so that consumers can deduplicate too.
package idempotency

import (
	"bytes"
	"container/list"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/topicgate/topicgate/go-plugin/internal/config"
	"github.com/topicgate/topicgate/go-plugin/internal/core"
	"github.com/topicgate/topicgate/go-plugin/internal/logging"
	"github.com/topicgate/topicgate/go-plugin/internal/metrics"
	"github.com/topicgate/topicgate/go-plugin/internal/request"
	"github.com/topicgate/topicgate/go-plugin/internal/respond"
)

// MaxKeyLen is the longest key taken (a UUID is 36 characters).
const MaxKeyLen = 255

// maxAnswerBytes bounds an answer kept for replay; a larger one is answered but not kept.
const maxAnswerBytes = 256 << 10

// ReplayedHeader marks an answer replayed from an earlier request with the same key.
const ReplayedHeader = "Idempotent-Replayed"

// Serve serves r through serve unless r carries rc's idempotency header: then a repeat of an
// answered request gets its stored answer, a repeat of one in flight waits for it, and a first
// request is served and its 2xx answer kept for rc.Idempotency.Window. bodyLimit bounds the body
// read to compare a repeat with its first request.
//
// A single record whose outcome is unknown (a 504: the broker may have written it) keeps its key
// in flight until its delivery report settles it (a 200 is then kept as the answer); after a 504
// delivery report the key's next request first searches the topic (find) for the record carrying
// the key, and answers with that record's partition and offset if it is there.
//
// When find's publisher has the shared log (core option "idempotency", core.IntentLog), the keys
// live there, shared by every replica, instead of this replica's memory (shared.go).
func Serve(w http.ResponseWriter, r *http.Request, rc *config.Route, topic string, bodyLimit int64, retryAfter int,
	find Finder, serve func(http.ResponseWriter, *http.Request)) {
	ic := &rc.Idempotency
	values := r.Header.Values(ic.Header)
	if ic.Header == "" || len(values) == 0 {
		serve(w, r)
		return
	}
	fail := func(status int, msg string) {
		logging.Access(status, topic, msg)
		respond.Error(w, status, msg, retryAfter)
	}
	key, err := parseKey(values)
	if err != nil {
		fail(http.StatusBadRequest, fmt.Sprintf("%s: %v", ic.Header, err))
		return
	}
	if l, dt := sharedLog(find); l != nil {
		serveShared(w, r, l, dt, rc, key, topic, bodyLimit, find, fail, serve)
		return
	}
	s := storeFor(rc)
	id := topic + "\x00" + key
	// A first request that ends without a kept answer (5xx, 4xx) lets a waiting repeat go ahead as
	// the first; a few rounds of that and the repeat gives up rather than wait on and on.
	for round := 0; round < 3; round++ {
		e, a, first, prior := s.begin(id)
		if first {
			if prior != nil && !settle(w, r, s, e, prior, ic, key, topic, bodyLimit, find, fail) {
				return
			}
			serveFirst(w, r, s, e, ic, key, topic, serve)
			return
		}
		if a == nil {
			metrics.Idempotency(metrics.IdemWaited)
			s.waiting.Add(1)
			select {
			case <-e.done:
				s.waiting.Add(-1)
			case <-r.Context().Done():
				s.waiting.Add(-1)
				metrics.Idempotency(metrics.IdemConflict)
				fail(http.StatusConflict, fmt.Sprintf("%s %q: a request with this key is still in flight; retry later", ic.Header, key))
				return
			}
			a = e.answer // set before done was closed
		}
		if a != nil {
			fp, err := fingerprint(r, topic, bodyLimit)
			switch {
			case err != nil:
				fail(http.StatusBadRequest, "cannot read the request body: "+err.Error())
			case fp != e.fp:
				metrics.Idempotency(metrics.IdemConflict)
				fail(http.StatusUnprocessableEntity, fmt.Sprintf("%s %q was used for a different request on this topic (body, message-key or message-headers differ); nothing written; send it with a new key", ic.Header, key))
			default:
				metrics.Idempotency(metrics.IdemReplayed)
				logging.Access(a.status, topic, fmt.Sprintf("answer replayed for %s %q", ic.Header, key))
				a.write(w)
			}
			return
		}
	}
	fail(http.StatusConflict, fmt.Sprintf("%s %q: earlier requests with this key keep failing; retry later", ic.Header, key))
}

// serveFirst serves the first request of its key and keeps its answer if it is a 2xx. A single
// record still in flight at its answer (an early 504) keeps the key in flight until its delivery
// report; one answered 504 by its delivery report leaves the key unknown, to be searched for.
func serveFirst(w http.ResponseWriter, r *http.Request, s *store, e *entry, ic *config.Idempotency, key, topic string,
	serve func(http.ResponseWriter, *http.Request)) {
	h := sha256.New()
	writePrefix(h, r, topic)
	body := &hashingBody{ReadCloser: r.Body, h: h}
	watch := core.NewWatch()
	at := now()
	r2 := r.WithContext(core.WithWatch(request.WithIdempotencyKey(r.Context(), ic.Header, key), watch))
	r2.Body = body
	rec := &recorder{ResponseWriter: w}
	var a *answer
	var unknown *attempt
	late := false
	defer func() { // also when serve panics: a waiting repeat must not hang
		if !late {
			s.finish(e, a, unknown)
		}
	}()
	serve(rec, r2)
	if !body.eof { // read to its Content-Length, perhaps, but not yet to io.EOF
		var one [1]byte
		body.Read(one[:])
	}
	if !body.eof || rec.over {
		return
	}
	copy(e.fp[:], h.Sum(nil))
	switch {
	case rec.status/100 == 2:
		a = &answer{status: rec.status, contentType: rec.Header().Get("Content-Type"), body: rec.body.Bytes()}
	case watch.Pending():
		late = true
		go func() {
			o := <-watch.Late
			var a *answer
			var unknown *attempt
			switch o.Status {
			case http.StatusOK:
				a = okAnswer(topic, o.Delivery)
			case http.StatusGatewayTimeout:
				unknown = &attempt{fp: e.fp, at: at}
			}
			s.finish(e, a, unknown)
		}()
	case watch.Status() == http.StatusGatewayTimeout:
		unknown = &attempt{fp: e.fp, at: at}
	}
}

// parseKey takes the key from the header's values: exactly one, a Structured Field string
// ("…", as the draft writes it) or a bare token, of visible ASCII.
func parseKey(values []string) (string, error) {
	if len(values) > 1 {
		return "", errors.New("send the header once")
	}
	k := strings.TrimSpace(values[0])
	if len(k) >= 2 && k[0] == '"' && k[len(k)-1] == '"' {
		k = k[1 : len(k)-1]
	}
	if k == "" || len(k) > MaxKeyLen {
		return "", fmt.Errorf("the key must be 1 to %d characters", MaxKeyLen)
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x21 || k[i] > 0x7e || k[i] == '"' || k[i] == '\\' {
			return "", fmt.Errorf("the key must be visible ASCII without quotes or backslashes (byte %d is not)", i+1)
		}
	}
	return k, nil
}

// writePrefix hashes what besides the body makes a request's records: topic, media type, key and
// record headers.
func writePrefix(h hash.Hash, r *http.Request, topic string) {
	ct, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";")
	for _, part := range append([]string{topic, strings.ToLower(strings.TrimSpace(ct)), r.Header.Get("message-key")},
		r.Header.Values("message-headers")...) {
		io.WriteString(h, strconv.Itoa(len(part))+":"+part)
	}
}

// fingerprint hashes a repeat's request, reading at most limit bytes of its body.
func fingerprint(r *http.Request, topic string, limit int64) (fp [sha256.Size]byte, err error) {
	h := sha256.New()
	writePrefix(h, r, topic)
	n, err := io.Copy(h, io.LimitReader(r.Body, limit+1))
	if err == nil && n > limit {
		err = fmt.Errorf("the body is larger than the limit of %d bytes", limit)
	}
	copy(fp[:], h.Sum(nil))
	return fp, err
}

// hashingBody hashes a request body as the handler reads it; eof says it was read to its end.
type hashingBody struct {
	io.ReadCloser
	h   hash.Hash
	eof bool
}

func (b *hashingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.h.Write(p[:n])
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

// recorder passes an answer through and keeps a copy of it (up to maxAnswerBytes).
type recorder struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
	over   bool
}

func (w *recorder) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *recorder) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if !w.over && w.body.Len()+len(p) <= maxAnswerBytes {
		w.body.Write(p)
	} else {
		w.over = true
	}
	return w.ResponseWriter.Write(p)
}

// Unwrap gives http.ResponseController the server's writer.
func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// answer is a kept answer.
type answer struct {
	status      int
	contentType string
	body        []byte
}

func (a *answer) write(w http.ResponseWriter) {
	if a.contentType != "" {
		w.Header().Set("Content-Type", a.contentType)
	}
	w.Header().Set(ReplayedHeader, "true")
	w.WriteHeader(a.status)
	w.Write(a.body)
}

// entry is a key's first request: in flight until done is closed, then its kept answer (nil:
// none kept, and the entry is gone from the store).
type entry struct {
	id      string
	done    chan struct{}
	answer  *answer
	unknown *attempt // settled without an answer, but perhaps written: search before writing again
	fp      [sha256.Size]byte
	expires time.Time
	elem    *list.Element
}

// store is one route's keys, oldest first in order (for expiry and the key limit).
type store struct {
	mu      sync.Mutex
	entries map[string]*entry
	order   *list.List
	window  time.Duration
	max     int
	waiting atomic.Int32 // repeats waiting for a first request (tests look)
}

// now is the clock (tests move it).
var now = time.Now

var (
	storesMu sync.Mutex
	stores   = map[*config.Route]*store{}
)

// storeFor is rc's store, made on first use; routes live as long as their plugin.
func storeFor(rc *config.Route) *store {
	storesMu.Lock()
	defer storesMu.Unlock()
	s := stores[rc]
	if s == nil {
		s = &store{entries: map[string]*entry{}, order: list.New(), window: rc.Idempotency.Window, max: rc.Idempotency.MaxKeys}
		stores[rc] = s
	}
	return s
}

// begin finds id's entry and its kept answer (nil while in flight), or makes the entry (first
// true): the caller then serves the request and finishes it. prior is the attempt of an entry
// settled unknown that the new entry replaces: the caller searches for its record first.
func (s *store) begin(id string) (e *entry, a *answer, first bool, prior *attempt) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := now()
	s.expire(t)
	if e = s.entries[id]; e != nil {
		if e.unknown == nil {
			return e, e.answer, false, nil
		}
		prior = e.unknown
		s.drop(e)
	}
	for len(s.entries) >= s.max {
		s.drop(s.order.Front().Value.(*entry))
		metrics.Idempotency(metrics.IdemEvicted)
	}
	e = &entry{id: id, done: make(chan struct{}), expires: t.Add(s.window)}
	e.elem = s.order.PushBack(e)
	s.entries[id] = e
	metrics.IdempotencyKeys(1)
	return e, nil, true, prior
}

// finish ends e's first request: a kept answer, or an unknown outcome, stays for the window,
// from now; without either the key is free again.
func (s *store) finish(e *entry, a *answer, unknown *attempt) {
	s.mu.Lock()
	if a != nil || unknown != nil {
		e.answer, e.unknown, e.expires = a, unknown, now().Add(s.window)
		s.order.MoveToBack(e.elem)
	} else if s.entries[e.id] == e {
		s.drop(e)
	}
	s.mu.Unlock()
	close(e.done)
}

// expire drops the answered entries whose window has passed. Entries are in the order they were
// made or answered, so their expiries only grow along the list: stop at the first one not due.
func (s *store) expire(t time.Time) {
	for el := s.order.Front(); el != nil; el = s.order.Front() {
		e := el.Value.(*entry)
		if (e.answer == nil && e.unknown == nil) || t.Before(e.expires) {
			return
		}
		s.drop(e)
	}
}

func (s *store) drop(e *entry) {
	delete(s.entries, e.id)
	s.order.Remove(e.elem)
	metrics.IdempotencyKeys(-1)
}
