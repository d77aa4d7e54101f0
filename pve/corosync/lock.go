package corosync

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// LockDir is where pmxcfs keeps its cluster-wide locks.
const LockDir = "/etc/pve/priv/lock"

// LockName is the lock Proxmox takes around corosync.conf edits:
// cfs_lock_file("corosync.conf") is "file-" plus the name with '.' and '/'
// turned into '_'.
const LockName = "file-corosync_conf"

// HoldLimit is how long a lock may be held. pmxcfs treats a lock older
// than 120 s as expired and hands it to the next taker; Proxmox aborts its
// own locked work after 60 s to stay well clear of that, and so does
// [Editor.Apply].
const HoldLimit = 60 * time.Second

// Lock is the cluster-wide lock around a corosync.conf edit.
type Lock interface {
	// Acquire waits for the lock until ctx ends and returns the function
	// that releases it.
	Acquire(ctx context.Context) (release func() error, err error)
	// String names the lock for plan printouts.
	String() string
}

// PmxcfsLock takes the same lock Proxmox's own writers take
// (PVE::Cluster::cfs_lock_file), so pvehci and pvecm, the GUI and the API
// never edit corosync.conf at the same time.
type PmxcfsLock struct {
	// Root is prefixed to LockDir: "/" on a node, a test directory
	// elsewhere.
	Root string
	// Retry is the pause between attempts; 0 means 100 ms, Proxmox's
	// shortest.
	Retry time.Duration
}

func (l PmxcfsLock) path() string {
	return filepath.Join(l.Root, LockDir, LockName)
}

func (l PmxcfsLock) String() string {
	return "pmxcfs lock " + filepath.Join(LockDir, LockName)
}

// Acquire creates the lock directory. On pmxcfs mkdir is atomic cluster
// wide and fails with EEXIST while someone holds the lock. Like Proxmox it
// then sets the lock's times to 0 between attempts, which pmxcfs reads as
// "unlock request": a lock older than 120 s is removed, so a holder that
// died does not block the cluster forever.
func (l PmxcfsLock) Acquire(ctx context.Context) (func() error, error) {
	dir := filepath.Join(l.Root, LockDir)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		// Proxmox creates the directory on first use; it lives in
		// /etc/pve/priv, which only exists when pmxcfs is up.
		if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("taking the corosync.conf lock: %s is not available (is pve-cluster running and the node quorate?): %w", dir, err)
		}
	}
	retry := l.Retry
	if retry <= 0 {
		retry = 100 * time.Millisecond
	}
	p := l.path()
	for {
		err := os.Mkdir(p, 0o700)
		if err == nil {
			return func() error {
				if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return fmt.Errorf("releasing the corosync.conf lock: %w", err)
				}
				return nil
			}, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("taking the corosync.conf lock: %w", err)
		}
		_ = os.Chtimes(p, time.Unix(0, 0), time.Unix(0, 0)) // pmxcfs unlock request
		t := time.NewTimer(retry)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("taking the corosync.conf lock: %s is held by another writer (pvecm, the GUI or an admin's tool); try again when it is done: %w", p, ctx.Err())
		case <-t.C:
		}
	}
}

// FakeLock is a Lock for tests. It records every acquire and release, and
// can be made to fail.
type FakeLock struct {
	// Err, when set, is returned by Acquire.
	Err error

	mu     sync.Mutex
	events []string
	held   bool
}

func (f *FakeLock) String() string { return "fake lock" }

// Acquire implements [Lock]. Taking a held lock fails instead of waiting,
// so a test that forgets to release fails rather than hangs.
func (f *FakeLock) Acquire(ctx context.Context) (func() error, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Err != nil {
		f.events = append(f.events, "acquire failed")
		return nil, f.Err
	}
	if f.held {
		f.events = append(f.events, "acquire while held")
		return nil, errors.New("fake lock is already held")
	}
	f.held = true
	f.events = append(f.events, "acquire")
	return func() error {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.held = false
		f.events = append(f.events, "release")
		return nil
	}, nil
}

// Events returns what happened to the lock, in order.
func (f *FakeLock) Events() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.events...)
}

// Held reports whether the lock is held now.
func (f *FakeLock) Held() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.held
}
