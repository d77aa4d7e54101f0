package lvm

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pvehci/pvehci/internal/validate"
	"github.com/pvehci/pvehci/internal/validate/validatetest"
)

// realLVM is an isolated lvm2 on a loop device: its own lvm.conf whose
// filter sees only that device, its own backup, archive and lock
// directories, all under a temporary directory.
type realLVM struct {
	t    *testing.T
	env  []string
	loop string
}

// newRealLVM sets it up and registers the cleanup, which runs whatever
// happens. It skips (fails under CI=true) without root or the tools.
func newRealLVM(t *testing.T) *realLVM {
	t.Helper()
	for _, tool := range []string{"losetup", "pvcreate", "vgcreate", "lvcreate", "lvs", "vgs", "pvs", "vgremove", "pvremove"} {
		if _, err := exec.LookPath(tool); err != nil {
			pkg := "lvm2"
			if tool == "losetup" {
				pkg = "util-linux"
			}
			validatetest.Environment(t, &validate.ToolMissingError{Tool: tool, Package: pkg})
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
	l.loop = strings.TrimSpace(l.run("losetup", "--find", "--show", img))
	t.Cleanup(func() { l.cleanup("losetup", "-d", l.loop) })

	etc := filepath.Join(dir, "etc")
	for _, d := range []string{etc, filepath.Join(dir, "backup"), filepath.Join(dir, "archive"), filepath.Join(dir, "lock")} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	// Without device-mapper only metadata operations work (testbed-local
	// §5); the filter keeps every other device of the machine out of
	// sight, so nothing else can be touched.
	conf := fmt.Sprintf(`devices { obtain_device_list_from_udev=0 use_devicesfile=0 filter=["a|^%s$|","r|.*|"] }
activation { udev_sync=0 udev_rules=0 monitoring=0 }
backup { backup=1 backup_dir=%q archive=1 archive_dir=%q }
global { locking_dir=%q }
`, l.loop, filepath.Join(dir, "backup"), filepath.Join(dir, "archive"), filepath.Join(dir, "lock"))
	if err := os.WriteFile(filepath.Join(etc, "lvm.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	l.env = append(os.Environ(), "LVM_SYSTEM_DIR="+etc, "LVM_SUPPRESS_FD_WARNINGS=1")
	return l
}

func (l *realLVM) command(args ...string) (*exec.Cmd, *bytes.Buffer, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Env = l.env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	return cmd, &stderr, cancel
}

// run runs a command and returns its stdout, failing the test on error.
func (l *realLVM) run(args ...string) string {
	l.t.Helper()
	cmd, stderr, cancel := l.command(args...)
	defer cancel()
	out, err := cmd.Output()
	if err != nil {
		l.t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return string(out)
}

// cleanup runs a teardown command and reports, but does not stop, on error.
func (l *realLVM) cleanup(args ...string) {
	cmd, stderr, cancel := l.command(args...)
	defer cancel()
	if err := cmd.Run(); err != nil {
		l.t.Errorf("cleanup %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
}

// TestRealLVMReports creates a VG on a loop device and an LV in metadata
// only (--driverloaded n: no device-mapper here), then reads the real
// lvs, vgs and pvs JSON with the parsers.
func TestRealLVMReports(t *testing.T) {
	l := newRealLVM(t)
	vg := fmt.Sprintf("pvehcitest%d", os.Getpid())
	lv := VolumeLVName("vm-100-disk-1", 0)

	l.run("pvcreate", "-y", l.loop)
	t.Cleanup(func() { l.cleanup("pvremove", "-y", l.loop) })
	l.run("vgcreate", vg, l.loop)
	t.Cleanup(func() { l.cleanup("vgremove", "--driverloaded", "n", "-f", vg) })
	l.run("lvcreate", "--driverloaded", "n", "-L", "8M", "-n", lv, "--addtag", Tag, vg)

	lvs, err := ParseLVs([]byte(l.run(LVSArgs(vg)...)))
	if err != nil {
		t.Fatal(err)
	}
	if len(lvs) != 1 {
		t.Fatalf("lvs = %+v, want one LV", lvs)
	}
	got := lvs[0]
	if got.Name != lv || got.VG != vg || got.Size != 8<<20 || !slices.Equal(got.Tags, []string{Tag}) ||
		got.Attr.ThinVolume() || got.Attr.Active() || got.DataPercent.Valid {
		t.Errorf("LV = %+v", got)
	}

	vgs, err := ParseVGs([]byte(l.run(VGSArgs(vg)...)))
	if err != nil {
		t.Fatal(err)
	}
	// 64 MiB less the metadata area, in 4 MiB extents: 15 extents.
	if len(vgs) != 1 || vgs[0].Name != vg || vgs[0].ExtentSize != 4<<20 || vgs[0].Size != 60<<20 || vgs[0].Free != vgs[0].Size-8<<20 {
		t.Errorf("VGs = %+v", vgs)
	}

	pvs, err := ParsePVs([]byte(l.run(PVSArgs(l.loop)...)))
	if err != nil {
		t.Fatal(err)
	}
	if len(pvs) != 1 || pvs[0].Name != l.loop || pvs[0].VG != vg || pvs[0].Size != 60<<20 || pvs[0].Free != vgs[0].Free {
		t.Errorf("PVs = %+v", pvs)
	}
}
