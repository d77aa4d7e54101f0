package sim

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pvehci/pvehci/internal/run"
	"github.com/pvehci/pvehci/storage/drbd"
	"github.com/pvehci/pvehci/storage/lvm"
)

// checkResizeCluster is two diskful nodes up with a skipped initial sync,
// each with a file system root (so /var/lib/drbd exists) when roots is
// set, and blocks of data written through pve1.
func checkResizeCluster(t *testing.T, roots bool) *cluster {
	t.Helper()
	cl := newCluster(t, drbd.ResourceConfig{Quorum: "off", Nodes: []drbd.Node{diskfulNode("pve1", 0), diskfulNode("pve2", 1)}})
	if roots {
		for _, h := range cl.hosts {
			h.SetConfigRoot(t.TempDir())
		}
	}
	cl.upAndSkipSync("pve1", "pve2")
	cl.writeBlocks("pve1", 64, 3)
	return cl
}

// run runs argv on host and returns its exit code and output.
func (cl *cluster) run(host string, argv ...string) (code int, stdout, stderr string) {
	cl.t.Helper()
	res, err := cl.hosts[host].Runner().Run(cl.t.Context(), run.Command(argv[0], argv[1:]...))
	if code := run.ExitCode(err); code != res.ExitCode {
		cl.t.Fatalf("%v: exit code %d, error %v", argv, res.ExitCode, err)
	}
	return res.ExitCode, string(res.Stdout), string(res.Stderr)
}

func (cl *cluster) lastKnown(host string) string {
	cl.t.Helper()
	data, err := os.ReadFile(filepath.Join(cl.hosts[host].configRoot(), lkbdFile(1000)))
	if err != nil {
		return ""
	}
	return string(data)
}

// TestCheckResizeMovesMetadata follows a node that crashed after its LV
// was extended for a grow and before the resize (drbdadm(8) and
// drbdmeta(8) "check-resize"): the metadata is at the end of the old size,
// so get-gi and attach do not find it; check-resize moves it using the
// last-known size that the attach recorded, with real drbdmeta's messages,
// and the node comes back with its generation: no resync, data intact.
func TestCheckResizeMovesMetadata(t *testing.T) {
	t.Parallel()
	cl := checkResizeCluster(t, true)
	dev := lvm.DevicePath("pve", lvm.VolumeLVName(resName, 0))
	lk8M := "8388608\t" + dev + "\n"
	if got := cl.lastKnown("pve2"); got != lk8M {
		t.Fatalf("last-known size after attach: %q, want %q", got, lk8M)
	}
	getGI := []string{"drbdmeta", "--force", "1000", "v09", dev, "internal", "get-gi", "--node-id", "0"}
	meta := []string{"drbdmeta", "1000", "v09", dev, "internal", "check-resize"}
	adm := []string{"drbdadm", "-c", cl.file, "-vvv", "check-resize", resName + "/0"}

	cl.mustAdm("pve2", "down")
	_, gi, _ := cl.run("pve2", getGI...)
	if code, _, stderr := cl.run("pve2", meta...); code != 0 || stderr != "" {
		t.Fatalf("check-resize with nothing to do: %d %q", code, stderr)
	}
	cl.growLV("pve2", "16M")
	if code, stdout, _ := cl.run("pve2", getGI...); code != 1 || stdout != "" {
		t.Fatalf("get-gi after the grow: %d %q, want 1 and nothing", code, stdout)
	}
	for _, c := range []string{"forget-peer --node-id 1", "wipe-md"} {
		argv := append([]string{"drbdmeta", "--force", "1000", "v09", dev, "internal"}, strings.Fields(c)...)
		code, _, stderr := cl.run("pve2", argv...)
		if c == "wipe-md" && (code != 0 || stderr != "There appears to be no drbd meta data to wipe out?\n") || c != "wipe-md" && code != 1 {
			t.Errorf("%s with the metadata at its old place: %d %q", c, code, stderr)
		}
	}
	if got := cl.lastKnown("pve2"); got != lk8M {
		t.Fatalf("last-known size after failed lookups: %q, want %q", got, lk8M)
	}

	code, stdout, stderr := cl.run("pve2", adm...)
	if code != 0 || stdout != "Internal drbd meta data successfully moved.\n" || stderr != "Moving the internal meta data to its proper location\n" {
		t.Fatalf("drbdadm check-resize: %d %q %q", code, stdout, stderr)
	}
	if got, want := cl.lastKnown("pve2"), "16777216\t"+dev+"\n"; got != want {
		t.Errorf("last-known size after the move: %q, want %q", got, want)
	}
	if code, stdout, stderr := cl.run("pve2", adm...); code != 0 || stdout != "" || stderr != "" {
		t.Errorf("second check-resize: %d %q %q, want 0 and nothing", code, stdout, stderr)
	}
	if _, after, _ := cl.run("pve2", getGI...); after != gi {
		t.Errorf("generation after the move: %q, want %q", after, gi)
	}

	cl.mustAdm("pve2", "adjust")
	cl.net.Settle()
	b := cl.observe("pve2")
	if b.Devices[0].Disk != drbd.DiskUpToDate || peer(b, 0).PeerDevices[0].Replication != drbd.ReplEstablished || peer(b, 0).PeerDevices[0].ReceivedKiB != 0 {
		t.Fatalf("pve2 after check-resize and adjust: %+v %+v", b.Devices[0], peer(b, 0).PeerDevices[0])
	}
	a := cl.lv("pve1")
	x, y := make([]byte, bmBlock), make([]byte, bmBlock)
	for off := int64(0); off < a.Size(); off += bmBlock {
		a.ReadAt(x, off)
		cl.lv("pve2").ReadAt(y, off)
		if !bytes.Equal(x, y) {
			t.Fatalf("block %d differs after the move", off/bmBlock)
		}
	}
}

// TestAttachAfterOfflineGrow: `drbdadm adjust` runs drbdmeta apply-al
// before the attach, which moves the metadata itself when the last-known
// size says where it is (real drbdadm attach on this machine printed the
// same two lines); without that file nothing finds the metadata:
// attach fails and check-resize has "no suitable meta data found :(".
func TestAttachAfterOfflineGrow(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		roots bool
	}{{"with /var/lib/drbd", true}, {"without it", false}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cl := checkResizeCluster(t, tc.roots)
			cl.mustAdm("pve2", "down")
			cl.growLV("pve2", "16M")
			res, err := cl.adm("pve2", "adjust")
			if !tc.roots {
				if run.ExitCode(err) != 10 || !strings.Contains(string(res.Stderr), "No valid meta data found") {
					t.Fatalf("adjust without a last-known size: %v %q", err, res.Stderr)
				}
				code, stdout, stderr := cl.run("pve2", "drbdadm", "-c", cl.file, "check-resize", resName)
				if code != 1 || stdout != "" || stderr != "no suitable meta data found :(\n" {
					t.Fatalf("check-resize without a last-known size: %d %q %q", code, stdout, stderr)
				}
				return
			}
			if err != nil || string(res.Stdout) != "Internal drbd meta data successfully moved.\n" ||
				!strings.Contains(string(res.Stderr), "Moving the internal meta data to its proper location\n") {
				t.Fatalf("adjust: %v %q %q", err, res.Stdout, res.Stderr)
			}
			cl.net.Settle()
			if b := cl.observe("pve2"); b.Devices[0].Disk != drbd.DiskUpToDate || peer(b, 0).PeerDevices[0].ReceivedKiB != 0 {
				t.Fatalf("pve2 after adjust: %+v %+v", b.Devices[0], peer(b, 0).PeerDevices[0])
			}
		})
	}
}

// TestResizeRelaysMetadata: an LV grown while attached keeps its metadata
// at the old end until drbdadm resize, which lays it out for the grown LV
// on every connected diskful node; the node that ran it records the size.
// check-resize of an attached volume is an online resize (drbdadm runs
// drbdsetup resize), refused like one during a resync.
func TestResizeRelaysMetadata(t *testing.T) {
	t.Parallel()
	cl := checkResizeCluster(t, true)
	dev := lvm.DevicePath("pve", lvm.VolumeLVName(resName, 0))
	getGI := []string{"drbdmeta", "--force", "1000", "v09", dev, "internal", "get-gi", "--node-id", "0"}
	cl.growLV("pve1", "16M")
	cl.growLV("pve2", "16M")

	// The control: taken down before a resize, a grown LV has its
	// metadata at the old end.
	control := newCluster(t, drbd.ResourceConfig{Quorum: "off", Nodes: []drbd.Node{diskfulNode("pve1", 0), diskfulNode("pve2", 1)}})
	control.upAndSkipSync("pve1", "pve2")
	control.growLV("pve1", "16M")
	control.mustAdm("pve1", "down")
	if code, _, _ := control.run("pve1", getGI...); code != 1 {
		t.Fatalf("get-gi after a grow while attached and down without resize: %d, want 1", code)
	}

	code, stdout, stderr := cl.run("pve1", "drbdadm", "-c", cl.file, "check-resize", resName+"/0")
	if code != 0 || stdout != "" || stderr != "" {
		t.Fatalf("check-resize while attached: %d %q %q", code, stdout, stderr)
	}
	grown := usableSize(16<<20, 7) / 1024
	for _, h := range []string{"pve1", "pve2"} {
		if got := cl.sizeKiB(h); got != grown {
			t.Errorf("%s: %d KiB after check-resize of an attached volume, want %d", h, got, grown)
		}
	}
	if got, want := cl.lastKnown("pve1"), "16777216\t"+dev+"\n"; got != want {
		t.Errorf("pve1's last-known size: %q, want %q", got, want)
	}
	if got, want := cl.lastKnown("pve2"), "8388608\t"+dev+"\n"; got != want {
		t.Errorf("pve2's last-known size (drbdadm did not run there): %q, want %q", got, want)
	}
	// The new area is being synchronized: a second one is refused.
	cl.growLV("pve1", "24M")
	if code, _, stderr := cl.run("pve1", "drbdadm", "-c", cl.file, "check-resize", resName+"/0"); code != 20 || stderr != "Device '1000' is configured!\n" {
		t.Errorf("check-resize during a resync: %d %q", code, stderr)
	}
	cl.net.Settle()
	for _, h := range []string{"pve1", "pve2"} {
		cl.mustAdm(h, "down")
	}
	if code, _, _ := cl.run("pve2", getGI...); code != 0 {
		t.Errorf("pve2's get-gi after the resize: %d, want 0 (the metadata moved with the resize)", code)
	}
	if code, _, _ := cl.run("pve1", getGI...); code != 1 {
		t.Errorf("pve1's get-gi after its LV grew again: %d, want 1", code)
	}
}
