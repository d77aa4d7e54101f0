package state

import (
	"fmt"
	"testing"
	"time"

	"github.com/pvehci/pvehci/storage/model"
)

// The benchmarks size a large cluster's state: 10,000 resource definitions
// with one 10 GiB volume each, placed on 3 nodes (two diskful, one
// tie-breaker). Every node then holds 10,000 resources, so the port range is
// widened from LINSTOR's default 1,000 ports.
const benchRDs = 10_000

func benchCommands() []Command {
	cmds := []Command{&SetProps{Target: Target{Kind: model.ObjController},
		Change: model.PropsChange{Set: model.Props{model.KeyTcpPortAutoRange: "7000-29999"}}}}
	for i := range benchRDs {
		name := fmt.Sprintf("pm-%08x", i)
		cmds = append(cmds,
			&CreateResourceDefinition{Name: name, ResourceGroup: "DfltRscGrp", DrbdSecret: testSecret,
				Props:             model.Props{model.KeyAuxVMID: fmt.Sprint(100 + i)},
				VolumeDefinitions: []NewVolumeDefinition{{SizeKiB: 10 << 20}}},
			&CreateResource{ResourceDefinition: name, Node: "n1", Kind: Diskful, CreateTimestamp: int64(i)},
			&CreateResource{ResourceDefinition: name, Node: "n2", Kind: Diskful, CreateTimestamp: int64(i)},
			&CreateResource{ResourceDefinition: name, Node: "n3", Kind: TieBreaker, CreateTimestamp: int64(i)},
		)
	}
	return cmds
}

func encodeAll(b *testing.B, cmds []Command) [][]byte {
	out := make([][]byte, len(cmds))
	for i, c := range cmds {
		e, err := Encode(c)
		if err != nil {
			b.Fatal(err)
		}
		out[i] = e
	}
	return out
}

// BenchmarkApply measures building the whole state from log entries, as a
// replica replaying its raft log does (decode included).
func BenchmarkApply(b *testing.B) {
	entries := encodeAll(b, benchCommands())
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		s := cluster(b, 3)
		b.StartTimer()
		start := time.Now()
		for _, e := range entries {
			if res := s.ApplyEncoded(e); res.Err != nil {
				b.Fatal(res.Err)
			}
		}
		el := time.Since(start)
		b.ReportMetric(float64(el.Nanoseconds())/float64(len(entries)), "ns/command")
		b.ReportMetric(float64(len(entries))/el.Seconds(), "commands/s")
	}
}

// BenchmarkApplyDecoded is Apply without the JSON decode.
func BenchmarkApplyDecoded(b *testing.B) {
	cmds := benchCommands()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		s := cluster(b, 3)
		b.StartTimer()
		start := time.Now()
		for _, c := range cmds {
			if res := s.Apply(c); res.Err != nil {
				b.Fatal(res.Err)
			}
		}
		b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(len(cmds)), "ns/command")
	}
}

func benchState(b *testing.B) *State {
	s := cluster(b, 3)
	for _, c := range benchCommands() {
		if res := s.Apply(c); res.Err != nil {
			b.Fatal(res.Err)
		}
	}
	return s
}

// BenchmarkSnapshot measures writing the FSM snapshot of the full state.
func BenchmarkSnapshot(b *testing.B) {
	s := benchState(b)
	b.ResetTimer()
	var size int
	for range b.N {
		snap, err := s.Snapshot()
		if err != nil {
			b.Fatal(err)
		}
		size = len(snap)
	}
	b.ReportMetric(float64(size)/(1<<20), "MiB")
}

// BenchmarkRestore measures reading it back, consistency checks included.
func BenchmarkRestore(b *testing.B) {
	snap, err := benchState(b).Snapshot()
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if err := New().Restore(snap); err != nil {
			b.Fatal(err)
		}
	}
}
