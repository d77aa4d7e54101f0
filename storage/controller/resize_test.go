package controller

import (
	"slices"
	"testing"
	"time"

	"github.com/pvehci/pvehci/ha/state"
	"github.com/pvehci/pvehci/storage/drbd"
	"github.com/pvehci/pvehci/storage/model"
	"github.com/pvehci/pvehci/storage/satellite"
)

// resizeReport is node's report on testRD (node ids: pve1 0, pve2 1):
// its LV, its device at devKiB, UpToDate, and the connection to the
// other node in state conn.
func resizeReport(node string, lvKiB, devKiB int64, conn drbd.ConnState) satellite.NodeReport {
	peer := 1
	if node == "pve2" {
		peer = 0
	}
	return satellite.NodeReport{Node: node, Boot: "a",
		Resources: []drbd.ObservedResource{{Name: testRD, Role: drbd.RoleSecondary,
			Devices: []drbd.ObservedDevice{{Volume: 0, Minor: 1000, Disk: drbd.DiskUpToDate, SizeKiB: uint64(devKiB)}},
			Connections: []drbd.ObservedConnection{{PeerNodeID: peer, Connection: conn,
				PeerDevices: []drbd.ObservedPeerDevice{{Volume: 0, Replication: drbd.ReplEstablished, PeerDisk: drbd.DiskUpToDate}}}}}},
		Sizes: []satellite.VolumeSize{{Resource: testRD, Volume: 0, LVKiB: lvKiB, DeviceKiB: devKiB}}}
}

func TestCompleterResize(t *testing.T) {
	t.Parallel()
	const oldKiB, newKiB = 1 << 20, 2 << 20
	oldLV := satellite.GrossKiB(oldKiB, model.DefaultPeerSlots)
	newLV := satellite.GrossKiB(newKiB, model.DefaultPeerSlots)
	s := testCluster(t)
	mustApply(t, s, &state.ModifyVolumeDefinition{ResourceDefinition: testRD, VolumeNumber: 0, SizeKiB: newKiB})
	store := &Store{}
	c, applied := recordingCompleter(s, store, nil)
	var seq uint64
	vd := func() model.VolumeDefinition {
		rd, _ := s.ResourceDefinition(testRD)
		v, _ := rd.VolumeDefinition(0)
		return v
	}
	step := func(name string, reps []satellite.NodeReport, wantReq string, wantFlag bool) {
		t.Helper()
		for _, r := range reps {
			put(store, r, &seq)
		}
		if err := c.Pass(t.Context()); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		v := vd()
		if got := v.Props[satellite.PropResizeRequest]; got != wantReq {
			t.Fatalf("%s: request %q, want %q (applied %v)", name, got, wantReq, *applied)
		}
		if v.Flags.Has(model.VdFlagResize) != wantFlag {
			t.Fatalf("%s: RESIZE flag %t, want %t", name, !wantFlag, wantFlag)
		}
	}
	step("no reports", nil, "", true)
	step("pve2's LV not grown yet", []satellite.NodeReport{
		resizeReport("pve1", newLV, oldKiB, drbd.ConnConnected), resizeReport("pve2", oldLV, oldKiB, drbd.ConnConnected)}, "", true)
	step("pve2 not connected", []satellite.NodeReport{
		resizeReport("pve1", newLV, oldKiB, "Connecting"), resizeReport("pve2", newLV, oldKiB, "Connecting")}, "", true)
	step("all grown and connected: the lowest node id resizes", []satellite.NodeReport{
		resizeReport("pve1", newLV, oldKiB, drbd.ConnConnected), resizeReport("pve2", newLV, oldKiB, drbd.ConnConnected)}, "pve1/2097152", true)
	n := len(*applied)
	step("request stays while it runs", nil, "pve1/2097152", true)
	if len(*applied) != n {
		t.Fatalf("a pass without news applied %v", (*applied)[n:])
	}
	step("one device grown", []satellite.NodeReport{resizeReport("pve1", newLV, newKiB, drbd.ConnConnected)}, "pve1/2097152", true)
	step("every device grown: completed", []satellite.NodeReport{resizeReport("pve2", newLV, newKiB+4, drbd.ConnConnected)}, "", false)
	if !slices.ContainsFunc(*applied, func(cmd state.Command) bool {
		f, ok := cmd.(*state.SetFlags)
		return ok && slices.Contains(f.Clear, model.VdFlagResize)
	}) {
		t.Fatalf("no flag clear among %v", *applied)
	}
}

// TestCompleterResizeDisklessClient: a diskless client online must report
// the new size before the grow completes; one whose node is offline takes
// the size from its peers when it connects and is not waited for. A
// diskful replica on an offline node holds up the request.
func TestCompleterResizeDisklessClient(t *testing.T) {
	t.Parallel()
	const oldKiB, newKiB = 1 << 20, 2 << 20
	newLV := satellite.GrossKiB(newKiB, model.DefaultPeerSlots)
	s := testCluster(t)
	mustApply(t, s, &state.CreateNode{Name: "pve3", NodeType: model.NodeTypeSatellite,
		NetInterfaces: []model.NetInterface{{Name: "default", Address: "10.99.0.3"}}})
	mustApply(t, s, &state.CreateResource{ResourceDefinition: testRD, Node: "pve3", Kind: state.Diskless})
	mustApply(t, s, &state.ModifyVolumeDefinition{ResourceDefinition: testRD, VolumeNumber: 0, SizeKiB: newKiB})
	clk := newClock()
	store := &Store{Now: clk.Now}
	c, _ := recordingCompleter(s, store, clk)
	var seq uint64
	flag := func() bool {
		rd, _ := s.ResourceDefinition(testRD)
		v, _ := rd.VolumeDefinition(0)
		return v.Flags.Has(model.VdFlagResize)
	}
	request := func() string {
		rd, _ := s.ResourceDefinition(testRD)
		v, _ := rd.VolumeDefinition(0)
		return v.Props[satellite.PropResizeRequest]
	}
	pass := func() {
		t.Helper()
		if err := c.Pass(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	// pve2's report is too old: its node counts as offline.
	put(store, resizeReport("pve2", newLV, oldKiB, drbd.ConnConnected), &seq)
	clk.Advance(DefaultOnlineWindow + time.Second)
	put(store, resizeReport("pve1", newLV, oldKiB, drbd.ConnConnected), &seq)
	pass()
	if request() != "" {
		t.Fatalf("request %q with pve2 offline", request())
	}
	put(store, resizeReport("pve2", newLV, oldKiB, drbd.ConnConnected), &seq)
	pass()
	if request() != "pve1/2097152" {
		t.Fatalf("request %q, want pve1/2097152", request())
	}
	put(store, resizeReport("pve1", newLV, newKiB, drbd.ConnConnected), &seq)
	put(store, resizeReport("pve2", newLV, newKiB, drbd.ConnConnected), &seq)
	client := satellite.NodeReport{Node: "pve3", Boot: "a", Resources: []drbd.ObservedResource{{Name: testRD, Role: drbd.RoleSecondary,
		Devices: []drbd.ObservedDevice{{Volume: 0, Minor: 1000, Disk: drbd.DiskDiskless, Client: true, SizeKiB: oldKiB}}}}}
	put(store, client, &seq)
	pass()
	if !flag() {
		t.Fatal("completed while the online client still shows the old size")
	}
	clk.Advance(DefaultOnlineWindow + time.Second)
	put(store, resizeReport("pve1", newLV, newKiB, drbd.ConnConnected), &seq)
	put(store, resizeReport("pve2", newLV, newKiB, drbd.ConnConnected), &seq)
	pass()
	if flag() || request() != "" {
		t.Fatalf("not completed with the client offline: flag %t, request %q", flag(), request())
	}
}
