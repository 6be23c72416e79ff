package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"
)

const (
	nsServer  = "plugin/http-server"
	nsClient  = "plugin/http-client"
	nsLogging = "telemetry/logging"
	// KrakenD's router settings, under their alias or lura's own namespace.
	nsRouter     = "router"
	nsRouterLura = "github_com/luraproject/lura/router/gin"
)

// defaultHealthPath is where KrakenD serves its health check unless the router settings move
// or disable it.
const defaultHealthPath = "/__health"

// defaultTimeout is KrakenD's endpoint timeout when neither the service nor the endpoint sets one.
const defaultTimeout = 2 * time.Second

// kdConfig is the part of a KrakenD v3 configuration kdhost understands; other
// fields are ignored.
type kdConfig struct {
	Version  int    `json:"version"`
	Port     int    `json:"port"`
	ListenIP string `json:"listen_ip"` // as KrakenD: empty means all interfaces
	Timeout  string `json:"timeout"`   // every endpoint's default, a Go duration
	// The HTTP server's timeouts, as KrakenD's service settings: Go durations, empty or "0s"
	// means none (KrakenD's default for all four).
	ReadTimeout       string `json:"read_timeout"`
	WriteTimeout      string `json:"write_timeout"`
	IdleTimeout       string `json:"idle_timeout"`
	ReadHeaderTimeout string `json:"read_header_timeout"`
	MaxHeaderBytes    int    `json:"max_header_bytes"` // 0: Go's default (1 MB), as in KrakenD
	// How long the server's Shutdown waits for requests in flight after SIGINT/SIGTERM; empty or
	// "0s": no limit, as in KrakenD.
	MaxShutdownWait string                 `json:"max_shutdown_wait_time"`
	Plugin          *pluginSection         `json:"plugin"`
	ExtraConfig     map[string]interface{} `json:"extra_config"`
	Endpoints       []endpointConfig       `json:"endpoints"`
}

type pluginSection struct {
	Pattern string `json:"pattern"`
	Folder  string `json:"folder"`
}

type endpointConfig struct {
	Endpoint       string          `json:"endpoint"`
	Method         string          `json:"method"`
	Timeout        string          `json:"timeout"` // overrides the service's
	OutputEncoding string          `json:"output_encoding"`
	InputHeaders   []string        `json:"input_headers"`
	Backend        []backendConfig `json:"backend"`
}

type backendConfig struct {
	Host        []string               `json:"host"`
	URLPattern  string                 `json:"url_pattern"`
	Method      string                 `json:"method"`
	Encoding    string                 `json:"encoding"`
	ExtraConfig map[string]interface{} `json:"extra_config"`
}

func loadConfig(path string) (*kdConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var c kdConfig
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	if c.Port == 0 {
		c.Port = 8080
	}
	return &c, nil
}

// logLevel is extra_config["telemetry/logging"].level, KrakenD's log level setting;
// without it KrakenD logs everything (DEBUG).
func (c *kdConfig) logLevel() string {
	if m, ok := c.ExtraConfig[nsLogging].(map[string]interface{}); ok {
		if l, ok := m["level"].(string); ok {
			return l
		}
	}
	return "DEBUG"
}

func (c *kdConfig) validate() error {
	if c.Version != 3 {
		return fmt.Errorf("unsupported version: %d (want 3)", c.Version)
	}
	if c.Plugin == nil || c.Plugin.Folder == "" || c.Plugin.Pattern == "" {
		return fmt.Errorf("a \"plugin\" section with folder and pattern is required")
	}
	if v, ok := c.ExtraConfig[nsServer]; ok {
		m, ok := v.(map[string]interface{})
		if !ok {
			return fmt.Errorf("extra_config.%s must be an object", nsServer)
		}
		if _, err := serverNames(m); err != nil {
			return err
		}
	}
	if _, err := parseTimeout(c.Timeout, defaultTimeout); err != nil {
		return fmt.Errorf("timeout: %v", err)
	}
	if _, err := time.ParseDuration(c.MaxShutdownWait); c.MaxShutdownWait != "" && err != nil {
		return fmt.Errorf("max_shutdown_wait_time: %q is not a duration such as \"5s\"", c.MaxShutdownWait)
	}
	if _, err := c.server(); err != nil {
		return err
	}
	seen := map[string]bool{}
	for i, e := range c.Endpoints {
		where := fmt.Sprintf("endpoints[%d] (%s)", i, e.Endpoint)
		if !strings.HasPrefix(e.Endpoint, "/") {
			return fmt.Errorf("%s: endpoint must start with /", where)
		}
		if _, err := parseTimeout(e.Timeout, defaultTimeout); err != nil {
			return fmt.Errorf("%s: timeout: %v", where, err)
		}
		m := e.method()
		if seen[m+" "+e.Endpoint] {
			return fmt.Errorf("%s: duplicated endpoint", where)
		}
		seen[m+" "+e.Endpoint] = true
		if len(e.Backend) != 1 {
			return fmt.Errorf("%s: kdhost serves endpoints with exactly one backend", where)
		}
		b := e.Backend[0]
		if !strings.HasPrefix(b.URLPattern, "/") {
			return fmt.Errorf("%s: url_pattern must start with /", where)
		}
		v, ok := b.ExtraConfig[nsClient].(map[string]interface{})
		if !ok {
			return fmt.Errorf("%s: kdhost serves only backends with extra_config.%s", where, nsClient)
		}
		if name, _ := v["name"].(string); name == "" {
			return fmt.Errorf("%s: %s needs a \"name\"", where, nsClient)
		}
		if e.OutputEncoding != "no-op" || b.Encoding != "no-op" {
			return fmt.Errorf("%s: kdhost passes responses through only: set \"output_encoding\": \"no-op\" on the endpoint and \"encoding\": \"no-op\" on the backend", where)
		}
	}
	return nil
}

// endpointTimeout is how long KrakenD lets e's backend work: the endpoint's timeout, else the
// service's, else KrakenD's default. Call it on a validated config.
func (c *kdConfig) endpointTimeout(e endpointConfig) time.Duration {
	service, _ := parseTimeout(c.Timeout, defaultTimeout)
	d, _ := parseTimeout(e.Timeout, service)
	return d
}

// server is the HTTP server with the service's timeouts and header limit (address and handler
// are the caller's), as KrakenD builds it.
func (c *kdConfig) server() (*http.Server, error) {
	srv := &http.Server{MaxHeaderBytes: c.MaxHeaderBytes}
	for _, t := range []struct {
		key string
		val string
		dst *time.Duration
	}{
		{"read_timeout", c.ReadTimeout, &srv.ReadTimeout},
		{"write_timeout", c.WriteTimeout, &srv.WriteTimeout},
		{"idle_timeout", c.IdleTimeout, &srv.IdleTimeout},
		{"read_header_timeout", c.ReadHeaderTimeout, &srv.ReadHeaderTimeout},
	} {
		if t.val == "" {
			continue
		}
		d, err := time.ParseDuration(t.val)
		if err != nil || d < 0 {
			return nil, fmt.Errorf("%s: %q is not a duration such as \"5s\"", t.key, t.val)
		}
		*t.dst = d
	}
	return srv, nil
}

// shutdownWait is max_shutdown_wait_time (0: no limit); call it on a validated config.
func (c *kdConfig) shutdownWait() time.Duration {
	d, _ := time.ParseDuration(c.MaxShutdownWait)
	return max(d, 0)
}

// healthPath is where the health check is served, "" when the router settings disable it.
func (c *kdConfig) healthPath() string {
	for _, ns := range []string{nsRouter, nsRouterLura} {
		m, ok := c.ExtraConfig[ns].(map[string]interface{})
		if !ok {
			continue
		}
		if off, _ := m["disable_health"].(bool); off {
			return ""
		}
		if p, _ := m["health_path"].(string); p != "" {
			return p
		}
	}
	return defaultHealthPath
}

// parseTimeout reads a Go duration such as "15s"; empty gives def.
func parseTimeout(s string, def time.Duration) (time.Duration, error) {
	if s == "" {
		return def, nil
	}
	d, err := time.ParseDuration(s)
	if err == nil && d <= 0 {
		err = fmt.Errorf("%q is not positive", s)
	}
	return d, err
}

func (e endpointConfig) method() string {
	if e.Method == "" {
		return http.MethodGet
	}
	return strings.ToUpper(e.Method)
}

// serverNames reads "name" (a string or a list) as KrakenD does.
func serverNames(extra map[string]interface{}) ([]string, error) {
	switch v := extra["name"].(type) {
	case string:
		return []string{v}, nil
	case []interface{}:
		var out []string
		for _, x := range v {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out, nil
	default:
		return nil, fmt.Errorf("extra_config.%s needs a \"name\" (string or list)", nsServer)
	}
}
