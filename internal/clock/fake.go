package clock

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Fake is a [Clock] whose time moves only by [Fake.Advance] and [Fake.Set].
//
// Advance fires what falls due in time order: for each due timer, ticker
// tick or AfterFunc it first sets Now to that moment, then sends on the
// channel (dropping the value if the receiver has not taken the previous
// one, as a real ticker does) or calls the function. Ties go in the order
// the timers were scheduled. AfterFunc functions run synchronously in the
// goroutine calling Advance, with no lock held, so their effects are visible
// when Advance returns; they may use the clock (even schedule timers that
// then fire within the same Advance) but must not call Advance or Set, nor
// block on the goroutine calling it. AfterFunc with d <= 0 starts f in a new
// goroutine at once, as time.AfterFunc does.
//
// A test that advances the clock while another goroutine is about to wait
// on it should first call [Fake.WaitForTimers], so the advance is not
// missed.
//
// A Fake is safe for concurrent use. The zero value starts at the zero time.
type Fake struct {
	advancing sync.Mutex // serialises Advance and Set

	mu      sync.Mutex
	now     time.Time
	seq     uint64
	waiting []*waiter     // sorted by (when, seq)
	changed chan struct{} // closed and replaced when waiting changes
}

var _ Clock = (*Fake)(nil)

// NewFake returns a Fake clock reading start.
func NewFake(start time.Time) *Fake {
	return &Fake{now: start}
}

// waiter is a timer, ticker or AfterFunc.
type waiter struct {
	f      *Fake
	when   time.Time
	seq    uint64
	period time.Duration  // > 0 for a ticker
	ch     chan time.Time // nil for AfterFunc
	fn     func()
}

// Now implements [Clock].
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// Since implements [Clock].
func (f *Fake) Since(t time.Time) time.Duration { return f.Now().Sub(t) }

// NewTimer implements [Clock].
func (f *Fake) NewTimer(d time.Duration) Timer {
	w := &waiter{f: f, ch: make(chan time.Time, 1)}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.scheduleLocked(w, d)
	return (*fakeTimer)(w)
}

// NewTicker implements [Clock].
func (f *Fake) NewTicker(d time.Duration) Ticker {
	if d <= 0 {
		panic("clock: non-positive interval for NewTicker")
	}
	w := &waiter{f: f, ch: make(chan time.Time, 1), period: d}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.scheduleLocked(w, d)
	return (*fakeTicker)(w)
}

// AfterFunc implements [Clock].
func (f *Fake) AfterFunc(d time.Duration, fn func()) Timer {
	w := &waiter{f: f, fn: fn}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.scheduleLocked(w, d)
	return (*fakeTimer)(w)
}

// Sleep implements [Clock].
func (f *Fake) Sleep(ctx context.Context, d time.Duration) error { return sleep(ctx, f, d) }

// Advance moves the clock forward by d, firing everything that falls due.
func (f *Fake) Advance(d time.Duration) {
	f.advancing.Lock()
	defer f.advancing.Unlock()
	f.advanceTo(f.Now().Add(d))
}

// Set sets the clock to t. A later t fires what falls due, as Advance does;
// an earlier one just turns the clock back, firing nothing.
func (f *Fake) Set(t time.Time) {
	f.advancing.Lock()
	defer f.advancing.Unlock()
	f.mu.Lock()
	if !t.After(f.now) {
		f.now = t
		f.mu.Unlock()
		return
	}
	f.mu.Unlock()
	f.advanceTo(t)
}

func (f *Fake) advanceTo(target time.Time) {
	for {
		f.mu.Lock()
		if len(f.waiting) == 0 || f.waiting[0].when.After(target) {
			f.now = target
			f.mu.Unlock()
			return
		}
		w := f.waiting[0]
		f.waiting = f.waiting[1:]
		if w.when.After(f.now) {
			f.now = w.when
		}
		now := f.now
		if w.period > 0 {
			f.insertLocked(w, w.when.Add(w.period))
		} else {
			f.notifyLocked()
		}
		if w.ch != nil {
			select {
			case w.ch <- now:
			default: // the receiver is behind; drop, like a real ticker
			}
		}
		f.mu.Unlock()
		if w.fn != nil {
			w.fn()
		}
	}
}

// Pending returns how many timers, tickers and AfterFuncs are scheduled.
func (f *Fake) Pending() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.waiting)
}

// WaitForTimers blocks until at least n timers, tickers and AfterFuncs are
// scheduled (a goroutine in Sleep counts as one), or ctx is done.
func (f *Fake) WaitForTimers(ctx context.Context, n int) error {
	for {
		f.mu.Lock()
		have := len(f.waiting)
		ch := f.changedLocked()
		f.mu.Unlock()
		if have >= n {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("clock: waiting for %d pending timers, have %d: %w", n, have, ctx.Err())
		}
	}
}

// scheduleLocked makes w fire after d; d <= 0 fires it now.
func (f *Fake) scheduleLocked(w *waiter, d time.Duration) {
	if d > 0 || w.period > 0 {
		f.insertLocked(w, f.now.Add(d))
		return
	}
	if w.fn != nil {
		go w.fn()
		return
	}
	select {
	case w.ch <- f.now:
	default:
	}
}

func (f *Fake) insertLocked(w *waiter, when time.Time) {
	f.seq++
	w.when, w.seq = when, f.seq
	i, _ := slices.BinarySearchFunc(f.waiting, w, func(a, b *waiter) int {
		if c := a.when.Compare(b.when); c != 0 {
			return c
		}
		return int(int64(a.seq) - int64(b.seq))
	})
	f.waiting = slices.Insert(f.waiting, i, w)
	f.notifyLocked()
}

// removeLocked unschedules w and reports whether it was scheduled.
func (f *Fake) removeLocked(w *waiter) bool {
	i := slices.Index(f.waiting, w)
	if i < 0 {
		return false
	}
	f.waiting = slices.Delete(f.waiting, i, i+1)
	f.notifyLocked()
	return true
}

func (f *Fake) changedLocked() chan struct{} {
	if f.changed == nil {
		f.changed = make(chan struct{})
	}
	return f.changed
}

func (f *Fake) notifyLocked() {
	if f.changed != nil {
		close(f.changed)
		f.changed = nil
	}
}

// drain empties w's channel so no stale value is received after Stop or
// Reset.
func (w *waiter) drain() {
	if w.ch == nil {
		return
	}
	select {
	case <-w.ch:
	default:
	}
}

type fakeTimer waiter

func (t *fakeTimer) C() <-chan time.Time { return t.ch }

func (t *fakeTimer) Stop() bool {
	w := (*waiter)(t)
	w.f.mu.Lock()
	defer w.f.mu.Unlock()
	w.drain()
	return w.f.removeLocked(w)
}

func (t *fakeTimer) Reset(d time.Duration) bool {
	w := (*waiter)(t)
	w.f.mu.Lock()
	defer w.f.mu.Unlock()
	active := w.f.removeLocked(w)
	w.drain()
	w.f.scheduleLocked(w, d)
	return active
}

type fakeTicker waiter

func (t *fakeTicker) C() <-chan time.Time { return t.ch }

func (t *fakeTicker) Stop() {
	w := (*waiter)(t)
	w.f.mu.Lock()
	defer w.f.mu.Unlock()
	w.drain()
	w.f.removeLocked(w)
}

func (t *fakeTicker) Reset(d time.Duration) {
	if d <= 0 {
		panic("clock: non-positive interval for Ticker.Reset")
	}
	w := (*waiter)(t)
	w.f.mu.Lock()
	defer w.f.mu.Unlock()
	w.f.removeLocked(w)
	w.drain()
	w.period = d
	w.f.insertLocked(w, w.f.now.Add(d))
}
