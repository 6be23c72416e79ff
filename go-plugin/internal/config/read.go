package config

import "fmt"

// Defaults and bounds of a route's "read" block (the read side, package read).
const (
	DefaultReadLimit = 100
	// MaxReadLimit is the core's bound on records per page (read_page::MAX_PAGE_RECORDS).
	MaxReadLimit = 1000
	// MaxReadWaitMs is the core's bound on a page's long poll (read_page::MAX_WAIT_MS).
	MaxReadWaitMs        = 30000
	defaultKeepAliveMs   = 15000
	defaultMaxReaders    = 64
	defaultMaxStallMs    = 10000
	defaultSSEPageWaitMs = 5000
	// defaultMaxClientBufferBytes bounds the events queued for one stream (4 MiB).
	defaultMaxClientBufferBytes = 4 << 20
	// DefaultMaxGatewayReaders is max_gateway_readers unless the server block sets it: pages and
	// event streams of all routes at once (a stream costs a goroutine, a socket and its queue).
	DefaultMaxGatewayReaders = 10000
	// MaxGatewayReadersLimit is the largest max_gateway_readers accepted.
	MaxGatewayReadersLimit = 1000000
	// defaultMaxPageBytes bounds the record JSON of one page's answer (16 MiB).
	defaultMaxPageBytes = 16 << 20
)

// Read is a route's read side: which topics GET serves, decoded (package read).
type Read struct {
	// Topics are the readable topics, separate from the writable ones.
	Topics map[string]bool
	// Limit is a page's default record count; MaxLimit the most a request may ask.
	Limit    int
	MaxLimit int
	// KeepAliveMs is how often an idle event stream gets a comment line.
	KeepAliveMs int
	// MaxReaders bounds the pages and streams the route serves at once (more: 503).
	MaxReaders int
	// MaxReadersPerTopic bounds the pages and streams of one topic of the route at once (more: 503).
	MaxReadersPerTopic int
	// MaxClientBufferBytes bounds the bytes of events queued for one stream that has not taken
	// them yet (more: the stream is cut with a final event saying why).
	MaxClientBufferBytes int
	// MaxPageBytes bounds the record JSON of one page's answer (the page ends before the record
	// that would pass it; one record always goes).
	MaxPageBytes int
	// MaxStallMs is how long an event stream's client may leave events untaken (its connection
	// accepting no bytes) before the stream is cut.
	MaxStallMs int
	// RawOnError adds an undecodable value's bytes (base64) to its error entry.
	RawOnError bool
}

// rawRead is the JSON shape of a route's "read" block.
type rawRead struct {
	Topics      []string `json:"topics"`
	Limit       *int     `json:"limit"`
	MaxLimit    *int     `json:"max_limit"`
	KeepAliveMs *int     `json:"keep_alive_ms"`
	MaxReaders  *int     `json:"max_readers"`
	PerTopic    *int     `json:"max_readers_per_topic"`
	ClientBuf   *int     `json:"max_client_buffer_bytes"`
	PageBytes   *int     `json:"max_page_bytes"`
	MaxStallMs  *int     `json:"max_stall_ms"`
	RawOnError  bool     `json:"raw_on_error"`
}

// SSEPageWaitMs is how long one fetch of an event stream waits for records before it looks again.
const SSEPageWaitMs = defaultSSEPageWaitMs

// Readable tells whether the route serves topic for reading.
func (rc *Route) Readable(topic string) bool {
	return rc.Read != nil && rc.Read.Topics[topic]
}

// parseRead reads a route's "read" block (nil: the route serves no reads).
func parseRead(rr *rawRead, where string) (*Read, error) {
	if rr == nil {
		return nil, nil
	}
	rd := &Read{Topics: map[string]bool{}, Limit: DefaultReadLimit, MaxLimit: MaxReadLimit, KeepAliveMs: defaultKeepAliveMs, MaxReaders: defaultMaxReaders, MaxStallMs: defaultMaxStallMs, RawOnError: rr.RawOnError}
	if len(rr.Topics) == 0 {
		return nil, fmt.Errorf("%s: %s: read.topics: list the readable topics", Name, where)
	}
	for _, t := range rr.Topics {
		if err := CheckTopicName(t); err != nil {
			return nil, fmt.Errorf("%s: %s: read.topics: %v", Name, where, err)
		}
		rd.Topics[t] = true
	}
	bounded := func(v *int, key string, lo, hi int, dst *int) error {
		if v == nil {
			return nil
		}
		if *v < lo || *v > hi {
			return fmt.Errorf("%s: %s: read.%s must be %d to %d", Name, where, key, lo, hi)
		}
		*dst = *v
		return nil
	}
	if err := bounded(rr.MaxLimit, "max_limit", 1, MaxReadLimit, &rd.MaxLimit); err != nil {
		return nil, err
	}
	rd.Limit = min(rd.Limit, rd.MaxLimit)
	if err := bounded(rr.Limit, "limit", 1, rd.MaxLimit, &rd.Limit); err != nil {
		return nil, err
	}
	if err := bounded(rr.KeepAliveMs, "keep_alive_ms", 100, 600000, &rd.KeepAliveMs); err != nil {
		return nil, err
	}
	if err := bounded(rr.MaxStallMs, "max_stall_ms", 100, 600000, &rd.MaxStallMs); err != nil {
		return nil, err
	}
	if err := bounded(rr.MaxReaders, "max_readers", 1, 100000, &rd.MaxReaders); err != nil {
		return nil, err
	}
	// By default one topic may take the whole route's share.
	rd.MaxReadersPerTopic = rd.MaxReaders
	if err := bounded(rr.PerTopic, "max_readers_per_topic", 1, rd.MaxReaders, &rd.MaxReadersPerTopic); err != nil {
		return nil, err
	}
	rd.MaxClientBufferBytes = defaultMaxClientBufferBytes
	rd.MaxPageBytes = defaultMaxPageBytes
	if err := bounded(rr.PageBytes, "max_page_bytes", 1024, 1<<30, &rd.MaxPageBytes); err != nil {
		return nil, err
	}
	if err := bounded(rr.ClientBuf, "max_client_buffer_bytes", 65536, 1<<30, &rd.MaxClientBufferBytes); err != nil {
		return nil, err
	}
	return rd, nil
}
