package read

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"

	"github.com/topicgate/topicgate/go-plugin/internal/config"
	"github.com/topicgate/topicgate/go-plugin/internal/core"
	"github.com/topicgate/topicgate/go-plugin/internal/metrics"
	"github.com/topicgate/topicgate/go-plugin/internal/respond"
)

// Shared fetches (issue #22): per gateway, topic, raw_on_error setting and partition streamed
// (every partition, or the one of partition= streams) one follower reads the topic's tail through
// a core tail (one consumer kept assigned, whatever the number of clients) and hands each round's
// records to every event stream that has caught up with it. A stream behind the tail reads its
// own pages until it reaches the follower, then joins; positions stay the client's, so resuming
// is exact as before.

// followerKey names a follower: what its rounds depend on.
type followerKey struct {
	pub   core.Publisher
	topic string
	raw   bool
	// partition is the one partition its streams read (partition=); -1: every partition. A
	// stream's event ids name the partitions it reads, so a stream of one partition follows a
	// tail of that partition only.
	partition int32
}

// fevent is one record as the follower read it, parsed once for every client.
type fevent struct {
	e   entry
	raw json.RawMessage
}

// batch is one round of a follower's records, shared read-only by its clients.
type batch struct {
	events []fevent
	bytes  int
}

// follower reads one topic's tail for its clients.
type follower struct {
	key  followerKey
	next Positions // where the next round reads from; guarded by fanMu
	subs map[*sub]struct{}
	lag  int64 // records behind the ends after its last round; guarded by fanMu
}

// sub is a stream's place at a follower: the rounds it has not written yet.
type sub struct {
	limit  int // read.max_client_buffer_bytes
	queue  []*batch
	bytes  int
	cut    string // why the follower dropped it ("" while it is in)
	reason string // the cut's metric label
	status int    // with an error cut: the fetch's status
	signal chan struct{}
}

var (
	// fanMu guards every follower and its subs: rounds are rare next to the events they carry.
	fanMu     sync.Mutex
	followers = map[followerKey]*follower{}
)

// join puts a stream at key's follower (started at from when there is none) and answers where
// the follower's next round starts: the stream must reach that before it writes the rounds.
func join(key followerKey, from Positions, limit int) (*sub, Positions) {
	s := &sub{limit: limit, signal: make(chan struct{}, 1)}
	fanMu.Lock()
	defer fanMu.Unlock()
	f := followers[key]
	if f == nil {
		f = &follower{key: key, next: Positions{}, subs: map[*sub]struct{}{}}
		for p, o := range from {
			f.next[p] = o
		}
		followers[key] = f
		metrics.ReadFollowers(1)
		go f.run()
	}
	f.subs[s] = struct{}{}
	at := make(Positions, len(f.next))
	for p, o := range f.next {
		at[p] = o
	}
	return s, at
}

// leave takes s from key's follower; the follower stops after its round once it has none.
func leave(key followerKey, s *sub) {
	fanMu.Lock()
	defer fanMu.Unlock()
	if f := followers[key]; f != nil {
		delete(f.subs, s)
	}
}

// take hands the stream its queued rounds and, once dropped, why (the cut is counted already).
func (s *sub) take() ([]*batch, string, string, int) {
	fanMu.Lock()
	defer fanMu.Unlock()
	q := s.queue
	s.queue, s.bytes = nil, 0
	return q, s.cut, s.reason, s.status
}

// dropLocked ends s's place with why; fanMu is held.
func (f *follower) dropLocked(s *sub, why, reason string, status int) {
	delete(f.subs, s)
	s.queue, s.bytes = nil, 0
	s.cut, s.reason, s.status = why, reason, status
	// Counted when it happens: the stream's handler may be blocked writing to its client.
	metrics.ReadCut(reason)
	select {
	case s.signal <- struct{}{}:
	default:
	}
}

// topicLagLocked is the lag of topic's most lagging follower (its streams of every partition and
// of single partitions have followers of their own); fanMu is held.
func topicLagLocked(topic string) int64 {
	var lag int64
	for k, f := range followers {
		if k.topic == topic {
			lag = max(lag, f.lag)
		}
	}
	return lag
}

// lagGone takes the stopped follower's lag out of its topic's (gone with the topic's last one).
func (f *follower) lagGone() {
	fanMu.Lock()
	defer fanMu.Unlock()
	for k := range followers {
		if k.topic == f.key.topic {
			metrics.ReadLag(f.key.topic, topicLagLocked(f.key.topic))
			return
		}
	}
	metrics.ReadLagGone(f.key.topic)
}

// run reads rounds until no stream is left or a fetch fails (every stream then ends with why).
func (f *follower) run() {
	defer metrics.ReadFollowers(-1)
	defer f.lagGone()
	fanMu.Lock()
	req := pageRequest{Topic: f.key.topic, Start: "earliest", Offsets: f.next.offsets(), RawOnError: f.key.raw}
	fanMu.Unlock()
	if f.key.partition >= 0 {
		req.Partitions = []int32{f.key.partition}
	}
	// One consumer kept assigned from the follower's start: Kafka serves it fetches as records
	// arrive, not an assignment, fetch to the end and prefetch per round as a page's reader.
	tail, st, msg := core.OpenTail(f.key.pub, mustJSON(req))
	if tail != nil {
		defer tail.Close()
	}
	for {
		fanMu.Lock()
		if len(f.subs) == 0 {
			delete(followers, f.key)
			fanMu.Unlock()
			return
		}
		fanMu.Unlock()
		var b []byte
		if tail != nil {
			metrics.ReadFollowerFetch(f.key.topic)
			b, st, msg = tail.Round(config.SSEPageWaitMs, config.MaxReadLimit)
		}
		var p page
		if st == http.StatusOK && json.Unmarshal(b, &p) != nil {
			st, msg = http.StatusInternalServerError, "internal error: the core's page is not JSON"
		}
		if st != http.StatusOK {
			st, msg = respond.CoreStatus(st, msg)
			fanMu.Lock()
			delete(followers, f.key)
			for s := range f.subs {
				f.dropLocked(s, msg, metrics.CutError, st)
			}
			fanMu.Unlock()
			return
		}
		bt := &batch{events: make([]fevent, 0, len(p.Records))}
		for _, raw := range p.Records {
			var e entry
			if json.Unmarshal(raw, &e) != nil {
				continue
			}
			bt.events = append(bt.events, fevent{e: e, raw: raw})
			bt.bytes += len(raw)
		}
		var lag int64
		for k, end := range p.Ends {
			if at, ok := p.Next[k]; ok && end > at {
				lag += end - at
			}
		}
		fanMu.Lock()
		f.lag = lag
		metrics.ReadLag(f.key.topic, topicLagLocked(f.key.topic))
		for k, v := range p.Next {
			n, _ := strconv.ParseInt(k, 10, 32)
			f.next[int32(n)] = v
		}
		if len(bt.events) > 0 {
			for s := range f.subs {
				// A stream with nothing queued takes a round whatever its size (at most
				// read.max_limit records), so one large round never cuts every client.
				if s.bytes > 0 && s.bytes+bt.bytes > s.limit {
					f.dropLocked(s, fmt.Sprintf("the client fell more than %d bytes of events behind (read.max_client_buffer_bytes); reconnect with Last-Event-ID", s.limit), metrics.CutSlow, 0)
					continue
				}
				s.queue = append(s.queue, bt)
				s.bytes += bt.bytes
				select {
				case s.signal <- struct{}{}:
				default:
				}
			}
		}
		fanMu.Unlock()
	}
}
