package corosync

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Problem is one mistake in a corosync.conf.
type Problem struct {
	// Line is the line in the parsed file; 0 when the item was not
	// parsed from a file (built or changed in code).
	Line int
	// Path names the item, e.g. "totem.interface.knet_link_priorty" or
	// "nodelist.node[pve2].ring1_addr".
	Path string
	// Msg says what is wrong and what to do.
	Msg string
}

func (p Problem) String() string {
	var b strings.Builder
	if p.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", p.Line)
	}
	if p.Path != "" {
		b.WriteString(p.Path + ": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// InvalidError is the error of [Validate].
type InvalidError struct {
	Problems []Problem
}

func (e *InvalidError) Error() string {
	var b strings.Builder
	if len(e.Problems) == 1 {
		b.WriteString("corosync.conf is not valid: ")
		b.WriteString(e.Problems[0].String())
		return b.String()
	}
	fmt.Fprintf(&b, "corosync.conf has %d problems:", len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n\t" + p.String())
	}
	return b.String()
}

// Validate checks c for the mistakes corosync -t accepts without a word
// (unknown keys, the same address on two nodes) and for those it rejects
// with a message that does not say which node is wrong (nodes with
// different links, a repeated nodeid, more than 8 links), plus what
// Proxmox needs on top (a readable config_version, an interface section
// for every link, no repeated sections). It returns an *[InvalidError]
// listing every problem, or nil.
func Validate(c *Config) error {
	if ps := Problems(c); len(ps) > 0 {
		return &InvalidError{Problems: ps}
	}
	return nil
}

// Problems is [Validate] as a list; empty when c is valid.
func Problems(c *Config) []Problem {
	root := c.Tree()
	var ps []Problem
	ps = append(ps, checkKeys(root, corosyncSchema(), "", "")...)
	ps = append(ps, checkTotem(root)...)
	ps = append(ps, checkNodes(root)...)
	return ps
}

var ringKeyRE = regexp.MustCompile(`^ring(\d+)_addr$`)

// checkKeys reports unknown and repeated keys and sections below s. path
// is the schema path ("nodelist.node"), shown the display path
// ("nodelist.node[pve2]").
func checkKeys(s *Section, sch *schema, path, shown string) []Problem {
	var ps []Problem
	keyCount := map[string]int{}
	secCount := map[string]int{}
	for _, it := range s.Items {
		p := joinPath(shown, it.Key)
		if it.Section != nil {
			secCount[it.Key]++
			sub := sch.subs[it.Key]
			if sub == nil {
				ps = append(ps, Problem{it.Line, p, "unknown section; corosync ignores it without a word (check the spelling, or remove it)"})
				continue
			}
			if secCount[it.Key] == 2 && it.Key != "node" && it.Key != "interface" {
				ps = append(ps, Problem{it.Line, p, "section appears more than once; Proxmox refuses to read such a file (only node and interface may repeat), merge the sections"})
			}
			ps = append(ps, checkKeys(it.Section, sub, joinPath(path, it.Key), p+label(it))...)
			continue
		}
		keyCount[it.Key]++
		if keyCount[it.Key] == 2 {
			ps = append(ps, Problem{it.Line, p, "key appears more than once; corosync uses only the last value, delete the others"})
		}
		if m := ringKeyRE.FindStringSubmatch(it.Key); m != nil && path == "nodelist.node" {
			continue // checkNodes reports links out of range
		}
		if !sch.hasKey(it.Key) {
			ps = append(ps, Problem{it.Line, p, "unknown key; corosync ignores it without a word (check the spelling, or remove it)" + unknownHint(path, it.Key)})
		}
	}
	return ps
}

// label tells repeated sections apart in a path: node[NAME],
// interface[LINK].
func label(it Item) string {
	var v string
	switch it.Key {
	case "node":
		v, _ = it.Section.Get("name")
	case "interface":
		v, _ = it.Section.Get("linknumber")
	}
	if v == "" {
		return ""
	}
	return "[" + v + "]"
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// sections returns the subsections of s named key.
func sections(s *Section, key string) []Item {
	var out []Item
	if s == nil {
		return nil
	}
	for _, it := range s.Items {
		if it.Key == key && it.Section != nil {
			out = append(out, it)
		}
	}
	return out
}

func checkTotem(root *Section) []Problem {
	totems := sections(root, "totem")
	if len(totems) == 0 {
		return []Problem{{0, "totem", "missing; corosync needs a totem section"}}
	}
	t := totems[0]
	var ps []Problem
	v, ok := t.Section.Get("config_version")
	if n, err := strconv.ParseUint(v, 10, 64); !ok || err != nil || n == 0 {
		line := t.Line
		for _, it := range t.Section.Items {
			if it.Key == "config_version" {
				line = it.Line
			}
		}
		ps = append(ps, Problem{line, "totem.config_version", "missing or not a positive number; pmxcfs copies /etc/pve/corosync.conf to the nodes only when it can read one, set it to 1 more than the running cluster's"})
	}
	seen := map[string]int{}
	for _, f := range sections(t.Section, "interface") {
		ln, ok := f.Section.Get("linknumber")
		p := "totem.interface"
		if !ok {
			ps = append(ps, Problem{f.Line, p, "interface section without linknumber; add linknumber: N for the link it configures"})
			continue
		}
		p = "totem.interface[" + ln + "]"
		n, err := strconv.Atoi(ln)
		if err != nil || n < 0 || n >= MaxLinks {
			ps = append(ps, Problem{f.Line, p, fmt.Sprintf("linknumber %q is out of range; corosync supports at most %d links, numbered 0 to %d", ln, MaxLinks, MaxLinks-1)})
			continue
		}
		seen[ln]++
		if seen[ln] == 2 {
			ps = append(ps, Problem{f.Line, p, "two interface sections for the same link; merge them"})
		}
	}
	return ps
}

// nodeLink is one address of one node.
type nodeLink struct {
	node string
	link int
}

func checkNodes(root *Section) []Problem {
	var ps []Problem
	nodelists := sections(root, "nodelist")
	if len(nodelists) == 0 {
		return []Problem{{0, "nodelist", "missing; Proxmox clusters list their nodes"}}
	}
	nodes := sections(nodelists[0].Section, "node")
	if len(nodes) == 0 {
		return []Problem{{nodelists[0].Line, "nodelist", "no node sections"}}
	}
	type nodeInfo struct {
		label string
		line  int
		links []int
	}
	var infos []nodeInfo
	ids := map[string]string{}
	names := map[string]bool{}
	addrs := map[string]nodeLink{}
	maxLinks := 0
	for i, n := range nodes {
		name, hasName := n.Section.Get("name")
		label := name
		if !hasName || name == "" {
			label = fmt.Sprintf("#%d", i+1)
		}
		path := "nodelist.node[" + label + "]"
		if hasName && name != "" {
			if names[name] {
				ps = append(ps, Problem{n.Line, path, "two nodes have this name; names must be unique"})
			}
			names[name] = true
		}
		switch id, ok := n.Section.Get("nodeid"); {
		case !ok || id == "":
			ps = append(ps, Problem{n.Line, path, "no nodeid; knet needs one per node"})
		case ids[id] != "":
			ps = append(ps, Problem{n.Line, path, fmt.Sprintf("nodeid %s is also used by node %s; nodeids must be unique", id, ids[id])})
		default:
			ids[id] = label
		}
		info := nodeInfo{label: label, line: n.Line}
		for _, it := range n.Section.Items {
			m := ringKeyRE.FindStringSubmatch(it.Key)
			if m == nil || it.Section != nil {
				continue
			}
			link, _ := strconv.Atoi(m[1])
			if link >= MaxLinks || len(m[1]) > 1 && m[1][0] == '0' {
				ps = append(ps, Problem{it.Line, path + "." + it.Key, fmt.Sprintf("link %s is out of range; corosync supports at most %d links, numbered 0 to %d", m[1], MaxLinks, MaxLinks-1)})
				continue
			}
			if it.Value == "" {
				ps = append(ps, Problem{it.Line, path + "." + it.Key, "empty address"})
				continue
			}
			if !slices.Contains(info.links, link) {
				info.links = append(info.links, link)
			}
			key := it.Value
			if a, err := netip.ParseAddr(it.Value); err == nil {
				key = a.Unmap().String()
			}
			if prev, dup := addrs[key]; dup {
				ps = append(ps, Problem{it.Line, path + "." + it.Key, fmt.Sprintf("address %s is also link %d of node %s; every link of every node needs its own address", it.Value, prev.link, prev.node)})
			} else {
				addrs[key] = nodeLink{node: label, link: link}
			}
		}
		sort.Ints(info.links)
		if len(info.links) > maxLinks {
			maxLinks = len(info.links)
		}
		if len(info.links) > 1 && (!hasName || name == "") {
			ps = append(ps, Problem{n.Line, path, "no name; with more than one link corosync needs a name on every node"})
		}
		infos = append(infos, info)
	}

	// Every node must have the same links: corosync refuses a different
	// number of links ("Not all nodes have the same number of links")
	// without naming the node, and Proxmox refuses different link
	// numbers.
	union := map[int]bool{}
	for _, in := range infos {
		for _, l := range in.links {
			union[l] = true
		}
	}
	all := make([]int, 0, len(union))
	for l := range union {
		all = append(all, l)
	}
	sort.Ints(all)
	for _, in := range infos {
		var missing []string
		for _, l := range all {
			if !slices.Contains(in.links, l) {
				missing = append(missing, strconv.Itoa(l))
			}
		}
		if len(missing) > 0 {
			ps = append(ps, Problem{in.line, "nodelist.node[" + in.label + "]", fmt.Sprintf("no address for link %s, which other nodes have; every node needs an address on every link (add ring%s_addr)", strings.Join(missing, ", "), missing[0])})
		}
	}

	// Proxmox (PVE::Corosync::verify_conf) wants an interface section
	// for every link with addresses, and no interface without them, as
	// soon as there is any interface section.
	if totems := sections(root, "totem"); len(totems) > 0 {
		ifaces := sections(totems[0].Section, "interface")
		declared := map[int]int{}
		for _, f := range ifaces {
			if ln, ok := f.Section.Get("linknumber"); ok {
				if n, err := strconv.Atoi(ln); err == nil {
					declared[n] = f.Line
				}
			}
		}
		if len(ifaces) > 0 {
			for _, l := range all {
				if _, ok := declared[l]; !ok {
					ps = append(ps, Problem{totems[0].Line, "totem", fmt.Sprintf("nodes have addresses for link %d but there is no interface section for it; add interface { linknumber: %d }", l, l)})
				}
			}
			links := make([]int, 0, len(declared))
			for l := range declared {
				links = append(links, l)
			}
			sort.Ints(links)
			for _, l := range links {
				if !union[l] {
					ps = append(ps, Problem{declared[l], fmt.Sprintf("totem.interface[%d]", l), fmt.Sprintf("no node has an address for link %d; remove the section or add ring%d_addr to every node", l, l)})
				}
			}
		}
	}
	return ps
}
