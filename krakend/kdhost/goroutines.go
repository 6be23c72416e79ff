package main

import (
	"context"
	"os"
	"os/signal"
	"runtime"
	"syscall"
)

// logGoroutinesOnSignal logs "[DEBUG] goroutines: N" each time the process gets SIGUSR1,
// until ctx ends: the fault tests read it to check that no goroutine leaks after recovery.
func logGoroutinesOnSignal(ctx context.Context, log *logger) {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGUSR1)
	go func() {
		defer signal.Stop(c)
		for {
			select {
			case <-ctx.Done():
				return
			case <-c:
				log.Info("[DEBUG] goroutines:", runtime.NumGoroutine())
			}
		}
	}()
}
