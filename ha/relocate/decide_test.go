package relocate

import (
	"strings"
	"testing"
	"time"

	"github.com/pvehci/pvehci/ha/state"
	"github.com/pvehci/pvehci/storage/model"
)

// A VM migrated to a node without a replica gets a local replica after the
// delay; once it is UpToDate the replica on the node it left goes (kept as
// a tie-breaker: two diskful replicas need a third vote) and the diskful
// count is the place count again.
func TestMigrateToDisklessNode(t *testing.T) {
	s := newSim(t, 3, 2)
	s.addVM("vm-100-disk-1", "100", "n1", "n2")
	want(t, s.step())

	s.startMigration("vm-100-disk-1", "100", "n3")
	want(t, s.step()) // both Primary, migration task running
	s.finishMigration("vm-100-disk-1", "100", "n3")
	ds := s.step()
	want(t, ds, StartTimer)
	if d := ds[0]; d.Node != "n3" || d.Source != "n1" || !d.DueAt.Equal(s.now.Add(DefaultDelay)) {
		t.Fatalf("timer %+v, want n3 from n1 due in %s", d, DefaultDelay)
	}

	s.now = s.now.Add(DefaultDelay - time.Second)
	want(t, s.step())
	s.now = s.now.Add(time.Second)
	ds = s.step()
	want(t, ds, MakeDiskful)
	if ds[0].Pool != model.DefaultStoragePool || ds[0].Node != "n3" {
		t.Fatalf("make diskful %+v", ds[0])
	}
	if r, _ := s.st.Resource("vm-100-disk-1", "n3"); r.Diskless() || r.Props[model.KeyDiskfulBy] != model.DiskfulByAutoDiskful {
		t.Fatalf("n3 after make diskful: %+v", r)
	}
	want(t, s.step(), Progress) // syncing
	want(t, s.step())           // still syncing: nothing new
	if got := s.relocation("vm-100-disk-1").State; got != model.RelocSyncing {
		t.Fatalf("state %s, want syncing", got)
	}

	s.setDisk("vm-100-disk-1", "n3", DiskUpToDate)
	ds = s.step()
	want(t, ds, RemoveSurplus)
	if ds[0].Node != "n1" || !ds[0].KeepTieBreaker {
		t.Fatalf("remove %+v, want n1 kept as tie-breaker", ds[0])
	}
	want(t, s.step(), Done)
	want(t, s.step())
	s.now = s.now.Add(24 * time.Hour)
	want(t, s.step())

	if got := s.diskful("vm-100-disk-1"); len(got) != 2 || got[0] != "n2" || got[1] != "n3" {
		t.Fatalf("diskful on %v, want n2 n3", got)
	}
	if r, _ := s.st.Resource("vm-100-disk-1", "n1"); !r.TieBreaker() {
		t.Fatalf("n1 is not a tie-breaker: %+v", r)
	}
	if got := s.relocation("vm-100-disk-1").State; got != model.RelocDone {
		t.Fatalf("relocation %s, want done", got)
	}
}

// With a diskless resource left elsewhere (it gives quorum its third
// vote), the surplus replica is deleted rather than kept as tie-breaker.
func TestRemoveSurplusDeletesWhenQuorumHasAVote(t *testing.T) {
	s := newSim(t, 4, 2)
	s.addVM("vm-100-disk-1", "100", "n1", "n2")
	s.apply(&state.CreateResource{ResourceDefinition: "vm-100-disk-1", Node: "n4", Kind: state.TieBreaker})
	s.obs.Replicas[RK("vm-100-disk-1", "n4")] = Replica{Disk: DiskDiskless}
	s.connectAll("vm-100-disk-1")
	s.migrate("vm-100-disk-1", "100", "n3")
	want(t, s.step(), StartTimer)
	s.now = s.now.Add(DefaultDelay)
	want(t, s.step(), MakeDiskful)
	s.setDisk("vm-100-disk-1", "n3", DiskUpToDate)
	ds := s.step()
	want(t, ds, RemoveSurplus)
	if ds[0].Node != "n1" || ds[0].KeepTieBreaker {
		t.Fatalf("remove %+v, want n1 deleted", ds[0])
	}
	if _, ok := s.st.Resource("vm-100-disk-1", "n1"); ok {
		t.Fatal("n1 still exists")
	}
	want(t, s.step(), Done)
}

// Migrating away and back before the timer is due copies nothing, however
// often it happens.
func TestBackAndForthNoFlapping(t *testing.T) {
	s := newSim(t, 3, 2)
	s.addVM("vm-100-disk-1", "100", "n1", "n2")
	for range 3 {
		s.migrate("vm-100-disk-1", "100", "n3")
		want(t, s.step(), StartTimer)
		s.now = s.now.Add(5 * time.Minute)
		want(t, s.step())
		s.startMigration("vm-100-disk-1", "100", "n1")
		ds := s.step()
		want(t, ds, CancelTimer)
		if !strings.Contains(ds[0].Reason, "migration") {
			t.Fatalf("cancel reason %q", ds[0].Reason)
		}
		s.finishMigration("vm-100-disk-1", "100", "n1")
		want(t, s.step())
		s.now = s.now.Add(5 * time.Minute)
	}
	s.now = s.now.Add(2 * DefaultDelay)
	want(t, s.step())
	if got := s.diskful("vm-100-disk-1"); len(got) != 2 || got[0] != "n1" || got[1] != "n2" {
		t.Fatalf("diskful on %v, want n1 n2", got)
	}
	if _, ok := s.st.Resource("vm-100-disk-1", "n3"); ok {
		t.Fatal("n3 still has a resource")
	}
	if got := s.relocation("vm-100-disk-1").State; got != model.RelocCancelled {
		t.Fatalf("relocation %s, want cancelled", got)
	}
}

// A VM that moves on to another diskless node before the timer is due
// restarts the timer for the new node.
func TestMoveOnRestartsTimer(t *testing.T) {
	s := newSim(t, 4, 2)
	s.addVM("vm-100-disk-1", "100", "n1", "n2")
	s.migrate("vm-100-disk-1", "100", "n3")
	want(t, s.step(), StartTimer)
	s.now = s.now.Add(10 * time.Minute)
	s.migrate("vm-100-disk-1", "100", "n4")
	ds := s.step()
	want(t, ds, StartTimer)
	if ds[0].Node != "n4" || !ds[0].DueAt.Equal(s.now.Add(DefaultDelay)) {
		t.Fatalf("timer %+v", ds[0])
	}
}

// A controller failover at any point of a relocation: the new leader, with
// only the replicated state and fresh observations, continues, and no step
// is done twice.
func TestFailoverMidRelocation(t *testing.T) {
	s := newSim(t, 3, 2)
	// blind is the new leader before any satellite has reported: it may
	// wait or record progress, never cancel, copy or remove.
	blind := func() {
		t.Helper()
		for _, d := range Decide(s.st, Observed{}, VMLocations{}, s.now, s.lim) {
			if d.Kind != Skip && d.Kind != Progress {
				t.Fatalf("with nothing observed: %s %s: %s", d.Kind, d.Node, d.Reason)
			}
		}
	}
	s.addVM("vm-100-disk-1", "100", "n1", "n2")
	s.migrate("vm-100-disk-1", "100", "n3")
	want(t, s.step(), StartTimer)
	s.failover()
	blind()
	want(t, s.decide()) // the timer is not restarted
	s.now = s.now.Add(DefaultDelay)

	// Crash after the relocation was marked adding, before the disk was
	// requested: the new leader requests it.
	ds := s.decide()
	want(t, ds, MakeDiskful)
	s.applyDecision(ds[0], 1)
	s.failover()
	blind()
	ds = s.decide()
	want(t, ds, MakeDiskful)
	s.applyDecision(ds[0], -1)

	// Crash right after: the disk is there, it is not requested again.
	s.failover()
	want(t, s.step(), Progress)
	s.failover()
	want(t, s.step())

	// Crash after the relocation was marked removing, before the removal.
	s.setDisk("vm-100-disk-1", "n3", DiskUpToDate)
	ds = s.decide()
	want(t, ds, RemoveSurplus)
	s.applyDecision(ds[0], 1)
	s.failover()
	blind()
	ds = s.decide()
	want(t, ds, RemoveSurplus)
	if ds[0].Node != "n1" {
		t.Fatalf("resumed removal of %s, want n1", ds[0].Node)
	}
	s.applyDecision(ds[0], -1)

	// Crash after the removal: nothing is removed again.
	s.failover()
	want(t, s.step(), Done)
	s.failover()
	want(t, s.step())

	count := map[Kind]int{}
	for _, d := range s.log {
		count[d.Kind]++
	}
	if count[MakeDiskful] != 1 || count[RemoveSurplus] != 1 {
		t.Fatalf("applied %v, want one MakeDiskful and one RemoveSurplus", count)
	}
	if got := s.diskful("vm-100-disk-1"); len(got) != 2 {
		t.Fatalf("diskful on %v, want 2", got)
	}
}

// The only UpToDate replica is never removed, even from the node the VM
// left: a resumed removal whose new replica fell back to syncing waits,
// and with another replica Outdated the source stays.
func TestOnlyUpToDateReplicaKept(t *testing.T) {
	setup := func(t *testing.T) *sim {
		s := newSim(t, 3, 2)
		s.addVM("vm-100-disk-1", "100", "n1", "n2")
		s.migrate("vm-100-disk-1", "100", "n3")
		want(t, s.step(), StartTimer)
		s.now = s.now.Add(DefaultDelay)
		want(t, s.step(), MakeDiskful)
		return s
	}
	t.Run("target syncing", func(t *testing.T) {
		s := setup(t)
		s.setDisk("vm-100-disk-1", "n2", DiskOutdated)
		want(t, s.step(), Progress)
		for range 3 {
			for _, d := range s.step() {
				if d.Kind == RemoveSurplus {
					t.Fatalf("removed %s while n1 is the only UpToDate replica", d.Node)
				}
			}
		}
		if got := s.diskful("vm-100-disk-1"); len(got) != 3 {
			t.Fatalf("diskful on %v, want all three", got)
		}
	})
	t.Run("resumed removal, target fell back", func(t *testing.T) {
		s := setup(t)
		s.setDisk("vm-100-disk-1", "n3", DiskUpToDate)
		ds := s.decide()
		want(t, ds, RemoveSurplus)
		s.applyDecision(ds[0], 1) // marked removing, then the leader died
		s.failover()
		s.setDisk("vm-100-disk-1", "n3", DiskInconsistent)
		s.setDisk("vm-100-disk-1", "n2", DiskOutdated)
		ds = s.step()
		want(t, ds, Skip)
		if !strings.Contains(ds[0].Reason, "waiting for n3") {
			t.Fatalf("skip reason %q", ds[0].Reason)
		}
		if _, ok := s.st.Resource("vm-100-disk-1", "n1"); !ok {
			t.Fatal("n1 was removed")
		}
	})
	t.Run("source one of too few UpToDate", func(t *testing.T) {
		s := setup(t)
		s.setDisk("vm-100-disk-1", "n3", DiskUpToDate)
		s.setDisk("vm-100-disk-1", "n2", DiskOutdated)
		ds := s.decide()
		want(t, ds, RemoveSurplus)
		if ds[0].Node != "n2" {
			t.Fatalf("removing %s, want the Outdated n2, not n1 (one of only two UpToDate)", ds[0].Node)
		}
	})
	t.Run("every other replica in use", func(t *testing.T) {
		s := setup(t)
		s.setDisk("vm-100-disk-1", "n3", DiskUpToDate)
		s.setPrimary("vm-100-disk-1", "n1", true)
		s.setPrimary("vm-100-disk-1", "n2", true)
		s.setPrimary("vm-100-disk-1", "n3", false)
		ds := s.decide()
		want(t, ds, Skip)
		if !strings.Contains(ds[0].Reason, "in use") {
			t.Fatalf("skip reason %q", ds[0].Reason)
		}
	})
}

// Three VMs arrive on diskless nodes at once; with one relocation allowed
// in the cluster they are relocated one after another, oldest first.
func TestClusterLimitOneAfterAnother(t *testing.T) {
	s := newSim(t, 5, 2)
	s.lim = Limits{PerCluster: 1, PerNode: 5}
	vms := []struct{ rd, id, to string }{{"vm-101-disk-1", "101", "n3"}, {"vm-102-disk-1", "102", "n4"}, {"vm-103-disk-1", "103", "n5"}}
	for i, v := range vms {
		s.addVM(v.rd, v.id, "n1", "n2")
		s.now = s.now.Add(time.Duration(i) * time.Second)
		s.migrate(v.rd, v.id, v.to)
	}
	want(t, s.step(), StartTimer, StartTimer, StartTimer)
	s.now = s.now.Add(DefaultDelay)
	var order []string
	for range 30 {
		running := 0
		for _, rel := range s.st.Relocations() {
			if active(rel.State) {
				running++
			}
		}
		if running > 1 {
			t.Fatalf("%d relocations running at once", running)
		}
		for _, d := range s.step() {
			switch d.Kind {
			case MakeDiskful:
				order = append(order, d.Resource)
				s.setDisk(d.Resource, d.Node, DiskUpToDate) // synced by the next step
			case Skip:
				if !strings.Contains(d.Reason, "cluster limit 1") {
					t.Fatalf("skip reason %q", d.Reason)
				}
			}
		}
	}
	if want := []string{"vm-101-disk-1", "vm-102-disk-1", "vm-103-disk-1"}; strings.Join(order, " ") != strings.Join(want, " ") {
		t.Fatalf("relocated %v, want %v", order, want)
	}
	for _, v := range vms {
		if got := s.relocation(v.rd).State; got != model.RelocDone {
			t.Fatalf("%s: relocation %s, want done", v.rd, got)
		}
		if got := s.diskful(v.rd); len(got) != 2 || got[1] != v.to {
			t.Fatalf("%s: diskful on %v", v.rd, got)
		}
	}
}

// With an odd diskful count left, quorum needs no tie-breaker: the
// surplus replica is deleted.
func TestOddCountDeletes(t *testing.T) {
	s := newSim(t, 4, 3)
	s.addVM("vm-100-disk-1", "100", "n1", "n2", "n3")
	s.migrate("vm-100-disk-1", "100", "n4")
	want(t, s.step(), StartTimer)
	s.now = s.now.Add(DefaultDelay)
	want(t, s.step(), MakeDiskful)
	s.setDisk("vm-100-disk-1", "n4", DiskUpToDate)
	ds := s.step()
	want(t, ds, RemoveSurplus)
	if ds[0].Node != "n1" || ds[0].KeepTieBreaker {
		t.Fatalf("remove %+v, want n1 deleted", ds[0])
	}
	want(t, s.step(), Done)
	if got := s.diskful("vm-100-disk-1"); len(got) != 3 {
		t.Fatalf("diskful on %v, want 3", got)
	}
}

// TestResyncRateCap: with Limits.MaxRate the new disk's resource carries
// DRBD's c-max-rate (and pvehci's marker) from before the disk is added
// until it is UpToDate and the surplus goes; a c-max-rate the operator set
// on the target is left alone, before and after.
func TestResyncRateCap(t *testing.T) {
	for _, own := range []string{"", "500M"} {
		s := newSim(t, 3, 2)
		s.lim = Limits{PerCluster: 5, PerNode: 5, MaxRate: "100M"}
		s.addVM("vm-100-disk-1", "100", "n1", "n2")
		s.migrate("vm-100-disk-1", "100", "n3")
		if own != "" {
			s.apply(&state.SetProps{Target: state.Target{Kind: model.ObjResource, ResourceDefinition: "vm-100-disk-1", Node: "n3"},
				Change: model.PropsChange{Set: model.Props{KeyCMaxRate: own}}})
		}
		want(t, s.step(), StartTimer)
		s.now = s.now.Add(DefaultDelay)
		ds := s.step()
		want(t, ds, MakeDiskful)
		props := func() model.Props { r, _ := s.st.Resource("vm-100-disk-1", "n3"); return r.Props }
		wantRate, wantMark := "100M", "100M"
		if own != "" {
			wantRate, wantMark = own, ""
		}
		if p := props(); p[KeyCMaxRate] != wantRate || p[KeyRelocationRate] != wantMark {
			t.Fatalf("own %q: n3's props while syncing %v", own, p)
		}
		if own == "" && !strings.Contains(ds[0].Reason, "capped at 100M/s") {
			t.Errorf("reason %q does not say the cap", ds[0].Reason)
		}
		want(t, s.step(), Progress)
		s.setDisk("vm-100-disk-1", "n3", DiskUpToDate)
		want(t, s.step(), RemoveSurplus)
		want(t, s.step(), Done)
		if p := props(); p[KeyCMaxRate] != own || p[KeyRelocationRate] != "" {
			t.Fatalf("own %q: n3's props after the relocation %v", own, p)
		}
	}
}
