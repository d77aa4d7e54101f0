// Package hostnet reads this host's network interfaces and RDMA ports
// through bootstrap's netlink and sysfs readers, in the shape the health
// checks judge (model.NetLink, model.RDMAPort): for `pvehci health` on the
// node and for the satellite's reports to the leader.
package hostnet

import (
	"context"

	"github.com/pvehci/pvehci/bootstrap/hostos"
	"github.com/pvehci/pvehci/storage/model"
)

// Reader reads the host's links (netlink) and RDMA ports
// (/sys/class/infiniband).
type Reader struct{}

// Links returns every network interface.
func (Reader) Links(ctx context.Context) ([]model.NetLink, error) {
	links, err := hostos.Netlink{}.Links(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]model.NetLink, len(links))
	for i, l := range links {
		out[i] = model.NetLink{Name: l.Name, Kind: l.Kind, Up: l.Up, Master: l.Master, LinkLayer: l.LinkLayer, Addrs: len(l.Addrs)}
	}
	return out, nil
}

// RDMAPorts returns every InfiniBand and RoCE port.
func (Reader) RDMAPorts(ctx context.Context) ([]model.RDMAPort, error) {
	ports, err := hostos.Sysfs{}.Ports(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]model.RDMAPort, len(ports))
	for i, p := range ports {
		out[i] = model.RDMAPort{Device: p.Device, Port: p.Port, State: p.State, LinkLayer: p.LinkLayer, NetDev: p.NetDev}
	}
	return out, nil
}
