package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os/exec"
	"testing"
	"time"

	lc "github.com/LINBIT/golinstor/client"
	"github.com/pvehci/pvehci/internal/localapi"
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

// BenchmarkLabHealth1000 is `pvehci health` on a 3-node lab with 1,000
// resource definitions (2 diskful replicas and a tie-breaker each, 4 MiB
// thin volumes): each iteration runs the binary as an operator would, on
// n2 (not the leader, so the cluster view is fetched through it), with
// --json. Spawning the resources takes minutes and is not timed. Run with
// `make bench-cluster`.
func BenchmarkLabHealth1000(b *testing.B) {
	const total, workers = 1000, 8
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
	start := time.Now()
	next := make(chan int)
	errs := make(chan error, workers)
	for range workers {
		go func() {
			for i := range next {
				name := fmt.Sprintf("h-%05d", i)
				err := c.ResourceGroups.Spawn(ctx, ResourceGroup, lc.ResourceGroupSpawn{ResourceDefinitionName: name, VolumeSizes: []int64{4 << 10}})
				if err != nil {
					// A leader change under this load answers "may or
					// may not have been applied": look, as the error
					// says, and spawn again only if it was not.
					if _, gerr := c.ResourceDefinitions.Get(ctx, name); gerr != nil {
						err = c.ResourceGroups.Spawn(ctx, ResourceGroup, lc.ResourceGroupSpawn{ResourceDefinitionName: name, VolumeSizes: []int64{4 << 10}})
					} else {
						err = nil
					}
				}
				if err != nil {
					errs <- fmt.Errorf("spawn %d: %w", i, err)
					return
				}
			}
			errs <- nil
		}()
	}
	for i := range total {
		next <- i
	}
	close(next)
	for range workers {
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("%d resources spawned in %s", total, time.Since(start).Round(time.Second))
	// Every node reports every replica before the timing starts.
	leader := l.Status(ctx).Leader
	for deadline := time.Now().Add(10 * time.Minute); ; {
		var cv struct {
			Nodes []struct {
				Resources []json.RawMessage `json:"resources"`
			} `json:"nodes"`
		}
		n, _ := l.Node(leader)
		if err := localapi.NewClient(n.Socket).Do(ctx, "GET", "/v1/cluster-view", nil, &cv); err == nil {
			sum := 0
			for _, nv := range cv.Nodes {
				sum += len(nv.Resources)
			}
			if sum >= 3*total {
				break
			}
		}
		if time.Now().After(deadline) {
			b.Fatal("the satellites did not report every replica within 10 minutes")
		}
		time.Sleep(2 * time.Second)
	}
	b.Logf("settled after %s", time.Since(start).Round(time.Second))
	node := l.Nodes[1]
	if node.Name == leader {
		node = l.Nodes[2]
	}
	// b.Loop runs the function once, so the spawning above is not
	// repeated for the framework's first probe with b.N = 1.
	for b.Loop() {
		out, err := exec.Command(binary, "health", "--json", "--socket", node.Socket).Output()
		if len(out) == 0 {
			b.Fatalf("health printed nothing: %v", err)
		}
	}
}
