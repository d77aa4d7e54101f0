package health

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pvehci/pvehci/ha"
	"github.com/pvehci/pvehci/internal/run"
)

// testNow is the fixed clock of every test.
var testNow = time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)

// node describes a node's state as the files of canned real-format output
// its tools print; a zero field means the healthy default.
type node struct {
	quorum       string // testdata file of corosync-quorumtool -s
	quorumExit   int
	corosyncDown bool
	links        string
	events       string
	lvs          string
	status       *ha.ClusterStatus
	statusErr    error
}

func healthyStatus() *ha.ClusterStatus {
	return &ha.ClusterStatus{
		Node: "pve1", Member: true, ClusterName: "prod",
		Raft:       &ha.Status{ID: "pve1", State: "Follower", LeaderID: "pve2", LeaderAddress: "10.99.0.2:7443", LastContact: 80 * time.Millisecond},
		CertExpiry: testNow.Add(300 * 24 * time.Hour),
		CAExpiry:   testNow.Add(3650 * 24 * time.Hour),
	}
}

// brokenNode has one fault in every area.
func brokenNode() node {
	st := healthyStatus()
	st.Raft.LeaderID, st.Raft.LeaderAddress = "", ""
	st.CertExpiry = testNow.Add(5 * 24 * time.Hour)
	return node{quorum: "quorumtool-not-quorate.txt", quorumExit: 2, links: "cfgtool-node3-isolated.txt",
		events: "events2-broken.txt", lvs: "lvs-full.json", status: st}
}

type fakeController struct {
	st  *ha.ClusterStatus
	err error
}

func (f fakeController) Status(context.Context) (ha.ClusterStatus, error) {
	if f.err != nil {
		return ha.ClusterStatus{}, f.err
	}
	return *f.st, nil
}

func readTestdata(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Sources returns sources that answer as the node would, through run.Fake.
func (n node) Sources(t testing.TB) Sources {
	t.Helper()
	or := func(s, def string) string {
		if s == "" {
			return def
		}
		return s
	}
	f := run.NewFake(t)
	if n.corosyncDown {
		f.On("corosync-quorumtool", "-s").Fail(1, "Cannot initialize CMAP service\n")
		f.On("corosync-cfgtool", "-s").Return(run.Response{ExitCode: 1, Stderr: "Could not initialize corosync configuration API error 2\n"})
	} else {
		f.On("corosync-quorumtool", "-s").Return(run.Response{Stdout: readTestdata(t, or(n.quorum, "quorumtool-quorate.txt")), ExitCode: n.quorumExit})
		f.On("corosync-cfgtool", "-s").Stdout(readTestdata(t, or(n.links, "cfgtool-ok.txt")))
	}
	f.On("drbdsetup", "events2", "--now", "--statistics").Stdout(readTestdata(t, or(n.events, "events2-healthy.txt")))
	f.OnPrefix("lvs").Stdout(readTestdata(t, or(n.lvs, "lvs-healthy.json")))
	st := n.status
	if st == nil {
		st = healthyStatus()
	}
	return Sources{
		Corosync: Commands{f}, DRBD: Commands{f}, LVM: Commands{f},
		Controller: fakeController{st: st, err: n.statusErr},
		Now:        func() time.Time { return testNow },
	}
}

func runNode(t *testing.T, n node, only ...Code) Report {
	t.Helper()
	rep, err := Default().Run(context.Background(), n.Sources(t), only...)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// worst returns the worst severity of the code's items, and the items.
func worst(rep Report, code Code) (Severity, []Item) {
	sev, items := OK, []Item(nil)
	for _, it := range rep.Items {
		if it.Code == code {
			sev = max(sev, it.Severity)
			items = append(items, it)
		}
	}
	return sev, items
}

func TestHealthyNodeIsOK(t *testing.T) {
	rep := runNode(t, node{})
	if rep.Severity != OK || rep.ExitCode != 0 || len(rep.Unavailable) != 0 {
		t.Errorf("healthy node: severity %s, exit %d, unavailable %v", rep.Severity, rep.ExitCode, rep.Unavailable)
	}
	for _, c := range Checks() {
		if sev, items := worst(rep, c.Code); sev != OK || len(items) == 0 {
			t.Errorf("%s on a healthy node = %s (%d items), want one or more ok", c.Code, sev, len(items))
		}
	}
}

// TestChecksFireAndClear: each check goes off on its fault, and the same
// check is ok once the fault is fixed (the healthy node).
func TestChecksFireAndClear(t *testing.T) {
	tests := []struct {
		code   Code
		fault  func(n *node)
		want   Severity
		wantIn string // in the message of the worst item
		hintIn string
	}{
		{CorosyncNotRunning, func(n *node) { n.corosyncDown = true }, Critical, "corosync does not answer", "systemctl restart corosync"},
		{CorosyncNoQuorum, func(n *node) { n.quorum, n.quorumExit = "quorumtool-not-quorate.txt", 2 }, Critical, "1 node(s) with 1 of 3 expected votes, 2 needed", "corosync-cfgtool -s"},
		{CorosyncLinkDown, func(n *node) { n.links = "cfgtool-link0-down.txt" }, Warning, "link 0 to node 2 is disconnected", "local address 10.99.0.1"},
		{CorosyncLinkDown, func(n *node) { n.links = "cfgtool-node3-isolated.txt" }, Critical, "no other link reaches that node", "corosync-cfgtool -s"},
		{ControllerNotMember, func(n *node) { n.status = &ha.ClusterStatus{Node: "pve1"} }, Warning, "not a member", "pvehci cluster join TOKEN"},
		{ControllerNoLeader, func(n *node) { n.status.Raft.LeaderID = "" }, Critical, "no leader", "pvehci cluster recover --help"},
		{ControllerLeaderStale, func(n *node) { n.status.Raft.LastContact = 12 * time.Second }, Warning, "for 12s", "systemctl status pvehci"},
		{ControllerLeaderStale, func(n *node) { n.status.Raft.LastContact = 45 * time.Second }, Critical, "for 45s", "10.99.0.2:7443"},
		{ControllerNoLeader, func(n *node) { n.statusErr = errors.New("the pvehci daemon is not running") }, Unknown, "could not be read", "systemctl start pvehci"},
		{CertExpiresSoon, func(n *node) { n.status.CertExpiry = testNow.Add(20 * 24 * time.Hour) }, Warning, "in 20 days", "pvehci cluster join TOKEN"},
		{CertExpiresSoon, func(n *node) { n.status.CertExpiry = testNow.Add(6 * 24 * time.Hour) }, Critical, "in 6 days", "pvehci cluster token pve1"},
		{CertExpiresSoon, func(n *node) { n.status.CAExpiry = testNow.Add(-time.Hour) }, Critical, "expired on 2026-11-22", "cluster backup"},
		{DRBDSplitBrain, func(n *node) { n.events = "events2-broken.txt" }, Critical, "vm-102-disk-1 is split-brained with pve1", "drbdadm connect --discard-my-data vm-102-disk-1"},
		{DRBDDiskNotUpToDate, func(n *node) { n.events = "events2-broken.txt" }, Critical, "vm-103-disk-0 volume 0 lost its disk (Diskless)", "drbdadm attach vm-103-disk-0"},
		{DRBDConnecting, func(n *node) { n.events = "events2-broken.txt" }, Warning, "vm-103-disk-0 is waiting for pve3 (Connecting)", "drbdadm status vm-103-disk-0"},
		{DRBDOutOfSync, func(n *node) { n.events = "events2-broken.txt" }, Warning, "", "drbdadm disconnect vm-104-disk-0:pve2 && drbdadm connect vm-104-disk-0:pve2"},
		{PoolDataFull, func(n *node) { n.lvs = "lvs-full.json" }, Critical, "pve/data data is 93.2 % full", "lvextend -L +44G pve/data"},
		{PoolMetadataFull, func(n *node) { n.lvs = "lvs-full.json" }, Warning, "pve/data metadata is 74.0 % full", "lvextend --poolmetadatasize +1G pve/data"},
		{PoolDataFull, func(n *node) { n.lvs = "lvs-inactive.json" }, Unknown, "probably not active", "lvchange -ay pve/data"},
	}
	for _, tt := range tests {
		t.Run(string(tt.code)+" "+tt.want.String(), func(t *testing.T) {
			n := node{status: healthyStatus()}
			tt.fault(&n)
			sev, items := worst(runNode(t, n, tt.code), tt.code)
			if sev != tt.want {
				t.Fatalf("severity = %s, want %s: %+v", sev, tt.want, items)
			}
			found := false
			for _, it := range items {
				if it.Severity == sev && strings.Contains(it.Message, tt.wantIn) && strings.Contains(it.Hint, tt.hintIn) {
					found = true
				}
			}
			if !found {
				t.Errorf("no %s item with message ~ %q and hint ~ %q: %+v", sev, tt.wantIn, tt.hintIn, items)
			}
			// Fixed: the healthy node.
			if sev, items := worst(runNode(t, node{}, tt.code), tt.code); sev != OK {
				t.Errorf("after the fix: %s: %+v", sev, items)
			}
		})
	}
}

func TestDependencySkipping(t *testing.T) {
	tests := []struct {
		name    string
		n       node
		skipped map[Code]Code // check -> the dependency it is skipped for
		alarms  []Code        // must still raise their own alarm
	}{
		{
			name:    "corosync down",
			n:       node{corosyncDown: true},
			skipped: map[Code]Code{CorosyncNoQuorum: CorosyncNotRunning, CorosyncLinkDown: CorosyncNotRunning},
			alarms:  []Code{CorosyncNotRunning},
		},
		{
			name:    "not a member",
			n:       node{status: &ha.ClusterStatus{Node: "pve1"}},
			skipped: map[Code]Code{ControllerNoLeader: ControllerNotMember, ControllerLeaderStale: ControllerNotMember, CertExpiresSoon: ControllerNotMember},
			alarms:  []Code{ControllerNotMember},
		},
		{
			name: "no leader",
			n: node{status: func() *ha.ClusterStatus {
				st := healthyStatus()
				st.Raft.LeaderID = ""
				return st
			}()},
			skipped: map[Code]Code{ControllerLeaderStale: ControllerNoLeader},
			alarms:  []Code{ControllerNoLeader},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := runNode(t, tt.n)
			for code, dep := range tt.skipped {
				sev, items := worst(rep, code)
				if sev != Skipped || items[0].SkippedFor != dep {
					t.Errorf("%s = %s, want skipped for %s: %+v", code, sev, dep, items)
				}
			}
			for _, code := range tt.alarms {
				if sev, items := worst(rep, code); sev != Warning && sev != Critical {
					t.Errorf("%s = %s, want an alarm: %+v", code, sev, items)
				}
			}
			if len(rep.Unavailable) != 0 {
				t.Errorf("unavailable = %v, want none: a down corosync is a finding", rep.Unavailable)
			}
		})
	}
}

// TestDependencySkippingIsPerObject: a split brain of one resource skips
// that resource's other findings, not those of other resources.
func TestDependencySkippingIsPerObject(t *testing.T) {
	rep := runNode(t, node{events: "events2-broken.txt"})
	want := map[string]Severity{
		"DRBD_CONNECTING resource vm-102-disk-1, peer pve1":            Skipped,
		"DRBD_DISK_NOT_UPTODATE resource vm-102-disk-1, volume 0":      Skipped,
		"DRBD_OUT_OF_SYNC resource vm-102-disk-1, peer pve1, volume 0": Skipped,
		"DRBD_OUT_OF_SYNC resource vm-103-disk-0, peer pve3, volume 0": Skipped, // explained by Connecting
		"DRBD_CONNECTING resource vm-103-disk-0, peer pve3":            Warning,
		"DRBD_DISK_NOT_UPTODATE resource vm-103-disk-0, volume 0":      Critical,
		"DRBD_OUT_OF_SYNC resource vm-100-disk-1, peer pve2, volume 0": Warning, // resync running
		"DRBD_OUT_OF_SYNC resource vm-104-disk-0, peer pve2, volume 0": Warning,
		"DRBD_SPLIT_BRAIN resource vm-102-disk-1":                      Critical,
	}
	got := map[string]Severity{}
	for _, it := range rep.Items {
		if len(it.Objects) > 0 && strings.HasPrefix(string(it.Code), "DRBD_") {
			got[string(it.Code)+" "+objectsText(it.Objects)] = it.Severity
		}
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s = %s, want %s", k, got[k], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d DRBD items, want %d: %v", len(got), len(want), got)
	}
}

func TestUnknownDependencySkipsNothing(t *testing.T) {
	rep := runNode(t, node{statusErr: errors.New("the pvehci daemon is not running on this node")})
	for _, code := range []Code{ControllerNotMember, ControllerNoLeader, ControllerLeaderStale, CertExpiresSoon} {
		if sev, items := worst(rep, code); sev != Unknown {
			t.Errorf("%s = %s, want unknown: %+v", code, sev, items)
		}
	}
	if len(rep.Unavailable) != 1 || rep.Unavailable[0].Source != "controller" {
		t.Errorf("unavailable = %+v, want the controller", rep.Unavailable)
	}
	if rep.ExitCode != 3 {
		t.Errorf("exit code = %d, want 3 (unknown)", rep.ExitCode)
	}
}

func TestExitCodeIsWorstSeverity(t *testing.T) {
	tests := []struct {
		sevs []Severity
		want Severity
		code int
	}{
		{nil, OK, 0},
		{[]Severity{OK, Skipped}, OK, 0},
		{[]Severity{OK, Warning}, Warning, 1},
		{[]Severity{Warning, Critical, OK}, Critical, 2},
		{[]Severity{Warning, Unknown}, Unknown, 3},
		{[]Severity{Unknown, Critical}, Critical, 2},
	}
	for _, tt := range tests {
		var checks []Check
		for i, s := range tt.sevs {
			checks = append(checks, Check{Code: Code("C" + string(rune('A'+i))), Run: func(context.Context, *Inputs) []Finding {
				return []Finding{{Severity: s}}
			}})
		}
		r, err := NewRegistry(checks...)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := r.Run(context.Background(), Sources{})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Severity != tt.want || rep.ExitCode != tt.code {
			t.Errorf("%v: severity %s exit %d, want %s exit %d", tt.sevs, rep.Severity, rep.ExitCode, tt.want, tt.code)
		}
	}
}

func TestRegistryRejects(t *testing.T) {
	fn := func(context.Context, *Inputs) []Finding { return nil }
	tests := []struct {
		name   string
		checks []Check
		err    string
	}{
		{"duplicate", []Check{{Code: "A", Run: fn}, {Code: "A", Run: fn}}, "registered twice"},
		{"forward dependency", []Check{{Code: "A", DependsOn: []Code{"B"}, Run: fn}, {Code: "B", Run: fn}}, "not registered before it"},
		{"no function", []Check{{Code: "A"}}, "needs a code and a function"},
	}
	for _, tt := range tests {
		if _, err := NewRegistry(tt.checks...); err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.err)
		}
	}
	if _, err := Default().Run(context.Background(), Sources{}, "NO_SUCH_CHECK"); err == nil || !strings.Contains(err.Error(), "COROSYNC_NO_QUORUM") {
		t.Errorf("unknown code: err = %v, want the list of known checks", err)
	}
}

func TestOnlyRunsSelectedAndDependencies(t *testing.T) {
	rep := runNode(t, brokenNode(), ControllerLeaderStale)
	for _, it := range rep.Items {
		if it.Code != ControllerLeaderStale {
			t.Errorf("item of %s reported, want only %s", it.Code, ControllerLeaderStale)
		}
	}
	if sev, _ := worst(rep, ControllerLeaderStale); sev != Skipped {
		t.Errorf("%s = %s, want skipped (its dependency ran although not selected)", ControllerLeaderStale, sev)
	}
}

func TestSeverityText(t *testing.T) {
	for s := OK; s <= Critical; s++ {
		b, _ := s.MarshalText()
		var back Severity
		if err := back.UnmarshalText(b); err != nil || back != s {
			t.Errorf("%s: round trip = %s, %v", s, back, err)
		}
	}
}
