package validate

import (
	"fmt"
	"path/filepath"
	"strings"
)

// RejectedError is returned when a tool rejects the input: a non-zero exit,
// or output on stderr that the tool prints for a problem but does not treat
// as one.
type RejectedError struct {
	// Check names the tool and its mode, e.g. "drbdadm dump".
	Check string
	// Subject says as whom or where it ran, e.g. "host pve2"; may be empty.
	Subject string
	// Files are the inputs, as the caller named them.
	Files []string
	// Command is the exact command line, shell-quoted, with the
	// environment variables that matter in front.
	Command string
	// ExitCode is the tool's exit code; -1 when it was killed.
	ExitCode int
	// Lines are the tool's relevant output lines, noise removed and
	// temporary paths mapped back to the caller's.
	Lines []string
}

func (e *RejectedError) Error() string {
	var b strings.Builder
	b.WriteString(e.Check)
	if e.Subject != "" {
		fmt.Fprintf(&b, " (%s)", e.Subject)
	}
	fmt.Fprintf(&b, " rejected %s: exit %d", baseNames(e.Files), e.ExitCode)
	if len(e.Lines) == 0 {
		b.WriteString(" (no output)")
	}
	for i, l := range e.Lines {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("\n\t")
		}
		b.WriteString(l)
	}
	b.WriteString("\n\tcommand: ")
	b.WriteString(e.Command)
	return b.String()
}

// Output returns the relevant lines as one text, for substring assertions
// that span a line break of the tool's message.
func (e *RejectedError) Output() string { return strings.Join(e.Lines, "\n") }

// ToolMissingError is returned when a program a check needs is not
// installed. Tests skip on it locally and fail on it in CI.
type ToolMissingError struct {
	// Tool is the program, e.g. "drbdadm".
	Tool string
	// Package is the Debian package that provides it.
	Package string
}

func (e *ToolMissingError) Error() string {
	return fmt.Sprintf("%s is not installed (install it with: %s)", e.Tool, e.AptLine())
}

// AptLine is the command that installs the missing tool on Debian.
func (e *ToolMissingError) AptLine() string {
	return "apt-get install --no-install-recommends " + e.Package
}

// NeedRootError is returned by checks that create namespaces when the
// process is not root. Tests skip on it locally and fail on it in CI.
type NeedRootError struct {
	// Check is the check that needs root, e.g. "corosync -t".
	Check string
	// UID is the effective uid the process runs as.
	UID int
}

func (e *NeedRootError) Error() string {
	return fmt.Sprintf("%s needs root for its network and mount namespaces (running as uid %d)", e.Check, e.UID)
}

func baseNames(files []string) string {
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = filepath.Base(f)
	}
	return strings.Join(names, ", ")
}
