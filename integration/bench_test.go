package integration

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pvehci/pvehci/ha/state"
	"github.com/pvehci/pvehci/storage/model"
)

func percentile(d []time.Duration, p float64) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[int(float64(len(s)-1)*p)]
}

func newRD(name string) *state.CreateResourceDefinition {
	return &state.CreateResourceDefinition{Name: name, DrbdSecret: "s3cret",
		VolumeDefinitions: []state.NewVolumeDefinition{{SizeKiB: 1 << 20}}}
}

// BenchmarkFailover kills the leader of a 3-node cluster with SIGKILL and
// measures the time until a surviving node acknowledges a write; the killed
// node is restarted and rejoins before the next round. Run with
// -benchtime=20x for the figure in docs/benchmarks.md.
func BenchmarkFailover(b *testing.B) {
	nodes := formCluster(b, 3)
	ctx := context.Background()
	var took []time.Duration
	round := 0
	for b.Loop() {
		round++
		leader := leaderOf(b, nodes)
		var survivor *daemonProc
		for _, d := range nodes {
			if d != leader {
				survivor = d
				break
			}
		}
		start := time.Now()
		leader.kill()
		for i := 0; ; i++ {
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err := survivor.apply(cctx, newRD(fmt.Sprintf("f%d-%d", round, i)))
			cancel()
			if err == nil {
				break
			}
			if time.Since(start) > 30*time.Second {
				b.Fatalf("no write acknowledged within 30s of the kill: %v", err)
			}
		}
		took = append(took, time.Since(start))
		leader.start()
		waitUntil(b, 30*time.Second, leader.name+" to rejoin", func() bool {
			st, err := leader.status()
			return err == nil && st.Raft != nil && st.Raft.LeaderID != ""
		})
	}
	b.ReportMetric(float64(percentile(took, 0.5).Milliseconds()), "median-ms")
	b.ReportMetric(float64(percentile(took, 1).Milliseconds()), "max-ms")
}

// BenchmarkWriteLatency measures one client writing through the leader's
// local API: each write is replicated to a majority before it is
// acknowledged.
func BenchmarkWriteLatency(b *testing.B) {
	nodes := formCluster(b, 3)
	leader := leaderOf(b, nodes)
	ctx := context.Background()
	var lat []time.Duration
	i := 0
	for b.Loop() {
		start := time.Now()
		if err := leader.apply(ctx, newRD(fmt.Sprintf("l%d", i))); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
		i++
	}
	b.ReportMetric(float64(percentile(lat, 0.5).Microseconds()), "p50-us")
	b.ReportMetric(float64(percentile(lat, 0.99).Microseconds()), "p99-us")
}

// BenchmarkWriteThroughput is 16 concurrent clients writing through the
// leader; writes/s is the sustained rate.
func BenchmarkWriteThroughput(b *testing.B) {
	nodes := formCluster(b, 3)
	leader := leaderOf(b, nodes)
	ctx := context.Background()
	var n atomic.Int64
	b.SetParallelism(8) // 8 × GOMAXPROCS clients
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := leader.apply(ctx, newRD(fmt.Sprintf("t%d", n.Add(1)))); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(n.Load())/time.Since(start).Seconds(), "writes/s")
}

// BenchmarkScale10k loads 10,000 resource definitions with 3 diskful
// replicas each (40,000 commands) into a 3-node cluster and reports each
// daemon's resident memory and the size of the state snapshot. Run with
// -benchtime=1x.
func BenchmarkScale10k(b *testing.B) {
	const definitions = 10000
	for b.Loop() {
		nodes := formCluster(b, 3)
		storageObjects(b, nodes[0])
		leader := leaderOf(b, nodes)
		ctx := context.Background()
		// 10,000 replicas per node need more than the default 1,000 ports,
		// as the allocator's error says; an operator widens the range.
		if err := leader.apply(ctx, &state.SetProps{Target: state.Target{Kind: model.ObjController},
			Change: model.PropsChange{Set: model.Props{model.KeyTcpPortAutoRange: "7000-17999"}}}); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		var next atomic.Int64
		var wg sync.WaitGroup
		for w := 0; w < 16; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := next.Add(1)
					if i > definitions {
						return
					}
					name := fmt.Sprintf("vm-%d-disk-0", i)
					if err := leader.apply(ctx, newRD(name)); err != nil {
						b.Error(err)
						return
					}
					for _, node := range []string{"pve1", "pve2", "pve3"} {
						if err := leader.apply(ctx, &state.CreateResource{ResourceDefinition: name, Node: node, Kind: state.Diskful, StoragePool: "thin"}); err != nil {
							b.Error(err)
							return
						}
					}
				}
			}()
		}
		wg.Wait()
		load := time.Since(start)
		snap, err := leader.snapshot()
		if err != nil {
			b.Fatal(err)
		}
		maxRSS := func() float64 {
			var m int64
			for _, d := range nodes {
				m = max(m, rssKiB(d.cmd.Process.Pid))
			}
			return float64(m) / 1024
		}
		b.ReportMetric(maxRSS(), "max-RSS-after-load-MiB")
		// Steady state: what the daemons hold once the load has stopped
		// and the runtime has returned freed memory.
		time.Sleep(10 * time.Second)
		b.ReportMetric(maxRSS(), "max-RSS-idle-MiB")
		// RssFile is mostly bbolt's memory-mapped raft log: clean pages of
		// a file, which the kernel reclaims under pressure.
		var anon, file int64
		for _, d := range nodes {
			if a := procStatusKiB(d.cmd.Process.Pid, "RssAnon:"); a > anon {
				anon, file = a, procStatusKiB(d.cmd.Process.Pid, "RssFile:")
			}
		}
		b.ReportMetric(float64(anon)/1024, "RSS-anon-MiB")
		b.ReportMetric(float64(file)/1024, "RSS-file-MiB")
		if dir := os.Getenv("PVEHCI_BENCH_PROFILE_DIR"); dir != "" {
			var prof []byte
			if err := leader.client().Do(ctx, "GET", "/debug/pprof/heap?gc=1", nil, &prof); err == nil {
				os.WriteFile(dir+"/heap.pprof", prof, 0o600)
			}
		}
		b.ReportMetric(float64(len(snap))/(1<<20), "snapshot-MiB")
		b.ReportMetric(float64(definitions*4)/load.Seconds(), "load-commands/s")
	}
}

func rssKiB(pid int) int64 { return procStatusKiB(pid, "VmRSS:") }

// procStatusKiB reads one "Key:   N kB" line of /proc/PID/status.
func procStatusKiB(pid int, key string) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, key) {
			f := strings.Fields(line)
			if len(f) >= 2 {
				v, _ := strconv.ParseInt(f[1], 10, 64)
				return v
			}
		}
	}
	return 0
}
