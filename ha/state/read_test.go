package state

import (
	"fmt"
	"sync"
	"testing"

	"github.com/pvehci/pvehci/storage/model"
)

func TestResourceScopeExplainsSettings(t *testing.T) {
	s := fixture(t)
	for _, c := range []Command{
		&SetProps{Target: Target{Kind: model.ObjController}, Change: model.PropsChange{Set: model.Props{model.KeyPrefNic: "default", model.KeyAutoDiskful: "60"}}},
		&SetProps{Target: Target{Kind: model.ObjNode, Node: "n1"}, Change: model.PropsChange{Set: model.Props{model.KeyPrefNic: "ib0", model.KeyAutoDiskful: "20"}}},
		&SetProps{Target: Target{Kind: model.ObjResourceGroup, ResourceGroup: "rg1"}, Change: model.PropsChange{Set: model.Props{model.KeyAutoDiskful: "5", model.KeyDrbdTransport: "rdma"}}},
		&SetProps{Target: Target{Kind: model.ObjStoragePool, Node: "n1", StoragePool: model.DefaultStoragePool}, Change: model.PropsChange{Set: model.Props{model.KeyPrefNic: "ib1"}}},
		&SetProps{Target: Target{Kind: model.ObjVolumeGroup, ResourceGroup: "rg1"}, Change: model.PropsChange{Set: model.Props{"DrbdOptions/Disk/c-max-rate": "1G"}}},
		&SetProps{Target: Target{Kind: model.ObjVolume, ResourceDefinition: "rd1", Node: "n1"}, Change: model.PropsChange{Set: model.Props{"DrbdOptions/Disk/c-max-rate": "2G"}}},
	} {
		apply(t, s, c)
	}
	sc, err := s.ResourceScope("rd1", "n1")
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{
		model.KeyPrefNic:       "ib1 from SP " + model.DefaultStoragePool + " on n1",
		model.KeyAutoDiskful:   "20 from N n1",
		model.KeyDrbdTransport: "rdma from RG rg1",
	} {
		r, ok := sc.Resolve(key)
		if got := fmt.Sprintf("%s from %s %s", r.Value, r.Level, r.Object); !ok || got != want {
			t.Errorf("%s: %s, want %s", key, got, want)
		}
	}
	// The diskless peer has no storage pool PrefNic: its node's wins.
	sc3, _ := s.ResourceScope("rd1", "n3")
	if r, _ := sc3.Resolve(model.KeyPrefNic); r.Value != "default" || r.Level != model.LevelController {
		t.Errorf("n3 PrefNic %+v", r)
	}
	vs, err := s.VolumeScope("rd1", "n1", 0)
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := vs.Resolve("DrbdOptions/Disk/c-max-rate"); r.Value != "2G" || len(r.Shadowed) != 1 || r.Shadowed[0].Level != model.LevelVolumeGroup {
		t.Errorf("c-max-rate %+v", r)
	}
	if _, err := s.VolumeScope("rd1", "n1", 5); err == nil {
		t.Error("scope of a missing volume")
	}
	if _, err := s.ResourceScope("nope", "n1"); err == nil {
		t.Error("scope of a missing definition")
	}
	// Scopes are copies.
	for _, l := range sc.Layers() {
		if l.Props != nil {
			l.Props["Aux/x"] = "y"
		}
	}
	if _, ok := s.ControllerProps()["Aux/x"]; ok {
		t.Error("scope shares props with the state")
	}
}

func TestReadsReturnCopies(t *testing.T) {
	s := fixture(t)
	before := snapshotOf(t, s)
	rd, _ := s.ResourceDefinition("rd1")
	rd.VolumeDefinitions[0].SizeKiB = 1
	rd.Props = model.Props{"x": "y"}
	r, _ := s.Resource("rd1", "n1")
	r.TCPPorts[0] = 1
	r.Volumes[0].StoragePool = "x"
	n, _ := s.Node("n1")
	n.NetInterfaces[0].Address = "1.1.1.1"
	for _, g := range s.ResourceGroups() {
		g.SelectFilter.PlaceCount = 9
	}
	s.ControllerProps()["x"] = "y"
	if !sameBytes(before, snapshotOf(t, s)) {
		t.Fatal("a reader changed the state")
	}
	if got := len(s.Resources("")); got != 3 {
		t.Fatalf("%d resources", got)
	}
	if got := len(s.ResourcesOnNode("N3")); got != 1 {
		t.Fatalf("%d resources on n3", got)
	}
	if got := len(s.StoragePools()); got != 9 {
		t.Fatalf("%d pools", got)
	}
	if got := len(s.Nodes()); got != 3 {
		t.Fatalf("%d nodes", got)
	}
	if got := len(s.JobSchedules()); got != 1 {
		t.Fatalf("%d schedules", got)
	}
	if got := len(s.Relocations()); got != 1 {
		t.Fatalf("%d relocations", got)
	}
}

func TestJobHistoryIsBounded(t *testing.T) {
	s := fixture(t)
	for i := range MaxRunsPerSchedule + 25 {
		// Start times out of ID order: trimming goes by start time.
		start := int64(1000 + (i*7919)%(MaxRunsPerSchedule+25))
		apply(t, s, &RecordJobRun{Run: testRun(fmt.Sprintf("run-%03d", i), "nightly", model.RunSucceeded, start, start+1)})
	}
	runs := s.JobRuns("nightly")
	if len(runs) != MaxRunsPerSchedule {
		t.Fatalf("%d runs kept", len(runs))
	}
	if runs[0].StartedAt != 1025 || runs[len(runs)-1].StartedAt != 1000+MaxRunsPerSchedule+24 {
		t.Fatalf("kept %d..%d, want the newest", runs[0].StartedAt, runs[len(runs)-1].StartedAt)
	}
	checkIndexes(t, s)
}

// Readers run concurrently with Apply; the race detector checks the locking.
func TestConcurrentReadsAndApply(t *testing.T) {
	s := cluster(t, 3)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
					_ = s.Resources("")
					_, _ = s.Snapshot()
					_, _ = s.ResourceScope("r1", "n1")
				}
			}
		}()
	}
	for i := range 200 {
		name := fmt.Sprintf("r%d", i%20)
		s.Apply(newRD(name, 1024))
		s.Apply(&CreateResource{ResourceDefinition: name, Node: "n1"})
		if i%3 == 0 {
			s.Apply(&DeleteResourceDefinition{Name: name})
		}
	}
	close(stop)
	wg.Wait()
	checkIndexes(t, s)
}

func TestNodeIDsExhaustAndFree(t *testing.T) {
	s := cluster(t, 33)
	apply(t, s, newRD("big", 1024))
	for i := 1; i <= 32; i++ {
		res := apply(t, s, &CreateResource{ResourceDefinition: "big", Node: fmt.Sprintf("n%d", i), Kind: Diskless})
		if res.Allocated[0].Number != i-1 {
			t.Fatalf("node id %d for the %dth resource", res.Allocated[0].Number, i)
		}
	}
	before := snapshotOf(t, s)
	wantKind(t, s.Apply(&CreateResource{ResourceDefinition: "big", Node: "n33", Kind: Diskless}), Exhausted)
	if !sameBytes(before, snapshotOf(t, s)) {
		t.Fatal("refused create changed the state")
	}
	apply(t, s, &DeleteResource{ResourceDefinition: "big", Node: "n17"})
	if res := apply(t, s, &CreateResource{ResourceDefinition: "big", Node: "n33", Kind: Diskless}); res.Allocated[0].Number != 16 {
		t.Fatalf("freed node id 16 not reused: %v", res.Allocated)
	}
}
