package state

import (
	"errors"
	"strings"
	"testing"

	"github.com/pvehci/pvehci/storage/model"
)

func TestSnapshotRoundTrip(t *testing.T) {
	s := fixture(t)
	apply(t, s, &CreateSnapshotDefinition{ResourceDefinition: "rd1", Name: "s1", CreateTimestamp: 5})
	apply(t, s, &RecordJobRun{Run: testRun("r1", "nightly", model.RunRunning, 10, 0)})
	a := snapshotOf(t, s)
	r := New()
	if err := r.Restore(a); err != nil {
		t.Fatal(err)
	}
	if b := snapshotOf(t, r); !sameBytes(a, b) {
		t.Fatalf("snapshot changed across restore:\n%s\n%s", a, b)
	}
	checkIndexes(t, r)
	// The restored state allocates exactly as the original would.
	c1 := apply(t, s, &CreateResource{ResourceDefinition: "empty", Node: "n1"})
	c2 := apply(t, r, &CreateResource{ResourceDefinition: "empty", Node: "n1"})
	if c1.Allocated[1] != c2.Allocated[1] || c1.Allocated[1].Number != 7001 {
		t.Fatalf("allocations differ: %v vs %v", c1.Allocated, c2.Allocated)
	}
}

func TestNewStateIsLinstorsFreshDatabase(t *testing.T) {
	s := New()
	if g, ok := s.ResourceGroup("DfltRscGrp"); !ok || g.SelectFilter.PlaceCount != 2 {
		t.Fatalf("DfltRscGrp %+v", g)
	}
	if p := s.ControllerProps(); p[model.KeyAutoAddQuorumTiebreaker] != "True" || p[model.KeyOnNoQuorum] != "io-error" {
		t.Fatalf("controller props %v", p)
	}
	if len(s.StoragePoolDefinitions()) != 2 {
		t.Fatal("default storage pool definitions missing")
	}
}

func TestRestoreRefuses(t *testing.T) {
	good := string(snapshotOf(t, fixture(t)))
	for _, tc := range []struct {
		name, data string
		kind       ErrorKind
		says       string
	}{
		{"empty", ``, Invalid, "not a JSON object"},
		{"truncated", good[:len(good)/2], Invalid, "not a JSON object"},
		{"no format", `{"nodes":[]}`, Invalid, `no "format"`},
		{"newer format", `{"format":3}`, Unsupported, "format 3 is newer"},
		{"format zero", `{"format":0}`, Invalid, "format 0"},
		{"unknown member", `{"format":1,"widgets":[]}`, Invalid, "widgets"},
		{"trailing data", good + `{}`, Invalid, ""},
		{"dangling resource", strings.Replace(good, `"node":"n3","node_id":2`, `"node":"n9","node_id":2`, 1), Invalid, "node that does not exist"},
		{"minor twice", `{"format":1,"resource_groups":[{"name":"g","select_filter":{}}],"resource_definitions":[` +
			`{"name":"a","resource_group":"g","drbd":{"secret":"x","transport_type":"IP"},"volume_definitions":[{"volume_number":0,"size_kib":1,"minor":1000}]},` +
			`{"name":"b","resource_group":"g","drbd":{"secret":"x","transport_type":"IP"},"volume_definitions":[{"volume_number":0,"size_kib":1,"minor":1000}]}]}`,
			Invalid, "minor 1000 is held by both"},
		{"node id twice", strings.Replace(good, `"node":"n2","node_id":1`, `"node":"n2","node_id":0`, 1), Invalid, "node id 0"},
		{"definition in missing group", strings.Replace(good, `"resource_group":"rg1"`, `"resource_group":"rg9"`, 1), Invalid, "rg9"},
		{"node listed twice", strings.Replace(good, `{"name":"n2",`, `{"name":"N1",`, 1), Invalid, "listed twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := fixture(t)
			before := snapshotOf(t, s)
			err := s.Restore([]byte(tc.data))
			if tc.kind == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, tc.kind) {
				t.Fatalf("error %v, want kind %v", err, tc.kind)
			}
			if !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("error %q does not mention %q", err, tc.says)
			}
			if !sameBytes(before, snapshotOf(t, s)) {
				t.Fatal("failed restore changed the state")
			}
		})
	}
}

func TestRestoreRefusesPortHeldTwice(t *testing.T) {
	s := fixture(t)
	apply(t, s, &CreateResource{ResourceDefinition: "empty", Node: "n1", TCPPorts: []int{7005}})
	good := string(snapshotOf(t, s))
	bad := strings.Replace(good, `"tcp_ports":[7005]`, `"tcp_ports":[7000]`, 1)
	if bad == good {
		t.Fatal("test did not alter the snapshot")
	}
	err := New().Restore([]byte(bad))
	if !errors.Is(err, Invalid) || !strings.Contains(err.Error(), "TCP port 7000 on n1") {
		t.Fatalf("error %v", err)
	}
}

// TestRestoreFormat1: a snapshot written before the event log (format 1)
// restores, and is written back as format 2 with the same content.
func TestRestoreFormat1(t *testing.T) {
	s := fixture(t)
	cur := snapshotOf(t, s)
	old := strings.Replace(string(cur), `{"format":2,`, `{"format":1,`, 1)
	old = old[:strings.Index(old, `,"events":[`)] + "}"
	r := New()
	if err := r.Restore([]byte(old)); err != nil {
		t.Fatal(err)
	}
	b := snapshotOf(t, r)
	if !strings.HasPrefix(string(b), `{"format":2,`) || strings.Contains(string(b), `"events"`) {
		t.Fatalf("format-1 snapshot restored as %s", b)
	}
	if want := old[len(`{"format":1,`):]; string(b[len(`{"format":2,`):]) != want {
		t.Fatalf("content changed:\n%s\n%s", b, old)
	}
}
