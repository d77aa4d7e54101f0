package cluster

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/pvehci/pvehci/internal/hostfs"
	"github.com/pvehci/pvehci/network/ifupdown"
)

func example(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile("testdata/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// edit replaces old, which must occur exactly once, in the example.
func edit(t *testing.T, file string, pairs ...string) string {
	t.Helper()
	for i := 0; i < len(pairs); i += 2 {
		if n := strings.Count(file, pairs[i]); n != 1 {
			t.Fatalf("%q occurs %d times in the example", pairs[i], n)
		}
		file = strings.Replace(file, pairs[i], pairs[i+1], 1)
	}
	return file
}

func TestExample(t *testing.T) {
	c, err := Parse([]byte(example(t)))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.NodeNames(); !reflect.DeepEqual(got, []string{"pve1", "pve2", "pve3"}) {
		t.Errorf("NodeNames = %v", got)
	}
	if c.First() != "pve1" {
		t.Errorf("First = %q", c.First())
	}
	n, err := c.Node("pve2")
	if err != nil {
		t.Fatal(err)
	}
	mgmt := netip.MustParsePrefix("10.0.0.2/24")
	gw := netip.MustParseAddr("10.0.0.254")
	want := Node{
		Name:       "pve2",
		Index:      1,
		Management: mgmt,
		Gateway:    gw,
		Bond: &ifupdown.Bond{Name: "bond0", Slaves: []string{"enp65s0f0", "enp65s0f1"}, Mode: "802.3ad", Miimon: 100,
			XmitHashPolicy: "layer3+4", LACPRate: "fast", MTU: 9000},
		Bridge: ifupdown.Bridge{Name: "vmbr0", Ports: []string{"bond0"}, Address: mgmt, Gateway: gw, VLANAware: true, VIDs: "2-4094"},
		IPoIB: &IPoIB{GUID: "0002c90300a1b2c2",
			Iface: ifupdown.IPoIB{Name: "ib0", Address: netip.MustParsePrefix("10.20.0.2/24")}},
		Disks:          []string{"/dev/nvme0n1", "/dev/nvme1n1"},
		Controller:     true,
		VolumeGroup:    "pvehci",
		ThinPool:       "thinpool",
		PoolPercent:    95,
		ProxmoxStorage: "drbdstorage",
	}
	if !reflect.DeepEqual(n, want) {
		t.Errorf("Node(pve2) =\n%+v\nwant\n%+v", n, want)
		if !reflect.DeepEqual(n.Bond, want.Bond) {
			t.Errorf("bond %+v", *n.Bond)
		}
		if !reflect.DeepEqual(n.IPoIB, want.IPoIB) {
			t.Errorf("ipoib %+v", *n.IPoIB)
		}
	}
	if got := n.StorageAddr(); got != netip.MustParseAddr("10.20.0.2") {
		t.Errorf("StorageAddr = %v", got)
	}

	p3, err := c.Node("pve3")
	if err != nil {
		t.Fatal(err)
	}
	if want := (IPoIB{PCI: "0000:81:00.0", Port: 1, Iface: ifupdown.IPoIB{Name: "ib0", Address: netip.MustParsePrefix("10.20.0.3/24")}}); !reflect.DeepEqual(*p3.IPoIB, want) {
		t.Errorf("pve3 ipoib = %+v, want %+v", *p3.IPoIB, want)
	}
}

// TestDefaults: a minimal file gets the documented defaults.
func TestDefaults(t *testing.T) {
	c, err := Parse([]byte(`cluster: c1
networks: {management: 192.168.1.0/24}
nodes:
  - {name: a1, management: 192.168.1.11, bond: {slaves: [eno1]}}
  - {name: a2, management: 192.168.1.12/24}
  - {name: a3, management: 192.168.1.13/24, controller: true}
schedules:
  - {name: s1, kind: snapshot, cron: "@daily", resource_group: drbdgrp}
`))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c.ResourceGroups, []ResourceGroup{{"drbdgrp", 2}}) {
		t.Errorf("resource groups %+v", c.ResourceGroups)
	}
	if c.DRBD.Transport != "auto" || c.Schedules[0].Keep != 7 || c.Storage != (Storage{"pvehci", "thinpool", 95, "drbdstorage"}) {
		t.Errorf("defaults not filled in: %+v %+v %+v", c.DRBD, c.Schedules, c.Storage)
	}
	nodes, err := c.Resolved()
	if err != nil {
		t.Fatal(err)
	}
	a1 := nodes[0]
	if a1.Management != netip.MustParsePrefix("192.168.1.11/24") {
		t.Errorf("a bare address takes the network's length: %v", a1.Management)
	}
	if want := (&ifupdown.Bond{Name: "bond0", Slaves: []string{"eno1"}, Mode: "802.3ad", Miimon: 100, XmitHashPolicy: "layer3+4", LACPRate: "fast"}); !reflect.DeepEqual(a1.Bond, want) {
		t.Errorf("bond %+v", a1.Bond)
	}
	if a1.Gateway.IsValid() || a1.IPoIB != nil || !a1.Controller {
		t.Errorf("a1 = %+v", a1)
	}
	a2 := nodes[1]
	if a2.Bond != nil || len(a2.Bridge.Ports) != 0 {
		t.Errorf("a node without slaves has no bond: %+v", a2)
	}
	if netw := a2.Network(); netw.Bond != nil || netw.Bridge != nil || len(netw.IPoIB) != 0 {
		t.Errorf("a node without a bond leaves the installer's bridge alone: %+v", netw)
	}
	if a2.StorageAddr() != netip.MustParseAddr("192.168.1.12") {
		t.Errorf("StorageAddr without IPoIB = %v", a2.StorageAddr())
	}
}

// TestOverrides: a node's bond fields win over the top-level ones.
func TestOverrides(t *testing.T) {
	file := edit(t, example(t), `  - name: pve2
    management: 10.0.0.2/24
    bond:
      slaves: [enp65s0f0, enp65s0f1]`, `  - name: pve2
    management: 10.0.0.2/24
    controller: false
    bond:
      name: bond1
      mode: active-backup
      mtu: 1500
      slaves: [eno1, eno2]`,
		`  - name: pve3
    management: 10.0.0.3/24`, `  - name: pve3
    management: 10.0.0.3/24
    controller: false`,
		"guid: 0002:c903:00a1:b2c2", "guid: 0x0002C90300A1B2C2\n      datagram: true\n      mtu: 4092",
		"      name: ib0\n      address: 10.20.0.2/24", "      address: 10.20.0.2/24")
	c, err := Parse([]byte(file))
	if err != nil {
		t.Fatal(err)
	}
	n, err := c.Node("pve2")
	if err != nil {
		t.Fatal(err)
	}
	if want := (&ifupdown.Bond{Name: "bond1", Slaves: []string{"eno1", "eno2"}, Mode: "active-backup", Miimon: 100,
		XmitHashPolicy: "layer3+4", LACPRate: "fast", MTU: 1500}); !reflect.DeepEqual(n.Bond, want) {
		t.Errorf("bond %+v", *n.Bond)
	}
	if n.Bridge.Ports[0] != "bond1" || n.Controller {
		t.Errorf("node %+v", n)
	}
	if want := (ifupdown.IPoIB{Name: "ib0", Address: netip.MustParsePrefix("10.20.0.2/24"), Datagram: true, MTU: 4092}); n.IPoIB.Iface != want || n.IPoIB.GUID != "0002c90300a1b2c2" {
		t.Errorf("ipoib %+v", *n.IPoIB)
	}
}

func TestControllerDefault(t *testing.T) {
	for nodes, want := range map[int]int{1: 1, 2: 2, 3: 3, 4: 3, 5: 5, 6: 5, 9: 5} {
		if got := controllerDefault(nodes); got != want {
			t.Errorf("controllerDefault(%d) = %d, want %d", nodes, got, want)
		}
	}
}

func TestBroken(t *testing.T) {
	ex := example(t)
	tests := []struct {
		name  string
		file  string
		wants []string // each must be in the error
	}{
		{"no cluster name", edit(t, ex, "cluster: hci1 ", "cluster: \"\""), []string{"cluster: missing"}},
		{"long cluster name", edit(t, ex, "cluster: hci1 ", "cluster: a-very-long-cluster-name"), []string{"cluster: \"a-very-long-cluster-name\" is not a valid Proxmox cluster name", "1 to 15"}},
		{"cluster name with dot", edit(t, ex, "cluster: hci1 ", "cluster: hci.1"), []string{"cluster: \"hci.1\""}},
		{"no management network", edit(t, ex, "  management: 10.0.0.0/24 ", "  management: \"\""), []string{"networks.management: missing"}},
		{"management network host bits", edit(t, ex, "  management: 10.0.0.0/24 ", "  management: 10.0.0.7/24"), []string{"networks.management: 10.0.0.7/24 has host bits set", "10.0.0.0/24"}},
		{"storage network not CIDR", edit(t, ex, "storage: 10.20.0.0/24 ", "storage: 10.20.0.0 "), []string{"networks.storage: \"10.20.0.0\" is not a network in CIDR notation"}},
		{"storage network missing with ipoib", edit(t, ex, "  storage: 10.20.0.0/24        # IPoIB; DRBD replication; corosync link 1\n", ""), []string{"networks.storage: missing, but nodes pve1, pve2, pve3 have ipoib"}},
		{"networks overlap", edit(t, ex, "storage: 10.20.0.0/24 ", "storage: 10.0.0.0/16"), []string{"networks.storage: 10.0.0.0/16 overlaps networks.management"}},
		{"gateway outside", edit(t, ex, "gateway: 10.0.0.254", "gateway: 10.1.0.254"), []string{"gateway: 10.1.0.254 is not inside networks.management 10.0.0.0/24"}},
		{"gateway broadcast", edit(t, ex, "gateway: 10.0.0.254", "gateway: 10.0.0.255"), []string{"gateway: 10.0.0.255 is the broadcast address"}},
		{"gateway is a node", edit(t, ex, "gateway: 10.0.0.254", "gateway: 10.0.0.3"), []string{"nodes[2] (pve3): management: 10.0.0.3 is the gateway"}},
		{"bond slaves at the top", edit(t, ex, "  name: bond0 ", "  slaves: [eno1]\n  name: bond0 "), []string{"bond.slaves: slaves are per node"}},
		{"bond name", edit(t, ex, "  name: bond0 ", "  name: team0 "), []string{"bond.name: name \"team0\" is not bondN", "bond0, bond1"}},
		{"bond mode", edit(t, ex, "mode: 802.3ad", "mode: lacp"), []string{"bond.mode: bond-mode \"lacp\" is not one of", "active-backup"}},
		{"hash policy", edit(t, ex, "xmit_hash_policy: layer3+4", "xmit_hash_policy: layer4"), []string{"bond.xmit_hash_policy: bond-xmit-hash-policy \"layer4\" is not one of", "encap3+4"}},
		{"lacp rate", edit(t, ex, "lacp_rate: fast", "lacp_rate: quick"), []string{"bond.lacp_rate: bond-lacp-rate \"quick\" is not fast or slow"}},
		{"negative miimon", edit(t, ex, "miimon: 100", "miimon: -1"), []string{"bond.miimon: bond-miimon -1 is negative"}},
		{"bond mtu", edit(t, ex, "mtu: 9000 ", "mtu: 70000 "), []string{"bond.mtu: mtu 70000 is out of range"}},
		{"node bond mode", edit(t, ex, "      slaves: [enp65s0f0, enp65s0f1]\n    ipoib:\n      guid: 0002:c903:00a1:b2c2", "      mode: fast\n      slaves: [enp65s0f0, enp65s0f1]\n    ipoib:\n      guid: 0002:c903:00a1:b2c2"),
			[]string{"nodes[1] (pve2): bond.mode: bond-mode \"fast\""}},
		{"slave listed twice", edit(t, ex, "      slaves: [enp65s0f0, enp65s0f1]\n    ipoib:\n      guid: 0002:c903:00a1:b2c2", "      slaves: [enp65s0f0, enp65s0f0]\n    ipoib:\n      guid: 0002:c903:00a1:b2c2"),
			[]string{"nodes[1] (pve2): bond.slaves: slave enp65s0f0 is listed twice"}},
		{"slave not a NIC name", edit(t, ex, "      slaves: [enp65s0f0, enp65s0f1]\n    ipoib:\n      guid: 0002:c903:00a1:b2c1", "      slaves: [lan0, enp65s0f1]\n    ipoib:\n      guid: 0002:c903:00a1:b2c1"),
			[]string{"nodes[0] (pve1): bond.slaves: slave \"lan0\" does not look like a NIC to Proxmox", "systemd .link file"}},
		{"bond without slaves", edit(t, ex, "      slaves: [enp65s0f0, enp65s0f1]\n    ipoib:\n      pci", "      mtu: 1500\n    ipoib:\n      pci"),
			[]string{"nodes[2] (pve3): bond.slaves: the node's bond has no slaves"}},
		{"slave is the ipoib name", edit(t, ex, "      slaves: [enp65s0f0, enp65s0f1]\n    ipoib:\n      guid: 0002:c903:00a1:b2c1 ", "      slaves: [enp65s0f0, ib0]\n    ipoib:\n      guid: 0002:c903:00a1:b2c1 "),
			[]string{"nodes[0] (pve1): ipoib.name: interface name ib0 is used twice on this node (bond.slaves and ipoib.name)"}},
		{"bridge name", edit(t, ex, "  name: vmbr0", "  name: vmbr-lan"), []string{"bridge.name: name \"vmbr-lan\" is not valid for a Proxmox bridge"}},
		{"bridge vids", edit(t, ex, "vids: 2-4094", "vids: 2-5000"), []string{"bridge.vids: bridge-vids \"2-5000\""}},
		{"volume group", edit(t, ex, "volume_group: pvehci", "volume_group: pve/hci"), []string{"storage.volume_group: invalid storage pool name \"pve/hci\""}},
		{"thin pool", edit(t, ex, "thin_pool: thinpool ", "thin_pool: 1pool "), []string{"storage.thin_pool: invalid storage pool name \"1pool\": it begins with '1'"}},
		{"pool percent", edit(t, ex, "pool_percent: 95", "pool_percent: 150"), []string{"storage.pool_percent: 150 is not a percentage", "1 to 100"}},
		{"proxmox storage", edit(t, ex, "proxmox_storage: drbdstorage", "proxmox_storage: DRBD"), []string{"storage.proxmox_storage: \"DRBD\" is not a Proxmox storage ID"}},
		{"transport", edit(t, ex, "transport: auto", "transport: ib"), []string{"drbd.transport: \"ib\" is not auto, tcp or rdma"}},
		{"rdma without ipoib", edit(t, ex, "transport: auto", "transport: rdma",
			"    ipoib:\n      pci: \"0000:81:00.0\"            # the HCA as lspci -D shows it ...\n      port: 1                        # ... and its port, counted from 1\n      name: ib0\n      address: 10.20.0.3/24\n", ""),
			[]string{"drbd.transport: rdma needs an InfiniBand port on every node, but pve3 has no ipoib"}},
		{"resource group name", edit(t, ex, "  - name: drbdgrp", "  - name: drbd grp"), []string{"resource_groups[0].name: invalid resource group name \"drbd grp\"", "schedules[0] (nightly): resource_group: drbdgrp is not declared in resource_groups"}},
		{"resource group twice", edit(t, ex, "    place_count: 2 ", "    place_count: 1\n  - name: DRBDGRP\n    place_count: 2 "), []string{"resource_groups[1].name: resource group DRBDGRP is declared twice"}},
		{"place count", edit(t, ex, "place_count: 2", "place_count: 4"), []string{"resource_groups[0].place_count: 4 replicas on 3 nodes", "at most 3"}},
		{"place count zero", edit(t, ex, "place_count: 2", "place_count: 0"), []string{"resource_groups[0].place_count: 0 replicas"}},
		{"schedule twice", edit(t, ex, "name: weekly-verify", "name: nightly"), []string{"schedules[1] (nightly): name: schedule nightly is declared twice"}},
		{"schedule kind", edit(t, ex, "kind: verify", "kind: scrub"), []string{"schedules[1] (weekly-verify): kind: \"scrub\" is not snapshot or verify"}},
		{"schedule cron", edit(t, ex, `cron: "0 2 * * *"`, `cron: "every night"`), []string{"schedules[0] (nightly): cron: ", "five fields"}},
		{"schedule keep negative", edit(t, ex, "keep: 7", "keep: -1"), []string{"schedules[0] (nightly): keep: -1"}},
		{"verify with keep", edit(t, ex, "    resource_group: drbdgrp\nnodes:", "    resource_group: drbdgrp\n    keep: 3\nnodes:"), []string{"schedules[1] (weekly-verify): keep: a verify schedule makes no snapshots"}},
		{"schedule unknown group", edit(t, ex, "    resource_group: drbdgrp\n    keep: 7", "    resource_group: other\n    keep: 7"), []string{"schedules[0] (nightly): resource_group: other is not declared in resource_groups (drbdgrp)"}},
		{"no nodes", ex[:strings.Index(ex, "nodes:")], []string{"nodes: the file has no nodes"}},
		{"node name twice", edit(t, ex, "  - name: pve3", "  - name: pve1"), []string{"nodes[2] (pve1): name: pve1 is also nodes[0]"}},
		{"node name uppercase", edit(t, ex, "  - name: pve3", "  - name: PVE3"), []string{"nodes[2] (PVE3): name: \"PVE3\" is not a host name", "hostname -s"}},
		{"node name fqdn", edit(t, ex, "  - name: pve3", "  - name: pve3.example.com"), []string{"nodes[2] (pve3.example.com): name:"}},
		{"node without name", edit(t, ex, "  - name: pve3\n", "  - name: \"\"\n"), []string{"nodes[2]: name: missing"}},
		{"management outside", edit(t, ex, "management: 10.0.0.2/24", "management: 10.1.0.2/24"), []string{"nodes[1] (pve2): management: 10.1.0.2/24 is not inside networks.management 10.0.0.0/24"}},
		{"management prefix", edit(t, ex, "management: 10.0.0.2/24", "management: 10.0.0.2/16"), []string{"nodes[1] (pve2): management: 10.0.0.2/16 has prefix length /16", "write /24"}},
		{"management network address", edit(t, ex, "management: 10.0.0.2/24", "management: 10.0.0.0/24"), []string{"nodes[1] (pve2): management: 10.0.0.0 is the network address"}},
		{"management twice", edit(t, ex, "management: 10.0.0.2/24", "management: 10.0.0.1/24"), []string{"nodes[1] (pve2): management: 10.0.0.1 is also the address of nodes[0] (pve1)"}},
		{"management missing", edit(t, ex, "    management: 10.0.0.2/24\n", ""), []string{"nodes[1] (pve2): management: missing", "10.0.0.1/24"}},
		{"management garbage", edit(t, ex, "management: 10.0.0.2/24", "management: pve2.lan"), []string{"nodes[1] (pve2): management: \"pve2.lan\" is not an address"}},
		{"ipoib outside", edit(t, ex, "address: 10.20.0.2/24", "address: 10.30.0.2/24"), []string{"nodes[1] (pve2): ipoib.address: 10.30.0.2/24 is not inside networks.storage 10.20.0.0/24"}},
		{"ipoib twice", edit(t, ex, "address: 10.20.0.2/24", "address: 10.20.0.1/24"), []string{"nodes[1] (pve2): ipoib.address: 10.20.0.1 is also the address of nodes[0] (pve1)"}},
		{"ipoib guid and pci", edit(t, ex, "      guid: 0002:c903:00a1:b2c2 ", "      pci: \"81:00.0\"\n      guid: 0002:c903:00a1:b2c2 "), []string{"nodes[1] (pve2): ipoib: both guid and pci are set"}},
		{"ipoib neither", edit(t, ex, "      guid: 0002:c903:00a1:b2c2      # ibstat shows each port's GUID\n", ""), []string{"nodes[1] (pve2): ipoib: neither guid nor pci is set"}},
		{"guid malformed", edit(t, ex, "guid: 0002:c903:00a1:b2c2", "guid: 0002:c903:00a1:b2c"), []string{"nodes[1] (pve2): ipoib.guid: \"0002:c903:00a1:b2c\" is not a port GUID"}},
		{"guid twice", edit(t, ex, "guid: 0002:c903:00a1:b2c2", "guid: 0x0002c90300a1b2c1"), []string{"nodes[1] (pve2): ipoib.guid: 0x0002c90300a1b2c1 is also the GUID of nodes[0] (pve1)"}},
		{"guid with port", edit(t, ex, "      guid: 0002:c903:00a1:b2c2 ", "      port: 2\n      guid: 0002:c903:00a1:b2c2 "), []string{"nodes[1] (pve2): ipoib.port: port goes with pci"}},
		{"pci malformed", edit(t, ex, `      pci: "0000:81:00.0" `, `      pci: "81:00" `), []string{"nodes[2] (pve3): ipoib.pci: \"81:00\" is not a PCI address"}},
		{"pci port", edit(t, ex, "      port: 1 ", "      port: -2 "), []string{"nodes[2] (pve3): ipoib.port: port -2 is not an HCA port number"}},
		{"ipoib name", edit(t, ex, "      name: ib0\n      address: 10.20.0.3/24", "      name: ib0.8001\n      address: 10.20.0.3/24"), []string{"nodes[2] (pve3): ipoib.name: name \"ib0.8001\" must start with \"ib\""}},
		{"ipoib mtu", edit(t, ex, "      name: ib0\n      address: 10.20.0.3/24", "      name: ib0\n      mtu: 65521\n      address: 10.20.0.3/24"), []string{"nodes[2] (pve3): ipoib.mtu: mtu 65521 is out of range 576-65520 in connected mode"}},
		{"ipoib address missing", edit(t, ex, "      address: 10.20.0.3/24\n", ""), []string{"nodes[2] (pve3): ipoib.address: missing", "10.20.0.1/24"}},
		{"disk not /dev", edit(t, ex, "    disks: [/dev/nvme0n1, /dev/nvme1n1]  #", "    disks: [nvme0n1, /dev/nvme1n1]  #"), []string{"nodes[0] (pve1): disks[0]: \"nvme0n1\" is not a device path"}},
		{"disk unclean", edit(t, ex, "    disks: [/dev/nvme0n1, /dev/nvme1n1]  #", "    disks: [/dev/../nvme0n1]  #"), []string{"nodes[0] (pve1): disks[0]: \"/dev/../nvme0n1\" is not a device path"}},
		{"disk twice", edit(t, ex, "    disks: [/dev/nvme0n1, /dev/nvme1n1]  #", "    disks: [/dev/nvme0n1, /dev/nvme0n1]  #"), []string{"nodes[0] (pve1): disks[1]: /dev/nvme0n1 is listed twice"}},
		{"even controllers", edit(t, ex, "  - name: pve3\n", "  - name: pve3\n    controller: false\n"), []string{"nodes: 2 controller nodes (pve1, pve2)", "raft", "1, 3 or 5"}},
		{"no controllers", edit(t, ex, "  - name: pve1 ", "  - name: pve1\n    controller: false\n   ", "  - name: pve2\n", "  - name: pve2\n    controller: false\n", "  - name: pve3\n", "  - name: pve3\n    controller: false\n"),
			[]string{"nodes: no node is a controller", "raft"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.file))
			if err == nil {
				t.Fatal("Parse succeeded")
			}
			for _, w := range tt.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%v", w, err)
				}
			}
			t.Log(err)
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Errorf("error has no *FieldError: %v", err)
			}
		})
	}
}

// TestAllProblems: one run reports every problem, not just the first.
func TestAllProblems(t *testing.T) {
	file := edit(t, example(t),
		"cluster: hci1 ", "cluster: \"\"",
		"mode: 802.3ad", "mode: lacp",
		"pool_percent: 95", "pool_percent: 0.5",
		"management: 10.0.0.2/24", "management: 10.1.0.2/24",
		"address: 10.20.0.2/24", "address: 10.30.0.2/24",
		"guid: 0002:c903:00a1:b2c1", "guid: nope",
		"kind: verify", "kind: scrub",
	)
	_, err := Parse([]byte(file))
	if err == nil {
		t.Fatal("Parse succeeded")
	}
	// pool_percent: 0.5 is a decoding error, which comes alone.
	if !strings.Contains(err.Error(), "line 21: pool_percent: 0.5 is not a whole number") {
		t.Errorf("decoding error does not name the value: %v", err)
	}
	file = strings.Replace(file, "pool_percent: 0.5", "pool_percent: 101", 1)
	_, err = Parse([]byte(file))
	if err == nil {
		t.Fatal("Parse succeeded")
	}
	wants := []string{
		"cluster: missing",
		"bond.mode: bond-mode \"lacp\"",
		"storage.pool_percent: 101",
		"nodes[1] (pve2): management: 10.1.0.2/24 is not inside networks.management",
		"nodes[1] (pve2): ipoib.address: 10.30.0.2/24 is not inside networks.storage 10.20.0.0/24",
		"nodes[0] (pve1): ipoib.guid: \"nope\"",
		"schedules[1] (weekly-verify): kind",
	}
	for _, w := range wants {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not contain %q", w)
		}
	}
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) || len(joined.Unwrap()) != len(wants) {
		t.Errorf("want %d problems, got:\n%v", len(wants), err)
	}
}

func TestDecodeErrors(t *testing.T) {
	ex := example(t)
	tests := []struct {
		name  string
		file  string
		wants []string
	}{
		{"unknown key", edit(t, ex, "  vids: 2-4094 ", "  vlans: 10\n  vids: 2-4094 "), []string{"line 17", `unknown key "vlans" in bridge`}},
		{"unknown node key", edit(t, ex, "    disks: [/dev/nvme0n1, /dev/nvme1n1]  #", "    disk: [/dev/nvme0n1, /dev/nvme1n1]  #"), []string{"line 47", `unknown key "disk" in a node`}},
		{"unknown top key", "clutser: x\n" + ex, []string{"line 1", `unknown key "clutser" in the top level`}},
		{"two documents", ex + "---\ncluster: other\n", []string{"more than one YAML document"}},
		{"empty", "", []string{"empty"}},
		{"only comments", "# nothing yet\n", []string{"empty"}},
		{"not a mapping", "- a\n- b\n", []string{"parsing the cluster file", "line 1"}},
		{"wrong type", edit(t, ex, "miimon: 100", "miimon: often"), []string{"line 10", "often"}},
		{"duplicate key", edit(t, ex, "  vids: 2-4094 ", "  name: vmbr1\n  vids: 2-4094 "), []string{"line 17", `mapping key "name" already defined at line 15`}},
		{"syntax", "cluster: [\n", []string{"parsing the cluster file"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.file))
			if err == nil {
				t.Fatal("Parse succeeded")
			}
			for _, w := range tt.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestNodeNotInFile(t *testing.T) {
	c, err := Parse([]byte(example(t)))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Node("pve9")
	want := "this host is pve9, but cluster.yaml has no node pve9 (it has pve1, pve2, pve3); add it, or pass --node NAME"
	if err == nil || err.Error() != want {
		t.Errorf("Node(pve9) error = %v, want %q", err, want)
	}
}

// TestRender: every node's network renders as ifupdown writes it.
func TestRender(t *testing.T) {
	c, err := Parse([]byte(example(t)))
	if err != nil {
		t.Fatal(err)
	}
	nodes, err := c.Resolved()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		netw := n.Network()
		stanzas, err := netw.MainStanzas()
		if err != nil {
			t.Fatalf("%s: %v", n.Name, err)
		}
		out := string(ifupdown.Render(stanzas...))
		for _, w := range []string{"iface bond0 inet manual", "bond-mode 802.3ad", "mtu 9000", "iface vmbr0 inet static", "address " + n.Management.String(), "gateway 10.0.0.254", "bridge-ports bond0"} {
			if !strings.Contains(out, w) {
				t.Errorf("%s: rendered network lacks %q:\n%s", n.Name, w, out)
			}
		}
		inc, err := netw.IncludeFile()
		if err != nil {
			t.Fatalf("%s: %v", n.Name, err)
		}
		if !strings.Contains(string(inc), "iface ib0 inet static") || !strings.Contains(string(inc), "address "+n.IPoIB.Iface.Address.String()) {
			t.Errorf("%s: include file:\n%s", n.Name, inc)
		}
	}
	// Network hands out copies: a caller changing them does not change
	// the node.
	netw := nodes[0].Network()
	netw.Bond.Slaves[0] = "eth9"
	netw.Bridge.Ports[0] = "bond9"
	if nodes[0].Bond.Slaves[0] != "enp65s0f0" || nodes[0].Bridge.Ports[0] != "bond0" {
		t.Error("Network shares slices with the node")
	}
}

func TestLoad(t *testing.T) {
	root := t.TempDir()
	fsys := hostfs.Root(root)
	_, err := Load(fsys, DefaultPath)
	if err == nil || !strings.Contains(err.Error(), "reading /etc/pvehci/cluster.yaml: ") ||
		!strings.HasSuffix(err.Error(), "; write the cluster file first (docs/bootstrap-cluster-file.md has a full example)") {
		t.Errorf("Load of a missing file: %v", err)
	}
	if err := os.MkdirAll(filepath.Join(root, "etc/pvehci"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, DefaultPath), []byte(example(t)), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(fsys, DefaultPath)
	if err != nil {
		t.Fatal(err)
	}
	if c.Cluster != "hci1" {
		t.Errorf("cluster %q", c.Cluster)
	}
	if err := os.WriteFile(filepath.Join(root, DefaultPath), []byte("cluster: hci1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(fsys, DefaultPath); err == nil || !strings.HasPrefix(err.Error(), DefaultPath+": ") {
		t.Errorf("Load of a broken file: %v", err)
	}
}

// TestValidateUnparsed: Validate and Node work on a Cluster built in code,
// without Parse's defaults, and do not change it.
func TestValidateUnparsed(t *testing.T) {
	c := &Cluster{
		Cluster:  "lab",
		Networks: Networks{Management: "10.9.0.0/24"},
		Nodes:    []NodeSpec{{Name: "n1", Management: "10.9.0.1/24", Bond: &Bond{Slaves: []string{"eth0"}}}},
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	n, err := c.Node("n1")
	if err != nil {
		t.Fatal(err)
	}
	if n.Bond.Mode != "802.3ad" || n.Bridge.Name != "vmbr0" || !n.Bridge.VLANAware || n.ThinPool != "thinpool" || !n.Controller {
		t.Errorf("defaults not applied: %+v", n)
	}
	if c.Bond.Mode != "" || c.ResourceGroups != nil || c.Bridge.VLANAware != nil {
		t.Errorf("Validate or Node changed the Cluster: %+v", c)
	}
}

func TestNormalize(t *testing.T) {
	for in, want := range map[string]string{
		"0002:c903:00a1:b2c1": "0002c90300a1b2c1",
		"0x0002C90300A1B2C1":  "0002c90300a1b2c1",
		"0002c90300a1b2c1":    "0002c90300a1b2c1",
		"0002:c903:00a1b2c1":  "",
		"02:c903:00a1:b2c1":   "",
		"0x0002:c903:00a1:b2": "",
		"0002c90300a1b2cg":    "",
		"":                    "",
	} {
		got, ok := normalizeGUID(in)
		if got != want || ok != (want != "") {
			t.Errorf("normalizeGUID(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for in, want := range map[string]string{
		"0000:81:00.0": "0000:81:00.0",
		"81:00.1":      "0000:81:00.1",
		"0000:AF:00.0": "0000:af:00.0",
		"81:00.8":      "",
		"0000:81:00":   "",
		"81.00.0":      "",
	} {
		got, ok := normalizePCI(in)
		if got != want || ok != (want != "") {
			t.Errorf("normalizePCI(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}

// TestDocsHaveExample: the documentation shows the tested example,
// unchanged.
func TestDocsHaveExample(t *testing.T) {
	doc, err := os.ReadFile("../../docs/bootstrap-cluster-file.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), "```yaml\n"+example(t)+"```\n") {
		t.Error("docs/bootstrap-cluster-file.md does not contain testdata/example.yaml verbatim in a yaml block")
	}
	// Every other YAML block of the page is a file too, and must pass.
	blocks := strings.Split(string(doc), "```yaml\n")[1:]
	if len(blocks) < 2 {
		t.Fatalf("want the example and the smallest file, found %d yaml blocks", len(blocks))
	}
	for i, b := range blocks {
		b, _, _ = strings.Cut(b, "```")
		if _, err := Parse([]byte(b)); err != nil {
			t.Errorf("yaml block %d of the docs does not parse: %v", i, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(example(f)))
	f.Add([]byte("cluster: c\nnetworks: {management: 10.0.0.0/8}\nnodes: [{name: a, management: 10.0.0.1}]\n"))
	f.Add([]byte("nodes: [{ipoib: {pci: '81:00.0', address: '::1'}}]\nnetworks: {storage: '::/0', management: '::/64'}\ngateway: '::'\n"))
	f.Add([]byte("---\n---\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			return
		}
		// A file that passes must resolve and render.
		nodes, err := c.Resolved()
		if err != nil {
			t.Fatalf("valid file does not resolve: %v", err)
		}
		for _, n := range nodes {
			if _, err := n.Network().MainStanzas(); err != nil {
				t.Fatalf("valid file does not render for %s: %v", n.Name, err)
			}
			if _, err := n.Network().IncludeFile(); err != nil {
				t.Fatalf("valid file's IPoIB does not render for %s: %v", n.Name, err)
			}
		}
	})
}
