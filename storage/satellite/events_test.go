package satellite

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pvehci/pvehci/ha/state"
	"github.com/pvehci/pvehci/internal/run"
	"github.com/pvehci/pvehci/storage/drbd"
)

// streamingNode is a simNode whose Runner also follows the simulated
// kernel's live events2 stream, as run.Exec and the lab's kernelrpc do.
type streamingNode struct{ *simNode }

func (n streamingNode) Stream(ctx context.Context, c run.Cmd, line func([]byte)) error {
	n.mu.Lock()
	n.cmds = append(n.cmds, c)
	n.mu.Unlock()
	return n.host.Runner().(run.Streamer).Stream(ctx, c, line)
}

// countCmds counts the commands n ran that start with argv.
func (n *simNode) countCmds(argv ...string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	k := 0
	for _, c := range n.cmds {
		if slices.Equal(c.Argv(), argv) {
			k++
		}
	}
	return k
}

// A connection lost between passes reaches the controller through the
// live stream: with every interval an hour, the next report comes because
// the stream said so, and the loop never polls events2 --now.
func TestLoopFollowsTheEventsStream(t *testing.T) {
	t.Parallel()
	s := kindCluster(t, 8<<10, state.Diskful, state.Diskful)
	c := newSimCluster(t, s, "pve1", "pve2")
	c.converge()
	c.net.Settle()
	c.nodes["pve1"].takeCmds()

	env := &loopEnv{changed: make(chan struct{}), leader: "pve1", sent: make(chan NodeReport, 100)}
	rec := c.reconciler("pve1")
	rec.Runner = streamingNode{c.nodes["pve1"]}
	l := &Loop{Reconciler: rec, State: func() *state.State { return s }, Changed: env.Changed, Leader: env.Leader, Send: env.Send,
		IdleInterval: time.Hour, BusyInterval: time.Hour, WatchInterval: time.Hour}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go l.Run(ctx)
	first := env.next(t, "at start")
	if got := connState(first, "pve2"); got != drbd.ConnConnected {
		t.Fatalf("at start pve2 is %q, want Connected", got)
	}
	// The stream's first state can come after the first pass; cut once
	// it runs, so that the change is one the stream sees happen.
	deadline := time.Now().Add(loopWait)
	for c.nodes["pve1"].countCmds("drbdsetup", "events2") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the loop did not start the events2 stream")
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	c.net.Cut("pve1", "pve2")
	for {
		rep := env.next(t, "after the cut")
		if got := connState(rep, "pve2"); got != drbd.ConnConnected {
			t.Logf("report %d: pve2 %s", rep.Seq, got)
			break
		}
	}
	if n := c.nodes["pve1"].countCmds("drbdsetup", "events2", "--now"); n != 0 {
		t.Errorf("the loop polled events2 --now %d times while the stream ran", n)
	}
	if n := c.nodes["pve1"].countCmds("drbdsetup", "events2"); n != 1 {
		t.Errorf("the stream was started %d times, want once", n)
	}
}

func connState(rep NodeReport, peer string) drbd.ConnState {
	for _, r := range rep.Resources {
		for _, cn := range r.Connections {
			if cn.Name == peer {
				return cn.Connection
			}
		}
	}
	return ""
}

// A Runner whose stream fails leaves the loop polling, and it tries the
// stream again after a backoff; the failure is logged once.
func TestLoopPollsWhenTheStreamFails(t *testing.T) {
	t.Parallel()
	s := cluster(t)
	c := newSimCluster(t, s, "pve1")
	var mu sync.Mutex
	var logged strings.Builder
	log := slog.New(slog.NewTextHandler(lockedWriter{&mu, &logged}, nil))
	env := &loopEnv{changed: make(chan struct{}), leader: "pve1", sent: make(chan NodeReport, 100)}
	rec := c.reconciler("pve1")
	rec.Runner = failingStream{c.nodes["pve1"]}
	l := &Loop{Reconciler: rec, State: func() *state.State { return s }, Changed: env.Changed, Leader: env.Leader, Send: env.Send,
		IdleInterval: time.Hour, BusyInterval: time.Hour, WatchInterval: 20 * time.Millisecond, Log: log}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go l.Run(ctx)
	env.next(t, "at start")
	deadline := time.Now().Add(loopWait)
	for c.nodes["pve1"].countCmds("drbdsetup", "events2", "--now") < 3 {
		if time.Now().After(deadline) {
			t.Fatal("the loop does not poll events2 --now after the stream failed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	out := logged.String()
	mu.Unlock()
	if strings.Count(out, "events2 stream stopped") != 1 || !strings.Contains(out, "Module drbd not loaded") {
		t.Errorf("log:\n%s", out)
	}
}

type failingStream struct{ *simNode }

func (failingStream) Stream(_ context.Context, c run.Cmd, _ func([]byte)) error {
	return &run.Error{Argv: c.Argv(), ExitCode: 20, Stderr: []byte("Module drbd not loaded\n")}
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *strings.Builder
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return fmt.Fprint(w.b, string(p))
}
