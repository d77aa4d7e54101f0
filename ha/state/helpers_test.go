package state

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math/bits"
	"reflect"
	"slices"
	"testing"

	"github.com/pvehci/pvehci/storage/model"
)

const testSecret = "Zm9vYmFyYmF6cXV4MTIzNDU2"

func ptr[T any](v T) *T { return &v }

// apply runs cmd and fails the test if it is refused.
func apply(t testing.TB, s *State, cmd Command) Result {
	t.Helper()
	res := s.Apply(cmd)
	if res.Err != nil {
		t.Fatalf("%s: %v", cmd.Type(), res.Err)
	}
	return res
}

func snapshotOf(t testing.TB, s *State) []byte {
	t.Helper()
	b, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func netif(addr string) []model.NetInterface {
	return []model.NetInterface{{Name: "default", Address: addr}}
}

// cluster returns a state with satellite nodes n1..nN, each with an LVM
// thin pool DfltStorPool (so that defaults place diskful resources) and a
// second pool "thin2".
func cluster(t testing.TB, nodes int) *State {
	t.Helper()
	s := New()
	for i := 1; i <= nodes; i++ {
		name := fmt.Sprintf("n%d", i)
		apply(t, s, &CreateNode{Name: name, NodeType: model.NodeTypeSatellite, NetInterfaces: netif(fmt.Sprintf("10.0.0.%d", i))})
		for _, p := range []string{model.DefaultStoragePool, "thin2"} {
			apply(t, s, &CreateStoragePool{Node: name, Name: p, ProviderKind: model.ProviderLVMThin,
				Props: model.Props{model.KeyStorDriverLvmVg: "pve", model.KeyStorDriverThinPool: "data"}})
		}
	}
	return s
}

func newRD(name string, sizes ...int64) *CreateResourceDefinition {
	c := &CreateResourceDefinition{Name: name, DrbdSecret: testSecret}
	for _, sz := range sizes {
		c.VolumeDefinitions = append(c.VolumeDefinitions, NewVolumeDefinition{SizeKiB: sz})
	}
	return c
}

// checkIndexes fails the test if the incrementally kept indexes differ from
// ones rebuilt from the objects: every commit must keep them exact.
func checkIndexes(t testing.TB, s *State) {
	t.Helper()
	s.mu.RLock()
	defer s.mu.RUnlock()
	got := s.idx
	s.reindex()
	want := s.idx
	s.idx = got
	if d := diffIndexes(got, want); d != "" {
		t.Fatalf("indexes drifted from the objects: %s", d)
	}
}

func diffIndexes(got, want indexes) string {
	norm := func(m map[string]map[string]bool) map[string]map[string]bool {
		out := map[string]map[string]bool{}
		for k, v := range m {
			if len(v) > 0 {
				out[k] = v
			}
		}
		return out
	}
	normInt := func(m map[string]int) map[string]int {
		out := map[string]int{}
		for k, v := range m {
			if v != 0 {
				out[k] = v
			}
		}
		return out
	}
	normPool := func(m map[poolKey]int) map[poolKey]int {
		out := map[poolKey]int{}
		for k, v := range m {
			if v != 0 {
				out[k] = v
			}
		}
		return out
	}
	setOf := func(n *numberSet) []int {
		var out []int
		if n == nil {
			return out
		}
		for w, word := range n.words {
			for word != 0 {
				b := bits.TrailingZeros64(word)
				out = append(out, w*64+b)
				word &^= 1 << uint(b)
			}
		}
		return out
	}
	ports := func(m map[string]*numberSet) map[string][]int {
		out := map[string][]int{}
		for k, v := range m {
			if l := setOf(v); len(l) > 0 {
				out[k] = l
			}
		}
		return out
	}
	switch {
	case !reflect.DeepEqual(norm(got.rscOnNode), norm(want.rscOnNode)):
		return fmt.Sprintf("rscOnNode %v != %v", got.rscOnNode, want.rscOnNode)
	case !slices.Equal(setOf(&got.minors), setOf(&want.minors)) || got.minors.n != want.minors.n:
		return fmt.Sprintf("minors %v != %v", setOf(&got.minors), setOf(&want.minors))
	case !maps.Equal(got.minorHolder, want.minorHolder):
		return "minorHolder differs"
	case !reflect.DeepEqual(ports(got.ports), ports(want.ports)):
		return fmt.Sprintf("ports %v != %v", ports(got.ports), ports(want.ports))
	case !maps.Equal(normPool(got.poolUse), normPool(want.poolUse)):
		return fmt.Sprintf("poolUse %v != %v", got.poolUse, want.poolUse)
	case !reflect.DeepEqual(norm(got.runsBySched), norm(want.runsBySched)):
		return "runsBySched differs"
	case !maps.Equal(got.extNames, want.extNames):
		return "extNames differs"
	case !maps.Equal(normInt(got.snapsOnNode), normInt(want.snapsOnNode)):
		return "snapsOnNode differs"
	case !reflect.DeepEqual(norm(got.rdsOfGroup), norm(want.rdsOfGroup)):
		return "rdsOfGroup differs"
	case !maps.Equal(normInt(got.poolsOfDefin), normInt(want.poolsOfDefin)):
		return fmt.Sprintf("poolsOfDefin %v != %v", got.poolsOfDefin, want.poolsOfDefin)
	}
	return ""
}

// wantKind checks a result's error kind; 0 means success.
func wantKind(t testing.TB, res Result, kind ErrorKind) {
	t.Helper()
	if kind == 0 {
		if res.Err != nil {
			t.Fatalf("unexpected error: %v", res.Err)
		}
		return
	}
	if res.Err == nil {
		t.Fatalf("succeeded, want %v", kind)
	}
	var e *Error
	if !errors.As(res.Err, &e) {
		t.Fatalf("error %T is not *Error", res.Err)
	}
	if !errors.Is(res.Err, kind) {
		t.Fatalf("error kind %v (%v), want %v", e.Kind, res.Err, kind)
	}
	if e.Message == "" || e.Code == 0 {
		t.Fatalf("error lacks message or code: %+v", e)
	}
}

func sameBytes(a, b []byte) bool { return bytes.Equal(a, b) }
