package validate_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/pvehci/pvehci/internal/validate"
	"github.com/pvehci/pvehci/internal/validate/validatetest"
)

func TestDRBDAcceptsEveryHost(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	res := fixture(t, "r0.res")

	hosts, err := validate.DRBDHosts(ctx, res)
	validatetest.Check(t, err)
	if want := []string{"pve1", "pve2", "pve3"}; !slices.Equal(hosts, want) {
		t.Fatalf("DRBDHosts = %q, want %q", hosts, want)
	}

	results, err := validate.DRBDAllHosts(ctx, res)
	validatetest.Check(t, err)
	if len(results) != 3 {
		t.Fatalf("DRBDAllHosts returned %d results, want 3", len(results))
	}
	for host, r := range results {
		if r.Host != host {
			t.Errorf("result for %s says host %s", host, r.Host)
		}
		if !strings.HasPrefix(r.Dump, "resource r0 {\n") || strings.Contains(r.Dump, "#") || strings.Contains(r.Dump, "disable-ip-verification") {
			t.Errorf("%s: dump is not normalised:\n%s", host, r.Dump)
		}
		if !strings.Contains(r.Dump, "transport        rdma;") {
			t.Errorf("%s: dump lost the transport:\n%s", host, r.Dump)
		}
	}
}

// TestDRBDUpPlan is the golden-ish check of what drbdadm would run: with an
// explicit connection per pair, each host creates every peer exactly once,
// one path per path block, and the diskless host's minor is diskless.
func TestDRBDUpPlan(t *testing.T) {
	t.Parallel()
	res := fixture(t, "r0.res")
	nodeID := map[string]string{"pve1": "0", "pve2": "1", "pve3": "2"}
	// paths[a][b] is the number of path blocks between a and b.
	paths := map[string]map[string]int{
		"pve1": {"pve2": 2, "pve3": 1},
		"pve2": {"pve1": 2, "pve3": 1},
		"pve3": {"pve1": 1, "pve2": 1},
	}
	for _, host := range []string{"pve1", "pve2", "pve3"} {
		t.Run(host, func(t *testing.T) {
			t.Parallel()
			r, err := validate.DRBD(testContext(t), host, res)
			validatetest.Check(t, err)

			perPeer := func(verb string) map[string]int {
				n := map[string]int{}
				for _, args := range r.Setup(verb) {
					if len(args) < 2 || args[0] != "r0" {
						t.Fatalf("unexpected %s line %q", verb, args)
					}
					n[args[1]]++
				}
				return n
			}
			wantPeers, wantPaths := map[string]int{}, map[string]int{}
			for peer, n := range paths[host] {
				wantPeers[nodeID[peer]] = 1
				wantPaths[nodeID[peer]] = n
			}
			for verb, want := range map[string]map[string]int{"new-peer": wantPeers, "connect": wantPeers, "new-path": wantPaths} {
				if got := perPeer(verb); !mapsEqual(got, want) {
					t.Errorf("%s per peer node-id = %v, want %v\nplan:\n%s", verb, got, want, strings.Join(r.Plan, "\n"))
				}
			}

			res := r.Setup("new-resource")
			if len(res) != 1 || res[0][1] != nodeID[host] {
				t.Errorf("new-resource = %q, want one with node-id %s", res, nodeID[host])
			}
			minors := r.Setup("new-minor")
			if len(minors) != 1 {
				t.Fatalf("new-minor lines = %q, want 1", minors)
			}
			diskless := slices.Contains(minors[0], "--diskless")
			if want := host == "pve3"; diskless != want {
				t.Errorf("new-minor %q: --diskless = %v, want %v", minors[0], diskless, want)
			}
			attaches := len(r.Setup("attach"))
			if want := map[bool]int{true: 0, false: 1}[host == "pve3"]; attaches != want {
				t.Errorf("%d attach lines, want %d", attaches, want)
			}
			if host != "pve3" {
				// Toward the diskless peer there is no bitmap to keep.
				if got := r.Setup("peer-device-options"); len(got) != 1 || !slices.Equal(got[0], []string{"r0", "2", "0", "--bitmap=no"}) {
					t.Errorf("peer-device-options = %q, want [[r0 2 0 --bitmap=no]]", got)
				}
			}
		})
	}
}

func mapsEqual(a, b map[string]int) bool {
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

func TestDRBDRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		old, new string
		want     []string
	}{
		{"missing node-id", "node-id 1;", "", []string{"in resource r0, on pve2 { ... }: 'node-id' keyword missing."}},
		{"duplicate node-id", "node-id 1;", "node-id 0;", []string{"conflicting use of node-id 'r0:0'", "node-id 'r0:0' first used here."}},
		{"protocol D", "protocol C;", "protocol D;", []string{"while parsing value ('D')", "Allowed values are: A | B | C"}},
		{"quorum lots", "quorum majority;", "quorum lots;", []string{"while parsing value ('lots')", "for quorum. Value is not valid."}},
		{"path without second host", "host pve3 address 10.99.0.3:7790;", "", []string{"path needs to have two endpoints"}},
		{"global section", "resource r0 {", "global { usage-count no; }\nresource r0 {", []string{"conflicting use of global section 'global'"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := fixture(t, "r0.res", tt.old, tt.new)
			_, err := validate.DRBD(testContext(t), "pve2", res)
			rej := validatetest.Rejected(t, err, tt.want...)
			if rej.Check != "drbdadm dump" || rej.ExitCode != 10 || rej.Subject != "host pve2" {
				t.Errorf("rejection = %q exit %d subject %q, want drbdadm dump exit 10 host pve2", rej.Check, rej.ExitCode, rej.Subject)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "drbdadm dump (host pve2) rejected r0.res: exit 10: ") ||
				!strings.Contains(msg, "command: __DRBD_NODE__=pve2 ") {
				t.Errorf("error message does not name tool, host, file, exit code and command:\n%s", msg)
			}
			if strings.Contains(rej.Output(), "PRETENDING") || strings.Contains(rej.Output(), "modinfo") {
				t.Errorf("noise not filtered:\n%s", rej.Output())
			}
		})
	}
}

// A host the file does not name is not a member: drbdadm dump passes (it
// ignores the resource) but -d up all must fail.
func TestDRBDRejectsUnknownHost(t *testing.T) {
	t.Parallel()
	_, err := validate.DRBD(testContext(t), "pve9", fixture(t, "r0.res"))
	rej := validatetest.Rejected(t, err, "no normal resources defined for this host (pve9)")
	if rej.Check != "drbdadm -d up" {
		t.Errorf("rejected by %q, want drbdadm -d up", rej.Check)
	}
}

func TestDRBDAllHostsRejects(t *testing.T) {
	t.Parallel()
	// Listing the hosts already parses the file, so a parse error is
	// reported once, by dump-xml, rather than once per host.
	res := fixture(t, "r0.res", "node-id 1;", "")
	results, err := validate.DRBDAllHosts(testContext(t), res)
	rej := validatetest.Rejected(t, err, "'node-id' keyword missing.")
	if rej.Check != "drbdadm dump-xml" || results != nil {
		t.Errorf("rejected by %q with results %v, want drbdadm dump-xml and none", rej.Check, results)
	}
}

// Several files are checked together, as drbdadm sees /etc/drbd.d: a host
// that is not in a resource just does not bring it up.
func TestDRBDSeveralFiles(t *testing.T) {
	t.Parallel()
	results, err := validate.DRBDAllHosts(testContext(t), fixture(t, "r0.res"), fixture(t, "r1.res"))
	validatetest.Check(t, err)
	want := map[string][]string{"pve1": {"r0", "r1"}, "pve2": {"r0", "r1"}, "pve3": {"r0"}}
	for host, resources := range want {
		r := results[host]
		if r == nil {
			t.Fatalf("no result for %s", host)
		}
		var got []string
		for _, args := range r.Setup("new-resource") {
			got = append(got, args[0])
		}
		if !slices.Equal(got, resources) {
			t.Errorf("%s brings up %q, want %q", host, got, resources)
		}
	}
}
