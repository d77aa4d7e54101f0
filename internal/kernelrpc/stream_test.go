package kernelrpc

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pvehci/pvehci/internal/run"
	"github.com/pvehci/pvehci/storage/sim"
)

// A stream through the socket hands over the same lines as on the
// supervisor and ends with the same error.
func TestStreamRoundTrip(t *testing.T) {
	local := run.Exec{}
	remote := NewRunner(serve(t, map[string]run.Runner{"pve1": local}), "pve1").(run.Streamer)
	c := run.Command("sh", "-c", "echo one; echo 'two words'; echo oops >&2; exit 3")
	var want, got []string
	lerr := local.Stream(context.Background(), c, func(l []byte) { want = append(want, string(l)) })
	rerr := remote.Stream(context.Background(), c, func(l []byte) { got = append(got, string(l)) })
	if strings.Join(got, "|") != strings.Join(want, "|") || len(got) != 2 {
		t.Errorf("lines through the socket %q, on the supervisor %q", got, want)
	}
	if run.ExitCode(rerr) != 3 || lerr == nil || rerr == nil || rerr.Error() != lerr.Error() {
		t.Errorf("errors: through the socket %v, on the supervisor %v", rerr, lerr)
	}
}

// The simulated kernel's live events2 stream reaches the daemon while it
// runs, and the daemon's cancellation ends it.
func TestStreamEvents2FromTheSim(t *testing.T) {
	h := newSimHost(t)
	sim.NewNetwork().Attach(h) // the DRBD module
	remote := NewRunner(serve(t, map[string]run.Runner{"pve1": h.Runner()}), "pve1").(run.Streamer)
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var lines []string
	done := make(chan error, 1)
	go func() {
		done <- remote.Stream(ctx, run.Command("drbdsetup", "events2"), func(l []byte) {
			mu.Lock()
			lines = append(lines, string(l))
			mu.Unlock()
			if string(l) == "exists -" {
				cancel()
			}
		})
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("stream ended with %v, want the cancellation", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the stream did not end after the cancellation")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(lines) == 0 || lines[len(lines)-1] != "exists -" {
		t.Fatalf("lines %q, want the initial state ending in exists -", lines)
	}
}

func TestStreamUnknownNode(t *testing.T) {
	remote := NewRunner(serve(t, map[string]run.Runner{}), "pve9").(run.Streamer)
	err := remote.Stream(context.Background(), run.Command("drbdsetup", "events2"), func([]byte) {})
	if err == nil || !strings.Contains(err.Error(), `no node "pve9"`) {
		t.Fatalf("err %v", err)
	}
}
