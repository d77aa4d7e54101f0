package ha

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"go.etcd.io/bbolt"
)

// listFSM records every applied command; two members agree when their lists
// are equal.
type listFSM struct {
	mu      sync.Mutex
	applied []string
}

func (f *listFSM) Apply(_ uint64, cmd []byte) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applied = append(f.applied, string(cmd))
	return len(f.applied)
}

func (f *listFSM) Snapshot() ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return json.Marshal(f.applied)
}

func (f *listFSM) Restore(b []byte) error {
	var l []string
	if err := json.Unmarshal(b, &l); err != nil {
		return err
	}
	f.mu.Lock()
	f.applied = l
	f.mu.Unlock()
	return nil
}

func (f *listFSM) list() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.applied...)
}

func fastTiming() Timing {
	t := DefaultTiming()
	t.HeartbeatTimeout = 150 * time.Millisecond
	t.ElectionTimeout = 150 * time.Millisecond
	t.LeaderLeaseTimeout = 100 * time.Millisecond
	t.CommitTimeout = 5 * time.Millisecond
	return t
}

type testNode struct {
	id    string
	dir   string
	fsm   *listFSM
	trans *raft.InmemTransport
	m     *Member
}

// startCluster starts n members over raft's in-memory transport, each with a
// real bolt store in its own directory, and bootstraps them as voters. work,
// when not nil, gives each node's leader-only work.
func startCluster(t *testing.T, n int, work func(id string) func(context.Context) error) []*testNode {
	t.Helper()
	nodes := make([]*testNode, n)
	var servers []Server
	for i := range nodes {
		id := fmt.Sprintf("n%d", i+1)
		addr, trans := raft.NewInmemTransport(raft.ServerAddress(id))
		nodes[i] = &testNode{id: id, dir: t.TempDir(), fsm: &listFSM{}, trans: trans}
		servers = append(servers, Server{ID: id, Address: string(addr), Voter: true})
	}
	for _, a := range nodes {
		for _, b := range nodes {
			if a != b {
				a.trans.Connect(b.trans.LocalAddr(), b.trans)
			}
		}
	}
	for _, nd := range nodes {
		m, err := Open(Config{NodeID: nd.id, DataDir: nd.dir, Transport: nd.trans, FSM: nd.fsm, Timing: fastTiming()})
		if err != nil {
			t.Fatalf("open %s: %v", nd.id, err)
		}
		if work != nil {
			m.OnLeader("test", work(nd.id))
		}
		nd.m = m
		t.Cleanup(func() { m.Shutdown(context.Background()) })
	}
	if err := nodes[0].m.Bootstrap(servers); err != nil {
		t.Fatal(err)
	}
	return nodes
}

// applyCarefully applies cmd the way a careful client does: "not the
// leader" is retried on the current leader; an unknown outcome is resolved
// by checking, after a barrier on the next leader, whether cmd was applied,
// and sending it again only if it was not. It returns the leader that
// acknowledged it.
func applyCarefully(t *testing.T, nodes []*testNode, cmd string) *testNode {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		leader := waitLeader(t, nodes)
		_, _, err := leader.m.Apply(context.Background(), []byte(cmd))
		if err == nil {
			return leader
		}
		var nle *NotLeaderError
		switch {
		case errors.As(err, &nle):
			continue
		case errors.Is(err, ErrOutcomeUnknown):
			next := waitLeader(t, nodes)
			if next.m.Barrier(5*time.Second) != nil {
				continue
			}
			if slices.Contains(next.fsm.list(), cmd) {
				return next
			}
		default:
			t.Fatalf("apply %s: %v", cmd, err)
		}
	}
	t.Fatalf("could not apply %s within 15s", cmd)
	return nil
}

func waitLeader(t *testing.T, nodes []*testNode) *testNode {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, nd := range nodes {
			if nd.m != nil && !nd.m.closed && nd.m.IsLeader() {
				return nd
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("no leader elected within 10s")
	return nil
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestClusterReplicatesAndSurvivesLeaderLoss(t *testing.T) {
	for _, n := range []int{3, 5} {
		t.Run(fmt.Sprintf("%d voters", n), func(t *testing.T) { replicateAndLoseLeader(t, n) })
	}
}

func replicateAndLoseLeader(t *testing.T, voters int) {
	nodes := startCluster(t, voters, nil)
	leader := waitLeader(t, nodes)
	ctx := context.Background()
	var acked []string
	for i := 0; i < 20; i++ {
		cmd := fmt.Sprintf("w%d", i)
		leader = applyCarefully(t, nodes, cmd)
		acked = append(acked, cmd)
	}
	// A follower refuses writes and names the leader, so callers can forward.
	for _, nd := range nodes {
		if nd == leader {
			continue
		}
		_, _, err := nd.m.Apply(ctx, []byte("x"))
		var nle *NotLeaderError
		if !errors.As(err, &nle) || nle.LeaderID != leader.id {
			t.Errorf("follower %s Apply error = %v, want NotLeaderError naming %s", nd.id, err, leader.id)
		}
	}

	// Kill the leader without a handover: the others elect a new one and
	// every acknowledged write survives.
	old := leader
	old.m.stop()
	old.m.raft.Shutdown().Error()
	old.m.store.Close()
	old.m.closed = true
	var rest []*testNode
	for _, nd := range nodes {
		if nd != old {
			rest = append(rest, nd)
		}
	}
	newLeader := waitLeader(t, rest)
	applyCarefully(t, rest, "after")
	_ = newLeader
	acked = append(acked, "after")
	for _, nd := range rest {
		waitFor(t, nd.id+" to apply every acknowledged write", func() bool {
			return strings.Join(nd.fsm.list(), ",") == strings.Join(acked, ",")
		})
	}
}

func TestLeaderWorkRunsOnlyOnLeaderAfterBarrier(t *testing.T) {
	var running sync.Map // node id -> *atomic.Int32
	started := make(chan string, 10)
	nodes := startCluster(t, 3, func(id string) func(context.Context) error {
		c := &atomic.Int32{}
		running.Store(id, c)
		return func(ctx context.Context) error {
			c.Add(1)
			started <- id
			<-ctx.Done()
			c.Add(-1)
			return nil
		}
	})
	leader := waitLeader(t, nodes)
	select {
	case id := <-started:
		if id != leader.id {
			t.Fatalf("leader work started on %s, leader is %s", id, leader.id)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("leader work never started")
	}
	if st := leader.m.LeaderState(); !st.Leading || st.Terms != 1 {
		t.Errorf("leader state = %+v, want leading in its first term", st)
	}
	// A graceful shutdown hands leadership over; the work stops on the old
	// leader and starts on exactly one other node.
	if err := leader.m.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	c, _ := running.Load(leader.id)
	if n := c.(*atomic.Int32).Load(); n != 0 {
		t.Errorf("leader work still running on the old leader after shutdown (%d)", n)
	}
	select {
	case id := <-started:
		if id == leader.id {
			t.Fatalf("work restarted on the node that shut down")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("leader work did not move to the new leader")
	}
	total := 0
	running.Range(func(_, v any) bool { total += int(v.(*atomic.Int32).Load()); return true })
	if total != 1 {
		t.Errorf("leader work runs on %d nodes, want exactly 1", total)
	}
}

func TestRestartReplaysStateAndRefusesSecondBootstrap(t *testing.T) {
	dir := t.TempDir()
	open := func(fsm *listFSM) *Member {
		_, trans := raft.NewInmemTransport("n1")
		m, err := Open(Config{NodeID: "n1", DataDir: dir, Transport: trans, FSM: fsm, Timing: fastTiming()})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	fsm := &listFSM{}
	m := open(fsm)
	if err := m.Bootstrap([]Server{{ID: "n1", Address: "n1", Voter: true}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "single node to lead", m.IsLeader)
	for i := 0; i < 5; i++ {
		if _, _, err := m.Apply(context.Background(), []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	fsm2 := &listFSM{}
	m2 := open(fsm2)
	defer m2.Shutdown(context.Background())
	if has, err := m2.HasState(); err != nil || !has {
		t.Fatalf("HasState = %v, %v; want true", has, err)
	}
	err := m2.Bootstrap([]Server{{ID: "n1", Address: "n1", Voter: true}})
	if err == nil || !strings.Contains(err.Error(), "already holds cluster state") {
		t.Fatalf("second bootstrap error = %v, want refusal", err)
	}
	waitFor(t, "restarted node to lead", m2.IsLeader)
	if err := m2.Barrier(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(fsm2.list(), ","); got != "0,1,2,3,4" {
		t.Errorf("state after restart = %q, want 0,1,2,3,4", got)
	}
}

func TestCheckStoreRefusesDamagedOrForeignStores(t *testing.T) {
	dir := t.TempDir()
	corrupt := filepath.Join(dir, "corrupt.db")
	if err := os.WriteFile(corrupt, []byte(strings.Repeat("not a bolt file ", 512)), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.db")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	foreign := filepath.Join(dir, "foreign.db")
	db, err := bbolt.Open(foreign, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bbolt.Tx) error { _, err := tx.CreateBucket([]byte("widgets")); return err }); err != nil {
		t.Fatal(err)
	}
	db.Close()

	tests := []struct {
		name string
		path string
		want []string
	}{
		{"missing is a new node", filepath.Join(dir, "none.db"), nil},
		{"corrupt", corrupt, []string{"corrupt.db", "unreadable", "pvehci cluster restore"}},
		{"empty", empty, []string{"empty.db", "will not start an empty cluster"}},
		{"foreign bbolt", foreign, []string{"foreign.db", "not a pvehci raft store", "pvehci cluster join"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckStore(tt.path)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("CheckStore = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatal("CheckStore accepted a store it cannot trust")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}

	// Open must refuse too, and leave the file as it was.
	before, _ := os.ReadFile(corrupt)
	_, trans := raft.NewInmemTransport("n1")
	if err := os.Rename(corrupt, StorePath(dir)); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(Config{NodeID: "n1", DataDir: dir, Transport: trans, FSM: &listFSM{}}); err == nil {
		t.Fatal("Open started over a corrupt store")
	}
	after, _ := os.ReadFile(StorePath(dir))
	if string(before) != string(after) {
		t.Error("Open modified the corrupt store it refused")
	}
}

func TestDamagedSnapshotIsRefusedByName(t *testing.T) {
	dir := t.TempDir()
	open := func(fsm *listFSM) (*Member, error) {
		_, trans := raft.NewInmemTransport("n1")
		return Open(Config{NodeID: "n1", DataDir: dir, Transport: trans, FSM: fsm, Timing: fastTiming()})
	}
	m, err := open(&listFSM{})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Bootstrap([]Server{{ID: "n1", Address: "n1", Voter: true}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "leadership", m.IsLeader)
	for i := 0; i < 3; i++ {
		if _, _, err := m.Apply(context.Background(), []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Snapshot(); err != nil {
		t.Fatal(err)
	}
	m.Shutdown(context.Background())

	states, _ := filepath.Glob(filepath.Join(dir, snapshotDir, "*", "state.bin"))
	if len(states) != 1 {
		t.Fatalf("found %d snapshots, want 1", len(states))
	}
	data, _ := os.ReadFile(states[0])
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(states[0], data, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = open(&listFSM{})
	if err == nil {
		t.Fatal("started over a damaged snapshot")
	}
	for _, want := range []string{filepath.Base(filepath.Dir(states[0])), "damaged", "pvehci cluster join", "pvehci cluster restore"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}
