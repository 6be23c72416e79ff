package read

import (
	"strings"
	"testing"
)

func TestPositionsRoundTrip(t *testing.T) {
	p := Positions{2: 7, 0: 12, 1: 0}
	if got := p.String(); got != "0:12,1:0,2:7" {
		t.Fatalf("String: %q", got)
	}
	back, err := ParsePositions(p.String())
	if err != nil || len(back) != 3 || back[0] != 12 || back[2] != 7 {
		t.Fatalf("ParsePositions: %v %v", back, err)
	}
}

func TestMalformedPositionsAreRefusedSayingWhy(t *testing.T) {
	for in, want := range map[string]string{
		"":        "empty",
		"abc":     "not <partition>:<offset>",
		"x:1":     "partition",
		"0:-1":    "offset",
		"0:1,0:2": "twice",
		"0:1,":    "not <partition>:<offset>",
	} {
		_, err := ParsePositions(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", in, err, want)
		}
	}
}
