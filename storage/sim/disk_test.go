package sim

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/pvehci/pvehci/storage/lvm"
)

// lsblkArgv is the lsblk command line of `pvehci bootstrap`'s storage step.
func lsblkArgv(dev string) []string {
	return []string{"lsblk", "--json", "--bytes", "--output", "PATH,TYPE,FSTYPE,PTTYPE,MOUNTPOINTS", dev}
}

type lsblkOut struct {
	Blockdevices []struct {
		Path        string    `json:"path"`
		Type        string    `json:"type"`
		Fstype      *string   `json:"fstype"`
		Pttype      *string   `json:"pttype"`
		Mountpoints []*string `json:"mountpoints"`
		Size        uint64    `json:"size"`
	} `json:"blockdevices"`
}

func mustLsblk(t *testing.T, h *Host, argv []string) lsblkOut {
	t.Helper()
	res := simRun(h.Runner(), argv)
	if res.Code != 0 {
		t.Fatalf("%v: exit %d: %s", argv, res.Code, res.Stderr)
	}
	var out lsblkOut
	if err := json.Unmarshal([]byte(res.Stdout), &out); err != nil {
		t.Fatalf("%v: %v\n%s", argv, err, res.Stdout)
	}
	return out
}

func TestBootstrapStorageStep(t *testing.T) {
	h := NewHost("pve1")
	if err := h.AddDisk("/dev/vdb", 4<<30); err != nil {
		t.Fatal(err)
	}
	if err := h.AddDisk("/dev/vdc", 1<<30); err != nil {
		t.Fatal(err)
	}
	if err := h.PartitionDisk("/dev/vdb"); err != nil {
		t.Fatal(err)
	}
	r := h.Runner()

	out := mustLsblk(t, h, lsblkArgv("/dev/vdb"))
	if len(out.Blockdevices) != 2 || out.Blockdevices[0].Type != "disk" || *out.Blockdevices[0].Pttype != "gpt" ||
		out.Blockdevices[1].Path != "/dev/vdb1" || out.Blockdevices[1].Type != "part" {
		t.Fatalf("lsblk of a partitioned disk = %+v", out)
	}
	size := mustLsblk(t, h, []string{"lsblk", "--json", "--bytes", "--nodeps", "--output", "SIZE", "/dev/vdb"})
	if len(size.Blockdevices) != 1 || size.Blockdevices[0].Size != 4<<30 {
		t.Fatalf("lsblk SIZE = %+v", size)
	}
	if res := simRun(r, lsblkArgv("/dev/nope")); res.Code != 32 || res.Stderr != "lsblk: /dev/nope: not a block device\n" {
		t.Errorf("lsblk of a missing device = %+v", res)
	}

	if res := simRun(r, []string{"pvcreate", "/dev/vdb"}); res.Code != 5 || !strings.Contains(res.Stderr, "Cannot use /dev/vdb: device is partitioned") {
		t.Errorf("pvcreate of a partitioned disk = %+v", res)
	}
	if res := simRun(r, []string{"wipefs", "--all", "/dev/vdb"}); res.Code != 0 || !strings.Contains(res.Stdout, "(gpt)") {
		t.Errorf("wipefs = %+v", res)
	}
	if out := mustLsblk(t, h, lsblkArgv("/dev/vdb")); len(out.Blockdevices) != 1 || out.Blockdevices[0].Pttype != nil {
		t.Errorf("lsblk after wipefs = %+v", out)
	}
	for _, argv := range [][]string{{"pvcreate", "/dev/vdb", "/dev/vdc"}, {"vgcreate", "pve", "/dev/vdb"}} {
		if res := simRun(r, argv); res.Code != 0 {
			t.Fatalf("%v: %+v", argv, res)
		}
	}
	pvs, err := lvm.ParsePVs([]byte(simRun(r, lvm.PVSArgs()).Stdout))
	if err != nil || len(pvs) != 2 || pvs[0].VG != "pve" || pvs[1].VG != "" || pvs[1].Size != 1<<30 {
		t.Fatalf("pvs = %+v, %v", pvs, err)
	}
	if res := simRun(r, []string{"vgextend", "pve", "/dev/vdc"}); res.Code != 0 || res.Stdout != "  Volume group \"pve\" successfully extended\n" {
		t.Fatalf("vgextend = %+v", res)
	}
	vgs, err := lvm.ParseVGs([]byte(simRun(r, lvm.VGSArgs("pve")).Stdout))
	// (4 GiB - 1 MiB)/4 MiB = 1023 extents, (1 GiB - 1 MiB)/4 MiB = 255.
	if err != nil || len(vgs) != 1 || vgs[0].Size != (1023+255)*4<<20 {
		t.Fatalf("vgs = %+v, %v", vgs, err)
	}
	// Real wipefs would erase this PV's label (nothing holds it); the
	// simulation refuses rather than model a VG with a missing PV.
	if res := simRun(r, []string{"wipefs", "--all", "/dev/vdc"}); res.Code == 0 {
		t.Errorf("wipefs of a PV of a VG = %+v", res)
	}

	// 95% of 1278 extents is 1214; with 16 metadata and 16 spare extents
	// that fits.
	res := simRun(r, []string{"lvcreate", "--yes", "--type", "thin-pool", "--extents", "95%VG", "--poolmetadatasize", "64m", "--name", "thinpool", "pve"})
	if res.Code != 0 || !strings.HasSuffix(res.Stdout, "  Logical volume \"thinpool\" created.\n") {
		t.Fatalf("lvcreate thin-pool = %+v", res)
	}
	lvs, err := lvm.ParseLVs([]byte(simRun(r, lvm.LVSArgs("pve")).Stdout))
	if err != nil || len(lvs) != 1 || lvs[0].Size != 1214*4<<20 || !lvs[0].Attr.ThinPool() {
		t.Fatalf("lvs = %+v, %v", lvs, err)
	}
	vgs, _ = lvm.ParseVGs([]byte(simRun(r, lvm.VGSArgs("pve")).Stdout))
	if vgs[0].Free != (1278-1214-32)*4<<20 {
		t.Errorf("vg_free = %d", vgs[0].Free)
	}
	// The pool is active: the PVs are held by device-mapper.
	if res := simRun(r, []string{"wipefs", "--all", "/dev/vdb"}); res.Code != 1 ||
		res.Stderr != "wipefs: error: /dev/vdb: probing initialization failed: Device or resource busy\n" {
		t.Errorf("wipefs of a busy PV = %+v", res)
	}
	// The disk comes last, after the pool's devices (as Debian 12's lsblk
	// lists it without a NAME column).
	if out := mustLsblk(t, h, lsblkArgv("/dev/vdb")); len(out.Blockdevices) < 2 || out.Blockdevices[len(out.Blockdevices)-1].Fstype == nil ||
		*out.Blockdevices[len(out.Blockdevices)-1].Fstype != "LVM2_member" || out.Blockdevices[0].Type != "lvm" {
		t.Errorf("lsblk of a PV = %+v", out)
	}
	// A thin volume in the new pool works as in a pool from AddThinPool.
	if res := simRun(r, []string{"lvcreate", "-V", "1G", "-T", "pve/thinpool", "-n", "vm-100-disk-0"}); res.Code != 0 {
		t.Errorf("thin volume: %+v", res)
	}
}

func TestThinPoolPercentVGReducesData(t *testing.T) {
	h := NewHost("pve1")
	if err := h.AddVG("pve", "/dev/sdb", 1<<30); err != nil { // 255 extents
		t.Fatal(err)
	}
	r := h.Runner()
	res := simRun(r, []string{"lvcreate", "--yes", "--type", "thin-pool", "--extents", "95%VG", "--poolmetadatasize", "64m", "--name", "thinpool", "pve"})
	if res.Code != 0 {
		t.Fatalf("%+v", res)
	}
	lvs, _ := lvm.ParseLVs([]byte(simRun(r, lvm.LVSArgs("pve")).Stdout))
	// 95% is 242 extents; spare and metadata take 32 of 255: 223 remain.
	if len(lvs) != 1 || lvs[0].Size != 223*4<<20 {
		t.Fatalf("lvs = %+v", lvs)
	}

	small := NewHost("pve2")
	if err := small.AddVG("pve", "/dev/sdb", 64<<20); err != nil { // 15 extents
		t.Fatal(err)
	}
	res = simRun(small.Runner(), []string{"lvcreate", "--yes", "--type", "thin-pool", "--extents", "95%VG", "--poolmetadatasize", "64m", "--name", "thinpool", "pve"})
	if res.Code != 5 || !strings.Contains(res.Stderr, `Volume group "pve" has insufficient free space (15 extents): 16 required.`) {
		t.Errorf("%+v", res)
	}
	res = simRun(r, []string{"lvcreate", "--type", "thin-pool", "-L", "10g", "--name", "p2", "pve"})
	if res.Code != 5 || !strings.Contains(res.Stderr, "insufficient free space") {
		t.Errorf("-L too big: %+v", res)
	}
}

func TestDiskRefusals(t *testing.T) {
	h := NewHost("pve1")
	for _, d := range []string{"/dev/vdb", "/dev/nvme0n1"} {
		if err := h.AddDisk(d, 1<<30); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.PartitionDisk("/dev/nvme0n1"); err != nil {
		t.Fatal(err)
	}
	if err := h.MountDisk("/dev/nvme0n1p1", "/boot"); err != nil {
		t.Fatal(err)
	}
	if err := h.MountDisk("/dev/vdb", "/srv"); err != nil {
		t.Fatal(err)
	}
	if err := h.AddDisk("/dev/vdb", 1<<30); err == nil {
		t.Error("AddDisk twice succeeded")
	}
	r := h.Runner()
	out := mustLsblk(t, h, lsblkArgv("/dev/nvme0n1"))
	if len(out.Blockdevices) != 2 || out.Blockdevices[1].Path != "/dev/nvme0n1p1" || *out.Blockdevices[1].Mountpoints[0] != "/boot" {
		t.Errorf("lsblk = %+v", out)
	}
	out = mustLsblk(t, h, lsblkArgv("/dev/vdb"))
	if *out.Blockdevices[0].Fstype != "ext4" || *out.Blockdevices[0].Mountpoints[0] != "/srv" {
		t.Errorf("lsblk = %+v", out)
	}
	for _, d := range []string{"/dev/vdb", "/dev/nvme0n1"} {
		if res := simRun(r, []string{"wipefs", "--all", d}); res.Code != 1 || !strings.Contains(res.Stderr, "Device or resource busy") {
			t.Errorf("wipefs %s = %+v", d, res)
		}
		if res := simRun(r, []string{"pvcreate", d}); res.Code != 5 {
			t.Errorf("pvcreate %s = %+v", d, res)
		}
		if res := simRun(r, []string{"vgcreate", "vg", d}); res.Code != 5 {
			t.Errorf("vgcreate %s = %+v", d, res)
		}
	}
	if res := simRun(r, []string{"pvcreate", "/dev/nope"}); res.Code != 5 || res.Stderr != "  No device found for /dev/nope.\n" {
		t.Errorf("pvcreate of a missing disk = %+v", res)
	}
	if res := simRun(r, []string{"vgs"}); res.Code == 0 {
		t.Errorf("vgs without json succeeded")
	}
}
