package controller

import (
	"bytes"
	"slices"
	"strconv"
	"strings"
	"testing"

	linstor "github.com/LINBIT/golinstor"
	"github.com/pvehci/pvehci/ha/state"
	"github.com/pvehci/pvehci/internal/run"
	"github.com/pvehci/pvehci/storage/drbd"
	"github.com/pvehci/pvehci/storage/lvm"
	"github.com/pvehci/pvehci/storage/model"
	"github.com/pvehci/pvehci/storage/satellite"
)

const restoreKiB = 8 << 10

// write fills every 256 KiB step of the device of rd on node with a
// 4 KiB block of text, as a VM writing through that node.
func (c *simCluster) write(node, rd string, minor int, text string) {
	c.t.Helper()
	dev, err := c.nodes[node].host.OpenDRBD(drbdDevice(minor), true)
	if err != nil {
		c.t.Fatalf("open %s on %s: %v", rd, node, err)
	}
	defer dev.Close()
	block := pattern(text)
	for off := int64(0); off < restoreKiB*1024; off += 256 << 10 {
		if _, err := dev.WriteAt(block, off); err != nil {
			c.t.Fatal(err)
		}
	}
}

// reads checks that every node's device of rd reads text.
func (c *simCluster) reads(rd string, minor int, text string) {
	c.t.Helper()
	block, buf := pattern(text), make([]byte, 4096)
	for _, n := range c.names {
		dev, err := c.nodes[n].host.OpenDRBD(drbdDevice(minor), false)
		if err != nil {
			c.t.Fatalf("open %s on %s: %v", rd, n, err)
		}
		for off := int64(0); off < restoreKiB*1024; off += 256 << 10 {
			if _, err := dev.ReadAt(buf, off); err != nil || !bytes.Equal(buf, block) {
				dev.Close()
				c.t.Fatalf("%s on %s at %d reads %q (%v), want %q", rd, n, off, bytes.TrimRight(buf[:32], "\x00"), err, text)
			}
		}
		dev.Close()
	}
}

func pattern(text string) []byte { return bytes.Repeat([]byte(text), 4096/len(text)+1)[:4096] }

func drbdDevice(minor int) string { return "/dev/drbd" + strconv.Itoa(minor) }

// upToDate reports whether every diskful replica of rd reports UpToDate
// and every node has the resource up.
func (c *simCluster) upToDate(rd string) bool {
	for _, n := range c.names {
		rep, _, ok := c.store.Report(n)
		if !ok {
			return false
		}
		k, up := rep.Resource(rd)
		if !up || len(k.Devices) == 0 {
			return false
		}
		r, _ := c.s.Resource(rd, n)
		if !r.Diskless() && k.Devices[0].Disk != drbd.DiskUpToDate {
			return false
		}
	}
	return true
}

// snapshot takes snapshot name of testRD through the Completer's round.
func (c *simCluster) snapshot(name string, ts int64) {
	c.t.Helper()
	mustApply(c.t, c.s, &state.CreateSnapshotDefinition{ResourceDefinition: testRD, Name: name, CreateTimestamp: ts})
	c.until("snapshot "+name, 8, func() bool {
		sd, _ := c.s.SnapshotDefinition(testRD, name)
		return sd.Flags.Has(model.SnapFlagSuccessful)
	})
}

func (c *simCluster) converged() {
	c.t.Helper()
	for _, n := range c.names {
		rep, err := c.recs[n].Pass(c.t.Context(), c.s)
		if err != nil || len(rep.Plan.Actions) > 0 || len(rep.Plan.Problems) > 0 {
			c.t.Fatalf("%s not converged: %v %v %v", n, rep.Plan.Actions, rep.Plan.Problems, err)
		}
	}
}

func (c *simCluster) sameLVs(lv string) {
	c.t.Helper()
	a, err := c.nodes["pve1"].host.Device(lvm.DevicePath("pve", lv))
	if err != nil {
		c.t.Fatal(err)
	}
	defer a.Close()
	b, err := c.nodes["pve2"].host.Device(lvm.DevicePath("pve", lv))
	if err != nil {
		c.t.Fatal(err)
	}
	defer b.Close()
	x, y := make([]byte, 4096), make([]byte, 4096)
	for off := int64(0); off < a.Size(); off += 4096 {
		a.ReadAt(x, off)
		b.ReadAt(y, off)
		if !bytes.Equal(x, y) {
			c.t.Fatalf("the replicas' LVs %s differ at %d", lv, off)
		}
	}
}

// snapshotted is a simCluster whose testRD holds "before-snapshot-" in
// snapshot snap1 and "after-snapshot--" now, written through pve3.
func snapshotted(t *testing.T) *simCluster {
	c := newSimCluster(t, restoreKiB)
	c.until("resource up", 8, func() bool { return c.upToDate(testRD) })
	c.write("pve3", testRD, 1000, "before-snapshot-")
	c.snapshot("snap1", 1000)
	c.write("pve3", testRD, 1000, "after-snapshot--")
	return c
}

// TestRollbackOnSim rolls a resource with two diskful replicas and a
// diskless client back to a snapshot, end to end on simulated hosts: every
// node takes the resource down, each diskful node replaces its volume by a
// clone of its snapshot, and only when both are done does the resource
// come up again, UpToDate everywhere without a resync, with the
// snapshot's data on every node. The snapshot stays, and a second rollback
// to it is a rollback of its own (the id), not one already done.
func TestRollbackOnSim(t *testing.T) {
	t.Parallel()
	c := snapshotted(t)
	var cmds []string
	c.onCmd = func(n string, cmd run.Cmd) { cmds = append(cmds, n+": "+cmd.String()) }
	c.reads(testRD, 1000, "after-snapshot--")

	rollback := func(id string) {
		t.Helper()
		for _, n := range []string{"pve1", "pve2"} {
			mustApply(t, c.s, &state.SetProps{Target: state.Target{Kind: model.ObjResource, ResourceDefinition: testRD, Node: n},
				Change: model.PropsChange{Set: model.Props{linstor.KeyRscRollbackTarget: "snap1", satellite.PropRollbackID: id}}})
		}
		cmds = nil
		// pve1 rolls back while pve2's satellite does not run: pve1's
		// part is done and completed, but it stays down as long as
		// pve2, which still has the newer data, has not rolled back.
		for range 3 {
			c.roundOn("pve1")
		}
		r1, _ := c.s.Resource(testRD, "pve1")
		r2, _ := c.s.Resource(testRD, "pve2")
		if r1.Props[linstor.KeyRscRollbackTarget] != "" || r2.Props[linstor.KeyRscRollbackTarget] == "" {
			t.Fatalf("RollbackTarget on pve1 %q, pve2 %q: want pve1's completed, pve2's pending", r1.Props[linstor.KeyRscRollbackTarget], r2.Props[linstor.KeyRscRollbackTarget])
		}
		if rep, _, _ := c.store.Report("pve1"); slices.ContainsFunc(rep.Resources, func(k drbd.ObservedResource) bool { return k.Name == testRD }) {
			t.Fatalf("pve1 is up while pve2 has not rolled back: %v", rep.Resources)
		}
		c.until("rollback "+id+" done", 6, func() bool {
			for _, r := range c.s.Resources(testRD) {
				if r.Props[linstor.KeyRscRollbackTarget] != "" || r.Props[satellite.PropRollbackID] != "" {
					return false
				}
			}
			return true
		})
		c.until("resource up after rollback "+id, 6, func() bool { return c.upToDate(testRD) })
		c.reads(testRD, 1000, "before-snapshot-")
		c.sameLVs(lvm.VolumeLVName(testRD, 0))
		c.converged()
		for _, line := range cmds {
			if strings.Contains(line, "create-md") || strings.Contains(line, "primary --force") || strings.Contains(line, "new-current-uuid") {
				t.Errorf("rollback ran %s", line)
			}
		}
	}
	rollback("id-1")
	t.Logf("commands of the rollback:\n%s", strings.Join(cmds, "\n"))
	want := []string{
		"pve1: drbdsetup down " + testRD,
		"pve1: lvcreate --snapshot --setactivationskip n --activate y --permission rw --name " + testRD + "_00000.rollback --addtag pvehci --addtag pvehci-rollback-id-1 pve/" + testRD + "_00000_snap1",
		"pve1: lvremove -f pve/" + testRD + "_00000",
		"pve1: lvrename pve " + testRD + "_00000.rollback " + testRD + "_00000",
		"pve3: drbdsetup down " + testRD,
	}
	for _, w := range want {
		if !slices.ContainsFunc(cmds, func(c string) bool {
			return strings.HasSuffix(c, w[strings.Index(w, ": ")+2:]) && strings.HasPrefix(c, w[:strings.Index(w, ":")])
		}) {
			t.Errorf("missing command %q", w)
		}
	}
	sd, ok := c.s.SnapshotDefinition(testRD, "snap1")
	if !ok || !sd.Flags.Has(model.SnapFlagSuccessful) {
		t.Fatalf("snapshot gone after the rollback: %v", sd)
	}

	// Written after the first rollback, gone after the second.
	c.write("pve3", testRD, 1000, "after-rollback--")
	rollback("id-2")
}

// TestRestoreOnSim restores a snapshot into a new resource as the REST API
// does (volume definitions with the snapshot's sizes, flagged
// DRBD_INITIALIZED; resources on the snapshot's nodes with its node ids,
// flagged RESTORE_FROM_SNAPSHOT), plus a diskless client: the restored
// replicas are clones of the snapshot, connect UpToDate without a sync
// and without create-md, every node reads the snapshot's data, and the
// flag clears. The source is untouched.
func TestRestoreOnSim(t *testing.T) {
	t.Parallel()
	c := snapshotted(t)
	var cmds []string
	c.onCmd = func(n string, cmd run.Cmd) { cmds = append(cmds, n+": "+cmd.String()) }

	const clone = "vm-101-disk-1"
	sd, _ := c.s.SnapshotDefinition(testRD, "snap1")
	mustApply(t, c.s, &state.CreateResourceDefinition{Name: clone, DrbdSecret: testSecret})
	vnr := 0
	mustApply(t, c.s, &state.CreateVolumeDefinition{ResourceDefinition: clone, NewVolumeDefinition: state.NewVolumeDefinition{
		VolumeNumber: &vnr, SizeKiB: sd.VolumeDefinitions[0].SizeKiB, Flags: []string{model.VdFlagDrbdInitialized}}})
	for _, sn := range sd.Snapshots {
		id := sn.NodeID
		mustApply(t, c.s, &state.CreateResource{ResourceDefinition: clone, Node: sn.Node, Kind: state.Diskful, NodeID: &id,
			Flags: []string{model.RscFlagRestoreFromSnapshot},
			Props: model.Props{linstor.KeyVlmRestoreFromResource: testRD, linstor.KeyVlmRestoreFromSnapshot: "snap1"}})
	}
	mustApply(t, c.s, &state.CreateResource{ResourceDefinition: clone, Node: "pve3", Kind: state.Diskless})
	rd, _ := c.s.ResourceDefinition(clone)
	minor := rd.VolumeDefinitions[0].Minor
	cmds = nil
	c.until("restored resource up", 6, func() bool { return c.upToDate(clone) })
	c.until("flag cleared", 3, func() bool {
		for _, r := range c.s.Resources(clone) {
			if r.Flags.Has(model.RscFlagRestoreFromSnapshot) {
				return false
			}
		}
		return true
	})
	c.reads(clone, minor, "before-snapshot-")
	c.reads(testRD, 1000, "after-snapshot--")
	c.sameLVs(lvm.VolumeLVName(clone, 0))
	c.converged()
	t.Logf("commands of the restore:\n%s", strings.Join(cmds, "\n"))

	forgets := map[string]int{}
	for i, line := range cmds {
		if strings.Contains(line, clone) && (strings.Contains(line, "create-md") || strings.Contains(line, "primary --force") || strings.Contains(line, "new-current-uuid")) {
			t.Errorf("restore ran %s", line)
		}
		node, cmd, _ := strings.Cut(line, ": ")
		if strings.Contains(cmd, "forget-peer") {
			forgets[node]++
			// Before the first attach.
			if slices.ContainsFunc(cmds[:i], func(l string) bool {
				return strings.HasPrefix(l, node+": drbdadm") && strings.Contains(l, "adjust "+clone)
			}) {
				t.Errorf("%s: forget-peer after the adjust", node)
			}
			if strings.HasSuffix(cmd, "--node-id 0") || strings.HasSuffix(cmd, "--node-id 1") {
				t.Errorf("%s cleared the slot of a peer restored from the same snapshot: %s", node, cmd)
			}
		}
	}
	// Node ids 2..31: every id that is not a restored peer.
	if forgets["pve1"] != 30 || forgets["pve2"] != 30 || forgets["pve3"] != 0 {
		t.Errorf("forget-peer runs %v, want 30 on pve1 and pve2", forgets)
	}
	for _, n := range []string{"pve1", "pve2"} {
		w := n + ": lvcreate --snapshot --setactivationskip n --activate y --permission rw --name " + clone + "_00000 --addtag pvehci pve/" + testRD + "_00000_snap1"
		if !slices.ContainsFunc(cmds, func(l string) bool { return strings.HasPrefix(l, n+": ") && strings.HasSuffix(l, w[len(n)+2:]) }) {
			t.Errorf("%s: no clone of the snapshot", n)
		}
	}
}
