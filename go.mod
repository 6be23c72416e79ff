module github.com/topicgate/topicgate

// The plugin (go-plugin/) uses only the standard library and cgo, so this module has
// no requirements. KrakenD CE itself is built from its own module in krakend/ce/ with
// the same Go toolchain and the same (default) build flags, which is what plugin.Open
// checks for a plugin without third-party packages. See krakend/README.md.
go 1.26.0
