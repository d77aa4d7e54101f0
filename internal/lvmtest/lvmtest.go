// Package lvmtest gives tests a real lvm2 on a loop device, isolated from
// the machine's own volumes: an LVM_SYSTEM_DIR whose device filter sees
// only that loop device, with its own backup, archive and lock
// directories. Without device-mapper only metadata operations work (shared
// research testbed-local.md §5), so commands that change LVs need
// --driverloaded n.
package lvmtest

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
)

// LoopSize is the size of the loop device the VG goes on.
const LoopSize = 64 << 20

// LVM runs real lvm2 commands against one loop device.
type LVM struct {
	t    testing.TB
	Env  []string // the environment every command gets
	Loop string   // the loop device, e.g. /dev/loop3
}

// Result is what one command did.
type Result struct {
	Stdout, Stderr string
	Code           int
}

// New sets up the loop device and the isolated configuration and registers
// their cleanup, which runs whatever happens. Without root or the tools it
// skips the test (fails it under CI=true).
func New(t testing.TB) *LVM {
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
	if err := os.Truncate(img, LoopSize); err != nil {
		t.Fatal(err)
	}
	l := &LVM{t: t, Env: os.Environ()}
	l.Loop = strings.TrimSpace(l.MustRun("losetup", "--find", "--show", img))
	t.Cleanup(func() { l.Cleanup("losetup", "-d", l.Loop) })

	etc := filepath.Join(dir, "etc")
	for _, d := range []string{etc, filepath.Join(dir, "backup"), filepath.Join(dir, "archive"), filepath.Join(dir, "lock")} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	// The filter keeps every other device of the machine out of sight, so
	// nothing else can be touched.
	conf := fmt.Sprintf(`devices { obtain_device_list_from_udev=0 use_devicesfile=0 filter=["a|^%s$|","r|.*|"] }
activation { udev_sync=0 udev_rules=0 monitoring=0 }
backup { backup=1 backup_dir=%q archive=1 archive_dir=%q }
global { locking_dir=%q }
`, l.Loop, filepath.Join(dir, "backup"), filepath.Join(dir, "archive"), filepath.Join(dir, "lock"))
	if err := os.WriteFile(filepath.Join(etc, "lvm.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	l.Env = append(os.Environ(), "LVM_SYSTEM_DIR="+etc, "LVM_SUPPRESS_FD_WARNINGS=1", "LC_ALL=C")
	return l
}

// Run runs a command and returns what it did; it fails the test only when
// the program cannot be started.
func (l *LVM) Run(argv ...string) Result {
	l.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = l.Env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		l.t.Fatalf("%s: %v", strings.Join(argv, " "), err)
	}
	return Result{Stdout: out.String(), Stderr: errb.String(), Code: code}
}

// MustRun runs a command and returns its stdout, failing the test on a
// non-zero exit.
func (l *LVM) MustRun(argv ...string) string {
	l.t.Helper()
	r := l.Run(argv...)
	if r.Code != 0 {
		l.t.Fatalf("%s: exit %d\n%s", strings.Join(argv, " "), r.Code, r.Stderr)
	}
	return r.Stdout
}

// Cleanup runs a teardown command and reports, but does not stop, on error.
func (l *LVM) Cleanup(argv ...string) {
	l.t.Helper()
	if r := l.Run(argv...); r.Code != 0 {
		l.t.Errorf("cleanup %s: exit %d\n%s", strings.Join(argv, " "), r.Code, r.Stderr)
	}
}
