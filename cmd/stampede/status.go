package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/stampede-cache/stampede/client"
)

// plainRepeat is how often plain (non-terminal) output repeats the waiting
// line while the holder does not change.
const plainRepeat = 30 * time.Second

// runStatus shows `stampede run`'s progress on stderr: a live line
// rewritten every second when stderr is a terminal, plain lines otherwise.
type runStatus struct {
	w        io.Writer
	tty      bool
	quiet    bool
	key      string
	endpoint string
	now      func() time.Time

	mu      sync.Mutex
	holder  *client.Reservation
	since   time.Time
	printed time.Time // plain: when the waiting line was last printed
	live    bool      // tty: a live line is on screen
	ticker  *time.Ticker
	stop    chan struct{}
	wg      sync.WaitGroup

	// acquired is our reservation once we hold it.
	acquired *client.Reservation
	// hbFailure is the last heartbeat failure reported, and when.
	hbFailure string
	hbPrinted time.Time
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0 && os.Getenv("TERM") != "dumb"
}

func newRunStatus(w io.Writer, key, endpoint string, quiet bool) *runStatus {
	return &runStatus{w: w, tty: isTerminal(w), quiet: quiet, key: key, endpoint: endpoint, now: time.Now}
}

// reservation is ours, once acquired.
func (s *runStatus) reservation() client.Reservation {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.acquired == nil {
		return client.Reservation{}
	}
	return *s.acquired
}

// printf prints a status line.
func (s *runStatus) printf(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.linef(format, args...)
}

// observe is the GetOrCompute observer.
func (s *runStatus) observe(ev client.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch ev.Kind {
	case client.EventWaiting:
		s.waitingLocked(ev)
	case client.EventHit:
		if ev.Waited {
			s.linef("stampede run: %q was computed by another owner (version %d)", s.key, ev.Entry.Version)
		} else {
			s.linef("stampede run: cache hit for %q (version %d); not running the command", s.key, ev.Entry.Version)
		}
	case client.EventAcquired:
		s.acquiredLocked(ev)
	case client.EventHeartbeat:
		s.heartbeatLocked(ev)
	case client.EventLost:
		if r := ev.Reservation; r != nil {
			s.linef("stampede run: lost the reservation of %q to %s (fence %d); stopping the command", s.key, r.OwnerID, r.Fence)
		} else {
			s.linef("stampede run: lost the reservation of %q (it expired); stopping the command", s.key)
		}
	case client.EventStored:
		if ev.Existing {
			s.linef("stampede run: another owner stored %q first (version %d); using its entry", s.key, ev.Entry.Version)
		} else {
			s.linef("stampede run: stored %q (version %d)", s.key, ev.Entry.Version)
		}
	case client.EventReleased:
		if ev.Err != nil {
			s.linef("stampede run: release failed (the reservation will expire): %s", classify(ev.Err, s.endpoint).msg)
		}
	}
}

// waitingLocked shows who holds the key: a live line on a terminal, else a
// line when the holder changes and every plainRepeat.
func (s *runStatus) waitingLocked(ev client.Event) {
	changed := s.holder == nil || s.holder.OwnerID != ev.Reservation.OwnerID || s.holder.Fence != ev.Reservation.Fence
	s.holder, s.since = ev.Reservation, ev.HeldSince
	switch {
	case s.quiet:
	case s.tty:
		s.renderLocked()
		s.startTickerLocked()
	case changed || s.now().Sub(s.printed) >= plainRepeat:
		s.printed = s.now()
		fmt.Fprintf(s.w, "stampede run: waiting for %q: held by %s (fence %d) for %s, expires at %s\n",
			s.key, s.holder.OwnerID, s.holder.Fence, roundDuration(s.now().Sub(s.since)), formatTime(s.holder.ExpiresAt))
	}
}

func (s *runStatus) acquiredLocked(ev client.Event) {
	s.acquired = ev.Reservation
	if ev.Waited && s.holder != nil {
		s.linef("stampede run: took over %q from %s (fence %d); running the command as %s (fence %d)",
			s.key, s.holder.OwnerID, s.holder.Fence, ev.Reservation.OwnerID, ev.Reservation.Fence)
	} else {
		s.linef("stampede run: running the command for %q as %s (fence %d)", s.key, ev.Reservation.OwnerID, ev.Reservation.Fence)
	}
}

// heartbeatLocked reports a failed heartbeat once per reason, and again
// every plainRepeat while it lasts.
func (s *runStatus) heartbeatLocked(ev client.Event) {
	if ev.Err == nil {
		s.hbFailure = ""
		return
	}
	reason := classify(ev.Err, s.endpoint).msg
	if reason != s.hbFailure || s.now().Sub(s.hbPrinted) >= plainRepeat {
		s.hbFailure, s.hbPrinted = reason, s.now()
		s.linef("stampede run: heartbeat failed (retrying): %s", reason)
	}
}

// linef ends any live line and prints a status line. Callers hold mu.
func (s *runStatus) linef(format string, args ...any) {
	s.stopTickerLocked()
	if s.quiet {
		return
	}
	s.clearLocked()
	fmt.Fprintf(s.w, format+"\n", args...)
}

// renderLocked draws the live waiting line.
func (s *runStatus) renderLocked() {
	if s.holder == nil {
		return
	}
	now := s.now()
	expires := "expired"
	if left := s.holder.ExpiresAt.Sub(now); left > 0 {
		expires = "expires in " + roundDuration(left)
	}
	fmt.Fprintf(s.w, "\r\033[2Kstampede run: waiting for %q: held by %s (fence %d) for %s, %s",
		s.key, s.holder.OwnerID, s.holder.Fence, roundDuration(now.Sub(s.since)), expires)
	s.live = true
}

func (s *runStatus) clearLocked() {
	if s.live {
		fmt.Fprint(s.w, "\r\033[2K")
		s.live = false
	}
}

// startTickerLocked redraws the live line every second while waiting.
func (s *runStatus) startTickerLocked() {
	if s.ticker != nil {
		return
	}
	s.ticker = time.NewTicker(time.Second)
	s.stop = make(chan struct{})
	ticker, stop := s.ticker, s.stop
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-ticker.C:
				s.mu.Lock()
				if s.live {
					s.renderLocked()
				}
				s.mu.Unlock()
			}
		}
	}()
}

func (s *runStatus) stopTickerLocked() {
	if s.ticker != nil {
		s.ticker.Stop()
		close(s.stop)
		s.ticker = nil
	}
}

// close ends the live line and waits for the redraw goroutine.
func (s *runStatus) close() {
	s.mu.Lock()
	s.stopTickerLocked()
	s.clearLocked()
	s.mu.Unlock()
	s.wg.Wait()
}

// roundDuration renders a duration to the second ("1m5s", "0s").
func roundDuration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	return d.Round(time.Second).String()
}
