// KrakenD CE, built from source as build/krakend (make krakend). A module of its own so
// that the main module (the plugin) stays buildable where KrakenD's modules cannot be
// fetched; both are built by the same Go toolchain with default flags, which is what a
// plugin without third-party packages needs to load. `make krakend` completes the
// requirements (go mod tidy) on first use; commit go.mod and go.sum after that.
module github.com/topicgate/topicgate/krakend/ce

go 1.26.0

tool github.com/krakend/krakend-ce/v2/cmd/krakend-ce

require github.com/krakend/krakend-ce/v2 v2.13.8
