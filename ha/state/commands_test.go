package state

import (
	"strings"
	"testing"

	"github.com/pvehci/pvehci/storage/model"
)

// fixture is the state most command cases start from: three satellites,
// group rg1 (place count 2, volume group 0), definition rd1 in rg1 with a
// 1 GiB volume on n1 and n2 (diskful) and n3 (diskless), an empty
// definition "empty", a snapshot schedule on rg1 and a pending relocation
// of rd1 to n3.
func fixture(t testing.TB) *State {
	t.Helper()
	s := cluster(t, 3)
	apply(t, s, &CreateResourceGroup{Name: "rg1", SelectFilter: model.SelectFilter{PlaceCount: 2}})
	apply(t, s, &CreateVolumeGroup{ResourceGroup: "rg1"})
	rd := newRD("rd1", 1<<20)
	rd.ResourceGroup = "rg1"
	apply(t, s, rd)
	apply(t, s, &CreateResource{ResourceDefinition: "rd1", Node: "n1", Kind: Diskful})
	apply(t, s, &CreateResource{ResourceDefinition: "rd1", Node: "n2", Kind: Diskful})
	apply(t, s, &CreateResource{ResourceDefinition: "rd1", Node: "n3", Kind: Diskless})
	apply(t, s, newRD("empty"))
	apply(t, s, &AddJobSchedule{Name: "nightly", Cron: "0 3 * * *", Kind: model.JobSnapshot,
		Target: model.JobTarget{Kind: model.TargetResourceGroup, Name: "rg1"}, Options: map[string]string{"retain": "7"}, At: 1000})
	apply(t, s, &SetRelocationTimer{ResourceDefinition: "rd1", TargetNode: "n3", SourceNode: "n1", DueAt: 5000, At: 1000})
	return s
}

type cmdCase struct {
	name  string
	setup []Command
	cmd   Command
	want  ErrorKind // 0: success
	check func(t *testing.T, s *State, res Result)
}

func rscOf(t *testing.T, s *State, rd, node string) model.Resource {
	t.Helper()
	r, ok := s.Resource(rd, node)
	if !ok {
		t.Fatalf("resource %s on %s missing", rd, node)
	}
	return r
}

func commandCases() []cmdCase {
	diskless := func(t *testing.T, s *State, rd, node string, want bool) {
		t.Helper()
		if got := rscOf(t, s, rd, node); got.Diskless() != want {
			t.Fatalf("%s on %s diskless=%v, want %v (flags %v)", rd, node, got.Diskless(), want, got.Flags)
		}
	}
	return []cmdCase{
		// Properties and flags at every level.
		{name: "set controller prop", cmd: &SetProps{Target: Target{Kind: model.ObjController}, Change: model.PropsChange{Set: model.Props{model.KeyTcpPortAutoRange: "7000-8999"}}},
			check: func(t *testing.T, s *State, _ Result) {
				if s.ControllerProps()[model.KeyTcpPortAutoRange] != "7000-8999" {
					t.Fatal("not set")
				}
			}},
		{name: "bad port range", cmd: &SetProps{Target: Target{Kind: model.ObjController}, Change: model.PropsChange{Set: model.Props{model.KeyTcpPortAutoRange: "9000-8000"}}}, want: Invalid},
		{name: "bad minor range", cmd: &SetProps{Target: Target{Kind: model.ObjController}, Change: model.PropsChange{Set: model.Props{model.KeyMinorNrAutoRange: "0-2000000"}}}, want: Invalid},
		{name: "bad prop key", cmd: &SetProps{Target: Target{Kind: model.ObjNode, Node: "n1"}, Change: model.PropsChange{Set: model.Props{"a//b": "x"}}}, want: Invalid},
		{name: "set and delete same key", cmd: &SetProps{Target: Target{Kind: model.ObjNode, Node: "n1"}, Change: model.PropsChange{Set: model.Props{"Aux/x": "1"}, Delete: []string{"Aux/x"}}}, want: Invalid},
		{name: "delete unset prop warns", cmd: &SetProps{Target: Target{Kind: model.ObjNode, Node: "n1"}, Change: model.PropsChange{Delete: []string{"Aux/none"}}},
			check: func(t *testing.T, s *State, res Result) {
				if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0].Message, "Aux/none") {
					t.Fatalf("warnings %v", res.Warnings)
				}
			}},
		{name: "delete namespace", setup: []Command{&SetProps{Target: Target{Kind: model.ObjResourceDefinition, ResourceDefinition: "rd1"}, Change: model.PropsChange{Set: model.Props{"Aux/pm/vmid": "100", "Aux/pm/x": "1", "DrbdOptions/ExactSize": "False"}}}},
			cmd: &SetProps{Target: Target{Kind: model.ObjResourceDefinition, ResourceDefinition: "RD1"}, Change: model.PropsChange{DeleteNamespaces: []string{"Aux/pm"}}},
			check: func(t *testing.T, s *State, _ Result) {
				rd, _ := s.ResourceDefinition("rd1")
				if len(rd.Props) != 1 || rd.Props[model.KeyExactSize] != "False" {
					t.Fatalf("props %v", rd.Props)
				}
			}},
		{name: "props on every level", setup: []Command{
			&SetProps{Target: Target{Kind: model.ObjStoragePoolDefinition, StoragePool: "thin2"}, Change: model.PropsChange{Set: model.Props{"Aux/a": "1"}}},
			&SetProps{Target: Target{Kind: model.ObjStoragePool, Node: "n1", StoragePool: "thin2"}, Change: model.PropsChange{Set: model.Props{model.KeyPrefNic: "sp"}}},
			&SetProps{Target: Target{Kind: model.ObjResourceGroup, ResourceGroup: "rg1"}, Change: model.PropsChange{Set: model.Props{"Aux/a": "1"}}},
			&SetProps{Target: Target{Kind: model.ObjVolumeGroup, ResourceGroup: "rg1", VolumeNumber: 0}, Change: model.PropsChange{Set: model.Props{"Aux/a": "1"}}},
			&SetProps{Target: Target{Kind: model.ObjVolumeDefinition, ResourceDefinition: "rd1", VolumeNumber: 0}, Change: model.PropsChange{Set: model.Props{"Aux/a": "1"}}},
			&SetProps{Target: Target{Kind: model.ObjResource, ResourceDefinition: "rd1", Node: "n1"}, Change: model.PropsChange{Set: model.Props{"Aux/a": "1"}}},
		}, cmd: &SetProps{Target: Target{Kind: model.ObjVolume, ResourceDefinition: "rd1", Node: "n1", VolumeNumber: 0}, Change: model.PropsChange{Set: model.Props{"Aux/a": "1"}}}},
		{name: "props of missing volume", cmd: &SetProps{Target: Target{Kind: model.ObjVolume, ResourceDefinition: "rd1", Node: "n1", VolumeNumber: 7}, Change: model.PropsChange{Set: model.Props{"Aux/a": "1"}}}, want: NotFound},
		{name: "props of missing snapshot", cmd: &SetProps{Target: Target{Kind: model.ObjSnapshotDefinition, ResourceDefinition: "rd1", Snapshot: "nope"}}, want: NotFound},
		{name: "props of unknown kind", cmd: &SetProps{Target: Target{Kind: "widget"}}, want: Invalid},
		{name: "set node flag", cmd: &SetFlags{Target: Target{Kind: model.ObjNode, Node: "n1"}, Set: []string{model.NodeFlagEvacuate}},
			check: func(t *testing.T, s *State, _ Result) {
				if n, _ := s.Node("n1"); !n.Flags.Has(model.NodeFlagEvacuate) {
					t.Fatal("flag not set")
				}
			}},
		{name: "set resource delete flag", cmd: &SetFlags{Target: Target{Kind: model.ObjResource, ResourceDefinition: "rd1", Node: "n2"}, Set: []string{model.RscFlagDelete}}},
		{name: "flag last diskful for deletion", setup: []Command{&DeleteResource{ResourceDefinition: "rd1", Node: "n2"}},
			cmd: &SetFlags{Target: Target{Kind: model.ObjResource, ResourceDefinition: "rd1", Node: "n1"}, Set: []string{model.RscFlagDelete}}, want: InUse},
		{name: "flag diskless directly", cmd: &SetFlags{Target: Target{Kind: model.ObjResource, ResourceDefinition: "rd1", Node: "n2"}, Set: []string{model.RscFlagDiskless}}, want: Invalid},
		{name: "tie-breaker on diskful", cmd: &SetFlags{Target: Target{Kind: model.ObjResource, ResourceDefinition: "rd1", Node: "n2"}, Set: []string{model.RscFlagTieBreaker}}, want: Invalid},
		{name: "tie-breaker on diskless", cmd: &SetFlags{Target: Target{Kind: model.ObjResource, ResourceDefinition: "rd1", Node: "n3"}, Set: []string{model.RscFlagTieBreaker}}},
		{name: "unknown flag", cmd: &SetFlags{Target: Target{Kind: model.ObjVolumeDefinition, ResourceDefinition: "rd1"}, Set: []string{"SHINY"}}, want: Invalid},
		{name: "flags on controller", cmd: &SetFlags{Target: Target{Kind: model.ObjController}, Set: []string{"X"}}, want: Invalid},
		{name: "flag set and cleared", cmd: &SetFlags{Target: Target{Kind: model.ObjResourceDefinition, ResourceDefinition: "rd1"}, Set: []string{model.RdFlagDelete}, Clear: []string{model.RdFlagDelete}}, want: Invalid},

		// Nodes and net interfaces.
		{name: "create node", cmd: &CreateNode{Name: "pve-4.example.com", NodeType: "Combined", NetInterfaces: netif("fd00::4")},
			check: func(t *testing.T, s *State, _ Result) {
				n, ok := s.Node("PVE-4.EXAMPLE.COM")
				if !ok || n.Type != model.NodeTypeCombined {
					t.Fatalf("node %+v", n)
				}
				if _, ok := s.StoragePool("pve-4.example.com", model.DefaultDisklessStoragePool); !ok {
					t.Fatal("no diskless pool")
				}
			}},
		{name: "create controller node has no pools", cmd: &CreateNode{Name: "ctl", NodeType: model.NodeTypeController, NetInterfaces: netif("10.1.0.1")},
			check: func(t *testing.T, s *State, _ Result) {
				if _, ok := s.StoragePool("ctl", model.DefaultDisklessStoragePool); ok {
					t.Fatal("controller got a pool")
				}
			}},
		{name: "duplicate node, other case", cmd: &CreateNode{Name: "N1", NodeType: model.NodeTypeSatellite, NetInterfaces: netif("10.0.0.9")}, want: Exists},
		{name: "invalid node name", cmd: &CreateNode{Name: "n_1", NodeType: model.NodeTypeSatellite, NetInterfaces: netif("10.0.0.9")}, want: Invalid},
		{name: "node without netif", cmd: &CreateNode{Name: "n9", NodeType: model.NodeTypeSatellite}, want: Invalid},
		{name: "node bad address", cmd: &CreateNode{Name: "n9", NodeType: model.NodeTypeSatellite, NetInterfaces: netif("10.0.0")}, want: Invalid},
		{name: "node bad type", cmd: &CreateNode{Name: "n9", NodeType: "Robot", NetInterfaces: netif("10.0.0.9")}, want: Invalid},
		{name: "node duplicate netifs", cmd: &CreateNode{Name: "n9", NodeType: model.NodeTypeSatellite, NetInterfaces: []model.NetInterface{{Name: "default", Address: "10.0.0.9"}, {Name: "DEFAULT", Address: "10.0.0.8"}}}, want: Exists},
		{name: "node bad uuid", cmd: &CreateNode{Name: "n9", NodeType: model.NodeTypeSatellite, NetInterfaces: netif("10.0.0.9"), UUID: "nope"}, want: Invalid},
		{name: "modify node", cmd: &ModifyNode{Name: "n1", Props: model.PropsChange{Set: model.Props{model.KeyPrefNic: "ib0"}}},
			check: func(t *testing.T, s *State, _ Result) {
				if n, _ := s.Node("n1"); n.Props[model.KeyPrefNic] != "ib0" {
					t.Fatal("not set")
				}
			}},
		{name: "modify node to controller while holding resources", cmd: &ModifyNode{Name: "n1", NodeType: model.NodeTypeController}, want: InUse},
		{name: "modify missing node", cmd: &ModifyNode{Name: "n9"}, want: NotFound},
		{name: "delete node with resources", cmd: &DeleteNode{Name: "n1"}, want: InUse},
		{name: "delete empty node", setup: []Command{&CreateNode{Name: "n4", NodeType: model.NodeTypeSatellite, NetInterfaces: netif("10.0.0.4")}},
			cmd: &DeleteNode{Name: "n4"},
			check: func(t *testing.T, s *State, _ Result) {
				if _, ok := s.StoragePool("n4", model.DefaultDisklessStoragePool); ok {
					t.Fatal("pool survived its node")
				}
			}},
		{name: "delete missing node", cmd: &DeleteNode{Name: "n9"}, want: NotFound},
		{name: "delete node holding a snapshot", setup: []Command{
			&CreateNode{Name: "n4", NodeType: model.NodeTypeSatellite, NetInterfaces: netif("10.0.0.4")},
			&CreateStoragePool{Node: "n4", Name: model.DefaultStoragePool, ProviderKind: model.ProviderZFSThin, Props: model.Props{model.KeyStorDriverZPoolThin: "tank"}},
			&CreateVolumeDefinition{ResourceDefinition: "empty", NewVolumeDefinition: NewVolumeDefinition{SizeKiB: 1}},
			&CreateResource{ResourceDefinition: "empty", Node: "n4"},
			&CreateSnapshotDefinition{ResourceDefinition: "empty", Name: "s1"},
			&DeleteResource{ResourceDefinition: "empty", Node: "n4"},
		}, cmd: &DeleteNode{Name: "n4"}, want: InUse},
		{name: "create netif", cmd: &CreateNetInterface{Node: "n1", NetInterface: model.NetInterface{Name: "ib0", Address: "192.168.100.1"}},
			check: func(t *testing.T, s *State, _ Result) {
				n, _ := s.Node("n1")
				if len(n.NetInterfaces) != 2 || n.NetInterfaces[0].Name != "default" || n.NetInterfaces[1].Name != "ib0" {
					t.Fatalf("netifs %v", n.NetInterfaces)
				}
			}},
		{name: "create duplicate netif", cmd: &CreateNetInterface{Node: "n1", NetInterface: model.NetInterface{Name: "Default", Address: "192.168.100.1"}}, want: Exists},
		{name: "create netif short name", cmd: &CreateNetInterface{Node: "n1", NetInterface: model.NetInterface{Name: "ib", Address: "192.168.100.1"}}, want: Invalid},
		{name: "modify netif", cmd: &ModifyNetInterface{Node: "n1", Name: "default", Address: "10.9.9.9"},
			check: func(t *testing.T, s *State, _ Result) {
				if n, _ := s.Node("n1"); n.NetInterfaces[0].Address != "10.9.9.9" {
					t.Fatal("address unchanged")
				}
			}},
		{name: "modify netif bad address", cmd: &ModifyNetInterface{Node: "n1", Name: "default", Address: "x"}, want: Invalid},
		{name: "modify missing netif", cmd: &ModifyNetInterface{Node: "n1", Name: "ib0", Address: "10.9.9.9"}, want: NotFound},
		{name: "delete last netif", cmd: &DeleteNetInterface{Node: "n1", Name: "default"}, want: InUse},
		{name: "delete netif", setup: []Command{&CreateNetInterface{Node: "n1", NetInterface: model.NetInterface{Name: "ib0", Address: "192.168.100.1"}}},
			cmd: &DeleteNetInterface{Node: "n1", Name: "IB0"}},
		{name: "delete missing netif", cmd: &DeleteNetInterface{Node: "n1", Name: "ib0"}, want: NotFound},

		// Storage pools.
		{name: "create pool definition", cmd: &CreateStoragePoolDefinition{Name: "fast"}},
		{name: "duplicate pool definition", cmd: &CreateStoragePoolDefinition{Name: "THIN2"}, want: Exists},
		{name: "pool definition name too short", cmd: &CreateStoragePoolDefinition{Name: "ab"}, want: Invalid},
		{name: "delete used pool definition", cmd: &DeleteStoragePoolDefinition{Name: "thin2"}, want: InUse},
		{name: "delete pool definition", setup: []Command{&CreateStoragePoolDefinition{Name: "fast"}}, cmd: &DeleteStoragePoolDefinition{Name: "fast"}},
		{name: "delete missing pool definition", cmd: &DeleteStoragePoolDefinition{Name: "fast"}, want: NotFound},
		{name: "create zfs pool", cmd: &CreateStoragePool{Node: "n1", Name: "zfs1", ProviderKind: "zfs_thin", Props: model.Props{model.KeyStorDriverZPoolThin: "rpool/data"}},
			check: func(t *testing.T, s *State, _ Result) {
				p, _ := s.StoragePool("n1", "zfs1")
				if p.ProviderKind != model.ProviderZFSThin {
					t.Fatalf("pool %+v", p)
				}
				defs := s.StoragePoolDefinitions()
				if !containsFunc(defs, func(d model.StoragePoolDefinition) bool { return d.Name == "zfs1" }) {
					t.Fatal("definition not created")
				}
			}},
		{name: "pool without backing props", cmd: &CreateStoragePool{Node: "n1", Name: "lvm1", ProviderKind: model.ProviderLVMThin, Props: model.Props{model.KeyStorDriverLvmVg: "pve"}}, want: Invalid},
		{name: "unsupported provider", cmd: &CreateStoragePool{Node: "n1", Name: "file1", ProviderKind: "FILE_THIN"}, want: Invalid},
		{name: "pool on missing node", cmd: &CreateStoragePool{Node: "n9", Name: "dlx", ProviderKind: model.ProviderDiskless}, want: NotFound},
		{name: "duplicate pool", cmd: &CreateStoragePool{Node: "n1", Name: "Thin2", ProviderKind: model.ProviderDiskless}, want: Exists},
		{name: "delete used pool", cmd: &DeleteStoragePool{Node: "n1", Name: model.DefaultStoragePool}, want: InUse},
		{name: "delete unused pool", cmd: &DeleteStoragePool{Node: "n1", Name: "thin2"}},
		{name: "delete missing pool", cmd: &DeleteStoragePool{Node: "n1", Name: "nope"}, want: NotFound},

		// Resource groups and volume groups.
		{name: "create group", cmd: &CreateResourceGroup{Name: "pve", Description: "Proxmox", SelectFilter: model.SelectFilter{PlaceCount: 3, StoragePool: "thin2", LayerStack: []string{"DRBD", "STORAGE"}, ReplicasOnDifferent: []string{"Aux/rack"}, DisklessOnRemaining: true}}},
		{name: "duplicate group", cmd: &CreateResourceGroup{Name: "RG1"}, want: Exists},
		{name: "group bad regex", cmd: &CreateResourceGroup{Name: "pve", SelectFilter: model.SelectFilter{NotPlaceWithRscRegex: "("}}, want: Invalid},
		{name: "group bad layer stack", cmd: &CreateResourceGroup{Name: "pve", SelectFilter: model.SelectFilter{LayerStack: []string{"STORAGE", "DRBD"}}}, want: Invalid},
		{name: "group negative place count", cmd: &CreateResourceGroup{Name: "pve", SelectFilter: model.SelectFilter{PlaceCount: -1}}, want: Invalid},
		{name: "group name with dot", cmd: &CreateResourceGroup{Name: "pve.x"}, want: Invalid},
		{name: "modify group", cmd: &ModifyResourceGroup{Name: "rg1", Description: ptr("d"), SelectFilter: &model.SelectFilter{PlaceCount: 3}, Props: model.PropsChange{Set: model.Props{model.KeyAutoDiskful: "5"}}},
			check: func(t *testing.T, s *State, _ Result) {
				g, _ := s.ResourceGroup("rg1")
				if g.SelectFilter.PlaceCount != 3 || g.Description != "d" || g.Props[model.KeyAutoDiskful] != "5" || len(g.VolumeGroups) != 1 {
					t.Fatalf("group %+v", g)
				}
			}},
		{name: "modify group bad auto-diskful", cmd: &ModifyResourceGroup{Name: "rg1", Props: model.PropsChange{Set: model.Props{model.KeyAutoDiskful: "soon"}}}, want: Invalid},
		{name: "modify group peer slots", cmd: &ModifyResourceGroup{Name: "rg1", PeerSlots: ptr(40)}, want: Invalid},
		{name: "delete used group", cmd: &DeleteResourceGroup{Name: "rg1"}, want: InUse},
		{name: "delete default group", cmd: &DeleteResourceGroup{Name: "dfltrscgrp"}, want: Invalid},
		{name: "delete group a schedule uses", setup: []Command{
			&DeleteResourceDefinition{Name: "rd1"},
		}, cmd: &DeleteResourceGroup{Name: "rg1"}, want: InUse},
		{name: "delete group", setup: []Command{&CreateResourceGroup{Name: "pve"}}, cmd: &DeleteResourceGroup{Name: "pve"}},
		{name: "delete missing group", cmd: &DeleteResourceGroup{Name: "pve"}, want: NotFound},
		{name: "create volume group next number", cmd: &CreateVolumeGroup{ResourceGroup: "rg1", Flags: []string{model.VgFlagGrossSize}},
			check: func(t *testing.T, s *State, _ Result) {
				g, _ := s.ResourceGroup("rg1")
				if len(g.VolumeGroups) != 2 || g.VolumeGroups[1].VolumeNumber != 1 {
					t.Fatalf("vgs %+v", g.VolumeGroups)
				}
			}},
		{name: "duplicate volume group", cmd: &CreateVolumeGroup{ResourceGroup: "rg1", VolumeNumber: ptr(0)}, want: Exists},
		{name: "volume group number out of range", cmd: &CreateVolumeGroup{ResourceGroup: "rg1", VolumeNumber: ptr(70000)}, want: Invalid},
		{name: "volume group of missing group", cmd: &CreateVolumeGroup{ResourceGroup: "nope"}, want: NotFound},
		{name: "delete volume group", cmd: &DeleteVolumeGroup{ResourceGroup: "rg1", VolumeNumber: 0}},
		{name: "delete missing volume group", cmd: &DeleteVolumeGroup{ResourceGroup: "rg1", VolumeNumber: 3}, want: NotFound},

		// Resource definitions and volume definitions.
		{name: "create definition with volumes", cmd: &CreateResourceDefinition{Name: "pm-4d62c051", ResourceGroup: "rg1", DrbdSecret: testSecret,
			Props:             model.Props{model.KeyAuxVMID: "100", model.KeyExactSize: "False"},
			VolumeDefinitions: []NewVolumeDefinition{{SizeKiB: 1 << 20}, {SizeKiB: 2 << 20, Minor: ptr(2000)}, {SizeKiB: 4096}}},
			check: func(t *testing.T, s *State, res Result) {
				rd, _ := s.ResourceDefinition("pm-4d62c051")
				var minors []int
				for _, vd := range rd.VolumeDefinitions {
					minors = append(minors, vd.Minor)
				}
				// rd1 holds 1000; the explicit 2000 is skipped by the next auto pick.
				if len(minors) != 3 || minors[0] != 1001 || minors[1] != 2000 || minors[2] != 1002 {
					t.Fatalf("minors %v", minors)
				}
				if len(res.Allocated) != 3 {
					t.Fatalf("allocations %v", res.Allocated)
				}
			}},
		{name: "duplicate definition other case", cmd: newRD("RD1"), want: Exists},
		{name: "definition name reserved", cmd: newRD("all"), want: Invalid},
		{name: "definition name starts with digit", cmd: newRD("1vm"), want: Invalid},
		{name: "definition name too long", cmd: newRD(strings.Repeat("a", 49)), want: Invalid},
		{name: "definition in missing group", cmd: &CreateResourceDefinition{Name: "x1", ResourceGroup: "nope", DrbdSecret: testSecret}, want: NotFound},
		{name: "definition without secret", cmd: &CreateResourceDefinition{Name: "x1"}, want: Invalid},
		{name: "definition secret with quote", cmd: &CreateResourceDefinition{Name: "x1", DrbdSecret: `a"b`}, want: Invalid},
		{name: "definition bad port", cmd: &CreateResourceDefinition{Name: "x1", DrbdSecret: testSecret, DrbdPort: 70000}, want: Invalid},
		{name: "definition bad transport", cmd: &CreateResourceDefinition{Name: "x1", DrbdSecret: testSecret, DrbdTransport: "carrier-pigeon"}, want: Invalid},
		{name: "definition zero size volume", cmd: newRD("x1", 1<<20, 0), want: Invalid},
		{name: "definition taken minor", cmd: &CreateResourceDefinition{Name: "x1", DrbdSecret: testSecret, VolumeDefinitions: []NewVolumeDefinition{{SizeKiB: 1, Minor: ptr(1000)}}}, want: Invalid},
		{name: "definition same minor twice", cmd: &CreateResourceDefinition{Name: "x1", DrbdSecret: testSecret, VolumeDefinitions: []NewVolumeDefinition{{SizeKiB: 1, Minor: ptr(3000)}, {SizeKiB: 1, Minor: ptr(3000)}}}, want: Invalid},
		{name: "definition same volume number twice", cmd: &CreateResourceDefinition{Name: "x1", DrbdSecret: testSecret, VolumeDefinitions: []NewVolumeDefinition{{SizeKiB: 1, VolumeNumber: ptr(1)}, {SizeKiB: 1, VolumeNumber: ptr(1)}}}, want: Exists},
		{name: "definition external name taken", setup: []Command{&CreateResourceDefinition{Name: "x1", ExternalName: "My Disk", DrbdSecret: testSecret}},
			cmd: &CreateResourceDefinition{Name: "x2", ExternalName: "My Disk", DrbdSecret: testSecret}, want: Exists},
		{name: "minors exhausted", setup: []Command{&SetProps{Target: Target{Kind: model.ObjController}, Change: model.PropsChange{Set: model.Props{model.KeyMinorNrAutoRange: "1000-1000"}}}},
			cmd: newRD("x1", 1), want: Exhausted},
		{name: "modify definition", cmd: &ModifyResourceDefinition{Name: "rd1", ResourceGroup: ptr("DfltRscGrp"), DrbdPort: ptr(7777), Props: model.PropsChange{Set: model.Props{model.KeyAuxVMID: "101"}}},
			check: func(t *testing.T, s *State, _ Result) {
				rd, _ := s.ResourceDefinition("rd1")
				if rd.ResourceGroup != "DfltRscGrp" || rd.Drbd.Port != 7777 || rd.Props[model.KeyAuxVMID] != "101" {
					t.Fatalf("rd %+v", rd)
				}
			}},
		{name: "modify definition missing group", cmd: &ModifyResourceDefinition{Name: "rd1", ResourceGroup: ptr("nope")}, want: NotFound},
		{name: "modify missing definition", cmd: &ModifyResourceDefinition{Name: "nope"}, want: NotFound},
		{name: "delete definition frees everything", cmd: &DeleteResourceDefinition{Name: "rd1"},
			check: func(t *testing.T, s *State, _ Result) {
				if len(s.Resources("rd1")) != 0 || s.idx.minors.n != 0 || s.idx.ports["N1"].n != 0 {
					t.Fatal("numbers not freed")
				}
				if _, ok := s.Relocation("rd1"); ok {
					t.Fatal("relocation survived")
				}
			}},
		{name: "delete definition with snapshot", setup: []Command{&CreateSnapshotDefinition{ResourceDefinition: "rd1", Name: "s1"}},
			cmd: &DeleteResourceDefinition{Name: "rd1"}, want: InUse},
		{name: "delete missing definition", cmd: &DeleteResourceDefinition{Name: "nope"}, want: NotFound},
		{name: "create volume definition adds volumes", cmd: &CreateVolumeDefinition{ResourceDefinition: "rd1", NewVolumeDefinition: NewVolumeDefinition{SizeKiB: 4096}},
			check: func(t *testing.T, s *State, res Result) {
				if res.Allocated[0].Volume != 1 || res.Allocated[0].Number != 1001 {
					t.Fatalf("allocations %v", res.Allocated)
				}
				if v, ok := rscOf(t, s, "rd1", "n3").Volume(1); !ok || v.StoragePool != model.DefaultDisklessStoragePool {
					t.Fatalf("diskless volume %+v", v)
				}
				if v, ok := rscOf(t, s, "rd1", "n1").Volume(1); !ok || v.StoragePool != model.DefaultStoragePool {
					t.Fatalf("diskful volume %+v", v)
				}
			}},
		{name: "create volume definition shrunk to zero", cmd: &CreateVolumeDefinition{ResourceDefinition: "rd1", NewVolumeDefinition: NewVolumeDefinition{SizeKiB: 0}}, want: Invalid},
		{name: "create volume definition too big", cmd: &CreateVolumeDefinition{ResourceDefinition: "rd1", NewVolumeDefinition: NewVolumeDefinition{SizeKiB: model.MaxVolumeSizeKiB + 1}}, want: Invalid},
		{name: "new volume follows StorPoolName", setup: []Command{
			&CreateResource{ResourceDefinition: "empty", Node: "n1", StoragePool: "thin2"},
		}, cmd: &CreateVolumeDefinition{ResourceDefinition: "empty", NewVolumeDefinition: NewVolumeDefinition{SizeKiB: 1}},
			check: func(t *testing.T, s *State, _ Result) {
				if v, _ := rscOf(t, s, "empty", "n1").Volume(0); v.StoragePool != "thin2" {
					t.Fatalf("volume in %s, want thin2 from StorPoolName", v.StoragePool)
				}
			}},
		{name: "new volume's pool missing on a node", setup: []Command{
			&SetProps{Target: Target{Kind: model.ObjResourceDefinition, ResourceDefinition: "empty"}, Change: model.PropsChange{Set: model.Props{model.KeyStorPoolName: "thin2"}}},
			&CreateResource{ResourceDefinition: "empty", Node: "n1"},
			&DeleteStoragePool{Node: "n1", Name: "thin2"},
		}, cmd: &CreateVolumeDefinition{ResourceDefinition: "empty", NewVolumeDefinition: NewVolumeDefinition{SizeKiB: 1}}, want: NotFound},
		{name: "create volume definition on missing definition", cmd: &CreateVolumeDefinition{ResourceDefinition: "nope", NewVolumeDefinition: NewVolumeDefinition{SizeKiB: 1}}, want: NotFound},
		{name: "grow volume", cmd: &ModifyVolumeDefinition{ResourceDefinition: "rd1", VolumeNumber: 0, SizeKiB: 2 << 20},
			check: func(t *testing.T, s *State, _ Result) {
				rd, _ := s.ResourceDefinition("rd1")
				if rd.VolumeDefinitions[0].SizeKiB != 2<<20 || !rd.VolumeDefinitions[0].Flags.Has(model.VdFlagResize) {
					t.Fatalf("vd %+v", rd.VolumeDefinitions[0])
				}
			}},
		{name: "same size warns", cmd: &ModifyVolumeDefinition{ResourceDefinition: "rd1", VolumeNumber: 0, SizeKiB: 1 << 20},
			check: func(t *testing.T, s *State, res Result) {
				if len(res.Warnings) != 1 {
					t.Fatalf("warnings %v", res.Warnings)
				}
			}},
		{name: "shrink volume", cmd: &ModifyVolumeDefinition{ResourceDefinition: "rd1", VolumeNumber: 0, SizeKiB: 1 << 19}, want: Invalid},
		{name: "resize missing volume", cmd: &ModifyVolumeDefinition{ResourceDefinition: "rd1", VolumeNumber: 4, SizeKiB: 1 << 21}, want: NotFound},
		{name: "delete volume definition", cmd: &DeleteVolumeDefinition{ResourceDefinition: "rd1", VolumeNumber: 0},
			check: func(t *testing.T, s *State, _ Result) {
				if len(rscOf(t, s, "rd1", "n1").Volumes) != 0 || s.idx.minors.n != 0 {
					t.Fatal("volume or minor left")
				}
			}},
		{name: "delete missing volume definition", cmd: &DeleteVolumeDefinition{ResourceDefinition: "rd1", VolumeNumber: 1}, want: NotFound},

		// Resources.
		{name: "create diskful shares peer port", setup: []Command{&CreateNode{Name: "n4", NodeType: model.NodeTypeSatellite, NetInterfaces: netif("10.0.0.4")},
			&CreateStoragePool{Node: "n4", Name: model.DefaultStoragePool, ProviderKind: model.ProviderZFSThin, Props: model.Props{model.KeyStorDriverZPoolThin: "tank"}}},
			cmd: &CreateResource{ResourceDefinition: "rd1", Node: "n4", CreateTimestamp: 42},
			check: func(t *testing.T, s *State, res Result) {
				r := rscOf(t, s, "rd1", "n4")
				if r.NodeID != 3 || len(r.TCPPorts) != 1 || r.TCPPorts[0] != 7000 || r.PeerSlots != 7 || r.CreateTimestamp != 42 {
					t.Fatalf("resource %+v", r)
				}
			}},
		{name: "create with explicit node id and ports", cmd: &CreateResource{ResourceDefinition: "empty", Node: "n1", NodeID: ptr(17), TCPPorts: []int{7500, 7400}},
			check: func(t *testing.T, s *State, _ Result) {
				r := rscOf(t, s, "empty", "n1")
				if r.NodeID != 17 || len(r.TCPPorts) != 2 || r.TCPPorts[0] != 7400 {
					t.Fatalf("resource %+v", r)
				}
			}},
		{name: "create with preferred port", setup: []Command{&ModifyResourceDefinition{Name: "empty", DrbdPort: ptr(7100)}},
			cmd: &CreateResource{ResourceDefinition: "empty", Node: "n1"},
			check: func(t *testing.T, s *State, _ Result) {
				if r := rscOf(t, s, "empty", "n1"); r.TCPPorts[0] != 7100 {
					t.Fatalf("ports %v", r.TCPPorts)
				}
			}},
		{name: "preferred port taken falls back to lowest free", setup: []Command{&ModifyResourceDefinition{Name: "empty", DrbdPort: ptr(7000)}},
			cmd: &CreateResource{ResourceDefinition: "empty", Node: "n1"},
			check: func(t *testing.T, s *State, _ Result) {
				if r := rscOf(t, s, "empty", "n1"); r.TCPPorts[0] != 7001 {
					t.Fatalf("ports %v", r.TCPPorts)
				}
			}},
		{name: "node range from node prop", setup: []Command{&ModifyNode{Name: "n1", Props: model.PropsChange{Set: model.Props{model.KeyTcpPortAutoRange: "9000-9009"}}}},
			cmd: &CreateResource{ResourceDefinition: "empty", Node: "n1", TCPPortCount: 2},
			check: func(t *testing.T, s *State, _ Result) {
				if r := rscOf(t, s, "empty", "n1"); r.TCPPorts[0] != 9000 || r.TCPPorts[1] != 9001 {
					t.Fatalf("ports %v", r.TCPPorts)
				}
			}},
		{name: "ports exhausted", setup: []Command{&ModifyNode{Name: "n1", Props: model.PropsChange{Set: model.Props{model.KeyTcpPortAutoRange: "7000-7000"}}}},
			cmd: &CreateResource{ResourceDefinition: "empty", Node: "n1"}, want: Exhausted},
		{name: "explicit port taken", cmd: &CreateResource{ResourceDefinition: "empty", Node: "n1", TCPPorts: []int{7000}}, want: Invalid},
		{name: "explicit node id taken on existing node", setup: []Command{&CreateNode{Name: "n4", NodeType: model.NodeTypeSatellite, NetInterfaces: netif("10.0.0.4")}},
			cmd: &CreateResource{ResourceDefinition: "rd1", Node: "n4", Kind: Diskless, NodeID: ptr(1)}, want: Invalid},
		{name: "node id out of range", cmd: &CreateResource{ResourceDefinition: "empty", Node: "n1", NodeID: ptr(32)}, want: Invalid},
		{name: "duplicate resource", cmd: &CreateResource{ResourceDefinition: "RD1", Node: "N1"}, want: Exists},
		{name: "resource on missing node", cmd: &CreateResource{ResourceDefinition: "rd1", Node: "n9"}, want: NotFound},
		{name: "resource of missing definition", cmd: &CreateResource{ResourceDefinition: "nope", Node: "n1"}, want: NotFound},
		{name: "resource on controller node", setup: []Command{&CreateNode{Name: "ctl", NodeType: model.NodeTypeController, NetInterfaces: netif("10.1.0.1")}},
			cmd: &CreateResource{ResourceDefinition: "rd1", Node: "ctl"}, want: Invalid},
		{name: "resource in missing pool", cmd: &CreateResource{ResourceDefinition: "empty", Node: "n1", StoragePool: "nope"}, want: NotFound},
		{name: "diskful resource in diskless pool", cmd: &CreateResource{ResourceDefinition: "empty", Node: "n1", StoragePool: model.DefaultDisklessStoragePool}, want: Invalid},
		{name: "diskful with diskless flag", cmd: &CreateResource{ResourceDefinition: "empty", Node: "n1", Flags: []string{model.RscFlagDiskless}}, want: Invalid},
		{name: "unknown kind", cmd: &CreateResource{ResourceDefinition: "empty", Node: "n1", Kind: "floppy"}, want: Invalid},
		{name: "peer slots from property", setup: []Command{&SetProps{Target: Target{Kind: model.ObjResourceGroup, ResourceGroup: "DfltRscGrp"}, Change: model.PropsChange{Set: model.Props{model.KeyPeerSlotsNewResource: "3"}}}},
			cmd: &CreateResource{ResourceDefinition: "empty", Node: "n2"},
			check: func(t *testing.T, s *State, _ Result) {
				if r := rscOf(t, s, "empty", "n2"); r.PeerSlots != 3 {
					t.Fatalf("peer slots %d", r.PeerSlots)
				}
			}},
		{name: "tie-breaker", cmd: &CreateResource{ResourceDefinition: "empty", Node: "n1", Kind: TieBreaker},
			check: func(t *testing.T, s *State, _ Result) {
				r := rscOf(t, s, "empty", "n1")
				if !r.TieBreaker() || !r.Diskless() {
					t.Fatalf("flags %v", r.Flags)
				}
			}},
		{name: "delete diskless", cmd: &DeleteResource{ResourceDefinition: "rd1", Node: "n3"}},
		{name: "delete last diskful with diskless peer", setup: []Command{&DeleteResource{ResourceDefinition: "rd1", Node: "n2"}},
			cmd: &DeleteResource{ResourceDefinition: "rd1", Node: "n1"}, want: InUse},
		{name: "delete diskful frees port", cmd: &DeleteResource{ResourceDefinition: "rd1", Node: "n2"},
			check: func(t *testing.T, s *State, _ Result) {
				if s.idx.ports["N2"].has(7000) {
					t.Fatal("port still held")
				}
			}},
		{name: "delete missing resource", cmd: &DeleteResource{ResourceDefinition: "rd1", Node: "n9"}, want: NotFound},
		{name: "toggle into diskful", cmd: &ToggleDisk{ResourceDefinition: "rd1", Node: "n3", Diskful: true, StoragePool: "thin2", DiskfulBy: model.DiskfulByAutoDiskful},
			check: func(t *testing.T, s *State, _ Result) {
				diskless(t, s, "rd1", "n3", false)
				r := rscOf(t, s, "rd1", "n3")
				if r.Volumes[0].StoragePool != "thin2" || r.Props[model.KeyDiskfulBy] != model.DiskfulByAutoDiskful || !r.Flags.Has(model.RscFlagDiskAddRequested) || r.NodeID != 2 {
					t.Fatalf("resource %+v", r)
				}
			}},
		{name: "toggle into diskless", cmd: &ToggleDisk{ResourceDefinition: "rd1", Node: "n2"},
			check: func(t *testing.T, s *State, _ Result) {
				diskless(t, s, "rd1", "n2", true)
				if r := rscOf(t, s, "rd1", "n2"); r.Volumes[0].StoragePool != model.DefaultDisklessStoragePool {
					t.Fatalf("pool %s", r.Volumes[0].StoragePool)
				}
			}},
		{name: "toggle last diskful away", setup: []Command{&ToggleDisk{ResourceDefinition: "rd1", Node: "n2"}},
			cmd: &ToggleDisk{ResourceDefinition: "rd1", Node: "n1"}, want: InUse},
		{name: "toggle into missing pool", cmd: &ToggleDisk{ResourceDefinition: "rd1", Node: "n3", Diskful: true, StoragePool: "nope"}, want: NotFound},
		{name: "toggle bad diskful_by", cmd: &ToggleDisk{ResourceDefinition: "rd1", Node: "n3", Diskful: true, DiskfulBy: "magic"}, want: Invalid},
		{name: "toggle no-op warns", cmd: &ToggleDisk{ResourceDefinition: "rd1", Node: "n1", Diskful: true},
			check: func(t *testing.T, s *State, res Result) {
				if len(res.Warnings) != 1 {
					t.Fatalf("warnings %v", res.Warnings)
				}
			}},

		// Snapshots.
		{name: "snapshot diskful nodes", cmd: &CreateSnapshotDefinition{ResourceDefinition: "rd1", Name: "snap_rd1_before", CreateTimestamp: 7},
			check: func(t *testing.T, s *State, _ Result) {
				sd, ok := s.SnapshotDefinition("rd1", "snap_rd1_before")
				if !ok || len(sd.Snapshots) != 2 || sd.Snapshots[0].Node != "n1" || sd.Snapshots[1].NodeID != 1 || sd.VolumeDefinitions[0].SizeKiB != 1<<20 {
					t.Fatalf("snapshot %+v", sd)
				}
			}},
		{name: "snapshot on diskless node", cmd: &CreateSnapshotDefinition{ResourceDefinition: "rd1", Name: "s1", Nodes: []string{"n3"}}, want: Invalid},
		{name: "snapshot of empty definition", cmd: &CreateSnapshotDefinition{ResourceDefinition: "empty", Name: "s1"}, want: Invalid},
		{name: "snapshot bad name", cmd: &CreateSnapshotDefinition{ResourceDefinition: "rd1", Name: "s 1"}, want: Invalid},
		{name: "duplicate snapshot", setup: []Command{&CreateSnapshotDefinition{ResourceDefinition: "rd1", Name: "s1"}},
			cmd: &CreateSnapshotDefinition{ResourceDefinition: "rd1", Name: "S1"}, want: Exists},
		{name: "snapshot keeps pool busy", setup: []Command{&CreateSnapshotDefinition{ResourceDefinition: "rd1", Name: "s1", Nodes: []string{"n2"}}, &DeleteResource{ResourceDefinition: "rd1", Node: "n2"}},
			cmd: &DeleteStoragePool{Node: "n2", Name: model.DefaultStoragePool}, want: InUse},
		{name: "delete snapshot", setup: []Command{&CreateSnapshotDefinition{ResourceDefinition: "rd1", Name: "s1"}},
			cmd: &DeleteSnapshotDefinition{ResourceDefinition: "rd1", Name: "s1"}},
		{name: "delete missing snapshot", cmd: &DeleteSnapshotDefinition{ResourceDefinition: "rd1", Name: "s1"}, want: NotFound},

		// Job schedules and runs.
		{name: "add verify schedule", cmd: &AddJobSchedule{Name: "weekly-verify", Cron: "@weekly", Kind: model.JobVerify, Target: model.JobTarget{Kind: model.TargetAll}, At: 5}},
		{name: "duplicate schedule", cmd: &AddJobSchedule{Name: "Nightly", Cron: "@daily", Kind: model.JobVerify, Target: model.JobTarget{Kind: model.TargetAll}}, want: Exists},
		{name: "schedule bad cron", cmd: &AddJobSchedule{Name: "s1", Cron: "every day", Kind: model.JobVerify, Target: model.JobTarget{Kind: model.TargetAll}}, want: Invalid},
		{name: "schedule bad kind", cmd: &AddJobSchedule{Name: "s1", Cron: "@daily", Kind: "backup", Target: model.JobTarget{Kind: model.TargetAll}}, want: Invalid},
		{name: "schedule missing target", cmd: &AddJobSchedule{Name: "s1", Cron: "@daily", Kind: model.JobSnapshot, Target: model.JobTarget{Kind: model.TargetResourceDefinition, Name: "nope"}}, want: NotFound},
		{name: "schedule list with a missing definition", cmd: &AddJobSchedule{Name: "s1", Cron: "@daily", Kind: model.JobSnapshot, Target: model.JobTarget{Kind: model.TargetResourceDefinitions, Name: "rd1,nope"}}, want: NotFound},
		{name: "schedule bad selector", cmd: &AddJobSchedule{Name: "s1", Cron: "@daily", Kind: model.JobSnapshot, Target: model.JobTarget{Kind: model.TargetSelector, Name: "Aux/backup"}}, want: Invalid},
		{name: "schedule bad option", cmd: &AddJobSchedule{Name: "s1", Cron: "@daily", Kind: model.JobSnapshot, Target: model.JobTarget{Kind: model.TargetAll}, Options: map[string]string{"Retain Count": "3"}}, want: Invalid},
		{name: "edit schedule", cmd: &EditJobSchedule{Name: "nightly", Cron: ptr("30 2 * * *"), SetOptions: map[string]string{"prefix": "auto"}, DeleteOptions: []string{"retain"}, At: 9},
			check: func(t *testing.T, s *State, _ Result) {
				js, _ := s.JobSchedule("nightly")
				if js.Cron != "30 2 * * *" || js.Options["prefix"] != "auto" || len(js.Options) != 1 || js.UpdatedAt != 9 || js.CreatedAt != 1000 {
					t.Fatalf("schedule %+v", js)
				}
			}},
		{name: "edit schedule bad cron", cmd: &EditJobSchedule{Name: "nightly", Cron: ptr("* * *")}, want: Invalid},
		{name: "edit missing schedule", cmd: &EditJobSchedule{Name: "nope"}, want: NotFound},
		{name: "pause schedule", cmd: &PauseJobSchedule{Name: "nightly", At: 3},
			check: func(t *testing.T, s *State, _ Result) {
				if js, _ := s.JobSchedule("nightly"); !js.Paused {
					t.Fatal("not paused")
				}
			}},
		{name: "pause missing schedule", cmd: &PauseJobSchedule{Name: "nope"}, want: NotFound},
		{name: "resume running schedule warns", cmd: &ResumeJobSchedule{Name: "nightly"},
			check: func(t *testing.T, s *State, res Result) {
				if len(res.Warnings) != 1 {
					t.Fatalf("warnings %v", res.Warnings)
				}
			}},
		{name: "resume paused schedule", setup: []Command{&PauseJobSchedule{Name: "nightly", At: 3}}, cmd: &ResumeJobSchedule{Name: "nightly", At: 4}},
		{name: "resume missing schedule", cmd: &ResumeJobSchedule{Name: "nope"}, want: NotFound},
		{name: "request a run", setup: []Command{&RequestJobRun{Name: "nightly", At: 9}}, cmd: &RequestJobRun{Name: "nightly", At: 7},
			check: func(t *testing.T, s *State, _ Result) {
				if js, _ := s.JobSchedule("nightly"); js.RunRequestedAt != 9 {
					t.Fatalf("run requested at %d, want the later request 9", js.RunRequestedAt)
				}
			}},
		{name: "request a run without time", cmd: &RequestJobRun{Name: "nightly"}, want: Invalid},
		{name: "request a run of a missing schedule", cmd: &RequestJobRun{Name: "nope", At: 5}, want: NotFound},
		{name: "remove schedule drops history", setup: []Command{&RecordJobRun{Run: testRun("r1", "nightly", model.RunRunning, 10, 0)}},
			cmd: &RemoveJobSchedule{Name: "nightly"},
			check: func(t *testing.T, s *State, _ Result) {
				if len(s.JobRuns("nightly")) != 0 || len(s.runs) != 0 {
					t.Fatal("history left")
				}
			}},
		{name: "remove missing schedule", cmd: &RemoveJobSchedule{Name: "nope"}, want: NotFound},
		{name: "record run start and end", setup: []Command{&RecordJobRun{Run: testRun("r1", "nightly", model.RunRunning, 10, 0)}},
			cmd: &RecordJobRun{Run: testRun("r1", "nightly", model.RunSucceeded, 10, 20)},
			check: func(t *testing.T, s *State, _ Result) {
				runs := s.JobRuns("nightly")
				if len(runs) != 1 || runs[0].State != model.RunSucceeded {
					t.Fatalf("runs %+v", runs)
				}
			}},
		{name: "record ended run again", setup: []Command{&RecordJobRun{Run: testRun("r1", "nightly", model.RunFailed, 10, 20)}},
			cmd: &RecordJobRun{Run: testRun("r1", "nightly", model.RunSucceeded, 10, 30)}, want: Invalid},
		{name: "record run without finish time", cmd: &RecordJobRun{Run: testRun("r1", "nightly", model.RunSucceeded, 10, 0)}, want: Invalid},
		{name: "record run of missing schedule", cmd: &RecordJobRun{Run: testRun("r1", "nope", model.RunRunning, 10, 0)}, want: NotFound},
		{name: "record manual run", cmd: &RecordJobRun{Run: testRun("r1", "", model.RunSkipped, 10, 10)}},
		{name: "record run bad state", cmd: &RecordJobRun{Run: testRun("r1", "", "exploded", 10, 10)}, want: Invalid},

		// Relocations.
		{name: "set relocation replaces pending", cmd: &SetRelocationTimer{ResourceDefinition: "rd1", TargetNode: "n2", DueAt: 9000, At: 2000},
			check: func(t *testing.T, s *State, _ Result) {
				rel, _ := s.Relocation("rd1")
				if rel.TargetNode != "n2" || rel.State != model.RelocPending || rel.DueAt != 9000 {
					t.Fatalf("relocation %+v", rel)
				}
			}},
		{name: "set relocation while syncing", setup: []Command{&UpdateRelocation{ResourceDefinition: "rd1", State: model.RelocSyncing, At: 3}},
			cmd: &SetRelocationTimer{ResourceDefinition: "rd1", TargetNode: "n2", DueAt: 9000}, want: InUse},
		{name: "set relocation to missing node", cmd: &SetRelocationTimer{ResourceDefinition: "rd1", TargetNode: "n9"}, want: NotFound},
		{name: "set relocation of missing definition", cmd: &SetRelocationTimer{ResourceDefinition: "nope", TargetNode: "n1"}, want: NotFound},
		{name: "advance relocation", cmd: &UpdateRelocation{ResourceDefinition: "rd1", State: model.RelocAdding, Message: "toggle-disk on n3", At: 3},
			check: func(t *testing.T, s *State, _ Result) {
				if rel, _ := s.Relocation("rd1"); rel.State != model.RelocAdding || rel.UpdatedAt != 3 {
					t.Fatalf("relocation %+v", rel)
				}
			}},
		{name: "relocation backwards", setup: []Command{&UpdateRelocation{ResourceDefinition: "rd1", State: model.RelocSyncing}},
			cmd: &UpdateRelocation{ResourceDefinition: "rd1", State: model.RelocAdding}, want: Invalid},
		{name: "relocation after done", setup: []Command{&UpdateRelocation{ResourceDefinition: "rd1", State: model.RelocDone}},
			cmd: &UpdateRelocation{ResourceDefinition: "rd1", State: model.RelocCancelled}, want: Invalid},
		{name: "relocation unknown state", cmd: &UpdateRelocation{ResourceDefinition: "rd1", State: "teleporting"}, want: Invalid},
		{name: "update missing relocation", cmd: &UpdateRelocation{ResourceDefinition: "empty", State: model.RelocAdding}, want: NotFound},
		{name: "clear relocation", cmd: &ClearRelocation{ResourceDefinition: "rd1"}},
		{name: "clear missing relocation", cmd: &ClearRelocation{ResourceDefinition: "empty"}, want: NotFound},
	}
}

func testRun(id, sched string, st model.JobRunState, start, end int64) model.JobRun {
	return model.JobRun{ID: id, Schedule: sched, Kind: model.JobSnapshot, Target: model.JobTarget{Kind: model.TargetAll},
		State: st, StartedAt: start, FinishedAt: end}
}

func containsFunc[T any](s []T, f func(T) bool) bool {
	for _, v := range s {
		if f(v) {
			return true
		}
	}
	return false
}

// TestCommands runs every command case from the fixture. A refused command
// must leave the snapshot byte-identical; every command, refused or not,
// must leave the derived indexes exact, and survive an encode/decode round
// trip through the log format with the same outcome.
func TestCommands(t *testing.T) {
	base := fixture(t)
	baseSnap := snapshotOf(t, base)
	ok, refused := map[string]bool{}, map[string]bool{}
	for _, tc := range commandCases() {
		t.Run(tc.name, func(t *testing.T) {
			s := New()
			if err := s.Restore(baseSnap); err != nil {
				t.Fatal(err)
			}
			for _, c := range tc.setup {
				if res := s.Apply(c); res.Err != nil {
					t.Fatalf("setup %s: %v", c.Type(), res.Err)
				}
			}
			before := snapshotOf(t, s)
			entry, err := Encode(tc.cmd)
			if err != nil {
				t.Fatal(err)
			}
			res := s.ApplyEncoded(entry)
			wantKind(t, res, tc.want)
			checkIndexes(t, s)
			after := snapshotOf(t, s)
			if tc.want != 0 {
				refused[tc.cmd.Type()] = true
				if !sameBytes(before, after) {
					t.Fatalf("refused %s changed the state", tc.cmd.Type())
				}
				return
			}
			ok[tc.cmd.Type()] = true
			if tc.check != nil {
				tc.check(t, s, res)
			}
			// The same command applied directly gives the same state.
			direct := New()
			if err := direct.Restore(before); err != nil {
				t.Fatal(err)
			}
			apply(t, direct, tc.cmd)
			if !sameBytes(after, snapshotOf(t, direct)) {
				t.Fatal("Apply and ApplyEncoded disagree")
			}
		})
	}
	for _, typ := range CommandTypes() {
		if !ok[typ] {
			t.Errorf("no successful case for %s", typ)
		}
		if !refused[typ] && typ != "SetProps" {
			t.Errorf("no refused case for %s", typ)
		}
	}
}
