package core

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// mayCallBack are the C functions that can call back into Go (the log callback, topicgateGoLog)
// while they run: a `#cgo noescape` on them would let the core hold pointers into a goroutine stack
// that the callback may move. tg_publisher_new creates librdkafka producers, which report config
// warnings through the log callback.
var mayCallBack = []string{"tg_publisher_new", "tg_set_log_callback", "topicgate_install_log"}

func TestNoescapeSparesFunctionsThatCallBack(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(src), "\n") {
			fields := strings.Fields(line)
			if len(fields) < 3 || fields[0] != "#cgo" || fields[1] != "noescape" {
				continue
			}
			for _, name := range fields[2:] {
				for _, bad := range mayCallBack {
					if name == bad {
						t.Errorf("%s:%d: #cgo noescape %s: it can call back into Go (log callback); cgo forbids that", f, i+1, name)
					}
				}
			}
		}
	}
}
