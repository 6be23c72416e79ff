// Package config parses the plugin's "topicgate" block: its routes, their topics and batch
// settings, and the core configuration it hands to the core.
package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"
)

// Name is the name both registerers register under; it is also the key of the
// plugin's own block inside the KrakenD extra_config namespace.
const Name = "topicgate"

const (
	defaultMaxBodyBytes      = 1 << 20 // 1 MiB, librdkafka's default message.max.bytes is about the same
	DefaultRetryAfterSeconds = 5       // Retry-After of a 503 unless retry_after_seconds says otherwise
	defaultMetricsPath       = "/__topicgate/metrics"
	defaultReadyPath         = "/__topicgate/ready"
)

// Route is one exposed group of topics.
type Route struct {
	// Prefix is the path before the topic segment, always ending in "/".
	// Server mode only; in client mode it is optional (empty = any path).
	Prefix string
	// Topics lists the exposed topics (case-sensitive), Pattern matches them; a topic is
	// allowed when it is in Topics or matches Pattern.
	Topics  map[string]bool
	Pattern *regexp.Regexp
	// MaxBodyBytes is the largest accepted request body.
	MaxBodyBytes int64
	// Batch is how the route takes many records per request.
	Batch Batch
	// Confluent serves Confluent REST Proxy's v3 produce API on the route instead (package confluent).
	Confluent bool
	// ClusterID is the v3 cluster id the route answers to ("" accepts any and echoes it).
	ClusterID string
	// Idempotency replays answers to retries carrying an Idempotency-Key (Header "": off).
	Idempotency Idempotency
	// Read serves GET of its topics, decoded (nil: the route never answers a GET with data).
	Read *Read
}

// Plugin is the parsed "topicgate" block of an extra_config.
type Plugin struct {
	// Core is the core configuration, placeholders expanded, re-encoded canonically
	// (object keys sorted) so equal configurations give equal bytes and share a publisher.
	// Core is nil for a server block without routes (one that serves only metrics and readiness).
	Core              []byte
	Routes            []Route
	RetryAfterSeconds int
	// MetricsPath and ReadyPath (server mode) serve the metrics and the readiness probe; "" is off.
	MetricsPath string
	ReadyPath   string
	// TraceHeaders copies the request's traceparent, tracestate and baggage into the record.
	TraceHeaders bool
	// MaxBufferedBodyBytes (server mode; 0: not set, budget.Default) bounds the request body bytes
	// the whole process holds at once.
	MaxBufferedBodyBytes int64
	// MaxGatewayReaders (server mode; 0: not set, DefaultMaxGatewayReaders) bounds the pages and
	// event streams of every route of the process at once (max_gateway_readers).
	MaxGatewayReaders int
	// KeySchema says the core encodes record keys with a key schema (core.key_schema set): keys
	// are then JSON, and an envelope's "key" may be any JSON value.
	KeySchema bool
	// ReadyRequiresBroker (server mode) makes the readiness probe 503 while a producer has no
	// broker connection up (default: it reports the broker and stays 200).
	ReadyRequiresBroker bool
}

// rawRoute is the JSON shape of a route.
type rawRoute struct {
	PathPrefix   *string         `json:"path_prefix"`
	Topics       []string        `json:"topics"`
	TopicPattern *string         `json:"topic_pattern"`
	MaxBodyBytes *int64          `json:"max_body_bytes"`
	Batch        *rawBatch       `json:"batch"`
	API          *string         `json:"api"`
	ClusterID    *string         `json:"cluster_id"`
	Idempotency  *rawIdempotency `json:"idempotency"`
	Read         *rawRead        `json:"read"`
}

// rawConfig is the JSON shape of the plugin's block. Server mode uses Routes; client
// mode uses the top-level route fields (one route: the backend itself).
type rawConfig struct {
	Core              json.RawMessage `json:"core"`
	Routes            []rawRoute      `json:"routes"`
	MaxBodyBytes      *int64          `json:"max_body_bytes"`
	RetryAfterSeconds *int            `json:"retry_after_seconds"`
	MetricsPath       *string         `json:"metrics_path"`
	TraceHeaders      *bool           `json:"trace_headers"`
	ReadyPath         *string         `json:"ready_path"`
	MaxBufferedBody   *int64          `json:"max_buffered_body_bytes"`
	ReadyRequires     *bool           `json:"ready_requires_broker"`
	MaxGatewayReaders *int            `json:"max_gateway_readers"`
	rawRoute
}

// Block extracts extra[Name] from the map KrakenD hands to a plugin factory.
func Block(extra map[string]interface{}) ([]byte, error) {
	v, ok := extra[Name]
	if !ok {
		return nil, fmt.Errorf("%s: missing %q block in the plugin's extra_config", Name, Name)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("%s: cannot encode the %q block: %v", Name, Name, err)
	}
	return b, nil
}

// ParseServer parses the block of the service-level plugin/http-server config; getenv (nil:
// os.LookupEnv) expands the core config's placeholders.
func ParseServer(block []byte, getenv func(string) (string, bool)) (*Plugin, error) {
	return parseConfig(block, getenv, true)
}

// ParseClient parses the block of a backend's plugin/http-client config, as ParseServer does.
func ParseClient(block []byte, getenv func(string) (string, bool)) (*Plugin, error) {
	return parseConfig(block, getenv, false)
}

func parseConfig(block []byte, getenv func(string) (string, bool), server bool) (*Plugin, error) {
	var err error
	if getenv == nil {
		getenv = os.LookupEnv
	}
	var raw rawConfig
	dec := json.NewDecoder(bytes.NewReader(block))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("%s: bad configuration: %v", Name, err)
	}

	cfg := &Plugin{RetryAfterSeconds: DefaultRetryAfterSeconds, TraceHeaders: true}
	if raw.TraceHeaders != nil {
		cfg.TraceHeaders = *raw.TraceHeaders
	}
	if !server && (raw.MetricsPath != nil || raw.ReadyPath != nil) {
		return nil, fmt.Errorf("%s: metrics_path and ready_path belong in the plugin/http-server block (it sees every request)", Name)
	}
	if !server && (raw.MaxBufferedBody != nil || raw.ReadyRequires != nil || raw.MaxGatewayReaders != nil) {
		return nil, fmt.Errorf("%s: max_buffered_body_bytes, max_gateway_readers and ready_requires_broker belong in the plugin/http-server block (they are process-wide)", Name)
	}
	if v := raw.MaxGatewayReaders; v != nil {
		if *v < 0 || *v > MaxGatewayReadersLimit {
			return nil, fmt.Errorf("%s: max_gateway_readers must be 1 to %d (0 or absent: the default, %d)", Name, MaxGatewayReadersLimit, DefaultMaxGatewayReaders)
		}
		cfg.MaxGatewayReaders = *v
	}
	if raw.MaxBufferedBody != nil {
		if *raw.MaxBufferedBody < 1 {
			return nil, fmt.Errorf("%s: max_buffered_body_bytes must be at least 1", Name)
		}
		cfg.MaxBufferedBodyBytes = *raw.MaxBufferedBody
	}
	if raw.ReadyRequires != nil {
		cfg.ReadyRequiresBroker = *raw.ReadyRequires
	}
	if server {
		if cfg.MetricsPath, err = servicePath(raw.MetricsPath, defaultMetricsPath, "metrics_path"); err != nil {
			return nil, err
		}
		if cfg.ReadyPath, err = servicePath(raw.ReadyPath, defaultReadyPath, "ready_path"); err != nil {
			return nil, err
		}
	}
	// A server block with no routes only serves metrics and readiness: it needs no core.
	if !server || len(raw.Routes) > 0 || raw.Core != nil {
		if cfg.Core, err = canonicalCore(raw.Core, getenv); err != nil {
			return nil, err
		}
		cfg.KeySchema = KeySchema(cfg.Core)
	}
	if raw.RetryAfterSeconds != nil {
		if *raw.RetryAfterSeconds < 1 {
			return nil, fmt.Errorf("%s: retry_after_seconds must be at least 1", Name)
		}
		cfg.RetryAfterSeconds = *raw.RetryAfterSeconds
	}
	defaultMax := int64(defaultMaxBodyBytes)
	if raw.MaxBodyBytes != nil {
		if *raw.MaxBodyBytes < 1 {
			return nil, fmt.Errorf("%s: max_body_bytes must be at least 1", Name)
		}
		defaultMax = *raw.MaxBodyBytes
	}

	own := raw.rawRoute
	hasOwn := own.PathPrefix != nil || own.Topics != nil || own.TopicPattern != nil || own.MaxBodyBytes != nil || own.Batch != nil || own.API != nil || own.ClusterID != nil || own.Read != nil
	switch {
	case server && hasOwn:
		return nil, fmt.Errorf("%s: in plugin/http-server put path_prefix, topics, topic_pattern and batch inside \"routes\"", Name)
	case server && len(raw.Routes) == 0 && cfg.MetricsPath == "" && cfg.ReadyPath == "":
		return nil, fmt.Errorf("%s: plugin/http-server needs at least one entry in \"routes\" (or metrics_path or ready_path on)", Name)
	case !server && len(raw.Routes) > 0:
		return nil, fmt.Errorf("%s: plugin/http-client takes no \"routes\"; put topics or topic_pattern in the block itself", Name)
	}

	raws := raw.Routes
	if !server {
		raws = []rawRoute{own}
	}
	seen := map[string]bool{}
	for i, rr := range raws {
		where := "the block"
		if server {
			where = fmt.Sprintf("routes[%d]", i)
		}
		rc, err := parseRoute(rr, defaultMax, server, where)
		if err != nil {
			return nil, err
		}
		if server {
			if seen[rc.Prefix] {
				return nil, fmt.Errorf("%s: %s: path_prefix %q is used twice", Name, where, rc.Prefix)
			}
			seen[rc.Prefix] = true
		}
		cfg.Routes = append(cfg.Routes, rc)
	}
	return cfg, nil
}

func parseRoute(rr rawRoute, defaultMax int64, server bool, where string) (rc Route, err error) {
	rc = Route{MaxBodyBytes: defaultMax, Topics: map[string]bool{}}
	if rr.PathPrefix != nil {
		p := *rr.PathPrefix
		if !strings.HasPrefix(p, "/") {
			return rc, fmt.Errorf("%s: %s: path_prefix %q must start with \"/\"", Name, where, p)
		}
		if !strings.HasSuffix(p, "/") {
			p += "/"
		}
		rc.Prefix = p
	} else if server {
		return rc, fmt.Errorf("%s: %s: path_prefix is required", Name, where)
	}
	for _, t := range rr.Topics {
		if err := CheckTopicName(t); err != nil {
			return rc, fmt.Errorf("%s: %s: topics: %v", Name, where, err)
		}
		rc.Topics[t] = true
	}
	if rr.TopicPattern != nil {
		// The pattern must match the whole topic name.
		re, err := regexp.Compile(`^(?:` + *rr.TopicPattern + `)$`)
		if err != nil {
			return rc, fmt.Errorf("%s: %s: topic_pattern: %v", Name, where, err)
		}
		rc.Pattern = re
	}
	if rc.Read, err = parseRead(rr.Read, where); err != nil {
		return rc, err
	}
	if rc.Read != nil && !server {
		return rc, fmt.Errorf("%s: %s: read is served by the plugin/http-server mounting only (see the README, \"Reading topics\")", Name, where)
	}
	if rc.Read != nil && rr.API != nil && *rr.API == "confluent-v3" {
		return rc, fmt.Errorf("%s: %s: read is not offered on an \"api\": \"confluent-v3\" route", Name, where)
	}
	if len(rc.Topics) == 0 && rc.Pattern == nil && rc.Read == nil {
		return rc, fmt.Errorf("%s: %s: list the exposed topics in \"topics\" or give a \"topic_pattern\"", Name, where)
	}
	if rr.MaxBodyBytes != nil {
		if *rr.MaxBodyBytes < 1 {
			return rc, fmt.Errorf("%s: %s: max_body_bytes must be at least 1", Name, where)
		}
		rc.MaxBodyBytes = *rr.MaxBodyBytes
	}
	if rr.API != nil {
		switch *rr.API {
		case "topicgate":
		case "confluent-v3":
			rc.Confluent = true
		default:
			return rc, fmt.Errorf("%s: %s: api %q is unknown (\"topicgate\" or \"confluent-v3\")", Name, where, *rr.API)
		}
	}
	if rr.ClusterID != nil {
		if !rc.Confluent {
			return rc, fmt.Errorf("%s: %s: cluster_id belongs to an \"api\": \"confluent-v3\" route", Name, where)
		}
		rc.ClusterID = *rr.ClusterID
	}
	if rc.Confluent {
		if rr.Idempotency != nil {
			return rc, fmt.Errorf("%s: %s: idempotency is not offered on an \"api\": \"confluent-v3\" route yet", Name, where)
		}
	} else if rc.Idempotency, err = parseIdempotency(rr.Idempotency, where); err != nil {
		return rc, err
	}
	rc.Batch, err = parseBatch(rr.Batch, rc.MaxBodyBytes, where)
	if err == nil && rc.Confluent && rc.Batch.MaxRecords == 0 {
		// Every v3 request is a batch of records: 0 ("batches off") would refuse them all.
		return rc, fmt.Errorf("%s: %s: batch.max_records must be at least 1 on an \"api\": \"confluent-v3\" route (0 would refuse every request)", Name, where)
	}
	return rc, err
}

// servicePath is a server-mode path setting: def when absent, "" (off) when empty, else an
// absolute path.
func servicePath(v *string, def, key string) (string, error) {
	if v == nil {
		return def, nil
	}
	if *v != "" && !strings.HasPrefix(*v, "/") {
		return "", fmt.Errorf("%s: %s %q must start with \"/\" (or be \"\" to switch it off)", Name, key, *v)
	}
	return *v, nil
}

// Allows tells whether the route exposes topic.
func (rc *Route) Allows(topic string) bool {
	if rc.Topics[topic] {
		return true
	}
	return rc.Pattern != nil && rc.Pattern.MatchString(topic)
}

// defaultDeliveryTimeout is the core's delivery_timeout_ms when the core config leaves it out.
const defaultDeliveryTimeout = 5 * time.Second

// DeliveryTimeout is a (canonical) core config's delivery_timeout_ms: by then the core has
// answered every queued record, so waiting longer for a flush gains nothing.
func DeliveryTimeout(core []byte) time.Duration {
	var v struct {
		Ms *uint64 `json:"delivery_timeout_ms"`
	}
	if err := json.Unmarshal(core, &v); err != nil || v.Ms == nil {
		return defaultDeliveryTimeout // the core refuses a config it cannot read anyway
	}
	return time.Duration(*v.Ms) * time.Millisecond
}

// KeySchema is whether a (canonical) core config encodes keys with a schema: key_schema is set
// and not null (the core validates its content).
func KeySchema(core []byte) bool {
	var v struct {
		KeySchema json.RawMessage `json:"key_schema"`
	}
	if err := json.Unmarshal(core, &v); err != nil {
		return false // the core refuses a config it cannot read anyway
	}
	return len(v.KeySchema) > 0 && !bytes.Equal(v.KeySchema, []byte("null"))
}

// canonicalCore checks that the core config is a JSON object, expands ${VAR} and
// ${VAR:-default} placeholders in its string values from the environment, and
// re-encodes it with sorted keys. The core itself validates the content.
func canonicalCore(raw json.RawMessage, getenv func(string) (string, bool)) ([]byte, error) {
	if len(bytes.TrimSpace(raw)) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return nil, fmt.Errorf("%s: missing \"core\" object (the core configuration)", Name)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // keep numbers exactly as written
	var v interface{}
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("%s: core: %v", Name, err)
	}
	if _, ok := v.(map[string]interface{}); !ok {
		return nil, fmt.Errorf("%s: \"core\" must be a JSON object", Name)
	}
	v, err := expandValue(v, getenv, "core")
	if err != nil {
		return nil, err
	}
	return json.Marshal(v)
}

func expandValue(v interface{}, getenv func(string) (string, bool), path string) (interface{}, error) {
	switch t := v.(type) {
	case string:
		s, err := expandString(t, getenv)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %v", Name, path, err)
		}
		return s, nil
	case map[string]interface{}:
		for k, e := range t {
			x, err := expandValue(e, getenv, path+"."+k)
			if err != nil {
				return nil, err
			}
			t[k] = x
		}
		return t, nil
	case []interface{}:
		for i, e := range t {
			x, err := expandValue(e, getenv, fmt.Sprintf("%s[%d]", path, i))
			if err != nil {
				return nil, err
			}
			t[i] = x
		}
		return t, nil
	default:
		return v, nil
	}
}

var placeholder = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}`)

// expandString replaces ${VAR} (error when VAR is unset) and ${VAR:-default} (default
// when VAR is unset or empty). "$${" is a literal "${".
func expandString(s string, getenv func(string) (string, bool)) (string, error) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	const escaped = "\x00topicgate-dollar\x00"
	s = strings.ReplaceAll(s, "$${", escaped)
	var firstErr error
	out := placeholder.ReplaceAllStringFunc(s, func(m string) string {
		sub := placeholder.FindStringSubmatch(m)
		name, hasDefault, def := sub[1], sub[2] != "", sub[3]
		val, ok := getenv(name)
		if hasDefault && val == "" {
			return def
		}
		if !ok {
			if firstErr == nil {
				firstErr = fmt.Errorf("environment variable %s is not set (write ${%s:-default} for a default)", name, name)
			}
			return m
		}
		return val
	})
	if firstErr != nil {
		return "", firstErr
	}
	return strings.ReplaceAll(out, escaped, "${"), nil
}
