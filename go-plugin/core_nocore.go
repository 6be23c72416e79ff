//go:build !cgo || topicgate_nocore

package main

// Without cgo, or with the topicgate_nocore tag, the plugin builds without the Rust
// core: every publisher creation fails. This exists so the pure-Go parts can be tested
// (go test -tags topicgate_nocore) before libtopicgate.a is built.

func coreNewPublisher([]byte) (publisher, int, string) {
	return nil, 500, "topicgate was built without its core (tag topicgate_nocore or CGO_ENABLED=0)"
}

func installCoreLog() {}

func coreVersion() string { return "none (built without the core)" }

func coreMetricsJSON() []byte { return []byte(`{}`) }
