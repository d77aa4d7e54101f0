package lab

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestLabSnapshotRollback: qm snapshot, qm rollback and qm delsnapshot
// through the simulated Proxmox API and the plugin's REST calls, against
// the lab's real daemons on the simulated kernel. What the VM wrote after
// a snapshot is gone after the rollback to it; a rollback to a snapshot
// that is not the newest is refused and leaves the VM running.
func TestLabSnapshotRollback(t *testing.T) {
	l := startLab(t, 3, randomBase().String())
	ctx := context.Background()
	vm, err := l.CreateVM(ctx, 100, "n1", 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.SnapshotVM(ctx, vm.ID, "s1"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	rb, err := l.RollbackVM(ctx, vm.ID, "s1")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("rollback to s1 in %s: block 1 %q -> %q", time.Since(start).Round(time.Millisecond), rb.Before, rb.After)
	if !strings.Contains(rb.Before, "after snapshot s1") || rb.After != "" {
		t.Errorf("block 1 before %q after %q: want the marker, then zeros", rb.Before, rb.After)
	}
	if _, err := l.SnapshotVM(ctx, vm.ID, "s2"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.RollbackVM(ctx, vm.ID, "s1"); err == nil || !strings.Contains(err.Error(), "newest") {
		t.Errorf("rollback to s1 with s2 newer: %v", err)
	}
	rb, err = l.RollbackVM(ctx, vm.ID, "s2")
	if err != nil {
		t.Fatal(err)
	}
	// s2 holds the rolled-back data of s1 (zeros), then the VM wrote.
	if !strings.Contains(rb.Before, "after snapshot s2") || rb.After != "" {
		t.Errorf("block 1 before %q after %q: want s2's marker, then zeros", rb.Before, rb.After)
	}
	for _, s := range []string{"s2", "s1"} {
		if err := l.DeleteVMSnapshot(ctx, vm.ID, s); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.DeleteVM(ctx, vm.ID); err != nil {
		t.Fatal(err)
	}
}
