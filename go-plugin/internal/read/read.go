// Package read serves a route's readable topics over HTTP (issue #22): GET …/<topic> answers a
// page of records decoded to JSON with the next position, or with Accept: text/event-stream a
// Server-Sent Events stream whose event ids let a reconnect resume exactly (Last-Event-ID).
// Stateless: the position is the client's, no consumer group, any replica serves any client.
package read

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/topicgate/topicgate/go-plugin/internal/config"
	"github.com/topicgate/topicgate/go-plugin/internal/core"
	"github.com/topicgate/topicgate/go-plugin/internal/logging"
	"github.com/topicgate/topicgate/go-plugin/internal/metrics"
	"github.com/topicgate/topicgate/go-plugin/internal/request"
	"github.com/topicgate/topicgate/go-plugin/internal/respond"
	"github.com/topicgate/topicgate/go-plugin/internal/shutdown"
)

// pageRequest is what the core's tg_read_page takes.
type pageRequest struct {
	Topic      string           `json:"topic"`
	Partitions []int32          `json:"partitions,omitempty"`
	Offsets    map[string]int64 `json:"offsets,omitempty"`
	Start      string           `json:"start"`
	Limit      int              `json:"limit"`
	WaitMs     int              `json:"wait_ms"`
	RawOnError bool             `json:"raw_on_error"`
}

// filter keeps the records whose key and header match (query parameters key, header); the
// positions move past the others all the same.
type filter struct {
	key            *string
	header, hvalue string
}

func (f filter) on() bool { return f.key != nil || f.header != "" }

// keeps tells whether the record e passes the filter.
func (f filter) keeps(e entry) bool {
	if f.key != nil {
		// The key as text: a key decoded by a key schema matches only when it decoded to a string.
		var k string
		if len(e.Key) == 0 || string(e.Key) == "null" || json.Unmarshal(e.Key, &k) != nil || k != *f.key {
			return false
		}
	}
	if f.header == "" {
		return true
	}
	for _, h := range e.Headers {
		if h.Name == f.header && h.Value != nil && *h.Value == f.hvalue {
			return true
		}
	}
	return false
}

// page is the core's answer.
type page struct {
	Records []json.RawMessage `json:"records"`
	Next    map[string]int64  `json:"next"`
	// Ends are the partitions' ends as the page's fetches saw them (reader lag).
	Ends map[string]int64 `json:"ends"`
}

// reachedEnds tells whether the page's next positions are at every partition's end as its
// fetches saw it (false while a partition's end is not known yet).
func (p *page) reachedEnds() bool {
	for k, n := range p.Next {
		if e, ok := p.Ends[k]; !ok || n < e {
			return false
		}
	}
	return true
}

// catchUpWaitMs is how long one round of a catching-up stream's tail waits for its first record:
// an empty round that long, with every partition's end known, is the end.
const catchUpWaitMs = 1000

// slots bounds readers at once: each route's (read.max_readers), by path prefix, and each of its
// topics' (read.max_readers_per_topic), by path prefix and topic.
var slots sync.Map // string -> chan struct{}

func slotsOf(key string, n int) chan struct{} {
	if s, ok := slots.Load(key); ok {
		return s.(chan struct{})
	}
	s, _ := slots.LoadOrStore(key, make(chan struct{}, n))
	return s.(chan struct{})
}

// admit takes a reader's slots, the gateway's first (max_gateway_readers), then the route's and
// the topic's; it answers the func that gives them all back, or nil and why (for a 503) with
// none held: a slot taken before a later one refused is given back at once.
func admit(rc *config.Route, topic string) (release func(), busy string) {
	if !takeGateway() {
		return nil, fmt.Sprintf("%d readers already read on this gateway (max_gateway_readers); retry later", MaxGatewayReaders())
	}
	s := slotsOf(rc.Prefix, rc.Read.MaxReaders)
	select {
	case s <- struct{}{}:
	default:
		giveGateway()
		return nil, fmt.Sprintf("%d readers already read on this route (read.max_readers); retry later", cap(s))
	}
	ts := slotsOf(rc.Prefix+"\x00"+topic, rc.Read.MaxReadersPerTopic)
	select {
	case ts <- struct{}{}:
	default:
		<-s
		giveGateway()
		return nil, fmt.Sprintf("%d readers already read topic %q on this route (read.max_readers_per_topic); retry later", cap(ts), topic)
	}
	return func() {
		<-ts
		<-s
		giveGateway()
	}, ""
}

// Wanted tells whether the router should hand r to Serve: a GET on a route with a read block.
func Wanted(r *http.Request, rc *config.Route) bool {
	return r.Method == http.MethodGet && rc.Read != nil
}

// Serve answers a GET of route rc: 404 for a topic the route does not serve for reading, 400 for
// bad parameters, else a page or an event stream.
func Serve(w http.ResponseWriter, r *http.Request, o *request.Options, rc *config.Route) {
	topic := strings.TrimPrefix(r.URL.Path, rc.Prefix)
	fail := func(status int, msg string) {
		logging.AccessRead(status, topic, msg)
		respond.Error(w, status, msg, o.RetryAfter)
	}
	if !rc.Readable(topic) {
		fail(http.StatusNotFound, fmt.Sprintf("topic %q is not readable on this route", clip(topic)))
		return
	}
	req, f, sse, err := parse(r, rc.Read, topic)
	if err != nil {
		fail(http.StatusBadRequest, err.Error())
		return
	}
	release, busy := admit(rc, topic)
	if release == nil {
		fail(http.StatusServiceUnavailable, busy)
		return
	}
	defer release()
	if sse {
		defer metrics.ReaderIn("sse")()
		stream(w, r, o, rc.Read, req, f)
		return
	}
	defer metrics.ReaderIn("page")()
	b, st, msg := core.ReadPage(o.Pub, mustJSON(req))
	if st != http.StatusOK {
		st, msg = respond.CoreStatus(st, msg)
		fail(st, msg)
		return
	}
	var p page
	if err := json.Unmarshal(b, &p); err != nil {
		fail(http.StatusInternalServerError, "internal error: the core's page is not JSON")
		return
	}
	pos := Positions{}
	for k, v := range p.Next {
		n, _ := strconv.ParseInt(k, 10, 32)
		pos[int32(n)] = v
	}
	kept := make([]json.RawMessage, 0, len(p.Records))
	size := 0
	for i, raw := range p.Records {
		var e entry
		if json.Unmarshal(raw, &e) != nil || !f.keeps(e) {
			continue
		}
		// read.max_page_bytes: the page ends before the record that would pass it (one record
		// always goes, so paging moves on); next starts each partition at its first record left.
		if len(kept) > 0 && size+len(raw) > rc.Read.MaxPageBytes {
			rewind(pos, p.Records[i:])
			break
		}
		kept = append(kept, raw)
		size += len(raw)
		metrics.ReadSent(topic, len(raw), e.Error != "")
	}
	p.Records = kept
	if p.Records == nil {
		p.Records = []json.RawMessage{}
	}
	respond.JSON(w, http.StatusOK, map[string]interface{}{"records": p.Records, "next": pos.String()})
}

// rewind moves pos back to the first offset of each partition among left (records in the order
// read: each partition's in offset order).
func rewind(pos Positions, left []json.RawMessage) {
	seen := map[int32]bool{}
	for _, raw := range left {
		var e entry
		if json.Unmarshal(raw, &e) == nil && !seen[e.Partition] {
			seen[e.Partition] = true
			pos[e.Partition] = e.Offset
		}
	}
}

// parse reads the query (partition, offset, position, start, limit, wait, key, header) and, for a
// stream, Last-Event-ID. Errors name the parameter.
func parse(r *http.Request, rd *config.Read, topic string) (req pageRequest, f filter, sse bool, err error) {
	req, sse, err = parsePage(r, rd, topic)
	if err != nil {
		return req, f, sse, err
	}
	q := r.URL.Query()
	if q.Has("key") {
		k := q.Get("key")
		f.key = &k
	}
	if q.Has("header") {
		name, value, ok := strings.Cut(q.Get("header"), ":")
		if !ok || name == "" {
			return req, f, sse, fmt.Errorf("query parameter header: give <name>:<value>")
		}
		f.header, f.hvalue = name, value
	}
	return req, f, sse, nil
}

// parsePage reads what the core's page request takes.
func parsePage(r *http.Request, rd *config.Read, topic string) (pageRequest, bool, error) {
	req := pageRequest{Topic: topic, Start: "latest", Limit: rd.Limit, RawOnError: rd.RawOnError}
	sse := strings.Contains(r.Header.Get("Accept"), "text/event-stream")
	q := r.URL.Query()
	for k := range q {
		switch k {
		case "partition", "offset", "position", "start", "limit", "wait", "key", "header":
			if len(q[k]) > 1 {
				return req, sse, fmt.Errorf("query parameter %s: given more than once", k)
			}
		default:
			return req, sse, fmt.Errorf("query parameter %q is unknown (partition, offset, position, start, limit, wait, key, header)", clip(k))
		}
	}
	if v := q.Get("partition"); v != "" {
		p, err := strconv.ParseInt(v, 10, 32)
		if err != nil || p < 0 {
			return req, sse, fmt.Errorf("query parameter partition: %q is not a partition number", clip(v))
		}
		req.Partitions = []int32{int32(p)}
	}
	if v := q.Get("offset"); v != "" {
		o, err := strconv.ParseInt(v, 10, 64)
		if err != nil || o < 0 {
			return req, sse, fmt.Errorf("query parameter offset: %q is not an offset", clip(v))
		}
		if req.Partitions == nil {
			return req, sse, fmt.Errorf("query parameter offset: needs partition (or give position=<partition>:<offset>,…)")
		}
		req.Offsets = map[string]int64{strconv.Itoa(int(req.Partitions[0])): o}
	}
	if v := q.Get("position"); v != "" {
		if req.Offsets != nil {
			return req, sse, fmt.Errorf("query parameter position: give either position or offset")
		}
		pos, err := ParsePositions(v)
		if err != nil {
			return req, sse, fmt.Errorf("query parameter position: %v", err)
		}
		req.Offsets = pos.offsets()
	}
	if v := q.Get("start"); v != "" {
		switch v {
		case "earliest", "latest":
			req.Start = v
		default:
			ms, err := strconv.ParseInt(v, 10, 64)
			if err != nil || ms < 0 {
				return req, sse, fmt.Errorf("query parameter start: %q is not earliest, latest or a timestamp in milliseconds since the epoch", clip(v))
			}
			req.Start = "timestamp:" + v
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > rd.MaxLimit {
			return req, sse, fmt.Errorf("query parameter limit: must be 1 to %d", rd.MaxLimit)
		}
		req.Limit = n
	}
	if v := q.Get("wait"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > config.MaxReadWaitMs {
			return req, sse, fmt.Errorf("query parameter wait: must be 0 to %d (milliseconds)", config.MaxReadWaitMs)
		}
		req.WaitMs = n
	}
	if id := r.Header.Get("Last-Event-ID"); id != "" && sse {
		if req.Offsets != nil {
			return req, sse, fmt.Errorf("Last-Event-ID: give either it or offset/position")
		}
		pos, err := ParsePositions(id)
		if err != nil {
			return req, sse, fmt.Errorf("Last-Event-ID: %v (expected <partition>:<next offset>,… as sent in the event ids)", err)
		}
		req.Offsets = pos.offsets()
		// A partition the id does not name was added after it: read it whole.
		req.Start = "earliest"
	}
	return req, sse, nil
}

func (p Positions) offsets() map[string]int64 {
	out := make(map[string]int64, len(p))
	for k, v := range p {
		out[strconv.Itoa(int(k))] = v
	}
	return out
}

func mustJSON(v interface{}) []byte {
	b, _ := json.Marshal(v)
	return b
}

// entry is what the stream and the filters need of a record.
type entry struct {
	Partition int32           `json:"partition"`
	Offset    int64           `json:"offset"`
	Error     string          `json:"error"`
	Key       json.RawMessage `json:"key"` // text, null, or JSON decoded by the key schema
	Headers   []struct {
		Name  string  `json:"name"`
		Value *string `json:"value"`
	} `json:"headers"`
}

// stream serves an event stream: each record an event (`record`, or `error` for one that does not
// decode) whose id is every partition's next offset after it; a comment while idle; an `end` event
// when the gateway stops or the stream is cut. Its own pages until it is at the tail, then its
// topic's follower's rounds (fanout.go).
func stream(w http.ResponseWriter, r *http.Request, o *request.Options, rd *config.Read, req pageRequest, f filter) {
	ctl := http.NewResponseController(w)
	// An event stream lives past any server write timeout; each round of events gets its own
	// deadline instead (read.max_stall_ms), so a client that takes nothing is cut, never buffered for.
	_ = ctl.SetWriteDeadline(time.Time{})
	stall := time.Duration(rd.MaxStallMs) * time.Millisecond
	var me *sub // the stream's place at its topic's follower, once joined
	cut := func(err error) {
		// The follower may have dropped a client that took nothing first: that is the reason.
		if me != nil {
			if _, why, _, _ := me.take(); why != "" {
				logging.Warning(fmt.Sprintf("read stream of %q cut: %s", req.Topic, why))
				return
			}
		}
		metrics.ReadCut(metrics.CutStall)
		logging.Warning(fmt.Sprintf("read stream of %q cut: the client took no events for %v (read.max_stall_ms): %v", req.Topic, stall, err))
	}
	// end writes the final event (bounded by the stall deadline: a client that takes nothing misses it).
	end := func(v map[string]interface{}) {
		_ = ctl.SetWriteDeadline(time.Now().Add(stall))
		fmt.Fprintf(w, "event: end\ndata: %s\n\n", mustJSON(v))
		_ = ctl.Flush()
	}
	// The first page waits for nothing, and neither do the pages catching up to the follower (it
	// waits at the tail), so the stream's status and headers go out at once.
	req.WaitMs = 0
	var pos Positions
	started := false
	// send writes records as events, moving pos past each; false when the client is cut.
	send := func(events []fevent) bool {
		_ = ctl.SetWriteDeadline(time.Now().Add(stall))
		sent := 0
		for _, ev := range events {
			e := ev.e
			// A round of the follower may hold what the stream's own pages already sent.
			if at, ok := pos[e.Partition]; ok && e.Offset < at {
				continue
			}
			pos[e.Partition] = e.Offset + 1
			// A filtered-out record moves the positions on; the next event's id carries them.
			if !f.keeps(e) {
				continue
			}
			kind := "record"
			if e.Error != "" {
				kind = "error"
			}
			if _, err := fmt.Fprintf(w, "id: %s\nevent: %s\ndata: %s\n\n", pos, kind, ev.raw); err != nil {
				cut(err)
				return false
			}
			sent++
			metrics.ReadSent(req.Topic, len(ev.raw), e.Error != "")
		}
		if sent == 0 {
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				cut(err)
				return false
			}
		}
		if err := ctl.Flush(); err != nil {
			cut(err)
			return false
		}
		_ = ctl.SetWriteDeadline(time.Time{})
		return true
	}
	var at Positions // the follower's next round, once joined
	// A stream of one partition (partition=) follows that partition's follower: its positions
	// (event ids) name only that partition, as its pages'.
	key := followerKey{pub: o.Pub, topic: req.Topic, raw: req.RawOnError, partition: -1}
	if req.Partitions != nil {
		key.partition = req.Partitions[0]
	}
	defer func() {
		if me != nil {
			leave(key, me)
		}
	}()
	// After its first page a stream catches up through a tail of its own: one consumer kept
	// assigned, which fetches ahead while the stream writes (a page per 1,000 records spent most
	// of its time waiting on Kafka requests). Closed once the stream follows the follower.
	var own *core.Tail
	defer func() {
		if own != nil {
			own.Close()
		}
	}()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-shutdown.Stopping():
			metrics.ReadCut(metrics.CutShutdown)
			if started {
				end(map[string]interface{}{"reason": "the gateway is shutting down; reconnect with Last-Event-ID"})
			}
			return
		default:
		}
		if me != nil && !behind(pos, at) {
			if own != nil {
				own.Close()
				own = nil
			}
			follow(w, r, ctl, rd, req.Topic, me, send, end)
			return
		}
		var b []byte
		var st int
		var msg string
		if pos == nil {
			b, st, msg = core.ReadPage(o.Pub, mustJSON(req))
		} else {
			if own == nil {
				req.Offsets = pos.offsets()
				req.Start = "earliest"
				own, st, msg = core.OpenTail(o.Pub, mustJSON(req))
			}
			if own != nil {
				b, st, msg = own.Round(catchUpWaitMs, req.Limit)
			}
		}
		if st != http.StatusOK {
			st, msg = respond.CoreStatus(st, msg)
			if !started {
				logging.AccessRead(st, req.Topic, msg)
				respond.Error(w, st, msg, o.RetryAfter)
				return
			}
			metrics.ReadCut(metrics.CutError)
			end(map[string]interface{}{"reason": msg, "status": st})
			return
		}
		var p page
		if err := json.Unmarshal(b, &p); err != nil {
			return
		}
		events := make([]fevent, 0, len(p.Records))
		for _, raw := range p.Records {
			var e entry
			if json.Unmarshal(raw, &e) == nil {
				events = append(events, fevent{e: e, raw: raw})
			}
		}
		if !started {
			w.Header().Set("Content-Type", "text/event-stream")
			w.Header().Set("Cache-Control", "no-cache")
			w.Header().Set("X-Accel-Buffering", "no")
			w.WriteHeader(http.StatusOK)
			started = true
			pos = Positions{}
			// The partitions' starting positions: records move them on from here.
			for k, v := range p.Next {
				n, _ := strconv.ParseInt(k, 10, 32)
				pos[int32(n)] = v
			}
			for _, ev := range events {
				// Next holds the positions after the page; each event's id is the one after it.
				pos[ev.e.Partition] = min(pos[ev.e.Partition], ev.e.Offset)
			}
		} else {
			// A partition added since: the page names where it starts.
			for k, v := range p.Next {
				n, _ := strconv.ParseInt(k, 10, 32)
				if _, ok := pos[int32(n)]; !ok && len(events) == 0 {
					pos[int32(n)] = v
				}
			}
		}
		if !send(events) {
			return
		}
		// The end: a first page short of its limit (a page reads to each partition's end), or a
		// round of the stream's tail that reached every partition's end as its fetches saw it.
		atEnd := len(p.Records) < req.Limit
		if own != nil {
			atEnd = p.reachedEnds()
		}
		// Joined and nothing more to read (records gone by retention meanwhile): follow from here.
		if me != nil && len(events) == 0 && atEnd {
			follow(w, r, ctl, rd, req.Topic, me, send, end)
			return
		}
		// At the end: join the follower, then read up to where its next round starts (the records
		// written meanwhile) before writing its rounds.
		if me == nil && atEnd {
			me, at = join(key, pos, rd.MaxClientBufferBytes)
		}
	}
}

// behind tells whether pos is short of at in some partition.
func behind(pos, at Positions) bool {
	for p, o := range at {
		if cur, ok := pos[p]; ok && cur < o {
			return true
		}
	}
	return false
}

// follow writes the follower's rounds to the stream until the client goes, the gateway stops or
// the stream is cut (its client too far behind, a fetch failed).
func follow(w http.ResponseWriter, r *http.Request, ctl *http.ResponseController, rd *config.Read, topic string, me *sub, send func([]fevent) bool, end func(map[string]interface{})) {
	keepAlive := time.NewTicker(time.Duration(min(rd.KeepAliveMs, config.SSEPageWaitMs)) * time.Millisecond)
	defer keepAlive.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-shutdown.Stopping():
			metrics.ReadCut(metrics.CutShutdown)
			end(map[string]interface{}{"reason": "the gateway is shutting down; reconnect with Last-Event-ID"})
			return
		case <-keepAlive.C:
			if !send(nil) {
				return
			}
		case <-me.signal:
			q, why, _, status := me.take()
			for _, b := range q {
				if !send(b.events) {
					return
				}
			}
			if why != "" {
				logging.Warning(fmt.Sprintf("read stream of %q cut: %s", topic, why))
				v := map[string]interface{}{"reason": why}
				if status != 0 {
					v["status"] = status
				}
				end(v)
				return
			}
			keepAlive.Reset(time.Duration(min(rd.KeepAliveMs, config.SSEPageWaitMs)) * time.Millisecond)
		}
	}
}
