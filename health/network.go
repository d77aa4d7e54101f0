package health

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/pvehci/pvehci/storage/model"
)

// NetLink is one network interface as the kernel reports it.
type NetLink = model.NetLink

// RDMAPort is one InfiniBand port.
type RDMAPort = model.RDMAPort

// Network reads this node's network interfaces and RDMA ports (netlink and
// sysfs on a node).
type Network interface {
	Links(ctx context.Context) ([]NetLink, error)
	RDMAPorts(ctx context.Context) ([]RDMAPort, error)
}

// Network check codes.
const (
	BondDegraded     Code = "BOND_DEGRADED"
	IPoIBDown        Code = "IPOIB_DOWN"
	RDMAPortInactive Code = "RDMA_PORT_NOT_ACTIVE"
)

func linkObj(name string) Object { return Object{"link", name} }

// netState is one node's links and ports for a network check, with why
// either could not be read.
type netState struct {
	links              []NetLink
	ports              []RDMAPort
	linksErr, portsErr error
}

// netCheck runs judge on every node's network from the leader's view when
// the satellites report it (each finding named with its node), else on
// this node's own. judge returns its findings and how many objects it
// looked at; what it needs that could not be read makes it unknown.
func netCheck(needPorts bool, what, unknownHow, okMsg string, judge func(ns netState) ([]Finding, int)) func(context.Context, *Inputs) []Finding {
	return func(ctx context.Context, in *Inputs) []Finding {
		if v, ok := in.haveView(ctx); ok && slices.ContainsFunc(v.Nodes, func(n NodeView) bool { return n.Network != nil }) {
			var out []Finding
			count, nodes := 0, 0
			for _, n := range v.Nodes {
				if n.Network == nil {
					continue
				}
				nodes++
				ns := netState{links: n.Network.Links, ports: n.Network.RDMAPorts}
				if n.Network.Error != "" {
					// Which half failed is in the message; judge
					// nothing of a node that could not be read.
					out = append(out, withNode(n.Name, []Finding{{Severity: Unknown,
						Message: fmt.Sprintf("could not read %s: %s", what, n.Network.Error), Hint: unknownHow}})...)
					continue
				}
				fs, c := judge(ns)
				count += c
				out = append(out, withNode(n.Name, fs)...)
			}
			if len(out) == 0 {
				return []Finding{{Severity: OK, Message: fmt.Sprintf(okMsg, count) + fmt.Sprintf(" on %d node(s)", nodes)}}
			}
			return out
		}
		if in.src.Network == nil {
			return nil
		}
		var ns netState
		ns.links, ns.linksErr = in.NetLinks(ctx)
		if ns.linksErr != nil && !needPorts {
			return unknown("the network interfaces (netlink)", "ip -br link")
		}
		ns.ports, ns.portsErr = in.RDMAPorts(ctx)
		if needPorts && ns.portsErr != nil {
			return unknown("the RDMA ports (/sys/class/infiniband)", "ibstat")
		}
		fs, c := judge(ns)
		if len(fs) == 0 {
			return []Finding{{Severity: OK, Message: fmt.Sprintf(okMsg, c)}}
		}
		return fs
	}
}

func networkChecks() []Check {
	return []Check{
		{
			Code:  BondDegraded,
			Title: "bonds and their NICs",
			Run: netCheck(false, "the network interfaces", "ip -br link", "%d bond(s) with every NIC up", func(ns netState) ([]Finding, int) {
				var out []Finding
				bonds := 0
				for _, b := range ns.links {
					if b.Kind != "bond" {
						continue
					}
					bonds++
					var up, down []string
					for _, l := range ns.links {
						if l.Master != b.Name {
							continue
						}
						if l.Up {
							up = append(up, l.Name)
						} else {
							down = append(down, l.Name)
						}
					}
					switch {
					case !b.Up || len(up) == 0:
						out = append(out, Finding{Severity: Critical, Objects: []Object{linkObj(b.Name)},
							Message: fmt.Sprintf("bond %s carries no traffic: it is down or none of its NICs (%s) is up", b.Name, strings.Join(append(up, down...), ", ")),
							Hint:    fmt.Sprintf("check the cables and switch ports; cat /proc/net/bonding/%s; ifreload -a", b.Name)})
					case len(down) > 0:
						out = append(out, Finding{Severity: Warning, Objects: []Object{linkObj(b.Name)},
							Message: fmt.Sprintf("bond %s runs on %s only: %s is down, so one more failure cuts the node off", b.Name, strings.Join(up, ", "), strings.Join(down, ", ")),
							Hint:    fmt.Sprintf("check the cable and switch port of %s; cat /proc/net/bonding/%s", strings.Join(down, ", "), b.Name)})
					}
				}
				return out, bonds
			}),
		},
		{
			Code:  RDMAPortInactive,
			Title: "InfiniBand ports",
			Run: netCheck(true, "the RDMA ports", "ibstat", "%d InfiniBand port(s) ACTIVE", func(ns netState) ([]Finding, int) {
				var out []Finding
				ib := 0
				for _, p := range ns.ports {
					if p.LinkLayer != "InfiniBand" {
						continue
					}
					ib++
					if p.State != "ACTIVE" {
						out = append(out, Finding{Severity: Warning, Objects: []Object{{"port", fmt.Sprintf("%s/%d", p.Device, p.Port)}},
							Message: fmt.Sprintf("InfiniBand port %s/%d is %s, not ACTIVE: no IPoIB, no RDMA on it", p.Device, p.Port, p.State),
							Hint:    "check the cable and that a subnet manager runs (opensm on one node, or on the switch): ibstat; sminfo"})
					}
				}
				return out, ib
			}),
		},
		{
			Code:      IPoIBDown,
			Title:     "IP-over-InfiniBand interfaces",
			DependsOn: []Code{RDMAPortInactive},
			Run: netCheck(false, "the network interfaces", "ip -br link", "%d IPoIB interface(s) up", func(ns netState) ([]Finding, int) {
				var out []Finding
				n := 0
				for _, l := range ns.links {
					if l.LinkLayer != "infiniband" {
						continue
					}
					n++
					if !l.Up && l.Addrs > 0 {
						// Named with its port too, so that an inactive
						// port explains it (dependency skipping).
						objs := []Object{linkObj(l.Name)}
						for _, p := range ns.ports {
							if p.NetDev == l.Name {
								objs = append([]Object{{"port", fmt.Sprintf("%s/%d", p.Device, p.Port)}}, objs...)
							}
						}
						out = append(out, Finding{Severity: Critical, Objects: objs,
							Message: fmt.Sprintf("IPoIB interface %s is down: DRBD and corosync link 1 on the storage network are cut here", l.Name),
							Hint:    fmt.Sprintf("ip link set %s up; ifreload -a; check ibstat", l.Name)})
					}
				}
				return out, n
			}),
		},
	}
}
