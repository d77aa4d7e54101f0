package corosync

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// On a plain directory PmxcfsLock behaves like on pmxcfs minus the expiry:
// mkdir takes it, a second taker waits (sending unlock requests), rmdir
// releases it.
func TestPmxcfsLock(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc/pve/priv"), 0o700); err != nil {
		t.Fatal(err)
	}
	l := PmxcfsLock{Root: root, Retry: 5 * time.Millisecond}
	if got, want := l.String(), "pmxcfs lock /etc/pve/priv/lock/file-corosync_conf"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	release, err := l.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(root, LockDir, LockName)
	if fi, err := os.Stat(p); err != nil || !fi.IsDir() {
		t.Fatalf("lock directory not created: %v", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = l.Acquire(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "is held by another writer") {
		t.Errorf("second Acquire = %v, want a timeout naming the holder", err)
	}
	// The waiter asked pmxcfs to drop an expired lock: mtime 0.
	if fi, err := os.Stat(p); err != nil || fi.ModTime().Unix() != 0 {
		t.Errorf("no unlock request seen on the lock (mtime %v, %v)", fi.ModTime(), err)
	}

	if err := release(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Errorf("lock directory still there after release: %v", err)
	}
	release, err = l.Acquire(context.Background())
	if err != nil {
		t.Fatalf("Acquire after release: %v", err)
	}
	if err := release(); err != nil {
		t.Fatal(err)
	}
}

func TestPmxcfsLockWithoutPmxcfs(t *testing.T) {
	t.Parallel()
	l := PmxcfsLock{Root: t.TempDir()}
	_, err := l.Acquire(context.Background())
	if err == nil || !strings.Contains(err.Error(), "is pve-cluster running and the node quorate?") {
		t.Errorf("Acquire = %v, want advice about pmxcfs", err)
	}
}

func TestFakeLock(t *testing.T) {
	t.Parallel()
	var l FakeLock
	release, err := l.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Acquire(context.Background()); err == nil {
		t.Error("second Acquire of a held fake lock succeeded")
	}
	if err := release(); err != nil {
		t.Fatal(err)
	}
	if l.Held() {
		t.Error("held after release")
	}
	want := []string{"acquire", "acquire while held", "release"}
	if got := l.Events(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("events = %v, want %v", got, want)
	}
}
