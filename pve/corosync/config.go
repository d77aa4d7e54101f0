package corosync

import (
	"fmt"
	"strconv"
)

// MaxLinks is how many knet links corosync supports: link numbers 0 to 7
// (KNET_MAX_LINK; Proxmox's MAX_LINK_INDEX is 7).
const MaxLinks = 8

// Config is a corosync.conf as Proxmox writes it. The fields are what
// pvehci reads and changes; everything else in the file is kept in the
// Extra items of the section it was found in, with its comments, and
// rendered back unchanged. A value a field cannot hold exactly (a repeated
// key, a number written as "01", an empty value) also stays in Extra, so
// that a parse and render never changes what corosync sees.
type Config struct {
	Totem    Totem
	Nodelist Nodelist
	Quorum   Quorum
	Logging  Logging
	// Extra holds the other top-level sections (system, resources,
	// nozzle, …) and any repeated totem/nodelist/quorum/logging section.
	Extra []Item
	meta
}

// Totem is the totem section.
type Totem struct {
	// Version is the totem protocol version; corosync 3 needs 2.
	Version int
	// ClusterName is cluster_name.
	ClusterName string
	// ConfigVersion is config_version. pmxcfs copies a new
	// /etc/pve/corosync.conf to the nodes only when it is set and higher
	// than (or equal to) the local copy's.
	ConfigVersion uint64
	// IPVersion is ip_version; Proxmox writes ipv4-6.
	IPVersion string
	// LinkMode is link_mode; Proxmox writes passive.
	LinkMode string
	// Secauth is secauth; Proxmox writes on.
	Secauth string
	// Interfaces are the interface subsections, one per knet link.
	Interfaces []Interface
	// Extra holds the totem keys pvehci does not model (token,
	// token_coefficient, crypto_cipher, keyfile, …).
	Extra []Item
	meta
}

// Interface is a totem interface subsection: the settings of one link.
type Interface struct {
	// LinkNumber is linknumber, 0 to 7.
	LinkNumber int
	// KnetLinkPriority is knet_link_priority, 1 to 255; 0 leaves it
	// unset, which corosync treats as 1. In passive mode the connected
	// link with the highest priority carries the traffic, and among equal
	// priorities the lowest link number wins.
	KnetLinkPriority int
	// Extra holds the other keys of the subsection.
	Extra []Item
	meta
}

// Nodelist is the nodelist section.
type Nodelist struct {
	Nodes []Node
	// Extra holds anything else in the nodelist.
	Extra []Item
	meta
}

// Node is one node subsection.
type Node struct {
	// Name is the node's name; Proxmox keys nodes by it, and corosync
	// needs it with more than one link.
	Name string
	// NodeID is nodeid; 0 leaves it unset (knet requires it).
	NodeID int
	// QuorumVotes is quorum_votes; 0 leaves it unset (corosync then
	// counts 1).
	QuorumVotes int
	// Rings are ring0_addr … ring7_addr, indexed by link number; "" is
	// unset.
	Rings [MaxLinks]string
	// Extra holds the node's other keys.
	Extra []Item
	meta
}

// Quorum is the quorum section.
type Quorum struct {
	// Provider is provider; Proxmox writes corosync_votequorum.
	Provider string
	// Extra holds the other quorum keys and subsections (device, …).
	Extra []Item
	meta
}

// Logging is the logging section.
type Logging struct {
	// Debug is debug; Proxmox writes off.
	Debug string
	// ToSyslog is to_syslog; Proxmox writes yes.
	ToSyslog string
	// Extra holds the other logging keys and logger_subsys subsections.
	Extra []Item
	meta
}

// meta is what a parse remembers about a section besides its values, so
// that comments and empty sections survive a round trip.
type meta struct {
	present bool                // the section was in the file
	before  []string            // comment lines before the section header
	notes   map[string][]string // comment lines before modeled keys
	lines   map[string]int      // lines of modeled keys
	trailer []string            // comment lines before the closing brace
	line    int                 // line of the section header
}

func (m meta) clone() meta {
	c := m
	c.before = cloneStrings(m.before)
	c.trailer = cloneStrings(m.trailer)
	if m.notes != nil {
		c.notes = make(map[string][]string, len(m.notes))
		for k, v := range m.notes {
			c.notes[k] = cloneStrings(v)
		}
	}
	if m.lines != nil {
		c.lines = make(map[string]int, len(m.lines))
		for k, v := range m.lines {
			c.lines[k] = v
		}
	}
	return c
}

// Parse reads a corosync.conf. It fails only on what corosync's own parser
// rejects; use [Validate] for the mistakes corosync accepts silently.
func Parse(data []byte) (*Config, error) {
	root, err := ParseTree(data)
	if err != nil {
		return nil, fmt.Errorf("parsing corosync.conf: %w", err)
	}
	return Decode(root), nil
}

// Render writes c in Proxmox's canonical layout (see [RenderTree]).
func Render(c *Config) []byte {
	return RenderTree(c.Tree())
}

// Decode turns a parsed tree into a Config. It never fails: whatever the
// fields cannot hold stays in the Extra items.
func Decode(root *Section) *Config {
	c := &Config{}
	c.meta = meta{present: true, trailer: cloneStrings(root.Trailer)}
	for _, it := range root.Items {
		if it.Section == nil {
			c.Extra = append(c.Extra, cloneItems([]Item{it})...)
			continue
		}
		switch {
		case it.Key == "totem" && !c.Totem.present:
			c.Totem = decodeTotem(it)
		case it.Key == "nodelist" && !c.Nodelist.present:
			c.Nodelist = decodeNodelist(it)
		case it.Key == "quorum" && !c.Quorum.present:
			c.Quorum = decodeQuorum(it)
		case it.Key == "logging" && !c.Logging.present:
			c.Logging = decodeLogging(it)
		default:
			c.Extra = append(c.Extra, cloneItems([]Item{it})...)
		}
	}
	return c
}

// field maps a modeled key to the code that stores its value; set reports
// false for a value the field cannot hold exactly.
type field struct {
	key string
	set func(v string) bool
}

// decodeFields stores the items that fields model and returns the rest.
// A key is modeled only when it appears once as a key and its value fits.
func decodeFields(it Item, m *meta, fields []field, sub func(Item) bool) []Item {
	*m = meta{present: true, before: cloneStrings(it.Comments), trailer: cloneStrings(it.Section.Trailer), line: it.Line}
	count := map[string]int{}
	for _, x := range it.Section.Items {
		count[x.Key]++
	}
	var extra []Item
next:
	for _, x := range it.Section.Items {
		if x.Section != nil {
			if sub != nil && sub(x) {
				continue
			}
			extra = append(extra, cloneItems([]Item{x})...)
			continue
		}
		for _, f := range fields {
			if f.key == x.Key && count[x.Key] == 1 && f.set(x.Value) {
				if len(x.Comments) > 0 {
					if m.notes == nil {
						m.notes = map[string][]string{}
					}
					m.notes[x.Key] = cloneStrings(x.Comments)
				}
				if m.lines == nil {
					m.lines = map[string]int{}
				}
				m.lines[x.Key] = x.Line
				continue next
			}
		}
		extra = append(extra, cloneItems([]Item{x})...)
	}
	return extra
}

func decodeTotem(it Item) Totem {
	var t Totem
	fields := []field{
		{"version", intField(&t.Version, 1, 1<<31-1)},
		{"cluster_name", strField(&t.ClusterName)},
		{"config_version", func(v string) bool {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil || n == 0 || strconv.FormatUint(n, 10) != v {
				return false
			}
			t.ConfigVersion = n
			return true
		}},
		{"ip_version", strField(&t.IPVersion)},
		{"link_mode", strField(&t.LinkMode)},
		{"secauth", strField(&t.Secauth)},
	}
	t.Extra = decodeFields(it, &t.meta, fields, func(x Item) bool {
		if x.Key != "interface" {
			return false
		}
		iface, ok := decodeInterface(x)
		if ok {
			t.Interfaces = append(t.Interfaces, iface)
		}
		return ok
	})
	return t
}

// decodeInterface fails for an interface without a usable linknumber,
// which then stays in the totem's Extra items as written.
func decodeInterface(it Item) (Interface, bool) {
	var f Interface
	link := -1
	fields := []field{
		{"linknumber", intField(&link, 0, MaxLinks-1)},
		{"knet_link_priority", intField(&f.KnetLinkPriority, 1, 255)},
	}
	f.Extra = decodeFields(it, &f.meta, fields, nil)
	if link < 0 {
		return Interface{}, false
	}
	f.LinkNumber = link
	return f, true
}

func decodeNodelist(it Item) Nodelist {
	var nl Nodelist
	nl.Extra = decodeFields(it, &nl.meta, nil, func(x Item) bool {
		if x.Key != "node" {
			return false
		}
		nl.Nodes = append(nl.Nodes, decodeNode(x))
		return true
	})
	return nl
}

func decodeNode(it Item) Node {
	var n Node
	fields := []field{
		{"name", strField(&n.Name)},
		{"nodeid", intField(&n.NodeID, 1, 1<<32-1)},
		{"quorum_votes", intField(&n.QuorumVotes, 1, 1<<31-1)},
	}
	for i := range n.Rings {
		fields = append(fields, field{ringKey(i), strField(&n.Rings[i])})
	}
	n.Extra = decodeFields(it, &n.meta, fields, nil)
	return n
}

func decodeQuorum(it Item) Quorum {
	var q Quorum
	q.Extra = decodeFields(it, &q.meta, []field{{"provider", strField(&q.Provider)}}, nil)
	return q
}

func decodeLogging(it Item) Logging {
	var l Logging
	l.Extra = decodeFields(it, &l.meta, []field{
		{"debug", strField(&l.Debug)},
		{"to_syslog", strField(&l.ToSyslog)},
	}, nil)
	return l
}

func strField(p *string) func(string) bool {
	return func(v string) bool {
		if v == "" {
			return false
		}
		*p = v
		return true
	}
}

// intField accepts only canonical decimals in [lo, hi], so that rendering
// the number gives back the same text.
func intField(p *int, lo, hi int) func(string) bool {
	return func(v string) bool {
		n, err := strconv.Atoi(v)
		if err != nil || n < lo || n > hi || strconv.Itoa(n) != v {
			return false
		}
		*p = n
		return true
	}
}

func ringKey(link int) string { return "ring" + strconv.Itoa(link) + "_addr" }

// Tree returns c as a generic tree: the fields as items, then the Extra
// items. A set field replaces Extra keys of the same name.
func (c *Config) Tree() *Section {
	root := &Section{Trailer: cloneStrings(c.trailer)}
	add := func(key string, m meta, sec *Section) {
		if !m.present && len(sec.Items) == 0 && len(sec.Trailer) == 0 {
			return
		}
		root.Items = append(root.Items, Item{Comments: cloneStrings(m.before), Key: key, Section: sec, Line: m.line})
	}
	add("totem", c.Totem.meta, c.Totem.section())
	add("nodelist", c.Nodelist.meta, c.Nodelist.section())
	add("quorum", c.Quorum.meta, c.Quorum.section())
	add("logging", c.Logging.meta, c.Logging.section())
	root.Items = append(root.Items, cloneItems(c.Extra)...)
	return root
}

// kv is a modeled key and its rendered value; "" means unset.
type kv struct{ key, value string }

// encode builds a section body from modeled values, subsections and the
// Extra items.
func encode(m meta, values []kv, subs []Item, extra []Item) *Section {
	s := &Section{Trailer: cloneStrings(m.trailer)}
	set := map[string]bool{}
	for _, v := range values {
		if v.value == "" {
			continue
		}
		set[v.key] = true
		s.Items = append(s.Items, Item{Comments: cloneStrings(m.notes[v.key]), Key: v.key, Value: v.value, Line: m.lines[v.key]})
	}
	s.Items = append(s.Items, subs...)
	for _, x := range extra {
		if x.Section == nil && set[x.Key] {
			continue
		}
		s.Items = append(s.Items, cloneItems([]Item{x})...)
	}
	return s
}

func itoa0(n int) string {
	if n == 0 {
		return ""
	}
	return strconv.Itoa(n)
}

func (t *Totem) section() *Section {
	var subs []Item
	for i := range t.Interfaces {
		f := &t.Interfaces[i]
		subs = append(subs, Item{Comments: cloneStrings(f.before), Key: "interface", Section: f.section(), Line: f.line})
	}
	cv := ""
	if t.ConfigVersion != 0 {
		cv = strconv.FormatUint(t.ConfigVersion, 10)
	}
	return encode(t.meta, []kv{
		{"version", itoa0(t.Version)},
		{"cluster_name", t.ClusterName},
		{"config_version", cv},
		{"ip_version", t.IPVersion},
		{"link_mode", t.LinkMode},
		{"secauth", t.Secauth},
	}, subs, t.Extra)
}

func (f *Interface) section() *Section {
	return encode(f.meta, []kv{
		{"linknumber", strconv.Itoa(f.LinkNumber)},
		{"knet_link_priority", itoa0(f.KnetLinkPriority)},
	}, nil, f.Extra)
}

func (nl *Nodelist) section() *Section {
	var subs []Item
	for i := range nl.Nodes {
		n := &nl.Nodes[i]
		subs = append(subs, Item{Comments: cloneStrings(n.before), Key: "node", Section: n.section(), Line: n.line})
	}
	return encode(nl.meta, nil, subs, nl.Extra)
}

func (n *Node) section() *Section {
	values := []kv{
		{"name", n.Name},
		{"nodeid", itoa0(n.NodeID)},
		{"quorum_votes", itoa0(n.QuorumVotes)},
	}
	for i, a := range n.Rings {
		values = append(values, kv{ringKey(i), a})
	}
	return encode(n.meta, values, nil, n.Extra)
}

func (q *Quorum) section() *Section {
	return encode(q.meta, []kv{{"provider", q.Provider}}, nil, q.Extra)
}

func (l *Logging) section() *Section {
	return encode(l.meta, []kv{{"debug", l.Debug}, {"to_syslog", l.ToSyslog}}, nil, l.Extra)
}

// Clone returns a deep copy of c.
func (c *Config) Clone() *Config {
	out := &Config{
		Totem:    c.Totem,
		Nodelist: c.Nodelist,
		Quorum:   c.Quorum,
		Logging:  c.Logging,
		Extra:    cloneItems(c.Extra),
		meta:     c.meta.clone(),
	}
	out.Totem.meta = c.Totem.meta.clone()
	out.Totem.Extra = cloneItems(c.Totem.Extra)
	out.Totem.Interfaces = nil
	for _, f := range c.Totem.Interfaces {
		f.Extra = cloneItems(f.Extra)
		f.meta = f.meta.clone()
		out.Totem.Interfaces = append(out.Totem.Interfaces, f)
	}
	out.Nodelist.meta = c.Nodelist.meta.clone()
	out.Nodelist.Extra = cloneItems(c.Nodelist.Extra)
	out.Nodelist.Nodes = nil
	for _, n := range c.Nodelist.Nodes {
		n.Extra = cloneItems(n.Extra)
		n.meta = n.meta.clone()
		out.Nodelist.Nodes = append(out.Nodelist.Nodes, n)
	}
	out.Quorum.meta = c.Quorum.meta.clone()
	out.Quorum.Extra = cloneItems(c.Quorum.Extra)
	out.Logging.meta = c.Logging.meta.clone()
	out.Logging.Extra = cloneItems(c.Logging.Extra)
	return out
}

// Node returns the node named name, or nil.
func (c *Config) Node(name string) *Node {
	for i := range c.Nodelist.Nodes {
		if c.Nodelist.Nodes[i].Name == name {
			return &c.Nodelist.Nodes[i]
		}
	}
	return nil
}

// Interface returns the interface subsection of link, or nil.
func (c *Config) Interface(link int) *Interface {
	for i := range c.Totem.Interfaces {
		if c.Totem.Interfaces[i].LinkNumber == link {
			return &c.Totem.Interfaces[i]
		}
	}
	return nil
}

// Links returns the link numbers node has an address for, in order.
func (n *Node) Links() []int {
	var links []int
	for i, a := range n.Rings {
		if a != "" {
			links = append(links, i)
		}
	}
	return links
}
