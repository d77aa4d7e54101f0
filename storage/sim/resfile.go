package sim

import (
	"fmt"
	"strconv"
	"strings"
)

// confError is a configuration error in drbdadm's words, which end with
// a full stop (testbed-local.md §2).
type confError string

func (e confError) Error() string { return string(e) }

// section is one `keyword args… { … }` block of a drbd.conf file; a
// statement `keyword args…;` is a section without a body.
type section struct {
	words    []string
	children []*section
	body     bool
	line     int // of the first word, for messages
}

func (s *section) key() string {
	if len(s.words) == 0 {
		return ""
	}
	return s.words[0]
}

// parseConfText splits a drbd.conf(5) text into sections: words,
// "quoted strings", '#' comments to the end of the line, '{', '}', ';'.
// Errors use drbdadm's wording where it has one (testbed-local.md §2).
func parseConfText(file, text string) ([]*section, error) {
	var toks []string
	var lines []int
	line := 1
	for i := 0; i < len(text); {
		c := text[i]
		switch {
		case c == '\n':
			line++
			i++
		case c == ' ' || c == '\t' || c == '\r':
			i++
		case c == '#':
			for i < len(text) && text[i] != '\n' {
				i++
			}
		case c == '{' || c == '}' || c == ';':
			toks, lines = append(toks, string(c)), append(lines, line)
			i++
		case c == '"':
			j := strings.IndexByte(text[i+1:], '"')
			if j < 0 {
				return nil, fmt.Errorf("%s:%d: unterminated string", file, line)
			}
			toks, lines = append(toks, text[i+1:i+1+j]), append(lines, line)
			i += j + 2
		default:
			j := i
			for j < len(text) && !strings.ContainsRune(" \t\r\n{};#\"", rune(text[j])) {
				j++
			}
			toks, lines = append(toks, text[i:j]), append(lines, line)
			i = j
		}
	}
	pos := 0
	var parse func(depth int) ([]*section, error)
	parse = func(depth int) ([]*section, error) {
		var out []*section
		cur := &section{}
		for pos < len(toks) {
			t := toks[pos]
			pos++
			switch t {
			case ";":
				if len(cur.words) > 0 {
					out = append(out, cur)
				}
				cur = &section{}
			case "{":
				cur.body = true
				ch, err := parse(depth + 1)
				if err != nil {
					return nil, err
				}
				cur.children = ch
				out = append(out, cur)
				cur = &section{}
			case "}":
				if depth == 0 {
					return nil, fmt.Errorf("%s:%d: Parse error: unexpected '}'", file, lines[pos-1])
				}
				if len(cur.words) > 0 {
					return nil, fmt.Errorf("%s:%d: Parse error: ';' expected, but got '}'", file, lines[pos-1])
				}
				return out, nil
			default:
				if len(cur.words) == 0 {
					cur.line = lines[pos-1]
				}
				cur.words = append(cur.words, t)
			}
		}
		if depth > 0 || len(cur.words) > 0 {
			return nil, fmt.Errorf("%s:%d: Parse error: unexpected end of file", file, line)
		}
		return out, nil
	}
	return parse(0)
}

// resConfig is the subset of a DRBD resource that storage/drbd renders.
type resConfig struct {
	name    string
	options map[string]string // options { }
	net     map[string]string
	nodes   []*resNode
	paths   []resPath
}

type resNode struct {
	name    string
	nodeID  int
	volumes []resVolume
}

type resVolume struct {
	number int
	minor  int
	disk   string // "" for disk none
}

// resPath is one path of a connection: the two hosts and their addresses
// as drbdsetup prints them (ipv4:10.0.0.1:7000).
type resPath struct {
	hosts [2]string
	addrs [2]string
}

func (c *resConfig) node(name string) *resNode {
	for _, n := range c.nodes {
		if n.name == name {
			return n
		}
	}
	return nil
}

func (c *resConfig) nodeByID(id int) *resNode {
	for _, n := range c.nodes {
		if n.nodeID == id {
			return n
		}
	}
	return nil
}

func (n *resNode) diskful() bool {
	for _, v := range n.volumes {
		if v.disk != "" {
			return true
		}
	}
	return false
}

// pathBetween returns the addresses of the first path between a and b,
// a's side first.
func (c *resConfig) pathBetween(a, b string) (local, peer string, ok bool) {
	for _, p := range c.paths {
		switch {
		case p.hosts[0] == a && p.hosts[1] == b:
			return p.addrs[0], p.addrs[1], true
		case p.hosts[0] == b && p.hosts[1] == a:
			return p.addrs[1], p.addrs[0], true
		}
	}
	return "", "", false
}

func intArg(file string, s *section, i int) (int, error) {
	if len(s.words) <= i {
		return 0, fmt.Errorf("%s: %s: value expected", file, s.key())
	}
	n, err := strconv.Atoi(s.words[i])
	if err != nil {
		return 0, confError(fmt.Sprintf("%s: Parse error: while parsing value ('%s') for %s. Value is not valid.", file, s.words[i], s.key()))
	}
	return n, nil
}

// parseResFile reads the resources of a .res file.
func parseResFile(file, text string) ([]*resConfig, error) {
	top, err := parseConfText(file, text)
	if err != nil {
		return nil, err
	}
	var out []*resConfig
	for _, s := range top {
		if s.key() != "resource" || len(s.words) != 2 || !s.body {
			return nil, fmt.Errorf("%s: Parse error: 'resource' expected, but got '%s'", file, strings.Join(s.words, " "))
		}
		c := &resConfig{name: s.words[1], options: map[string]string{}, net: map[string]string{}}
		for _, ch := range s.children {
			switch ch.key() {
			case "options", "net", "disk":
				m := c.options
				if ch.key() == "net" {
					m = c.net
				}
				for _, o := range ch.children {
					if len(o.words) == 2 {
						m[o.words[0]] = o.words[1]
					}
				}
			case "on":
				if len(ch.words) != 2 {
					return nil, fmt.Errorf("%s: in resource %s: 'on' needs one host name", file, c.name)
				}
				n := &resNode{name: ch.words[1], nodeID: -1}
				for _, o := range ch.children {
					switch o.key() {
					case "node-id":
						if n.nodeID, err = intArg(file, o, 1); err != nil {
							return nil, err
						}
					case "volume":
						v, err := parseVolume(file, o)
						if err != nil {
							return nil, err
						}
						n.volumes = append(n.volumes, v)
					case "address":
					default:
						return nil, fmt.Errorf("%s: in resource %s, on %s: unknown keyword '%s'", file, c.name, n.name, o.key())
					}
				}
				if n.nodeID < 0 {
					return nil, confError(fmt.Sprintf("%s: in resource %s, on %s { ... }: 'node-id' keyword missing.", file, c.name, n.name))
				}
				if other := c.nodeByID(n.nodeID); other != nil {
					return nil, fmt.Errorf("%s: conflicting use of node-id '%s:%d'", file, c.name, n.nodeID)
				}
				c.nodes = append(c.nodes, n)
			case "connection":
				for _, p := range ch.children {
					if p.key() != "path" {
						continue
					}
					var rp resPath
					k := 0
					for _, h := range p.children {
						// host NAME address [ipv4|ipv6] ADDR:PORT
						if h.key() != "host" || len(h.words) < 4 || h.words[2] != "address" || k == 2 {
							return nil, fmt.Errorf("%s: in resource %s: path needs to have two endpoints", file, c.name)
						}
						af, addr := "ipv4", h.words[3]
						if len(h.words) == 5 {
							af, addr = h.words[3], h.words[4]
						}
						rp.hosts[k], rp.addrs[k] = h.words[1], af+":"+addr
						k++
					}
					if k != 2 {
						return nil, fmt.Errorf("%s: in resource %s: path needs to have two endpoints", file, c.name)
					}
					c.paths = append(c.paths, rp)
				}
			default:
				return nil, fmt.Errorf("%s: in resource %s: '%s' is not modelled by pvehci's storage simulation", file, c.name, ch.key())
			}
		}
		for _, p := range c.paths {
			for _, h := range p.hosts {
				if c.node(h) == nil {
					return nil, fmt.Errorf("%s: in resource %s: a hostname (%q) is given with a \"host\" keyword, has no \"address\" keyword, and no matching host section", file, c.name, h)
				}
			}
		}
		out = append(out, c)
	}
	return out, nil
}

func parseVolume(file string, s *section) (resVolume, error) {
	v := resVolume{minor: -1}
	var err error
	if v.number, err = intArg(file, s, 1); err != nil {
		return v, err
	}
	for _, o := range s.children {
		switch {
		case o.key() == "device" && len(o.words) == 3 && o.words[1] == "minor":
			if v.minor, err = intArg(file, o, 2); err != nil {
				return v, err
			}
		case o.key() == "disk" && !o.body && len(o.words) == 2:
			if o.words[1] != "none" {
				v.disk = o.words[1]
			}
		case o.key() == "disk" && o.body, o.key() == "meta-disk":
		default:
			return v, fmt.Errorf("%s: Parse error: 'device | disk | meta-disk | flex-meta-disk | }' expected, but got '%s'", file, o.key())
		}
	}
	if v.minor < 0 {
		return v, fmt.Errorf("%s: volume %d: device minor missing", file, v.number)
	}
	return v, nil
}
