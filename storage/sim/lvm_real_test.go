package sim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pvehci/pvehci/internal/run"
	"github.com/pvehci/pvehci/internal/validate"
	"github.com/pvehci/pvehci/internal/validate/validatetest"
	"github.com/pvehci/pvehci/storage/lvm"
)

// realLVM runs the real lvm2 against a VG on a loop device, with an
// isolated LVM_SYSTEM_DIR, as storage/lvm's test does. Without
// device-mapper only metadata operations work (shared research
// testbed-local.md §5), so every real command gets --driverloaded n and
// the LV is linear; the comparisons are about output shape and messages,
// which do not depend on the LV type.
type realLVM struct {
	t    *testing.T
	env  []string
	loop string
}

func newRealLVM(t *testing.T) *realLVM {
	t.Helper()
	for _, tool := range []string{"losetup", "pvcreate", "vgcreate", "lvcreate", "lvs", "vgremove", "pvremove"} {
		if _, err := exec.LookPath(tool); err != nil {
			validatetest.Environment(t, &validate.ToolMissingError{Tool: tool, Package: "lvm2"})
		}
	}
	if uid := os.Geteuid(); uid != 0 {
		validatetest.Environment(t, &validate.NeedRootError{Check: "lvm2 on a loop device", UID: uid})
	}
	dir := t.TempDir()
	img := filepath.Join(dir, "pv.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 64<<20); err != nil {
		t.Fatal(err)
	}
	l := &realLVM{t: t}
	res := l.run("losetup", "--find", "--show", img)
	if res.code != 0 {
		t.Fatalf("losetup: %s", res.stderr)
	}
	l.loop = strings.TrimSpace(res.stdout)
	t.Cleanup(func() { l.run("losetup", "-d", l.loop) })
	etc := filepath.Join(dir, "etc")
	for _, d := range []string{etc, filepath.Join(dir, "backup"), filepath.Join(dir, "archive"), filepath.Join(dir, "lock")} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	conf := fmt.Sprintf(`devices { obtain_device_list_from_udev=0 use_devicesfile=0 filter=["a|^%s$|","r|.*|"] }
activation { udev_sync=0 udev_rules=0 monitoring=0 }
backup { backup=1 backup_dir=%q archive=1 archive_dir=%q }
global { locking_dir=%q }
`, l.loop, filepath.Join(dir, "backup"), filepath.Join(dir, "archive"), filepath.Join(dir, "lock"))
	if err := os.WriteFile(filepath.Join(etc, "lvm.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	l.env = append(os.Environ(), "LVM_SYSTEM_DIR="+etc, "LVM_SUPPRESS_FD_WARNINGS=1", "LC_ALL=C")
	return l
}

type cmdResult struct {
	stdout, stderr string
	code           int
}

func (l *realLVM) run(argv ...string) cmdResult {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = l.env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		l.t.Fatalf("%v: %v", argv, err)
	}
	return cmdResult{out.String(), errb.String(), code}
}

// metadataOnly inserts --driverloaded n after the program name of an lvm
// command that changes metadata.
func metadataOnly(argv []string) []string {
	switch argv[0] {
	case "lvcreate", "lvremove", "lvextend", "lvchange", "vgremove":
		return append([]string{argv[0], "--driverloaded", "n"}, argv[1:]...)
	}
	return argv
}

func simRun(r run.Runner, argv []string) cmdResult {
	res, _ := r.Run(context.Background(), run.Command(argv[0], argv[1:]...))
	return cmdResult{string(res.Stdout), string(res.Stderr), res.ExitCode}
}

// lines returns the non-empty trimmed lines of s.
func lines(s string) []string {
	var out []string
	for l := range strings.SplitSeq(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

var reportValue = regexp.MustCompile(`"([a-z_]+)":"[^"]*"`)

// TestReportShapeMatchesRealLVM compares the simulation's lvs/vgs/pvs
// JSON with real lvm2 output, and its messages and exit codes with real
// lvm2's for the same command lines.
func TestReportShapeMatchesRealLVM(t *testing.T) {
	l := newRealLVM(t)
	vg := fmt.Sprintf("pvehcisim%d", os.Getpid())
	for _, argv := range [][]string{{"pvcreate", "-y", l.loop}, {"vgcreate", vg, l.loop}} {
		if res := l.run(argv...); res.code != 0 {
			t.Fatalf("%v: %s", argv, res.stderr)
		}
	}
	t.Cleanup(func() {
		l.run("vgremove", "--driverloaded", "n", "-f", vg)
		l.run("pvremove", "-y", l.loop)
	})

	h := NewHost("pve1")
	// The same VG: the loop device is 64 MiB, as in newRealLVM.
	if err := h.AddVG(vg, l.loop, 64<<20); err != nil {
		t.Fatal(err)
	}
	r := h.Runner()

	// An empty VG reports byte for byte the same.
	for _, argv := range [][]string{lvm.LVSArgs(vg), lvm.VGSArgs(vg), lvm.PVSArgs(l.loop)} {
		real, sim := l.run(argv...), simRun(r, argv)
		if real.code != 0 || sim != (cmdResult{real.stdout, "", 0}) {
			t.Errorf("%s:\nreal (%d) %q\nsim  (%d) %q %q", strings.Join(argv, " "), real.code, real.stdout, sim.code, sim.stdout, sim.stderr)
		}
	}

	// Then one LV each: linear on the real side, thin in the simulation
	// (the pool makes vg_free differ, so values are blanked out).
	if err := h.AddThinPool(vg, "pool", 8<<20); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		real, sim string
		sameOut   bool // compare stdout byte for byte after blanking report values
	}{
		{real: "lvcreate -L 5M -n a --addtag pvehci " + vg, sim: "lvcreate -V 5M -T " + vg + "/pool -n a --addtag pvehci"},
		{real: "lvcreate -L 4M -n a " + vg, sim: "lvcreate -V 4M -T " + vg + "/pool -n a"},
		{real: strings.Join(lvm.LVSArgs(vg+"/a"), " "), sameOut: true},
		{real: strings.Join(lvm.VGSArgs(vg), " "), sameOut: true},
		{real: strings.Join(lvm.PVSArgs(), " "), sameOut: true},
		{real: "lvs --reportformat json --units b --nosuffix -o lv_name,bogus " + vg, sameOut: true},
		{real: "lvs --reportformat json --units b --nosuffix -o lv_name nosuch" + vg, sameOut: true},
		{real: "lvs --reportformat json --units b --nosuffix -o lv_name " + vg + "/nope", sameOut: true},
		{real: "lvcreate --bogus " + vg},
		{real: "lvcreate -V 4x -T " + vg + "/pool -n c"}, // refused while parsing, before the pool is looked up
		{real: "lvremove -f " + vg + "/nope"},
		{real: "lvextend -L 4M " + vg + "/a"},
		{real: "lvextend -L 8M " + vg + "/a"},
		{real: "lvextend -L +4M " + vg + "/a"},
		{real: "lvextend -L 13M " + vg + "/a"},
		{real: "lvchange --addtag foo " + vg + "/a"},
		{real: "lvchange --deltag foo " + vg + "/a"},
		{real: "lvchange --addtag foo " + vg + "/nope"},
		{real: "lvchange " + vg + "/a"},
		{real: "lvremove -f " + vg + "/a"},
	}
	for _, s := range steps {
		if s.sim == "" {
			s.sim = s.real
		}
		real := l.run(metadataOnly(strings.Fields(s.real))...)
		sim := simRun(r, strings.Fields(s.sim))
		if real.code != sim.code {
			t.Errorf("%s: exit real %d, sim %d\nreal: %s%s\nsim: %s%s", s.sim, real.code, sim.code, real.stdout, real.stderr, sim.stdout, sim.stderr)
		}
		if s.sameOut {
			rs, ss := reportValue.ReplaceAllString(real.stdout, `"$1":""`), reportValue.ReplaceAllString(sim.stdout, `"$1":""`)
			if rs != ss {
				t.Errorf("%s: report shape\nreal:\n%s\nsim:\n%s", s.sim, rs, ss)
			}
		} else {
			for _, line := range lines(sim.stdout) {
				if !slices.Contains(lines(real.stdout), line) {
					t.Errorf("%s: sim stdout line %q not in real stdout %q", s.sim, line, real.stdout)
				}
			}
		}
		for _, line := range lines(sim.stderr) {
			if !slices.Contains(lines(real.stderr), line) {
				t.Errorf("%s: sim stderr line %q not in real stderr %q", s.sim, line, real.stderr)
			}
		}
	}
}
