package satellite

import (
	"slices"
	"strings"
	"testing"

	linstor "github.com/LINBIT/golinstor"
	"github.com/pvehci/pvehci/ha/state"
	"github.com/pvehci/pvehci/storage/drbd"
	"github.com/pvehci/pvehci/storage/lvm"
	"github.com/pvehci/pvehci/storage/model"
)

// TestPlanRollbackResumes: every state a rollback can be interrupted in
// is recognised from the LVs alone, and the plan finishes it from there
// without repeating a step; a replica already rolled back (tag of this
// id) is never rolled back again.
func TestPlanRollbackResumes(t *testing.T) {
	t.Parallel()
	const rsc, id = "vm-100-disk-1", "id-7"
	vol := DesiredVolume{Number: 0, Minor: 1000, VG: "pve", ThinPool: "data", LV: lvm.VolumeLVName(rsc, 0), RollbackLV: SnapshotLVName(rsc, 0, "s1")}
	d := DesiredResource{Name: rsc, NodeID: 0, Volumes: []DesiredVolume{vol}, Res: []byte("res"),
		Rollback: DesiredRollback{Hold: true, Snapshot: "s1", ID: id}}
	lv := func(name string, tags ...string) lvm.LV {
		return lvm.LV{Name: name, VG: "pve", Attr: "Vwi-a-tz--", Tags: append([]string{lvm.Tag}, tags...)}
	}
	snap := lvm.LV{Name: vol.RollbackLV, VG: "pve", Attr: "Vri---tz-k", Origin: vol.LV, Tags: []string{lvm.Tag}}
	clone := RollbackLVName(vol.LV)
	up := map[string]drbd.ObservedResource{rsc: {Name: rsc, Role: drbd.RoleSecondary,
		Devices: []drbd.ObservedDevice{{Volume: 0, Minor: 1000, Disk: drbd.DiskUpToDate}}}}
	tests := []struct {
		name     string
		d        DesiredResource
		drbd     map[string]drbd.ObservedResource
		lvs      []lvm.LV
		want     []string
		done     bool
		problem  string
		diskless bool
	}{
		{name: "from the start", drbd: up, lvs: []lvm.LV{lv(vol.LV), snap},
			want: []string{"Down " + rsc, "CloneLV pve/" + vol.RollbackLV + " to " + clone, "RemoveLV pve/" + vol.LV, "RenameLV pve/" + clone + " to " + vol.LV}},
		{name: "down already", lvs: []lvm.LV{lv(vol.LV), snap},
			want: []string{"CloneLV pve/" + vol.RollbackLV + " to " + clone, "RemoveLV pve/" + vol.LV, "RenameLV pve/" + clone + " to " + vol.LV}},
		{name: "cloned", lvs: []lvm.LV{lv(vol.LV), lv(clone, RollbackTag(id)), snap},
			want: []string{"RemoveLV pve/" + vol.LV, "RenameLV pve/" + clone + " to " + vol.LV}},
		{name: "old volume removed", lvs: []lvm.LV{lv(clone, RollbackTag(id)), snap},
			want: []string{"RenameLV pve/" + clone + " to " + vol.LV}},
		{name: "done: held down, nothing to do", lvs: []lvm.LV{lv(vol.LV, RollbackTag(id)), snap}, done: true},
		{name: "done even without the snapshot", lvs: []lvm.LV{lv(vol.LV, RollbackTag(id))}, done: true},
		{name: "clone of an earlier rollback", lvs: []lvm.LV{lv(vol.LV, RollbackTag("id-6")), lv(clone, RollbackTag("id-6")), snap},
			want: []string{"RemoveLV pve/" + clone, "CloneLV pve/" + vol.RollbackLV + " to " + clone, "RemoveLV pve/" + vol.LV, "RenameLV pve/" + clone + " to " + vol.LV}},
		{name: "in use", drbd: map[string]drbd.ObservedResource{rsc: {Name: rsc, Role: drbd.RolePrimary}}, lvs: []lvm.LV{lv(vol.LV), snap},
			problem: "Primary"},
		{name: "snapshot LV missing", lvs: []lvm.LV{lv(vol.LV)}, problem: "snapshot LV pve/" + vol.RollbackLV + " is missing"},
		{name: "volume not ours", lvs: []lvm.LV{{Name: vol.LV, VG: "pve", Attr: "Vwi-a-tz--"}, snap}, problem: "not tagged"},
		{name: "a peer rolls back: held down only", d: DesiredResource{Name: rsc, Volumes: []DesiredVolume{vol}, Rollback: DesiredRollback{Hold: true}},
			drbd: up, lvs: []lvm.LV{lv(vol.LV), snap}, want: []string{"Down " + rsc}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := d
			if tc.d.Name != "" {
				res = tc.d
			}
			got := Observed{LVs: map[string]lvm.LV{}, DRBD: tc.drbd, ExtentKiB: map[string]int64{"pve": 4096}}
			if got.DRBD == nil {
				got.DRBD = map[string]drbd.ObservedResource{}
			}
			for _, l := range tc.lvs {
				got.LVs[l.VG+"/"+l.Name] = l
			}
			p := Plan(DesiredState{Node: "pve1", Resources: []DesiredResource{res}}, got)
			var acts []string
			for _, a := range p.Actions {
				acts = append(acts, a.String())
			}
			if !slices.Equal(acts, tc.want) {
				t.Errorf("actions\n got %q\nwant %q", acts, tc.want)
			}
			var problems []string
			for _, pr := range p.Problems {
				problems = append(problems, pr.Err.Error())
			}
			if (tc.problem == "") != (len(problems) == 0) || (tc.problem != "" && !strings.Contains(strings.Join(problems, "; "), tc.problem)) {
				t.Errorf("problems %q, want one with %q", problems, tc.problem)
			}
			for _, o := range p.Orphans {
				t.Errorf("orphan %v during a rollback", o)
			}
			if rolledBack(res, got) != tc.done {
				t.Errorf("rolledBack = %v, want %v", !tc.done, tc.done)
			}
		})
	}
}

// TestRollbackArgv pins the command lines (LINSTOR's thin snapshot form,
// research/linstor-server.md §3; lvrename's VG OLD NEW form).
func TestRollbackArgv(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		a    Action
		want []string
	}{
		{Action{Kind: CloneLV, VG: "pve", LV: "r_00000.rollback", From: "r_00000_s1", Tags: []string{lvm.Tag, RollbackTag("x")}},
			[]string{"lvcreate --snapshot --setactivationskip n --activate y --permission rw --name r_00000.rollback --addtag pvehci --addtag pvehci-rollback-x pve/r_00000_s1"}},
		{Action{Kind: RenameLV, VG: "pve", LV: "r_00000", From: "r_00000.rollback"}, []string{"lvrename pve r_00000.rollback r_00000"}},
		{Action{Kind: ForgetPeers, VG: "pve", LV: "r_00000", Minor: 1001, NodeIDs: []int{2, 5}}, []string{
			"drbdmeta --force 1001 v09 /dev/pve/r_00000 internal forget-peer --node-id 2",
			"drbdmeta --force 1001 v09 /dev/pve/r_00000 internal forget-peer --node-id 5"}},
	} {
		var got []string
		for _, argv := range restoreArgv(tc.a) {
			got = append(got, strings.Join(argv, " "))
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s:\n got %q\nwant %q", tc.a.Kind, got, tc.want)
		}
	}
}

// TestDesiredRestoreAndRollback: what a node derives from the state.
func TestDesiredRestoreAndRollback(t *testing.T) {
	t.Parallel()
	s := state.New()
	apply := func(cmd state.Command) {
		t.Helper()
		if res := s.Apply(cmd); res.Err != nil {
			t.Fatalf("%s: %v", cmd.Type(), res.Err)
		}
	}
	for i, n := range []string{"pve1", "pve2", "pve3"} {
		apply(&state.CreateNode{Name: n, NodeType: model.NodeTypeSatellite,
			NetInterfaces: []model.NetInterface{{Name: "default", Address: "10.0.0." + string(rune('1'+i))}}})
		apply(&state.CreateStoragePool{Node: n, Name: model.DefaultStoragePool, ProviderKind: model.ProviderLVMThin,
			Props: model.Props{model.KeyStorDriverLvmVg: "pve", model.KeyStorDriverThinPool: "data"}})
	}
	apply(&state.CreateResourceDefinition{Name: "src", DrbdSecret: "c2VjcmV0", VolumeDefinitions: []state.NewVolumeDefinition{{SizeKiB: 8192}}})
	for _, n := range []string{"pve1", "pve2", "pve3"} {
		apply(&state.CreateResource{ResourceDefinition: "src", Node: n, Kind: state.Diskful})
	}
	apply(&state.CreateSnapshotDefinition{ResourceDefinition: "src", Name: "s1", Flags: []string{model.SnapFlagSuccessful}})
	sd, _ := s.SnapshotDefinition("src", "s1")
	// Restored on pve1 and pve2 only; pve3's node id may go to a new
	// peer, so its slot is cleared.
	apply(&state.CreateResourceDefinition{Name: "dst", DrbdSecret: "c2VjcmV0", VolumeDefinitions: []state.NewVolumeDefinition{{SizeKiB: 8192}}})
	for _, sn := range sd.Snapshots[:2] {
		id := sn.NodeID
		apply(&state.CreateResource{ResourceDefinition: "dst", Node: sn.Node, Kind: state.Diskful, NodeID: &id,
			Flags: []string{model.RscFlagRestoreFromSnapshot},
			Props: model.Props{linstor.KeyVlmRestoreFromResource: "src", linstor.KeyVlmRestoreFromSnapshot: "s1"}})
	}
	want, err := Desired(s, sd.Snapshots[0].Node)
	if err != nil {
		t.Fatal(err)
	}
	dst, _ := want.Resource("dst")
	if dst.Restore == nil || dst.Restore.Err != nil || dst.Volumes[0].RestoreLV != "src_00000_s1" {
		t.Fatalf("restore: %+v, volume %+v", dst.Restore, dst.Volumes[0])
	}
	keep := []int{sd.Snapshots[0].NodeID, sd.Snapshots[1].NodeID}
	if len(dst.Restore.Forget) != 30 || slices.ContainsFunc(dst.Restore.Forget, func(id int) bool { return slices.Contains(keep, id) }) ||
		!slices.Contains(dst.Restore.Forget, sd.Snapshots[2].NodeID) {
		t.Errorf("forget %v: want every id but the restored peers' %v", dst.Restore.Forget, keep)
	}

	// Rollback: RollbackTarget on pve1 holds pve2 and pve3 down too.
	apply(&state.SetProps{Target: state.Target{Kind: model.ObjResource, ResourceDefinition: "src", Node: "pve1"},
		Change: model.PropsChange{Set: model.Props{linstor.KeyRscRollbackTarget: "s1", PropRollbackID: "id-1"}}})
	for _, n := range []string{"pve1", "pve2", "pve3"} {
		w, _ := Desired(s, n)
		r, _ := w.Resource("src")
		if !r.Rollback.Hold || (n == "pve1") != (r.Rollback.ID == "id-1") || r.Rollback.Err != nil {
			t.Errorf("%s: rollback %+v", n, r.Rollback)
		}
		if n == "pve1" && r.Volumes[0].RollbackLV != "src_00000_s1" {
			t.Errorf("pve1: rollback LV %q", r.Volumes[0].RollbackLV)
		}
	}
	// Without the id, set by hand: refused with what to do.
	apply(&state.SetProps{Target: state.Target{Kind: model.ObjResource, ResourceDefinition: "src", Node: "pve2"},
		Change: model.PropsChange{Set: model.Props{linstor.KeyRscRollbackTarget: "s1"}}})
	w, _ := Desired(s, "pve2")
	if r, _ := w.Resource("src"); r.Rollback.Err == nil || !strings.Contains(r.Rollback.Err.Error(), "snapshot-rollback") {
		t.Errorf("RollbackTarget without an id: %v", r.Rollback.Err)
	}
}
