package clock

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

var start = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func TestFakeOrder(t *testing.T) {
	tests := []struct {
		name     string
		setup    func(c *Fake, log func(string) func())
		advances []time.Duration
		want     string
	}{
		{
			name: "time order, ties in scheduling order",
			setup: func(c *Fake, log func(string) func()) {
				c.AfterFunc(3*time.Second, log("c"))
				c.AfterFunc(time.Second, log("a"))
				c.AfterFunc(2*time.Second, log("b1"))
				c.AfterFunc(2*time.Second, log("b2"))
			},
			advances: []time.Duration{10 * time.Second},
			want:     "a@1s b1@2s b2@2s c@3s",
		},
		{
			name: "a function scheduling within the same advance",
			setup: func(c *Fake, log func(string) func()) {
				c.AfterFunc(time.Second, func() {
					log("outer")()
					c.AfterFunc(500*time.Millisecond, log("inner"))
					c.AfterFunc(time.Hour, log("late"))
				})
				c.AfterFunc(2*time.Second, log("after"))
			},
			advances: []time.Duration{10 * time.Second},
			want:     "outer@1s inner@1.5s after@2s",
		},
		{
			name: "stopped and reset",
			setup: func(c *Fake, log func(string) func()) {
				c.AfterFunc(time.Second, log("stopped")).Stop()
				c.AfterFunc(time.Second, log("reset")).Reset(5 * time.Second)
				c.AfterFunc(3*time.Second, log("plain"))
			},
			advances: []time.Duration{10 * time.Second},
			want:     "plain@3s reset@5s",
		},
		{
			name: "only what is due",
			setup: func(c *Fake, log func(string) func()) {
				c.AfterFunc(time.Second, log("a"))
				c.AfterFunc(2*time.Second, log("b"))
				c.AfterFunc(3*time.Second, log("c"))
			},
			advances: []time.Duration{1500 * time.Millisecond, 0, 500 * time.Millisecond},
			want:     "a@1s | - | b@2s",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewFake(start)
			var events []string
			log := func(name string) func() {
				return func() { events = append(events, fmt.Sprintf("%s@%v", name, c.Since(start))) }
			}
			tt.setup(c, log)
			var parts []string
			for _, d := range tt.advances {
				events = nil
				c.Advance(d)
				if len(events) == 0 {
					events = []string{"-"}
				}
				parts = append(parts, strings.Join(events, " "))
			}
			if got := strings.Join(parts, " | "); got != tt.want {
				t.Errorf("fired %q, want %q", got, tt.want)
			}
			var total time.Duration
			for _, d := range tt.advances {
				total += d
			}
			if got := c.Since(start); got != total {
				t.Errorf("clock at +%v, want +%v", got, total)
			}
		})
	}
}

// recv returns what ch holds right now, or the zero time.
func recv(ch <-chan time.Time) (time.Time, bool) {
	select {
	case v := <-ch:
		return v, true
	default:
		return time.Time{}, false
	}
}

func TestFakeTimer(t *testing.T) {
	c := NewFake(start)
	tm := c.NewTimer(5 * time.Second)
	c.Advance(4 * time.Second)
	if v, ok := recv(tm.C()); ok {
		t.Fatalf("fired early at %v", v)
	}
	c.Advance(time.Second)
	if v, ok := recv(tm.C()); !ok || !v.Equal(start.Add(5*time.Second)) {
		t.Fatalf("got %v, %v; want the due time", v, ok)
	}
	if tm.Stop() {
		t.Error("Stop after firing = true")
	}
	if tm.Reset(time.Second) {
		t.Error("Reset after firing = true")
	}
	if !tm.Reset(2 * time.Second) {
		t.Error("Reset of an active timer = false")
	}
	c.Advance(time.Second)
	if _, ok := recv(tm.C()); ok {
		t.Error("fired at the old Reset time")
	}
	c.Advance(time.Second)
	if _, ok := recv(tm.C()); !ok {
		t.Error("did not fire at the new Reset time")
	}

	// A fired but unreceived value is gone after Stop or Reset.
	tm = c.NewTimer(time.Second)
	c.Advance(time.Second)
	tm.Reset(time.Minute)
	if _, ok := recv(tm.C()); ok {
		t.Error("stale value after Reset")
	}
	if !tm.Stop() {
		t.Error("Stop of an active timer = false")
	}
	c.Advance(time.Hour)
	if _, ok := recv(tm.C()); ok {
		t.Error("stopped timer fired")
	}
	if n := c.Pending(); n != 0 {
		t.Errorf("Pending = %d", n)
	}

	// d <= 0 fires at once.
	if _, ok := recv(c.NewTimer(0).C()); !ok {
		t.Error("NewTimer(0) did not fire")
	}
	done := make(chan struct{})
	c.AfterFunc(-time.Second, func() { close(done) })
	<-done
}

func TestFakeTicker(t *testing.T) {
	c := NewFake(start)
	tk := c.NewTicker(time.Second)
	c.Advance(time.Second)
	if v, ok := recv(tk.C()); !ok || !v.Equal(start.Add(time.Second)) {
		t.Fatalf("first tick %v, %v", v, ok)
	}
	// A slow receiver gets one tick, the first it missed; the rest drop.
	c.Advance(3 * time.Second)
	if v, ok := recv(tk.C()); !ok || !v.Equal(start.Add(2*time.Second)) {
		t.Errorf("buffered tick %v, %v; want +2s", v, ok)
	}
	if v, ok := recv(tk.C()); ok {
		t.Errorf("extra tick %v", v)
	}
	tk.Reset(10 * time.Second)
	c.Advance(9 * time.Second)
	if v, ok := recv(tk.C()); ok {
		t.Errorf("tick %v before the new period", v)
	}
	c.Advance(time.Second)
	if _, ok := recv(tk.C()); !ok {
		t.Error("no tick after the new period")
	}
	tk.Stop()
	c.Advance(time.Minute)
	if _, ok := recv(tk.C()); ok {
		t.Error("tick after Stop")
	}
	defer func() {
		if recover() == nil {
			t.Error("NewTicker(0) did not panic")
		}
	}()
	c.NewTicker(0)
}

func TestFakeSleepAndWait(t *testing.T) {
	c := NewFake(start)
	ctx := t.Context()

	errc := make(chan error, 2)
	for range 2 {
		go func() { errc <- c.Sleep(ctx, time.Minute) }()
	}
	if err := c.WaitForTimers(ctx, 2); err != nil {
		t.Fatal(err)
	}
	c.Advance(time.Minute)
	for range 2 {
		if err := <-errc; err != nil {
			t.Errorf("Sleep = %v", err)
		}
	}

	cctx, cancel := context.WithCancel(ctx)
	go func() { errc <- c.Sleep(cctx, time.Hour) }()
	if err := c.WaitForTimers(ctx, 1); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("Sleep after cancel = %v", err)
	}
	if err := c.Sleep(ctx, 0); err != nil {
		t.Errorf("Sleep(0) = %v", err)
	}

	short, cancel2 := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel2()
	err := c.WaitForTimers(short, 5)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "waiting for 5 pending timers, have 0") {
		t.Errorf("WaitForTimers = %v", err)
	}
}

func TestFakeSet(t *testing.T) {
	c := NewFake(start)
	fired := 0
	c.AfterFunc(time.Hour, func() { fired++ })
	c.Set(start.Add(-time.Hour))
	if fired != 0 || !c.Now().Equal(start.Add(-time.Hour)) {
		t.Fatalf("after turning back: fired %d, now %v", fired, c.Now())
	}
	c.Set(start.Add(30 * time.Minute))
	if fired != 0 {
		t.Fatal("fired early")
	}
	c.Set(start.Add(2 * time.Hour))
	if fired != 1 || !c.Now().Equal(start.Add(2*time.Hour)) {
		t.Errorf("fired %d, now %v", fired, c.Now())
	}
}

func TestFakeConcurrent(t *testing.T) {
	c := NewFake(start)
	var wg sync.WaitGroup
	var mu sync.Mutex
	fired := 0
	for i := range 50 {
		wg.Go(func() {
			c.AfterFunc(time.Duration(i+1)*time.Millisecond, func() {
				mu.Lock()
				fired++
				mu.Unlock()
			})
			tm := c.NewTimer(time.Duration(i) * time.Millisecond)
			tm.Reset(time.Millisecond)
			_ = c.Now()
		})
	}
	wg.Go(func() {
		for range 10 {
			c.Advance(time.Millisecond)
		}
	})
	wg.Wait()
	c.Advance(time.Second)
	if fired != 50 {
		t.Errorf("fired %d AfterFuncs, want 50", fired)
	}
	if c.Pending() != 0 {
		t.Errorf("Pending = %d", c.Pending())
	}
}

func TestReal(t *testing.T) {
	var c Clock = Real{}
	t0 := c.Now()
	if err := c.Sleep(t.Context(), time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if c.Since(t0) < time.Millisecond {
		t.Error("Sleep returned early")
	}
	<-c.NewTimer(time.Millisecond).C()
	tk := c.NewTicker(time.Millisecond)
	<-tk.C()
	tk.Stop()
	done := make(chan struct{})
	c.AfterFunc(time.Millisecond, func() { close(done) })
	<-done
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := c.Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("Sleep with a cancelled ctx = %v", err)
	}
}
