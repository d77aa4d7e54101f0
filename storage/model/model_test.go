package model

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestValidateName(t *testing.T) {
	for _, tc := range []struct {
		kind NameKind
		name string
		says string // "" means valid
	}{
		{NameResourceDefinition, "vm-100-disk-1", ""},
		{NameResourceDefinition, "pm-4d62c051", ""},
		{NameResourceDefinition, "_x", ""},
		{NameResourceDefinition, "snap_pm-4d62c051_before_upgrade", ""},
		{NameResourceDefinition, "a", "1 bytes long"},
		{NameResourceDefinition, strings.Repeat("a", 48), ""},
		{NameResourceDefinition, strings.Repeat("a", 49), "allowed are 2 to 48"},
		{NameResourceDefinition, "1vm", "begins with '1'"},
		{NameResourceDefinition, "-vm", "begins with '-'"},
		{NameResourceDefinition, "vm.100", "contains '.'"},
		{NameResourceDefinition, "vm 100", "contains ' '"},
		{NameResourceDefinition, "ALL", "reserved by DRBD"},
		{NameResourceDefinition, "proxy", "reserved by DRBD"},
		{NameResourceDefinition, "__", "no letter"},
		{NameSnapshot, "s1", ""},
		{NameResourceGroup, "pve-rg", ""},
		{NameStoragePool, "ab", "allowed are 3 to 48"},
		{NameStoragePool, "thin_pool-1", ""},
		{NameNetInterface, "default", ""},
		{NameNetInterface, "ib_0", ""},
		{NameNetInterface, "ib.0", "contains '.'"},
		{NameNetInterface, strings.Repeat("e", 33), "allowed are 3 to 32"},
		{NameNode, "pve1", ""},
		{NameNode, "pve-1.example.com", ""},
		{NameNode, "1pve", ""},
		{NameNode, "p", "RFC 1123 allows 2 to 255"},
		{NameNode, "-pve", "begins with '-'"},
		{NameNode, ".pve", "begins with '.'"},
		{NameNode, "pve-", "ends with '-'"},
		{NameNode, "pve_1", "contains '_'"},
		{NameNode, strings.Repeat("a", 64) + ".x", "longer than 63"},
		{NameJobRun, "20261122T0300-nightly", ""},
		{NameJobRun, "run/1", "contains '/'"},
		{NameResourceDefinitionExt, "My Disk (100)", ""},
		{NameResourceDefinitionExt, "", "1 to 255"},
	} {
		err := ValidateName(tc.kind, tc.name)
		if tc.says == "" {
			if err != nil {
				t.Errorf("%s %q: %v", tc.kind, tc.name, err)
			}
			continue
		}
		var ne *NameError
		if !errors.As(err, &ne) {
			t.Errorf("%s %q: error %v, want a *NameError", tc.kind, tc.name, err)
			continue
		}
		if !strings.Contains(err.Error(), tc.says) || ne.Fix == "" {
			t.Errorf("%s %q: %q does not say %q or has no fix", tc.kind, tc.name, err, tc.says)
		}
	}
}

func TestKeyIsCaseInsensitiveIdentity(t *testing.T) {
	if Key("vm-100-Disk-1") != Key("VM-100-DISK-1") || Key("ABC") != "ABC" || !SameName("pve1", "PVE1") {
		t.Fatal("names must compare case-insensitively, as LINSTOR's GenericName")
	}
}

func TestPropsChange(t *testing.T) {
	cur := Props{"Aux/pm/vmid": "100", "Aux/pm/x": "1", "DrbdOptions/Net/protocol": "C", "Aux/pmx": "keep"}
	ch := PropsChange{Set: Props{"DrbdOptions/ExactSize": "True"}, Delete: []string{"DrbdOptions/Net/protocol", "Nope"}, DeleteNamespaces: []string{"Aux/pm"}}
	if err := ch.Validate(); err != nil {
		t.Fatal(err)
	}
	got, unset := ch.Apply(cur)
	want := Props{"DrbdOptions/ExactSize": "True", "Aux/pmx": "keep"}
	if !equalProps(got, want) || !slices.Equal(unset, []string{"Nope"}) {
		t.Fatalf("got %v unset %v", got, unset)
	}
	if len(cur) != 4 {
		t.Fatal("Apply changed its input")
	}
	empty, _ := PropsChange{Delete: []string{"k"}}.Apply(Props{"k": "v"})
	if empty != nil {
		t.Fatal("an emptied container must be nil, for stable snapshots")
	}
}

func equalProps(a, b Props) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestPropValidation(t *testing.T) {
	for _, tc := range []struct {
		key, value string
		ok         bool
	}{
		{"DrbdOptions/Net/transport", "rdma", true},
		{"", "x", false},
		{"/Aux", "x", false},
		{"Aux/", "x", false},
		{"Aux//x", "x", false},
		{"Aux/a b", "x", false},
		{strings.Repeat("k", 513), "x", false},
		{"Aux/x", strings.Repeat("v", 4097), false},
		{KeyTcpPortAutoRange, "7000-7999", true},
		{KeyTcpPortAutoRange, "7000", false},
		{KeyTcpPortAutoRange, "7999-7000", false},
		{KeyTcpPortAutoRange, "0-100", false},
		{KeyMinorNrAutoRange, "1000-49999", true},
		{KeyMinorNrAutoRange, "1000-2000000", false},
		{KeyPeerSlotsNewResource, "31", true},
		{KeyPeerSlotsNewResource, "32", false},
		{KeyAutoDiskful, "5", true},
		{KeyAutoDiskful, "5m", false},
	} {
		err := PropsChange{Set: Props{tc.key: tc.value}}.Validate()
		if (err == nil) != tc.ok {
			t.Errorf("%q=%.20q: error %v, want ok=%v", tc.key, tc.value, err, tc.ok)
		}
	}
	if err := (PropsChange{Set: Props{"a": "1"}, Delete: []string{"a"}}).Validate(); err == nil {
		t.Error("set and delete of one key accepted")
	}
}

func TestPropertyKeysAreLinstorSpelling(t *testing.T) {
	for got, want := range map[string]string{
		KeyPrefNic: "PrefNic", KeyAuxVMID: "Aux/pm/vmid", KeyDrbdTransport: "DrbdOptions/Net/transport",
		KeyAutoQuorum: "DrbdOptions/auto-quorum", KeyAutoAddQuorumTiebreaker: "DrbdOptions/auto-add-quorum-tiebreaker",
		KeyAutoDiskful: "DrbdOptions/auto-diskful", KeyAutoDiskfulAllowCleanup: "DrbdOptions/auto-diskful-allow-cleanup",
		KeyExactSize: "DrbdOptions/ExactSize", KeyStorDriverLvmVg: "StorDriver/LvmVg", KeyStorDriverThinPool: "StorDriver/ThinPool",
		KeyStorDriverZPoolThin: "StorDriver/ZPoolThin", KeyTcpPortAutoRange: "TcpPortAutoRange", KeyMinorNrAutoRange: "MinorNrAutoRange",
		KeyForceInitialSync: "DrbdOptions/ForceInitialSync", KeyOnNoQuorum: "DrbdOptions/Resource/on-no-quorum",
	} {
		if got != want {
			t.Errorf("key %q, LINSTOR spells it %q", got, want)
		}
	}
}

func TestLookupOrder(t *testing.T) {
	for key, want := range map[string]string{
		KeyPrefNic:                          "SP R RD RG N C",
		"DrbdOptions/Disk/c-max-rate":       "V R VD VG RD RG N C",
		"DrbdOptions/Net/max-buffers":       "R RD RG N C",
		KeyQuorum:                           "R RD RG N C",
		"DrbdOptions/Handlers/split-brain":  "R RD RG N C",
		"DrbdOptions/PeerDevice/c-min-rate": "R RD RG N C",
		KeyAutoDiskful:                      "R N RD RG C",
		KeyAutoDiskfulAllowCleanup:          "R N RD RG C",
		KeyForceInitialSync:                 "RD RG C",
		KeyPeerSlotsNewResource:             "RD RG C",
		KeyTcpPortAutoRange:                 "N C",
		KeyMinorNrAutoRange:                 "C",
		KeyStorDriverLvmVg:                  "SP",
		KeyAuxVMID:                          "V R VD VG RD RG N C",
		KeyStorPoolName:                     "V R VD VG RD RG N C",
	} {
		var got []string
		for _, l := range LookupOrder(key) {
			got = append(got, string(l))
		}
		if strings.Join(got, " ") != want {
			t.Errorf("%s: order %v, want %s", key, got, want)
		}
	}
}

func TestScopeResolve(t *testing.T) {
	s := NewScope(
		Layer{LevelController, "controller", Props{KeyPrefNic: "default", KeyAutoDiskful: "30", "DrbdOptions/Net/max-buffers": "8000"}},
		Layer{LevelNode, "pve1", Props{KeyPrefNic: "ib0", KeyAutoDiskful: "10"}},
		Layer{LevelResourceGroup, "pve", Props{KeyAutoDiskful: "5", "DrbdOptions/Disk/c-max-rate": "1G"}},
		Layer{LevelResourceDefinition, "vm-100-disk-1", Props{KeyAuxVMID: "100"}},
		Layer{LevelStoragePool, "thin on pve1", Props{KeyPrefNic: "sp-nic"}},
		Layer{LevelVolumeDefinition, "vm-100-disk-1/0", Props{"DrbdOptions/Net/max-buffers": "1", "DrbdOptions/Disk/c-max-rate": "2G"}},
	)
	r, ok := s.Resolve(KeyPrefNic)
	if !ok || r.Value != "sp-nic" || r.Level != LevelStoragePool || len(r.Shadowed) != 2 || r.Shadowed[0].Value != "ib0" || r.Shadowed[1].Level != LevelController {
		t.Fatalf("PrefNic %+v", r)
	}
	// auto-diskful prefers the node over the group (R > N > RD > RG > C).
	if r, _ := s.Resolve(KeyAutoDiskful); r.Value != "10" || r.Object != "pve1" {
		t.Fatalf("auto-diskful %+v", r)
	}
	// A Net option on a volume definition is not where LINSTOR looks.
	if r, _ := s.Resolve("DrbdOptions/Net/max-buffers"); r.Value != "8000" || r.Level != LevelController {
		t.Fatalf("max-buffers %+v", r)
	}
	if r, _ := s.Resolve("DrbdOptions/Disk/c-max-rate"); r.Value != "2G" || r.Shadowed[0].Value != "1G" {
		t.Fatalf("c-max-rate %+v", r)
	}
	if _, ok := s.Resolve("Aux/none"); ok {
		t.Fatal("unset key resolved")
	}
	eff := s.Effective("DrbdOptions")
	var keys []string
	for _, e := range eff {
		keys = append(keys, e.Key+"="+e.Value)
	}
	want := []string{"DrbdOptions/Disk/c-max-rate=2G", "DrbdOptions/Net/max-buffers=8000", "DrbdOptions/auto-diskful=10"}
	if !slices.Equal(keys, want) {
		t.Fatalf("effective %v, want %v", keys, want)
	}
	// Clone shares no maps.
	c := s.Clone()
	c.layers[0].Props["x"] = "y"
	if _, ok := s.layers[0].Props["x"]; ok {
		t.Fatal("Clone shares props")
	}
}

func TestRanges(t *testing.T) {
	r, err := ParseRange(" 7000 - 7999 ", TCPPortLimits())
	if err != nil || r != DefaultTCPPortRange() || r.Size() != 1000 || !r.Contains(7999) || r.Contains(8000) {
		t.Fatalf("range %v %v", r, err)
	}
	for _, bad := range []string{"", "7000", "a-b", "9-1", "0-10", "1-70000"} {
		if _, err := ParseRange(bad, TCPPortLimits()); err == nil || !strings.Contains(err.Error(), "min-max") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestFlags(t *testing.T) {
	f := Flags(nil).With("b", "a", "b")
	if !slices.Equal(f, Flags{"a", "b"}) || !f.Has("a") || f.Has("c") {
		t.Fatalf("flags %v", f)
	}
	if g := f.Without("a", "b"); g != nil {
		t.Fatalf("empty set must be nil, got %v", g)
	}
	if len(f) != 2 {
		t.Fatal("With/Without changed the receiver")
	}
	if err := ValidateFlags(ObjResource, []string{RscFlagTieBreaker, RscFlagDrbdDiskless}); err != nil {
		t.Fatal(err)
	}
	if err := ValidateFlags(ObjNode, []string{RscFlagTieBreaker}); err == nil || !strings.Contains(err.Error(), "known flags are") {
		t.Fatalf("node flag check: %v", err)
	}
}

func TestEnums(t *testing.T) {
	if nt, err := ParseNodeType("Satellite"); err != nil || nt != NodeTypeSatellite || nt.LinstorName() != "Satellite" {
		t.Fatalf("%v %v", nt, err)
	}
	if _, err := ParseNodeType("robot"); err == nil {
		t.Fatal("unknown node type accepted")
	}
	if k, err := ParseProviderKind("lvm_thin"); err != nil || k != ProviderLVMThin || !slices.Equal(k.RequiredProps(), []string{KeyStorDriverLvmVg, KeyStorDriverThinPool}) {
		t.Fatalf("%v %v", k, err)
	}
	if _, err := ParseProviderKind("LVM"); err == nil || !strings.Contains(err.Error(), "not supported by pvehci") {
		t.Fatalf("LVM: %v", err)
	}
	if tr, err := ParseDrbdTransport("rdma"); err != nil || tr != TransportRDMA {
		t.Fatalf("%v %v", tr, err)
	}
	if tr, _ := ParseDrbdTransport(""); tr != TransportIP {
		t.Fatal("empty transport is not IP")
	}
	for _, tc := range []struct {
		from, to RelocationState
		ok       bool
	}{
		{RelocPending, RelocAdding, true},
		{RelocPending, RelocSyncing, true},
		{RelocSyncing, RelocAdding, false},
		{RelocRemoving, RelocDone, true},
		{RelocAdding, RelocCancelled, true},
		{RelocDone, RelocFailed, false},
		{RelocPending, "bogus", false},
	} {
		if got := tc.from.CanMoveTo(tc.to); got != tc.ok {
			t.Errorf("%s -> %s: %v", tc.from, tc.to, got)
		}
	}
}

func TestValidateLayerStack(t *testing.T) {
	for stack, ok := range map[string]bool{"": true, "DRBD,STORAGE": true, "drbd,luks,storage": true, "STORAGE,DRBD": false, "DRBD,DRBD,STORAGE": false, "DRBD,ZFS,STORAGE": false} {
		var s []string
		if stack != "" {
			s = strings.Split(stack, ",")
		}
		if err := ValidateLayerStack(s); (err == nil) != ok {
			t.Errorf("%q: %v", stack, err)
		}
	}
}

func TestValidateCron(t *testing.T) {
	for spec, ok := range map[string]bool{
		"0 3 * * *": true, "*/15 * * * 1-5": true, "0 0 1 JAN *": true, "@daily": true, "@every 6h": true,
		"30 0 3 * * *": true, "CRON_TZ=Europe/Berlin 0 3 * * 0": true, "TZ=UTC @daily": true,
		"": false, "* * *": false, "0 3 * * * * *": false, "@sometimes": false, "0 3 * * $": false,
		"CRON_TZ=Europe/Berlin": false, "CRON_TZ= 0 3 * * *": false, "CRON_TZ=Eu;rope 0 3 * * *": false,
	} {
		if err := ValidateCron(spec); (err == nil) != ok {
			t.Errorf("%q: %v", spec, err)
		}
	}
}

func TestValidateUUID(t *testing.T) {
	for u, ok := range map[string]bool{"": true, "0b0e2b1c-59d5-4a8f-9e73-6d3b0c0f7a11": true, "0b0e2b1c59d54a8f9e736d3b0c0f7a11": false, "0b0e2b1c-59d5-4a8f-9e73-6d3b0c0f7a1z": false} {
		if err := ValidateUUID(u); (err == nil) != ok {
			t.Errorf("%q: %v", u, err)
		}
	}
}

func TestSelectFilterValidate(t *testing.T) {
	good := SelectFilter{PlaceCount: 3, StoragePoolList: []string{"thin"}, XReplicasOnDifferentMap: map[string]int{"site": 2}, ProviderList: []string{"LVM_THIN"}, DisklessType: "DRBD_DISKLESS"}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]SelectFilter{
		"place count":  {PlaceCount: 33},
		"node name":    {NodeNameList: []string{"bad_node"}},
		"pool name":    {StoragePoolList: []string{"x"}},
		"regex":        {NotPlaceWithRscRegex: "[a-"},
		"x count":      {XReplicasOnDifferentMap: map[string]int{"site": 0}},
		"provider":     {ProviderList: []string{"TAPE"}},
		"diskless":     {DisklessType: "floppy"},
		"rsc name":     {NotPlaceWithRsc: []string{"9"}},
		"layer":        {LayerStack: []string{"DRBD"}},
		"storage pool": {StoragePool: "x"},
	} {
		if err := f.Validate(); err == nil {
			t.Errorf("%s: accepted %+v", name, f)
		}
	}
	// Clone is deep.
	c := good.Clone()
	c.StoragePoolList[0] = "other"
	c.XReplicasOnDifferentMap["site"] = 9
	if good.StoragePoolList[0] != "thin" || good.XReplicasOnDifferentMap["site"] != 2 {
		t.Fatal("Clone shares memory")
	}
}

// The JSON tags are the FSM snapshot format; this pins a representative
// object so that a renamed tag fails here, not in a cluster upgrade.
func TestSnapshotFormatIsStable(t *testing.T) {
	r := Resource{Name: "vm-100-disk-1", Node: "pve1", NodeID: 2, TCPPorts: []int{7000}, PeerSlots: 7,
		Flags: Flags{RscFlagDiskless, RscFlagDrbdDiskless}, Volumes: []Volume{{VolumeNumber: 0, StoragePool: DefaultDisklessStoragePool}}, CreateTimestamp: 1}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"name":"vm-100-disk-1","node":"pve1","node_id":2,"tcp_ports":[7000],"peer_slots":7,"flags":["DISKLESS","DRBD_DISKLESS"],"volumes":[{"volume_number":0,"storage_pool":"DfltDisklessStorPool"}],"create_timestamp":1}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
}

func TestDefaultControllerProps(t *testing.T) {
	p := DefaultControllerProps()
	if p[KeyAutoAddQuorumTiebreaker] != "True" || p[KeyAutoDiskfulAllowCleanup] != "True" || p[KeyOnNoQuorum] != "io-error" {
		t.Fatalf("defaults %v", p)
	}
	p["x"] = "y"
	if _, ok := DefaultControllerProps()["x"]; ok {
		t.Fatal("defaults are shared")
	}
}

func TestCloneIsDeep(t *testing.T) {
	rd := ResourceDefinition{Props: Props{"a": "1"}, VolumeDefinitions: []VolumeDefinition{{Props: Props{"b": "2"}, Flags: Flags{"X"}}}}
	c := rd.Clone()
	c.Props["a"] = "x"
	c.VolumeDefinitions[0].Props["b"] = "x"
	c.VolumeDefinitions[0].Flags[0] = "Y"
	if rd.Props["a"] != "1" || rd.VolumeDefinitions[0].Props["b"] != "2" || rd.VolumeDefinitions[0].Flags[0] != "X" {
		t.Fatal("ResourceDefinition.Clone is shallow")
	}
	sd := SnapshotDefinition{Snapshots: []Snapshot{{Volumes: []SnapshotVolume{{Props: Props{"a": "1"}}}}}}
	sc := sd.Clone()
	sc.Snapshots[0].Volumes[0].Props["a"] = "x"
	if sd.Snapshots[0].Volumes[0].Props["a"] != "1" {
		t.Fatal("SnapshotDefinition.Clone is shallow")
	}
}

// TestLatestVerifies: per definition, the newest finished verify with a
// number for it wins; an unfinished verify ("unknown"), a running run and
// a snapshot run change nothing.
func TestLatestVerifies(t *testing.T) {
	runs := []JobRun{
		{ID: "a", Kind: JobVerify, State: RunSucceeded, FinishedAt: 100, Details: map[string]string{"oos-kib.pm-1": "4", "oos-kib.pm-2": "0"}},
		{ID: "b", Schedule: "weekly", Kind: JobVerify, State: RunFailed, FinishedAt: 200, Details: map[string]string{"oos-kib.pm-1": "unknown", "oos-kib.pm-2": "8",
			"verified-from.pm-2": "pve1", "oos-peer.pm-2.pve2": "0", "oos-peer.pm-2.pve3": "8", "oos-peer.pm-22.pve9": "4", "resync.pm-2": "done"}},
		{ID: "c", Kind: JobVerify, State: RunRunning, Details: map[string]string{"oos-kib.pm-1": "0"}},
		{ID: "d", Kind: JobSnapshot, State: RunSucceeded, FinishedAt: 300, Details: map[string]string{"oos-kib.pm-1": "0"}},
		{ID: "e", Kind: JobVerify, State: RunSucceeded, FinishedAt: 50, Details: map[string]string{"oos-kib.pm-2": "0"}},
	}
	got := LatestVerifies(runs)
	want := map[string]VerifyResult{
		Key("pm-1"): {Resource: "pm-1", RunID: "a", FinishedAt: 100, OutOfSyncKiB: 4},
		Key("pm-2"): {Resource: "pm-2", RunID: "b", Schedule: "weekly", FinishedAt: 200, OutOfSyncKiB: 8,
			VerifiedFrom: "pve1", Peers: map[string]uint64{"pve2": 0, "pve3": 8}, Resync: ResyncDone},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("LatestVerifies = %+v, want %+v", got, want)
	}
}

func TestJobTargetValidate(t *testing.T) {
	for _, tc := range []struct {
		t   JobTarget
		bad string // "" valid
	}{
		{JobTarget{Kind: TargetAll}, ""},
		{JobTarget{Kind: TargetAll, Name: "x"}, "takes no name"},
		{JobTarget{Kind: TargetResourceDefinitions, Name: "a1,b2"}, ""},
		{JobTarget{Kind: TargetResourceDefinitions, Name: " , "}, "names no resource definition"},
		{JobTarget{Kind: TargetResourceDefinitions, Name: "a1,1bad"}, "1bad"},
		{JobTarget{Kind: TargetSelector, Name: "Aux/backup=nightly"}, ""},
		{JobTarget{Kind: TargetSelector, Name: "Aux/backup"}, "KEY=VALUE"},
		{JobTarget{Kind: TargetSelector, Name: "Aux/backup="}, "KEY=VALUE"},
		{JobTarget{Kind: "vms"}, "unknown"},
	} {
		err := tc.t.Validate()
		if (err == nil) != (tc.bad == "") || (err != nil && !strings.Contains(err.Error(), tc.bad)) {
			t.Errorf("%+v: %v, want %q", tc.t, err, tc.bad)
		}
	}
}
