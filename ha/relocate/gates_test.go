package relocate

import (
	"strings"
	"testing"
	"time"

	"github.com/pvehci/pvehci/ha/state"
	"github.com/pvehci/pvehci/storage/model"
)

// Each gate of MakeDiskful, on a VM migrated from n1 to the diskless n3
// whose timer is due: the step is skipped with its reason, recorded once,
// and taken once the cause is gone.
func TestMakeDiskfulGates(t *testing.T) {
	const rd = "vm-100-disk-1"
	tests := []struct {
		name    string
		breakIt func(s *sim)
		fix     func(s *sim)
		reason  string
	}{
		{"target pool full",
			func(s *sim) { s.obs.PoolFreeKiB[PK("n3", model.DefaultStoragePool)] = 100 },
			func(s *sim) { s.obs.PoolFreeKiB[PK("n3", model.DefaultStoragePool)] = sizeKiB },
			"pool DfltStorPool on n3 has 100 KiB free, needs 10485760 KiB"},
		{"target pool free space unknown",
			func(s *sim) { delete(s.obs.PoolFreeKiB, PK("n3", model.DefaultStoragePool)) },
			func(s *sim) { s.obs.PoolFreeKiB[PK("n3", model.DefaultStoragePool)] = sizeKiB },
			"free space of pool DfltStorPool on n3 is unknown"},
		{"peer disconnected",
			func(s *sim) {
				o := s.obs.Replicas[RK(rd, "n3")]
				o.Connected = []string{"n1"}
				s.obs.Replicas[RK(rd, "n3")] = o
			},
			func(s *sim) { s.connectAll(rd) },
			"n3 is not connected to peer n2"},
		{"peer Outdated",
			func(s *sim) { s.setDisk(rd, "n2", DiskOutdated) },
			func(s *sim) { s.setDisk(rd, "n2", DiskUpToDate) },
			"peer n2 is Outdated, not UpToDate"},
		{"peer not reported",
			func(s *sim) { delete(s.obs.Replicas, RK(rd, "n1")) },
			func(s *sim) { s.obs.Replicas[RK(rd, "n1")] = Replica{Disk: DiskUpToDate}; s.connectAll(rd) },
			"peer n1 is DUnknown, not UpToDate"},
		{"group pool missing on target",
			func(s *sim) {
				s.apply(&state.ModifyResourceGroup{Name: "pve", SelectFilter: &model.SelectFilter{PlaceCount: 2, StoragePool: "fast"}})
			},
			func(s *sim) {
				s.apply(&state.ModifyResourceGroup{Name: "pve", SelectFilter: &model.SelectFilter{PlaceCount: 2}})
			},
			"n3 has no pool fast"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newSim(t, 3, 2)
			s.addVM(rd, "100", "n1", "n2")
			s.migrate(rd, "100", "n3")
			want(t, s.step(), StartTimer)
			s.now = s.now.Add(DefaultDelay)
			tc.breakIt(s)
			ds := s.step()
			want(t, ds, Skip)
			if ds[0].Reason != tc.reason {
				t.Fatalf("reason %q, want %q", ds[0].Reason, tc.reason)
			}
			if got := s.relocation(rd); got.Message != tc.reason || got.State != model.RelocPending {
				t.Fatalf("relocation %+v", got)
			}
			want(t, s.step()) // recorded once, not every tick
			s.now = s.now.Add(time.Minute)
			want(t, s.step())
			tc.fix(s)
			want(t, s.step(), MakeDiskful)
		})
	}
}

// The policy: auto-diskful resolved through the inheritance, pvehci's
// default when unset, and the per-VM off switch.
func TestPolicy(t *testing.T) {
	const rd = "vm-100-disk-1"
	tests := []struct {
		name string
		prop state.Target
		key  string
		val  string
		lim  Limits
		due  time.Duration // 0: no timer
	}{
		{name: "unset: pvehci default", due: DefaultDelay},
		{name: "unset, default off", lim: Limits{DefaultDelay: -1}},
		{name: "unset, own default", lim: Limits{DefaultDelay: time.Hour}, due: time.Hour},
		{name: "controller", prop: state.Target{Kind: model.ObjController}, key: model.KeyAutoDiskful, val: "60", due: time.Hour},
		{name: "resource group", prop: state.Target{Kind: model.ObjResourceGroup, ResourceGroup: "pve"}, key: model.KeyAutoDiskful, val: "5", due: 5 * time.Minute},
		{name: "resource definition", prop: state.Target{Kind: model.ObjResourceDefinition, ResourceDefinition: rd}, key: model.KeyAutoDiskful, val: "10", due: 10 * time.Minute},
		{name: "node", prop: state.Target{Kind: model.ObjNode, Node: "n3"}, key: model.KeyAutoDiskful, val: "2", due: 2 * time.Minute},
		{name: "zero is off", prop: state.Target{Kind: model.ObjResourceGroup, ResourceGroup: "pve"}, key: model.KeyAutoDiskful, val: "0"},
		{name: "per-VM off", prop: state.Target{Kind: model.ObjResourceDefinition, ResourceDefinition: rd}, key: KeyAutoRelocate, val: "false"},
		{name: "per-VM on", prop: state.Target{Kind: model.ObjResourceDefinition, ResourceDefinition: rd}, key: KeyAutoRelocate, val: "true", due: DefaultDelay},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newSim(t, 3, 2)
			s.lim = tc.lim
			s.addVM(rd, "100", "n1", "n2")
			if tc.key != "" {
				s.apply(&state.SetProps{Target: tc.prop, Change: model.PropsChange{Set: model.Props{tc.key: tc.val}}})
			}
			s.migrate(rd, "100", "n3")
			ds := s.step()
			if tc.due == 0 {
				want(t, ds)
				s.now = s.now.Add(24 * time.Hour)
				want(t, s.step())
				return
			}
			want(t, ds, StartTimer)
			if !ds[0].DueAt.Equal(s.now.Add(tc.due)) {
				t.Fatalf("due %s, want %s", ds[0].DueAt, s.now.Add(tc.due))
			}
		})
	}
}

// Turning the policy off or changing the delay while the timer runs
// cancels or re-times it (LINSTOR: a property change only moves the
// timeout, research linstor-server.md §5).
func TestPolicyChangeWhilePending(t *testing.T) {
	const rd = "vm-100-disk-1"
	s := newSim(t, 3, 2)
	s.addVM(rd, "100", "n1", "n2")
	s.migrate(rd, "100", "n3")
	arrived := s.now
	want(t, s.step(), StartTimer)
	s.now = s.now.Add(time.Minute)
	rdProps := state.Target{Kind: model.ObjResourceDefinition, ResourceDefinition: rd}
	s.apply(&state.SetProps{Target: rdProps, Change: model.PropsChange{Set: model.Props{model.KeyAutoDiskful: "5"}}})
	ds := s.step()
	want(t, ds, StartTimer)
	if !ds[0].DueAt.Equal(arrived.Add(5 * time.Minute)) {
		t.Fatalf("re-timed to %s, want 5 min after arrival", ds[0].DueAt)
	}
	want(t, s.step())
	s.apply(&state.SetProps{Target: rdProps, Change: model.PropsChange{Set: model.Props{KeyAutoRelocate: "off"}}})
	ds = s.step()
	want(t, ds, CancelTimer)
	if !strings.Contains(ds[0].Reason, KeyAutoRelocate) {
		t.Fatalf("reason %q", ds[0].Reason)
	}
	s.now = s.now.Add(time.Hour)
	want(t, s.step())
}

// The per-node limit counts relocations whose target or source a node is.
func TestNodeLimit(t *testing.T) {
	s := newSim(t, 4, 2)
	s.lim = Limits{PerNode: 1, PerCluster: 10}
	s.addVM("vm-101-disk-1", "101", "n1", "n2")
	s.addVM("vm-102-disk-1", "102", "n1", "n2")
	s.migrate("vm-101-disk-1", "101", "n3")
	s.migrate("vm-102-disk-1", "102", "n4")
	want(t, s.step(), StartTimer, StartTimer)
	s.now = s.now.Add(DefaultDelay)
	ds := s.step()
	want(t, ds, MakeDiskful, Skip)
	if ds[1].Reason != "waiting: 1 relocation(s) running on n1, node limit 1" {
		t.Fatalf("reason %q", ds[1].Reason)
	}
}

// Replicas the user made are only removed when allow-cleanup says so;
// with it false the relocation ends with the surplus kept.
func TestAllowCleanupFalseKeepsUserReplicas(t *testing.T) {
	const rd = "vm-100-disk-1"
	s := newSim(t, 3, 2)
	s.apply(&state.SetProps{Target: state.Target{Kind: model.ObjController},
		Change: model.PropsChange{Set: model.Props{model.KeyAutoDiskfulAllowCleanup: "False"}}})
	s.addVM(rd, "100", "n1", "n2")
	s.migrate(rd, "100", "n3")
	want(t, s.step(), StartTimer)
	s.now = s.now.Add(DefaultDelay)
	want(t, s.step(), MakeDiskful)
	s.setDisk(rd, "n3", DiskUpToDate)
	ds := s.step()
	want(t, ds, Done)
	if !strings.Contains(ds[0].Reason, "surplus kept") {
		t.Fatalf("reason %q", ds[0].Reason)
	}
	if got := s.diskful(rd); len(got) != 3 {
		t.Fatalf("diskful on %v, want 3", got)
	}
	want(t, s.step())
}

// Decide does not change the state and gives the same answer twice.
func TestDecidePure(t *testing.T) {
	s := newSim(t, 3, 2)
	s.addVM("vm-100-disk-1", "100", "n1", "n2")
	s.migrate("vm-100-disk-1", "100", "n3")
	before, _ := s.st.Snapshot()
	a, b := s.decide(), s.decide()
	after, _ := s.st.Snapshot()
	if string(before) != string(after) {
		t.Fatal("Decide changed the state")
	}
	if describe(a) != describe(b) || len(a) != 1 {
		t.Fatalf("decisions differ or missing:\n%s---\n%s", describe(a), describe(b))
	}
}

// A definition without Aux/pm/vmid is handled from its DRBD roles alone:
// the timer starts when the leader first sees the diskless Primary and is
// not re-timed on later calls.
func TestWithoutVMID(t *testing.T) {
	const rd = "data-1"
	s := newSim(t, 3, 2)
	s.apply(&state.CreateResourceDefinition{Name: rd, ResourceGroup: "pve", DrbdSecret: testSecret,
		VolumeDefinitions: []state.NewVolumeDefinition{{SizeKiB: sizeKiB}}})
	for _, n := range []string{"n1", "n2"} {
		s.apply(&state.CreateResource{ResourceDefinition: rd, Node: n, Kind: state.Diskful})
		s.obs.Replicas[RK(rd, n)] = Replica{Disk: DiskUpToDate}
	}
	s.apply(&state.CreateResource{ResourceDefinition: rd, Node: "n3", Kind: state.Diskless})
	s.obs.Replicas[RK(rd, "n3")] = Replica{Disk: DiskDiskless, Primary: true}
	s.connectAll(rd)
	ds := s.step()
	want(t, ds, StartTimer)
	if !ds[0].DueAt.Equal(s.now.Add(DefaultDelay)) {
		t.Fatalf("due %s", ds[0].DueAt)
	}
	for range 5 {
		s.now = s.now.Add(time.Minute)
		want(t, s.step())
	}
	s.setPrimary(rd, "n1", true) // a second Primary: a live migration
	want(t, s.step(), CancelTimer)
}
