package corosync

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
)

// Priority says which knet_link_priority [AddLink] gives a new link. The
// zero value is [BelowLink0].
type Priority struct {
	kind  priorityKind
	value int
}

type priorityKind int

const (
	belowLink0 priorityKind = iota
	unset
	explicit
)

// BelowLink0 makes the new link a fallback: its priority is half of link
// 0's (20 gives 10). When link 0 has no priority of its own (corosync then
// uses 1, the lowest there is), the new link gets none either, and link 0
// still wins because among equal priorities the lowest link number
// carries the traffic in passive mode.
func BelowLink0() Priority { return Priority{kind: belowLink0} }

// NoPriority leaves knet_link_priority unset on the new link.
func NoPriority() Priority { return Priority{kind: unset} }

// PriorityOf sets knet_link_priority to n (1 to 255; higher is preferred).
func PriorityOf(n int) Priority { return Priority{kind: explicit, value: n} }

func (p Priority) String() string {
	switch p.kind {
	case unset:
		return "no knet_link_priority"
	case explicit:
		return fmt.Sprintf("knet_link_priority %d", p.value)
	}
	return "a knet_link_priority below link 0's"
}

// resolve returns the knet_link_priority to write for the new link (0:
// none).
func (p Priority) resolve(c *Config) (int, error) {
	switch p.kind {
	case unset:
		return 0, nil
	case explicit:
		if p.value < 1 || p.value > 255 {
			return 0, fmt.Errorf("knet_link_priority %d is out of range; use 1 to 255 (higher is preferred)", p.value)
		}
		return p.value, nil
	}
	base := 0
	if f := c.Interface(0); f != nil {
		base = f.KnetLinkPriority
	}
	if base <= 1 {
		return 0, nil
	}
	return base / 2, nil
}

// AddLink returns a copy of c with knet link number link added to every
// node in one edit, the way pvecm.adoc "Adding Redundant Links To An
// Existing Cluster" describes it: ringN_addr on every node, an
// interface { linknumber: N } section, and config_version raised by one.
// addrs maps every node name to its address on the new link; addresses
// must be IP addresses (Proxmox stores IPs, and a name would be resolved
// differently on each node).
//
// It is idempotent: when every node already has exactly these addresses
// on link and the interface section exists, it returns c itself and
// changed=false. It refuses (and changes nothing) when a node has no
// address in addrs, when addrs names a node that is not in the nodelist,
// when the link exists with other addresses, or when an address is
// already used by another link or node. Adding a link to only some nodes
// is impossible by construction: corosync refuses nodes with different
// links.
func AddLink(c *Config, link int, addrs map[string]string, priority Priority) (next *Config, changed bool, err error) {
	next, changed, err = addLink(c, link, addrs, priority)
	if err != nil {
		return nil, false, fmt.Errorf("adding corosync link %d: %w", link, err)
	}
	return next, changed, nil
}

func addLink(c *Config, link int, addrs map[string]string, priority Priority) (*Config, bool, error) {
	if link < 0 || link >= MaxLinks {
		return nil, false, fmt.Errorf("link number %d is out of range; corosync supports links 0 to %d", link, MaxLinks-1)
	}
	if c.Totem.ConfigVersion == 0 {
		return nil, false, fmt.Errorf("totem.config_version is missing or unreadable, so the change could not be numbered; fix /etc/pve/corosync.conf first")
	}
	nodes := c.Nodelist.Nodes
	if len(nodes) == 0 {
		return nil, false, fmt.Errorf("the nodelist has no nodes")
	}
	var names []string
	for i, n := range nodes {
		if n.Name == "" {
			return nil, false, fmt.Errorf("node #%d (nodeid %d) has no name; corosync needs a name on every node once there is more than one link, add name: to it first", i+1, n.NodeID)
		}
		names = append(names, n.Name)
	}

	// Every address must be for a known node, and every node needs one.
	var unknown []string
	for name := range addrs {
		if c.Node(name) == nil {
			unknown = append(unknown, name)
		}
	}
	sort.Strings(unknown)
	if len(unknown) > 0 {
		return nil, false, fmt.Errorf("no node named %s in the nodelist (the nodes are %s)", strings.Join(unknown, ", "), strings.Join(names, ", "))
	}
	var missing []string
	want := map[string]netip.Addr{}
	for _, n := range nodes {
		raw, ok := addrs[n.Name]
		if !ok || raw == "" {
			missing = append(missing, n.Name)
			continue
		}
		a, err := netip.ParseAddr(raw)
		if err != nil || a.Zone() != "" {
			return nil, false, fmt.Errorf("address %q of node %s is not an IP address; give the node's IP on link %d", raw, n.Name, link)
		}
		a = a.Unmap()
		if err := checkFamily(c.Totem.IPVersion, a); err != nil {
			return nil, false, fmt.Errorf("node %s: %w", n.Name, err)
		}
		want[n.Name] = a
	}
	if len(missing) > 0 {
		return nil, false, fmt.Errorf("no address for node %s; every node needs an address on link %d, because corosync refuses nodes with different links", strings.Join(missing, ", "), link)
	}

	// Does the link exist already, completely or in part?
	var differ []string
	same := 0
	for _, n := range nodes {
		cur := n.Rings[link]
		if cur == "" {
			continue
		}
		if a, err := netip.ParseAddr(cur); err == nil && a.Unmap() == want[n.Name] {
			same++
			continue
		}
		differ = append(differ, fmt.Sprintf("%s has %s (want %s)", n.Name, cur, want[n.Name]))
	}
	if len(differ) > 0 || (same > 0 && same < len(nodes)) {
		for _, n := range nodes {
			if n.Rings[link] == "" {
				differ = append(differ, n.Name+" has none")
			}
		}
		return nil, false, fmt.Errorf("link %d already exists with other addresses (%s); pvehci does not change the addresses of a link, change them by hand one link at a time as pvecm.adoc describes", link, strings.Join(differ, "; "))
	}
	prio, err := priority.resolve(c)
	if err != nil {
		return nil, false, err
	}
	iface := c.Interface(link)
	if same == len(nodes) && iface != nil {
		if priority.kind == explicit && iface.KnetLinkPriority != prio {
			return nil, false, fmt.Errorf("link %d already exists with knet_link_priority %d, not %d; pvehci does not change an existing link", link, iface.KnetLinkPriority, prio)
		}
		return c, false, nil
	}

	// A new address must not be in use on another link or node.
	used := map[netip.Addr]string{}
	for _, n := range nodes {
		for l, a := range n.Rings {
			if l == link || a == "" {
				continue
			}
			if ip, err := netip.ParseAddr(a); err == nil {
				used[ip.Unmap()] = fmt.Sprintf("link %d of node %s", l, n.Name)
			}
		}
	}
	seen := map[netip.Addr]string{}
	for _, n := range nodes {
		a := want[n.Name]
		if who, ok := used[a]; ok {
			return nil, false, fmt.Errorf("address %s of node %s is already %s; each link needs its own network", a, n.Name, who)
		}
		if other, ok := seen[a]; ok {
			return nil, false, fmt.Errorf("nodes %s and %s were given the same address %s", other, n.Name, a)
		}
		seen[a] = n.Name
	}

	next := c.Clone()
	for i := range next.Nodelist.Nodes {
		n := &next.Nodelist.Nodes[i]
		n.Rings[link] = want[n.Name].String()
	}
	if f := next.Interface(link); f == nil {
		next.Totem.Interfaces = append(next.Totem.Interfaces, Interface{LinkNumber: link, KnetLinkPriority: prio})
	} else if priority.kind == explicit {
		f.KnetLinkPriority = prio
	}
	next.Totem.ConfigVersion++
	if err := Validate(next); err != nil {
		return nil, false, fmt.Errorf("the result would not be valid, fix /etc/pve/corosync.conf first: %w", err)
	}
	return next, true, nil
}

// checkFamily checks a against totem.ip_version: ipv4 and ipv6 allow one
// family, ipv4-6 and ipv6-4 (Proxmox's default) both.
func checkFamily(ipVersion string, a netip.Addr) error {
	switch {
	case ipVersion == "ipv4" && !a.Is4():
		return fmt.Errorf("address %s is not IPv4, but totem.ip_version is ipv4", a)
	case ipVersion == "ipv6" && !a.Is6():
		return fmt.Errorf("address %s is not IPv6, but totem.ip_version is ipv6", a)
	}
	return nil
}
