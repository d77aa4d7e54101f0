package drbd

import (
	"net/netip"
	"strings"
	"testing"
)

func TestSelectPaths(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		a, b         []Interface
		prefA, prefB string
		ifA, ifB     string
		rule         PathRule
		reason       string // substring of the reason, or of the error
		err          bool
	}{
		{
			name:  "both prefer the fast link",
			a:     []Interface{ifc("default", "192.168.1.1"), ifc("fast", "10.99.0.1")},
			b:     []Interface{ifc("default", "192.168.1.2"), ifc("fast", "10.99.0.2")},
			prefA: "fast", prefB: "fast",
			ifA: "fast", ifB: "fast", rule: RulePreferred, reason: `both nodes have interface "fast", which a and b prefer`,
		},
		{
			name:  "one side's PrefNic counts when both have the interface",
			a:     []Interface{ifc("default", "192.168.1.1"), ifc("fast", "10.99.0.1")},
			b:     []Interface{ifc("default", "192.168.1.2"), ifc("fast", "10.99.0.2")},
			prefA: "fast",
			ifA:   "fast", ifB: "fast", rule: RulePreferred, reason: "which a prefers",
		},
		{
			name:  "PrefNic names are case-insensitive",
			a:     []Interface{ifc("default", "192.168.1.1"), ifc("fast", "10.99.0.1")},
			b:     []Interface{ifc("default", "192.168.1.2"), ifc("FAST", "10.99.0.2")},
			prefB: "Fast",
			ifA:   "fast", ifB: "FAST", rule: RulePreferred,
		},
		{
			name:  "two PrefNics: the first node's wins",
			a:     []Interface{ifc("default", "192.168.1.1"), ifc("fast", "10.99.0.1"), ifc("ib0", "10.98.0.1")},
			b:     []Interface{ifc("default", "192.168.1.2"), ifc("fast", "10.99.0.2"), ifc("ib0", "10.98.0.2")},
			prefA: "ib0", prefB: "fast",
			ifA: "ib0", ifB: "ib0", rule: RulePreferred, reason: "which a prefers",
		},
		{
			name:  "second PrefNic when the first is missing on one side",
			a:     []Interface{ifc("default", "192.168.1.1"), ifc("fast", "10.99.0.1"), ifc("ib0", "10.98.0.1")},
			b:     []Interface{ifc("default", "192.168.1.2"), ifc("fast", "10.99.0.2")},
			prefA: "ib0", prefB: "fast",
			ifA: "fast", ifB: "fast", rule: RulePreferred, reason: "which b prefers",
		},
		{
			name:  "witness without the preferred interface: common subnet",
			a:     []Interface{ifc("default", "192.168.1.1/24"), ifc("fast", "10.99.0.1/24")},
			b:     []Interface{ifc("default", "192.168.1.3/24")},
			prefA: "fast", prefB: "fast",
			ifA: "default", ifB: "default", rule: RuleSubnet,
			reason: `a "default" and b "default" share subnet 192.168.1.0/24; b has no interface "fast", which a and b prefer`,
		},
		{
			name: "subnet across differently named interfaces",
			a:    []Interface{ifc("default", "10.99.0.1/24"), ifc("mgmt", "192.168.1.1/24")},
			b:    []Interface{ifc("default", "172.16.0.3/24"), ifc("lan", "192.168.1.3/24")},
			ifA:  "mgmt", ifB: "lan", rule: RuleSubnet, reason: "share subnet 192.168.1.0/24",
		},
		{
			name: "subnet: the same name wins over a longer prefix",
			a:    []Interface{ifc("default", "10.0.0.1/8"), ifc("mgmt", "192.168.1.1/24")},
			b:    []Interface{ifc("default", "10.0.0.2/8"), ifc("lan", "192.168.1.2/24")},
			ifA:  "default", ifB: "default", rule: RuleSubnet, reason: "share subnet 10.0.0.0/8",
		},
		{
			name: "subnet: then the longest prefix",
			a:    []Interface{ifc("lan1", "10.0.0.1/8"), ifc("lan2", "192.168.1.1/24")},
			b:    []Interface{ifc("net1", "10.0.0.2/8"), ifc("net2", "192.168.1.2/24")},
			ifA:  "lan2", ifB: "net2", rule: RuleSubnet,
		},
		{
			name: "subnet known on one side only",
			a:    []Interface{ifc("eth1", "192.168.1.1/24"), ifc("eth2", "10.0.0.1")},
			b:    []Interface{ifc("eth3", "192.168.1.2")},
			ifA:  "eth1", ifB: "eth3", rule: RuleSubnet,
		},
		{
			name: "prefixes that disagree are no common subnet",
			a:    []Interface{ifc("default", "10.0.0.1/24")},
			b:    []Interface{ifc("default", "10.0.1.2/16")},
			ifA:  "default", ifB: "default", rule: RuleDefault, reason: "default interfaces",
		},
		{
			name:  "no prefixes known: default interfaces",
			a:     []Interface{ifc("default", "192.168.1.1"), ifc("fast", "10.99.0.1")},
			b:     []Interface{ifc("default", "192.168.1.3")},
			prefA: "fast",
			ifA:   "default", ifB: "default", rule: RuleDefault,
			reason: `default interfaces; b has no interface "fast", which a prefers; no interfaces with known prefix lengths share a subnet`,
		},
		{
			name: "no default interface: the first by name",
			a:    []Interface{ifc("zeta", "10.0.0.9"), ifc("eth0", "10.0.0.1")},
			b:    []Interface{ifc("default", "10.0.0.2")},
			ifA:  "eth0", ifB: "default", rule: RuleDefault, reason: `a has no interface "default" and uses its first, "eth0"`,
		},
		{
			name:  "preferred interface of mixed families is skipped",
			a:     []Interface{ifc("default", "192.168.1.1"), ifc("fast", "fd00::1")},
			b:     []Interface{ifc("default", "192.168.1.2"), ifc("fast", "10.99.0.2")},
			prefA: "fast",
			ifA:   "default", ifB: "default", rule: RuleDefault, reason: "is IPv4 on one node and IPv6 on the other",
		},
		{
			name:  "IPv6 preferred",
			a:     []Interface{ifc("default", "192.168.1.1"), ifc("fast", "fd00::1")},
			b:     []Interface{ifc("default", "192.168.1.2"), ifc("fast", "fd00::2")},
			prefA: "fast",
			ifA:   "fast", ifB: "fast", rule: RulePreferred,
		},
		{
			name:  "no usable path",
			a:     []Interface{ifc("default", "fd00::1"), ifc("fast", "fd01::1")},
			b:     []Interface{ifc("default", "192.168.1.2")},
			prefA: "fast",
			err:   true, reason: `no usable path between a (default fd00::1, fast fd01::1) and b (default 192.168.1.2)`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := ResourceConfig{Name: "r0", Nodes: []Node{
				withPref(diskful("b", 1, tt.b, 1000), tt.prefB),
				withPref(diskful("a", 0, tt.a, 1000), tt.prefA),
			}}
			got, err := SelectPaths(cfg)
			if tt.err {
				if err == nil || !strings.Contains(err.Error(), tt.reason) {
					t.Fatalf("err = %v, want one containing %q", err, tt.reason)
				}
				if _, rerr := Render(cfg); rerr == nil {
					t.Error("Render succeeded without a path")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 {
				t.Fatalf("got %d choices, want 1", len(got))
			}
			p := got[0]
			addr := func(ifs []Interface, name string) netip.Addr {
				for _, i := range ifs {
					if i.Name == name {
						a, _ := parseInterfaceAddr(i.Address)
						return a.addr
					}
				}
				t.Fatalf("no interface %s", name)
				return netip.Addr{}
			}
			want := PathChoice{A: "a", B: "b", IfA: tt.ifA, IfB: tt.ifB, AddrA: addr(tt.a, tt.ifA), AddrB: addr(tt.b, tt.ifB), Rule: tt.rule, Reason: p.Reason}
			if p != want {
				t.Errorf("choice = %+v, want %+v", p, want)
			}
			if !strings.Contains(p.Reason, tt.reason) {
				t.Errorf("reason %q does not contain %q", p.Reason, tt.reason)
			}
		})
	}
}

// Two diskless nodes get no connection; each diskless node connects to
// every diskful one.
func TestSelectPathsSkipsDisklessPairs(t *testing.T) {
	t.Parallel()
	one := []Interface{ifc("default", "10.0.0.1")}
	cfg := ResourceConfig{Name: "r0", Nodes: []Node{
		diskful("d1", 0, one, 1000),
		diskless("c1", 1, []Interface{ifc("default", "10.0.0.2")}, 1000),
		diskless("c2", 2, []Interface{ifc("default", "10.0.0.3")}, 1000),
	}}
	got, err := SelectPaths(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var pairs []string
	for _, p := range got {
		pairs = append(pairs, p.A+"-"+p.B)
	}
	if want := "c1-d1 c2-d1"; strings.Join(pairs, " ") != want {
		t.Errorf("pairs = %q, want %q", pairs, want)
	}
}
