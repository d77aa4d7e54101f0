package health

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pvehci/pvehci/storage/model"
)

type fakeNetwork struct {
	links []NetLink
	ports []RDMAPort
}

func (f fakeNetwork) Links(context.Context) ([]NetLink, error)      { return f.links, nil }
func (f fakeNetwork) RDMAPorts(context.Context) ([]RDMAPort, error) { return f.ports, nil }

func healthyNetwork() fakeNetwork {
	return fakeNetwork{
		links: []NetLink{
			{Name: "bond0", Kind: "bond", Up: true, LinkLayer: "ether"},
			{Name: "enp65s0f0", Kind: "device", Up: true, Master: "bond0", LinkLayer: "ether"},
			{Name: "enp65s0f1", Kind: "device", Up: true, Master: "bond0", LinkLayer: "ether"},
			{Name: "vmbr0", Kind: "bridge", Up: true, LinkLayer: "ether", Addrs: 1},
			{Name: "ib0", Kind: "ipoib", Up: true, LinkLayer: "infiniband", Addrs: 1},
		},
		ports: []RDMAPort{{Device: "mlx5_0", Port: 1, State: "ACTIVE", LinkLayer: "InfiniBand", NetDev: "ib0"}},
	}
}

func TestNetworkChecks(t *testing.T) {
	for _, tt := range []struct {
		name   string
		break_ func(n *fakeNetwork)
		want   map[Code]Severity
		text   string
	}{
		{"healthy", func(*fakeNetwork) {}, map[Code]Severity{BondDegraded: OK, RDMAPortInactive: OK, IPoIBDown: OK}, "2 bond"},
		{"one NIC down", func(n *fakeNetwork) { n.links[2].Up = false }, map[Code]Severity{BondDegraded: Warning}, "runs on enp65s0f0 only: enp65s0f1 is down"},
		{"both NICs down", func(n *fakeNetwork) { n.links[1].Up, n.links[2].Up = false, false }, map[Code]Severity{BondDegraded: Critical}, "carries no traffic"},
		{"port not active, IPoIB down follows", func(n *fakeNetwork) { n.ports[0].State = "INIT"; n.links[4].Up = false },
			map[Code]Severity{RDMAPortInactive: Warning, IPoIBDown: Skipped}, "is INIT, not ACTIVE"},
		{"IPoIB down alone", func(n *fakeNetwork) { n.links[4].Up = false }, map[Code]Severity{IPoIBDown: Critical}, "IPoIB interface ib0 is down"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n := healthyNetwork()
			tt.break_(&n)
			rep, err := Default().Run(context.Background(), Sources{Network: n}, BondDegraded, RDMAPortInactive, IPoIBDown)
			if err != nil {
				t.Fatal(err)
			}
			got := map[Code]Severity{}
			var text strings.Builder
			for _, it := range rep.Items {
				if it.Severity > got[it.Code] || got[it.Code] == OK {
					got[it.Code] = it.Severity
				}
				text.WriteString(it.Message + "\n")
			}
			for code, sev := range tt.want {
				if got[code] != sev {
					t.Errorf("%s = %s, want %s\n%s", code, got[code], sev, text.String())
				}
			}
			if tt.name != "healthy" && !strings.Contains(text.String(), tt.text) {
				t.Errorf("no finding says %q:\n%s", tt.text, text.String())
			}
		})
	}
}

// TestNetworkChecksJudgeEveryNode: with the leader's view carrying the
// satellites' network reports, the checks judge every node that reports,
// naming it, rather than only the node health runs on.
func TestNetworkChecksJudgeEveryNode(t *testing.T) {
	good, bad := healthyNetwork(), healthyNetwork()
	bad.links[2].Up = false     // n2's bond runs on one NIC
	bad.ports[0].State = "DOWN" // and its IB port is down,
	bad.links[4].Up = false     // which explains its IPoIB down
	local := healthyNetwork()   // this node itself is fine either way
	local.links[1].Up = false   // (and must not be what is judged)
	v := healthyClusterView()
	v.Nodes[0].Network = &model.NodeNetwork{Links: good.links, RDMAPorts: good.ports}
	v.Nodes[1].Network = &model.NodeNetwork{Links: bad.links, RDMAPorts: bad.ports}
	v.Nodes = append(v.Nodes, NodeView{Name: "n3", Online: true, Network: &model.NodeNetwork{Error: "netlink: operation not permitted"}})
	rep, err := Default().Run(context.Background(), Sources{Cluster: viewSource{v: v}, Network: local, Now: func() time.Time { return clusterNow }},
		BondDegraded, RDMAPortInactive, IPoIBDown)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Severity{}
	for _, it := range rep.Items {
		got[string(it.Code)+" "+strings.ReplaceAll(objectsKey(it.Objects), "\x00", ", ")] = it.Severity
	}
	want := map[string]Severity{
		"BOND_DEGRADED node n2, link bond0":           Warning,
		"RDMA_PORT_NOT_ACTIVE node n2, port mlx5_0/1": Warning,
		"IPOIB_DOWN node n2, port mlx5_0/1, link ib0": Skipped,
		"BOND_DEGRADED node n3":                       Unknown,
		"RDMA_PORT_NOT_ACTIVE node n3":                Unknown,
		"IPOIB_DOWN node n3":                          Unknown,
	}
	for k, sev := range want {
		if got[k] != sev {
			t.Errorf("%s: %v, want %v (all: %v)", k, got[k], sev, got)
		}
	}
	for k := range got {
		if strings.Contains(k, "enp65s0f0") || strings.Contains(k, "node n1") {
			t.Errorf("judged this node's own links or a healthy node: %s", k)
		}
	}
}
