package hostfs

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// newHost returns a Host rooted at a fresh directory holding /etc.
func newHost(t *testing.T) (*Host, string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	return Root(dir), dir
}

// ls returns the names in dir, sorted.
func ls(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func mustWrite(t *testing.T, h FS, name, data string, perm fs.FileMode, opts WriteOptions) bool {
	t.Helper()
	changed, err := h.WriteFile(name, []byte(data), perm, opts)
	if err != nil {
		t.Fatal(err)
	}
	return changed
}

// checkFile asserts the content and mode of the real file p.
func checkFile(t *testing.T, p, data string, perm fs.FileMode) {
	t.Helper()
	got, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != data {
		t.Errorf("%s holds %q, want %q", p, got, data)
	}
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != perm {
		t.Errorf("%s has mode %v, want %v", p, fi.Mode(), perm)
	}
}

func TestWriteFile(t *testing.T) {
	h, dir := newHost(t)
	real := filepath.Join(dir, "etc", "interfaces")
	steps := []struct {
		name        string
		data        string
		perm        fs.FileMode
		wantChanged bool
	}{
		{"create", "auto lo\n", 0o640, true},
		{"same bytes and mode is a no-op", "auto lo\n", 0o640, false},
		{"new bytes", "auto lo\niface lo inet loopback\n", 0o640, true},
		{"same bytes, new mode", "auto lo\niface lo inet loopback\n", 0o644, true},
		{"mode beyond umask", "x", 0o777, true},
		{"empty file", "", 0o600, true},
		{"empty again", "", 0o600, false},
	}
	for _, s := range steps {
		if got := mustWrite(t, h, "/etc/interfaces", s.data, s.perm, WriteOptions{}); got != s.wantChanged {
			t.Errorf("%s: changed = %v, want %v", s.name, got, s.wantChanged)
		}
		checkFile(t, real, s.data, s.perm)
		got, err := h.ReadFile("/etc/interfaces")
		if err != nil || string(got) != s.data {
			t.Errorf("%s: ReadFile = %q, %v", s.name, got, err)
		}
	}
	// No temporary file is left behind, and no backup was asked for.
	if got := ls(t, filepath.Join(dir, "etc")); !slices.Equal(got, []string{"interfaces"}) {
		t.Errorf("etc holds %q", got)
	}
	// "." and "//" are harmless.
	if got := mustWrite(t, h, "//etc/./interfaces", "", 0o600, WriteOptions{}); got {
		t.Error("write through //etc/./interfaces changed the file")
	}
}

func TestWriteFileOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown needs root")
	}
	h, dir := newHost(t)
	real := filepath.Join(dir, "etc", "corosync.conf")
	owner := func() (int, int) {
		fi, err := os.Lstat(real)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		return int(st.Uid), int(st.Gid)
	}
	want := &Owner{UID: 1234, GID: 33}
	mustWrite(t, h, "/etc/corosync.conf", "a", 0o640, WriteOptions{Owner: want})
	if u, g := owner(); u != 1234 || g != 33 {
		t.Fatalf("owner %d:%d, want 1234:33", u, g)
	}
	if mustWrite(t, h, "/etc/corosync.conf", "a", 0o640, WriteOptions{Owner: want}) {
		t.Error("same data, mode and owner: changed = true")
	}
	if !mustWrite(t, h, "/etc/corosync.conf", "a", 0o640, WriteOptions{Owner: &Owner{UID: 0, GID: 0}}) {
		t.Error("new owner: changed = false")
	}
	mustWrite(t, h, "/etc/corosync.conf", "a", 0o640, WriteOptions{Owner: want})
	// Without Owner, a replaced file keeps its owner.
	mustWrite(t, h, "/etc/corosync.conf", "b", 0o640, WriteOptions{})
	if u, g := owner(); u != 1234 || g != 33 {
		t.Errorf("after rewrite owner %d:%d, want 1234:33", u, g)
	}
	fi, err := h.Stat("/etc/corosync.conf")
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 1234 {
		t.Errorf("Stat().Sys() uid %d", st.Uid)
	}
}

func TestBackupRestore(t *testing.T) {
	h, dir := newHost(t)
	real := filepath.Join(dir, "etc", "r0.res")
	bak := real + ".bak"
	backup := WriteOptions{Backup: true}

	mustWrite(t, h, "/etc/r0.res", "v1", 0o600, WriteOptions{})
	if !mustWrite(t, h, "/etc/r0.res", "v2", 0o644, backup) {
		t.Fatal("v2: changed = false")
	}
	checkFile(t, real, "v2", 0o644)
	checkFile(t, bak, "v1", 0o600) // the backup keeps the old mode

	// An unchanged write leaves the backup alone.
	if mustWrite(t, h, "/etc/r0.res", "v2", 0o644, backup) {
		t.Error("unchanged write with Backup: changed = true")
	}
	checkFile(t, bak, "v1", 0o600)

	if err := h.Restore("/etc/r0.res"); err != nil {
		t.Fatal(err)
	}
	checkFile(t, real, "v1", 0o600)
	if _, err := os.Lstat(bak); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("backup still there after Restore: %v", err)
	}
	err := h.Restore("/etc/r0.res")
	if !errors.Is(err, ErrNoBackup) {
		t.Fatalf("second Restore: %v, want ErrNoBackup", err)
	}
	if want := "restoring /etc/r0.res: hostfs: no backup: /etc/r0.res.bak does not exist"; err.Error() != want {
		t.Errorf("message %q, want %q", err, want)
	}
	checkFile(t, real, "v1", 0o600)

	// A new file with Backup removes a stale backup, so Restore reports
	// that there was nothing before and the caller removes the file.
	if err := os.WriteFile(filepath.Join(dir, "etc", "r1.res.bak"), []byte("stale"), 0o600); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, h, "/etc/r1.res", "new", 0o600, backup)
	if err := h.Restore("/etc/r1.res"); !errors.Is(err, ErrNoBackup) {
		t.Fatalf("Restore of a new file: %v, want ErrNoBackup", err)
	}
	if removed, err := h.Remove("/etc/r1.res"); err != nil || !removed {
		t.Fatalf("Remove = %v, %v", removed, err)
	}
	if removed, err := h.Remove("/etc/r1.res"); err != nil || removed {
		t.Errorf("second Remove = %v, %v; want false, nil", removed, err)
	}
	if got := ls(t, filepath.Join(dir, "etc")); !slices.Equal(got, []string{"r0.res"}) {
		t.Errorf("etc holds %q", got)
	}
}

func TestSymlinksRefused(t *testing.T) {
	h, dir := newHost(t)
	etc := filepath.Join(dir, "etc")
	elsewhere := t.TempDir()
	victim := filepath.Join(elsewhere, "shadow")
	if err := os.WriteFile(victim, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(etc, "pve", "nodes", "pve1"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(etc, "pve", "nodes", "pve1", "x.conf"), []byte("x"), 0o640); err != nil {
		t.Fatal(err)
	}
	links := map[string]string{
		"etc/pve/local":  "nodes/pve1",   // relative, within the root
		"etc/target":     victim,         // absolute, outside the root
		"etc/escape":     elsewhere,      // a directory outside the root
		"etc/drbd.d":     "../elsewhere", // dangling
		"etc/r0.res.bak": victim,
		"lib":            "etc",
	}
	for link, to := range links {
		if err := os.Symlink(to, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(etc, "r0.res"), []byte("v1"), 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		op      func() error
		wantMsg string
	}{
		{"write target", func() error {
			_, err := h.WriteFile("/etc/target", []byte("pwned"), 0o600, WriteOptions{})
			return err
		}, "writing /etc/target: /etc/target is a symlink; refusing to follow it"},
		{"write through parent", func() error {
			_, err := h.WriteFile("/etc/escape/shadow", []byte("pwned"), 0o600, WriteOptions{})
			return err
		}, "writing /etc/escape/shadow: /etc/escape is a symlink; refusing to follow it"},
		{"write through in-root parent", func() error {
			_, err := h.WriteFile("/etc/pve/local/x.conf", []byte("y"), 0o640, WriteOptions{})
			return err
		}, "writing /etc/pve/local/x.conf: /etc/pve/local is a symlink; refusing to follow it"},
		{"write through top-level parent", func() error {
			_, err := h.WriteFile("/lib/r0.res", []byte("y"), 0o600, WriteOptions{})
			return err
		}, "writing /lib/r0.res: /lib is a symlink; refusing to follow it"},
		{"write through dangling parent", func() error {
			_, err := h.WriteFile("/etc/drbd.d/r0.res", []byte("y"), 0o600, WriteOptions{})
			return err
		}, "writing /etc/drbd.d/r0.res: /etc/drbd.d is a symlink; refusing to follow it"},
		{"backup onto symlink", func() error {
			_, err := h.WriteFile("/etc/r0.res", []byte("v2"), 0o600, WriteOptions{Backup: true})
			return err
		}, "writing /etc/r0.res: keeping backup /etc/r0.res.bak: /etc/r0.res.bak is a symlink; refusing to follow it"},
		{"restore from symlink", func() error { return h.Restore("/etc/r0.res") },
			"restoring /etc/r0.res: /etc/r0.res.bak is a symlink; refusing to follow it"},
		{"read target", func() error { _, err := h.ReadFile("/etc/target"); return err },
			"reading /etc/target: /etc/target is a symlink; refusing to follow it"},
		{"read through parent", func() error { _, err := h.ReadFile("/etc/escape/shadow"); return err },
			"reading /etc/escape/shadow: /etc/escape is a symlink; refusing to follow it"},
		{"remove symlink", func() error { _, err := h.Remove("/etc/target"); return err },
			"removing /etc/target: /etc/target is a symlink; refusing to follow it"},
		{"stat through parent", func() error { _, err := h.Stat("/etc/escape/shadow"); return err },
			"checking /etc/escape/shadow: /etc/escape is a symlink; refusing to follow it"},
		{"mkdir through parent", func() error { return h.MkdirAll("/etc/escape/new/dir", 0o755) },
			"creating directory /etc/escape/new/dir: /etc/escape is a symlink; refusing to follow it"},
		{"rename onto symlink", func() error { return h.Rename("/etc/r0.res", "/etc/target") },
			"renaming /etc/r0.res to /etc/target: /etc/target is a symlink; refusing to follow it"},
		{"rename into symlinked dir", func() error { return h.Rename("/etc/r0.res", "/etc/escape/r0.res") },
			"renaming /etc/r0.res to /etc/escape/r0.res: /etc/escape is a symlink; refusing to follow it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.op()
			if !errors.Is(err, ErrSymlink) {
				t.Fatalf("err = %v, want ErrSymlink", err)
			}
			if err.Error() != tt.wantMsg {
				t.Errorf("message\n got  %s\n want %s", err, tt.wantMsg)
			}
		})
	}
	checkFile(t, victim, "secret", 0o600)
	checkFile(t, filepath.Join(etc, "r0.res"), "v1", 0o600)
	checkFile(t, filepath.Join(etc, "pve", "nodes", "pve1", "x.conf"), "x", 0o640)
	if got := ls(t, elsewhere); !slices.Equal(got, []string{"shadow"}) {
		t.Errorf("outside the root: %q", got)
	}

	// Stat describes a final symlink instead of failing.
	fi, err := h.Stat("/etc/target")
	if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("Stat(/etc/target) = %v, %v; want a symlink", fi, err)
	}
}

func TestBadPaths(t *testing.T) {
	h, _ := newHost(t)
	tests := []struct{ name, wantMsg string }{
		{"/etc/../../outside", `writing /etc/../../outside: bad path "/etc/../../outside": contains ".."`},
		{"/..", `writing /..: bad path "/..": contains ".."`},
		{"/etc/x/..", `writing /etc/x/..: bad path "/etc/x/..": contains ".."`},
		{"etc/x", `writing etc/x: bad path "etc/x": not absolute`},
		{"", `writing : bad path "": not absolute`},
		{"/", `writing /: bad path "/": names the root, not a file`},
		{"/etc/a\x00b", `writing /etc/a` + "\x00" + `b: bad path "/etc/a\x00b": contains a NUL byte`},
	}
	for _, tt := range tests {
		_, err := h.WriteFile(tt.name, []byte("x"), 0o600, WriteOptions{})
		if !errors.Is(err, ErrBadPath) {
			t.Errorf("WriteFile(%q) = %v, want ErrBadPath", tt.name, err)
			continue
		}
		if err.Error() != tt.wantMsg {
			t.Errorf("message\n got  %s\n want %s", err, tt.wantMsg)
		}
	}
	if _, err := h.ReadFile("/../outside"); !errors.Is(err, ErrBadPath) {
		t.Errorf("ReadFile(/../outside) = %v, want ErrBadPath", err)
	}
	if err := h.MkdirAll("/etc/../x", 0o755); !errors.Is(err, ErrBadPath) {
		t.Errorf("MkdirAll(/etc/../x) = %v, want ErrBadPath", err)
	}
	if _, err := Root("relative").ReadFile("/etc/x"); err == nil || !strings.Contains(err.Error(), "not an absolute path") {
		t.Errorf("relative root: %v", err)
	}
}

func TestFailedWriteKeepsOldFile(t *testing.T) {
	h, dir := newHost(t)
	etc := filepath.Join(dir, "etc")
	mustWrite(t, h, "/etc/interfaces", "old", 0o644, WriteOptions{})
	if err := os.WriteFile(filepath.Join(etc, "afile"), []byte("f"), 0o644); err != nil {
		t.Fatal(err)
	}

	// A parent that is a file.
	_, err := h.WriteFile("/etc/afile/interfaces", []byte("new"), 0o644, WriteOptions{})
	if want := "writing /etc/afile/interfaces: /etc/afile is not a directory"; err == nil || err.Error() != want {
		t.Errorf("err = %v, want %s", err, want)
	}
	// A missing parent.
	_, err = h.WriteFile("/etc/network/interfaces", []byte("new"), 0o644, WriteOptions{})
	if !errors.Is(err, fs.ErrNotExist) || !strings.HasPrefix(err.Error(), "writing /etc/network/interfaces: ") {
		t.Errorf("err = %v, want a wrapped ErrNotExist", err)
	}
	// A target that is a directory.
	if err := os.Mkdir(filepath.Join(etc, "adir"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := h.WriteFile("/etc/adir", []byte("new"), 0o644, WriteOptions{}); err == nil || err.Error() != "writing /etc/adir: /etc/adir is not a regular file" {
		t.Errorf("err = %v", err)
	}

	// A failure after the new data is on disk but before the rename.
	boom := errors.New("injected failure")
	h.beforeRename = func(target string) error {
		if target == "/etc/interfaces" {
			return boom
		}
		return nil
	}
	_, err = h.WriteFile("/etc/interfaces", []byte("new"), 0o600, WriteOptions{Backup: true})
	if !errors.Is(err, boom) || err.Error() != "writing /etc/interfaces: injected failure" {
		t.Errorf("err = %v, want the injected failure", err)
	}
	checkFile(t, filepath.Join(etc, "interfaces"), "old", 0o644)
	// The backup was written before the failure; the temp file is gone.
	if got := ls(t, etc); !slices.Equal(got, []string{"adir", "afile", "interfaces", "interfaces.bak"}) {
		t.Errorf("etc holds %q", got)
	}
}

func TestMkdirAllRenameStat(t *testing.T) {
	h, dir := newHost(t)
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)

	if err := h.MkdirAll("/etc/drbd.d/sub", 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"etc/drbd.d", "etc/drbd.d/sub"} {
		fi, err := os.Lstat(filepath.Join(dir, d))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != fs.ModeDir|0o755 {
			t.Errorf("%s: mode %v, want drwxr-xr-x despite umask", d, fi.Mode())
		}
	}
	if err := h.MkdirAll("/etc/drbd.d/sub", 0o700); err != nil {
		t.Errorf("MkdirAll of an existing directory: %v", err)
	}
	if fi, _ := os.Lstat(filepath.Join(dir, "etc/drbd.d/sub")); fi.Mode().Perm() != 0o755 {
		t.Errorf("existing directory's mode changed to %v", fi.Mode())
	}
	mustWrite(t, h, "/etc/drbd.d/file", "x", 0o644, WriteOptions{})
	if err := h.MkdirAll("/etc/drbd.d/file/sub", 0o755); err == nil || err.Error() != "creating directory /etc/drbd.d/file/sub: /etc/drbd.d/file is not a directory" {
		t.Errorf("MkdirAll through a file: %v", err)
	}

	// The corosync.conf.new procedure: write, then rename into place.
	mustWrite(t, h, "/etc/corosync.conf", "version 1", 0o640, WriteOptions{})
	mustWrite(t, h, "/etc/corosync.conf.new", "version 2", 0o640, WriteOptions{})
	if err := h.Rename("/etc/corosync.conf.new", "/etc/corosync.conf"); err != nil {
		t.Fatal(err)
	}
	checkFile(t, filepath.Join(dir, "etc", "corosync.conf"), "version 2", 0o640)
	if err := h.Rename("/etc/corosync.conf.new", "/etc/corosync.conf"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Rename of a missing file: %v", err)
	}

	tests := []struct {
		name     string
		wantMode fs.FileMode
		wantErr  error
	}{
		{"/", fs.ModeDir | 0o755, nil},
		{"/etc/drbd.d", fs.ModeDir | 0o755, nil},
		{"/etc/corosync.conf", 0o640, nil},
		{"/etc/missing", 0, fs.ErrNotExist},
		{"/etc/missing/deeper", 0, fs.ErrNotExist},
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		fi, err := h.Stat(tt.name)
		if tt.wantErr != nil {
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("Stat(%s) err = %v, want %v", tt.name, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("Stat(%s): %v", tt.name, err)
			continue
		}
		if fi.Mode() != tt.wantMode {
			t.Errorf("Stat(%s) mode %v, want %v", tt.name, fi.Mode(), tt.wantMode)
		}
	}
	if fi, _ := h.Stat("/etc/corosync.conf"); fi.Name() != "corosync.conf" || fi.Size() != 9 || fi.IsDir() {
		t.Errorf("Stat: name %q size %d dir %v", fi.Name(), fi.Size(), fi.IsDir())
	}
}

// TestRealRoot runs through Root("/") on a directory of the test's own.
func TestRealRoot(t *testing.T) {
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	h := Root("/")
	p := filepath.Join(dir, "unit.service")
	if !mustWrite(t, h, p, "[Unit]\n", 0o644, WriteOptions{}) {
		t.Error("changed = false")
	}
	checkFile(t, p, "[Unit]\n", 0o644)
	if got, err := h.ReadFile(p); err != nil || string(got) != "[Unit]\n" {
		t.Errorf("ReadFile = %q, %v", got, err)
	}
}
