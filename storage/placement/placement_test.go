package placement

import (
	"errors"
	"strings"
	"testing"

	"github.com/pvehci/pvehci/storage/model"
)

const gib = int64(1) << 20 // KiB

func node(name string, props ...string) Node {
	p := model.Props{}
	for i := 0; i+1 < len(props); i += 2 {
		p[props[i]] = props[i+1]
	}
	return Node{Name: name, Props: p, Satellite: true, Online: true}
}

func thin(nodeName, pool string, freeGiB int64) Pool {
	return Pool{Node: nodeName, Name: pool, Kind: model.ProviderLVMThin, Known: true, FreeKiB: freeGiB * gib, TotalKiB: freeGiB * gib}
}

func diskless(nodeName string) Pool {
	return Pool{Node: nodeName, Name: model.DefaultDisklessStoragePool, Kind: model.ProviderDiskless, Known: true}
}

// cluster is three nodes with a thin pool each (pve1 fullest free space
// last) and the automatic diskless pools.
func cluster() ([]Node, []Pool) {
	nodes := []Node{node("pve1", "rack", "a"), node("pve2", "rack", "b"), node("pve3", "rack", "b")}
	pools := []Pool{thin("pve1", "thin", 100), thin("pve2", "thin", 300), thin("pve3", "thin", 200),
		diskless("pve1"), diskless("pve2"), diskless("pve3")}
	return nodes, pools
}

func choices(cs []Choice) string {
	var s []string
	for _, c := range cs {
		x := c.Node + "/" + c.Pool
		if c.Toggle {
			x += "(toggle)"
		}
		s = append(s, x)
	}
	return strings.Join(s, ",")
}

func TestPlace(t *testing.T) {
	nodes, pools := cluster()
	tests := []struct {
		name     string
		mutate   func(*Request)
		want     string
		wantErr  string // substring of the error
		noReason bool
	}{
		{name: "most free space wins", mutate: func(r *Request) { r.Count = 2 }, want: "pve2/thin,pve3/thin"},
		{name: "one replica", mutate: func(r *Request) { r.Count = 1 }, want: "pve2/thin"},
		{name: "all three", mutate: func(r *Request) { r.Count = 3 }, want: "pve2/thin,pve3/thin,pve1/thin"},
		{name: "too many", mutate: func(r *Request) { r.Count = 4 }, wantErr: "cannot place 4 more diskful replica(s) of vm-1"},
		{name: "node_name_list", mutate: func(r *Request) { r.Count = 2; r.Filter.NodeNameList = []string{"PVE1", "pve3"} }, want: "pve3/thin,pve1/thin"},
		{name: "storage_pool not found", mutate: func(r *Request) { r.Count = 1; r.Filter.StoragePool = "fast" }, wantErr: "not storage_pool fast"},
		{name: "storage_pool_list", mutate: func(r *Request) {
			r.Count = 1
			r.Filter.StoragePoolList = []string{"other", "thin"}
		}, want: "pve2/thin"},
		{name: "provider_list excludes", mutate: func(r *Request) { r.Count = 1; r.Filter.ProviderList = []string{"ZFS_THIN"} }, wantErr: "provider LVM_THIN not in provider_list"},
		{name: "size beyond every pool", mutate: func(r *Request) {
			r.Count = 1
			r.SizeKiB = 7000 * gib // 300 GiB × 20 = 6000 GiB over-provisioned at most
		}, wantErr: "pve2/thin: 5.9 TiB free (thin over-provisioning included), 6.8 TiB needed"},
		{name: "thin over-provisioning lets a big volume in", mutate: func(r *Request) { r.Count = 1; r.SizeKiB = 1000 * gib }, want: "pve2/thin"},
		{name: "replicas_on_different rack", mutate: func(r *Request) { r.Count = 2; r.Filter.ReplicasOnDifferent = []string{"rack"} }, want: "pve2/thin,pve1/thin"},
		{name: "replicas_on_different impossible", mutate: func(r *Request) { r.Count = 3; r.Filter.ReplicasOnDifferent = []string{"rack"} }, wantErr: "only pve2/thin, pve3/thin, pve1/thin fit"},
		{name: "x_replicas_on_different allows two per rack", mutate: func(r *Request) {
			r.Count = 3
			r.Filter.XReplicasOnDifferentMap = map[string]int{"rack": 2}
		}, want: "pve2/thin,pve3/thin,pve1/thin"},
		{name: "replicas_on_same fixed", mutate: func(r *Request) { r.Count = 2; r.Filter.ReplicasOnSame = []string{"rack=b"} }, want: "pve2/thin,pve3/thin"},
		{name: "replicas_on_same bare key groups", mutate: func(r *Request) { r.Count = 2; r.Filter.ReplicasOnSame = []string{"rack"} }, want: "pve2/thin,pve3/thin"},
		{name: "replicas_on_same pinned by existing replica", mutate: func(r *Request) {
			r.Count = 1
			r.Filter.ReplicasOnSame = []string{"rack"}
			r.Replicas = []Replica{{Resource: "vm-1", Node: "pve1", Pool: "thin"}}
		}, wantErr: "existing replica on pve1"},
		{name: "existing diskful node skipped", mutate: func(r *Request) {
			r.Count = 1
			r.Replicas = []Replica{{Resource: "vm-1", Node: "pve2", Pool: "thin"}}
		}, want: "pve3/thin"},
		{name: "diskless node is toggled", mutate: func(r *Request) {
			r.Count = 1
			r.Replicas = []Replica{{Resource: "vm-1", Node: "pve2", Pool: model.DefaultDisklessStoragePool, Diskless: true, TieBreaker: true}}
		}, want: "pve2/thin(toggle)"},
		{name: "not_place_with_rsc", mutate: func(r *Request) {
			r.Count = 1
			r.Filter.NotPlaceWithRsc = []string{"other"}
			r.Replicas = []Replica{{Resource: "other", Node: "pve2", Pool: "thin"}}
		}, want: "pve3/thin"},
		{name: "not_place_with_rsc_regex", mutate: func(r *Request) {
			r.Count = 2
			r.Filter.NotPlaceWithRscRegex = "^oth"
			r.Replicas = []Replica{{Resource: "other", Node: "pve3", Pool: "thin"}}
		}, want: "pve2/thin,pve1/thin"},
		{name: "bad regex", mutate: func(r *Request) { r.Count = 1; r.Filter.NotPlaceWithRscRegex = "(" }, wantErr: "does not compile"},
		{name: "offline and flagged nodes", mutate: func(r *Request) {
			r.Count = 1
			r.Nodes[1].Online = false
			r.Nodes[2].Flags = model.Flags{model.NodeFlagEvacuate}
		}, want: "pve1/thin"},
		{name: "AutoplaceTarget=false on pool", mutate: func(r *Request) {
			r.Count = 1
			r.Pools[1].Props = model.Props{model.KeyAutoplaceTarget: "false"}
		}, want: "pve3/thin"},
		{name: "unknown capacity", mutate: func(r *Request) { r.Count = 1; r.Pools[1].Known = false }, want: "pve3/thin"},
		{name: "reserved space counts against thin total", mutate: func(r *Request) {
			r.Count = 1
			r.SizeKiB = 10 * gib
			// pve2 has 300 GiB, 20× = 6000 GiB, minus 5995 reserved: 5 GiB left.
			r.Pools[1].ReservedKiB = 5995 * gib
		}, want: "pve3/thin"},
		{name: "ratio from controller", mutate: func(r *Request) {
			r.Count = 1
			r.SizeKiB = 250 * gib
			r.ControllerProps = model.Props{"MaxOversubscriptionRatio": "1"}
		}, want: "pve2/thin"},
		{name: "providers are not mixed with existing replicas", mutate: func(r *Request) {
			r.Count = 1
			r.Pools = append(r.Pools, Pool{Node: "pve3", Name: "zfs", Kind: model.ProviderZFSThin, Known: true, FreeKiB: 900 * gib, TotalKiB: 900 * gib})
			r.Replicas = []Replica{{Resource: "vm-1", Node: "pve1", Pool: "thin"}}
		}, want: "pve2/thin"},
		{name: "providers are not mixed among new replicas", mutate: func(r *Request) {
			r.Count = 2
			r.Pools = append(r.Pools, Pool{Node: "pve3", Name: "zfs", Kind: model.ProviderZFSThin, Known: true, FreeKiB: 900 * gib, TotalKiB: 900 * gib})
		}, want: "pve2/thin,pve3/thin"},
		{name: "tie broken by resource count then name", mutate: func(r *Request) {
			r.Count = 1
			for i := range r.Pools {
				r.Pools[i].FreeKiB, r.Pools[i].TotalKiB = 10*gib, 10*gib
			}
			r.Pools[0].Resources = 5
		}, want: "pve2/thin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := Request{Resource: "vm-1", SizeKiB: gib, Nodes: cloneNodes(nodes), Pools: append([]Pool(nil), pools...)}
			tt.mutate(&req)
			got, err := Place(req)
			if tt.wantErr != "" {
				var pe *Error
				if !errors.As(err, &pe) {
					t.Fatalf("Place() = %s, %v; want *Error containing %q", choices(got), err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %q does not contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Place() error: %v", err)
			}
			if s := choices(got); s != tt.want {
				t.Fatalf("Place() = %s, want %s", s, tt.want)
			}
		})
	}
}

func cloneNodes(ns []Node) []Node {
	out := make([]Node, len(ns))
	for i, n := range ns {
		out[i] = n
		out[i].Props = n.Props.Clone()
	}
	return out
}

// TestPlaceDeterministic checks that the input order does not matter.
func TestPlaceDeterministic(t *testing.T) {
	nodes, pools := cluster()
	for i := range pools {
		pools[i].FreeKiB, pools[i].TotalKiB = 50*gib, 50*gib
	}
	req := Request{Resource: "vm-1", SizeKiB: gib, Count: 2, Nodes: nodes, Pools: pools}
	first, err := Place(req)
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		rev := Request{Resource: "vm-1", SizeKiB: gib, Count: 2}
		for i := len(nodes) - 1; i >= 0; i-- {
			rev.Nodes = append(rev.Nodes, nodes[i])
		}
		for i := len(pools) - 1; i >= 0; i-- {
			rev.Pools = append(rev.Pools, pools[i])
		}
		got, err := Place(rev)
		if err != nil {
			t.Fatal(err)
		}
		if choices(got) != choices(first) || choices(first) != "pve1/thin,pve2/thin" {
			t.Fatalf("placement depends on input order: %s vs %s", choices(got), choices(first))
		}
	}
}

func TestEffectiveFree(t *testing.T) {
	tests := []struct {
		name string
		pool Pool
		ctrl model.Props
		want int64
	}{
		{"thick free is free", Pool{Kind: "LVM", FreeKiB: 10, TotalKiB: 100}, nil, 10},
		{"thin default 20x", Pool{Kind: model.ProviderLVMThin, FreeKiB: 10, TotalKiB: 100}, nil, 200},
		{"thin total bound", Pool{Kind: model.ProviderZFSThin, FreeKiB: 100, TotalKiB: 100, ReservedKiB: 1900}, nil, 100},
		{"never negative", Pool{Kind: model.ProviderZFSThin, FreeKiB: 100, TotalKiB: 100, ReservedKiB: 5000}, nil, 0},
		{"pool ratio beats controller", Pool{Kind: model.ProviderLVMThin, FreeKiB: 10, TotalKiB: 100,
			Props: model.Props{"MaxOversubscriptionRatio": "2"}}, model.Props{"MaxOversubscriptionRatio": "5"}, 20},
		{"free ratio", Pool{Kind: model.ProviderLVMThin, FreeKiB: 10, TotalKiB: 100,
			Props: model.Props{"MaxFreeCapacityOversubscriptionRatio": "1.5"}}, nil, 15},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := EffectiveFreeKiB(tt.pool, tt.ctrl); got != tt.want {
				t.Fatalf("EffectiveFreeKiB = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestAdditionalAndMerge(t *testing.T) {
	if got := Additional(model.SelectFilter{PlaceCount: 3}, 1); got != 2 {
		t.Fatalf("Additional = %d, want 2", got)
	}
	if got := Additional(model.SelectFilter{PlaceCount: 2}, 3); got != 0 {
		t.Fatalf("Additional = %d, want 0", got)
	}
	if got := Additional(model.SelectFilter{PlaceCount: 2, AdditionalPlaceCount: 1}, 2); got != 1 {
		t.Fatalf("Additional = %d, want 1", got)
	}
	m := Merge(model.SelectFilter{PlaceCount: 2, StoragePool: "thin"}, model.SelectFilter{PlaceCount: 3, DisklessOnRemaining: true})
	if m.PlaceCount != 3 || m.StoragePool != "thin" || !m.DisklessOnRemaining {
		t.Fatalf("Merge = %+v", m)
	}
}

func TestWantTieBreaker(t *testing.T) {
	df := Member{}
	dl := Member{Diskless: true}
	tb := Member{Diskless: true, TieBreaker: true}
	gone := Member{Deleting: true}
	tests := []struct {
		name    string
		members []Member
		enabled bool
		want    bool
	}{
		{"two diskful", []Member{df, df}, true, true},
		{"two diskful, disabled", []Member{df, df}, false, false},
		{"two diskful with tie-breaker", []Member{df, df, tb}, true, true},
		{"two diskful with a diskless voter", []Member{df, df, dl}, true, false},
		{"three diskful", []Member{df, df, df}, true, false},
		{"four diskful", []Member{df, df, df, df}, true, true},
		{"one diskful", []Member{df, tb}, true, false},
		{"deleting replica does not count", []Member{df, df, gone}, true, true},
		{"none", nil, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := WantTieBreaker(tt.members, tt.enabled); got != tt.want {
				t.Fatalf("WantTieBreaker = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestTieBreakerEnabled(t *testing.T) {
	tests := []struct {
		props model.Props
		want  bool
	}{
		{model.Props{}, true},
		{model.Props{model.KeyAutoAddQuorumTiebreaker: "True"}, true},
		{model.Props{model.KeyAutoAddQuorumTiebreaker: "false"}, false},
		{model.Props{model.KeyQuorum: "off"}, false},
		{model.Props{model.KeyQuorum: "majority"}, true},
		{model.Props{model.KeyAutoQuorum: "disabled"}, false},
	}
	for _, tt := range tests {
		if got := TieBreakerEnabled(func(k string) string { return tt.props[k] }); got != tt.want {
			t.Errorf("TieBreakerEnabled(%v) = %v, want %v", tt.props, got, tt.want)
		}
	}
}

func TestTieBreakerAndDisklessOnRemaining(t *testing.T) {
	nodes, pools := cluster()
	nodes = append(nodes, node("pve4", "rack", "c"), node("pve5"))
	pools = append(pools, diskless("pve4")) // pve5 has no diskless pool
	replicas := []Replica{
		{Resource: "vm-1", Node: "pve1", Pool: "thin"},
		{Resource: "vm-1", Node: "pve2", Pool: "thin"},
		{Resource: "busy", Node: "pve3", Pool: "thin"},
		{Resource: "busy2", Node: "pve3", Pool: "thin"},
	}
	req := Request{Resource: "vm-1", Nodes: nodes, Pools: pools, Replicas: replicas}
	c, ok := TieBreaker(req)
	if !ok || c.Node != "pve4" || c.Pool != model.DefaultDisklessStoragePool {
		t.Fatalf("TieBreaker = %+v, %v; want pve4 (least loaded)", c, ok)
	}
	req.Filter.ReplicasOnDifferent = []string{"rack"}
	req.Nodes[3].Props["rack"] = "a" // pve4 now shares pve1's rack
	c, ok = TieBreaker(req)
	if ok {
		t.Fatalf("TieBreaker = %+v, want none: pve3 and pve4 share a rack with a replica", c)
	}
	req.Filter = model.SelectFilter{}
	if got := choices(DisklessOnRemaining(req)); got != "pve3/DfltDisklessStorPool,pve4/DfltDisklessStorPool" {
		t.Fatalf("DisklessOnRemaining = %s", got)
	}
	req.Filter.StoragePoolDisklessList = []string{"nope"}
	if got := DisklessOnRemaining(req); len(got) != 0 {
		t.Fatalf("DisklessOnRemaining with unknown diskless list = %s, want none", choices(got))
	}
}

func TestErrorMessage(t *testing.T) {
	nodes, pools := cluster()
	nodes[2].Online = false
	_, err := Place(Request{Resource: "vm-9", SizeKiB: 7000 * gib, Count: 2, Nodes: nodes, Pools: pools})
	var pe *Error
	if !errors.As(err, &pe) {
		t.Fatalf("want *Error, got %v", err)
	}
	msg := err.Error()
	for _, want := range []string{"cannot place 2 more diskful replica(s) of vm-9", "pve3: is offline", "pve1/thin: 2.0 TiB free"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
	if pe.Correction() == "" || pe.Code() == 0 {
		t.Fatal("missing correction or code")
	}
}

func TestKiB(t *testing.T) {
	for in, want := range map[int64]string{1: "1 KiB", 1024: "1 MiB", 1536: "1.5 MiB", gib: "1 GiB"} {
		if got := KiB(in); got != want {
			t.Errorf("KiB(%d) = %q, want %q", in, got, want)
		}
	}
}
