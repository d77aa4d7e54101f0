package sim

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pvehci/pvehci/internal/run"
	"github.com/pvehci/pvehci/storage/drbd"
)

// writeUnder writes text to the host path p under root.
func writeUnder(t *testing.T, root, p, text string) {
	t.Helper()
	full := filepath.Join(root, p)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(full, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestDRBDAdmDefaultConfig runs drbdadm without -c, as the satellite does
// on a real node, against a host whose file system root holds the Debian
// layout: /etc/drbd.conf includes drbd.d/*.res, one of which includes
// pvehci's rendered resources.
func TestDRBDAdmDefaultConfig(t *testing.T) {
	t.Parallel()
	cfg := drbd.ResourceConfig{Name: resName, Quorum: "majority", Nodes: []drbd.Node{diskfulNode("pve1", 0), diskfulNode("pve2", 1)}}
	text, err := drbd.Render(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// A second resource in the same directory: the name argument picks one.
	other := cfg
	other.Name = "vm-101-disk-1"
	other.Nodes = []drbd.Node{diskfulNode("pve1", 0), diskfulNode("pve2", 1)}
	for i := range other.Nodes {
		other.Nodes[i].Volumes[0].Minor, other.Nodes[i].Volumes[0].Disk = 1001, "/dev/pve/vm-101-disk-1_00000"
	}
	otherText, err := drbd.Render(other)
	if err != nil {
		t.Fatal(err)
	}

	root := t.TempDir()
	writeUnder(t, root, "etc/drbd.conf", "# /etc/drbd.conf as drbd-utils installs it\ninclude \"drbd.d/global_common.conf\";\ninclude \"drbd.d/*.res\";\n")
	writeUnder(t, root, "etc/drbd.d/global_common.conf", "global { usage-count no; }\ncommon { net { protocol C; } }\n")
	writeUnder(t, root, "etc/drbd.d/pvehci.res", "include \"/var/lib/pvehci/drbd.d/*.res\";\n")
	writeUnder(t, root, "var/lib/pvehci/drbd.d/"+resName+".res", string(text))
	writeUnder(t, root, "var/lib/pvehci/drbd.d/vm-101-disk-1.res", string(otherText))

	n := NewNetwork()
	hosts := map[string]*Host{}
	for _, name := range []string{"pve1", "pve2"} {
		h := newLVMHost(t)
		h.name = name
		h.SetConfigRoot(root)
		n.Attach(h)
		hosts[name] = h
		mustSh(t, h.Runner(), "lvcreate -V 8M -T pve/data -n "+resName+"_00000 --addtag pvehci")
	}
	// The satellite's command lines (storage/satellite/apply.go).
	for _, name := range []string{"pve1", "pve2"} {
		r := hosts[name].Runner()
		mustSh(t, r, "drbdadm -vvv --max-peers 7 -- --force create-md "+resName+"/0")
		mustSh(t, r, "drbdadm -vvv adjust "+resName)
	}
	mustSh(t, hosts["pve1"].Runner(), "drbdadm new-current-uuid --clear-bitmap "+resName)
	out := mustSh(t, hosts["pve2"].Runner(), "drbdsetup events2 --now "+resName)
	if !strings.Contains(out, "exists connection name:"+resName+" peer-node-id:0 conn-name:pve1 connection:Connected") ||
		!strings.Contains(out, "disk:UpToDate") {
		t.Errorf("after adjust without -c:\n%s", out)
	}

	steps := []struct {
		root, line string
		code       int
		out        string
	}{
		// The other resource is found too; its LV does not exist.
		{root, "drbdadm -- --force create-md vm-101-disk-1", 20, "open(/dev/pve/vm-101-disk-1_00000) failed"},
		{root, "drbdadm adjust nosuch", 1, "'nosuch' not defined in your config (for this host)."},
		// Real drbdadm without /etc/drbd.conf (checked in a mount namespace).
		{t.TempDir(), "drbdadm adjust " + resName, 10, "Can not open '/etc/drbd.conf': No such file or directory\n"},
	}
	// A glob that matches nothing is no error; the resource is just not there.
	empty := t.TempDir()
	writeUnder(t, empty, "etc/drbd.conf", "include \"drbd.d/*.res\";\ninclude \"/var/lib/pvehci/drbd.d/*.res\";\n")
	steps = append(steps, struct {
		root, line string
		code       int
		out        string
	}{empty, "drbdadm adjust " + resName, 1, "'" + resName + "' not defined in your config (for this host)."})
	// A plain include that does not exist fails, with the host's path.
	broken := t.TempDir()
	writeUnder(t, broken, "etc/drbd.conf", "global { usage-count no; }\ninclude \"/etc/drbd.d/missing.res\";\n")
	steps = append(steps, struct {
		root, line string
		code       int
		out        string
	}{broken, "drbdadm adjust " + resName, 10, "/etc/drbd.conf:2: Failed to open include file '/etc/drbd.d/missing.res'.\n"})

	h := hosts["pve1"]
	for _, s := range steps {
		h.SetConfigRoot(s.root)
		w := strings.Fields(s.line)
		res, err := h.Runner().Run(context.Background(), run.Command(w[0], w[1:]...))
		if res.ExitCode != s.code || run.ExitCode(err) != s.code {
			t.Errorf("%s: exit %d (%v), want %d", s.line, res.ExitCode, err, s.code)
		}
		if got := string(res.Stdout) + string(res.Stderr); !strings.Contains(got, s.out) {
			t.Errorf("%s: output %q, want %q", s.line, got, s.out)
		}
	}
}

// TestDRBDMeta follows the satellite's metadata probe and wipe
// (storage/satellite observe.go probeMD, apply.go WipeMD). The real
// drbdmeta 9 on this machine, on a file (so each run also prints
// "ioctl(md_fd, BLKSSZGET) returned -1, assuming hard_sect_size is 512 Byte"
// to stderr, which a block device does not):
//
//	$ truncate -s 64M f; drbdmeta --force 0 v09 f internal get-gi --node-id 0; echo $?
//	1                                   (nothing on stdout)
//	$ echo yes | drbdmeta --force 0 v09 f internal create-md 2
//	$ drbdmeta --force 0 v09 f internal get-gi --node-id 0; echo $?   (same for --node-id 1, 2)
//	0000000000000004:0000000000000000:0000000000000000:0000000000000000:0:0:0:0:1:0:0:0:0:0:0:0
//	0
//	$ drbdmeta --force 0 v09 f internal wipe-md; echo $?
//	Wiping meta data...
//	DRBD meta data block successfully wiped out.   (stderr: "Do you really want to wipe out the
//	0                                               DRBD meta data?" and "*** confirmation forced via --force option ***")
//	$ drbdmeta --force 0 v09 f internal wipe-md; echo $?
//	0                                   (stderr: "There appears to be no drbd meta data to wipe out?")
//	$ drbdmeta --force 0 v09 /dev/nosuch/lv internal get-gi --node-id 0; echo $?   (and wipe-md)
//	open(/dev/nosuch/lv) failed: No such file or directory
//	20
func TestDRBDMeta(t *testing.T) {
	t.Parallel()
	cl := newCluster(t, drbd.ResourceConfig{Quorum: "off", Nodes: []drbd.Node{diskfulNode("pve1", 0), diskfulNode("pve2", 1)}})
	dev := "/dev/pve/" + resName + "_00000"
	getGI := "drbdmeta --force 1000 v09 " + dev + " internal get-gi --node-id 0"
	wipe := "drbdmeta --force 1000 v09 " + dev + " internal wipe-md"
	const fresh = "0000000000000004:0000000000000000:0000000000000000:0000000000000000:0:0:0:0:1:0:0:0:0:0:0:0\n"
	check := func(host, line string, code int, stdout, stderr string) {
		t.Helper()
		w := strings.Fields(line)
		res, err := cl.hosts[host].Runner().Run(context.Background(), run.Command(w[0], w[1:]...))
		if res.ExitCode != code || run.ExitCode(err) != code {
			t.Errorf("%s: %s: exit %d (%v), want %d", host, line, res.ExitCode, err, code)
		}
		if string(res.Stdout) != stdout && !(stdout == "*" && len(res.Stdout) > 0) {
			t.Errorf("%s: %s: stdout %q, want %q", host, line, res.Stdout, stdout)
		}
		if !strings.Contains(string(res.Stderr), stderr) {
			t.Errorf("%s: %s: stderr %q, want %q", host, line, res.Stderr, stderr)
		}
	}

	check("pve1", getGI, 1, "", "")
	check("pve1", "drbdmeta --force 1000 v09 /dev/pve/nosuch internal get-gi --node-id 0", 20, "",
		"open(/dev/pve/nosuch) failed: No such file or directory\n")
	check("pve1", "drbdmeta --force 1000 v09 /dev/pve/nosuch internal wipe-md", 20, "",
		"open(/dev/pve/nosuch) failed: No such file or directory\n")
	check("pve1", "drbdmeta 1000 v09 "+dev+" internal wipe-md", 20, "", "not modelled")
	check("pve1", "drbdmeta --force 1000 v09 "+dev+" internal create-md 2", 20, "", "not modelled")

	cl.upAndSkipSync("pve1", "pve2")
	// Attached: drbdmeta leaves the device alone.
	check("pve1", getGI, 20, "", "Device '1000' is configured!")
	check("pve2", "drbdsetup down "+resName, 0, "", "")
	check("pve2", "drbdsetup down "+resName, 0, "", "") // not up: succeeds
	if out := mustSh(t, cl.hosts["pve2"].Runner(), "drbdsetup events2 --now"); out != "exists -\n" {
		t.Errorf("events2 after drbdsetup down = %q", out)
	}
	// UpToDate metadata with a generation: consistent and was-up-to-date.
	res, err := sh(t, cl.hosts["pve2"].Runner(), getGI)
	if err != nil || len(res.Stdout) != len(fresh) || !strings.HasSuffix(string(res.Stdout), ":1:1:0:0:1:0:0:0:0:0:0:0\n") ||
		strings.HasPrefix(string(res.Stdout), "0000000000000004:") {
		t.Errorf("get-gi on UpToDate metadata: %v %q", err, res.Stdout)
	}

	check("pve2", wipe, 0, "Wiping meta data...\nDRBD meta data block successfully wiped out.\n",
		"*** confirmation forced via --force option ***\n")
	check("pve2", getGI, 1, "", "")
	check("pve2", wipe, 0, "", "There appears to be no drbd meta data to wipe out?\n")
	if res, err := cl.adm("pve2", "adjust"); run.ExitCode(err) != 10 || !strings.Contains(string(res.Stderr), "No valid meta data found") {
		t.Errorf("adjust after wipe-md: %v %s", err, res.Stderr)
	}

	// Fresh metadata, then the LV is removed and created again under the
	// same name: the new LV has none.
	cl.mustAdm("pve2", "--", "--force", "create-md")
	check("pve2", getGI, 0, fresh, "")
	mustSh(t, cl.hosts["pve2"].Runner(), "lvremove -f pve/"+resName+"_00000")
	mustSh(t, cl.hosts["pve2"].Runner(), "lvcreate -V 8M -T pve/data -n "+resName+"_00000")
	check("pve2", getGI, 1, "", "")

	// drbdmeta needs no module: a host outside any Network answers.
	lone := newLVMHost(t)
	mustSh(t, lone.Runner(), "lvcreate -V 8M -T pve/data -n "+resName+"_00000")
	if res, err := sh(t, lone.Runner(), getGI); run.ExitCode(err) != 1 || len(res.Stdout) != 0 {
		t.Errorf("get-gi without a module: %v %q", err, res.Stdout)
	}
}

// TestSnapshotCarriesDRBDMetadata: internal metadata lives in the LV's last
// blocks, so a thin snapshot holds the origin's metadata as it was when the
// snapshot was taken, a rename keeps it, and drbdmeta forget-peer clears
// one peer's bitmap slot (the answers for a free slot and a bad node id are
// real drbdmeta's on a loop file).
func TestSnapshotCarriesDRBDMetadata(t *testing.T) {
	t.Parallel()
	cl := newCluster(t, drbd.ResourceConfig{Quorum: "off", Nodes: []drbd.Node{diskfulNode("pve1", 0), diskfulNode("pve2", 1)}})
	cl.upAndSkipSync("pve1", "pve2")
	r := cl.hosts["pve2"].Runner()
	lv := "pve/" + resName + "_00000"
	gi := func(dev string, id int) string {
		t.Helper()
		return strings.TrimSpace(mustSh(t, r, fmt.Sprintf("drbdmeta --force 1000 v09 /dev/%s internal get-gi --node-id %d", dev, id)))
	}
	mustSh(t, r, "drbdsetup down "+resName)
	// pve1 goes on alone: its peer pve2 is gone, so its generation moves
	// on when it is promoted, and pve2's metadata stays as it was.
	origin := gi(lv, 0)
	mustSh(t, r, "lvcreate -s -kn -n snap --addtag pvehci "+lv)
	if got := gi("pve/snap", 0); got != origin {
		t.Fatalf("snapshot metadata %s, origin's %s", got, origin)
	}
	mustSh(t, r, "lvrename pve/snap pve/restored")
	if got := gi("pve/restored", 0); got != origin {
		t.Fatalf("renamed snapshot metadata %s, want %s", got, origin)
	}
	if res, err := sh(t, r, "lvs --reportformat json --units b --nosuffix -o lv_name,origin pve/restored"); err != nil || !strings.Contains(string(res.Stdout), `"origin":"`+resName+`_00000"`) {
		t.Errorf("renamed snapshot's origin: %v %s", err, res.Stdout)
	}

	// The snapshot is a copy: wiping the origin's metadata leaves it.
	mustSh(t, r, "drbdmeta --force 1000 v09 /dev/"+lv+" internal wipe-md")
	if got := gi("pve/restored", 0); got != origin {
		t.Errorf("snapshot metadata after the origin's wipe-md: %s, want %s", got, origin)
	}

	forget := "drbdmeta --force 1000 v09 /dev/pve/restored internal forget-peer --node-id "
	res, err := sh(t, r, forget+"5")
	if err != nil || len(res.Stdout) != 0 || !strings.Contains(string(res.Stderr), "Copying bitmap slot -1 to -1 not implemented.") {
		t.Errorf("forget-peer of a free slot: %v %q %q", err, res.Stdout, res.Stderr)
	}
	if res, err := sh(t, r, forget+"40"); run.ExitCode(err) != 10 || string(res.Stderr) != "node-id out of range (0...31)\n" {
		t.Errorf("forget-peer --node-id 40: %v %q", err, res.Stderr)
	}
	if res, err := sh(t, r, "drbdmeta --force 1000 v09 /dev/"+lv+" internal forget-peer --node-id 0"); run.ExitCode(err) != 1 || len(res.Stderr) != 0 {
		t.Errorf("forget-peer without metadata: %v %q", err, res.Stderr)
	}
}

// TestForgetPeerClearsBitmapSlot: a peer that missed writes has a bitmap
// UUID and out-of-sync blocks in the survivor's metadata; forget-peer drops
// both, so a new peer given that node id later is not mistaken for it.
func TestForgetPeerClearsBitmapSlot(t *testing.T) {
	t.Parallel()
	cl := newCluster(t, drbd.ResourceConfig{Quorum: "off", Nodes: []drbd.Node{diskfulNode("pve1", 0), diskfulNode("pve2", 1)}})
	cl.upAndSkipSync("pve1", "pve2")
	r := cl.hosts["pve1"].Runner()
	mustSh(t, cl.hosts["pve2"].Runner(), "drbdsetup down "+resName)
	cl.mustAdm("pve1", "primary")
	cl.mustAdm("pve1", "secondary")
	mustSh(t, r, "drbdsetup down "+resName)
	gi := func() []string {
		return strings.Split(strings.TrimSpace(mustSh(t, r, "drbdmeta --force 1000 v09 /dev/pve/"+resName+"_00000 internal get-gi --node-id 1")), ":")
	}
	if before := gi(); before[1] == "0000000000000000" {
		t.Fatalf("no bitmap UUID toward the peer that missed the promotion: %v", before)
	}
	mustSh(t, r, "drbdmeta --force 1000 v09 /dev/pve/"+resName+"_00000 internal forget-peer --node-id 1")
	if after := gi(); after[1] != "0000000000000000" {
		t.Errorf("bitmap UUID after forget-peer: %v", after)
	}
}
