package sim

import (
	"bytes"
	"errors"
	"strings"
	"syscall"
	"testing"

	"github.com/pvehci/pvehci/internal/run"
	"github.com/pvehci/pvehci/storage/drbd"
)

// TestFailDisk: a dead disk under a Secondary's replica. DRBD detaches it
// (on-io-error detach): Diskless but not a client; the Primary's writes go
// on and reach the other peer; reads on the failed node come from a peer;
// the disk cannot be attached again.
func TestFailDisk(t *testing.T) {
	t.Parallel()
	cl := newCluster(t, threeNodes("io-error"))
	cl.upAndSkipSync("pve1", "pve2", "pve3")
	dev, err := cl.hosts["pve1"].OpenDRBD("/dev/drbd1000", true)
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	before := bytes.Repeat([]byte{0xa5}, 4096)
	if _, err := dev.WriteAt(before, 0); err != nil {
		t.Fatal(err)
	}

	if err := cl.hosts["pve2"].FailDisk("/dev/sdb"); err != nil {
		t.Fatal(err)
	}
	if err := cl.hosts["pve2"].FailDisk("/dev/nope"); err == nil {
		t.Error("failing a disk that does not exist succeeded")
	}
	r := cl.observe("pve2")
	if r.Devices[0].Disk != drbd.DiskDiskless || r.Devices[0].Client {
		t.Fatalf("pve2 after its disk failed: %+v, want Diskless, not a client", r.Devices[0])
	}
	if got := cl.observe("pve1"); peer(got, 1).PeerDevices[0].PeerDisk != drbd.DiskDiskless {
		t.Errorf("pve1 sees pve2's disk as %s", peer(got, 1).PeerDevices[0].PeerDisk)
	}
	after := bytes.Repeat([]byte{0x5a}, 4096)
	if _, err := dev.WriteAt(after, 4096); err != nil {
		t.Fatalf("write on the Primary after a peer's disk failed: %v", err)
	}
	// pve2 reads through its peers.
	r2, err := cl.hosts["pve2"].OpenDRBD("/dev/drbd1000", false)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	if _, err := r2.ReadAt(buf, 4096); err != nil || !bytes.Equal(buf, after) {
		t.Errorf("read on pve2 through a peer: %v", err)
	}
	r2.Close()
	// The LV itself fails, and DRBD cannot attach it again.
	if _, err := cl.lv("pve2").ReadAt(buf, 0); !errors.Is(err, syscall.EIO) {
		t.Errorf("read of the failed LV: %v, want EIO", err)
	}
	res, err := cl.adm("pve2", "adjust")
	if run.ExitCode(err) != drbdKernelFailure || !strings.Contains(string(res.Stderr), "(104) Can not open backing device") {
		t.Errorf("adjust after the disk failed: %v %s", err, res.Stderr)
	}
}
