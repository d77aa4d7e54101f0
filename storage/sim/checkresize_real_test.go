package sim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pvehci/pvehci/internal/validate"
	"github.com/pvehci/pvehci/internal/validate/validatetest"
	"github.com/pvehci/pvehci/storage/drbd"
	"github.com/pvehci/pvehci/storage/lvm"
)

// metaSide is one side of the comparison: real drbd-utils on a loop
// device, or the simulation on a thin LV. Command lines name the device
// "DEV" and the .res "RES"; both sides use minor 1000.
type metaSide interface {
	run(argv ...string) (code int, stdout, stderr string)
	createMD()
	grow(mib int)
	device() string
	// lastKnown is the .lkbd file, "" when there is none; setLastKnown
	// writes one ("" removes it).
	lastKnown() string
	setLastKnown(text string)
}

// realMeta is drbdmeta and drbdadm 9 against a loop device. Every command
// runs in a private mount namespace whose /var/lib/drbd is a directory of
// the test, so the machine's last-known sizes are never read or written.
type realMeta struct {
	t        *testing.T
	img, dev string
	lib, res string
}

func newRealMeta(t *testing.T) *realMeta {
	t.Helper()
	for _, tool := range []struct{ name, pkg string }{{"drbdmeta", "drbd-utils"}, {"drbdadm", "drbd-utils"},
		{"losetup", "util-linux"}, {"unshare", "util-linux"}, {"mount", "mount"}} {
		if _, err := exec.LookPath(tool.name); err != nil {
			validatetest.Environment(t, &validate.ToolMissingError{Tool: tool.name, Package: tool.pkg})
		}
	}
	if uid := os.Geteuid(); uid != 0 {
		validatetest.Environment(t, &validate.NeedRootError{Check: "drbdmeta on a loop device", UID: uid})
	}
	if fi, err := os.Stat(lkbdDir); err != nil || !fi.IsDir() {
		// drbd-utils creates it; it is the mount point of the private one.
		validatetest.Environment(t, &validate.ToolMissingError{Tool: lkbdDir, Package: "drbd-utils"})
	}
	dir := t.TempDir()
	m := &realMeta{t: t, img: filepath.Join(dir, "backing.img"), lib: filepath.Join(dir, "lib"), res: filepath.Join(dir, "r.res")}
	if err := os.Mkdir(m.lib, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(m.img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	m.truncate(8)
	out, err := exec.Command("losetup", "--find", "--show", m.img).Output()
	if err != nil {
		t.Fatalf("losetup: %v", err)
	}
	m.dev = strings.TrimSpace(string(out))
	t.Cleanup(func() {
		if out, err := exec.Command("losetup", "-d", m.dev).CombinedOutput(); err != nil {
			t.Errorf("losetup -d %s: %v %s", m.dev, err, out)
		}
	})
	writeRes(t, m.res, m.dev)
	return m
}

// writeRes renders the two-node resource of the simulation's tests with
// pve1's disk at dev.
func writeRes(t *testing.T, path, dev string) {
	t.Helper()
	cfg := drbd.ResourceConfig{Name: resName, Quorum: "off", Nodes: []drbd.Node{diskfulNode("pve1", 0), diskfulNode("pve2", 1)}}
	cfg.Nodes[0].Volumes[0].Disk = dev
	text, err := drbd.Render(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, text, 0o600); err != nil {
		t.Fatal(err)
	}
}

func (m *realMeta) truncate(mib int) {
	m.t.Helper()
	if err := os.Truncate(m.img, int64(mib)<<20); err != nil {
		m.t.Fatal(err)
	}
}

func (m *realMeta) device() string { return m.dev }

func (m *realMeta) run(argv ...string) (int, string, string) {
	m.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	argv = substitute(argv, m.dev, m.res)
	sh := []string{"-m", "--propagation", "private", "sh", "-c", `mount --bind "$0" ` + lkbdDir + ` && exec "$@"`, m.lib}
	cmd := exec.CommandContext(ctx, "unshare", append(sh, argv...)...)
	cmd.Env = append(os.Environ(), "LC_ALL=C", "__DRBD_NODE__=pve1")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return ee.ExitCode(), out.String(), errb.String()
	case err != nil:
		m.t.Fatalf("%v: %v", argv, err)
	}
	return 0, out.String(), errb.String()
}

func (m *realMeta) createMD() {
	m.t.Helper()
	if code, _, stderr := m.run("drbdmeta", "--force", "1000", "v09", "DEV", "internal", "create-md", "7"); code != 0 {
		m.t.Fatalf("real create-md: %d %s", code, stderr)
	}
}

func (m *realMeta) grow(mib int) {
	m.t.Helper()
	m.truncate(mib)
	if out, err := exec.Command("losetup", "-c", m.dev).CombinedOutput(); err != nil {
		m.t.Fatalf("losetup -c: %v %s", err, out)
	}
}

func (m *realMeta) lastKnown() string {
	data, _ := os.ReadFile(filepath.Join(m.lib, filepath.Base(lkbdFile(1000))))
	return string(data)
}

func (m *realMeta) setLastKnown(text string) {
	m.t.Helper()
	p := filepath.Join(m.lib, filepath.Base(lkbdFile(1000)))
	if text == "" {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			m.t.Fatal(err)
		}
		return
	}
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		m.t.Fatal(err)
	}
}

// simMeta is the simulation, pve1 of a two-node cluster with a root.
type simMeta struct {
	cl  *cluster
	res string
}

func newSimMeta(t *testing.T) *simMeta {
	cl := newCluster(t, drbd.ResourceConfig{Quorum: "off", Nodes: []drbd.Node{diskfulNode("pve1", 0), diskfulNode("pve2", 1)}})
	cl.hosts["pve1"].SetConfigRoot(t.TempDir())
	return &simMeta{cl: cl, res: cl.file}
}

func (s *simMeta) device() string { return lvm.DevicePath("pve", lvm.VolumeLVName(resName, 0)) }

func (s *simMeta) run(argv ...string) (int, string, string) {
	s.cl.t.Helper()
	code, stdout, stderr := s.cl.run("pve1", substitute(argv, s.device(), s.res)...)
	return code, stdout, stderr
}

func (s *simMeta) createMD() { s.cl.mustAdm("pve1", "--max-peers", "7", "--", "--force", "create-md") }

func (s *simMeta) grow(mib int) {
	mustSh(s.cl.t, s.cl.hosts["pve1"].Runner(), fmt.Sprintf("lvextend -L %dM pve/%s", mib, lvm.VolumeLVName(resName, 0)))
}

func (s *simMeta) lastKnown() string { return s.cl.lastKnown("pve1") }

func (s *simMeta) setLastKnown(text string) {
	s.cl.t.Helper()
	p := filepath.Join(s.cl.hosts["pve1"].configRoot(), lkbdFile(1000))
	if text == "" {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.cl.t.Fatal(err)
		}
		return
	}
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		s.cl.t.Fatal(err)
	}
}

func substitute(argv []string, dev, res string) []string {
	out := make([]string, len(argv))
	for i, a := range argv {
		out[i] = strings.NewReplacer("DEV", dev, "RES", res).Replace(a)
	}
	return out
}

// withoutNoise drops the lines real drbdadm adds on this machine: the
// __DRBD_NODE__ notice and its probe for the module.
func withoutNoise(s string) string {
	var keep []string
	for l := range strings.SplitSeq(s, "\n") {
		switch strings.TrimSpace(l) {
		case "", "found __DRBD_NODE__ in environment", "PRETENDING that I am >>pve1<<", "modinfo: ERROR: Module drbd not found.":
			continue
		}
		keep = append(keep, l)
	}
	return strings.Join(keep, "\n")
}

// TestCheckResizeMatchesRealDRBDMeta runs one sequence through real
// drbd-utils 9 on a loop device and through the simulation, and compares
// every exit code, stdout and stderr, and the last-known-size file after
// each step (its device name is each side's own). The cases that matter
// for the satellite: metadata left at the old end after a grow (get-gi
// exits 1 as for none; check-resize moves it), nothing to do, and no
// metadata to be found. What real drbdmeta 9.22 printed here:
//
//	check-resize, no metadata:               rc 1, stderr "no suitable meta data found :("
//	check-resize, metadata at the end:       rc 0, nothing (rc 1, nothing, without the .lkbd)
//	get-gi after a grow:                     rc 1, nothing
//	check-resize after a grow, .lkbd right:  rc 0, stderr "Moving the internal meta data to its proper location",
//	                                         stdout "Internal drbd meta data successfully moved."
//	check-resize after a grow, no .lkbd:     rc 1, "no suitable meta data found :("
//
// and drbdadm check-resize RES/VOL, without the module, answers as
// drbdmeta does (its drbdsetup resize fails silently first).
func TestCheckResizeMatchesRealDRBDMeta(t *testing.T) {
	real := newRealMeta(t)
	sim := newSimMeta(t)
	meta := func(cmd ...string) []string {
		return append([]string{"drbdmeta", "--force", "1000", "v09", "DEV", "internal"}, cmd...)
	}
	checkResize := []string{"drbdmeta", "1000", "v09", "DEV", "internal", "check-resize"}
	admCheckResize := []string{"drbdadm", "-c", "RES", "check-resize", resName + "/0"}
	getGI := meta("get-gi", "--node-id", "0")
	type step struct {
		name  string
		setup func(s metaSide)
		argv  []string
		code  int // real's, which the simulation must match too
	}
	lk := func(mib int) func(s metaSide) {
		return func(s metaSide) { s.setLastKnown(fmt.Sprintf("%d\t%s\n", mib<<20, s.device())) }
	}
	steps := []step{
		{name: "no metadata", argv: checkResize, code: 1},
		{name: "drbdadm, no metadata", argv: admCheckResize, code: 1},
		{name: "fresh metadata, nothing to do", setup: func(s metaSide) { s.createMD() }, argv: checkResize},
		{name: "metadata at the end, no .lkbd", setup: func(s metaSide) { s.setLastKnown("") }, argv: checkResize, code: 1},
		{name: "metadata at the end, .lkbd of another size", setup: lk(4), argv: checkResize},
		{name: "grown: get-gi finds nothing", setup: func(s metaSide) { s.grow(16) }, argv: getGI, code: 1},
		{name: "grown: forget-peer finds nothing", argv: meta("forget-peer", "--node-id", "1"), code: 1},
		{name: "grown: wipe-md finds nothing", argv: meta("wipe-md")},
		{name: "grown: check-resize moves the metadata", argv: checkResize},
		{name: "moved: get-gi finds it", argv: getGI},
		{name: "moved: nothing to do", argv: checkResize},
		{name: "grown again, drbdadm moves it", setup: func(s metaSide) { s.grow(24) }, argv: admCheckResize},
		{name: "grown again, no .lkbd", setup: func(s metaSide) { s.grow(32); s.setLastKnown("") }, argv: checkResize, code: 1},
		{name: "grown, .lkbd names a size where nothing is", setup: lk(16), argv: checkResize, code: 1},
		{name: "grown, .lkbd unreadable", setup: func(s metaSide) { s.setLastKnown("garbage\n") }, argv: checkResize, code: 1},
		{name: "grown, .lkbd bigger than the device", setup: lk(64), argv: checkResize, code: 1},
		{name: "grown, .lkbd right", setup: lk(24), argv: checkResize},
		{name: "wipe-md", argv: meta("wipe-md")},
		{name: "wiped: nothing to move", argv: checkResize, code: 1},
	}
	for _, st := range steps {
		var got [2][4]string
		for i, side := range []metaSide{real, sim} {
			if st.setup != nil {
				st.setup(side)
			}
			code, stdout, stderr := side.run(st.argv...)
			lkbd := strings.ReplaceAll(side.lastKnown(), side.device(), "DEV")
			got[i] = [4]string{fmt.Sprint(code), stdout, withoutNoise(stderr), lkbd}
		}
		if got[0][0] != fmt.Sprint(st.code) {
			t.Errorf("%s: real %v exited %s, want %d (stderr %q)", st.name, st.argv, got[0][0], st.code, got[0][2])
		}
		for j, what := range []string{"exit code", "stdout", "stderr", ".lkbd"} {
			if got[0][j] != got[1][j] {
				t.Errorf("%s: %s: real %q, simulation %q", st.name, what, got[0][j], got[1][j])
			}
		}
	}
}
