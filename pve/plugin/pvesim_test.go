package plugin_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/pvehci/pvehci/pve/plugin"
	"github.com/pvehci/pvehci/pve/pvesim"
)

// TestLiveMigrationThroughPVESim runs a VM's life in the simulated PVE
// with the plugin emulation against pvehci's LINSTOR API: the live
// migration to a node without a replica runs there on a diskless client
// while the source keeps its diskful replica (linstor-proxmox.md §8).
func TestLiveMigrationThroughPVESim(t *testing.T) {
	e := newEnv(t)
	var target string
	var seen map[string]string
	sim := pvesim.New(pvesim.Options{Nodes: []string{"pve1", "pve2", "pve3", "pve4"}, Storage: plugin.Storage{Client: e.c},
		BothActive: func(_ context.Context, _ int, source, tgt string, vols []string) error {
			rd, _, _ := plugin.ParseVolname(vols[0])
			seen = e.kinds(rd)
			return nil
		}})
	ctx := context.Background()
	if _, err := sim.CreateVM(ctx, 100, "pve1", "web", pvesim.Disk{Key: "scsi0", SizeKiB: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	v, _ := sim.VM(100)
	vol := v.Volnames["scsi0"]
	rd, _, err := plugin.ParseVolname(vol)
	if err != nil {
		t.Fatal(err)
	}
	before := e.kinds(rd)
	for _, n := range []string{"pve2", "pve3", "pve4"} {
		if _, ok := before[n]; !ok {
			target = n
			break
		}
	}
	if _, err := sim.Migrate(ctx, 100, target); err != nil {
		t.Fatal(err)
	}
	if seen[target] != "DISKLESS" || seen["pve1"] != "LVM_THIN" {
		t.Fatalf("while both sides were active: %v, want a diskless client on %s and pve1 diskful", seen, target)
	}
	if k := e.kinds(rd); k[target] != "DISKLESS" || k["pve1"] != "LVM_THIN" {
		t.Fatalf("after migration to %s: %v", target, k)
	}
	if got := sim.Transcript(); !slices.Equal(got[2:], []string{
		"lock 100 migrate",
		"activate " + vol + " " + target,
		"both-active 100 pve1 " + target,
		"move 100 pve1 " + target,
		"deactivate " + vol + " pve1",
		"unlock 100",
	}) {
		t.Fatalf("transcript:\n%s", strings.Join(got, "\n"))
	}
	// Back home: the client on the old target is deleted (or kept as the
	// tie-breaker); the diskful replicas never changed.
	if _, err := sim.Migrate(ctx, 100, "pve1"); err != nil {
		t.Fatal(err)
	}
	if k := e.kinds(rd)[target]; k != "" && k != "DISKLESS TIE_BREAKER" {
		t.Fatalf("%s after migrating away is %q", target, k)
	}
	if _, err := sim.DeleteVM(ctx, 100); err != nil {
		t.Fatal(err)
	}
	e.raw(404, "GET", "/v1/resource-definitions/"+rd, "")
}
