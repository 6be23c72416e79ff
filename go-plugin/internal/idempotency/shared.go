package idempotency

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/topicgate/topicgate/go-plugin/internal/config"
	"github.com/topicgate/topicgate/go-plugin/internal/core"
	"github.com/topicgate/topicgate/go-plugin/internal/logging"
	"github.com/topicgate/topicgate/go-plugin/internal/metrics"
	"github.com/topicgate/topicgate/go-plugin/internal/request"
	"github.com/topicgate/topicgate/go-plugin/internal/respond"
)

// With the core option "idempotency" the keys live in a Kafka topic that every replica appends
// to and reads back (core.IntentLog), instead of this replica's memory: a keyed request appends
// its intent, waits until the log is read past it, and the key's earliest intent wins. The
// winner serves the request and appends its answer; the others replay that answer (422 for a
// different request), wait for it, or, when the winner ended without one (released, or silent
// past its delivery timeout), search the topic for the key's record and take the key over when
// none was written (the earliest takeover wins).

// Record kinds of the shared log.
const (
	kindIntent  = "intent"  // a replica means to serve the key (Of set: taking it over from that intent)
	kindAnswer  = "answer"  // the key's answer: the first one is final
	kindRelease = "release" // the intent Of ended without an answer
)

// logRecord is the value of a shared log record (JSON).
type logRecord struct {
	Kind    string `json:"kind"`
	FP      string `json:"fp"`                // the request's fingerprint, hex
	Replica string `json:"replica,omitempty"` // who appended it
	At      int64  `json:"at,omitempty"`      // intent: when it was appended (epoch ms)
	// Until (intent): after it, an intent still without answer or release is taken to have failed.
	Until int64 `json:"until,omitempty"`
	// Of (takeover intent, release): the offset of the intent concerned.
	Of *int64 `json:"of,omitempty"`
	// Unknown (release): the record may have been written (a 5xx): search before writing again.
	Unknown     bool   `json:"unknown,omitempty"`
	Status      int    `json:"status,omitempty"`
	ContentType string `json:"ct,omitempty"`
	Body        []byte `json:"body,omitempty"`
}

// replicaID names this gateway process in the intents it appends.
var replicaID = func() string {
	h, _ := os.Hostname()
	return h + "/" + strconv.Itoa(os.Getpid()) + "/" + strconv.FormatInt(time.Now().UnixNano(), 36)
}()

// sharedCheck bounds one wait for another replica's answer, so a client that went away is noticed.
const sharedCheck = 250 * time.Millisecond

// sharedMinWait is the least time left worth waiting for another replica's answer; less is a 409.
const sharedMinWait = 20 * time.Millisecond

// defaultSharedWait bounds a keyed request without a deadline.
const defaultSharedWait = 30 * time.Second

// sharedLog is find's shared log when its publisher has one.
func sharedLog(find Finder) (core.IntentLog, time.Duration) {
	l, ok := find.(core.IntentLog)
	if !ok {
		return nil, 0
	}
	on, dt := l.Shared()
	if !on {
		return nil, 0
	}
	return l, dt
}

// owner is the intent that holds a key now, as the log's records say.
type owner struct {
	offset   int64
	rec      logRecord
	released bool
	unknown  bool
}

// resolve reads a key's records in offset order: the first answer, if any, else the owner (the
// earliest intent, or the earliest takeover of the owner before it).
func resolve(recs []core.IntentRecord) (answer *logRecord, o *owner) {
	for _, r := range recs {
		var v logRecord
		if json.Unmarshal(r.Value, &v) != nil {
			continue // not ours: ignored
		}
		switch v.Kind {
		case kindAnswer:
			return &v, o
		case kindIntent:
			if (o == nil && v.Of == nil) || (o != nil && v.Of != nil && *v.Of == o.offset) {
				o = &owner{offset: r.Offset, rec: v}
			}
		case kindRelease:
			if o != nil && v.Of != nil && *v.Of == o.offset {
				o.released, o.unknown = true, v.Unknown
			}
		}
	}
	return nil, o
}

// serveShared serves a keyed request through the shared log l; see the comment at the top.
func serveShared(w http.ResponseWriter, r *http.Request, l core.IntentLog, deliveryTimeout time.Duration,
	rc *config.Route, key, topic string, bodyLimit int64, find Finder, fail func(int, string),
	serve func(http.ResponseWriter, *http.Request)) {
	ic := &rc.Idempotency
	body, err := io.ReadAll(io.LimitReader(r.Body, bodyLimit+1))
	if err == nil && int64(len(body)) > bodyLimit {
		err = fmt.Errorf("the body is larger than the limit of %d bytes", bodyLimit)
	}
	if err != nil {
		fail(http.StatusBadRequest, "cannot read the request body: "+err.Error())
		return
	}
	h := sha256.New()
	writePrefix(h, r, topic)
	h.Write(body)
	fp := hex.EncodeToString(h.Sum(nil))
	deadline := time.Now().Add(defaultSharedWait)
	if d, ok := r.Context().Deadline(); ok {
		deadline = d
	}
	logKey := []byte(rc.Prefix + "\x00" + topic + "\x00" + key)
	logFail := func(st int, msg string) {
		code := st
		if code == 200 || code == 404 {
			code = http.StatusServiceUnavailable
		}
		// msg is about the log's own record (the core's words may say it "may have been written"
		// and "retry later"): the request's record was not written either way.
		msg = strings.TrimSuffix(strings.TrimSuffix(msg, "; retry later"), "; retry")
		fail(code, fmt.Sprintf("%s %q: the shared idempotency log failed (its record: %s); this request's record was not written; retry later", ic.Header, key, msg))
	}
	appendRec := func(v logRecord) (core.Delivery, bool) {
		b, _ := json.Marshal(v)
		d, st, msg := l.IntentAppend(logKey, b)
		if st != 200 {
			logFail(st, msg)
			return d, false
		}
		return d, true
	}
	intent := func(of *int64) (core.Delivery, bool) {
		at := time.Now()
		return appendRec(logRecord{Kind: kindIntent, FP: fp, Replica: replicaID, At: at.UnixMilli(),
			Until: at.Add(time.Until(deadline) + deliveryTimeout + time.Second).UnixMilli(), Of: of})
	}
	replay := func(a *logRecord) {
		if a.FP != fp {
			metrics.Idempotency(metrics.IdemConflict)
			fail(http.StatusUnprocessableEntity, fmt.Sprintf("%s %q was used for a different request on this topic (body, message-key or message-headers differ); nothing written; send it with a new key", ic.Header, key))
			return
		}
		metrics.Idempotency(metrics.IdemReplayed)
		logging.Access(a.Status, topic, fmt.Sprintf("answer replayed for %s %q", ic.Header, key))
		(&answer{status: a.Status, contentType: a.ContentType, body: a.Body}).write(w)
	}
	// An answer already read is final: replay it without appending an intent.
	if recs, st, _ := l.IntentRecords(logKey); st == 200 {
		if a, _ := resolve(recs); a != nil {
			replay(a)
			return
		}
	}
	mine, ok := intent(nil)
	if !ok {
		return
	}
	// giveUp releases this request's intent when it ends unserved before knowing whether it owns
	// the key (nothing written): another replica need not wait for its until.
	giveUp := func(st int, msg string) {
		b, _ := json.Marshal(logRecord{Kind: kindRelease, FP: fp, Replica: replicaID, Of: &mine.Offset})
		l.IntentAppend(logKey, b)
		logFail(st, msg)
	}
	waited := false
	for {
		read, st, msg := l.IntentWaitRead(mine.Partition, mine.Offset, time.Until(deadline))
		if st != 200 || !read {
			if st == 200 {
				msg = "not read back before the request's deadline"
			}
			giveUp(st, msg)
			return
		}
		recs, st, msg := l.IntentRecords(logKey)
		if st != 200 {
			giveUp(st, msg)
			return
		}
		a, o := resolve(recs)
		switch {
		case a != nil:
			replay(a)
			return
		case o == nil:
			giveUp(http.StatusServiceUnavailable, "this request's intent is missing from the log read back")
			return
		case o.offset == mine.Offset:
			serveOwner(w, r, l, logKey, fp, mine.Offset, body, ic, key, topic, serve)
			return
		case o.rec.FP != fp:
			metrics.Idempotency(metrics.IdemConflict)
			fail(http.StatusUnprocessableEntity, fmt.Sprintf("%s %q is in use for a different request on this topic (body, message-key or message-headers differ); nothing written; send it with a new key", ic.Header, key))
			return
		case o.released && !o.unknown:
			// Nothing was written for it: take the key over (the earliest takeover wins).
			of := o.offset
			if mine, ok = intent(&of); !ok {
				return
			}
			continue
		case o.released || time.Now().UnixMilli() > o.rec.Until:
			// It may have been written: search from its attempt before writing again.
			limit := time.Until(deadline) / 2
			found, d, st, msg := find.FindByHeader(topic, o.rec.At-searchSkew.Milliseconds(), ic.Header, []byte(key), limit)
			if st != 200 {
				fail(respond.CoreStatus(st, fmt.Sprintf("%s %q: cannot tell whether an earlier attempt was written (%s); nothing written; retry later", ic.Header, key, msg)))
				return
			}
			if found {
				a := okAnswer(topic, d)
				appendRec(logRecord{Kind: kindAnswer, FP: o.rec.FP, Replica: replicaID, Status: a.status, ContentType: a.contentType, Body: a.body})
				metrics.Idempotency(metrics.IdemFoundWritten)
				logging.Access(a.status, topic, fmt.Sprintf("%s %q: an earlier attempt was written; its answer given", ic.Header, key))
				a.write(w)
				return
			}
			metrics.Idempotency(metrics.IdemTakenOver)
			of := o.offset
			if mine, ok = intent(&of); !ok {
				return
			}
			continue
		}
		// Another replica serves the key now: wait for its answer.
		if !waited {
			waited = true
			metrics.Idempotency(metrics.IdemWaited)
		}
		if time.Until(deadline) < sharedMinWait {
			metrics.Idempotency(metrics.IdemConflict)
			fail(http.StatusConflict, fmt.Sprintf("%s %q: a request with this key is still in flight; retry later", ic.Header, key))
			return
		}
		if r.Context().Err() != nil {
			giveUp(http.StatusServiceUnavailable, "the client went away while another replica served the key")
			return
		}
		// Woken by the next record of the key (the owner's answer, release or a takeover), else
		// at the owner's until (then searched for), the request's deadline or the next check.
		wait := min(time.Until(deadline), time.Until(time.UnixMilli(o.rec.Until))+time.Millisecond, sharedCheck)
		if _, st, msg := l.IntentWaitKey(logKey, len(recs), max(wait, time.Millisecond)); st != 200 {
			giveUp(st, msg)
			return
		}
	}
}

// serveOwner serves the request that holds its key and appends the outcome: its 2xx answer; a
// release when it ended otherwise (unknown for a 5xx, whose record may have been written); a
// single record still in flight at its answer appends once its delivery report arrives.
func serveOwner(w http.ResponseWriter, r *http.Request, l core.IntentLog, logKey []byte, fp string, mine int64,
	body []byte, ic *config.Idempotency, key, topic string, serve func(http.ResponseWriter, *http.Request)) {
	watch := core.NewWatch()
	r2 := r.WithContext(core.WithWatch(request.WithIdempotencyKey(r.Context(), ic.Header, key), watch))
	r2.Body = io.NopCloser(bytes.NewReader(body))
	rec := &recorder{ResponseWriter: w}
	outcome := logRecord{Kind: kindRelease, FP: fp, Replica: replicaID, Of: &mine, Unknown: true}
	appendOutcome := func(v logRecord) {
		b, _ := json.Marshal(v)
		if _, st, msg := l.IntentAppend(logKey, b); st != 200 {
			logging.Warning(fmt.Sprintf("%s %q: cannot append its outcome to the shared idempotency log (%d %s); other replicas search the topic after its deadline", ic.Header, key, st, msg))
		}
	}
	defer func() { // also when serve panics: the key must not stay held until its deadline
		if outcome.Kind != "" {
			appendOutcome(outcome)
		}
	}()
	serve(rec, r2)
	switch {
	case rec.status/100 == 2 && !rec.over:
		outcome = logRecord{Kind: kindAnswer, FP: fp, Replica: replicaID, Status: rec.status,
			ContentType: rec.Header().Get("Content-Type"), Body: rec.body.Bytes()}
	case watch.Pending():
		outcome.Kind = ""
		go func() {
			o := <-watch.Late
			if o.Status == http.StatusOK {
				a := okAnswer(topic, o.Delivery)
				appendOutcome(logRecord{Kind: kindAnswer, FP: fp, Replica: replicaID, Status: a.status, ContentType: a.contentType, Body: a.body})
				return
			}
			appendOutcome(logRecord{Kind: kindRelease, FP: fp, Replica: replicaID, Of: &mine, Unknown: o.Status >= 500})
		}()
	case rec.status > 0 && rec.status < 500:
		outcome.Unknown = false // refused before anything was produced
	}
}
