package drbd

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/pvehci/pvehci/storage/model"
)

// PathRule is the rule that chose a pair's addresses (package doc).
type PathRule string

// Path rules, in the order they are tried.
const (
	RulePreferred PathRule = "preferred"
	RuleSubnet    PathRule = "subnet"
	RuleDefault   PathRule = "default"
)

// PathChoice says which interfaces connect nodes A and B (A sorts first)
// and why, so that `resource show` can explain a connection.
type PathChoice struct {
	A, B         string
	IfA, IfB     string
	AddrA, AddrB netip.Addr
	Rule         PathRule
	Reason       string
}

// endpoint is a parsed interface of a node.
type endpoint struct {
	name string
	addr ifAddr
}

// SelectPaths chooses the addresses of every connection of the resource:
// one per pair of nodes, in the order Render writes them (nodes sorted by
// name, pairs of two diskless nodes left out). It fails when a pair has no
// usable path, naming both nodes and their interfaces. It expects a
// config that passes Validate.
func SelectPaths(c ResourceConfig) ([]PathChoice, error) {
	nodes := sortedNodes(c.Nodes)
	var out []PathChoice
	for i, a := range nodes {
		for _, b := range nodes[i+1:] {
			if a.Diskless && b.Diskless {
				continue
			}
			pc, err := selectPath(a, b)
			if err != nil {
				return nil, fmt.Errorf("DRBD resource %s: %w", c.Name, err)
			}
			out = append(out, pc)
		}
	}
	return out, nil
}

func sortedNodes(nodes []Node) []Node {
	out := slices.Clone(nodes)
	slices.SortFunc(out, func(a, b Node) int {
		return cmp.Or(strings.Compare(model.Key(a.Name), model.Key(b.Name)), strings.Compare(a.Name, b.Name))
	})
	return out
}

func endpoints(n Node) ([]endpoint, error) {
	if len(n.Interfaces) == 0 {
		return nil, fmt.Errorf("node %s has no network interfaces; add one so DRBD has an address", n.Name)
	}
	out := make([]endpoint, 0, len(n.Interfaces))
	for _, ifc := range n.Interfaces {
		a, err := parseInterfaceAddr(ifc.Address)
		if err != nil {
			return nil, fmt.Errorf("node %s interface %s: %w", n.Name, ifc.Name, err)
		}
		out = append(out, endpoint{ifc.Name, a})
	}
	slices.SortFunc(out, func(x, y endpoint) int { return strings.Compare(model.Key(x.name), model.Key(y.name)) })
	return out, nil
}

func find(eps []endpoint, name string) (endpoint, bool) {
	for _, e := range eps {
		if model.SameName(e.name, name) {
			return e, true
		}
	}
	return endpoint{}, false
}

func sameFamily(x, y endpoint) bool { return x.addr.addr.Is4() == y.addr.addr.Is4() }

func selectPath(a, b Node) (PathChoice, error) {
	ea, err := endpoints(a)
	if err != nil {
		return PathChoice{}, err
	}
	eb, err := endpoints(b)
	if err != nil {
		return PathChoice{}, err
	}
	choose := func(x, y endpoint, rule PathRule, reason string) PathChoice {
		return PathChoice{A: a.Name, B: b.Name, IfA: x.name, IfB: y.name, AddrA: x.addr.addr, AddrB: y.addr.addr, Rule: rule, Reason: reason}
	}
	// why collects the reasons earlier rules did not apply; the chosen
	// rule's reason ends with them.
	var why []string

	// 1. A preferred interface both nodes have.
	var prefs []string
	for _, p := range []string{a.PrefNic, b.PrefNic} {
		if p != "" && !slices.ContainsFunc(prefs, func(q string) bool { return model.SameName(p, q) }) {
			prefs = append(prefs, p)
		}
	}
	for _, p := range prefs {
		x, okA := find(ea, p)
		y, okB := find(eb, p)
		switch {
		case okA && okB && sameFamily(x, y):
			return choose(x, y, RulePreferred, fmt.Sprintf("both nodes have interface %q, which %s", p, prefOwners(a, b, p))), nil
		case okA && okB:
			why = append(why, fmt.Sprintf("interface %q, which %s, is IPv4 on one node and IPv6 on the other", p, prefOwners(a, b, p)))
		case !okA:
			why = append(why, fmt.Sprintf("%s has no interface %q, which %s", a.Name, p, prefOwners(a, b, p)))
		default:
			why = append(why, fmt.Sprintf("%s has no interface %q, which %s", b.Name, p, prefOwners(a, b, p)))
		}
	}

	// 2. Two interfaces on a common subnet.
	type match struct {
		x, y endpoint
		net  netip.Prefix
	}
	var matches []match
	for _, x := range ea {
		for _, y := range eb {
			if n, ok := commonSubnet(x.addr, y.addr); ok {
				matches = append(matches, match{x, y, n})
			}
		}
	}
	if len(matches) > 0 {
		slices.SortStableFunc(matches, func(m, n match) int {
			same := func(m match) int {
				if model.SameName(m.x.name, m.y.name) {
					return 0
				}
				return 1
			}
			return cmp.Or(cmp.Compare(same(m), same(n)), cmp.Compare(n.net.Bits(), m.net.Bits()),
				strings.Compare(model.Key(m.x.name), model.Key(n.x.name)), strings.Compare(model.Key(m.y.name), model.Key(n.y.name)))
		})
		m := matches[0]
		return choose(m.x, m.y, RuleSubnet, withWhy(fmt.Sprintf("%s %q and %s %q share subnet %s", a.Name, m.x.name, b.Name, m.y.name, m.net), why)), nil
	}
	if len(prefs) > 0 {
		why = append(why, "no interfaces with known prefix lengths share a subnet")
	}

	// 3. The default interfaces.
	x, noteA := defaultEndpoint(a, ea)
	y, noteB := defaultEndpoint(b, eb)
	for _, n := range []string{noteA, noteB} {
		if n != "" {
			why = append(why, n)
		}
	}
	if sameFamily(x, y) {
		return choose(x, y, RuleDefault, withWhy("default interfaces", why)), nil
	}
	why = append(why, fmt.Sprintf("the default interfaces are %s on %s and %s on %s, different address families",
		x.addr.addr, a.Name, y.addr.addr, b.Name))
	return PathChoice{}, fmt.Errorf("no usable path between %s (%s) and %s (%s): %s; give both nodes an interface on a common network and set PrefNic to its name",
		a.Name, listEndpoints(ea), b.Name, listEndpoints(eb), strings.Join(why, "; "))
}

// prefOwners says whose PrefNic p is: "pve1 and pve2 prefer".
func prefOwners(a, b Node, p string) string {
	switch {
	case model.SameName(a.PrefNic, p) && model.SameName(b.PrefNic, p):
		return a.Name + " and " + b.Name + " prefer"
	case model.SameName(a.PrefNic, p):
		return a.Name + " prefers"
	}
	return b.Name + " prefers"
}

// withWhy appends why the earlier rules did not apply.
func withWhy(reason string, why []string) string {
	if len(why) == 0 {
		return reason
	}
	return reason + "; " + strings.Join(why, "; ")
}

// commonSubnet reports the subnet two addresses share. Both need the same
// family and a known prefix length on at least one side; where both are
// known, each prefix must contain the other address.
func commonSubnet(x, y ifAddr) (netip.Prefix, bool) {
	if x.addr.Is4() != y.addr.Is4() || (x.bits < 0 && y.bits < 0) {
		return netip.Prefix{}, false
	}
	var best netip.Prefix
	for _, side := range []struct {
		self  ifAddr
		other netip.Addr
	}{{x, y.addr}, {y, x.addr}} {
		if side.self.bits < 0 {
			continue
		}
		p := netip.PrefixFrom(side.self.addr, side.self.bits).Masked()
		if !p.Contains(side.other) {
			return netip.Prefix{}, false
		}
		if !best.IsValid() || p.Bits() > best.Bits() {
			best = p
		}
	}
	return best, true
}

// defaultEndpoint is LINSTOR's fallback: the interface named "default",
// else the first by name. The note says when the second applied.
func defaultEndpoint(n Node, eps []endpoint) (endpoint, string) {
	if e, ok := find(eps, model.DefaultNetInterface); ok {
		return e, ""
	}
	return eps[0], fmt.Sprintf("%s has no interface %q and uses its first, %q", n.Name, model.DefaultNetInterface, eps[0].name)
}

func listEndpoints(eps []endpoint) string {
	parts := make([]string, len(eps))
	for i, e := range eps {
		parts[i] = e.name + " " + e.addr.addr.String()
	}
	return strings.Join(parts, ", ")
}
