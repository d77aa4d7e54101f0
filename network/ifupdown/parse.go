package ifupdown

import (
	"strings"
)

// Kind is what a [Block] of an interfaces file is.
type Kind int

const (
	// KindOther is any other line: a comment, a blank line, source,
	// allow-hotplug, mapping and its lines, or text ifupdown2 would
	// reject. Other blocks are one line each.
	KindOther Kind = iota
	// KindAuto is an "auto" or "allow-auto" line.
	KindAuto
	// KindIface is an "iface" stanza: its header line and every line up
	// to its last option.
	KindIface
)

// File is an interfaces file as a sequence of blocks whose lines,
// concatenated, are the file byte for byte.
type File struct {
	Blocks []Block
	// noEOL is set when the last line has no newline.
	noEOL bool
}

// Block is a run of lines of the file.
type Block struct {
	Kind Kind
	// Lines are the lines exactly as in the file, without their "\n".
	Lines []string
	// Name, Family and Method are from an iface header ("iface NAME
	// FAMILY METHOD"); Family is "inet" when the header omits it.
	Name, Family, Method string
	// Names are the interfaces an auto line names.
	Names []string
}

// Options returns the "key value" lines of an iface stanza in order,
// leaving out comments and blank lines.
func (b Block) Options() []Option {
	if b.Kind != KindIface {
		return nil
	}
	var out []Option
	for _, l := range b.Lines[1:] {
		t := strings.TrimSpace(l)
		if t == "" || t[0] == '#' {
			continue
		}
		k, v := t, ""
		if i := strings.IndexAny(t, " \t"); i >= 0 {
			k, v = t[:i], strings.TrimSpace(t[i:])
		}
		out = append(out, Option{Key: k, Value: v})
	}
	return out
}

// Get returns the value of the stanza's first option key (ifupdown2 also
// accepts underscores for dashes).
func (b Block) Get(key string) (string, bool) {
	for _, o := range b.Options() {
		if strings.ReplaceAll(o.Key, "_", "-") == key {
			return o.Value, true
		}
	}
	return "", false
}

// isKeyword reports whether a line's first word starts a new stanza or
// top-level line, ending the iface stanza before it. These are
// ifupdown2's keywords (iface, auto, allow-*, source, vlan) plus the
// classic ifupdown ones Proxmox's parser also knows (source-directory,
// mapping, …). ifupdown2 3.0.0 would read a source-directory line as an
// option of the stanza above; treating it as a boundary keeps a replaced
// stanza from swallowing (and so deleting) the admin's line.
func isKeyword(w string) bool {
	switch w {
	case "iface", "auto", "source", "source-directory", "mapping", "vlan", "rename", "no-auto-down", "no-scripts", "template":
		return true
	}
	return strings.HasPrefix(w, "allow-")
}

// Parse splits an interfaces file into blocks. It never fails: lines it
// does not understand are kept as they are. An iface stanza runs, as in
// ifupdown2, from its header to its last option line before the next
// keyword; comments and blank lines inside it belong to it, those after its
// last option do not.
func Parse(data []byte) *File {
	f := &File{}
	s := string(data)
	if s == "" {
		return f
	}
	if !strings.HasSuffix(s, "\n") {
		f.noEOL = true
	} else {
		s = s[:len(s)-1]
	}
	lines := strings.Split(s, "\n")
	for i := 0; i < len(lines); {
		fields := strings.Fields(lines[i])
		w := ""
		if len(fields) > 0 {
			w = fields[0]
		}
		switch {
		case w == "iface" && len(fields) >= 2:
			last := i
			for j := i + 1; j < len(lines); j++ {
				t := strings.TrimSpace(lines[j])
				if t == "" || t[0] == '#' {
					continue
				}
				if isKeyword(strings.Fields(t)[0]) {
					break
				}
				last = j
			}
			b := Block{Kind: KindIface, Lines: lines[i : last+1 : last+1], Name: fields[1], Family: "inet"}
			if len(fields) >= 3 {
				b.Family = fields[2]
			}
			if len(fields) >= 4 {
				b.Method = fields[3]
			}
			f.Blocks = append(f.Blocks, b)
			i = last + 1
		case (w == "auto" || w == "allow-auto") && len(fields) >= 2:
			f.Blocks = append(f.Blocks, Block{Kind: KindAuto, Lines: lines[i : i+1 : i+1], Names: fields[1:]})
			i++
		default:
			f.Blocks = append(f.Blocks, Block{Kind: KindOther, Lines: lines[i : i+1 : i+1]})
			i++
		}
	}
	return f
}

// Bytes returns the file.
func (f *File) Bytes() []byte {
	var b strings.Builder
	n := 0
	for _, bl := range f.Blocks {
		for _, l := range bl.Lines {
			if n > 0 {
				b.WriteString("\n")
			}
			b.WriteString(l)
			n++
		}
	}
	if n > 0 && !f.noEOL {
		b.WriteString("\n")
	}
	return []byte(b.String())
}

// Ifaces returns the iface stanzas.
func (f *File) Ifaces() []Block {
	var out []Block
	for _, b := range f.Blocks {
		if b.Kind == KindIface {
			out = append(out, b)
		}
	}
	return out
}

// IsAuto reports whether an auto line names name.
func (f *File) IsAuto(name string) bool {
	for _, b := range f.Blocks {
		if b.Kind == KindAuto {
			for _, n := range b.Names {
				if n == name {
					return true
				}
			}
		}
	}
	return false
}
