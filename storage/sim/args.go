package sim

import (
	"fmt"
	"strconv"
	"strings"
)

// optSpec describes one option of a simulated command: its canonical long
// name, its short letter (0 for none) and whether it takes a value.
type optSpec struct {
	long  string
	short byte
	value bool
}

// opt is one parsed option, by canonical long name.
type opt struct {
	name, value string
}

// parsedArgs is a command line split getopt_long-style, as lvm and drbdadm
// split theirs: options and positional arguments may be interleaved.
type parsedArgs struct {
	opts []opt
	pos  []string
}

func (p parsedArgs) has(name string) bool {
	for _, o := range p.opts {
		if o.name == name {
			return true
		}
	}
	return false
}

// last is the value of the last occurrence of name (getopt: later wins).
func (p parsedArgs) last(name string) (string, bool) {
	v, ok := "", false
	for _, o := range p.opts {
		if o.name == name {
			v, ok = o.value, true
		}
	}
	return v, ok
}

func (p parsedArgs) all(name string) []string {
	var out []string
	for _, o := range p.opts {
		if o.name == name {
			out = append(out, o.value)
		}
	}
	return out
}

// usageError is a command line the real tool refuses while parsing; lvm
// exits 3 (EINVALID_CMD_LINE) for these.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// parseArgs splits args by specs. An unknown option is refused with the
// message getopt_long prints ("PROG: unrecognized option '--x'").
func parseArgs(prog string, args []string, specs []optSpec) (parsedArgs, error) {
	var p parsedArgs
	byLong := map[string]optSpec{}
	byShort := map[byte]optSpec{}
	for _, s := range specs {
		byLong[s.long] = s
		if s.short != 0 {
			byShort[s.short] = s
		}
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			p.pos = append(p.pos, args[i+1:]...)
			return p, nil
		case strings.HasPrefix(a, "--"):
			name, val, hasVal := strings.Cut(a[2:], "=")
			s, ok := byLong[name]
			if !ok {
				return p, &usageError{fmt.Sprintf("%s: unrecognized option '%s'\n  Error during parsing of command line.", prog, a)}
			}
			if s.value && !hasVal {
				if i+1 >= len(args) {
					return p, &usageError{fmt.Sprintf("%s: option '%s' requires an argument\n  Error during parsing of command line.", prog, a)}
				}
				i++
				val = args[i]
			} else if !s.value && hasVal {
				return p, &usageError{fmt.Sprintf("%s: option '--%s' doesn't allow an argument\n  Error during parsing of command line.", prog, name)}
			}
			p.opts = append(p.opts, opt{s.long, val})
		case len(a) > 1 && a[0] == '-':
			// Clustered short options: -fy, -pr, -ay, -ky.
			for j := 1; j < len(a); j++ {
				s, ok := byShort[a[j]]
				if !ok {
					return p, &usageError{fmt.Sprintf("%s: invalid option -- '%c'\n  Error during parsing of command line.", prog, a[j])}
				}
				if !s.value {
					p.opts = append(p.opts, opt{s.long, ""})
					continue
				}
				val := a[j+1:]
				if val == "" {
					if i+1 >= len(args) {
						return p, &usageError{fmt.Sprintf("%s: option requires an argument -- '%c'\n  Error during parsing of command line.", prog, a[j])}
					}
					i++
					val = args[i]
				}
				p.opts = append(p.opts, opt{s.long, val})
				break
			}
		default:
			p.pos = append(p.pos, a)
		}
	}
	return p, nil
}

// parseSize reads an lvm size argument: a number with an optional unit,
// always a power of two whatever the case (lvs(8) "Size[UNIT]"), default
// defUnit. A leading '+' (relative) is returned separately.
func parseSize(s string, defUnit byte) (size uint64, plus bool, err error) {
	s, plus = strings.CutPrefix(s, "+")
	if s == "" {
		return 0, false, fmt.Errorf("empty size")
	}
	unit := defUnit
	if c := s[len(s)-1]; c < '0' || c > '9' {
		unit = c | 0x20 // lower case
		s = s[:len(s)-1]
	}
	shift := map[byte]uint{'b': 0, 's': 9, 'k': 10, 'm': 20, 'g': 30, 't': 40, 'p': 50, 'e': 60}
	sh, ok := shift[unit]
	if !ok {
		return 0, false, fmt.Errorf("unknown unit")
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 {
		return 0, false, fmt.Errorf("not a number")
	}
	v := f * float64(uint64(1)<<sh)
	if v >= 1<<63 {
		return 0, false, fmt.Errorf("too large")
	}
	return uint64(v), plus, nil
}

// displaySize prints a size the way lvm's messages do: two decimals and a
// binary unit ("8.00 MiB").
func displaySize(b uint64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	f := float64(b)
	i := 0
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%d.00 B", b)
	}
	return fmt.Sprintf("%.2f %s", f, units[i])
}
