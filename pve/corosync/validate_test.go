package corosync

import (
	"errors"
	"strings"
	"testing"
)

// Each mistake corosync -t lets through (or reports without saying where)
// is reported with its line, path and a hint what to do.
func TestValidateRejects(t *testing.T) {
	t.Parallel()
	const base = "pve8-prio-2link.conf"
	tests := []struct {
		name    string
		replace []string
		line    int
		path    string
		want    string
	}{
		{
			name:    "unknown key",
			replace: []string{"    knet_link_priority: 15\n", "    knet_link_priorty: 15\n"},
			line:    42, path: "totem.interface[1].knet_link_priorty", want: "unknown key; corosync ignores it",
		},
		{
			name:    "unknown top-level key",
			replace: []string{"  secauth: on\n", "  secauth: on\n  frobnicate: yes\n"},
			line:    48, path: "totem.frobnicate", want: "unknown key",
		},
		{
			name:    "linkN_addr is Proxmox-only",
			replace: []string{"    ring1_addr: 10.20.20.3\n", "    link1_addr: 10.20.20.3\n"},
			line:    26, path: "nodelist.node[gamma].link1_addr", want: "corosync reads ring1_addr",
		},
		{
			name:    "corosync 2 ringnumber",
			replace: []string{"    linknumber: 1\n", "    linknumber: 1\n    ringnumber: 1\n"},
			line:    44, path: "totem.interface[1].ringnumber", want: "corosync 3 reads linknumber",
		},
		{
			name:    "unknown section",
			replace: []string{"quorum {\n", "quorums {\n  x: 1\n}\n\nquorum {\n"},
			line:    30, path: "quorums", want: "unknown section",
		},
		{
			name:    "duplicate address",
			replace: []string{"ring1_addr: 10.20.20.2", "ring1_addr: 10.20.20.1"},
			line:    19, path: "nodelist.node[beta].ring1_addr", want: "address 10.20.20.1 is also link 1 of node alpha",
		},
		{
			name:    "address reused across links",
			replace: []string{"ring1_addr: 10.20.20.2", "ring1_addr: 10.10.10.2"},
			line:    19, path: "nodelist.node[beta].ring1_addr", want: "is also link 0 of node beta",
		},
		{
			name:    "duplicate nodeid",
			replace: []string{"nodeid: 3", "nodeid: 1"},
			line:    21, path: "nodelist.node[gamma]", want: "nodeid 1 is also used by node alpha",
		},
		{
			name:    "duplicate name",
			replace: []string{"name: gamma", "name: beta"},
			line:    21, path: "nodelist.node[beta]", want: "two nodes have this name",
		},
		{
			name:    "node lacks a link",
			replace: []string{"    ring1_addr: 10.20.20.3\n", ""},
			line:    21, path: "nodelist.node[gamma]", want: "no address for link 1, which other nodes have",
		},
		{
			name:    "same count, other links",
			replace: []string{"ring1_addr: 10.20.20.3", "ring2_addr: 10.20.20.3"},
			line:    21, path: "nodelist.node[gamma]", want: "no address for link 1",
		},
		{
			name:    "link beyond 7",
			replace: []string{"    ring1_addr: 10.20.20.3\n", "    ring1_addr: 10.20.20.3\n    ring8_addr: 10.30.30.3\n"},
			line:    27, path: "nodelist.node[gamma].ring8_addr", want: "at most 8 links, numbered 0 to 7",
		},
		{
			name:    "interface linknumber beyond 7",
			replace: []string{"    linknumber: 1\n", "    linknumber: 9\n"},
			line:    41, path: "totem.interface[9]", want: "linknumber \"9\" is out of range; corosync supports at most 8 links",
		},
		{
			name:    "link without interface",
			replace: []string{"  interface {\n    knet_link_priority: 15\n    linknumber: 1\n  }\n", ""},
			line:    34, path: "totem", want: "no interface section for it; add interface { linknumber: 1 }",
		},
		{
			name:    "interface without addresses",
			replace: []string{"  link_mode: passive\n", "  interface {\n    linknumber: 3\n  }\n  link_mode: passive\n"},
			line:    46, path: "totem.interface[3]", want: "no node has an address for link 3",
		},
		{
			name:    "interface without linknumber",
			replace: []string{"    linknumber: 1\n", ""},
			line:    41, path: "totem.interface", want: "interface section without linknumber",
		},
		{
			name:    "two interfaces for one link",
			replace: []string{"    linknumber: 1\n", "    linknumber: 0\n"},
			line:    41, path: "totem.interface[0]", want: "two interface sections for the same link",
		},
		{
			name:    "config_version missing",
			replace: []string{"  config_version: 7\n", ""},
			line:    34, path: "totem.config_version", want: "pmxcfs copies /etc/pve/corosync.conf to the nodes only when it can read one",
		},
		{
			name:    "config_version zero",
			replace: []string{"config_version: 7", "config_version: 0"},
			line:    36, path: "totem.config_version", want: "missing or not a positive number",
		},
		{
			name:    "repeated key",
			replace: []string{"  secauth: on\n", "  secauth: on\n  secauth: off\n"},
			line:    48, path: "totem.secauth", want: "key appears more than once",
		},
		{
			name:    "repeated section",
			replace: []string{"quorum {\n", "quorum {\n  provider: corosync_votequorum\n}\n\nquorum {\n"},
			line:    34, path: "quorum", want: "Proxmox refuses to read such a file",
		},
		{
			name:    "no nodeid",
			replace: []string{"    nodeid: 3\n", ""},
			line:    21, path: "nodelist.node[gamma]", want: "no nodeid",
		},
		{
			name:    "no name with two links",
			replace: []string{"    name: gamma\n", ""},
			line:    21, path: "nodelist.node[#3]", want: "with more than one link corosync needs a name",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := mustParse(t, fixture(t, base, tc.replace...))
			err := Validate(c)
			var inv *InvalidError
			if !errors.As(err, &inv) {
				t.Fatalf("Validate = %v, want an *InvalidError", err)
			}
			for _, p := range inv.Problems {
				if p.Line == tc.line && p.Path == tc.path && strings.Contains(p.Msg, tc.want) {
					return
				}
			}
			t.Errorf("no problem at line %d, %s, mentioning %q; got:\n%v", tc.line, tc.path, tc.want, err)
		})
	}
}

func TestValidateAcceptsExtras(t *testing.T) {
	t.Parallel()
	// Every key corosync knows, in its place, passes.
	in := fixture(t, "pve8-prio-2link.conf",
		"  version: 2\n", "  version: 2\n  token: 3000\n  crypto_cipher: aes256\n  keyfile: /etc/corosync/authkey\n",
		"quorum {\n", "system {\n  state_dir: /var/lib/corosync\n}\n\nquorum {\n  device {\n    heuristics {\n      exec_ping: /bin/ping -c1 10.0.0.1\n      mode: sync\n    }\n    model: net\n  }\n",
	)
	if err := Validate(mustParse(t, in)); err != nil {
		t.Error(err)
	}
}

func TestInvalidErrorMessage(t *testing.T) {
	t.Parallel()
	one := &InvalidError{Problems: []Problem{{Line: 3, Path: "totem.x", Msg: "unknown key"}}}
	if got, want := one.Error(), "corosync.conf is not valid: line 3: totem.x: unknown key"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	two := &InvalidError{Problems: []Problem{{Path: "a", Msg: "m1"}, {Line: 2, Msg: "m2"}}}
	if got, want := two.Error(), "corosync.conf has 2 problems:\n\ta: m1\n\tline 2: m2"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}
