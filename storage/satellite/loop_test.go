package satellite

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/pvehci/pvehci/ha/state"
	"github.com/pvehci/pvehci/storage/model"
)

// loopWait bounds every wait of the loop tests; nothing is asserted about
// how long anything takes.
const loopWait = 5 * time.Second

// loopEnv is what a Loop sees of the daemon: a fixed state, a Changed
// channel the test closes, a leader the test sets, and the reports sent.
type loopEnv struct {
	mu      sync.Mutex
	changed chan struct{}
	leader  string
	sent    chan NodeReport
	fail    bool // Send records the report, then fails
}

func (e *loopEnv) Changed() <-chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.changed
}

// change wakes the loop as a change of the state would.
func (e *loopEnv) change() {
	e.mu.Lock()
	defer e.mu.Unlock()
	close(e.changed)
	e.changed = make(chan struct{})
}

func (e *loopEnv) Leader() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.leader
}

func (e *loopEnv) setLeader(l string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.leader = l
}

func (e *loopEnv) Send(_ context.Context, rep NodeReport) error {
	e.sent <- rep
	if e.fail {
		return errors.New("leader unreachable")
	}
	return nil
}

func (e *loopEnv) next(t *testing.T, what string) NodeReport {
	t.Helper()
	select {
	case rep := <-e.sent:
		return rep
	case <-time.After(loopWait):
		t.Fatalf("no report sent: %s", what)
		return NodeReport{}
	}
}

func TestLoopRun(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		sendFail bool
	}{
		{name: "reports delivered"},
		{name: "reports not delivered", sendFail: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// pve1 and pve2 with their pools and no resources: every pass
			// converges, so only the test wakes the loop.
			s := cluster(t)
			c := newSimCluster(t, s, "pve1")
			env := &loopEnv{changed: make(chan struct{}), leader: "pve2", sent: make(chan NodeReport, 100), fail: tc.sendFail}
			l := &Loop{
				Reconciler:   c.reconciler("pve1"),
				State:        func() *state.State { return s },
				Changed:      env.Changed,
				Leader:       env.Leader,
				Send:         env.Send,
				IdleInterval: time.Hour,
				BusyInterval: time.Hour,
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- l.Run(ctx) }()

			// The first report comes at start.
			first := env.next(t, "at start")
			if first.Boot == "" || first.Seq != 1 || first.Node != "pve1" || first.Time.IsZero() {
				t.Fatalf("first report: node %q boot %q Seq %d time %v; want pve1, a boot, Seq 1 and a time", first.Node, first.Boot, first.Seq, first.Time)
			}
			if first.ObserveError != "" {
				t.Fatalf("first report: %s", first.ObserveError)
			}
			if p, ok := first.Pool(model.DefaultStoragePool); !ok || p.TotalKiB != 256<<10 {
				t.Errorf("first report's pools %+v, want %s of 256 MiB", first.Pools, model.DefaultStoragePool)
			}

			// A change of the state starts the next pass.
			env.change()
			second := env.next(t, "after a change")
			if second.Boot != first.Boot || second.Seq != 2 {
				t.Fatalf("after a change: boot %q Seq %d, want boot %q Seq 2", second.Boot, second.Seq, first.Boot)
			}

			// A new leader gets the last report again at once.
			env.setLeader("pve1")
			again := env.next(t, "to a new leader")
			if again.Boot != second.Boot || again.Seq != second.Seq || !again.Time.Equal(second.Time) {
				t.Fatalf("to a new leader: boot %q Seq %d time %v, want the last report (boot %q Seq %d time %v)",
					again.Boot, again.Seq, again.Time, second.Boot, second.Seq, second.Time)
			}

			// And passes go on numbering from there.
			env.change()
			if third := env.next(t, "after another change"); third.Boot != first.Boot || third.Seq != 3 {
				t.Fatalf("after another change: boot %q Seq %d, want boot %q Seq 3", third.Boot, third.Seq, first.Boot)
			}

			cancel()
			select {
			case err := <-done:
				if !errors.Is(err, context.Canceled) {
					t.Errorf("Run: %v, want context.Canceled", err)
				}
			case <-time.After(loopWait):
				t.Fatal("Run did not end with its context")
			}
		})
	}
}

// TestLoopBootDiffers checks that each run of the loop has its own Boot,
// so that the controller accepts Seq 1 again after a restart.
func TestLoopBootDiffers(t *testing.T) {
	t.Parallel()
	s := cluster(t)
	c := newSimCluster(t, s, "pve1")
	boots := map[string]bool{}
	for range 2 {
		rep := firstReport(t, &Loop{Reconciler: c.reconciler("pve1"), State: func() *state.State { return s }})
		if rep.Seq != 1 || rep.Boot == "" {
			t.Fatalf("first report: boot %q Seq %d", rep.Boot, rep.Seq)
		}
		boots[rep.Boot] = true
	}
	if len(boots) != 2 {
		t.Errorf("two runs share a boot: %v", boots)
	}
}

type fakeNet struct{ err error }

func (f fakeNet) Links(context.Context) ([]model.NetLink, error) {
	return []model.NetLink{{Name: "bond0", Kind: "bond", Up: true}}, nil
}
func (f fakeNet) RDMAPorts(context.Context) ([]model.RDMAPort, error) { return nil, f.err }

// TestLoopReportsNetwork: with a NetworkReader, every report carries the
// node's links and ports, and says what could not be read.
func TestLoopReportsNetwork(t *testing.T) {
	t.Parallel()
	s := cluster(t)
	c := newSimCluster(t, s, "pve1")
	for _, tc := range []struct {
		net     NetworkReader
		wantErr string
	}{{fakeNet{}, ""}, {fakeNet{err: errors.New("no /sys/class/infiniband")}, "rdma: no /sys/class/infiniband"}} {
		rep := firstReport(t, &Loop{Reconciler: c.reconciler("pve1"), State: func() *state.State { return s }, Network: tc.net})
		if rep.Network == nil || len(rep.Network.Links) != 1 || rep.Network.Links[0].Name != "bond0" || rep.Network.Error != tc.wantErr {
			t.Errorf("network in the report: %+v, want error %q", rep.Network, tc.wantErr)
		}
	}
}

// firstReport runs l (its Changed, Leader and Send from a loopEnv, passes
// an hour apart) until its first report, stops it and returns the report.
func firstReport(t *testing.T, l *Loop) NodeReport {
	t.Helper()
	env := &loopEnv{changed: make(chan struct{}), sent: make(chan NodeReport, 100)}
	l.Changed, l.Leader, l.Send, l.IdleInterval, l.BusyInterval = env.Changed, env.Leader, env.Send, time.Hour, time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	rep := env.next(t, "at start")
	cancel()
	select {
	case <-done:
	case <-time.After(loopWait):
		t.Fatal("Run did not end with its context")
	}
	return rep
}
