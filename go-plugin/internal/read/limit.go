package read

import (
	"sync/atomic"

	"github.com/topicgate/topicgate/go-plugin/internal/config"
)

// The gateway-wide reader bound (max_gateway_readers): pages and event streams of every route of
// the process at once. Per process, not per route: each reader costs a goroutine, a socket and a
// stream's queue, and the routes' own bounds (read.max_readers) add up past what one process holds.
var (
	gatewayMax  atomic.Int64
	gatewayUsed atomic.Int64
)

func init() { gatewayMax.Store(config.DefaultMaxGatewayReaders) }

// SetMaxGatewayReaders sets the bound (the server block's max_gateway_readers; n < 1: the
// default). Readers already in stay in.
func SetMaxGatewayReaders(n int) {
	if n < 1 {
		n = config.DefaultMaxGatewayReaders
	}
	gatewayMax.Store(int64(n))
}

// MaxGatewayReaders is the bound now.
func MaxGatewayReaders() int { return int(gatewayMax.Load()) }

// takeGateway takes one of the gateway's reader slots; false (nothing taken) when all are held.
// The caller gives it back with giveGateway on every path once it has taken it.
func takeGateway() bool {
	for {
		u, lim := gatewayUsed.Load(), gatewayMax.Load()
		if u >= lim {
			return false
		}
		if gatewayUsed.CompareAndSwap(u, u+1) {
			return true
		}
	}
}

// giveGateway hands back a slot taken by takeGateway.
func giveGateway() { gatewayUsed.Add(-1) }
