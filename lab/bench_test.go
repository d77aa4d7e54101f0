package lab

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	lc "github.com/LINBIT/golinstor/client"
)

// BenchmarkLabSpawn spawns b.N resource definitions from the lab's
// resource group (2 diskful replicas and a tie-breaker each, 64 MiB thin
// volumes) through golinstor, one after the other as the Proxmox plugin
// does. Each spawn answers once the device is usable on a node, so the
// figure covers the leader, the satellites' passes and their reports.
// Run with `make bench-cluster` (docs/benchmarks.md).
func BenchmarkLabSpawn(b *testing.B) {
	ctx := context.Background()
	l, err := Start(ctx, Config{Dir: b.TempDir(), AddrBase: randomBase(), Binary: binary, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	c, err := l.Client()
	if err != nil {
		b.Fatal(err)
	}
	before := rssOf(l)
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		err := c.ResourceGroups.Spawn(ctx, ResourceGroup, lc.ResourceGroupSpawn{ResourceDefinitionName: fmt.Sprintf("bench-%05d", i), VolumeSizes: []int64{64 << 10}})
		if err != nil {
			b.Fatalf("spawn %d: %v", i, err)
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	// Let the satellites settle (the second replicas and tie-breakers
	// come up after the answer) before the memory figure.
	time.Sleep(5 * time.Second)
	after := rssOf(l)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "spawns/s")
	for i, n := range l.Nodes {
		b.ReportMetric(float64(after[i])/1024, n.Name+"-MiB")
		b.ReportMetric(float64(after[i]-before[i])/float64(b.N), n.Name+"-KiB/rsc")
	}
}

func rssOf(l *Lab) []int64 {
	out := make([]int64, len(l.Nodes))
	for i, n := range l.Nodes {
		out[i] = rssKiB(n.PID())
	}
	return out
}

// BenchmarkLabUp starts a 3-node lab: every node bootstrapped through
// `pvehci bootstrap`'s steps against its simulated host (daemon start,
// cluster init or join, registration, storage entry), then /health on
// every node and every pool reported. Run with `make bench-cluster`.
func BenchmarkLabUp(b *testing.B) {
	ctx := context.Background()
	for range b.N {
		l, err := Start(ctx, Config{Dir: b.TempDir(), AddrBase: randomBase(), Binary: binary, Log: slog.New(slog.DiscardHandler)})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		l.Close()
		b.StartTimer()
	}
}
