package sim

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/pvehci/pvehci/internal/run"
	"github.com/pvehci/pvehci/storage/drbd"
)

func (cl *cluster) setup(host string, args ...string) (run.Result, error) {
	return cl.hosts[host].Runner().Run(context.Background(), run.Command("drbdsetup", args...))
}

// After a verify, invalidate-remote --reset-bitmap=no from the node with
// the good data copies exactly the blocks verify marked, in that
// direction, whichever replica DRBD's handshake would have picked.
func TestInvalidateRemoteAfterVerify(t *testing.T) {
	t.Parallel()
	cl := newCluster(t, drbd.ResourceConfig{Quorum: "majority", VerifyAlg: "crc32c",
		Nodes: []drbd.Node{diskfulNode("pve1", 0), diskfulNode("pve2", 1), diskfulNode("pve3", 2)}})
	cl.upAndSkipSync("pve1", "pve2", "pve3")
	good := bytes.Repeat([]byte("good"), bmBlock/4)
	for _, h := range []string{"pve1", "pve2", "pve3"} {
		cl.lv(h).WriteAt(good, 0)
		cl.lv(h).WriteAt(good, 7*bmBlock)
	}
	// pve3 rots in two blocks; pve3 is the one verified toward.
	cl.lv("pve3").WriteAt([]byte("rot"), 0)
	cl.lv("pve3").WriteAt([]byte("rot"), 7*bmBlock)

	steps := []struct {
		host   string
		args   []string
		code   int
		stderr string
	}{
		{"pve2", []string{"invalidate-remote", resName, "2", "0", "--reset-bitmap=no", "--bogus"}, 20, "not modelled"},
		{"pve2", []string{"invalidate-remote", resName, "2"}, 20, "USAGE"},
		{"pve2", []string{"invalidate-remote", "nope", "2", "0"}, 10, "No such resource"},
		{"pve2", []string{"invalidate-remote", resName, "9", "0"}, 10, "No such peer device"},
	}
	for _, s := range steps {
		res, err := cl.setup(s.host, s.args...)
		if run.ExitCode(err) != s.code || !strings.Contains(string(res.Stderr), s.stderr) {
			t.Errorf("%s drbdsetup %v: %v %q", s.host, s.args, err, res.Stderr)
		}
	}

	cl.mustAdm("pve1", "verify")
	if got := peer(cl.observe("pve1"), 2).PeerDevices[0].OutOfSyncKiB; got != 8 {
		t.Fatalf("verify found %d KiB toward pve3, want 8", got)
	}
	if res, err := cl.setup("pve1", "invalidate-remote", resName, "2", "0", "--reset-bitmap=no"); err != nil {
		t.Fatalf("invalidate-remote: %v %s", err, res.Stderr)
	}
	r := cl.observe("pve1")
	if pd := peer(r, 2).PeerDevices[0]; pd.Replication != drbd.ReplSyncSource || pd.OutOfSyncKiB != 8 {
		t.Errorf("toward pve3 after invalidate-remote: %+v, want SyncSource of the 2 found blocks", pd)
	}
	if pd := peer(r, 1).PeerDevices[0]; pd.Replication != drbd.ReplEstablished {
		t.Errorf("toward pve2: %+v, want untouched", pd)
	}
	if d := cl.observe("pve3").Devices[0]; d.Disk != drbd.DiskInconsistent {
		t.Errorf("pve3 disk %s during the resync, want Inconsistent", d.Disk)
	}
	// A second one while it runs is refused.
	if res, err := cl.setup("pve1", "invalidate-remote", resName, "2", "0", "--reset-bitmap=no"); run.ExitCode(err) != 11 ||
		!strings.Contains(string(res.Stderr), "(-8) Can not start OV/resync since it is already active") {
		t.Errorf("second invalidate-remote: %v %q", err, res.Stderr)
	}
	cl.net.Settle()
	a, b := make([]byte, 8*bmBlock), make([]byte, 8*bmBlock)
	cl.lv("pve1").ReadAt(a, 0)
	cl.lv("pve3").ReadAt(b, 0)
	if !bytes.Equal(a, b) || !bytes.Equal(b[:bmBlock], good) {
		t.Error("pve3 does not hold pve1's data after the resync")
	}
	if d := cl.observe("pve3").Devices[0]; d.Disk != drbd.DiskUpToDate {
		t.Errorf("pve3 disk %s after the resync", d.Disk)
	}
	cl.mustAdm("pve1", "verify")
	if got := peer(cl.observe("pve1"), 2).PeerDevices[0].OutOfSyncKiB; got != 0 {
		t.Errorf("verify after the repair found %d KiB", got)
	}

	// Without a connection there is nothing to resync from.
	cl.net.Cut("pve1", "pve3")
	if res, err := cl.setup("pve1", "invalidate-remote", resName, "2", "0", "--reset-bitmap=no"); run.ExitCode(err) != 11 ||
		!strings.Contains(string(res.Stderr), "(-15) Need a connection to start verify or resync") {
		t.Errorf("invalidate-remote while cut: %v %q", err, res.Stderr)
	}
}
