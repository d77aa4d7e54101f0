package controller

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/pvehci/pvehci/ha/state"
	"github.com/pvehci/pvehci/storage/drbd"
	"github.com/pvehci/pvehci/storage/metrics"
	"github.com/pvehci/pvehci/storage/model"
)

// relocationTotals reads pvehci_relocations_total by result.
func relocationTotals(t *testing.T, c prometheus.Collector) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gathering: %v", err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "pvehci_relocations_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" {
					out[l.GetValue()] = m.GetCounter().GetValue()
				}
			}
		}
	}
	return out
}

// TestRelocatorCountsEndedRelocations checks that each relocation that
// ends while the Relocator leads is counted once with its result, whether
// the Relocator ended it or a command from elsewhere did, and that what
// ended before a term is not counted by it.
func TestRelocatorCountsEndedRelocations(t *testing.T) {
	st := testCluster(t)
	mustApply(t, st, &state.CreateNode{Name: "pve3", NodeType: model.NodeTypeSatellite,
		NetInterfaces: []model.NetInterface{{Name: "default", Address: "10.99.0.3"}}})
	const (
		noReplica  = "vm-101-disk-1" // a timer the Relocator cancels: nothing runs it
		endedEarly = "vm-102-disk-1" // ended before the Relocator's term
	)
	for _, rd := range []string{noReplica, endedEarly} {
		mustApply(t, st, &state.CreateResourceDefinition{Name: rd, DrbdSecret: testSecret,
			VolumeDefinitions: []state.NewVolumeDefinition{{SizeKiB: 1 << 20}}})
	}
	move := func(rd string, s model.RelocationState, at int64) {
		t.Helper()
		mustApply(t, st, &state.UpdateRelocation{ResourceDefinition: rd, State: s, At: at})
	}
	timer := func(rd, target string, at int64) {
		t.Helper()
		mustApply(t, st, &state.SetRelocationTimer{ResourceDefinition: rd, TargetNode: target, DueAt: at + 1, At: at})
	}
	// testRD's new disk on pve2 is syncing; pve2 reports it UpToDate, and
	// two diskful replicas are the place count, so the Relocator ends it.
	timer(testRD, "pve2", 1)
	move(testRD, model.RelocAdding, 2)
	move(testRD, model.RelocSyncing, 3)
	timer(noReplica, "pve1", 1)
	timer(endedEarly, "pve3", 1)
	move(endedEarly, model.RelocDone, 2)

	store := &Store{}
	var seq uint64
	put(store, drbdUp("pve2", drbd.DiskUpToDate), &seq)
	results := metrics.NewRelocationResults()
	var ended []string
	r := &Relocator{Store: store, State: func() *state.State { return st },
		Changed: func() <-chan struct{} { return make(chan struct{}) },
		Apply: func(_ context.Context, cmd state.Command) (state.Result, error) {
			return st.Apply(cmd), nil
		},
		Finished: func(rel model.Relocation) {
			results.Finished(rel)
			ended = append(ended, fmt.Sprintf("%s %s", rel.ResourceName, rel.State))
		},
	}
	now := time.UnixMilli(10)
	pass := func() {
		t.Helper()
		if err := r.Pass(context.Background(), now); err != nil {
			t.Fatalf("pass: %v", err)
		}
	}
	check := func(wantEnded []string, want map[string]float64) {
		t.Helper()
		slices.Sort(ended)
		if !slices.Equal(ended, wantEnded) {
			t.Errorf("ended %q, want %q", ended, wantEnded)
		}
		got := relocationTotals(t, results)
		for _, res := range []string{"done", "failed", "cancelled"} {
			if got[res] != want[res] {
				t.Errorf("pvehci_relocations_total{result=%q} = %v, want %v", res, got[res], want[res])
			}
		}
	}

	check(nil, nil) // every result is there at 0 before anything ends
	pass()
	first := []string{testRD + " done", noReplica + " cancelled"} // sorted
	check(first, map[string]float64{"done": 1, "cancelled": 1})
	for _, rel := range st.Relocations() {
		if want := map[string]model.RelocationState{testRD: model.RelocDone, noReplica: model.RelocCancelled,
			endedEarly: model.RelocDone}[rel.ResourceName]; rel.State != want {
			t.Fatalf("relocation of %s is %s after the pass, want %s", rel.ResourceName, rel.State, want)
		}
	}
	pass()
	pass()
	check(first, map[string]float64{"done": 1, "cancelled": 1})

	// A new timer for the same definition is a new relocation; here a
	// command from outside the Relocator ends it.
	timer(noReplica, "pve1", 20)
	move(noReplica, model.RelocFailed, 21)
	pass()
	pass()
	second := append([]string{noReplica + " failed"}, first...)
	slices.Sort(second)
	check(second, map[string]float64{"done": 1, "cancelled": 1, "failed": 1})

	// While this daemon did not lead, another leader ended a relocation and
	// counted it; the next term must not count it again.
	timer(endedEarly, "pve3", 30)
	move(endedEarly, model.RelocCancelled, 31)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.Run(ctx); err != context.Canceled {
		t.Fatalf("run: %v", err)
	}
	check(second, map[string]float64{"done": 1, "cancelled": 1, "failed": 1})
}
