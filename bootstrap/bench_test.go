package bootstrap_test

import (
	"context"
	"testing"
)

// BenchmarkPlanFresh is `pvehci bootstrap --plan` on a fresh node of the
// simulated cluster: every step asks the host what it has (about 30
// commands, file reads, netlink and sysfs). On a real node the commands'
// own run time adds to it; the figure is bootstrap's part.
func BenchmarkPlanFresh(b *testing.B) {
	tc := newTestCluster(b)
	e := tc.engine("pve1")
	ctx := context.Background()
	b.ResetTimer()
	for range b.N {
		if _, err := e.Plan(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkConvergedRerun is `pvehci bootstrap` on a converged node: the
// plan (nothing to do) and the verification of every step, including the
// REST API calls of registration.
func BenchmarkConvergedRerun(b *testing.B) {
	tc := newTestCluster(b)
	for _, n := range []string{"pve1", "pve2", "pve3"} {
		tc.bootstrapNode(n)
	}
	e := tc.engine("pve2")
	ctx := context.Background()
	b.ResetTimer()
	for range b.N {
		plan, err := e.Plan(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if !plan.Empty() {
			b.Fatalf("not converged:\n%s", plan)
		}
		if _, err := e.Apply(ctx, plan, nil); err != nil {
			b.Fatal(err)
		}
	}
}
