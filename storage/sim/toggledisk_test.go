package sim

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/pvehci/pvehci/internal/run"
	"github.com/pvehci/pvehci/storage/drbd"
	"github.com/pvehci/pvehci/storage/lvm"
)

// rewrite renders cfg into the cluster's .res file, as the satellite
// rewrites it when a resource's disks change.
func (cl *cluster) rewrite(cfg drbd.ResourceConfig) {
	cl.t.Helper()
	cfg.Name = resName
	text, err := drbd.Render(cfg)
	if err != nil {
		cl.t.Fatal(err)
	}
	if err := os.WriteFile(cl.file, text, 0o600); err != nil {
		cl.t.Fatal(err)
	}
}

// writeBlocks writes a distinct pattern into every other 4 KiB block of
// the first blocks of host's DRBD device (auto-promoting it).
func (cl *cluster) writeBlocks(host string, blocks int, seed byte) {
	cl.t.Helper()
	dev, err := cl.hosts[host].OpenDRBD("/dev/drbd1000", true)
	if err != nil {
		cl.t.Fatal(err)
	}
	defer dev.Close()
	for b := 0; b < blocks; b += 2 {
		if _, err := dev.WriteAt(bytes.Repeat([]byte{seed + byte(b)}, bmBlock), int64(b*bmBlock)); err != nil {
			cl.t.Fatal(err)
		}
	}
}

// sameBlocks compares two hosts' LVs block for block.
func (cl *cluster) sameBlocks(a, b string) {
	cl.t.Helper()
	da, db := cl.lv(a), cl.lv(b)
	if da.Size() != db.Size() {
		cl.t.Fatalf("LV sizes %d and %d", da.Size(), db.Size())
	}
	x, y := make([]byte, bmBlock), make([]byte, bmBlock)
	for off := int64(0); off < da.Size(); off += bmBlock {
		na, _ := da.ReadAt(x, off)
		nb, _ := db.ReadAt(y, off)
		if !bytes.Equal(x[:na], y[:nb]) {
			cl.t.Fatalf("block %d differs between %s and %s", off/bmBlock, a, b)
		}
	}
}

// LINSTOR's toggle-disk diskless -> diskful (guide 5.10): the satellite
// creates the LV, rewrites the .res with the disk, runs create-md on the
// LV while the resource is up diskless, then adjust, which attaches the
// disk; the new disk becomes a full SyncTarget of its UpToDate peer
// (guide 13.1.3).
func TestDRBDAdjustAttachesDisk(t *testing.T) {
	t.Parallel()
	diskless := drbd.ResourceConfig{Nodes: []drbd.Node{diskfulNode("pve1", 0), disklessNode("pve2", 1)}}
	cl := newCluster(t, diskless)
	cl.upAndSkipSync("pve1", "pve2")
	cl.writeBlocks("pve1", 64, 1)
	if r := cl.observe("pve2"); r.Devices[0].Disk != drbd.DiskDiskless || !r.Devices[0].Client {
		t.Fatalf("client before toggle: %+v", r.Devices[0])
	}

	diskful := drbd.ResourceConfig{Nodes: []drbd.Node{diskfulNode("pve1", 0), diskfulNode("pve2", 1)}}
	cl.rewrite(diskful)
	// Without the LV, then without metadata, attach fails and the
	// volume stays a diskless client.
	res, err := cl.adm("pve2", "adjust")
	if run.ExitCode(err) != 10 || !strings.Contains(string(res.Stderr), "(104) Can not open backing device") {
		t.Fatalf("adjust without LV: %v %s", err, res.Stderr)
	}
	mustSh(t, cl.hosts["pve2"].Runner(), "lvcreate -V 8M -T pve/data -n "+lvm.VolumeLVName(resName, 0)+" --addtag pvehci")
	res, err = cl.adm("pve2", "adjust")
	if run.ExitCode(err) != 10 || !strings.Contains(string(res.Stderr), "No valid meta data found") ||
		!strings.Contains(string(res.Stderr), "drbdsetup attach 1000") {
		t.Fatalf("adjust without metadata: %v %s", err, res.Stderr)
	}
	if r := cl.observe("pve2"); r.Devices[0].Disk != drbd.DiskDiskless || !r.Devices[0].Client {
		t.Fatalf("after failed attach: %+v", r.Devices[0])
	}

	cl.mustAdm("pve2", "--max-peers", "7", "--", "--force", "create-md") // works while up diskless
	cl.mustAdm("pve2", "adjust")
	cl.mustAdm("pve1", "adjust")
	b, a := cl.observe("pve2"), cl.observe("pve1")
	if d := b.Devices[0]; d.Disk != drbd.DiskInconsistent || d.Client || d.BackingDev != lvm.DevicePath("pve", lvm.VolumeLVName(resName, 0)) {
		t.Fatalf("pve2 after attach: %+v", d)
	}
	if pd := peer(b, 0).PeerDevices[0]; pd.Replication != drbd.ReplSyncTarget || pd.PeerDisk != drbd.DiskUpToDate || peer(b, 0).Connection != drbd.ConnConnected {
		t.Fatalf("pve2's view of pve1: %+v", peer(b, 0))
	}
	if pd := peer(a, 1).PeerDevices[0]; pd.Replication != drbd.ReplSyncSource || pd.PeerDisk != drbd.DiskInconsistent || pd.PeerClient {
		t.Fatalf("pve1's view of pve2: %+v", pd)
	}
	if a.Role != drbd.RoleSecondary || a.Devices[0].Disk != drbd.DiskUpToDate {
		t.Fatalf("pve1 after attach: %+v", a)
	}

	// Part way: progress shows, reads on pve2 come from pve1, and a write
	// on pve1 reaches the SyncTarget.
	cl.net.Resync(8)
	if pd := peer(cl.observe("pve2"), 0).PeerDevices[0]; pd.Replication != drbd.ReplSyncTarget || !pd.HasDone || pd.DonePercent <= 0 || pd.DonePercent >= 100 {
		t.Fatalf("mid-sync: %+v", pd)
	}
	dev, err := cl.hosts["pve2"].OpenDRBD("/dev/drbd1000", false)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, bmBlock)
	if _, err := dev.ReadAt(buf, 40*bmBlock); err != nil || buf[0] != 41 {
		t.Fatalf("read on the SyncTarget: %v %d", err, buf[0])
	}
	dev.Close()
	cl.writeBlocks("pve1", 4, 100) // blocks 0 and 2, already synced

	cl.net.Settle()
	b, a = cl.observe("pve2"), cl.observe("pve1")
	if d := b.Devices[0]; d.Disk != drbd.DiskUpToDate || d.Client {
		t.Fatalf("pve2 after sync: %+v", d)
	}
	if pd := peer(b, 0).PeerDevices[0]; pd.Replication != drbd.ReplEstablished || pd.PeerDisk != drbd.DiskUpToDate || pd.OutOfSyncKiB != 0 {
		t.Fatalf("pve2's view after sync: %+v", pd)
	}
	if pd := peer(a, 1).PeerDevices[0]; pd.Replication != drbd.ReplEstablished || pd.PeerDisk != drbd.DiskUpToDate || pd.PeerClient || pd.OutOfSyncKiB != 0 {
		t.Fatalf("pve1's view after sync: %+v", pd)
	}
	cl.sameBlocks("pve1", "pve2")
	if buf := make([]byte, 1); func() byte { cl.lv("pve2").ReadAt(buf, 0); return buf[0] }() != 100 {
		t.Fatalf("write during sync lost on pve2: %d", buf[0])
	}
	// The new disk now serves on its own: pve1 gone, pve2 still reads.
	cl.net.Cut("pve1", "pve2")
	dev, err = cl.hosts["pve2"].OpenDRBD("/dev/drbd1000", true)
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	if _, err := dev.ReadAt(buf, 10*bmBlock); err != nil || buf[0] != 11 {
		t.Fatalf("read on pve2 alone: %v %d", err, buf[0])
	}
}

// toggle-disk --diskless (guide 5.10): adjust with `disk none` detaches
// the local disk; the node keeps working as a client through its peer
// (guide 13.1.1), and the LV can then be removed.
func TestDRBDAdjustDetachesDisk(t *testing.T) {
	t.Parallel()
	diskful := drbd.ResourceConfig{Nodes: []drbd.Node{diskfulNode("pve1", 0), diskfulNode("pve2", 1)}}
	cl := newCluster(t, diskful)
	cl.upAndSkipSync("pve1", "pve2")
	cl.writeBlocks("pve1", 16, 1)

	cl.rewrite(drbd.ResourceConfig{Nodes: []drbd.Node{diskfulNode("pve1", 0), disklessNode("pve2", 1)}})
	// A Primary cut off from every UpToDate peer cannot give up its disk.
	dev, err := cl.hosts["pve2"].OpenDRBD("/dev/drbd1000", true)
	if err != nil {
		t.Fatal(err)
	}
	cl.net.Cut("pve1", "pve2")
	res, err := cl.adm("pve2", "adjust")
	if run.ExitCode(err) != 11 || !strings.Contains(string(res.Stderr), "(-2) Need access to UpToDate data") {
		t.Fatalf("detach of the last UpToDate disk of a Primary: %v %s", err, res.Stderr)
	}
	if r := cl.observe("pve2"); r.Devices[0].Disk != drbd.DiskUpToDate || r.Devices[0].Client {
		t.Fatalf("after refused detach: %+v", r.Devices[0])
	}
	cl.net.Heal("pve1", "pve2")
	cl.net.Settle()

	cl.mustAdm("pve2", "adjust")
	cl.mustAdm("pve1", "adjust")
	b, a := cl.observe("pve2"), cl.observe("pve1")
	if d := b.Devices[0]; d.Disk != drbd.DiskDiskless || !d.Client || d.BackingDev != "none" || b.Role != drbd.RolePrimary {
		t.Fatalf("pve2 after detach: %+v %s", d, b.Role)
	}
	if pd := peer(a, 1).PeerDevices[0]; pd.PeerDisk != drbd.DiskDiskless || !pd.PeerClient || pd.Replication != drbd.ReplEstablished {
		t.Fatalf("pve1's view of pve2: %+v", pd)
	}
	// I/O on the detached Primary goes through pve1.
	if _, err := dev.WriteAt(bytes.Repeat([]byte{77}, bmBlock), 3*bmBlock); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, bmBlock)
	if _, err := dev.ReadAt(buf, 2*bmBlock); err != nil || buf[0] != 3 {
		t.Fatalf("read through the peer: %v %d", err, buf[0])
	}
	if cl.lv("pve1").ReadAt(buf, 3*bmBlock); buf[0] != 77 {
		t.Fatalf("write did not reach pve1: %d", buf[0])
	}
	dev.Close()
	// The LV is free: toggle-disk removes it.
	mustSh(t, cl.hosts["pve2"].Runner(), "lvremove -y pve/"+lvm.VolumeLVName(resName, 0))
	if _, err := cl.hosts["pve2"].Device(lvm.DevicePath("pve", lvm.VolumeLVName(resName, 0))); !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("LV after lvremove: %v", err)
	}
}

// A write made while a peer is configured with a disk it has not attached
// yet marks a few blocks for it; the new disk must still get all of them.
// (The lab's relocation test found a new replica that took only the
// blocks written during the toggle and ended UpToDate without the rest.)
// An interrupted full sync, by contrast, resumes with what is left.
func TestDRBDNewDiskSyncsInFullAfterWritesMarkedForIt(t *testing.T) {
	t.Parallel()
	cl := newCluster(t, drbd.ResourceConfig{Nodes: []drbd.Node{diskfulNode("pve1", 0), disklessNode("pve2", 1)}})
	cl.upAndSkipSync("pve1", "pve2")
	cl.writeBlocks("pve1", 64, 1)

	cl.rewrite(drbd.ResourceConfig{Nodes: []drbd.Node{diskfulNode("pve1", 0), diskfulNode("pve2", 1)}})
	cl.mustAdm("pve1", "adjust") // pve1 now counts pve2 as diskful
	cl.writeBlocks("pve1", 4, 100)
	if got := len(cl.hosts["pve1"].drbd.res[resName].vols[0].meta.oos[1]); got != 2 {
		t.Fatalf("pve1 marked %d blocks for the unattached disk of pve2, want 2", got)
	}
	mustSh(t, cl.hosts["pve2"].Runner(), "lvcreate -V 8M -T pve/data -n "+lvm.VolumeLVName(resName, 0)+" --addtag pvehci")
	cl.mustAdm("pve2", "--max-peers", "7", "--", "--force", "create-md")
	cl.mustAdm("pve2", "adjust")
	pv := cl.hosts["pve2"].drbd.res[resName].conns[0].pv[0]
	full := (cl.hosts["pve2"].drbd.res[resName].vols[0].size + bmBlock - 1) / bmBlock
	if pv.repl != drbd.ReplSyncTarget || pv.total != full {
		t.Fatalf("pve2 after attach: %s with %d blocks to sync, want SyncTarget with all %d", pv.repl, pv.total, full)
	}

	// Interrupted part way, the full sync resumes with the rest.
	cl.net.Resync(8)
	cl.net.Cut("pve1", "pve2")
	cl.net.Heal("pve1", "pve2")
	pv = cl.hosts["pve2"].drbd.res[resName].conns[0].pv[0]
	if pv.repl != drbd.ReplSyncTarget || pv.total != full-8 {
		t.Fatalf("pve2 after reconnecting: %s with %d blocks to sync, want SyncTarget with the %d left", pv.repl, pv.total, full-8)
	}
	cl.net.Settle()
	if d := cl.observe("pve2").Devices[0]; d.Disk != drbd.DiskUpToDate {
		t.Fatalf("pve2 after the sync: %+v", d)
	}
	cl.sameBlocks("pve1", "pve2")
}
