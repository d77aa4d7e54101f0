package ifupdown

import (
	"context"
	"errors"
	"github.com/pvehci/pvehci/internal/textdiff"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pvehci/pvehci/internal/hostfs"
)

// newNode returns a host root whose /etc/network/interfaces is
// testdata/name ("" for none).
func newNode(t *testing.T, name string) (string, *hostfs.Host) {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "etc/network"), 0o755); err != nil {
		t.Fatal(err)
	}
	if name != "" {
		if err := os.WriteFile(filepath.Join(dir, InterfacesPath), readTestdata(t, name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir, hostfs.Root(dir)
}

func readHost(t *testing.T, dir, p string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, p))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestPlanAndApply(t *testing.T) {
	t.Parallel()
	dir, fsys := newNode(t, "pve-installer.interfaces")
	p, err := PlanNetwork(fsys, hciNetwork())
	if err != nil {
		t.Fatal(err)
	}
	if !p.Changed() {
		t.Fatal("plan has no change")
	}
	checkGolden(t, "plan-installer.golden", []byte(p.String()))

	lock := &FakeLock{}
	if err := Apply(context.Background(), fsys, lock, p); err != nil {
		t.Fatal(err)
	}
	if got, want := readHost(t, dir, InterfacesPath), string(readTestdata(t, "pve-installer.merged.golden")); got != want {
		t.Errorf("interfaces after apply:\n%s", strings.Join(textdiff.Lines(want, got), "\n"))
	}
	if got, want := readHost(t, dir, InterfacesPath+".bak"), string(readTestdata(t, "pve-installer.interfaces")); got != want {
		t.Error("interfaces.bak is not the old file")
	}
	if got, want := readHost(t, dir, IncludePath), string(readTestdata(t, "include-ipoib.golden")); got != want {
		t.Errorf("include file:\n%s", got)
	}
	if _, err := os.Stat(filepath.Join(dir, IncludePath+".bak")); !os.IsNotExist(err) {
		t.Error("a .bak in interfaces.d would be read by the source line")
	}
	if got, want := lock.Events(), []string{"acquire", "release"}; !slices.Equal(got, want) {
		t.Errorf("lock events = %v, want %v", got, want)
	}

	p2, err := PlanNetwork(fsys, hciNetwork())
	if err != nil {
		t.Fatal(err)
	}
	if p2.Changed() {
		t.Errorf("second plan wants changes:\n%s", p2)
	}
	if err := Apply(context.Background(), fsys, lock, p2); err != nil {
		t.Fatal(err)
	}
	if len(lock.Events()) != 2 {
		t.Error("a no-change apply took the lock")
	}
}

func TestPlanWithoutInterfacesFile(t *testing.T) {
	t.Parallel()
	dir, fsys := newNode(t, "")
	p, err := PlanNetwork(fsys, hciNetwork())
	if err != nil {
		t.Fatal(err)
	}
	if err := Apply(context.Background(), fsys, &FakeLock{}, p); err != nil {
		t.Fatal(err)
	}
	got := readHost(t, dir, InterfacesPath)
	if !strings.HasPrefix(got, "auto lo\niface lo inet loopback\n\niface eno1 inet manual\n") || !strings.HasSuffix(got, "\n\n"+SourceLine+"\n") {
		t.Errorf("new interfaces file:\n%s", got)
	}
	if _, err := os.Stat(filepath.Join(dir, InterfacesPath+".bak")); !os.IsNotExist(err) {
		t.Error("backup of a file that did not exist")
	}
}

// interfaces.new holds changes staged in the Proxmox GUI; an edit now
// would be lost when they are applied.
func TestPlanRefusesPendingChanges(t *testing.T) {
	t.Parallel()
	dir, fsys := newNode(t, "pve-gui.interfaces")
	p, err := PlanNetwork(fsys, hciNetwork())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, PendingPath), []byte("staged\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	const advice = "apply them (node → System → Network → Apply Configuration) or discard them (Revert) in the Proxmox GUI first"
	if _, err := PlanNetwork(fsys, hciNetwork()); !errors.Is(err, ErrPendingChanges) || !strings.Contains(err.Error(), advice) {
		t.Errorf("PlanNetwork = %v, want ErrPendingChanges with advice", err)
	}
	if err := Apply(context.Background(), fsys, &FakeLock{}, p); !errors.Is(err, ErrPendingChanges) {
		t.Errorf("Apply = %v, want ErrPendingChanges", err)
	}
	if got := readHost(t, dir, InterfacesPath); got != string(readTestdata(t, "pve-gui.interfaces")) {
		t.Error("interfaces changed despite pending changes")
	}
	if _, err := os.Stat(filepath.Join(dir, IncludePath)); !os.IsNotExist(err) {
		t.Error("include file written despite pending changes")
	}
}

func TestApplyRefusesChangedFile(t *testing.T) {
	t.Parallel()
	dir, fsys := newNode(t, "pve-gui.interfaces")
	p, err := PlanNetwork(fsys, hciNetwork())
	if err != nil {
		t.Fatal(err)
	}
	edited := readHost(t, dir, InterfacesPath) + "\nauto eno9\niface eno9 inet manual\n"
	if err := os.WriteFile(filepath.Join(dir, InterfacesPath), []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	err = Apply(context.Background(), fsys, &FakeLock{}, p)
	if err == nil || !strings.Contains(err.Error(), "/etc/network/interfaces changed since the plan was made; run pvehci again") {
		t.Errorf("Apply = %v", err)
	}
	if got := readHost(t, dir, InterfacesPath); got != edited {
		t.Error("interfaces overwritten")
	}
}

func TestPlanRefusesBadNetwork(t *testing.T) {
	t.Parallel()
	_, fsys := newNode(t, "seed003.interfaces")
	n := hciNetwork()
	n.IPoIB[0].Name = "cx354ap1"
	if _, err := PlanNetwork(fsys, n); err == nil || !strings.Contains(err.Error(), `name "cx354ap1" must start with "ib"`) {
		t.Errorf("PlanNetwork = %v", err)
	}
	n = hciNetwork()
	n.IPoIB = append(n.IPoIB, n.IPoIB[0])
	if _, err := PlanNetwork(fsys, n); err == nil || !strings.Contains(err.Error(), "IPoIB interface ib0 is given twice") {
		t.Errorf("PlanNetwork = %v", err)
	}
}

func TestFlock(t *testing.T) {
	t.Parallel()
	dir, _ := newNode(t, "")
	l := Flock{Root: dir}
	release, err := l.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	if _, err := l.Acquire(ctx); !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "is held") {
		t.Errorf("second Acquire = %v, want a timeout", err)
	}
	if err := release(); err != nil {
		t.Fatal(err)
	}
	release, err = l.Acquire(context.Background())
	if err != nil {
		t.Fatalf("Acquire after release: %v", err)
	}
	if err := release(); err != nil {
		t.Fatal(err)
	}
}
