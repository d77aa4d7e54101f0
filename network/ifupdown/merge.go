package ifupdown

import (
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// SourceLine is the line Proxmox's installer (since 8.1) ends
// /etc/network/interfaces with; SDN needs it too.
const SourceLine = "source /etc/network/interfaces.d/*"

// MergeOptions adjusts [Merge].
type MergeOptions struct {
	// Remove names interfaces whose stanzas (every family) and auto
	// entries are taken out of the file, because pvehci now configures
	// them in another file (an IPoIB port moving to interfaces.d).
	Remove []string
	// Include, when set, is a file the interfaces file must read, such as
	// /etc/network/interfaces.d/pvehci. When no source line covers it,
	// SourceLine is appended.
	Include string
}

// Merge puts the stanzas pvehci owns into an existing interfaces file and
// leaves everything else byte for byte: comments, order, blank lines,
// stanzas of other interfaces, source lines, even lines ifupdown2 would
// reject. A stanza is owned by its name and family: an existing "iface
// NAME FAMILY" stanza is replaced in place (an inet6 stanza of the same
// interface is not touched), and a new one is added after the last iface
// stanza and the comment lines directly below it. When Stanza.Auto is set
// and no auto line names the interface, "auto NAME" goes in front of the
// stanza; existing auto lines are left alone (auto on a bond's NIC, which
// pvehci writes without, is harmless), except for the interfaces in
// MergeOptions.Remove.
//
// It refuses when the result would have a NIC in two bonds or bridges, or
// an address on a port pvehci enslaves, which Proxmox's network writer
// refuses too (and the GUI could then no longer save the network), and
// when an owned stanza appears twice in the file.
func Merge(existing []byte, owned []Stanza, opts MergeOptions) ([]byte, error) {
	out, err := merge(existing, owned, opts)
	if err != nil {
		return nil, fmt.Errorf("merging pvehci's stanzas into the interfaces file: %w", err)
	}
	return out, nil
}

type stanzaKey struct{ name, family string }

func merge(existing []byte, owned []Stanza, opts MergeOptions) ([]byte, error) {
	f := Parse(existing)
	ownedNames := map[string]bool{}
	seen := map[stanzaKey]bool{}
	for _, s := range owned {
		k := stanzaKey{s.Name, s.family()}
		if seen[k] {
			return nil, fmt.Errorf("stanza %s %s is given twice", s.Name, s.family())
		}
		seen[k] = true
		ownedNames[s.Name] = true
		if slices.Contains(opts.Remove, s.Name) {
			return nil, fmt.Errorf("interface %s is both to be written and removed", s.Name)
		}
	}

	for _, name := range opts.Remove {
		f.removeIface(name)
		f.removeAuto(name)
	}

	var pending []Stanza
	for _, s := range owned {
		var at []int
		for i, b := range f.Blocks {
			if b.Kind == KindIface && b.Name == s.Name && b.Family == s.family() {
				at = append(at, i)
			}
		}
		switch len(at) {
		case 0:
			pending = append(pending, s)
			continue
		case 1:
		default:
			return nil, fmt.Errorf("the file has %d stanzas \"iface %s %s\"; merge them into one by hand first", len(at), s.Name, s.family())
		}
		i := at[0]
		f.Blocks[i] = Block{Kind: KindIface, Lines: s.ifaceLines(), Name: s.Name, Family: s.family(), Method: s.Method}
		if s.Auto && !f.IsAuto(s.Name) {
			f.insert(i, Block{Kind: KindAuto, Lines: []string{"auto " + s.Name}, Names: []string{s.Name}})
		}
	}

	if len(pending) > 0 {
		at := f.insertionPoint()
		var add []Block
		for _, s := range pending {
			add = append(add, Block{Kind: KindOther, Lines: []string{""}})
			if s.Auto && !f.IsAuto(s.Name) {
				add = append(add, Block{Kind: KindAuto, Lines: []string{"auto " + s.Name}, Names: []string{s.Name}})
			}
			add = append(add, Block{Kind: KindIface, Lines: s.ifaceLines(), Name: s.Name, Family: s.family(), Method: s.Method})
		}
		if at == 0 {
			add = add[1:] // no blank line at the top of the file
		}
		f.Blocks = slices.Insert(f.Blocks, at, add...)
		if at == len(f.Blocks)-len(add) {
			f.noEOL = false
		}
	}

	if opts.Include != "" && !f.includes(opts.Include) {
		if n := len(f.Blocks); n > 0 && !isBlank(f.Blocks[n-1]) {
			f.Blocks = append(f.Blocks, Block{Kind: KindOther, Lines: []string{""}})
		}
		f.Blocks = append(f.Blocks, Block{Kind: KindOther, Lines: []string{SourceLine}})
		f.noEOL = false
	}

	if err := f.checkPorts(ownedNames); err != nil {
		return nil, err
	}
	return f.Bytes(), nil
}

func isBlank(b Block) bool {
	return b.Kind == KindOther && strings.TrimSpace(b.Lines[0]) == ""
}

func isComment(b Block) bool {
	return b.Kind == KindOther && strings.HasPrefix(strings.TrimSpace(b.Lines[0]), "#")
}

func (f *File) insert(i int, b Block) {
	f.Blocks = slices.Insert(f.Blocks, i, b)
}

// insertionPoint is after the last iface stanza and the comment lines
// directly below it (Proxmox attaches those to the stanza); without any
// stanza, before the first source line, else at the end.
func (f *File) insertionPoint() int {
	last := -1
	for i, b := range f.Blocks {
		if b.Kind == KindIface {
			last = i
		}
	}
	if last >= 0 {
		i := last + 1
		for i < len(f.Blocks) && isComment(f.Blocks[i]) {
			i++
		}
		return i
	}
	for i, b := range f.Blocks {
		if b.Kind == KindOther && isSourceLine(b.Lines[0]) {
			// Keep the blank lines above the source line above it.
			for i > 0 && isBlank(f.Blocks[i-1]) {
				i--
			}
			return i
		}
	}
	return len(f.Blocks)
}

func isSourceLine(l string) bool {
	w := strings.Fields(l)
	return len(w) >= 1 && (w[0] == "source" || w[0] == "source-directory")
}

// includes reports whether a source line reads path. Relative paths are
// relative to /etc/network, as in ifupdown. A source-directory line does
// not count: ifupdown2 3.0.0 does not know the keyword and reads the line
// as an option of the stanza above it.
func (f *File) includes(path string) bool {
	for _, b := range f.Blocks {
		if b.Kind != KindOther {
			continue
		}
		w := strings.Fields(b.Lines[0])
		if len(w) != 2 {
			continue
		}
		p := w[1]
		if !filepath.IsAbs(p) {
			p = filepath.Join("/etc/network", p)
		}
		if w[0] == "source" {
			if ok, _ := filepath.Match(p, path); ok {
				return true
			}
		}
	}
	return false
}

// removeIface deletes every stanza of name, the "auto name" line directly
// in front of it, and a blank line left doubled.
func (f *File) removeIface(name string) {
	for i := 0; i < len(f.Blocks); i++ {
		b := f.Blocks[i]
		if b.Kind != KindIface || b.Name != name {
			continue
		}
		from := i
		if i > 0 && f.Blocks[i-1].Kind == KindAuto && slices.Equal(f.Blocks[i-1].Names, []string{name}) {
			from = i - 1
		}
		to := i + 1
		if from > 0 && isBlank(f.Blocks[from-1]) && (to == len(f.Blocks) || isBlank(f.Blocks[to])) {
			from--
		}
		f.Blocks = slices.Delete(f.Blocks, from, to)
		i = from - 1
	}
}

// removeAuto takes name out of every auto line; a line left empty goes.
// A line naming other interfaces too is rewritten without name.
func (f *File) removeAuto(name string) {
	for i := 0; i < len(f.Blocks); i++ {
		b := f.Blocks[i]
		if b.Kind != KindAuto || !slices.Contains(b.Names, name) {
			continue
		}
		names := slices.DeleteFunc(slices.Clone(b.Names), func(n string) bool { return n == name })
		if len(names) == 0 {
			f.Blocks = slices.Delete(f.Blocks, i, i+1)
			i--
			continue
		}
		kw := strings.Fields(b.Lines[0])[0]
		f.Blocks[i] = Block{Kind: KindAuto, Lines: []string{kw + " " + strings.Join(names, " ")}, Names: names}
	}
}

// checkPorts refuses a NIC that two bonds or bridges claim, and an address
// on a port of a bond or bridge, when pvehci's stanzas are involved.
func (f *File) checkPorts(owned map[string]bool) error {
	users := map[string][]string{}
	for _, b := range f.Ifaces() {
		for _, key := range []string{"bridge-ports", "bond-slaves", "bond-ports"} {
			v, ok := b.Get(key)
			if !ok {
				continue
			}
			for _, p := range strings.Fields(v) {
				if p != "none" && !slices.Contains(users[p], b.Name) {
					users[p] = append(users[p], b.Name)
				}
			}
		}
	}
	ports := make([]string, 0, len(users))
	for p := range users {
		ports = append(ports, p)
	}
	sort.Strings(ports)
	for _, p := range ports {
		u := users[p]
		involved := owned[p]
		for _, x := range u {
			involved = involved || owned[x]
		}
		if !involved {
			continue
		}
		if len(u) > 1 {
			return fmt.Errorf("%s would be a port of both %s; a NIC can be in one bond or bridge only, take it out of the other stanza first", p, strings.Join(u, " and "))
		}
		for _, b := range f.Ifaces() {
			if b.Name != p {
				continue
			}
			if _, ok := b.Get("address"); ok {
				return fmt.Errorf("%s has an address (iface %s %s) but is a port of %s; a port cannot carry an address, move it to %s", p, p, b.Family, u[0], u[0])
			}
		}
	}
	return nil
}
