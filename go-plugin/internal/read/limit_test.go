package read

import (
	"strings"
	"testing"

	"github.com/topicgate/topicgate/go-plugin/internal/config"
)

// The gateway's slots are shared by every route, taken first, and every slot a refused reader
// took is given back, so a refusal by a later bound never leaks one.
func TestAdmitGatewayThenRouteThenTopic(t *testing.T) {
	defer SetMaxGatewayReaders(0)
	SetMaxGatewayReaders(3)
	a := &config.Route{Prefix: "/limit-a/", Read: &config.Read{MaxReaders: 10, MaxReadersPerTopic: 1}}
	b := &config.Route{Prefix: "/limit-b/", Read: &config.Read{MaxReaders: 10, MaxReadersPerTopic: 10}}
	r1, _ := admit(a, "T")
	if r1 == nil {
		t.Fatal("first reader refused")
	}
	// The topic's bound refuses; the gateway's and the route's slots it took come back.
	for i := 0; i < 5; i++ {
		if r, why := admit(a, "T"); r != nil || !strings.Contains(why, "read.max_readers_per_topic") {
			t.Fatalf("second reader of a's T: %v %q", r != nil, why)
		}
	}
	if gatewayUsed.Load() != 1 || len(slotsOf(a.Prefix, 0)) != 1 {
		t.Fatalf("after refusals: gateway %d, route %d slots held; want 1, 1", gatewayUsed.Load(), len(slotsOf(a.Prefix, 0)))
	}
	r2, _ := admit(b, "T")
	r3, _ := admit(b, "U")
	if r2 == nil || r3 == nil {
		t.Fatal("readers of route b refused below every bound")
	}
	// Three readers over two routes: the gateway's bound refuses a fourth on either.
	for _, rc := range []*config.Route{a, b} {
		if r, why := admit(rc, "V"); r != nil || why != "3 readers already read on this gateway (max_gateway_readers); retry later" {
			t.Fatalf("fourth reader on %s: %v %q", rc.Prefix, r != nil, why)
		}
	}
	r2()
	r4, _ := admit(a, "V")
	if r4 == nil {
		t.Fatal("a slot given back was not taken again")
	}
	r1()
	r3()
	r4()
	if gatewayUsed.Load() != 0 || len(slotsOf(a.Prefix, 0)) != 0 || len(slotsOf(b.Prefix, 0)) != 0 {
		t.Fatalf("all gone: gateway %d, routes %d, %d", gatewayUsed.Load(), len(slotsOf(a.Prefix, 0)), len(slotsOf(b.Prefix, 0)))
	}
	if SetMaxGatewayReaders(0); MaxGatewayReaders() != config.DefaultMaxGatewayReaders {
		t.Fatalf("0 is the default: %d", MaxGatewayReaders())
	}
}
