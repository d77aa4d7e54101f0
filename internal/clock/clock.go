// Package clock is pvehci's access to time. Code that waits, schedules or
// timestamps takes a [Clock]; the daemon passes [Real], and tests pass a
// [Fake], whose time moves only when the test says so, so that a snapshot
// schedule, a verify interval or a retry backoff can be tested without
// sleeping.
//
// The shape follows tailscale's tstime.Clock.
package clock

import (
	"context"
	"time"
)

// Clock tells the time and makes timers.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// Since returns the time elapsed since t.
	Since(t time.Time) time.Duration
	// NewTimer returns a Timer that sends the time on its channel after
	// d; d <= 0 fires at once.
	NewTimer(d time.Duration) Timer
	// NewTicker returns a Ticker that sends the time every d, dropping
	// ticks for a slow receiver; it panics if d <= 0.
	NewTicker(d time.Duration) Ticker
	// AfterFunc calls f in its own goroutine after d and returns a Timer
	// whose C is nil. (A Fake calls f differently; see Fake.)
	AfterFunc(d time.Duration, f func()) Timer
	// Sleep waits for d or until ctx is done, and returns ctx.Err() in
	// the latter case.
	Sleep(ctx context.Context, d time.Duration) error
}

// Timer is a one-shot timer, like *time.Timer. Stop and Reset guarantee, as
// time.Timer does since Go 1.23, that no stale time is received afterwards.
type Timer interface {
	// C returns the channel the time is sent on (nil for AfterFunc).
	C() <-chan time.Time
	// Stop prevents the timer from firing; it reports whether it did
	// (false if the timer had already fired or been stopped).
	Stop() bool
	// Reset makes the timer fire after d instead; it reports whether the
	// timer was active.
	Reset(d time.Duration) bool
}

// Ticker is a periodic timer, like *time.Ticker.
type Ticker interface {
	// C returns the channel the ticks are sent on.
	C() <-chan time.Time
	// Stop turns the ticker off.
	Stop()
	// Reset stops the ticker and restarts it with period d.
	Reset(d time.Duration)
}

// Real is the [Clock] of package time.
type Real struct{}

var _ Clock = Real{}

// Now implements [Clock].
func (Real) Now() time.Time { return time.Now() }

// Since implements [Clock].
func (Real) Since(t time.Time) time.Duration { return time.Since(t) }

// NewTimer implements [Clock].
func (Real) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

// NewTicker implements [Clock].
func (Real) NewTicker(d time.Duration) Ticker { return realTicker{time.NewTicker(d)} }

// AfterFunc implements [Clock].
func (Real) AfterFunc(d time.Duration, f func()) Timer { return realTimer{time.AfterFunc(d, f)} }

// Sleep implements [Clock].
func (r Real) Sleep(ctx context.Context, d time.Duration) error { return sleep(ctx, r, d) }

type realTimer struct{ t *time.Timer }

func (t realTimer) C() <-chan time.Time        { return t.t.C }
func (t realTimer) Stop() bool                 { return t.t.Stop() }
func (t realTimer) Reset(d time.Duration) bool { return t.t.Reset(d) }

type realTicker struct{ t *time.Ticker }

func (t realTicker) C() <-chan time.Time   { return t.t.C }
func (t realTicker) Stop()                 { t.t.Stop() }
func (t realTicker) Reset(d time.Duration) { t.t.Reset(d) }

// sleep implements Sleep for any Clock.
func sleep(ctx context.Context, c Clock, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d <= 0 {
		return nil
	}
	t := c.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C():
		return nil
	}
}
