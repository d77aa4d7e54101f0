package satellite

import (
	"fmt"
	"slices"
	"testing"

	"github.com/pvehci/pvehci/ha/state"
	"github.com/pvehci/pvehci/storage/drbd"
	"github.com/pvehci/pvehci/storage/lvm"
	"github.com/pvehci/pvehci/storage/model"
)

// kindCluster is pve1, pve2, … with LVM-thin pools on VG pve and one
// resource definition rsc of one volume, placed on pve1, pve2, … in order
// (so node ids follow the order) with the given kinds.
func kindCluster(t testing.TB, sizeKiB int64, kinds ...state.ResourceKind) *state.State {
	t.Helper()
	s := state.New()
	must := func(cmd state.Command) {
		t.Helper()
		if res := s.Apply(cmd); res.Err != nil {
			t.Fatalf("%s: %v", cmd.Type(), res.Err)
		}
	}
	for i := range kinds {
		n := fmt.Sprintf("pve%d", i+1)
		must(&state.CreateNode{Name: n, NodeType: model.NodeTypeSatellite,
			NetInterfaces: []model.NetInterface{{Name: "default", Address: fmt.Sprintf("10.99.0.%d", i+1)}}})
		must(&state.CreateStoragePool{Node: n, Name: model.DefaultStoragePool, ProviderKind: model.ProviderLVMThin,
			Props: model.Props{model.KeyStorDriverLvmVg: "pve", model.KeyStorDriverThinPool: "data"}})
	}
	must(&state.CreateResourceDefinition{Name: rsc, DrbdSecret: testSecret,
		VolumeDefinitions: []state.NewVolumeDefinition{{SizeKiB: sizeKiB}}})
	for i, k := range kinds {
		must(&state.CreateResource{ResourceDefinition: rsc, Node: fmt.Sprintf("pve%d", i+1), Kind: k})
	}
	return s
}

func setVDInitialized(t testing.TB, s *state.State) {
	t.Helper()
	if res := s.Apply(&state.SetFlags{Target: state.Target{Kind: model.ObjVolumeDefinition, ResourceDefinition: rsc, VolumeNumber: 0},
		Set: []string{model.VdFlagDrbdInitialized}}); res.Err != nil {
		t.Fatal(res.Err)
	}
}

// peerView is how one peer's volume 0 looks from the planning node.
type peerView struct {
	conn drbd.ConnState
	repl drbd.ReplState
	disk drbd.DiskState
	role drbd.Role
}

// upObserved is node d fully set up as the .res says (LVs, .res file,
// kernel resource with every peer connection), with the local disk and
// each peer as given; peers not in views are Connected and Established,
// Inconsistent when diskful.
func upObserved(d DesiredResource, local drbd.DiskState, role drbd.Role, views map[int]peerView) Observed {
	o := Observed{LVs: map[string]lvm.LV{}, ExtentKiB: map[string]int64{"pve": 4096}, Res: map[string][]byte{d.Name: d.Res},
		DRBD: map[string]drbd.ObservedResource{}, HasMD: map[string]bool{}}
	k := drbd.ObservedResource{Name: d.Name, Role: role}
	for _, v := range d.Volumes {
		dev := drbd.ObservedDevice{Volume: v.Number, Minor: v.Minor, Disk: local}
		if v.Diskless {
			dev.Disk, dev.Client = drbd.DiskDiskless, true
		} else {
			o.LVs[v.Key()] = lvm.LV{Name: v.LV, VG: v.VG, Attr: "Vwi-aotz--", Size: uint64(roundUp(v.GrossKiB, 4096)) * 1024, PoolLV: v.ThinPool, Tags: []string{lvm.Tag}}
		}
		k.Devices = append(k.Devices, dev)
	}
	for _, id := range d.Peers {
		pv, ok := views[id]
		if !ok {
			pv = peerView{conn: drbd.ConnConnected, repl: drbd.ReplEstablished, disk: drbd.DiskInconsistent}
			if !slices.Contains(d.DiskfulPeers, id) {
				pv.disk = drbd.DiskDiskless
			}
		}
		if pv.role == "" {
			pv.role = drbd.RoleSecondary
		}
		c := drbd.ObservedConnection{PeerNodeID: id, Name: fmt.Sprintf("node%d", id), Connection: pv.conn, PeerRole: pv.role}
		for _, v := range d.Volumes {
			c.PeerDevices = append(c.PeerDevices, drbd.ObservedPeerDevice{Volume: v.Number, Replication: pv.repl, PeerDisk: pv.disk})
		}
		k.Connections = append(k.Connections, c)
	}
	o.DRBD[d.Name] = k
	return o
}

func TestPlanInitialSync(t *testing.T) {
	t.Parallel()
	const (
		diskful  = state.Diskful
		diskless = state.Diskless
	)
	connected := func(disk drbd.DiskState) peerView {
		return peerView{conn: drbd.ConnConnected, repl: drbd.ReplEstablished, disk: disk}
	}
	tests := []struct {
		name  string
		kinds []state.ResourceKind // default: two diskful
		node  string               // planning node; default pve1
		setup func(t *testing.T, s *state.State)
		local drbd.DiskState // default Inconsistent
		role  drbd.Role      // default Secondary
		peers map[int]peerView
		// staleRes: the .res on disk is an older one, so the pass
		// adjusts first.
		staleRes bool
		want     []Kind
	}{
		{name: "winner with every replica connected and fresh skips the sync",
			want: []Kind{SkipInitialSync}},
		{name: "winner with a fresh diskful peer and a diskless client skips the sync",
			kinds: []state.ResourceKind{diskful, diskful, diskless},
			want:  []Kind{SkipInitialSync}},
		{name: "an unconnected diskless client does not hold the winner back",
			kinds: []state.ResourceKind{diskful, diskful, diskless},
			peers: map[int]peerView{2: {conn: drbd.ConnConnecting, repl: drbd.ReplOff, disk: drbd.DiskUnknown}},
			want:  []Kind{SkipInitialSync}},
		{name: "non-winner does nothing",
			node: "pve2"},
		{name: "diskless client does nothing",
			kinds: []state.ResourceKind{diskful, diskful, diskless}, node: "pve3"},
		{name: "initialized volume is never started again",
			setup: func(t *testing.T, s *state.State) { setVDInitialized(t, s) }},
		{name: "diskful peer not connected yet: wait",
			peers: map[int]peerView{1: {conn: drbd.ConnConnecting, repl: drbd.ReplOff, disk: drbd.DiskUnknown}}},
		{name: "diskful peer connected but its volume not established yet: wait",
			peers: map[int]peerView{1: {conn: drbd.ConnConnected, repl: drbd.ReplOff, disk: drbd.DiskInconsistent}}},
		{name: "peer already UpToDate: this replica syncs from it",
			peers: map[int]peerView{1: connected(drbd.DiskUpToDate)}},
		{name: "peer is SyncSource toward us",
			peers: map[int]peerView{1: {conn: drbd.ConnConnected, repl: drbd.ReplSyncTarget, disk: drbd.DiskUpToDate}}},
		{name: "peer Outdated has data",
			peers: map[int]peerView{1: connected(drbd.DiskOutdated)}},
		{name: "peer Consistent has data",
			peers: map[int]peerView{1: connected(drbd.DiskConsistent)}},
		{name: "local disk already UpToDate: converged",
			local: drbd.DiskUpToDate, peers: map[int]peerView{1: connected(drbd.DiskUpToDate)}},
		{name: "local disk Outdated has data",
			local: drbd.DiskOutdated},
		{name: "a Primary peer means data is served",
			peers: map[int]peerView{1: {conn: drbd.ConnConnected, repl: drbd.ReplEstablished, disk: drbd.DiskInconsistent, role: drbd.RolePrimary}}},
		{name: "a pass that adjusts decides nothing about the sync",
			staleRes: true, want: []Kind{WriteRes, Adjust}},
		{name: "ForceInitialSync on the definition forces a full sync",
			setup: func(t *testing.T, s *state.State) {
				setProps(t, s, state.Target{Kind: model.ObjResourceDefinition, ResourceDefinition: rsc}, model.Props{model.KeyForceInitialSync: "true"})
			},
			want: []Kind{ForcePrimary}},
		{name: "ForceInitialSync inherited from the resource group",
			setup: func(t *testing.T, s *state.State) {
				def, _ := s.ResourceDefinition(rsc)
				setProps(t, s, state.Target{Kind: model.ObjResourceGroup, ResourceGroup: def.ResourceGroup}, model.Props{model.KeyForceInitialSync: "yes"})
			},
			want: []Kind{ForcePrimary}},
		{name: "ForceInitialSync false on the definition overrides the controller",
			setup: func(t *testing.T, s *state.State) {
				setProps(t, s, state.Target{Kind: model.ObjController}, model.Props{model.KeyForceInitialSync: "true"})
				setProps(t, s, state.Target{Kind: model.ObjResourceDefinition, ResourceDefinition: rsc}, model.Props{model.KeyForceInitialSync: "false"})
			},
			want: []Kind{SkipInitialSync}},
		{name: "ForceInitialSync waits for the peers too",
			setup: func(t *testing.T, s *state.State) {
				setProps(t, s, state.Target{Kind: model.ObjResourceDefinition, ResourceDefinition: rsc}, model.Props{model.KeyForceInitialSync: "true"})
			},
			peers: map[int]peerView{1: {conn: drbd.ConnConnecting, repl: drbd.ReplOff, disk: drbd.DiskUnknown}}},
		{name: "single replica makes itself UpToDate",
			kinds: []state.ResourceKind{diskful},
			want:  []Kind{ForcePrimary}},
		{name: "single diskful replica with a diskless client forces primary",
			kinds: []state.ResourceKind{diskful, diskless},
			want:  []Kind{ForcePrimary}},
		{name: "winner being deleted hands the role to the next node id",
			kinds: []state.ResourceKind{diskful, diskful, diskful}, node: "pve2",
			setup: func(t *testing.T, s *state.State) { setResourceFlag(t, s, rsc, "pve1", model.RscFlagDelete) },
			want:  []Kind{SkipInitialSync}},
		{name: "lowest node id among diskful only: a diskless node 0 is no winner",
			kinds: []state.ResourceKind{diskless, diskful, diskful}, node: "pve2",
			want: []Kind{SkipInitialSync}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rk := tc.kinds
			if rk == nil {
				rk = []state.ResourceKind{diskful, diskful}
			}
			s := kindCluster(t, 1<<20, rk...)
			if tc.setup != nil {
				tc.setup(t, s)
			}
			node := tc.node
			if node == "" {
				node = "pve1"
			}
			want, err := Desired(s, node)
			if err != nil {
				t.Fatal(err)
			}
			d, _ := want.Resource(rsc)
			if d.Err != nil {
				t.Fatal(d.Err)
			}
			local, role := tc.local, tc.role
			if local == "" {
				local = drbd.DiskInconsistent
			}
			if role == "" {
				role = drbd.RoleSecondary
			}
			got := upObserved(d, local, role, tc.peers)
			if tc.staleRes {
				got.Res[rsc] = []byte("resource \"" + rsc + "\" {}\n")
			}
			p := Plan(want, got)
			if k := kinds(p.Actions); !slices.Equal(k, tc.want) {
				t.Errorf("actions = %v, want %v", k, tc.want)
			}
			if len(p.Problems) > 0 {
				t.Errorf("problems = %v", p.Problems)
			}
			for _, a := range p.Actions {
				if a.Kind == SkipInitialSync && a.Volume != 0 {
					t.Errorf("SkipInitialSync of volume %d, want 0", a.Volume)
				}
			}
		})
	}
}

// TestDesiredInitialSyncWinner checks that every node derives the same
// winner from the state.
func TestDesiredInitialSyncWinner(t *testing.T) {
	t.Parallel()
	s := kindCluster(t, 1<<20, state.Diskless, state.Diskful, state.Diskful, state.Diskful)
	setResourceFlag(t, s, rsc, "pve2", model.RscFlagDelete)
	var winners []string
	for _, n := range []string{"pve1", "pve2", "pve3", "pve4"} {
		want, err := Desired(s, n)
		if err != nil {
			t.Fatal(err)
		}
		if d, _ := want.Resource(rsc); d.InitialSyncWinner {
			winners = append(winners, fmt.Sprintf("%s (node id %d)", n, d.NodeID))
		}
	}
	if !slices.Equal(winners, []string{"pve3 (node id 2)"}) {
		t.Errorf("winners = %v, want only pve3 (node id 2): lowest diskful node id not being deleted", winners)
	}
}
