//go:build !cgo || topicgate_nocore

package core

// Without cgo, or with the topicgate_nocore tag, the plugin builds without the Rust
// core: every publisher creation fails. This exists so the pure-Go parts can be tested
// (go test -tags topicgate_nocore) before libtopicgate.a is built.

// NewPublisher always fails: there is no core.
func NewPublisher([]byte) (Publisher, int, string) {
	return nil, 500, "topicgate was built without its core (tag topicgate_nocore or CGO_ENABLED=0)"
}

// InstallLog does nothing: there is no core to log.
func InstallLog() {}

// Version says the core is missing.
func Version() string { return "none (built without the core)" }

// MetricsJSON is an empty snapshot.
func MetricsJSON() []byte { return []byte(`{}`) }

// ReadPage always fails: there is no core.
func ReadPage(Publisher, []byte) ([]byte, int, string) {
	return nil, 500, "topicgate was built without its core (tag topicgate_nocore or CGO_ENABLED=0)"
}

// Tail is a topic's tail; without a core none opens.
type Tail struct{}

// OpenTail always fails: there is no core.
func OpenTail(Publisher, []byte) (*Tail, int, string) {
	return nil, 500, "topicgate was built without its core (tag topicgate_nocore or CGO_ENABLED=0)"
}

// Round never reads: there is no core.
func (*Tail) Round(int, int) ([]byte, int, string) {
	return nil, 500, "topicgate was built without its core (tag topicgate_nocore or CGO_ENABLED=0)"
}

// Close does nothing.
func (*Tail) Close() {}
