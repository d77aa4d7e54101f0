package ha

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pvehci/pvehci/ha/state"
	"github.com/pvehci/pvehci/storage/model"
)

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// testLog collects the nodes' logs of one test and prints them only when
// the test fails.
func testLog(t *testing.T) *slog.Logger {
	t.Helper()
	var mu sync.Mutex
	var buf bytes.Buffer
	t.Cleanup(func() {
		if t.Failed() {
			mu.Lock()
			t.Logf("node logs:\n%s", buf.String())
			mu.Unlock()
		}
	})
	return slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return buf.Write(p)
	}), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func openNode(t *testing.T, name string, dir string, addr string) *Cluster {
	t.Helper()
	c, err := OpenCluster(ClusterConfig{
		NodeName: name, DataDir: dir, PeerListen: addr, Advertise: addr,
		Controller: true, Timing: fastTiming(), Logger: testLog(t).With("node", name),
	})
	if err != nil {
		t.Fatalf("open %s: %v", name, err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func mustApply(t *testing.T, c *Cluster, cmd state.Command) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := c.Apply(ctx, cmd)
	if err == nil {
		err = res.Err
	}
	if err != nil {
		t.Fatalf("apply %s on %s: %v", cmd.Type(), c.cfg.NodeName, err)
	}
}

func satellite(name, addr string) *state.CreateNode {
	return &state.CreateNode{Name: name, NodeType: model.NodeTypeSatellite, NetInterfaces: []model.NetInterface{{Name: "default", Address: addr}}}
}

func voters(c *Cluster) int {
	m := c.Member()
	if m == nil {
		return 0
	}
	s, _ := m.Servers()
	return countVoters(s)
}

// A cluster made the way an operator makes one: init on the first node,
// a token per further node, join. Joins are refused for every wrong token.
func TestClusterInitJoinForwardBackupRestore(t *testing.T) {
	ctx := context.Background()
	addrs := []string{freePort(t), freePort(t), freePort(t)}
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	n1 := openNode(t, "n1", dirs[0], addrs[0])
	if st := n1.Status(); st.Member {
		t.Fatal("a fresh node claims membership")
	}
	if _, err := n1.Apply(ctx, &state.CreateNode{Name: "x"}); !errors.Is(err, ErrNotMember) {
		t.Fatalf("apply before init = %v, want ErrNotMember", err)
	}
	if err := n1.Init(ctx, "alpha"); err != nil {
		t.Fatal(err)
	}
	if err := n1.Init(ctx, "beta"); err == nil {
		t.Fatal("a second init was accepted")
	}

	tok2, err := n1.IssueToken(ctx, "n2", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	n3 := openNode(t, "n3", dirs[2], addrs[2])
	// n3 presenting n2's token is refused before it touches anything.
	if err := n3.Join(ctx, tok2); err == nil || !strings.Contains(err.Error(), "this token is for node n2") {
		t.Fatalf("join with another node's token = %v", err)
	}
	n2 := openNode(t, "n2", dirs[1], addrs[1])
	if err := n2.Join(ctx, tok2); err != nil {
		t.Fatal(err)
	}
	// The same token a second time (by a node pretending to be n2 afresh).
	n2b := openNode(t, "n2", t.TempDir(), freePort(t))
	err = n2b.Join(ctx, tok2)
	if err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("second use of a token = %v, want refusal", err)
	}
	n2b.Close(ctx)

	tok3, err := n2.IssueToken(ctx, "n3", time.Hour) // issued via a follower: forwarded to the leader
	if err != nil {
		t.Fatal(err)
	}
	if err := n3.Join(ctx, tok3); err != nil {
		t.Fatal(err)
	}
	nodes := []*Cluster{n1, n2, n3}
	waitFor(t, "all three nodes to be voters", func() bool { return voters(n1) == 3 })

	// A write on a follower reaches the leader and every replica.
	var follower *Cluster
	for _, n := range nodes {
		if !n.Member().IsLeader() {
			follower = n
			break
		}
	}
	mustApply(t, follower, satellite("pve1", "10.0.0.1"))
	for _, n := range nodes {
		waitFor(t, n.cfg.NodeName+" to see node pve1", func() bool { _, ok := n.State().Node("pve1"); return ok })
	}
	// A refused command comes back as the state machine's typed error.
	res, err := follower.Apply(ctx, satellite("pve1", "10.0.0.1"))
	if err != nil || !errors.Is(res.Err, state.Exists) {
		t.Fatalf("duplicate create through a follower = %v / %v, want state.Exists", err, res.Err)
	}

	st := follower.Status()
	if st.ClusterName != "alpha" || len(st.Members) != 3 || !st.CAKey {
		t.Errorf("status = %+v", st)
	}

	// Backup, change, restore: the change is gone, the members stay.
	backup, err := follower.Backup(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mustApply(t, n1, satellite("pve2", "10.0.0.2"))
	if err := follower.Restore(ctx, backup); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		waitFor(t, n.cfg.NodeName+" to forget pve2 after the restore", func() bool { _, ok := n.State().Node("pve2"); return !ok })
		if got := len(n.State().Members()); got != 3 {
			t.Errorf("%s has %d members after restore, want 3", n.cfg.NodeName, got)
		}
	}
	// A backup of another cluster is refused.
	other := state.New()
	other.Apply(&state.InitCluster{Info: state.ClusterInfo{Name: "beta", CAFingerprint: "sha256:ff", CACertPEM: "x"}, Member: state.Member{Name: "z1", PeerAddress: "10.9.9.9:3372"}})
	foreign, _ := other.Snapshot()
	if err := n1.Restore(ctx, foreign); err == nil || !strings.Contains(err.Error(), "not to this cluster") {
		t.Errorf("restore of a foreign backup = %v, want refusal", err)
	}

	// The leader goes away: the others elect a new one and go on. The
	// restore above can cost an election (raft's restore holds the leader
	// up past the heartbeat timeout), so first wait until every node
	// agrees on one leader.
	var leader *Cluster
	waitFor(t, "one leader that every node knows", func() bool {
		leader = nil
		for _, n := range nodes {
			if n.Member().IsLeader() {
				if leader != nil {
					return false
				}
				leader = n
			}
		}
		if leader == nil {
			return false
		}
		for _, n := range nodes {
			if id, _ := n.Member().Leader(); id != leader.cfg.NodeName {
				return false
			}
		}
		return true
	})
	leader.Close(ctx)
	var rest []*Cluster
	for _, n := range nodes {
		if n != leader {
			rest = append(rest, n)
		}
	}
	waitFor(t, "a new leader", func() bool {
		for _, n := range rest {
			if n.Member().IsLeader() {
				return true
			}
		}
		return false
	})
	mustApply(t, rest[0], satellite("pve3", "10.0.0.3"))

	// And with a second node gone, the last one refuses writes and says why.
	rest[1].Close(ctx)
	_, err = rest[0].Apply(ctx, satellite("pve4", "10.0.0.4"))
	// Depending on whether the survivor still believed it led when the write
	// arrived, the outcome is "refused" or "unknown"; either way the error
	// says quorum is lost and the write is not acknowledged.
	var ql *QuorumLostError
	if !errors.As(err, &ql) || ql.Voters != 3 || len(ql.Answering) != 1 {
		t.Fatalf("write without quorum = %v, want QuorumLostError 1 of 3", err)
	}
	if !strings.Contains(err.Error(), "1 of 3 controller members answer") {
		t.Errorf("quorum error text = %q", err)
	}
}

func TestReopenResumesMembership(t *testing.T) {
	ctx := context.Background()
	dir, addr := t.TempDir(), freePort(t)
	n1 := openNode(t, "n1", dir, addr)
	if err := n1.Init(ctx, "alpha"); err != nil {
		t.Fatal(err)
	}
	mustApply(t, n1, satellite("pve1", "10.0.0.1"))
	if err := n1.Close(ctx); err != nil {
		t.Fatal(err)
	}
	again := openNode(t, "n1", dir, addr)
	waitFor(t, "the reopened node to lead and replay", func() bool {
		_, ok := again.State().Node("pve1")
		return ok && again.Member().IsLeader()
	})
	// A node started under another name refuses the data directory.
	if _, err := OpenCluster(ClusterConfig{NodeName: "n9", DataDir: dir, PeerListen: freePort(t), Advertise: addr}); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("open under another name = %v", err)
	}
}

func TestRecoverAfterLosingTheMajority(t *testing.T) {
	ctx := context.Background()
	addrs := []string{freePort(t), freePort(t), freePort(t)}
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	n1 := openNode(t, "n1", dirs[0], addrs[0])
	if err := n1.Init(ctx, "alpha"); err != nil {
		t.Fatal(err)
	}
	var lost []*Cluster
	for i, name := range []string{"n2", "n3"} {
		tok, err := n1.IssueToken(ctx, name, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		n := openNode(t, name, dirs[i+1], addrs[i+1])
		if err := n.Join(ctx, tok); err != nil {
			t.Fatal(err)
		}
		lost = append(lost, n)
	}
	waitFor(t, "three voters", func() bool { return voters(n1) == 3 })
	mustApply(t, n1, satellite("pve1", "10.0.0.1"))
	// n2 and n3 are lost for good; n1 is stopped for the recovery.
	for _, n := range lost {
		n.Close(ctx)
	}
	n1.Close(ctx)
	if err := Recover(RecoverConfig{NodeName: "n1", DataDir: dirs[0], Servers: []Server{{ID: "n1", Address: addrs[0], Voter: true}}}); err != nil {
		t.Fatal(err)
	}
	survivor := openNode(t, "n1", dirs[0], addrs[0])
	waitFor(t, "the survivor to lead alone", func() bool { return survivor.Member() != nil && survivor.Member().IsLeader() })
	if _, ok := survivor.State().Node("pve1"); !ok {
		t.Fatal("committed state lost by the recovery")
	}
	mustApply(t, survivor, &state.RemoveMember{Name: "n2"})
	mustApply(t, survivor, &state.RemoveMember{Name: "n3"})
	mustApply(t, survivor, satellite("pve9", "10.0.0.9"))
	if err := Recover(RecoverConfig{NodeName: "n1", DataDir: t.TempDir(), Servers: []Server{{ID: "n1", Address: addrs[0]}}}); err == nil {
		t.Error("recover of an empty data directory succeeded")
	}
}
