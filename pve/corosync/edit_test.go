package corosync

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pvehci/pvehci/internal/hostfs"
)

// newPVE returns a host root holding /etc/pve/corosync.conf = testdata/name.
func newPVE(t *testing.T, name string) (string, *hostfs.Host) {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "etc/pve"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ConfPath), readTestdata(t, name), 0o640); err != nil {
		t.Fatal(err)
	}
	return dir, hostfs.Root(dir)
}

// fakeChecker records what it was asked to check and can fail.
type fakeChecker struct {
	err     error
	checked []string
}

func (f *fakeChecker) String() string { return "fake corosync -t" }

func (f *fakeChecker) Check(_ context.Context, data []byte) error {
	f.checked = append(f.checked, string(data))
	return f.err
}

func addLink1(cur *Config) (*Config, bool, error) {
	return AddLink(cur, 1, map[string]string{"pve1": "10.98.0.1", "pve2": "10.98.0.2", "pve3": "10.98.0.3"}, BelowLink0())
}

func readHost(t *testing.T, dir, p string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, p))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func exists(dir, p string) bool {
	_, err := os.Lstat(filepath.Join(dir, p))
	return err == nil
}

func TestEditorApply(t *testing.T) {
	t.Parallel()
	dir, fsys := newPVE(t, "pve9-create-3node.conf")
	lock := &FakeLock{}
	check := &fakeChecker{}
	ed := &Editor{FS: fsys, Lock: lock, Checker: check}
	p, err := ed.Plan("add corosync link 1", addLink1)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Changed || p.OldVersion != 3 || p.NewVersion != 4 {
		t.Fatalf("plan = %+v", p)
	}
	if len(lock.Events()) != 0 {
		t.Errorf("planning touched the lock: %v", lock.Events())
	}
	if exists(dir, NewPath) {
		t.Error("planning wrote corosync.conf.new")
	}
	checkGolden(t, "plan-add-link1.golden", []byte(p.String()))

	if err := ed.Apply(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	want := string(readTestdata(t, "pve9-create-3node.link1.golden"))
	if got := readHost(t, dir, ConfPath); got != want {
		t.Errorf("corosync.conf after apply:\n%s", diffText(want, got))
	}
	if got := readHost(t, dir, BakPath); got != string(readTestdata(t, "pve9-create-3node.conf")) {
		t.Errorf("corosync.conf.bak is not the old file:\n%s", got)
	}
	if exists(dir, NewPath) {
		t.Error("corosync.conf.new left behind")
	}
	if fi, err := os.Stat(filepath.Join(dir, ConfPath)); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("corosync.conf mode = %v (%v), want 0640 as on pmxcfs", fi.Mode().Perm(), err)
	}
	if got := check.checked; len(got) != 1 || got[0] != want {
		t.Errorf("checker saw %d files, want the new one once", len(got))
	}
	if got, want := lock.Events(), []string{"acquire", "release"}; !slices.Equal(got, want) {
		t.Errorf("lock events = %v, want %v", got, want)
	}

	// Planning again finds nothing to do.
	p2, err := ed.Plan("add corosync link 1", addLink1)
	if err != nil {
		t.Fatal(err)
	}
	if p2.Changed {
		t.Error("second plan wants a change")
	}
	if s := p2.Steps(); len(s) != 1 || !strings.HasPrefix(s[0], "nothing to do") {
		t.Errorf("steps = %q", s)
	}
	if err := ed.Apply(context.Background(), p2); err != nil {
		t.Fatal(err)
	}
	if got := lock.Events(); len(got) != 2 {
		t.Errorf("a no-change apply took the lock: %v", got)
	}
}

// An existing corosync.conf.new is someone else's edit: refuse to plan and
// to apply, and leave it alone.
func TestEditorRefusesEditInProgress(t *testing.T) {
	t.Parallel()
	dir, fsys := newPVE(t, "pve9-create-3node.conf")
	lock := &FakeLock{}
	ed := &Editor{FS: fsys, Lock: lock}
	p, err := ed.Plan("add corosync link 1", addLink1)
	if err != nil {
		t.Fatal(err)
	}
	other := "someone else's edit\n"
	if err := os.WriteFile(filepath.Join(dir, NewPath), []byte(other), 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := ed.Plan("add corosync link 1", addLink1); !errors.Is(err, ErrEditInProgress) || !strings.Contains(err.Error(), "finish it (mv /etc/pve/corosync.conf.new /etc/pve/corosync.conf) or remove it") {
		t.Errorf("Plan error = %v, want ErrEditInProgress with advice", err)
	}
	if err := ed.Apply(context.Background(), p); !errors.Is(err, ErrEditInProgress) {
		t.Errorf("Apply error = %v, want ErrEditInProgress", err)
	}
	if got := readHost(t, dir, NewPath); got != other {
		t.Errorf("corosync.conf.new was touched: %q", got)
	}
	if got := readHost(t, dir, ConfPath); got != string(readTestdata(t, "pve9-create-3node.conf")) {
		t.Error("corosync.conf was touched")
	}
	if lock.Held() {
		t.Error("lock still held")
	}
}

func TestEditorApplyFailures(t *testing.T) {
	t.Parallel()
	orig := "pve9-create-3node.conf"
	tests := []struct {
		name   string
		setup  func(t *testing.T, dir string, ed *Editor)
		want   string
		wantIs error
	}{
		{
			name: "file changed since the plan",
			setup: func(t *testing.T, dir string, _ *Editor) {
				data := strings.Replace(readHost(t, dir, ConfPath), "config_version: 3", "config_version: 5", 1)
				if err := os.WriteFile(filepath.Join(dir, ConfPath), []byte(data), 0o640); err != nil {
					t.Fatal(err)
				}
			},
			want: "changed since the plan was made (config_version now 5); run pvehci again",
		},
		{
			name: "checker rejects",
			setup: func(_ *testing.T, _ string, ed *Editor) {
				ed.Checker = &fakeChecker{err: errors.New("corosync -t rejected it")}
			},
			want: "corosync -t rejected it",
		},
		{
			name: "lock busy",
			setup: func(_ *testing.T, _ string, ed *Editor) {
				ed.Lock = &FakeLock{Err: errors.New("lock held by pvecm")}
			},
			want: "lock held by pvecm",
		},
		{
			name: "no lock",
			setup: func(_ *testing.T, _ string, ed *Editor) {
				ed.Lock = nil
			},
			want: "refusing to edit corosync.conf without the cluster lock",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir, fsys := newPVE(t, orig)
			lock := &FakeLock{}
			ed := &Editor{FS: fsys, Lock: lock}
			p, err := ed.Plan("add corosync link 1", addLink1)
			if err != nil {
				t.Fatal(err)
			}
			before := readHost(t, dir, ConfPath)
			tc.setup(t, dir, ed)
			after := readHost(t, dir, ConfPath)
			err = ed.Apply(context.Background(), p)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Apply error = %v, want it to mention %q", err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "applying corosync.conf edit (add corosync link 1)") {
				t.Errorf("error %q does not say what was being done", err)
			}
			if got := readHost(t, dir, ConfPath); got != after {
				t.Errorf("corosync.conf changed by a failed apply (before setup: %d bytes)", len(before))
			}
			if exists(dir, NewPath) {
				t.Error("corosync.conf.new left behind after a failure")
			}
			if lock.Held() {
				t.Error("lock still held after a failure")
			}
		})
	}
}

func TestEditorPlanFailures(t *testing.T) {
	t.Parallel()
	t.Run("not a cluster", func(t *testing.T) {
		t.Parallel()
		ed := &Editor{FS: hostfs.Root(t.TempDir()), Lock: &FakeLock{}}
		_, err := ed.Plan("add corosync link 1", addLink1)
		if err == nil || !strings.Contains(err.Error(), "this node is not in a cluster; create or join one first") {
			t.Errorf("Plan error = %v", err)
		}
	})
	t.Run("edit fails", func(t *testing.T) {
		t.Parallel()
		_, fsys := newPVE(t, "pve9-create-3node.conf")
		ed := &Editor{FS: fsys, Lock: &FakeLock{}}
		_, err := ed.Plan("add corosync link 1", func(c *Config) (*Config, bool, error) {
			return AddLink(c, 1, map[string]string{"pve1": "10.98.0.1"}, BelowLink0())
		})
		if err == nil || !strings.Contains(err.Error(), "no address for node pve2, pve3") {
			t.Errorf("Plan error = %v", err)
		}
	})
	t.Run("edit forgets config_version", func(t *testing.T) {
		t.Parallel()
		_, fsys := newPVE(t, "pve9-create-3node.conf")
		ed := &Editor{FS: fsys, Lock: &FakeLock{}}
		_, err := ed.Plan("rename", func(c *Config) (*Config, bool, error) {
			n := c.Clone()
			n.Totem.ClusterName = "other"
			return n, true, nil
		})
		if err == nil || !strings.Contains(err.Error(), "did not raise config_version") {
			t.Errorf("Plan error = %v", err)
		}
	})
	t.Run("unparsable file", func(t *testing.T) {
		t.Parallel()
		dir, fsys := newPVE(t, "pve9-create-3node.conf")
		if err := os.WriteFile(filepath.Join(dir, ConfPath), []byte("totem {\n"), 0o640); err != nil {
			t.Fatal(err)
		}
		_, err := (&Editor{FS: fsys}).Plan("add corosync link 1", addLink1)
		if err == nil || !strings.Contains(err.Error(), "/etc/pve/corosync.conf: parsing corosync.conf: line 1: missing closing brace") {
			t.Errorf("Plan error = %v", err)
		}
	})
}
