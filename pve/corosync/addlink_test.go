package corosync

import (
	"strings"
	"testing"
)

func TestAddLinkGolden(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, golden string
		link       int
		addrs      map[string]string
		priority   Priority
	}{
		{
			// PVE 9 cluster without priorities: link 1 gets none
			// either, and link 0 stays primary by its lower number.
			in: "pve9-create-3node.conf", golden: "pve9-create-3node.link1.golden", link: 1,
			addrs: map[string]string{"pve1": "10.98.0.1", "pve2": "10.98.0.2", "pve3": "10.98.0.3"},
		},
		{
			// The blog walk-through's edit, with the config_version
			// bump it forgot.
			in: "seed003-before.conf", golden: "seed003.link1.golden", link: 1,
			addrs: map[string]string{"z2g4a": "169.254.50.10", "z2g4b": "169.254.50.11", "z2g4c": "169.254.50.12"},
		},
		{
			// link 0 has priority 20: link 2 gets 10.
			in: "pve8-prio-2link.conf", golden: "pve8-prio-2link.link2.golden", link: 2,
			addrs: map[string]string{"alpha": "fd00:30::1", "beta": "fd00:30::2", "gamma": "fd00:30::3"},
		},
		{
			// An explicit priority; the admin's options and comments
			// survive.
			in: "admin-edited.conf", golden: "admin-edited.link1.golden", link: 1,
			addrs:    map[string]string{"lab1": "10.2.0.1", "lab2": "10.2.0.2"},
			priority: PriorityOf(40),
		},
	}
	for _, tc := range tests {
		t.Run(tc.golden, func(t *testing.T) {
			t.Parallel()
			c := mustParse(t, readTestdata(t, tc.in))
			next, changed, err := AddLink(c, tc.link, tc.addrs, tc.priority)
			if err != nil {
				t.Fatal(err)
			}
			if !changed {
				t.Fatal("changed = false")
			}
			if next.Totem.ConfigVersion != c.Totem.ConfigVersion+1 {
				t.Errorf("config_version %d -> %d, want +1", c.Totem.ConfigVersion, next.Totem.ConfigVersion)
			}
			out := Render(next)
			checkGolden(t, tc.golden, out)
			if err := Validate(mustParse(t, out)); err != nil {
				t.Errorf("result does not validate: %v", err)
			}

			// Adding the same link again changes nothing.
			again, changed, err := AddLink(mustParse(t, out), tc.link, tc.addrs, tc.priority)
			if err != nil || changed {
				t.Fatalf("second AddLink: changed=%v err=%v, want no change", changed, err)
			}
			if string(Render(again)) != string(out) {
				t.Error("second AddLink changed the file")
			}
		})
	}
}

func TestAddLinkPriority(t *testing.T) {
	t.Parallel()
	addrs := map[string]string{"alpha": "10.30.0.1", "beta": "10.30.0.2", "gamma": "10.30.0.3"}
	tests := []struct {
		name     string
		replace  []string
		priority Priority
		want     int
	}{
		{"half of link 0", nil, BelowLink0(), 10},
		{"link 0 at 1", []string{"knet_link_priority: 20", "knet_link_priority: 1"}, BelowLink0(), 0},
		{"link 0 at 3", []string{"knet_link_priority: 20", "knet_link_priority: 3"}, BelowLink0(), 1},
		{"none asked", nil, NoPriority(), 0},
		{"explicit", nil, PriorityOf(255), 255},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := mustParse(t, fixture(t, "pve8-prio-2link.conf", tc.replace...))
			next, _, err := AddLink(c, 2, addrs, tc.priority)
			if err != nil {
				t.Fatal(err)
			}
			if got := next.Interface(2).KnetLinkPriority; got != tc.want {
				t.Errorf("knet_link_priority = %d, want %d", got, tc.want)
			}
		})
	}
}

// AddLink refuses, naming the culprit and saying what to do, and leaves
// the input untouched.
func TestAddLinkRefuses(t *testing.T) {
	t.Parallel()
	full := map[string]string{"alpha": "10.30.0.1", "beta": "10.30.0.2", "gamma": "10.30.0.3"}
	with := func(k, v string) map[string]string {
		m := map[string]string{}
		for a, b := range full {
			m[a] = b
		}
		if v == "" {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name     string
		replace  []string
		link     int
		addrs    map[string]string
		priority Priority
		want     string
	}{
		{name: "node without address", link: 2, addrs: with("beta", ""), want: "no address for node beta; every node needs an address on link 2"},
		{name: "unknown node", link: 2, addrs: with("delta", "10.30.0.4"), want: "no node named delta in the nodelist (the nodes are alpha, beta, gamma)"},
		{name: "not an IP", link: 2, addrs: with("beta", "beta.example"), want: `address "beta.example" of node beta is not an IP address`},
		{name: "link exists with other addresses", link: 1, addrs: full, want: "link 1 already exists with other addresses (alpha has 10.20.20.1 (want 10.30.0.1)"},
		{
			name: "link exists on some nodes", link: 1,
			replace: []string{"    ring1_addr: 10.20.20.3\n", ""},
			addrs:   map[string]string{"alpha": "10.20.20.1", "beta": "10.20.20.2", "gamma": "10.20.20.3"},
			want:    "gamma has none",
		},
		{name: "address of another link", link: 2, addrs: with("gamma", "10.10.10.1"), want: "address 10.10.10.1 of node gamma is already link 0 of node alpha"},
		{name: "same address twice", link: 2, addrs: with("gamma", "10.30.0.1"), want: "nodes alpha and gamma were given the same address 10.30.0.1"},
		{name: "link out of range", link: 8, addrs: full, want: "link number 8 is out of range"},
		{name: "negative link", link: -1, addrs: full, want: "link number -1 is out of range"},
		{name: "no config_version", link: 2, addrs: full, replace: []string{"  config_version: 7\n", ""}, want: "config_version is missing"},
		{name: "wrong family", link: 2, addrs: with("beta", "fd00::2"), replace: []string{"ip_version: ipv4-6", "ip_version: ipv4"}, want: "node beta: address fd00::2 is not IPv4"},
		{name: "priority out of range", link: 2, addrs: full, priority: PriorityOf(256), want: "knet_link_priority 256 is out of range"},
		{
			name: "existing link, other priority", link: 1,
			addrs:    map[string]string{"alpha": "10.20.20.1", "beta": "10.20.20.2", "gamma": "10.20.20.3"},
			priority: PriorityOf(99), want: "link 1 already exists with knet_link_priority 15, not 99",
		},
		{
			name: "node without name", link: 2, addrs: full,
			replace: []string{"    name: beta\n", ""},
			want:    "node #2 (nodeid 2) has no name",
		},
		{
			name: "existing problem in the file", link: 2, addrs: full,
			replace: []string{"  secauth: on\n", "  secauth: on\n  frobnicate: yes\n"},
			want:    "the result would not be valid, fix /etc/pve/corosync.conf first",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			data := fixture(t, "pve8-prio-2link.conf", tc.replace...)
			c := mustParse(t, data)
			before := string(Render(c))
			next, changed, err := AddLink(c, tc.link, tc.addrs, tc.priority)
			if err == nil {
				t.Fatalf("AddLink succeeded (changed=%v), want an error mentioning %q", changed, tc.want)
			}
			if next != nil || changed {
				t.Errorf("AddLink returned a config (changed=%v) with its error", changed)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v\nwant it to mention %q", err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "adding corosync link") {
				t.Errorf("error %q does not say what was being done", err)
			}
			if string(Render(c)) != before {
				t.Error("AddLink changed its input")
			}
		})
	}
}

// When the addresses are there but the interface section is missing (a
// half-done manual edit), AddLink completes it.
func TestAddLinkCompletesMissingInterface(t *testing.T) {
	t.Parallel()
	c := mustParse(t, fixture(t, "pve8-prio-2link.conf", "  interface {\n    knet_link_priority: 15\n    linknumber: 1\n  }\n", ""))
	next, changed, err := AddLink(c, 1, map[string]string{"alpha": "10.20.20.1", "beta": "10.20.20.2", "gamma": "10.20.20.3"}, BelowLink0())
	if err != nil || !changed {
		t.Fatalf("AddLink: changed=%v err=%v", changed, err)
	}
	if f := next.Interface(1); f == nil || f.KnetLinkPriority != 10 {
		t.Errorf("interface 1 = %+v", f)
	}
}
