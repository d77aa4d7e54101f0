package hostos

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"

	"github.com/pvehci/pvehci/bootstrap"
)

// dumpAttempts bounds the retries of a netlink dump. Since netlink v1.3.0 a
// dump that raced with a change in the kernel returns partial results
// together with ErrDumpInterrupted; on a node that is busy bringing links
// up that happens, and a retry almost always gets a consistent dump.
const dumpAttempts = 3

// Netlink reads network interfaces over rtnetlink.
type Netlink struct {
	// Handle selects the network namespace (tests use one made with
	// netlink.NewHandleAt); nil means the caller's current namespace.
	Handle *netlink.Handle
}

var _ bootstrap.Network = Netlink{}

// Link describes one interface; errors.Is(err, bootstrap.ErrNoLink) when it
// does not exist.
func (n Netlink) Link(ctx context.Context, name string) (bootstrap.Link, error) {
	if err := ctx.Err(); err != nil {
		return bootstrap.Link{}, fmt.Errorf("reading network interface %s: %w", name, err)
	}
	// LinkByName falls back to a dump on kernels without IFLA_IFNAME
	// lookups, so it can be interrupted too.
	l, err := dump(ctx, func() (netlink.Link, error) { return n.linkByName(name) })
	if err != nil {
		if isNotFound(err) {
			return bootstrap.Link{}, fmt.Errorf("network interface %s: %w", name, bootstrap.ErrNoLink)
		}
		return bootstrap.Link{}, fmt.Errorf("reading network interface %s: %w", name, err)
	}
	master := ""
	if idx := l.Attrs().MasterIndex; idx != 0 {
		m, err := n.linkByIndex(idx)
		switch {
		case err == nil:
			master = m.Attrs().Name
		case isNotFound(err):
			// The master went away between the two requests: the link is
			// no longer enslaved, which is what "" says.
		default:
			return bootstrap.Link{}, fmt.Errorf("reading master of network interface %s: %w", name, err)
		}
	}
	addrs, err := dump(ctx, func() ([]netlink.Addr, error) { return n.addrList(l) })
	if err != nil {
		return bootstrap.Link{}, fmt.Errorf("reading addresses of network interface %s: %w", name, err)
	}
	return convert(l, master, addrs), nil
}

// Links lists every interface in the namespace.
func (n Netlink) Links(ctx context.Context) ([]bootstrap.Link, error) {
	links, err := dump(ctx, n.linkList)
	if err != nil {
		return nil, fmt.Errorf("listing network interfaces: %w", err)
	}
	// One address dump for all links rather than one per link: it is a
	// single consistent snapshot and costs one round trip.
	addrs, err := dump(ctx, func() ([]netlink.Addr, error) { return n.addrList(nil) })
	if err != nil {
		return nil, fmt.Errorf("listing network addresses: %w", err)
	}
	names := make(map[int]string, len(links))
	for _, l := range links {
		names[l.Attrs().Index] = l.Attrs().Name
	}
	byLink := make(map[int][]netlink.Addr)
	for _, a := range addrs {
		byLink[a.LinkIndex] = append(byLink[a.LinkIndex], a)
	}
	out := make([]bootstrap.Link, 0, len(links))
	for _, l := range links {
		// A master missing from the dump would be a master in another
		// namespace, which a link cannot have; "" is the honest answer.
		out = append(out, convert(l, names[l.Attrs().MasterIndex], byLink[l.Attrs().Index]))
	}
	return out, nil
}

func convert(l netlink.Link, master string, addrs []netlink.Addr) bootstrap.Link {
	a := l.Attrs()
	return bootstrap.Link{
		Name:      a.Name,
		Kind:      l.Type(),
		Up:        a.Flags&net.FlagUp != 0 && (a.OperState == netlink.OperUp || a.OperState == netlink.OperUnknown),
		Master:    master,
		Addrs:     prefixes(addrs),
		MTU:       a.MTU,
		LinkLayer: a.EncapType, // netlink names ARPHRD_ETHER "ether", ARPHRD_INFINIBAND "infiniband", ARPHRD_LOOPBACK "loopback"
	}
}

func prefixes(addrs []netlink.Addr) []netip.Prefix {
	var out []netip.Prefix
	for _, a := range addrs {
		if a.IPNet == nil {
			continue
		}
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		// Every IPv6 link has an fe80:: address derived from its MAC; it
		// says nothing about configuration, and steps compare Addrs with
		// what /etc/network/interfaces asks for.
		if ip.Is6() && ip.IsLinkLocalUnicast() {
			continue
		}
		bits, _ := a.Mask.Size()
		out = append(out, netip.PrefixFrom(ip, bits))
	}
	return out
}

// dump runs a netlink request that may dump, retrying while the kernel
// reports the dump interrupted; partial results are never returned.
func dump[T any](ctx context.Context, f func() (T, error)) (T, error) {
	var zero T
	var err error
	for range dumpAttempts {
		if cerr := ctx.Err(); cerr != nil {
			return zero, cerr
		}
		var res T
		res, err = f()
		if err == nil {
			return res, nil
		}
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return zero, err
		}
	}
	return zero, fmt.Errorf("giving up after %d attempts: %w", dumpAttempts, err)
}

func isNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf)
}

// The package-level netlink functions use an unexported handle, so a nil
// Handle has to be dispatched by hand.

func (n Netlink) linkByName(name string) (netlink.Link, error) {
	if n.Handle != nil {
		return n.Handle.LinkByName(name)
	}
	return netlink.LinkByName(name)
}

func (n Netlink) linkByIndex(idx int) (netlink.Link, error) {
	if n.Handle != nil {
		return n.Handle.LinkByIndex(idx)
	}
	return netlink.LinkByIndex(idx)
}

func (n Netlink) linkList() ([]netlink.Link, error) {
	if n.Handle != nil {
		return n.Handle.LinkList()
	}
	return netlink.LinkList()
}

// addrList lists the addresses of l, or of every link when l is nil.
func (n Netlink) addrList(l netlink.Link) ([]netlink.Addr, error) {
	if n.Handle != nil {
		return n.Handle.AddrList(l, netlink.FAMILY_ALL)
	}
	return netlink.AddrList(l, netlink.FAMILY_ALL)
}
