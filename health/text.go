package health

import (
	"fmt"
	"io"
	"strings"
)

// ANSI colours per severity, for a terminal only.
var colours = map[Severity]string{
	OK:       "\x1b[32m",
	Skipped:  "\x1b[2m",
	Warning:  "\x1b[33m",
	Unknown:  "\x1b[35m",
	Critical: "\x1b[1;31m",
}

// WriteText writes the report for a person: a verdict line, the sources
// that could not be read, then one block per problem, most urgent first,
// each with the command that fixes it, then the skipped and passing checks
// one line each. colour adds ANSI colours; pass it only for a terminal.
func (rep Report) WriteText(w io.Writer, colour bool) error {
	paint := func(s Severity, text string) string {
		if !colour {
			return text
		}
		return colours[s] + text + "\x1b[0m"
	}
	counts := map[Severity]int{}
	for _, it := range rep.Items {
		counts[it.Severity]++
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d critical, %d unknown, %d warning, %d ok, %d skipped (exit code %d)\n",
		paint(rep.Severity, strings.ToUpper(rep.Severity.String())),
		counts[Critical], counts[Unknown], counts[Warning], counts[OK], counts[Skipped], rep.ExitCode)
	for _, u := range rep.Unavailable {
		fmt.Fprintf(&b, "%s: unavailable, so the checks that need it are unknown: %s\n", u.Source, u.Error)
	}
	b.WriteByte('\n')
	for _, it := range rep.Items {
		label := fmt.Sprintf("%-8s", strings.ToUpper(it.Severity.String()))
		head := fmt.Sprintf("%s  %s", paint(it.Severity, label), it.Code)
		if len(it.Objects) > 0 {
			head += "  " + objectsText(it.Objects)
		}
		switch it.Severity {
		case OK, Skipped:
			msg := it.Message
			if msg == "" {
				msg = it.Title
			}
			fmt.Fprintf(&b, "%s: %s\n", head, msg)
		default:
			fmt.Fprintf(&b, "%s\n          %s\n", head, it.Message)
			if it.Hint != "" {
				fmt.Fprintf(&b, "          fix: %s\n", it.Hint)
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func objectsText(objs []Object) string {
	parts := make([]string, len(objs))
	for i, o := range objs {
		parts[i] = o.String()
	}
	return strings.Join(parts, ", ")
}
