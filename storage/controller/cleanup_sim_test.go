package controller

import (
	"slices"
	"strings"
	"testing"

	"github.com/pvehci/pvehci/ha/state"
	"github.com/pvehci/pvehci/internal/run"
	"github.com/pvehci/pvehci/storage/lvm"
	"github.com/pvehci/pvehci/storage/satellite"
)

// TestCleanupOrphansOnSim: a replica whose resource vanished from the state
// without its node acting (a crash between the state change and the
// satellite's pass, or a hand-made edit) leaves its DRBD resource up, its
// .res file and its LV behind. `pvehci node cleanup --orphans` lists them
// with the command for each, the LV after the DRBD resource that holds
// it; removes exactly the confirmed ones, in that order; leaves LVs pvehci
// did not make and snapshot LVs alone; and a pass plans nothing for them
// either way.
func TestCleanupOrphansOnSim(t *testing.T) {
	t.Parallel()
	c := newSimCluster(t, restoreKiB)
	c.until("resource up", 8, func() bool { return c.upToDate(testRD) })
	c.snapshot("s1", 1000)
	r := c.nodes["pve2"]
	for _, line := range []string{"lvcreate -V 4M -T pve/data -n stale_00000 --addtag pvehci", "lvcreate -V 4M -T pve/data -n foreign"} {
		if _, err := r.host.Runner().Run(t.Context(), runLine(line)); err != nil {
			t.Fatal(err)
		}
	}
	// The resource on pve2 vanishes from the state behind its back.
	mustApply(t, c.s, &state.DeleteResource{ResourceDefinition: testRD, Node: "pve2"})
	rec := c.recs["pve2"]
	items, err := rec.Orphans(t.Context(), c.s)
	if err != nil {
		t.Fatal(err)
	}
	vol := "pve/" + lvm.VolumeLVName(testRD, 0)
	want := map[string]string{
		"drbd:" + testRD:     "drbdsetup down " + testRD,
		"res:" + testRD:      "rm " + satellite.ResPath(testRD),
		"lv:" + vol:          "lvremove -f " + vol + " (once drbdsetup down " + testRD + " has detached it)",
		"lv:pve/stale_00000": "lvremove -f pve/stale_00000",
	}
	var keys []string
	for _, it := range items {
		keys = append(keys, it.Key)
		if w, ok := want[it.Key]; !ok || it.Command != w {
			t.Errorf("%s: command %q kept %q, want %q", it.Key, it.Command, it.Kept, w)
		}
	}
	if len(items) != len(want) {
		t.Fatalf("orphans %v, want %v", keys, want)
	}
	// A pass never removes them.
	if rep, err := rec.Pass(t.Context(), c.s); err != nil || len(rep.Plan.Actions) > 0 || len(rep.Plan.Orphans) == 0 {
		t.Fatalf("pass with orphans: %v %v %v", rep.Plan.Actions, rep.Plan.Orphans, err)
	}
	r.take()

	// Only what was confirmed goes: the stale LV stays.
	confirmed := slices.DeleteFunc(slices.Clone(keys), func(k string) bool { return k == "lv:pve/stale_00000" })
	done, err := rec.RemoveOrphans(t.Context(), c.s, confirmed)
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range done {
		if slices.Contains(confirmed, it.Key) != it.Removed || it.Error != "" {
			t.Errorf("%s: removed %v error %q", it.Key, it.Removed, it.Error)
		}
	}
	var ran []string
	for _, cmd := range r.take() {
		if cmd.Name == "drbdsetup" && slices.Contains(cmd.Args, "down") || cmd.Name == "lvremove" {
			ran = append(ran, strings.TrimPrefix(cmd.String(), "timeout 45s "))
		}
	}
	if !slices.Equal(ran, []string{"drbdsetup down " + testRD, "lvremove -f " + vol}) {
		t.Errorf("commands %q", ran)
	}
	items, err = rec.Orphans(t.Context(), c.s)
	if err != nil || len(items) != 1 || items[0].Key != "lv:pve/stale_00000" {
		t.Fatalf("orphans after the cleanup: %+v %v", items, err)
	}
	// The snapshot LV of the vanished replica and the LV pvehci did not
	// make are still there.
	want2, _ := satellite.Desired(c.s, "pve2")
	got, err := rec.Observe(t.Context(), want2)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"pve/foreign", "pve/" + satellite.SnapshotLVName(testRD, 0, "s1")} {
		if _, ok := got.LVs[k]; !ok {
			t.Errorf("%s was removed", k)
		}
	}
	// Removing something that is not (or no longer) an orphan is refused.
	done, err = rec.RemoveOrphans(t.Context(), c.s, []string{"lv:pve/foreign", "drbd:" + testRD})
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range done {
		if it.Removed {
			t.Errorf("%s removed", it.Key)
		}
	}
}

func runLine(line string) run.Cmd {
	w := strings.Fields(line)
	return run.Command(w[0], w[1:]...)
}
