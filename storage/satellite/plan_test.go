package satellite

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/pvehci/pvehci/ha/state"
	"github.com/pvehci/pvehci/storage/drbd"
	"github.com/pvehci/pvehci/storage/lvm"
	"github.com/pvehci/pvehci/storage/model"
)

func TestPlanEdgeCases(t *testing.T) {
	t.Parallel()
	const key = "pve/" + rsc + "_00000"
	ourLV := func(sizeKiB uint64, attr string) map[string]lvm.LV {
		return map[string]lvm.LV{key: {Name: rsc + "_00000", VG: "pve", Attr: lvm.LVAttr(attr), Size: sizeKiB * 1024, PoolLV: "data", Tags: []string{lvm.Tag}}}
	}
	upNoPeer := func(disk drbd.DiskState, role drbd.Role) map[string]drbd.ObservedResource {
		return map[string]drbd.ObservedResource{rsc: {Name: rsc, Role: role,
			Devices: []drbd.ObservedDevice{{Volume: 0, Minor: 1000, Disk: disk}}}}
	}
	tests := []struct {
		name    string
		flag    string // resource flag on pve1
		rdFlag  string // flag on the resource definition
		got     Observed
		want    []Kind
		problem string
	}{
		{name: "LV there with metadata, not up: adjust only",
			got:  Observed{LVs: ourLV(1052672, "Vwi-a-tz--"), HasMD: map[string]bool{key: true}},
			want: []Kind{WriteRes, Adjust}},
		{name: "inactive LV is activated",
			got:  Observed{LVs: ourLV(1052672, "Vwi---tz--"), HasMD: map[string]bool{key: true}},
			want: []Kind{ActivateLV, WriteRes, Adjust}},
		{name: "LV smaller than DRBD needs, without metadata: grown before create-md",
			got:  Observed{LVs: ourLV(1048576, "Vwi-a-tz--"), HasMD: map[string]bool{key: false}},
			want: []Kind{GrowLV, WriteRes, CreateMD, Adjust}},
		{name: "LV smaller than DRBD needs, with metadata, not attached: attached first, not grown",
			got:  Observed{LVs: ourLV(1048576, "Vwi-a-tz--"), HasMD: map[string]bool{key: true}},
			want: []Kind{WriteRes, Adjust}},
		{name: "LV smaller than DRBD needs, not probed: refused until probed",
			got:     Observed{LVs: ourLV(1048576, "Vwi-a-tz--")},
			problem: "was not probed"},
		{name: "metadata probe that could not tell is refused",
			got:     Observed{LVs: ourLV(1052672, "Vwi-a-tz--"), ProbeErr: map[string]error{key: errors.New("exit code 20")}},
			problem: "exit code 20"},
		{name: "missing VG is refused",
			got:     Observed{},
			problem: "volume group pve does not exist"},
		{name: "DRBD_DELETE takes down and removes the .res, keeps the LV",
			flag: model.RscFlagDrbdDelete,
			got:  Observed{LVs: ourLV(1052672, "Vwi-aotz--"), DRBD: upNoPeer(drbd.DiskInconsistent, drbd.RoleSecondary), Res: map[string][]byte{rsc: []byte("x")}},
			want: []Kind{Down, RemoveRes}},
		{name: "delete of a Primary is refused",
			flag:    model.RscFlagDelete,
			got:     Observed{LVs: ourLV(1052672, "Vwi-aotz--"), DRBD: upNoPeer(drbd.DiskInconsistent, drbd.RolePrimary)},
			problem: "Primary"},
		{name: "delete of a lone UpToDate replica is refused",
			flag:    model.RscFlagDelete,
			got:     Observed{LVs: ourLV(1052672, "Vwi-aotz--"), DRBD: upNoPeer(drbd.DiskUpToDate, drbd.RoleSecondary)},
			problem: "last UpToDate replica"},
		{name: "deleting the whole definition takes down its last UpToDate replica",
			flag: model.RscFlagDelete, rdFlag: model.RdFlagDelete,
			got:  Observed{LVs: ourLV(1052672, "Vwi-aotz--"), DRBD: upNoPeer(drbd.DiskUpToDate, drbd.RoleSecondary)},
			want: []Kind{Down, WipeMD, RemoveLV}},
		{name: "deleting the whole definition still refuses a Primary",
			flag: model.RscFlagDelete, rdFlag: model.RdFlagDelete,
			got:     Observed{LVs: ourLV(1052672, "Vwi-aotz--"), DRBD: upNoPeer(drbd.DiskUpToDate, drbd.RolePrimary)},
			problem: "Primary"},
		{name: "delete of a resource that is already down still completes",
			flag: model.RscFlagDelete,
			got:  Observed{LVs: ourLV(1052672, "Vwi-a-tz--")},
			want: []Kind{WipeMD, RemoveLV}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := cluster(t, rsc)
			if tc.flag != "" {
				setResourceFlag(t, s, rsc, "pve1", tc.flag)
			}
			if tc.rdFlag != "" {
				if res := s.Apply(&state.SetFlags{Target: state.Target{Kind: model.ObjResourceDefinition, ResourceDefinition: rsc}, Set: []string{tc.rdFlag}}); res.Err != nil {
					t.Fatal(res.Err)
				}
			}
			want, err := Desired(s, "pve1")
			if err != nil {
				t.Fatal(err)
			}
			if tc.got.ExtentKiB == nil && tc.got.LVs != nil {
				tc.got.ExtentKiB = map[string]int64{"pve": 4096}
			}
			p := Plan(want, tc.got)
			var kinds []Kind
			for _, a := range p.Actions {
				kinds = append(kinds, a.Kind)
			}
			if !slices.Equal(kinds, tc.want) {
				t.Errorf("actions = %v, want %v", kinds, tc.want)
			}
			switch {
			case tc.problem == "" && len(p.Problems) > 0:
				t.Errorf("problems = %v", p.Problems)
			case tc.problem != "" && (len(p.Problems) != 1 || !strings.Contains(p.Problems[0].Err.Error(), tc.problem)):
				t.Errorf("problems = %v, want one with %q", p.Problems, tc.problem)
			}
		})
	}
}

func TestDesiredUnknownNode(t *testing.T) {
	t.Parallel()
	if _, err := Desired(cluster(t), "pve9"); err == nil || !strings.Contains(err.Error(), "pve9") {
		t.Errorf("err = %v, want one naming the node", err)
	}
}

func TestPlanStrayDiskAfterToggleToDiskless(t *testing.T) {
	t.Parallel()
	const key = "pve/" + rsc + "_00000"
	s := cluster(t, rsc)
	if res := s.Apply(&state.ToggleDisk{ResourceDefinition: rsc, Node: "pve1"}); res.Err != nil {
		t.Fatal(res.Err)
	}
	want, err := Desired(s, "pve1")
	if err != nil {
		t.Fatal(err)
	}
	d, _ := want.Resource(rsc)
	lvs := map[string]lvm.LV{key: {Name: rsc + "_00000", VG: "pve", Attr: "Vwi-aotz--", Size: 1052672 * 1024, PoolLV: "data", Tags: []string{lvm.Tag}}}
	for _, tc := range []struct {
		name     string
		disk     drbd.DiskState
		client   bool
		removeLV bool
	}{
		{name: "still attached: the adjust detaches first", disk: drbd.DiskUpToDate},
		{name: "detached: the LV goes", disk: drbd.DiskDiskless, client: true, removeLV: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Observed{LVs: lvs, ExtentKiB: map[string]int64{"pve": 4096}, Res: map[string][]byte{rsc: d.Res},
				DRBD: map[string]drbd.ObservedResource{rsc: {Name: rsc, Role: drbd.RoleSecondary,
					Devices: []drbd.ObservedDevice{{Volume: 0, Minor: 1000, Disk: tc.disk, Client: tc.client}}}}}
			p := Plan(want, got)
			removes := slices.ContainsFunc(p.Actions, func(a Action) bool { return a.Kind == RemoveLV && a.VG == "pve" && a.LV == rsc+"_00000" })
			if removes != tc.removeLV {
				t.Errorf("RemoveLV planned = %t, want %t (actions %v)", removes, tc.removeLV, p.Actions)
			}
			if tc.removeLV && len(p.Orphans) != 0 {
				t.Errorf("the LV being removed is also reported as an orphan: %v", p.Orphans)
			}
		})
	}
}
