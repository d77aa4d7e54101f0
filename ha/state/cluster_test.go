package state

import (
	"strings"
	"testing"
	"time"

	"github.com/pvehci/pvehci/ha/pki"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func initCluster(t *testing.T) *State {
	t.Helper()
	s := New()
	apply(t, s, &InitCluster{
		Info:   ClusterInfo{Name: "alpha", CAFingerprint: "sha256:00", CACertPEM: "-----BEGIN CERTIFICATE-----", CreatedAt: t0.UnixMilli()},
		Member: Member{Name: "n1", PeerAddress: "10.0.0.1:3372", Controller: true, JoinedAt: t0.UnixMilli()},
	})
	return s
}

func tokenRecord(id, node string, expires time.Time) pki.TokenRecord {
	return pki.TokenRecord{ID: id, NodeName: node, SecretHash: "sha256:ab", Created: t0, Expires: expires}
}

func TestClusterCommands(t *testing.T) {
	member := func(name string) Member {
		return Member{Name: name, PeerAddress: "10.0.0.9:3372", Controller: true, JoinedAt: t0.UnixMilli()}
	}
	tests := []struct {
		name     string
		setup    []Command
		cmd      Command
		wantKind ErrorKind // 0 = success
		wantMsg  string
	}{
		{name: "init twice", cmd: &InitCluster{Info: ClusterInfo{Name: "beta", CAFingerprint: "x", CACertPEM: "y"}, Member: member("n9")},
			wantKind: Exists, wantMsg: "already initialised"},
		{name: "token for a member", cmd: &IssueJoinToken{Record: tokenRecord("t1", "n1", t0.Add(time.Hour)), At: t0.UnixMilli()},
			wantKind: Exists, wantMsg: "already a member"},
		{name: "token issued", cmd: &IssueJoinToken{Record: tokenRecord("t1", "n2", t0.Add(time.Hour)), At: t0.UnixMilli()}},
		{name: "consume unknown", cmd: &ConsumeJoinToken{ID: "nope", Member: member("n2"), At: t0.UnixMilli()},
			wantKind: NotFound, wantMsg: "unknown"},
		{name: "consume", setup: []Command{&IssueJoinToken{Record: tokenRecord("t1", "n2", t0.Add(time.Hour)), At: t0.UnixMilli()}},
			cmd: &ConsumeJoinToken{ID: "t1", Member: member("n2"), At: t0.Add(time.Minute).UnixMilli()}},
		{name: "consume twice", setup: []Command{
			&IssueJoinToken{Record: tokenRecord("t1", "n2", t0.Add(time.Hour)), At: t0.UnixMilli()},
			&ConsumeJoinToken{ID: "t1", Member: member("n2"), At: t0.Add(time.Minute).UnixMilli()},
		}, cmd: &ConsumeJoinToken{ID: "t1", Member: member("n3"), At: t0.Add(2 * time.Minute).UnixMilli()},
			wantKind: InUse, wantMsg: "already used"},
		{name: "consume by another name", setup: []Command{&IssueJoinToken{Record: tokenRecord("t1", "n2", t0.Add(time.Hour)), At: t0.UnixMilli()}},
			cmd: &ConsumeJoinToken{ID: "t1", Member: member("n3"), At: t0.UnixMilli()}, wantKind: Invalid, wantMsg: "bound to node n2, not n3"},
		{name: "consume expired", setup: []Command{&IssueJoinToken{Record: tokenRecord("t1", "n2", t0.Add(time.Hour)), At: t0.UnixMilli()}},
			cmd: &ConsumeJoinToken{ID: "t1", Member: member("n2"), At: t0.Add(2 * time.Hour).UnixMilli()}, wantKind: Invalid, wantMsg: "expired"},
		{name: "remove unknown member", cmd: &RemoveMember{Name: "n7"}, wantKind: NotFound},
		{name: "remove last member", cmd: &RemoveMember{Name: "n1"}, wantKind: InUse, wantMsg: "last member"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := initCluster(t)
			for _, c := range tt.setup {
				apply(t, s, c)
			}
			before := snapshotOf(t, s)
			res := s.Apply(tt.cmd)
			if tt.wantKind == 0 {
				if res.Err != nil {
					t.Fatalf("unexpected error: %v", res.Err)
				}
				return
			}
			wantKind(t, res, tt.wantKind)
			if !strings.Contains(res.Err.Error(), tt.wantMsg) {
				t.Errorf("error %q lacks %q", res.Err, tt.wantMsg)
			}
			if !sameBytes(before, snapshotOf(t, s)) {
				t.Error("a refused command changed the state")
			}
		})
	}
}

func TestJoinTokenConsumptionAddsMemberAndSurvivesSnapshot(t *testing.T) {
	s := initCluster(t)
	apply(t, s, &IssueJoinToken{Record: tokenRecord("t1", "n2", t0.Add(time.Hour)), At: t0.UnixMilli()})
	apply(t, s, &ConsumeJoinToken{ID: "t1", Member: Member{Name: "n2", PeerAddress: "10.0.0.2:3372", Controller: true}, At: t0.Add(time.Minute).UnixMilli()})
	if rec, ok := s.JoinToken("t1"); !ok || !rec.Used {
		t.Fatalf("token record after consume = %+v, %v; want used", rec, ok)
	}
	if got := len(s.Members()); got != 2 {
		t.Fatalf("members = %d, want 2", got)
	}
	snap := snapshotOf(t, s)
	r := New()
	if err := r.Restore(snap); err != nil {
		t.Fatal(err)
	}
	if !sameBytes(snap, snapshotOf(t, r)) {
		t.Error("snapshot/restore/snapshot is not byte-identical with cluster data")
	}
	if info, ok := r.Cluster(); !ok || info.Name != "alpha" {
		t.Errorf("cluster after restore = %+v, %v", info, ok)
	}
	// A day after expiry, issuing a new token prunes the old records.
	apply(t, r, &IssueJoinToken{Record: tokenRecord("t2", "n3", t0.Add(50*time.Hour)), At: t0.Add(48 * time.Hour).UnixMilli()})
	if _, ok := r.JoinToken("t1"); ok {
		t.Error("a token used two days ago was not pruned")
	}
	if _, ok := r.JoinToken("t2"); !ok {
		t.Error("the new token is missing")
	}
}

func TestClusterCommandsNeedInit(t *testing.T) {
	s := New()
	before := snapshotOf(t, s)
	res := s.Apply(&IssueJoinToken{Record: tokenRecord("t1", "n2", t0.Add(time.Hour)), At: t0.UnixMilli()})
	wantKind(t, res, Invalid)
	if !strings.Contains(res.Err.Error(), "pvehci cluster init") {
		t.Errorf("error %q does not say how to create a cluster", res.Err)
	}
	if !sameBytes(before, snapshotOf(t, s)) {
		t.Error("state changed")
	}
}
