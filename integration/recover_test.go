package integration

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pvehci/pvehci/ha/state"
)

// Disaster recovery through the real command line: a backup restored with
// --yes undoes later changes; after two of three nodes are lost for good,
// `cluster recover --force` on the stopped survivor makes it a working
// cluster of one, with every committed change kept.
func TestBackupRestoreAndRecoverThroughTheCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real daemons; skipped with -short")
	}
	nodes := formCluster(t, 3)
	storageObjects(t, nodes[0])
	ctx := context.Background()
	if err := nodes[0].apply(ctx, newRD("keep")); err != nil {
		t.Fatal(err)
	}
	backup := filepath.Join(t.TempDir(), "state.json")
	if out, err := nodes[1].cli("cluster", "backup", backup); err != nil {
		t.Fatalf("backup: %v\n%s", err, out)
	}
	if err := nodes[0].apply(ctx, newRD("after-backup")); err != nil {
		t.Fatal(err)
	}
	if out, err := nodes[2].cli("cluster", "restore", "--yes", backup); err != nil {
		t.Fatalf("restore: %v\n%s", err, out)
	}
	waitUntil(t, 10*time.Second, "every node to drop the change made after the backup", func() bool {
		for _, d := range nodes {
			snap, err := d.snapshot()
			if err != nil || strings.Contains(string(snap), "after-backup") || !strings.Contains(string(snap), `"keep"`) {
				return false
			}
		}
		return true
	})

	// Two nodes are lost for good; the survivor cannot lead alone.
	survivor := nodes[0]
	nodes[1].kill()
	nodes[2].kill()
	if out, err := survivor.cli("cluster", "recover", "--force", "--node", "n1", "--member", "n1="+survivor.addr,
		"--data-dir", filepath.Join(survivor.dir, "data")); err == nil || !strings.Contains(out, "stop it first") {
		t.Fatalf("recover with the daemon running: err=%v\n%s", err, out)
	}
	if out, err := survivor.cli("cluster", "recover", "--member", "n1="+survivor.addr); err == nil || !strings.Contains(out, "--force") {
		t.Fatalf("recover without --force: err=%v\n%s", err, out)
	}
	survivor.stop()
	if out, err := survivor.cli("cluster", "recover", "--force", "--node", "n1", "--member", "n1="+survivor.addr,
		"--data-dir", filepath.Join(survivor.dir, "data")); err != nil {
		t.Fatalf("recover: %v\n%s", err, out)
	}
	survivor.start()
	waitUntil(t, 15*time.Second, "the survivor to lead alone", func() bool {
		st, err := survivor.status()
		return err == nil && st.Raft != nil && st.Raft.LeaderID == "n1"
	})
	snap, _ := survivor.snapshot()
	if !strings.Contains(string(snap), `"keep"`) {
		t.Fatal("committed state lost by the recovery")
	}
	for _, lost := range []string{"n2", "n3"} {
		if out, err := survivor.cli("cluster", "remove", lost); err != nil {
			t.Fatalf("remove %s: %v\n%s", lost, err, out)
		}
	}
	if err := survivor.apply(ctx, &state.CreateResourceDefinition{Name: "after-recovery", DrbdSecret: "s"}); err != nil {
		t.Fatalf("write after recovery: %v", err)
	}
}
