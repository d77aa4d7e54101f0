package corosync

import (
	"bufio"
	"bytes"
	"fmt"
	"sort"
	"strings"
)

// maxLine is the longest line corosync reads: its parser uses a 512-byte
// buffer including the newline and the terminating NUL.
const maxLine = 510

// Section is the body of a corosync.conf section, or of the whole file.
type Section struct {
	// Items are the keys and subsections in file order.
	Items []Item
	// Trailer holds comment lines after the last item, before the
	// closing brace (or the end of the file).
	Trailer []string
}

// Item is one "key: value" line or one "key {" … "}" subsection.
type Item struct {
	// Comments are the comment lines directly in front of the item,
	// each starting with '#', without indentation.
	Comments []string
	// Key is the key or the section name.
	Key string
	// Value is the value of a key; empty for a section.
	Value string
	// Section is the body of a subsection; nil for a key.
	Section *Section
	// Line is the item's line in the parsed file; 0 for items built in
	// code.
	Line int
}

// IsSection reports whether the item is a subsection.
func (it Item) IsSection() bool { return it.Section != nil }

// ParseError is a syntax error that corosync itself would also reject.
type ParseError struct {
	Line int
	Msg  string
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
}

// ParseTree reads corosync.conf syntax into a tree, following corosync's
// own parser (exec/coroparse.c) line by line: a line containing '{' opens a
// section, else a line containing ':' is a key, else a line must be a lone
// '}'; lines whose first non-blank character is '#' are comments. Unlike
// Proxmox's parser it keeps a value with spaces whole, as corosync does.
func ParseTree(data []byte) (*Section, error) {
	root := &Section{}
	type frame struct {
		sec  *Section
		line int
	}
	stack := []frame{{sec: root}}
	var comments []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		raw := strings.TrimSuffix(sc.Text(), "\r")
		if len(raw) > maxLine {
			return nil, &ParseError{n, "line too long (corosync reads at most 510 characters)"}
		}
		l := trimBlank(raw)
		cur := stack[len(stack)-1].sec
		switch {
		case l == "":
			// Blank lines carry no meaning; comments before them still
			// belong to the next item.
		case l[0] == '#':
			comments = append(comments, l)
		case strings.Contains(l, "{"):
			i := strings.Index(l, "{")
			name := strings.TrimRight(trimBlank(l[:i]), " \t:{")
			if name == "" {
				return nil, &ParseError{n, "missing section name before opening bracket '{'"}
			}
			if trimBlank(l[i+1:]) != "" {
				return nil, &ParseError{n, "extra characters after opening bracket '{'"}
			}
			sub := &Section{}
			cur.Items = append(cur.Items, Item{Comments: comments, Key: name, Section: sub, Line: n})
			comments = nil
			stack = append(stack, frame{sec: sub, line: n})
		case strings.Contains(l, ":"):
			i := strings.Index(l, ":")
			key := strings.TrimRight(trimBlank(l[:i]), " \t:{")
			if key == "" {
				return nil, &ParseError{n, "key name can't be empty"}
			}
			cur.Items = append(cur.Items, Item{Comments: comments, Key: key, Value: trimBlank(l[i+1:]), Line: n})
			comments = nil
		case strings.Contains(l, "}"):
			if l != "}" {
				return nil, &ParseError{n, "extra characters before or after closing bracket '}'"}
			}
			if len(stack) == 1 {
				return nil, &ParseError{n, "unexpected closing brace"}
			}
			cur.Trailer = append(cur.Trailer, comments...)
			comments = nil
			stack = stack[:len(stack)-1]
		default:
			return nil, &ParseError{n, fmt.Sprintf("line is not opening or closing section or key value: %q", l)}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading corosync.conf: %w", err)
	}
	if len(stack) > 1 {
		return nil, &ParseError{stack[len(stack)-1].line, "missing closing brace for this section"}
	}
	root.Trailer = append(root.Trailer, comments...)
	return root, nil
}

// trimBlank trims what corosync counts as blank: space, tab and the
// Latin-1 no-break space byte.
func trimBlank(s string) string {
	blank := func(c byte) bool { return c == ' ' || c == '\t' || c == 0xa0 }
	for len(s) > 0 && blank(s[0]) {
		s = s[1:]
	}
	for len(s) > 0 && blank(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}

// RenderTree writes the tree in Proxmox's canonical layout, the one
// PVE::Corosync::write_conf produces: keys sorted bytewise at every level,
// node sections sorted by name and interface sections by link number, two
// spaces of indentation per level, "key: value", and a blank line after
// every top-level section. A file Proxmox wrote therefore renders to the
// same bytes, and a file pvehci writes is not reshuffled by the next PVE
// write. Comments are kept in front of the item they preceded.
func RenderTree(root *Section) []byte {
	var b bytes.Buffer
	renderSection(&b, root, 0)
	return b.Bytes()
}

func renderSection(b *bytes.Buffer, s *Section, depth int) {
	indent := strings.Repeat("  ", depth)
	for _, it := range sortedItems(s.Items) {
		for _, c := range it.Comments {
			b.WriteString(indent + c + "\n")
		}
		if it.Section == nil {
			if it.Value == "" {
				b.WriteString(indent + it.Key + ":\n")
			} else {
				b.WriteString(indent + it.Key + ": " + it.Value + "\n")
			}
			continue
		}
		b.WriteString(indent + it.Key + " {\n")
		renderSection(b, it.Section, depth+1)
		b.WriteString(indent + "}\n")
		if depth == 0 {
			b.WriteString("\n")
		}
	}
	for _, c := range s.Trailer {
		b.WriteString(indent + c + "\n")
	}
}

// sortedItems orders items the way Proxmox writes them. The sort is
// stable, so repeated keys keep their relative order.
func sortedItems(items []Item) []Item {
	out := append([]Item(nil), items...)
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Key != b.Key {
			return a.Key < b.Key
		}
		if a.Section == nil || b.Section == nil {
			return false
		}
		switch a.Key {
		case "node":
			return nodeSortKey(a.Section) < nodeSortKey(b.Section)
		case "interface":
			return interfaceSortKey(a.Section) < interfaceSortKey(b.Section)
		}
		return false
	})
	return out
}

// nodeSortKey is how Proxmox keys nodes: by name, else by ring0_addr.
func nodeSortKey(s *Section) string {
	if v, ok := s.Get("name"); ok {
		return v
	}
	v, _ := s.Get("ring0_addr")
	return v
}

// interfaceSortKey is how Proxmox keys interfaces: by linknumber, else by
// the corosync 2 ringnumber. Proxmox sorts these as strings; link numbers
// are single digits, so that is numeric order.
func interfaceSortKey(s *Section) string {
	if v, ok := s.Get("linknumber"); ok {
		return v
	}
	v, _ := s.Get("ringnumber")
	return v
}

// Get returns the value of the first key named key.
func (s *Section) Get(key string) (string, bool) {
	for _, it := range s.Items {
		if it.Key == key && it.Section == nil {
			return it.Value, true
		}
	}
	return "", false
}

// Set replaces the value of every key named key, keeping its comments, or
// appends the key when there is none.
func (s *Section) Set(key, value string) {
	found := false
	for i := range s.Items {
		if s.Items[i].Key == key && s.Items[i].Section == nil {
			s.Items[i].Value = value
			found = true
		}
	}
	if !found {
		s.Items = append(s.Items, Item{Key: key, Value: value})
	}
}

// Delete removes every key (not subsection) named key.
func (s *Section) Delete(key string) {
	s.Items = deleteKey(s.Items, key)
}

func deleteKey(items []Item, key string) []Item {
	out := items[:0:0]
	for _, it := range items {
		if it.Key == key && it.Section == nil {
			continue
		}
		out = append(out, it)
	}
	return out
}

// Clone returns a deep copy.
func (s *Section) Clone() *Section {
	if s == nil {
		return nil
	}
	return &Section{Items: cloneItems(s.Items), Trailer: cloneStrings(s.Trailer)}
}

func cloneItems(items []Item) []Item {
	if items == nil {
		return nil
	}
	out := make([]Item, len(items))
	for i, it := range items {
		out[i] = it
		out[i].Comments = cloneStrings(it.Comments)
		out[i].Section = it.Section.Clone()
	}
	return out
}

func cloneStrings(s []string) []string {
	if s == nil {
		return nil
	}
	return append([]string(nil), s...)
}
