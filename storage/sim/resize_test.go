package sim

import (
	"bytes"
	"strings"
	"testing"

	"github.com/pvehci/pvehci/internal/run"
	"github.com/pvehci/pvehci/storage/drbd"
	"github.com/pvehci/pvehci/storage/lvm"
)

// growLV extends host's LV of the resource to size (lvextend -L).
func (cl *cluster) growLV(host, size string) {
	cl.t.Helper()
	mustSh(cl.t, cl.hosts[host].Runner(), "lvextend -L "+size+" pve/"+lvm.VolumeLVName(resName, 0))
}

func (cl *cluster) sizeKiB(host string) uint64 {
	cl.t.Helper()
	return cl.observe(host).Devices[0].SizeKiB
}

// Online grow (drbdadm(8) "resize"): with every diskful LV grown, one
// node's `drbdadm resize RES/VOL` grows the device on every connected node,
// diskless ones too, to the smallest backing size less the metadata; the
// data stays, the new area reads as zeros everywhere and only the new
// blocks are synchronized. A disconnected or smaller peer keeps the size.
func TestDRBDResizeGrowsEveryNode(t *testing.T) {
	t.Parallel()
	cl := newCluster(t, threeNodes("io-error"))
	cl.upAndSkipSync("pve1", "pve2", "pve3")
	cl.writeBlocks("pve1", 64, 7)
	before := cl.sizeKiB("pve1")
	if want := usableSize(8<<20, 7) / 1024; before != want {
		t.Fatalf("size before: %d KiB, want %d", before, want)
	}

	// Only pve1's LV is grown: pve2 caps the size.
	cl.growLV("pve1", "16M")
	cl.mustAdm("pve1", "resize")
	if got := cl.sizeKiB("pve1"); got != before {
		t.Fatalf("resize with a smaller peer grew to %d KiB", got)
	}
	// pve2 grown but not connected: the last agreed size stays.
	cl.growLV("pve2", "16M")
	cl.net.Cut("pve1", "pve2")
	cl.mustAdm("pve1", "resize")
	if got := cl.sizeKiB("pve1"); got != before {
		t.Fatalf("resize with a disconnected diskful peer grew to %d KiB", got)
	}
	cl.net.Heal("pve1", "pve2")
	cl.net.Settle()

	// A diskless node has nothing to resize.
	res, err := cl.adm("pve3", "resize")
	if run.ExitCode(err) != 10 || !strings.Contains(string(res.Stderr), "(138) Device does not have a disk-config") {
		t.Fatalf("resize on a diskless node: %v %s", err, res.Stderr)
	}

	res, err = cl.hosts["pve1"].Runner().Run(t.Context(), run.Command("drbdadm", "-c", cl.file, "resize", resName+"/0"))
	if err != nil {
		t.Fatalf("resize: %v %s", err, res.Stderr)
	}
	after := usableSize(16<<20, 7) / 1024
	for _, h := range []string{"pve1", "pve2", "pve3"} {
		if got := cl.sizeKiB(h); got != after {
			t.Fatalf("%s: size %d KiB after resize, want %d", h, got, after)
		}
	}
	// Only the new area is synchronized, from pve1 to pve2.
	a := cl.observe("pve1")
	if pd := peer(a, 1).PeerDevices[0]; pd.Replication != drbd.ReplSyncSource || pd.OutOfSyncKiB != after-before {
		t.Fatalf("pve1 toward pve2 after resize: %+v (want SyncSource, %d KiB out of sync)", pd, after-before)
	}
	// A second resize while that runs is refused as by DRBD.
	cl.growLV("pve1", "24M")
	cl.growLV("pve2", "24M")
	res, err = cl.adm("pve1", "resize")
	if run.ExitCode(err) != 10 || !strings.Contains(string(res.Stderr), "(130) Resize not allowed during resync.") {
		t.Fatalf("resize during resync: %v %s", err, res.Stderr)
	}
	cl.net.Settle()
	for _, h := range []string{"pve1", "pve2"} {
		if d := cl.observe(h).Devices[0]; d.Disk != drbd.DiskUpToDate {
			t.Fatalf("%s after the resync: %+v", h, d)
		}
	}

	// Old data intact and the new area zero, read on every node
	// (pve3 through its peers).
	for _, h := range []string{"pve1", "pve2", "pve3"} {
		dev, err := cl.hosts[h].OpenDRBD("/dev/drbd1000", false)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, bmBlock)
		for b := 0; b < 64; b += 2 {
			if _, err := dev.ReadAt(buf, int64(b*bmBlock)); err != nil || !bytes.Equal(buf, bytes.Repeat([]byte{7 + byte(b)}, bmBlock)) {
				t.Fatalf("%s: block %d lost its data (%v)", h, b, err)
			}
		}
		zero := make([]byte, bmBlock)
		for off := int64(before * 1024); off < int64(after*1024); off += bmBlock {
			if _, err := dev.ReadAt(buf, off); err != nil || !bytes.Equal(buf, zero) {
				t.Fatalf("%s: new area at %d is not zero (%v)", h, off, err)
			}
		}
		dev.Close()
	}
	cl.sameBlocks("pve1", "pve2")

	// --assume-clean: the grown area is taken as in sync, no resync.
	cl.mustAdm("pve2", "--", "--assume-clean", "resize")
	b := cl.observe("pve2")
	if b.Devices[0].SizeKiB != usableSize(24<<20, 7)/1024 || peer(b, 0).PeerDevices[0].Replication != drbd.ReplEstablished || peer(b, 0).PeerDevices[0].OutOfSyncKiB != 0 {
		t.Fatalf("after resize --assume-clean: %+v %+v", b.Devices[0], peer(b, 0).PeerDevices[0])
	}
}
