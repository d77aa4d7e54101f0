package satellite

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pvehci/pvehci/ha/state"
	"github.com/pvehci/pvehci/internal/run"
	"github.com/pvehci/pvehci/storage/drbd"
	"github.com/pvehci/pvehci/storage/lvm"
	"github.com/pvehci/pvehci/storage/model"
)

// TestCheckResizeAfterCrashDuringGrowOnSim: pve2 extends its LV for a grow
// while DRBD holds it, then crashes before the resize, so its metadata
// stays at the end of the old size and the probe finds none at the LV's
// end. When pve2 comes back its satellite moves the metadata with
// check-resize (the last-known size in /var/lib/drbd names the old size)
// and attaches: the volume keeps its generation, so it is UpToDate with
// nothing to resynchronize, no create-md runs, the grow completes with
// drbdadm resize, and the data written before is there block for block.
func TestCheckResizeAfterCrashDuringGrowOnSim(t *testing.T) {
	t.Parallel()
	const oldKiB, newKiB = 8 << 10, 16 << 10
	s := kindCluster(t, oldKiB, state.Diskful, state.Diskful)
	c := newSimCluster(t, s, "pve1", "pve2")
	for _, n := range c.nodes {
		n.host.SetConfigRoot(n.root) // drbd-utils' /var/lib/drbd is under it
	}
	c.converge()
	setVDInitialized(t, s)
	def, _ := s.ResourceDefinition(rsc)
	minor := def.VolumeDefinitions[0].Minor
	lvKey := "pve/" + lvm.VolumeLVName(rsc, 0)
	devPath := lvm.DevicePath("pve", lvm.VolumeLVName(rsc, 0))

	// A VM writes through pve1; both replicas get every block.
	offsets := []int64{0, 4096, 1 << 20, 5<<20 + 8192, oldKiB*1024 - 4096}
	block := func(i int) []byte { return bytes.Repeat([]byte{byte(0xb0 + i)}, 4096) }
	dev, err := c.nodes["pve1"].host.OpenDRBD(fmt.Sprintf("/dev/drbd%d", minor), true)
	if err != nil {
		t.Fatal(err)
	}
	for i, off := range offsets {
		if _, err := dev.WriteAt(block(i), off); err != nil {
			t.Fatalf("write at %d: %v", off, err)
		}
	}
	if err := dev.Close(); err != nil {
		t.Fatal(err)
	}
	before := c.data("pve1", oldKiB)

	var transcript []string // pve2's commands from the grow on
	pass := func(name string) []Kind {
		t.Helper()
		rep, err := c.reconciler(name).Pass(context.Background(), s)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var kinds []Kind
		for _, o := range rep.Outcomes {
			if o.Err != nil || o.Skipped {
				t.Fatalf("%s: %s failed: %v", name, o.Action, o.Err)
			}
			kinds = append(kinds, o.Action.Kind)
		}
		for _, p := range rep.Plan.Problems {
			t.Errorf("%s: problem %s: %v", name, p.Resource, p.Err)
		}
		for _, cmd := range c.nodes[name].takeCmds() {
			if name == "pve2" {
				transcript = append(transcript, strings.Join(append([]string{cmd.Name}, cmd.Args...), " "))
			}
		}
		return kinds
	}
	lastKnown := func(name string) string {
		t.Helper()
		data, err := os.ReadFile(filepath.Join(c.nodes[name].root, LastKnownPath(minor)))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return string(data)
	}
	lvBytes := func(name string) uint64 {
		t.Helper()
		r := c.reconciler(name)
		want, _ := Desired(s, name)
		got, err := r.Observe(context.Background(), want)
		if err != nil {
			t.Fatal(err)
		}
		c.nodes[name].takeCmds()
		return got.LVs[lvKey].Size
	}
	oldLV := lvBytes("pve2")
	if got, want := lastKnown("pve2"), fmt.Sprintf("%d\t%s\n", oldLV, devPath); got != want {
		t.Fatalf("pve2's last-known size before the grow: %q, want %q (written at attach)", got, want)
	}

	if res := s.Apply(&state.ModifyVolumeDefinition{ResourceDefinition: rsc, VolumeNumber: 0, SizeKiB: newKiB}); res.Err != nil {
		t.Fatal(res.Err)
	}
	if got := pass("pve2"); !slices.Equal(got, []Kind{GrowLV}) {
		t.Fatalf("pve2's first pass after the grow ran %v, want GrowLV", got)
	}
	// The crash: DRBD goes away before any resize; the LV stays grown.
	if _, err := c.nodes["pve2"].host.Runner().Run(context.Background(), run.Command("drbdsetup", "down", rsc)); err != nil {
		t.Fatal(err)
	}
	if newLV := lvBytes("pve2"); newLV <= oldLV {
		t.Fatalf("pve2's LV is %d bytes after GrowLV, was %d", newLV, oldLV)
	}
	probe := run.Command("drbdmeta", "--force", fmt.Sprint(minor), "v09", devPath, "internal", "get-gi", "--node-id", "0")
	if _, err := c.nodes["pve2"].host.Runner().Run(context.Background(), probe); run.ExitCode(err) != 1 {
		t.Fatalf("get-gi on the grown LV: %v, want exit 1 (no metadata at its end)", err)
	}
	if got := pass("pve1"); !slices.Equal(got, []Kind{GrowLV}) {
		t.Fatalf("pve1 ran %v, want GrowLV", got)
	}

	// pve2 comes back.
	if got := pass("pve2"); !slices.Equal(got, []Kind{CheckResize, Adjust}) {
		t.Fatalf("pve2 after the crash ran %v, want CheckResize then Adjust", got)
	}
	checkResize := "drbdadm -vvv check-resize " + rsc + "/0"
	adjust := "drbdadm -vvv adjust " + rsc
	if i, j := slices.Index(transcript, checkResize), slices.Index(transcript, adjust); i < 0 || j < i {
		t.Fatalf("pve2's commands %q: want %q, then %q", transcript, checkResize, adjust)
	}
	if got, want := lastKnown("pve2"), fmt.Sprintf("%d\t%s\n", lvBytes("pve2"), devPath); got != want {
		t.Errorf("pve2's last-known size after check-resize: %q, want %q", got, want)
	}
	// The generation survived: no full sync toward pve2, nothing owed.
	k := c.observe("pve2")
	if len(k.Devices) != 1 || k.Devices[0].Disk != drbd.DiskUpToDate {
		t.Fatalf("pve2 after its return: %+v, want UpToDate", k.Devices)
	}
	for _, conn := range k.Connections {
		for _, pd := range conn.PeerDevices {
			if conn.Connection != drbd.ConnConnected || pd.Replication != drbd.ReplEstablished || pd.OutOfSyncKiB != 0 || pd.ReceivedKiB != 0 {
				t.Errorf("pve2 toward %s: %s %s, out of sync %d KiB, received %d KiB; want connected with nothing copied",
					conn.Name, conn.Connection, pd.Replication, pd.OutOfSyncKiB, pd.ReceivedKiB)
			}
		}
	}

	// The controller names pve1 for the resize; the grow completes and
	// then nothing is left to do (converge checks that the last round
	// runs only read commands).
	setProps(t, s, state.Target{Kind: model.ObjVolumeDefinition, ResourceDefinition: rsc},
		model.Props{PropResizeRequest: FormatResizeRequest("pve1", newKiB)})
	ran := c.converge()
	if !slices.Equal(ran["pve1"], []Kind{ResizeDRBD}) || len(ran["pve2"]) != 0 {
		t.Errorf("the resize ran %v, want one ResizeDRBD on pve1", ran)
	}
	for _, cmd := range transcript {
		if strings.Contains(cmd, "create-md") || strings.Contains(cmd, "wipe-md") {
			t.Errorf("pve2 ran %q", cmd)
		}
	}

	for _, name := range []string{"pve1", "pve2"} {
		k := c.observe(name)
		if int64(k.Devices[0].SizeKiB) < newKiB || k.Devices[0].Disk != drbd.DiskUpToDate {
			t.Errorf("%s after the grow: %+v, want UpToDate with at least %d KiB", name, k.Devices[0], newKiB)
		}
		if got := c.data(name, oldKiB); !bytes.Equal(got, before) {
			for off := 0; off < len(got); off += 4096 {
				if !bytes.Equal(got[off:off+4096], before[off:off+4096]) {
					t.Errorf("%s: block at %d changed by the grow", name, off)
				}
			}
		}
		dev, err := c.nodes[name].host.OpenDRBD(fmt.Sprintf("/dev/drbd%d", minor), false)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4096)
		for i, off := range offsets {
			if _, err := dev.ReadAt(buf, off); err != nil || !bytes.Equal(buf, block(i)) {
				t.Errorf("%s: block at %d through DRBD: %v", name, off, err)
			}
		}
		for off := int64(oldKiB * 1024); off < newKiB*1024; off += 256 << 10 {
			if _, err := dev.ReadAt(buf, off); err != nil || !bytes.Equal(buf, make([]byte, 4096)) {
				t.Errorf("%s: grown area at %d is not zero (%v)", name, off, err)
			}
		}
		dev.Close()
	}
}
