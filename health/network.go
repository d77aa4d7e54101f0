package health

import (
	"context"
	"fmt"
	"strings"
)

// NetLink is one network interface as the kernel reports it.
type NetLink struct {
	Name      string
	Kind      string // bond, bridge, ipoib, device, …
	Up        bool
	Master    string
	LinkLayer string // ether, infiniband, loopback
	Addrs     int    // number of addresses
}

// RDMAPort is one InfiniBand port.
type RDMAPort struct {
	Device    string
	Port      int
	State     string // ACTIVE, INIT, DOWN, …
	LinkLayer string // InfiniBand or Ethernet
	NetDev    string
}

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

// linksCheck runs judge on this node's links; without a network source (a
// test of other checks) it judges nothing.
func linksCheck(judge func(ctx context.Context, in *Inputs, links []NetLink) []Finding) func(context.Context, *Inputs) []Finding {
	return func(ctx context.Context, in *Inputs) []Finding {
		if in.src.Network == nil {
			return nil
		}
		links, err := in.NetLinks(ctx)
		if err != nil {
			return unknown("the network interfaces (netlink)", "ip -br link")
		}
		return judge(ctx, in, links)
	}
}

func networkChecks() []Check {
	return []Check{
		{
			Code:  BondDegraded,
			Title: "bonds and their NICs",
			Run: linksCheck(func(ctx context.Context, in *Inputs, links []NetLink) []Finding {
				var out []Finding
				bonds := 0
				for _, b := range links {
					if b.Kind != "bond" {
						continue
					}
					bonds++
					var up, down []string
					for _, l := range links {
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
				if len(out) == 0 {
					return []Finding{{Severity: OK, Message: fmt.Sprintf("%d bond(s) with every NIC up", bonds)}}
				}
				return out
			}),
		},
		{
			Code:  RDMAPortInactive,
			Title: "InfiniBand ports",
			Run: func(ctx context.Context, in *Inputs) []Finding {
				if in.src.Network == nil {
					return nil
				}
				ports, err := in.RDMAPorts(ctx)
				if err != nil {
					return unknown("the RDMA ports (/sys/class/infiniband)", "ibstat")
				}
				var out []Finding
				ib := 0
				for _, p := range ports {
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
				if len(out) == 0 {
					return []Finding{{Severity: OK, Message: fmt.Sprintf("%d InfiniBand port(s) ACTIVE", ib)}}
				}
				return out
			},
		},
		{
			Code:      IPoIBDown,
			Title:     "IP-over-InfiniBand interfaces",
			DependsOn: []Code{RDMAPortInactive},
			Run: linksCheck(func(ctx context.Context, in *Inputs, links []NetLink) []Finding {
				var out []Finding
				n := 0
				for _, l := range links {
					if l.LinkLayer != "infiniband" {
						continue
					}
					n++
					if !l.Up && l.Addrs > 0 {
						// Named with its port too, so that an inactive
						// port explains it (dependency skipping).
						objs := []Object{linkObj(l.Name)}
						ports, _ := in.RDMAPorts(ctx)
						for _, p := range ports {
							if p.NetDev == l.Name {
								objs = append([]Object{{"port", fmt.Sprintf("%s/%d", p.Device, p.Port)}}, objs...)
							}
						}
						out = append(out, Finding{Severity: Critical, Objects: objs,
							Message: fmt.Sprintf("IPoIB interface %s is down: DRBD and corosync link 1 on the storage network are cut here", l.Name),
							Hint:    fmt.Sprintf("ip link set %s up; ifreload -a; check ibstat", l.Name)})
					}
				}
				if len(out) == 0 {
					return []Finding{{Severity: OK, Message: fmt.Sprintf("%d IPoIB interface(s) up", n)}}
				}
				return out
			}),
		},
	}
}
