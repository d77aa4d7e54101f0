package validate_test

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/pvehci/pvehci/internal/validate"
	"github.com/pvehci/pvehci/internal/validate/validatetest"
)

func TestCorosyncNodes(t *testing.T) {
	t.Parallel()
	nodes, err := validate.CorosyncNodes(fixture(t, "corosync.conf"))
	if err != nil {
		t.Fatal(err)
	}
	want := []validate.CorosyncNode{
		{Name: "pve1", NodeID: "1", Addrs: []string{"10.99.0.1", "10.98.0.1"}},
		{Name: "pve2", NodeID: "2", Addrs: []string{"10.99.0.2", "10.98.0.2"}},
		{Name: "pve3", NodeID: "3", Addrs: []string{"10.99.0.3", "10.98.0.3"}},
	}
	if !slices.EqualFunc(nodes, want, func(a, b validate.CorosyncNode) bool {
		return a.Name == b.Name && a.NodeID == b.NodeID && slices.Equal(a.Addrs, b.Addrs)
	}) {
		t.Errorf("CorosyncNodes = %+v, want %+v", nodes, want)
	}
}

// The fixture is Proxmox-style: secauth on and no keyfile line. corosync -t
// then opens /etc/corosync/authkey, which the check provides in its own
// mount namespace; the host's /etc/corosync must look the same afterwards.
func TestCorosyncAcceptsEveryNode(t *testing.T) {
	t.Parallel()
	checkNoHostMounts(t)
	before := dirListing(t, "/etc/corosync")
	validatetest.Check(t, validate.CorosyncAllNodes(testContext(t), fixture(t, "corosync.conf")))
	if after := dirListing(t, "/etc/corosync"); !slices.Equal(before, after) {
		t.Errorf("/etc/corosync changed: before %q, after %q", before, after)
	}
}

func dirListing(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		return []string{"error: " + err.Error()}
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestCorosyncRejects(t *testing.T) {
	t.Parallel()
	checkNoHostMounts(t)
	tests := []struct {
		name    string
		replace []string
		as      []string // node addresses; nil: every node of the file
		want    []string
	}{
		{
			name:    "link_mode bogus",
			replace: []string{"link_mode: passive", "link_mode: bogus"},
			want:    []string{`The Knet link mode "bogus" specified is invalid.  It must be active, passive or rr.`},
		},
		{
			// corosync only says why if logging goes to stderr; the
			// check forces that.
			name:    "link_mode bogus with to_stderr off",
			replace: []string{"link_mode: passive", "link_mode: bogus", "to_syslog: yes", "to_syslog: yes\n  to_stderr: no"},
			want:    []string{`The Knet link mode "bogus" specified is invalid.`},
		},
		{
			name:    "duplicate nodeid",
			replace: []string{"nodeid: 2", "nodeid: 1"},
			as:      []string{"10.99.0.1", "10.98.0.1"},
			want:    []string{"Nodeid 1 appears twice in corosync.conf"},
		},
		{
			name:    "node missing ring1_addr",
			replace: []string{"ring1_addr: 10.98.0.3", ""},
			want:    []string{"Not all nodes have the same number of links"},
		},
		{
			name:    "parse error keeps its line number",
			replace: []string{"nodelist {", "nodelist {{"},
			as:      []string{"10.99.0.1", "10.98.0.1"},
			want:    []string{"corosync.conf:8: Extra characters after opening bracket '{'"},
		},
		{
			name: "not a node of the file",
			as:   []string{"10.99.0.9"},
			want: []string{"No valid name found for local host"},
		},
		{
			name:    "explicit keyfile that does not exist",
			replace: []string{"secauth: on", "secauth: on\n  keyfile: /nonexistent/authkey"},
			as:      []string{"10.99.0.1", "10.98.0.1"},
			want:    []string{"Could not open /nonexistent/authkey"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			conf := fixture(t, "corosync.conf", tt.replace...)
			var err error
			if tt.as == nil {
				err = validate.CorosyncAllNodes(testContext(t), conf)
			} else {
				err = validate.Corosync(testContext(t), conf, tt.as...)
			}
			rej := validatetest.Rejected(t, err, tt.want...)
			if rej.Check != "corosync -t" || rej.ExitCode != 8 {
				t.Errorf("rejected by %q with exit %d, want corosync -t exit 8", rej.Check, rej.ExitCode)
			}
			for _, l := range rej.Lines {
				if strings.Contains(l, "pvehci-validate-") {
					t.Errorf("message names the temporary copy instead of %s: %s", conf, l)
				}
			}
		})
	}
}

func TestCorosyncNeedsIPAddresses(t *testing.T) {
	t.Parallel()
	err := validate.Corosync(testContext(t), fixture(t, "corosync.conf"), "pve1")
	validatetest.Environment(t, err)
	if err == nil || !strings.Contains(err.Error(), `"pve1" is not an IP address`) {
		t.Errorf("err = %v, want a complaint about the host name", err)
	}
}
