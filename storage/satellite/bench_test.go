package satellite

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/pvehci/pvehci/internal/run"
)

// benchCluster has n resources, all placed on pve1 and pve2.
func benchCluster(b *testing.B, n int) *env {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("vm-%d-disk-0", 1000+i)
	}
	s := cluster(b, names...)
	layout := func(rsc string) fakeDRBD {
		k := twoNodeLayout(rsc)
		def, _ := s.ResourceDefinition(rsc)
		k.minors = []int{def.VolumeDefinitions[0].Minor}
		return k
	}
	e := &env{s: s, h: newHost(layout), root: b.TempDir()}
	if err := os.MkdirAll(e.root+ResDir, 0o755); err != nil {
		b.Fatal(err)
	}
	return e
}

func countMutating(f *run.Fake) (all, mutating int) {
	for _, c := range f.Calls() {
		all++
		if !isRead(c) {
			mutating++
		}
	}
	return all, mutating
}

// BenchmarkFreshPass1000 is a full pass (desired, observe, plan, apply) that
// creates 1,000 two-replica resources on one node.
func BenchmarkFreshPass1000(b *testing.B) {
	var cmds, mut int
	for b.Loop() {
		b.StopTimer()
		e := benchCluster(b, 1000)
		f := e.h.fake(b, nil)
		b.StartTimer()
		rep, err := newReconciler(e.root, f).Pass(context.Background(), e.s)
		if err != nil || len(rep.Failed()) > 0 {
			b.Fatal(err, len(rep.Failed()))
		}
		cmds, mut = countMutating(f)
	}
	b.ReportMetric(float64(cmds), "cmds/op")
	b.ReportMetric(float64(mut), "mutating/op")
}

// BenchmarkNoopPass1000 is a pass over a converged node with 1,000
// resources: only the three read commands.
func BenchmarkNoopPass1000(b *testing.B) {
	e := benchCluster(b, 1000)
	if _, err := newReconciler(e.root, e.h.fake(b, nil)).Pass(context.Background(), e.s); err != nil {
		b.Fatal(err)
	}
	var cmds, mut int
	for b.Loop() {
		f := e.h.fake(b, nil)
		rep, err := newReconciler(e.root, f).Pass(context.Background(), e.s)
		if err != nil || len(rep.Plan.Actions) != 0 {
			b.Fatal(err, len(rep.Plan.Actions), "actions")
		}
		cmds, mut = countMutating(f)
	}
	b.ReportMetric(float64(cmds), "cmds/op")
	b.ReportMetric(float64(mut), "mutating/op")
	if mut != 0 {
		b.Fatalf("no-op pass ran %d mutating commands", mut)
	}
}
