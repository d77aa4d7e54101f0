package drbd

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pvehci/pvehci/ha/state"
	"github.com/pvehci/pvehci/storage/model"
)

func apply(t *testing.T, s *state.State, cmd state.Command) {
	t.Helper()
	if res := s.Apply(cmd); res.Err != nil {
		t.Fatalf("%s: %v", cmd.Type(), res.Err)
	}
}

// witnessCluster is the seed case in the replicated state: pve1 and pve2
// with a management ("default") and a fast network, a witness with only
// the management network, PrefNic=fast on the controller, and a resource
// with two volumes on the storage nodes and a tie-breaker on the witness.
// pve4 holds a replica that is being deleted.
func witnessCluster(t *testing.T) *state.State {
	t.Helper()
	s := state.New()
	nodes := []struct {
		name string
		ifs  []model.NetInterface
	}{
		{"pve1", []model.NetInterface{{Name: "default", Address: "192.168.10.1"}, {Name: "fast", Address: "10.99.0.1"}}},
		{"pve2", []model.NetInterface{{Name: "default", Address: "192.168.10.2"}, {Name: "fast", Address: "10.99.0.2"}}},
		{"pve4", []model.NetInterface{{Name: "default", Address: "192.168.10.4"}, {Name: "fast", Address: "10.99.0.4"}}},
		{"witness", []model.NetInterface{{Name: "default", Address: "192.168.10.3"}}},
	}
	for _, n := range nodes {
		apply(t, s, &state.CreateNode{Name: n.name, NodeType: model.NodeTypeSatellite, NetInterfaces: n.ifs})
		if n.name != "witness" {
			apply(t, s, &state.CreateStoragePool{Node: n.name, Name: model.DefaultStoragePool, ProviderKind: model.ProviderLVMThin,
				Props: model.Props{model.KeyStorDriverLvmVg: "pve", model.KeyStorDriverThinPool: "data"}})
		}
	}
	setProps := func(target state.Target, props model.Props) {
		apply(t, s, &state.SetProps{Target: target, Change: model.PropsChange{Set: props}})
	}
	setProps(state.Target{Kind: model.ObjController}, model.Props{
		model.KeyPrefNic:       "fast",
		model.KeyQuorum:        "majority",
		nsNet + "/bogus":       "1",
		nsDisk + "/al-extents": "1000",
	})
	setProps(state.Target{Kind: model.ObjResourceGroup, ResourceGroup: model.DefaultResourceGroup}, model.Props{
		nsPeerDevice + "/c-max-rate": "720M",
		nsNet + "/shared-secret":     "overridden",
	})
	apply(t, s, &state.CreateResourceDefinition{Name: "vm-100-disk-1", DrbdSecret: testSecret,
		Props: model.Props{
			model.KeyDrbdTransport:        "tcp",
			nsNet + "/verify-alg":         "crc32c",
			nsNet + "/max-buffers":        "8000",
			nsNet + "/rcvbuf-size":        "2M",
			nsResource + "/twopc-timeout": "300",
		},
		VolumeDefinitions: []state.NewVolumeDefinition{{SizeKiB: 1 << 20}, {SizeKiB: 2 << 20}}})
	// Volume 1's definition wants larger activity logs; the node pve2
	// overrides the controller's al-extents for itself.
	setProps(state.Target{Kind: model.ObjVolumeDefinition, ResourceDefinition: "vm-100-disk-1", VolumeNumber: 1},
		model.Props{nsDisk + "/al-extents": "6007"})
	setProps(state.Target{Kind: model.ObjNode, Node: "pve2"}, model.Props{nsDisk + "/al-extents": "3000"})
	for _, r := range []struct {
		node string
		kind state.ResourceKind
	}{{"pve1", state.Diskful}, {"pve2", state.Diskful}, {"witness", state.TieBreaker}, {"pve4", state.Diskful}} {
		apply(t, s, &state.CreateResource{ResourceDefinition: "vm-100-disk-1", Node: r.node, Kind: r.kind})
	}
	apply(t, s, &state.SetFlags{Target: state.Target{Kind: model.ObjResource, ResourceDefinition: "vm-100-disk-1", Node: "pve4"},
		Set: []string{model.RscFlagDelete}})
	return s
}

// prefixes24 says every address of the test cluster is in a /24, as the
// network package would.
func prefixes24(node, netif string) (int, bool) { return 24, true }

func TestBuildFromState(t *testing.T) {
	t.Parallel()
	s := witnessCluster(t)
	cfg, warnings, err := Build(s, "vm-100-disk-1", BuildOptions{Local: "pve1", PrefixLen: prefixes24})
	if err != nil {
		t.Fatal(err)
	}

	if cfg.Name != "vm-100-disk-1" || cfg.SharedSecret != testSecret || cfg.Transport != TransportTCP || cfg.VerifyAlg != "crc32c" ||
		cfg.Quorum != "majority" || cfg.OnNoQuorum != "io-error" || cfg.MaxBuffers != 8000 || cfg.RcvbufSize != 2<<20 {
		t.Errorf("resource-level settings = %+v", cfg)
	}
	if want := []Option{{"twopc-timeout", "300"}}; !slices.Equal(cfg.Options, want) {
		t.Errorf("Options = %v, want %v", cfg.Options, want)
	}
	if want := []Option{{"al-extents", "1000"}, {"c-max-rate", "720M"}}; !slices.Equal(cfg.Disk, want) {
		t.Errorf("Disk = %v, want %v", cfg.Disk, want)
	}
	if len(cfg.Net) != 0 {
		t.Errorf("Net = %v, want none (bogus and shared-secret are not rendered)", cfg.Net)
	}
	for _, w := range []string{"DrbdOptions/Net/bogus=1 (set on C controller)", "DrbdOptions/Net/shared-secret=overridden (set on RG DfltRscGrp)"} {
		if !slices.ContainsFunc(warnings, func(s string) bool { return strings.Contains(s, w) }) {
			t.Errorf("warnings %q lack %q", warnings, w)
		}
	}

	var names []string
	for _, n := range cfg.Nodes {
		names = append(names, n.Name)
	}
	if want := []string{"pve1", "pve2", "witness"}; !slices.Equal(names, want) {
		t.Fatalf("nodes = %v, want %v (pve4 is being deleted)", names, want)
	}
	pve1, pve2, witness := cfg.Nodes[0], cfg.Nodes[1], cfg.Nodes[2]
	if pve1.PrefNic != "fast" || witness.PrefNic != "fast" || !witness.Diskless || pve1.Diskless {
		t.Errorf("PrefNic/diskless wrong: %+v %+v", pve1, witness)
	}
	if pve1.Port < 7000 || pve1.Port > 7999 {
		t.Errorf("port %d outside the default range", pve1.Port)
	}
	if want := []Interface{{"default", "192.168.10.1/24"}, {"fast", "10.99.0.1/24"}}; !slices.Equal(pve1.Interfaces, want) {
		t.Errorf("interfaces = %v, want %v", pve1.Interfaces, want)
	}
	if v := pve1.Volumes[1]; v.Disk != "/dev/pve/vm-100-disk-1_00001" || v.MetaDisk != MetaDiskInt || v.Minor != 1001 {
		t.Errorf("pve1 volume 1 = %+v", v)
	}
	// pve1 volume 1 takes the definition's al-extents; pve2 its node's on
	// volume 0 and the definition's on volume 1 (VD beats N).
	for _, c := range []struct {
		got  []Option
		want []Option
	}{
		{pve1.Volumes[0].DiskOptions, nil},
		{pve1.Volumes[1].DiskOptions, []Option{{"al-extents", "6007"}}},
		{pve2.Volumes[0].DiskOptions, []Option{{"al-extents", "3000"}}},
		{pve2.Volumes[1].DiskOptions, []Option{{"al-extents", "6007"}}},
		{witness.Volumes[0].DiskOptions, nil},
	} {
		if !slices.Equal(c.got, c.want) {
			t.Errorf("disk options = %v, want %v", c.got, c.want)
		}
	}
	if witness.Volumes[0].Disk != "" || witness.Volumes[0].MetaDisk != "" {
		t.Errorf("witness volume = %+v, want diskless", witness.Volumes[0])
	}

	out, err := Render(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "from-state.res")
	checkGolden(t, path, out)
	checkWithDrbdadm(t, path, cfg)
	paths, err := SelectPaths(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		want := "default"
		if p.B != "witness" {
			want = "fast"
		}
		if p.IfA != want || p.IfB != want {
			t.Errorf("%s-%s uses %s-%s, want %s", p.A, p.B, p.IfA, p.IfB, want)
		}
	}
}

// Without prefix lengths the witness pair still falls back to the
// management network, now by the default rule.
func TestBuildWithoutPrefixes(t *testing.T) {
	t.Parallel()
	cfg, _, err := Build(witnessCluster(t), "vm-100-disk-1", BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	paths, err := SelectPaths(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		if p.B == "witness" && (p.Rule != RuleDefault || p.IfA != "default") {
			t.Errorf("witness pair: %+v", p)
		}
	}
	// The definition-level view has no node's overrides.
	if want := []Option{{"al-extents", "1000"}, {"c-max-rate", "720M"}}; !slices.Equal(cfg.Disk, want) {
		t.Errorf("Disk = %v, want %v", cfg.Disk, want)
	}
}

func TestBuildRefuses(t *testing.T) {
	t.Parallel()
	s := witnessCluster(t)
	tests := []struct {
		name, rd, local, want string
		change                func()
	}{
		{name: "unknown definition", rd: "nope", want: "no such resource definition"},
		{name: "local node without the resource", rd: "vm-100-disk-1", local: "pve9", want: "node pve9 holds no resource of it"},
		{name: "bad max-buffers", rd: "vm-100-disk-1", want: "is not a number of 4 KiB pages", change: func() {
			apply(t, s, &state.SetProps{Target: state.Target{Kind: model.ObjResource, ResourceDefinition: "vm-100-disk-1", Node: "pve1"},
				Change: model.PropsChange{Set: model.Props{nsNet + "/max-buffers": "lots"}}})
		}, local: "pve1"},
	}
	for _, tt := range tests {
		if tt.change != nil {
			tt.change()
		}
		_, _, err := Build(s, tt.rd, BuildOptions{Local: tt.local})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.want)
		}
	}
}

// The deleted replica's own node still renders it, with every peer.
func TestBuildLocalBeingDeleted(t *testing.T) {
	t.Parallel()
	cfg, _, err := Build(witnessCluster(t), "vm-100-disk-1", BuildOptions{Local: "pve4"})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Nodes) != 4 {
		t.Errorf("pve4 renders %d nodes, want 4", len(cfg.Nodes))
	}
}
