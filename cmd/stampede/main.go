// Command stampede is Stampede's command line: the local server (serve) and
// the client commands (get, put, delete, reserve, release, reservation,
// run). docs/cli.md documents it.
package main

import (
	"context"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

func main() {
	ctx, interrupted, stop := interruptContext()
	a := &app{
		stdin:       os.Stdin,
		stdout:      os.Stdout,
		stderr:      os.Stderr,
		getenv:      os.Getenv,
		interrupted: interrupted,
	}
	code := a.execute(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

// interruptContext returns a context cancelled by SIGINT or SIGTERM and a
// function that tells which of them arrived (nil when none did).
func interruptContext() (context.Context, func() os.Signal, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	var mu sync.Mutex
	var got os.Signal
	done := make(chan struct{})
	go func() {
		defer close(done)
		for s := range ch {
			mu.Lock()
			if got == nil {
				got = s
			}
			mu.Unlock()
			cancel()
		}
	}()
	received := func() os.Signal {
		mu.Lock()
		defer mu.Unlock()
		return got
	}
	stop := func() {
		signal.Stop(ch)
		close(ch)
		<-done
		cancel()
	}
	return ctx, received, stop
}
