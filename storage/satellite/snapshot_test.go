package satellite

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pvehci/pvehci/ha/state"
	"github.com/pvehci/pvehci/internal/run"
	"github.com/pvehci/pvehci/storage/drbd"
	"github.com/pvehci/pvehci/storage/lvm"
	"github.com/pvehci/pvehci/storage/model"
)

func TestPlanSnapshots(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	const rscName = "vm-100-disk-1"
	vol := DesiredVolume{Number: 0, Minor: 1000, VG: "pve", ThinPool: "data", LV: lvm.VolumeLVName(rscName, 0)}
	snapLV := SnapshotLVName(rscName, 0, "s1")
	origin := lvm.LV{Name: vol.LV, VG: "pve", Tags: []string{lvm.Tag}}
	taken := lvm.LV{Name: snapLV, VG: "pve", Origin: vol.LV, Tags: []string{lvm.Tag}}
	local := []SnapshotLV{{Volume: 0, VG: "pve", Origin: vol.LV, Name: snapLV}}
	snap := func(phase string, age time.Duration, here bool) DesiredSnapshot {
		s := DesiredSnapshot{Resource: rscName, Name: "s1", Phase: phase, Since: now.Add(-age)}
		if here {
			s.LVs = local
		}
		return s
	}
	up := func(susp string) map[string]drbd.ObservedResource {
		return map[string]drbd.ObservedResource{rscName: {Name: rscName, Role: drbd.RoleSecondary, Suspended: susp}}
	}
	lvs := func(l ...lvm.LV) map[string]lvm.LV {
		m := map[string]lvm.LV{}
		for _, lv := range l {
			m[lv.VG+"/"+lv.Name] = lv
		}
		return m
	}
	tests := []struct {
		name     string
		diskless bool
		snaps    []DesiredSnapshot
		drbd     map[string]drbd.ObservedResource
		lvs      map[string]lvm.LV
		want     []string // Action.String()
		orphan   bool
	}{
		{name: "suspend", snaps: []DesiredSnapshot{snap(PhaseSuspend, time.Second, true)}, drbd: up("no"), lvs: lvs(origin),
			want: []string{"SuspendIO " + rscName}},
		{name: "suspend diskless", diskless: true, snaps: []DesiredSnapshot{snap(PhaseSuspend, time.Second, false)}, drbd: up("no"),
			want: []string{"SuspendIO " + rscName}},
		{name: "suspended already", snaps: []DesiredSnapshot{snap(PhaseSuspend, time.Second, true)}, drbd: up("user"), lvs: lvs(origin)},
		{name: "not up: nothing to suspend", snaps: []DesiredSnapshot{snap(PhaseSuspend, time.Second, true)}, lvs: lvs(origin)},
		{name: "take", snaps: []DesiredSnapshot{snap(PhaseTake, time.Second, true)}, drbd: up("user"), lvs: lvs(origin),
			want: []string{"TakeSnapshot pve/" + snapLV + " of pve/" + vol.LV}},
		{name: "take is idempotent", snaps: []DesiredSnapshot{snap(PhaseTake, time.Second, true)}, drbd: up("user"), lvs: lvs(origin, taken)},
		{name: "take without the barrier takes nothing", snaps: []DesiredSnapshot{snap(PhaseTake, time.Second, true)}, drbd: up("no"), lvs: lvs(origin)},
		{name: "take on a node the snapshot does not list", snaps: []DesiredSnapshot{snap(PhaseTake, time.Second, false)}, drbd: up("user"), lvs: lvs(origin)},
		{name: "take diskless", diskless: true, snaps: []DesiredSnapshot{snap(PhaseTake, time.Second, false)}, drbd: up("user")},
		{name: "untagged LV in the way", snaps: []DesiredSnapshot{snap(PhaseTake, time.Second, true)}, drbd: up("user"),
			lvs: lvs(origin, lvm.LV{Name: snapLV, VG: "pve", Origin: vol.LV}), orphan: true},
		{name: "resume", snaps: []DesiredSnapshot{snap(PhaseResume, time.Second, true)}, drbd: up("user"), lvs: lvs(origin, taken),
			want: []string{"ResumeIO " + rscName}},
		{name: "resume with quorum suspension too", snaps: []DesiredSnapshot{snap(PhaseResume, time.Second, true)}, drbd: up("user,quorum"), lvs: lvs(origin, taken),
			want: []string{"ResumeIO " + rscName}},
		{name: "resume without any snapshot", drbd: up("user"), lvs: lvs(origin), want: []string{"ResumeIO " + rscName}},
		{name: "quorum suspension is not ours", drbd: up("quorum"), lvs: lvs(origin)},
		{name: "local deadline resumes", snaps: []DesiredSnapshot{snap(PhaseTake, SnapshotLocalDeadline, true)}, drbd: up("user"), lvs: lvs(origin),
			want: []string{"ResumeIO " + rscName}},
		{name: "phase without a start resumes", snaps: []DesiredSnapshot{{Resource: rscName, Name: "s1", Phase: PhaseSuspend, LVs: local}}, drbd: up("user"), lvs: lvs(origin),
			want: []string{"ResumeIO " + rscName}},
		{name: "a second round holds the barrier", snaps: []DesiredSnapshot{snap(PhaseResume, time.Second, true), {Resource: rscName, Name: "s2", Phase: PhaseSuspend, Since: now}}, drbd: up("user"), lvs: lvs(origin, taken)},
		{name: "remove", snaps: []DesiredSnapshot{{Resource: rscName, Name: "s1", Delete: true, LVs: local}}, drbd: up("no"), lvs: lvs(origin, taken),
			want: []string{"RemoveSnapshot pve/" + snapLV}},
		{name: "removed", snaps: []DesiredSnapshot{{Resource: rscName, Name: "s1", Delete: true, LVs: local}}, drbd: up("no"), lvs: lvs(origin)},
		{name: "deleted mid-round resumes and removes", snaps: []DesiredSnapshot{{Resource: rscName, Name: "s1", Phase: PhaseTake, Since: now, Delete: true, LVs: local}},
			drbd: up("user"), lvs: lvs(origin, taken), want: []string{"ResumeIO " + rscName, "RemoveSnapshot pve/" + snapLV}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v := vol
			if tc.diskless {
				v = DesiredVolume{Number: 0, Minor: 1000, Diskless: true}
			}
			d := DesiredResource{Name: rscName, Diskless: tc.diskless, Volumes: []DesiredVolume{v}, Snapshots: tc.snaps}
			var p PlanResult
			var got []string
			obs := Observed{LVs: tc.lvs, DRBD: tc.drbd}
			acts := planSnapshots(d, obs, now, &p)
			acts = append(acts, planSnapshotRemovals(DesiredState{Snapshots: tc.snaps}, obs, &p)...)
			for _, a := range acts {
				got = append(got, a.String())
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("planned %q, want %q", got, tc.want)
			}
			if (len(p.Orphans) > 0) != tc.orphan {
				t.Errorf("orphans %+v, want some: %t", p.Orphans, tc.orphan)
			}
		})
	}
}

// TestPlanNeverOrphansSnapshotLVs: a snapshot LV whose origin and
// resource were removed (lvs then shows no origin) is still owned by its
// snapshot definition.
func TestPlanNeverOrphansSnapshotLVs(t *testing.T) {
	t.Parallel()
	got := Observed{LVs: map[string]lvm.LV{"pve/r_00000_s1": {Name: "r_00000_s1", VG: "pve", Tags: []string{lvm.Tag}}}}
	p := Plan(DesiredState{Node: "pve1", Snapshots: []DesiredSnapshot{{Resource: "r", Name: "s1",
		LVs: []SnapshotLV{{Volume: 0, VG: "pve", Origin: "r_00000", Name: "r_00000_s1"}}}}}, got)
	if len(p.Orphans) > 0 || len(p.Actions) > 0 {
		t.Errorf("plan %+v, want nothing", p)
	}
}

// TestApplyResumesAfterFailure: a failed action of the resource skips
// everything after it but ResumeIO.
func TestApplyResumesAfterFailure(t *testing.T) {
	t.Parallel()
	f := run.NewFake(t)
	f.On("drbdadm", "-vvv", "adjust", "r").Fail(10, "adjust failed")
	f.On("drbdadm", "resume-io", "r")
	r := &Reconciler{Node: "pve1", Runner: f}
	out := r.Apply(t.Context(), []Action{
		{Kind: Adjust, Resource: "r"},
		{Kind: TakeSnapshot, Resource: "r", VG: "pve", LV: "r_00000", Snapshot: "s1"},
		{Kind: ResumeIO, Resource: "r"},
	})
	if out[0].Err == nil || !out[1].Skipped || out[2].Skipped || out[2].Err != nil {
		t.Errorf("outcomes %+v, want adjust failed, take skipped, resume run", out)
	}
	var argv []string
	for _, c := range f.Calls() {
		argv = append(argv, strings.Join(append([]string{c.Name}, c.Args...), " "))
	}
	if !slices.Equal(argv, []string{"drbdadm -vvv adjust r", "drbdadm resume-io r"}) {
		t.Errorf("ran %q", argv)
	}
}

// TestDesiredSnapshots reads the snapshot rounds and LVs from the state:
// every node with the resource joins the round, only the snapshot's nodes
// hold LVs, and a node keeps its snapshot LVs to remove after its
// resource is gone.
func TestDesiredSnapshots(t *testing.T) {
	t.Parallel()
	s := kindCluster(t, 1<<10, state.Diskful, state.Diskful, state.Diskless)
	if res := s.Apply(&state.CreateSnapshotDefinition{ResourceDefinition: rsc, Name: "s1",
		Props: model.Props{KeySnapshotPhase: PhaseTake, KeySnapshotPhaseSince: "2025-01-02T03:04:05Z"}}); res.Err != nil {
		t.Fatal(res.Err)
	}
	lv := SnapshotLV{Volume: 0, VG: "pve", Origin: lvm.VolumeLVName(rsc, 0), Name: lvm.VolumeLVName(rsc, 0) + "_s1"}
	since := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		node string
		lvs  []SnapshotLV
	}{{"pve1", []SnapshotLV{lv}}, {"pve3", nil}} {
		d, err := Desired(s, tc.node)
		if err != nil {
			t.Fatal(err)
		}
		r, _ := d.Resource(rsc)
		want := []DesiredSnapshot{{Resource: rsc, Name: "s1", Phase: PhaseTake, Since: since, LVs: tc.lvs}}
		if !reflect.DeepEqual(r.Snapshots, want) {
			t.Errorf("%s: resource snapshots %+v, want %+v", tc.node, r.Snapshots, want)
		}
		if tc.lvs == nil {
			want = nil
		}
		if !reflect.DeepEqual(d.Snapshots, want) {
			t.Errorf("%s: node snapshots %+v, want %+v", tc.node, d.Snapshots, want)
		}
	}

	// Finished: no phase any more. Deleted, and pve2's replica gone: pve2
	// still removes its LV.
	for _, cmd := range []state.Command{
		&state.SetFlags{Target: state.Target{Kind: model.ObjSnapshotDefinition, ResourceDefinition: rsc, Snapshot: "s1"}, Set: []string{model.SnapFlagSuccessful, model.SnapFlagDelete}},
		&state.DeleteResource{ResourceDefinition: rsc, Node: "pve2"},
	} {
		if res := s.Apply(cmd); res.Err != nil {
			t.Fatalf("%s: %v", cmd.Type(), res.Err)
		}
	}
	d, err := Desired(s, "pve2")
	if err != nil {
		t.Fatal(err)
	}
	want := []DesiredSnapshot{{Resource: rsc, Name: "s1", Delete: true, LVs: []SnapshotLV{lv}}}
	if len(d.Resources) != 0 || !reflect.DeepEqual(d.Snapshots, want) {
		t.Errorf("pve2: resources %+v, snapshots %+v; want none and %+v", d.Resources, d.Snapshots, want)
	}
	got := Observed{LVs: map[string]lvm.LV{lv.Key(): {Name: lv.Name, VG: "pve", Tags: []string{lvm.Tag}}}}
	if p := Plan(d, got); len(p.Actions) != 1 || p.Actions[0].Kind != RemoveSnapshot || p.Actions[0].LV != lv.Name {
		t.Errorf("pve2 plans %+v, want RemoveSnapshot of %s", p.Actions, lv.Key())
	}
}
