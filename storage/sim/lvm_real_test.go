package sim

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/pvehci/pvehci/internal/lvmtest"
	"github.com/pvehci/pvehci/internal/run"
	"github.com/pvehci/pvehci/storage/lvm"
)

// The real lvm2 side is internal/lvmtest. Without device-mapper only
// metadata operations work (shared research testbed-local.md §5), so every
// real command that changes an LV gets --driverloaded n and the LV is
// linear; the comparisons are about output shape and messages, which do not
// depend on the LV type.

// metadataOnly inserts --driverloaded n after the program name of an lvm
// command that changes metadata.
func metadataOnly(argv []string) []string {
	switch argv[0] {
	case "lvcreate", "lvremove", "lvextend", "lvchange", "lvrename", "vgremove":
		return append([]string{argv[0], "--driverloaded", "n"}, argv[1:]...)
	}
	return argv
}

func simRun(r run.Runner, argv []string) lvmtest.Result {
	res, _ := r.Run(context.Background(), run.Command(argv[0], argv[1:]...))
	return lvmtest.Result{Stdout: string(res.Stdout), Stderr: string(res.Stderr), Code: res.ExitCode}
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
	l := lvmtest.New(t)
	vg := fmt.Sprintf("pvehcisim%d", os.Getpid())
	for _, argv := range [][]string{{"pvcreate", "-y", l.Loop}, {"vgcreate", vg, l.Loop}} {
		if res := l.Run(argv...); res.Code != 0 {
			t.Fatalf("%v: %s", argv, res.Stderr)
		}
	}
	t.Cleanup(func() {
		l.Run("vgremove", "--driverloaded", "n", "-f", vg)
		l.Run("pvremove", "-y", l.Loop)
	})

	h := NewHost("pve1")
	// The same VG: the loop device is 64 MiB, as in newRealLVM.
	if err := h.AddVG(vg, l.Loop, 64<<20); err != nil {
		t.Fatal(err)
	}
	r := h.Runner()

	// An empty VG reports byte for byte the same.
	for _, argv := range [][]string{lvm.LVSArgs(vg), lvm.VGSArgs(vg), lvm.PVSArgs(l.Loop)} {
		real, sim := l.Run(argv...), simRun(r, argv)
		if real.Code != 0 || sim != (lvmtest.Result{Stdout: real.Stdout}) {
			t.Errorf("%s:\nreal (%d) %q\nsim  (%d) %q %q", strings.Join(argv, " "), real.Code, real.Stdout, sim.Code, sim.Stdout, sim.Stderr)
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
		{real: "lvrename " + vg + "/a " + vg + "/a.rollback"},
		{real: "lvrename " + vg + " a.rollback a"},
		{real: "lvrename " + vg + "/nope x"},
		{real: "lvrename " + vg + "/a other/x"},
		{real: "lvrename " + vg + "/a bad!name"},
		{real: "lvrename " + vg + "/a"},
		{real: "lvrename nosuch" + vg + "/a x"},
		{real: "lvremove -f " + vg + "/a"},
	}
	for _, s := range steps {
		if s.sim == "" {
			s.sim = s.real
		}
		real := l.Run(metadataOnly(strings.Fields(s.real))...)
		sim := simRun(r, strings.Fields(s.sim))
		if real.Code != sim.Code {
			t.Errorf("%s: exit real %d, sim %d\nreal: %s%s\nsim: %s%s", s.sim, real.Code, sim.Code, real.Stdout, real.Stderr, sim.Stdout, sim.Stderr)
		}
		if s.sameOut {
			rs, ss := reportValue.ReplaceAllString(real.Stdout, `"$1":""`), reportValue.ReplaceAllString(sim.Stdout, `"$1":""`)
			if rs != ss {
				t.Errorf("%s: report shape\nreal:\n%s\nsim:\n%s", s.sim, rs, ss)
			}
		} else {
			for _, line := range lines(sim.Stdout) {
				if !slices.Contains(lines(real.Stdout), line) {
					t.Errorf("%s: sim stdout line %q not in real stdout %q", s.sim, line, real.Stdout)
				}
			}
		}
		for _, line := range lines(sim.Stderr) {
			if !slices.Contains(lines(real.Stderr), line) {
				t.Errorf("%s: sim stderr line %q not in real stderr %q", s.sim, line, real.Stderr)
			}
		}
	}
}
