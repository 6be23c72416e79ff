package router

import (
	"testing"

	"github.com/topicgate/topicgate/go-plugin/internal/config"
)

func TestMatchRoute(t *testing.T) {
	routes := []config.Route{{Prefix: "/v1/event/"}, {Prefix: "/v1/"}}
	if rc, ok := match(routes, "/v1/event/X"); !ok || rc.Prefix != "/v1/event/" {
		t.Fatal("first route not matched")
	}
	if rc, ok := match(routes, "/v1/other"); !ok || rc.Prefix != "/v1/" {
		t.Fatal("second route not matched")
	}
	if _, ok := match(routes, "/health"); ok {
		t.Fatal("unrelated path matched")
	}
	if _, ok := match(routes, "/v1"); ok {
		t.Fatal("prefix without slash matched")
	}
}
