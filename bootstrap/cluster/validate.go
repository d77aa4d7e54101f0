package cluster

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strings"

	"github.com/pvehci/pvehci/network/ifupdown"
	"github.com/pvehci/pvehci/storage/model"
)

// FieldError is one problem of the cluster file. Path names the key, and
// for a key of a node the node's index and name, as in
// "nodes[1] (pve2): ipoib.address"; Msg says what is wrong and what to
// write instead.
type FieldError struct {
	Path string
	Msg  string
}

func (e *FieldError) Error() string { return e.Path + ": " + e.Msg }

// problems collects every FieldError, so that one run shows the whole list.
type problems struct{ errs []error }

func (p *problems) add(path, format string, args ...any) {
	p.errs = append(p.errs, &FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (p *problems) err() error { return errors.Join(p.errs...) }

// nodePath names a node by index and name: the index finds it in the file
// when the name is missing or repeated.
func nodePath(i int, name string) string {
	if name == "" {
		return fmt.Sprintf("nodes[%d]", i)
	}
	return fmt.Sprintf("nodes[%d] (%s)", i, name)
}

var (
	// pvecm's rule for a cluster name; corosync's cluster_name is
	// limited to 15 characters on Proxmox.
	clusterNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]{0,14}$`)
	// A node name is a short host name: Proxmox uses it as the node's
	// directory in /etc/pve/nodes and LINSTOR as its node name.
	nodeNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	// PVE's storage ID format (pve-storage-id).
	storageIDRE = regexp.MustCompile(`^[a-z][a-z0-9._-]*$`)
)

// Validate checks the file and returns every problem, joined, each a
// *FieldError. Defaults count as written, so a Cluster need not have been
// through Parse.
func (c *Cluster) Validate() error {
	d := c.withDefaults()
	var p problems
	d.validateTop(&p)
	nw := d.networks(&p)
	if len(d.Nodes) == 0 {
		p.add("nodes", "the file has no nodes; list every node of the cluster under nodes, the first one being bootstrapped first")
		return p.err()
	}
	nodes := make([]Node, len(d.Nodes))
	for i := range d.Nodes {
		nodes[i] = d.resolve(i, nw, &p)
	}
	d.validateAcross(nodes, nw, &p)
	return p.err()
}

func (c *Cluster) validateTop(p *problems) {
	switch {
	case c.Cluster == "":
		p.add("cluster", "missing; name the cluster, e.g. cluster: hci1 (it becomes the Proxmox and the pvehci cluster name)")
	case !clusterNameRE.MatchString(c.Cluster):
		p.add("cluster", "%q is not a valid Proxmox cluster name; use 1 to 15 letters, digits or '-', starting with a letter or digit (pvecm create refuses others)", c.Cluster)
	}

	if len(c.Bond.Slaves) > 0 {
		p.add("bond.slaves", "slaves are per node, as NIC names differ between machines; move them to each node's bond.slaves")
	}
	for _, e := range bondFieldErrors(c.Bond) {
		p.add("bond."+e.field, "%s", e.msg)
	}

	// ifupdown's bridge check, with a stand-in port: the real one is
	// each node's bond.
	if _, err := (ifupdown.Bridge{Name: c.Bridge.Name, Ports: []string{"bond0"}}).Stanza(); err != nil {
		p.add("bridge.name", "%s", inner(err))
	}
	if _, err := (ifupdown.Bridge{Name: "vmbr0", Ports: []string{"bond0"}, VLANAware: true, VIDs: c.Bridge.VIDs}).Stanza(); err != nil {
		p.add("bridge.vids", "%s; write VLAN ids and ranges separated by spaces, e.g. 2-4094 or \"10 20-30\"", inner(err))
	}

	s := c.Storage
	if err := model.ValidateName(model.NameStoragePool, s.VolumeGroup); err != nil {
		p.add("storage.volume_group", "%v", err)
	}
	if err := model.ValidateName(model.NameStoragePool, s.ThinPool); err != nil {
		p.add("storage.thin_pool", "%v", err)
	}
	if s.PoolPercent < 1 || s.PoolPercent > 100 {
		p.add("storage.pool_percent", "%d is not a percentage of the volume group; use 1 to 100 (default 95 leaves room for the pool's metadata to grow)", s.PoolPercent)
	}
	if !storageIDRE.MatchString(s.ProxmoxStorage) {
		p.add("storage.proxmox_storage", "%q is not a Proxmox storage ID; use a lowercase letter followed by lowercase letters, digits, '.', '_' or '-', e.g. drbdstorage", s.ProxmoxStorage)
	}

	switch c.DRBD.Transport {
	case "auto", "tcp", "rdma":
	default:
		p.add("drbd.transport", "%q is not auto, tcp or rdma; auto uses RDMA when every node has an InfiniBand port", c.DRBD.Transport)
	}

	rgs := map[string]bool{}
	for i, rg := range c.ResourceGroups {
		at := fmt.Sprintf("resource_groups[%d]", i)
		if err := model.ValidateName(model.NameResourceGroup, rg.Name); err != nil {
			p.add(at+".name", "%v", err)
		} else if rgs[model.Key(rg.Name)] {
			p.add(at+".name", "resource group %s is declared twice (names ignore case); give each its own name", rg.Name)
		}
		rgs[model.Key(rg.Name)] = true
		if rg.PlaceCount < 1 {
			p.add(at+".place_count", "%d replicas; set place_count to the number of copies of each volume, at least 1 (2 is usual)", rg.PlaceCount)
		} else if len(c.Nodes) > 0 && rg.PlaceCount > len(c.Nodes) {
			p.add(at+".place_count", "%d replicas on %d nodes; a replica needs a node of its own, so use at most %d", rg.PlaceCount, len(c.Nodes), len(c.Nodes))
		}
	}

	scheds := map[string]bool{}
	for i, s := range c.Schedules {
		at := fmt.Sprintf("schedules[%d]", i)
		if s.Name != "" {
			at += " (" + s.Name + ")"
		}
		if err := model.ValidateName(model.NameJobSchedule, s.Name); err != nil {
			p.add(at+": name", "%v", err)
		} else if scheds[model.Key(s.Name)] {
			p.add(at+": name", "schedule %s is declared twice (names ignore case); give each its own name", s.Name)
		}
		scheds[model.Key(s.Name)] = true
		switch s.Kind {
		case "snapshot":
			if s.Keep < 1 {
				p.add(at+": keep", "%d; a snapshot schedule keeps at least 1 snapshot (leave keep out for 7)", s.Keep)
			}
		case "verify":
			if s.Keep != 0 {
				p.add(at+": keep", "a verify schedule makes no snapshots; remove keep")
			}
		default:
			p.add(at+": kind", "%q is not snapshot or verify", s.Kind)
		}
		if err := model.ValidateCron(s.Cron); err != nil {
			p.add(at+": cron", "%v", err)
		}
		if s.ResourceGroup == "" {
			p.add(at+": resource_group", "missing; name the resource group whose volumes the schedule covers (%s)", strings.Join(rgNames(c.ResourceGroups), ", "))
		} else if !rgs[model.Key(s.ResourceGroup)] {
			p.add(at+": resource_group", "%s is not declared in resource_groups (%s); add it there or fix the name", s.ResourceGroup, strings.Join(rgNames(c.ResourceGroups), ", "))
		}
	}
}

func rgNames(rgs []ResourceGroup) []string {
	var names []string
	for _, rg := range rgs {
		names = append(names, rg.Name)
	}
	return names
}

// networks parses the cluster-wide addresses and reports the problems that
// do not depend on the nodes.
func (c *Cluster) networks(p *problems) nets {
	var nw nets
	if c.Networks.Management == "" {
		p.add("networks.management", "missing; write the management network in CIDR notation, e.g. 10.0.0.0/24")
	} else {
		nw.management = network(p, "networks.management", c.Networks.Management)
	}
	if c.Networks.Storage != "" {
		nw.storage = network(p, "networks.storage", c.Networks.Storage)
	}
	if nw.management.IsValid() && nw.storage.IsValid() && nw.management.Overlaps(nw.storage) {
		p.add("networks.storage", "%s overlaps networks.management %s; the storage network needs its own range so that DRBD and corosync link 1 stay on InfiniBand", nw.storage, nw.management)
	}
	if c.Gateway != "" {
		gw, err := netip.ParseAddr(c.Gateway)
		switch {
		case err != nil:
			p.add("gateway", "%q is not an IP address; write the router's address, e.g. 10.0.0.254, or leave gateway out", c.Gateway)
		case !nw.management.IsValid():
			// Reported under networks.management.
		case !nw.management.Contains(gw):
			p.add("gateway", "%s is not inside networks.management %s; the gateway must be reachable on the bridge", gw, nw.management)
		case special(gw, nw.management) != "":
			p.add("gateway", "%s is the %s of %s; use the router's own address", gw, special(gw, nw.management), nw.management)
		default:
			nw.gateway = gw
		}
	}
	return nw
}

// network parses a network in CIDR notation.
func network(p *problems, field, s string) netip.Prefix {
	pf, err := netip.ParsePrefix(strings.TrimSpace(s))
	switch {
	case err != nil:
		p.add(field, "%q is not a network in CIDR notation; write it as address/length, e.g. 10.0.0.0/24", s)
		return netip.Prefix{}
	case pf != pf.Masked():
		p.add(field, "%s has host bits set; write the network's own address, %s", pf, pf.Masked())
		return netip.Prefix{}
	}
	return pf
}

// hostAddr parses a node's address on network nw: an address with nw's
// prefix length, or a bare address that gets it.
func hostAddr(p *problems, field, s string, nw netip.Prefix, nwName string) netip.Prefix {
	s = strings.TrimSpace(s)
	if s == "" {
		p.add(field, "missing; write the node's address in %s, e.g. %s", nwName, exampleAddr(nw))
		return netip.Prefix{}
	}
	var pf netip.Prefix
	if strings.Contains(s, "/") {
		var err error
		if pf, err = netip.ParsePrefix(s); err != nil {
			p.add(field, "%q is not an address; write it as address/length, e.g. %s", s, exampleAddr(nw))
			return netip.Prefix{}
		}
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil {
			p.add(field, "%q is not an address; write it as address/length, e.g. %s", s, exampleAddr(nw))
			return netip.Prefix{}
		}
		if !nw.IsValid() {
			if nwName == "networks.storage" {
				p.add(field, "%s has no prefix length and networks.storage is not set; set networks.storage, e.g. 10.20.0.0/24", s)
			}
			return netip.Prefix{}
		}
		pf = netip.PrefixFrom(a, nw.Bits())
	}
	if !nw.IsValid() {
		// networks.management is reported on its own; a missing
		// networks.storage is reported once, across the nodes.
		return pf
	}
	a := pf.Addr()
	switch {
	case !nw.Contains(a):
		p.add(field, "%s is not inside %s %s; use an address of that network, or fix %s", pf, nwName, nw, nwName)
	case pf.Bits() != nw.Bits():
		p.add(field, "%s has prefix length /%d but %s is %s; write /%d", pf, pf.Bits(), nwName, nw, nw.Bits())
	case special(a, nw) != "":
		p.add(field, "%s is the %s of %s; use a host address", a, special(a, nw), nw)
	}
	return pf
}

// special names the addresses of an IPv4 network that no host can have.
func special(a netip.Addr, nw netip.Prefix) string {
	if !a.Is4() || nw.Bits() >= 31 {
		return ""
	}
	if a == nw.Addr() {
		return "network address"
	}
	b := nw.Addr().As4()
	host := 32 - nw.Bits()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v |= (1 << host) - 1
	if a == netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}) {
		return "broadcast address"
	}
	return ""
}

func exampleAddr(nw netip.Prefix) string {
	if !nw.IsValid() {
		return "10.0.0.1/24"
	}
	return netip.PrefixFrom(nw.Addr().Next(), nw.Bits()).String()
}

func checkNodeName(name string) string {
	if name == "" {
		return "missing; write the node's host name as `hostname -s` prints it"
	}
	if !nodeNameRE.MatchString(name) {
		return fmt.Sprintf("%q is not a host name; use the node's short host name as `hostname -s` prints it: lowercase letters, digits and '-', at most 63 characters, not starting or ending with '-'", name)
	}
	if err := model.ValidateName(model.NameNode, name); err != nil {
		return err.Error()
	}
	return ""
}

type bondProblem struct{ field, msg string }

// bondFieldErrors checks the bond settings that are written, each on its
// own through ifupdown's check with stand-ins for the other fields, so that
// every wrong key is reported under its name. The hash policy and LACP rate
// are checked whatever the mode: a misspelt value is wrong even where
// ifupdown would not write it.
func bondFieldErrors(b Bond) []bondProblem {
	var out []bondProblem
	probe := func(field string, set func(*ifupdown.Bond), hint string) {
		pb := ifupdown.Bond{Name: "bond0", Slaves: []string{"eth0"}, Mode: defaultBondMode}
		set(&pb)
		if _, err := pb.Stanza(); err != nil {
			out = append(out, bondProblem{field, inner(err) + hint})
		}
	}
	if b.Name != "" {
		probe("name", func(pb *ifupdown.Bond) { pb.Name = b.Name }, "; use bond0, bond1, ...")
	}
	if b.Mode != "" {
		probe("mode", func(pb *ifupdown.Bond) { pb.Mode = b.Mode }, "")
	}
	if b.Miimon != 0 {
		probe("miimon", func(pb *ifupdown.Bond) { pb.Miimon = b.Miimon }, "; use the link check interval in ms, e.g. 100")
	}
	if b.XmitHashPolicy != "" {
		probe("xmit_hash_policy", func(pb *ifupdown.Bond) { pb.XmitHashPolicy = b.XmitHashPolicy }, "")
	}
	if b.LACPRate != "" {
		probe("lacp_rate", func(pb *ifupdown.Bond) { pb.LACPRate = b.LACPRate }, "; fast is advised for a bond that carries corosync")
	}
	if b.MTU != 0 {
		probe("mtu", func(pb *ifupdown.Bond) { pb.MTU = b.MTU }, "; leave mtu out for the default 1500, or use e.g. 9000 for jumbo frames")
	}
	return out
}

// validateAcross checks what involves several nodes.
func (c *Cluster) validateAcross(nodes []Node, nw nets, p *problems) {
	names := map[string]int{}
	mgmt := map[netip.Addr]int{}
	stor := map[netip.Addr]int{}
	guids := map[string]int{}
	var withIB, withoutIB, controllers []string
	for i, n := range nodes {
		at := func(field string) string { return nodePath(i, n.Name) + ": " + field }
		if n.Name != "" {
			if j, ok := names[n.Name]; ok {
				p.add(at("name"), "%s is also nodes[%d]; every node is listed once", n.Name, j)
			} else {
				names[n.Name] = i
			}
		}
		if a := n.Management.Addr(); a.IsValid() {
			if j, ok := mgmt[a]; ok {
				p.add(at("management"), "%s is also the address of %s; give each node its own address", a, nodePath(j, nodes[j].Name))
			} else {
				mgmt[a] = i
			}
			if a == nw.gateway {
				p.add(at("management"), "%s is the gateway; give the node another address", a)
			}
		}
		if n.IPoIB == nil {
			withoutIB = append(withoutIB, n.Name)
		} else {
			withIB = append(withIB, n.Name)
			if a := n.IPoIB.Iface.Address.Addr(); a.IsValid() {
				if j, ok := stor[a]; ok {
					p.add(at("ipoib.address"), "%s is also the address of %s; give each node its own address", a, nodePath(j, nodes[j].Name))
				} else {
					stor[a] = i
				}
			}
			if g := n.IPoIB.GUID; g != "" {
				if j, ok := guids[g]; ok {
					p.add(at("ipoib.guid"), "%s is also the GUID of %s; a port GUID is unique, so one of them was copied: ibstat on each node shows its own", c.Nodes[i].IPoIB.GUID, nodePath(j, nodes[j].Name))
				} else {
					guids[g] = i
				}
			}
		}
		if n.Controller {
			controllers = append(controllers, n.Name)
		}
	}
	if len(withIB) > 0 && c.Networks.Storage == "" {
		p.add("networks.storage", "missing, but nodes %s have ipoib; write the IPoIB network in CIDR notation, e.g. 10.20.0.0/24", strings.Join(withIB, ", "))
	}
	if c.DRBD.Transport == "rdma" && len(withoutIB) > 0 {
		p.add("drbd.transport", "rdma needs an InfiniBand port on every node, but %s %s no ipoib; add ipoib there, or use auto (RDMA only when every node has a port) or tcp",
			strings.Join(withoutIB, ", "), plural(len(withoutIB), "has", "have"))
	}
	const why = "the controllers keep the cluster state in raft, which works only while a majority of them is up: an even number survives no more failures than one fewer, and more than 5 slows every change. Set controller: true on 1, 3 or 5 nodes and controller: false on the others"
	switch k := len(controllers); k {
	case 1, 3, 5:
	case 0:
		p.add("nodes", "no node is a controller; %s", why)
	default:
		p.add("nodes", "%d controller nodes (%s); %s", k, strings.Join(controllers, ", "), why)
	}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
