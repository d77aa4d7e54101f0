package cluster

import (
	"errors"
	"fmt"
	"net/netip"
	"path"
	"slices"
	"strings"

	"github.com/pvehci/pvehci/network/ifupdown"
)

// Node is one node of the cluster file with every default and inherited
// setting resolved: what bootstrap configures on that host.
type Node struct {
	Name string
	// Index is the node's position in the file; the first node creates
	// the clusters.
	Index      int
	Management netip.Prefix
	// Gateway is the zero Addr when the file has none.
	Gateway netip.Addr
	// Bond is nil when the node lists no bond slaves.
	Bond *ifupdown.Bond
	// Bridge has the bond as its only port, the management address and
	// the gateway. Without a bond it has no port and is not written (see
	// Network).
	Bridge ifupdown.Bridge
	// IPoIB is nil when the node has no InfiniBand port.
	IPoIB      *IPoIB
	Disks      []string
	Controller bool

	VolumeGroup    string
	ThinPool       string
	PoolPercent    int
	ProxmoxStorage string
}

// IPoIB is a node's IP-over-InfiniBand port: how to find it on the host,
// and its interface.
type IPoIB struct {
	// GUID is the port GUID as 16 lowercase hex digits without
	// separators, the form /sys/class/infiniband/*/ports/*/gids shows
	// once the prefix is removed; empty when the port is named by PCI.
	GUID string
	// PCI is the HCA's PCI address with a 4-digit domain
	// (0000:81:00.0); empty when the port is named by GUID.
	PCI string
	// Port is the HCA port number (from 1) that goes with PCI; 0 with
	// GUID, which names one port already.
	Port  int
	Iface ifupdown.IPoIB
}

// Network is the part of the node's network that pvehci writes. A node
// without a bond keeps the bridge the Proxmox installer made: a bridge with
// no port cannot be written (ifup rejects "bridge-ports none"), and taking
// the installer's NIC off it is what the bond is for.
func (n Node) Network() ifupdown.Network {
	var netw ifupdown.Network
	if n.Bond != nil {
		b := *n.Bond
		b.Slaves = slices.Clone(b.Slaves)
		netw.Bond = &b
		br := n.Bridge
		br.Ports = slices.Clone(br.Ports)
		netw.Bridge = &br
	}
	if n.IPoIB != nil {
		netw.IPoIB = []ifupdown.IPoIB{n.IPoIB.Iface}
	}
	return netw
}

// StorageAddr is the address DRBD replicates over: the IPoIB address when
// the node has one, else the management address.
func (n Node) StorageAddr() netip.Addr {
	if n.IPoIB != nil {
		return n.IPoIB.Iface.Address.Addr()
	}
	return n.Management.Addr()
}

// NodeNames returns the node names in file order.
func (c *Cluster) NodeNames() []string {
	names := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		names[i] = n.Name
	}
	return names
}

// First is the first node of the file. Bootstrap on it creates the Proxmox
// cluster and the pvehci cluster; the others join it, so it must be
// bootstrapped first.
func (c *Cluster) First() string {
	if len(c.Nodes) == 0 {
		return ""
	}
	return c.Nodes[0].Name
}

// Node resolves the named node. It reports the problems of that node
// alone; Parse and Validate check the file as a whole.
func (c *Cluster) Node(name string) (Node, error) {
	i := slices.IndexFunc(c.Nodes, func(n NodeSpec) bool { return n.Name == name })
	if i < 0 {
		return Node{}, fmt.Errorf("this host is %s, but cluster.yaml has no node %s (it has %s); add it, or pass --node NAME",
			name, name, strings.Join(c.NodeNames(), ", "))
	}
	d := c.withDefaults()
	var p problems
	n := d.resolve(i, d.networks(&p), &p)
	if err := p.err(); err != nil {
		return Node{}, err
	}
	return n, nil
}

// Resolved resolves every node, in file order.
func (c *Cluster) Resolved() ([]Node, error) {
	if len(c.Nodes) == 0 {
		return nil, errors.New("the cluster file has no nodes")
	}
	d := c.withDefaults()
	var p problems
	nets := d.networks(&p)
	nodes := make([]Node, len(c.Nodes))
	for i := range c.Nodes {
		nodes[i] = d.resolve(i, nets, &p)
	}
	if err := p.err(); err != nil {
		return nil, err
	}
	return nodes, nil
}

// controllerDefault is how many nodes, from the top of the file, run a
// controller when the file does not say: all of up to three nodes, and five
// from five nodes on, the largest raft group that still commits quickly.
// Four nodes get three, as four controllers survive no more failures than
// three.
func controllerDefault(nodes int) int {
	if nodes >= 5 {
		return 5
	}
	return min(nodes, 3)
}

// nets are the cluster-wide addresses, parsed once; a field that does not
// parse is the zero value (and reported once, by networks).
type nets struct {
	management, storage netip.Prefix
	gateway             netip.Addr
}

// resolve resolves node i of c, which must have its defaults applied, and
// reports what is wrong with the node on its own (not against other nodes).
func (c *Cluster) resolve(i int, nw nets, p *problems) Node {
	s := c.Nodes[i]
	at := func(field string) string { return nodePath(i, s.Name) + ": " + field }
	n := Node{
		Name:           s.Name,
		Index:          i,
		Gateway:        nw.gateway,
		Disks:          slices.Clone(s.Disks),
		VolumeGroup:    c.Storage.VolumeGroup,
		ThinPool:       c.Storage.ThinPool,
		PoolPercent:    c.Storage.PoolPercent,
		ProxmoxStorage: c.Storage.ProxmoxStorage,
	}
	if msg := checkNodeName(s.Name); msg != "" {
		p.add(at("name"), "%s", msg)
	}

	n.Management = hostAddr(p, at("management"), s.Management, nw.management, "networks.management")

	n.Bond = c.nodeBond(s, at, p)
	n.Bridge = ifupdown.Bridge{
		Name:      c.Bridge.Name,
		Address:   n.Management,
		Gateway:   nw.gateway,
		VLANAware: c.Bridge.VLANAware == nil || *c.Bridge.VLANAware,
		VIDs:      c.Bridge.VIDs,
	}
	if n.Bond != nil {
		n.Bridge.Ports = []string{n.Bond.Name}
	}

	if s.IPoIB != nil {
		n.IPoIB = resolveIPoIB(*s.IPoIB, nw.storage, at, p)
	}

	seen := map[string]bool{}
	for j, d := range s.Disks {
		field := at(fmt.Sprintf("disks[%d]", j))
		switch {
		case !strings.HasPrefix(d, "/dev/") || path.Clean(d) != d:
			p.add(field, "%q is not a device path; write the whole disk as /dev/NAME, e.g. /dev/nvme0n1 or /dev/disk/by-id/...", d)
		case seen[d]:
			p.add(field, "%s is listed twice; list each disk once", d)
		}
		seen[d] = true
	}

	// Names of the interfaces on this node: a NIC enslaved to the bond
	// and also used as the IPoIB port, or a bond named like the bridge,
	// would make ifupdown2 configure one device twice.
	used := map[string]string{}
	claim := func(name, role, field string) {
		if name == "" {
			return
		}
		if prev, ok := used[name]; ok {
			p.add(at(field), "interface name %s is used twice on this node (%s and %s); give each interface its own name", name, prev, role)
			return
		}
		used[name] = role
	}
	claim(n.Bridge.Name, "bridge.name", "bridge")
	if n.Bond != nil {
		claim(n.Bond.Name, "bond.name", "bond.name")
		for _, sl := range slices.Compact(slices.Sorted(slices.Values(n.Bond.Slaves))) {
			claim(sl, "bond.slaves", "bond.slaves")
		}
	}
	if n.IPoIB != nil {
		claim(n.IPoIB.Iface.Name, "ipoib.name", "ipoib.name")
	}

	switch {
	case s.Controller != nil:
		n.Controller = *s.Controller
	default:
		n.Controller = i < controllerDefault(len(c.Nodes))
	}
	return n
}

// nodeBond merges the top-level bond with the node's override; it is nil
// when the node names no slaves.
func (c *Cluster) nodeBond(s NodeSpec, at func(string) string, p *problems) *ifupdown.Bond {
	if s.Bond == nil {
		return nil
	}
	o := *s.Bond
	for _, e := range bondFieldErrors(o) {
		p.add(at("bond."+e.field), "%s", e.msg)
	}
	if len(o.Slaves) == 0 {
		p.add(at("bond.slaves"), "the node's bond has no slaves; list the NICs to bond (ip -br link shows them), or remove bond from this node to keep the installer's bridge")
		return nil
	}
	b := &ifupdown.Bond{
		Name:           def(o.Name, c.Bond.Name),
		Slaves:         slices.Clone(o.Slaves),
		Mode:           def(o.Mode, c.Bond.Mode),
		Miimon:         c.Bond.Miimon,
		XmitHashPolicy: def(o.XmitHashPolicy, c.Bond.XmitHashPolicy),
		LACPRate:       def(o.LACPRate, c.Bond.LACPRate),
		MTU:            c.Bond.MTU,
	}
	if o.Miimon != 0 {
		b.Miimon = o.Miimon
	}
	if o.MTU != 0 {
		b.MTU = o.MTU
	}
	// Only the slaves are new here; the other fields were checked on
	// their own, at the level they were written.
	probe := ifupdown.Bond{Name: "bond0", Slaves: b.Slaves, Mode: defaultBondMode}
	if _, err := probe.Stanza(); err != nil {
		// ifupdown's hint names its Go field, which the file has no key
		// for: the file targets what Proxmox 8 accepts too.
		msg := strings.Replace(inner(err), "(Proxmox 9 only: set AnyNICName)", "with a systemd .link file (Proxmox's pve-network-interface-pinning does this)", 1)
		p.add(at("bond.slaves"), "%s", msg)
	}
	return b
}

func resolveIPoIB(s IPoIBSpec, storage netip.Prefix, at func(string) string, p *problems) *IPoIB {
	ib := &IPoIB{Port: s.Port}
	switch {
	case s.GUID != "" && s.PCI != "":
		p.add(at("ipoib"), "both guid and pci are set; name the port one way: guid alone, or pci with port")
	case s.GUID == "" && s.PCI == "":
		p.add(at("ipoib"), "neither guid nor pci is set; name the port by its GUID (ibstat shows \"Port GUID\") or by pci (lspci -D) and port")
	case s.GUID != "":
		if g, ok := normalizeGUID(s.GUID); ok {
			ib.GUID = g
		} else {
			p.add(at("ipoib.guid"), "%q is not a port GUID; write 16 hex digits, optionally in groups of 4 separated by ':' or after 0x, e.g. 0002:c903:00a1:b2c1", s.GUID)
		}
		if s.Port != 0 {
			p.add(at("ipoib.port"), "port goes with pci; a GUID already names one port, so remove port")
		}
	default:
		if a, ok := normalizePCI(s.PCI); ok {
			ib.PCI = a
		} else {
			p.add(at("ipoib.pci"), "%q is not a PCI address; write it as lspci -D prints it, e.g. \"0000:81:00.0\" (quoted)", s.PCI)
		}
		if ib.Port == 0 {
			ib.Port = defaultIBPort
		}
		if ib.Port < 1 || ib.Port > 255 {
			p.add(at("ipoib.port"), "port %d is not an HCA port number; ports count from 1 (ibstat lists them)", s.Port)
		}
	}
	ib.Iface = ifupdown.IPoIB{
		Name:     def(s.Name, defaultIPoIBName),
		Address:  hostAddr(p, at("ipoib.address"), s.Address, storage, "networks.storage"),
		Datagram: s.Datagram,
		MTU:      s.MTU,
	}
	// ifupdown's own check, one field at a time so that each problem
	// is reported under its key, with a stand-in for the others.
	stand := netip.MustParsePrefix("192.0.2.1/24")
	if _, err := (ifupdown.IPoIB{Name: ib.Iface.Name, Address: stand}).Stanza(); err != nil {
		p.add(at("ipoib.name"), "%s", inner(err))
	}
	if _, err := (ifupdown.IPoIB{Name: defaultIPoIBName, Address: stand, Datagram: s.Datagram, MTU: s.MTU}).Stanza(); err != nil {
		p.add(at("ipoib.mtu"), "%s (set datagram: true for a datagram-mode MTU)", inner(err))
	}
	return ib
}

// normalizeGUID accepts 16 hex digits, in groups of 4 separated by ':' or
// with a 0x prefix, as ibstat, ibv_devinfo and sysfs print them.
func normalizeGUID(s string) (string, bool) {
	g := strings.ToLower(strings.TrimSpace(s))
	if strings.HasPrefix(g, "0x") {
		g = g[2:]
	} else if strings.Contains(g, ":") {
		parts := strings.Split(g, ":")
		if len(parts) != 4 {
			return "", false
		}
		for _, part := range parts {
			if len(part) != 4 {
				return "", false
			}
		}
		g = strings.Join(parts, "")
	}
	if len(g) != 16 || strings.Trim(g, "0123456789abcdef") != "" {
		return "", false
	}
	return g, true
}

// normalizePCI gives a PCI address the 4-digit domain sysfs uses, so that
// it compares equal to the address read from the host.
func normalizePCI(s string) (string, bool) {
	a := strings.ToLower(strings.TrimSpace(s))
	if strings.Count(a, ":") == 1 {
		a = "0000:" + a
	}
	if len(a) != len("0000:81:00.0") || a[4] != ':' || a[7] != ':' || a[10] != '.' {
		return "", false
	}
	for i, c := range a {
		if i == 4 || i == 7 || i == 10 {
			continue
		}
		if !strings.ContainsRune("0123456789abcdef", c) {
			return "", false
		}
	}
	if a[11] > '7' { // a function number is 0-7
		return "", false
	}
	return a, true
}

// inner strips ifupdown's "rendering bond bond0: " prefix, which names
// the interface rather than the key of the cluster file.
func inner(err error) string {
	if u := errors.Unwrap(err); u != nil {
		return u.Error()
	}
	return err.Error()
}
