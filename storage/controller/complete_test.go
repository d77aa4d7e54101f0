package controller

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/pvehci/pvehci/ha/state"
	"github.com/pvehci/pvehci/storage/drbd"
	"github.com/pvehci/pvehci/storage/lvm"
	"github.com/pvehci/pvehci/storage/model"
	"github.com/pvehci/pvehci/storage/satellite"
)

const (
	testRD     = "vm-100-disk-1"
	testSecret = "Zm9vYmFyYmF6cXV4MTIzNDU2"
)

// testCluster is pve1 and pve2 with LVM-thin pools on VG pve and the
// resource definition testRD with one 1 GiB volume, diskful on both.
func testCluster(t *testing.T) *state.State {
	t.Helper()
	s := state.New()
	for i, n := range []string{"pve1", "pve2"} {
		mustApply(t, s, &state.CreateNode{Name: n, NodeType: model.NodeTypeSatellite,
			NetInterfaces: []model.NetInterface{{Name: "default", Address: fmt.Sprintf("10.99.0.%d", i+1)}}})
		mustApply(t, s, &state.CreateStoragePool{Node: n, Name: model.DefaultStoragePool, ProviderKind: model.ProviderLVMThin,
			Props: model.Props{model.KeyStorDriverLvmVg: "pve", model.KeyStorDriverThinPool: "data"}})
	}
	mustApply(t, s, &state.CreateResourceDefinition{Name: testRD, DrbdSecret: testSecret,
		VolumeDefinitions: []state.NewVolumeDefinition{{SizeKiB: 1 << 20}}})
	for _, n := range []string{"pve1", "pve2"} {
		mustApply(t, s, &state.CreateResource{ResourceDefinition: testRD, Node: n, Kind: state.Diskful})
	}
	return s
}

func mustApply(t *testing.T, s *state.State, cmd state.Command) {
	t.Helper()
	if res := s.Apply(cmd); res.Err != nil {
		t.Fatalf("%s: %v", cmd.Type(), res.Err)
	}
}

func flagResource(t *testing.T, s *state.State, node string) {
	t.Helper()
	mustApply(t, s, &state.SetFlags{Target: state.Target{Kind: model.ObjResource, ResourceDefinition: testRD, Node: node},
		Set: []string{model.RscFlagDelete}})
}

func flagDefinition(t *testing.T, s *state.State) {
	t.Helper()
	mustApply(t, s, &state.SetFlags{Target: state.Target{Kind: model.ObjResourceDefinition, ResourceDefinition: testRD},
		Set: []string{model.RdFlagDelete}})
}

func newCompleter(s *state.State, store *Store, clk *fakeClock) *Completer {
	c, _ := recordingCompleter(s, store, clk)
	return c
}

// recordingCompleter also returns the commands the completer applies.
func recordingCompleter(s *state.State, store *Store, clk *fakeClock) (*Completer, *[]state.Command) {
	var applied []state.Command
	return &Completer{
		Store:   store,
		State:   func() *state.State { return s },
		Changed: func() <-chan struct{} { return make(chan struct{}) },
		Apply: func(_ context.Context, cmd state.Command) (state.Result, error) {
			applied = append(applied, cmd)
			return s.Apply(cmd), nil
		},
	}, &applied
}

func hasResource(s *state.State, node string) bool {
	_, ok := s.Resource(testRD, node)
	return ok
}

// Reports a node's satellite may send about testRD.
var (
	drbdUp = func(node string, disk drbd.DiskState) satellite.NodeReport {
		return satellite.NodeReport{Node: node, Boot: "a", Resources: []drbd.ObservedResource{{
			Name: testRD, Role: drbd.RoleSecondary,
			Devices: []drbd.ObservedDevice{{Volume: 0, Minor: 1000, Disk: disk}},
		}}}
	}
	lvLeft = func(node string) satellite.NodeReport {
		return satellite.NodeReport{Node: node, Boot: "a", Volumes: []string{"pve/vm-200-disk-1_00000", "pve/" + lvm.VolumeLVName(testRD, 0)}}
	}
	clean = func(node string) satellite.NodeReport {
		// Other resources' LVs and DRBD resources do not count, nor an
		// LV whose name merely ends like testRD's.
		return satellite.NodeReport{Node: node, Boot: "a",
			Volumes: []string{"pve/vm-200-disk-1_00000", "pve/x" + lvm.VolumeLVName(testRD, 0)},
			Resources: []drbd.ObservedResource{{Name: "vm-200-disk-1", Role: drbd.RoleSecondary,
				Devices: []drbd.ObservedDevice{{Volume: 0, Minor: 1001, Disk: drbd.DiskUpToDate}}}}}
	}
	// gone is clean from a pass that saw testRD's DELETE flag: the proof.
	gone   = func(node string) satellite.NodeReport { return seeing(clean(node)) }
	broken = func(node string) satellite.NodeReport {
		return satellite.NodeReport{Node: node, Boot: "a", ObserveError: "observe logical volumes: lvs failed"}
	}
)

// seeing marks rep as from a pass that saw testRD's DELETE flag.
func seeing(rep satellite.NodeReport) satellite.NodeReport {
	rep.Deleting = append(rep.Deleting, testRD)
	return rep
}

// put stores rep with a Seq above every earlier one of these tests.
func put(store *Store, rep satellite.NodeReport, seq *uint64) {
	*seq++
	rep.Seq = *seq
	store.Put(rep)
}

func TestCompleterDeleteResource(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// early is stored before the first pass sees the flag (nil:
		// none); late after it (nil: none).
		early, late func(node string) satellite.NodeReport
	}{
		{name: "no report"},
		{name: "DRBD resource still up", late: func(n string) satellite.NodeReport { return seeing(drbdUp(n, drbd.DiskUpToDate)) }},
		{name: "DRBD resource up, disk detached", late: func(n string) satellite.NodeReport { return seeing(drbdUp(n, drbd.DiskDiskless)) }},
		{name: "LV still there", late: func(n string) satellite.NodeReport { return seeing(lvLeft(n)) }},
		{name: "node cannot be observed", late: func(n string) satellite.NodeReport { return seeing(broken(n)) }},
		{name: "clean report from a pass that did not see the flag", early: clean},
		{name: "clean report arriving late from a pass that did not see the flag", late: clean},
		{name: "clean report from before, then LV still there", early: clean, late: func(n string) satellite.NodeReport { return seeing(lvLeft(n)) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := testCluster(t)
			clk := newClock()
			store := &Store{Now: clk.Now}
			c := newCompleter(s, store, clk)
			var seq uint64
			ctx := context.Background()

			flagResource(t, s, "pve2")
			if tc.early != nil {
				put(store, tc.early("pve2"), &seq)
			}
			// pve1 reports cleanly all along: that is no proof for pve2.
			put(store, clean("pve1"), &seq)
			clk.Advance(time.Second)
			if err := c.Pass(ctx); err != nil {
				t.Fatalf("first pass: %v", err)
			}
			if !hasResource(s, "pve2") {
				t.Fatal("removed at the first pass, with no report after the flag")
			}
			clk.Advance(time.Second)
			if tc.late != nil {
				put(store, tc.late("pve2"), &seq)
			}
			put(store, clean("pve1"), &seq)
			clk.Advance(time.Second)
			if err := c.Pass(ctx); err != nil {
				t.Fatalf("second pass: %v", err)
			}
			if !hasResource(s, "pve2") {
				t.Fatal("removed on a report that does not show it gone")
			}
			if r, _ := s.Resource(testRD, "pve2"); !r.Flags.Has(model.RscFlagDelete) {
				t.Errorf("pve2's resource lost its DELETE flag: %v", r.Flags)
			}

			// The node reports it gone: now it goes.
			clk.Advance(time.Second)
			put(store, gone("pve2"), &seq)
			clk.Advance(time.Second)
			if err := c.Pass(ctx); err != nil {
				t.Fatalf("last pass: %v", err)
			}
			if hasResource(s, "pve2") {
				t.Error("not removed after a later report without its DRBD resource and LV")
			}
			if !hasResource(s, "pve1") {
				t.Error("pve1's resource, not flagged, was removed")
			}
			if _, ok := s.ResourceDefinition(testRD); !ok {
				t.Error("the definition, not flagged, was removed")
			}
		})
	}
}

// TestCompleterCountsEveryVolumeNumber checks the LVs of a definition
// whose only volume is number 1: its LV rd_00001 left on the node keeps the
// resource.
func TestCompleterCountsEveryVolumeNumber(t *testing.T) {
	t.Parallel()
	s := testCluster(t)
	const rd = "vm-400-disk-1"
	one := 1
	mustApply(t, s, &state.CreateResourceDefinition{Name: rd, DrbdSecret: testSecret,
		VolumeDefinitions: []state.NewVolumeDefinition{{VolumeNumber: &one, SizeKiB: 1 << 20}}})
	mustApply(t, s, &state.CreateResource{ResourceDefinition: rd, Node: "pve1", Kind: state.Diskful})
	mustApply(t, s, &state.CreateResource{ResourceDefinition: rd, Node: "pve2", Kind: state.Diskful})
	mustApply(t, s, &state.SetFlags{Target: state.Target{Kind: model.ObjResource, ResourceDefinition: rd, Node: "pve2"}, Set: []string{model.RscFlagDelete}})
	clk := newClock()
	store := &Store{Now: clk.Now}
	c := newCompleter(s, store, clk)
	var seq uint64
	put(store, satellite.NodeReport{Node: "pve2", Boot: "a", Deleting: []string{rd}, Volumes: []string{"pve/" + lvm.VolumeLVName(rd, 1)}}, &seq)
	if err := c.Pass(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Resource(rd, "pve2"); !ok {
		t.Fatal("removed while its volume 1 LV is still on the node")
	}
	put(store, satellite.NodeReport{Node: "pve2", Boot: "a", Deleting: []string{rd}}, &seq)
	if err := c.Pass(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Resource(rd, "pve2"); ok {
		t.Error("not removed once its LV is gone")
	}
}

func TestCompleterDeleteDefinition(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// flagged are the nodes whose resources are flagged DELETE.
		flagged []string
		want    bool // the definition is gone at the end
	}{
		{name: "every resource flagged", flagged: []string{"pve1", "pve2"}, want: true},
		{name: "one resource kept", flagged: []string{"pve2"}, want: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := testCluster(t)
			clk := newClock()
			store := &Store{Now: clk.Now}
			c := newCompleter(s, store, clk)
			var seq uint64
			ctx := context.Background()
			for _, n := range tc.flagged {
				flagResource(t, s, n)
			}
			flagDefinition(t, s)
			clk.Advance(time.Second)
			if err := c.Pass(ctx); err != nil {
				t.Fatal(err)
			}
			// The replicas are still up.
			clk.Advance(time.Second)
			for _, n := range []string{"pve1", "pve2"} {
				put(store, drbdUp(n, drbd.DiskUpToDate), &seq)
			}
			clk.Advance(time.Second)
			if err := c.Pass(ctx); err != nil {
				t.Fatal(err)
			}
			if _, ok := s.ResourceDefinition(testRD); !ok {
				t.Fatal("the definition was removed while it had resources")
			}
			// Gone from every node.
			clk.Advance(time.Second)
			for _, n := range []string{"pve1", "pve2"} {
				put(store, gone(n), &seq)
			}
			clk.Advance(time.Second)
			for range 2 { // one pass may finish the resources and the next the definition
				if err := c.Pass(ctx); err != nil {
					t.Fatal(err)
				}
			}
			for _, n := range tc.flagged {
				if hasResource(s, n) {
					t.Errorf("%s's flagged resource was not removed", n)
				}
			}
			_, ok := s.ResourceDefinition(testRD)
			if gone := !ok; gone != tc.want {
				t.Errorf("definition gone = %t, want %t (resources left: %d)", gone, tc.want, len(s.Resources(testRD)))
			}
		})
	}
}

// TestCompleterDeleteDefinitionWithoutResources removes a flagged
// definition that never had resources, without any report.
func TestCompleterDeleteDefinitionWithoutResources(t *testing.T) {
	t.Parallel()
	s := testCluster(t)
	mustApply(t, s, &state.CreateResourceDefinition{Name: "vm-300-disk-1", DrbdSecret: testSecret,
		VolumeDefinitions: []state.NewVolumeDefinition{{SizeKiB: 1 << 10}}})
	mustApply(t, s, &state.SetFlags{Target: state.Target{Kind: model.ObjResourceDefinition, ResourceDefinition: "vm-300-disk-1"},
		Set: []string{model.RdFlagDelete}})
	clk := newClock()
	c := newCompleter(s, &Store{Now: clk.Now}, clk)
	if err := c.Pass(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.ResourceDefinition("vm-300-disk-1"); ok {
		t.Error("a flagged definition without resources was not removed")
	}
	if _, ok := s.ResourceDefinition(testRD); !ok {
		t.Error("an unflagged definition was removed")
	}
}

func TestCompleterDrbdInitialized(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		reports []satellite.NodeReport
		want    bool
	}{
		{name: "no report"},
		{name: "Inconsistent everywhere", reports: []satellite.NodeReport{drbdUp("pve1", drbd.DiskInconsistent), drbdUp("pve2", drbd.DiskInconsistent)}},
		{name: "Outdated and Diskless", reports: []satellite.NodeReport{drbdUp("pve1", drbd.DiskOutdated), drbdUp("pve2", drbd.DiskDiskless)}},
		{name: "only another resource UpToDate", reports: []satellite.NodeReport{clean("pve1")}},
		{name: "UpToDate on a node without a replica", reports: []satellite.NodeReport{drbdUp("pve3", drbd.DiskUpToDate)}},
		{name: "UpToDate on pve2", reports: []satellite.NodeReport{drbdUp("pve1", drbd.DiskInconsistent), drbdUp("pve2", drbd.DiskUpToDate)}, want: true},
		{name: "UpToDate on pve1 only", reports: []satellite.NodeReport{drbdUp("pve1", drbd.DiskUpToDate)}, want: true},
	}
	initialized := func(s *state.State) bool {
		rd, ok := s.ResourceDefinition(testRD)
		if !ok || len(rd.VolumeDefinitions) != 1 {
			return false
		}
		return rd.VolumeDefinitions[0].Flags.Has(model.VdFlagDrbdInitialized)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := testCluster(t)
			clk := newClock()
			store := &Store{Now: clk.Now}
			c, applied := recordingCompleter(s, store, clk)
			var seq uint64
			ctx := context.Background()
			if err := c.Pass(ctx); err != nil {
				t.Fatal(err)
			}
			if initialized(s) {
				t.Fatal("DRBD_INITIALIZED set without any report")
			}
			for _, rep := range tc.reports {
				put(store, rep, &seq)
			}
			if err := c.Pass(ctx); err != nil {
				t.Fatal(err)
			}
			if got := initialized(s); got != tc.want {
				t.Errorf("DRBD_INITIALIZED = %t, want %t", got, tc.want)
			}
			// Once set, it stays set and a pass has nothing to do.
			before := len(*applied)
			if err := c.Pass(ctx); err != nil {
				t.Fatal(err)
			}
			if got := initialized(s); got != tc.want {
				t.Errorf("after another pass DRBD_INITIALIZED = %t, want %t", got, tc.want)
			}
			for _, cmd := range (*applied)[before:] {
				t.Errorf("a pass with nothing to complete applied %s %s", cmd.Type(), describe(cmd))
			}
		})
	}
}

// TestCompleterDrbdInitializedPerVolume flags only the volume that a
// report shows UpToDate.
func TestCompleterDrbdInitializedPerVolume(t *testing.T) {
	t.Parallel()
	const rd = "vm-400-disk-1"
	s := testCluster(t)
	mustApply(t, s, &state.CreateResourceDefinition{Name: rd, DrbdSecret: testSecret,
		VolumeDefinitions: []state.NewVolumeDefinition{{SizeKiB: 1 << 10}, {SizeKiB: 1 << 10}}})
	mustApply(t, s, &state.CreateResource{ResourceDefinition: rd, Node: "pve1", Kind: state.Diskful})
	clk := newClock()
	store := &Store{Now: clk.Now}
	c := newCompleter(s, store, clk)
	store.Put(satellite.NodeReport{Node: "pve1", Boot: "a", Seq: 1, Resources: []drbd.ObservedResource{{
		Name: rd, Role: drbd.RoleSecondary,
		Devices: []drbd.ObservedDevice{{Volume: 0, Minor: 1001, Disk: drbd.DiskInconsistent}, {Volume: 1, Minor: 1002, Disk: drbd.DiskUpToDate}},
	}}})
	if err := c.Pass(context.Background()); err != nil {
		t.Fatal(err)
	}
	def, ok := s.ResourceDefinition(rd)
	if !ok || len(def.VolumeDefinitions) != 2 {
		t.Fatalf("definition %+v", def)
	}
	for i, want := range []bool{false, true} {
		vd := def.VolumeDefinitions[i]
		if got := vd.Flags.Has(model.VdFlagDrbdInitialized); got != want {
			t.Errorf("volume %d: DRBD_INITIALIZED = %t, want %t", vd.VolumeNumber, got, want)
		}
	}
	if d, _ := s.ResourceDefinition(testRD); d.VolumeDefinitions[0].Flags.Has(model.VdFlagDrbdInitialized) {
		t.Error("another definition's volume was flagged")
	}
}
