package controller

import (
	"strings"
	"testing"
	"time"

	"github.com/pvehci/pvehci/ha/state"
	"github.com/pvehci/pvehci/storage/drbd"
	"github.com/pvehci/pvehci/storage/model"
	"github.com/pvehci/pvehci/storage/satellite"
)

const testSnap = "snap1"

// snapCluster is testCluster with a diskless client on pve3 and the
// snapshot testSnap of the two diskful replicas.
func snapCluster(t *testing.T) *state.State {
	t.Helper()
	s := testCluster(t)
	mustApply(t, s, &state.CreateNode{Name: "pve3", NodeType: model.NodeTypeSatellite,
		NetInterfaces: []model.NetInterface{{Name: "default", Address: "10.99.0.3"}}})
	mustApply(t, s, &state.CreateResource{ResourceDefinition: testRD, Node: "pve3", Kind: state.Diskless})
	mustApply(t, s, &state.CreateSnapshotDefinition{ResourceDefinition: testRD, Name: testSnap})
	return s
}

// snapReport is a report of node with testRD up, suspended as given
// ("no", "user"), and holding the snapshot LV when taken.
func snapReport(node, suspended string, taken bool) satellite.NodeReport {
	rep := satellite.NodeReport{Node: node, Boot: "a", Resources: []drbd.ObservedResource{{
		Name: testRD, Role: drbd.RoleSecondary, Suspended: suspended,
		Devices: []drbd.ObservedDevice{{Volume: 0, Minor: 1000, Disk: drbd.DiskUpToDate}},
	}}}
	if strings.Contains(suspended, "user") {
		rep.Barriers = []string{testRD + "/" + testSnap}
	}
	if taken {
		rep.Snapshots = []string{"pve/" + satellite.SnapshotLVName(testRD, 0, testSnap)}
	}
	return rep
}

// staleSuspended is a report of node with I/O suspended by user from a
// pass that did not hold testSnap's barrier.
func staleSuspended(node string) satellite.NodeReport {
	rep := snapReport(node, "user", false)
	rep.Barriers = nil
	return rep
}

// snapStep is one controller pass: the reports the nodes sent before it
// (a node not named keeps its last report), how far the clock moved, and
// the snapshot definition expected after it.
type snapStep struct {
	reports   []satellite.NodeReport
	advance   time.Duration
	phase     string // "" for none
	failed    bool   // KeySnapshotFailed set
	flags     []string
	deleted   bool // the definition is gone
	setDelete bool // set DELETE before the pass
}

func TestCompleterSnapshotRound(t *testing.T) {
	t.Parallel()
	all := func(susp string, taken bool) []satellite.NodeReport {
		return []satellite.NodeReport{snapReport("pve1", susp, taken), snapReport("pve2", susp, taken), snapReport("pve3", susp, false)}
	}
	tests := []struct {
		name  string
		steps []snapStep
	}{
		{name: "normal path", steps: []snapStep{
			{reports: all("no", false), phase: satellite.PhaseSuspend},
			// pve3 (diskless) not yet suspended: the barrier waits.
			{reports: []satellite.NodeReport{snapReport("pve1", "user", false), snapReport("pve2", "user", false)}, advance: time.Second, phase: satellite.PhaseSuspend},
			{reports: []satellite.NodeReport{snapReport("pve3", "user", false)}, phase: satellite.PhaseTake},
			// One diskful node has its LV, the other not yet.
			{reports: []satellite.NodeReport{snapReport("pve1", "user", true)}, phase: satellite.PhaseTake},
			{reports: []satellite.NodeReport{snapReport("pve2", "user,quorum", true)}, phase: satellite.PhaseResume},
			{reports: []satellite.NodeReport{snapReport("pve1", "no", true), snapReport("pve2", "no", true)}, phase: satellite.PhaseResume},
			{reports: []satellite.NodeReport{snapReport("pve3", "no", false)}, flags: []string{model.SnapFlagSuccessful}},
			// Done: nothing moves any more.
			{advance: time.Hour, flags: []string{model.SnapFlagSuccessful}},
		}},
		{name: "suspend deadline", steps: []snapStep{
			{reports: all("no", false), phase: satellite.PhaseSuspend},
			{reports: []satellite.NodeReport{snapReport("pve1", "user", false), snapReport("pve2", "user", false)}, advance: SnapshotPhaseTimeout - time.Second, phase: satellite.PhaseSuspend},
			{advance: time.Second, phase: satellite.PhaseResume, failed: true},
			// pve3 suspends late: too late, the round does not take.
			{reports: []satellite.NodeReport{snapReport("pve3", "user", false)}, phase: satellite.PhaseResume, failed: true},
			{reports: all("no", false), flags: []string{model.SnapFlagFailedDeployment}},
		}},
		{name: "take deadline, then resume deadline", steps: []snapStep{
			{reports: all("no", false), phase: satellite.PhaseSuspend},
			{reports: all("user", false), phase: satellite.PhaseTake},
			{reports: []satellite.NodeReport{snapReport("pve1", "user", true)}, advance: SnapshotPhaseTimeout, phase: satellite.PhaseResume, failed: true},
			// pve2 never reports again; after the second deadline
			// the round ends anyway.
			{reports: []satellite.NodeReport{snapReport("pve1", "no", true), snapReport("pve3", "no", false)}, advance: time.Second, phase: satellite.PhaseResume, failed: true},
			{advance: SnapshotPhaseTimeout, flags: []string{model.SnapFlagFailedDeployment}},
		}},
		{name: "a suspension from a pass that did not know the round does not count", steps: []snapStep{
			{reports: all("no", false), phase: satellite.PhaseSuspend},
			{reports: []satellite.NodeReport{snapReport("pve1", "user", false), snapReport("pve2", "user", false),
				staleSuspended("pve3")}, phase: satellite.PhaseSuspend},
			{reports: []satellite.NodeReport{snapReport("pve3", "user", false)}, phase: satellite.PhaseTake},
		}},
		{name: "node without a report holds the barrier", steps: []snapStep{
			{reports: []satellite.NodeReport{snapReport("pve1", "user", false), snapReport("pve2", "user", false)}, phase: satellite.PhaseSuspend},
			{phase: satellite.PhaseSuspend},
		}},
		{name: "delete after success", steps: []snapStep{
			{reports: all("no", false), phase: satellite.PhaseSuspend},
			{reports: all("user", false), phase: satellite.PhaseTake},
			{reports: all("user", true), phase: satellite.PhaseResume},
			{reports: all("no", true), flags: []string{model.SnapFlagSuccessful}},
			// Flagged DELETE: kept while any diskful node lists its LV.
			{setDelete: true, reports: []satellite.NodeReport{snapReport("pve1", "no", false)}, flags: []string{model.SnapFlagDelete, model.SnapFlagSuccessful}},
			// The diskless node never held one; pve2's LV is gone too.
			{reports: []satellite.NodeReport{snapReport("pve2", "no", false)}, deleted: true},
		}},
		{name: "delete mid-round resumes first", steps: []snapStep{
			{reports: all("no", false), phase: satellite.PhaseSuspend},
			{reports: all("user", false), phase: satellite.PhaseTake},
			{setDelete: true, phase: satellite.PhaseResume, failed: true, flags: []string{model.SnapFlagDelete}},
			{reports: all("no", false), deleted: true},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := snapCluster(t)
			clk := newClock()
			store := &Store{Now: clk.Now}
			c := newCompleter(s, store, clk)
			c.Now = clk.Now
			var seq uint64
			for i, st := range tc.steps {
				clk.Advance(st.advance)
				for _, rep := range st.reports {
					put(store, rep, &seq)
				}
				if st.setDelete {
					mustApply(t, s, &state.SetFlags{Target: state.Target{Kind: model.ObjSnapshotDefinition, ResourceDefinition: testRD, Snapshot: testSnap},
						Set: []string{model.SnapFlagDelete}})
				}
				if err := c.Pass(t.Context()); err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				sd, ok := s.SnapshotDefinition(testRD, testSnap)
				if ok == st.deleted {
					t.Fatalf("step %d: definition present %t, want %t", i, ok, !st.deleted)
				}
				if !ok {
					continue
				}
				if got := sd.Props[satellite.KeySnapshotPhase]; got != st.phase {
					t.Errorf("step %d: phase %q, want %q", i, got, st.phase)
				}
				if got := sd.Props[satellite.KeySnapshotFailed] != ""; got != st.failed {
					t.Errorf("step %d: failed %t (%q), want %t", i, got, sd.Props[satellite.KeySnapshotFailed], st.failed)
				}
				if st.phase == "" && sd.Props[satellite.KeySnapshotPhaseSince] != "" {
					t.Errorf("step %d: phase start %q left behind", i, sd.Props[satellite.KeySnapshotPhaseSince])
				}
				if st.phase != "" {
					if _, err := time.Parse(time.RFC3339Nano, sd.Props[satellite.KeySnapshotPhaseSince]); err != nil {
						t.Errorf("step %d: phase start: %v", i, err)
					}
				}
				if want := model.Flags(nil).With(st.flags...); !sameFlags(sd.Flags, want) {
					t.Errorf("step %d: flags %v, want %v", i, sd.Flags, want)
				}
			}
		})
	}
}

func sameFlags(a, b model.Flags) bool {
	if len(a) != len(b) {
		return false
	}
	for _, f := range b {
		if !a.Has(f) {
			return false
		}
	}
	return true
}

// TestCompleterSnapshotPhaseStart checks that a phase's deadline counts
// from the phase's own start, not the round's.
func TestCompleterSnapshotPhaseStart(t *testing.T) {
	t.Parallel()
	s := snapCluster(t)
	clk := newClock()
	store := &Store{Now: clk.Now}
	c := newCompleter(s, store, clk)
	c.Now = clk.Now
	var seq uint64
	pass := func() model.SnapshotDefinition {
		t.Helper()
		if err := c.Pass(t.Context()); err != nil {
			t.Fatal(err)
		}
		sd, _ := s.SnapshotDefinition(testRD, testSnap)
		return sd
	}
	pass()
	clk.Advance(SnapshotPhaseTimeout - time.Second)
	for _, n := range []string{"pve1", "pve2", "pve3"} {
		put(store, snapReport(n, "user", false), &seq)
	}
	if sd := pass(); sd.Props[satellite.KeySnapshotPhase] != satellite.PhaseTake || sd.Props[satellite.KeySnapshotPhaseSince] != clk.Now().Format(time.RFC3339Nano) {
		t.Fatalf("props %v, want phase take started now", sd.Props)
	}
	clk.Advance(SnapshotPhaseTimeout - time.Second)
	if sd := pass(); sd.Props[satellite.KeySnapshotPhase] != satellite.PhaseTake {
		t.Errorf("take ended after %s of its own: %v", SnapshotPhaseTimeout-time.Second, sd.Props)
	}
}
