package run

import (
	"bytes"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"
)

// ErrOutputLimit is the cause (see [Error.Err]) when a program wrote more
// than the capture limit to stdout or stderr and was killed for it.
var ErrOutputLimit = errors.New("output limit exceeded")

// ErrUnexpected is the cause when a [Fake] was asked to run a command that no
// expectation matches.
var ErrUnexpected = errors.New("run.Fake: unexpected command")

// Tail bounds: the error message carries at most tailLines non-empty lines
// and tailBytes bytes from the end of the output.
const (
	tailLines = 4
	tailBytes = 400
)

// Error is the error of every failed [Runner.Run].
type Error struct {
	// Argv is the program and its arguments.
	Argv []string
	// ExitCode is the exit code when the program exited on its own with a
	// non-zero code, and -1 otherwise.
	ExitCode int
	// Signal is the signal that killed the program, when it died of one
	// it was not sent by the runner's timeout or cancellation.
	Signal syscall.Signal
	// Timeout is the [Cmd.Timeout] that expired, or 0.
	Timeout time.Duration
	// Stdout and Stderr are the captured output (the same slices as in
	// the Result).
	Stdout, Stderr []byte
	// Err is the cause, if there is more to say than the exit code:
	// context.DeadlineExceeded for a timeout, the context's error for a
	// cancellation, an error wrapping exec.ErrNotFound, ErrOutputLimit,
	// ErrUnexpected, or a start failure.
	Err error
}

// Error returns "COMMAND LINE: WHAT: stderr: TAIL".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(ShellLine(e.Argv...))
	b.WriteString(": ")
	switch {
	case e.Timeout > 0:
		b.WriteString("timed out after ")
		b.WriteString(e.Timeout.String())
	case e.ExitCode > 0:
		fmt.Fprintf(&b, "exit code %d", e.ExitCode)
	case e.Signal != 0:
		fmt.Fprintf(&b, "killed by signal %d (%v)", int(e.Signal), e.Signal)
	case errors.Is(e.Err, exec.ErrNotFound):
		b.WriteString("not found in PATH")
	case e.Err != nil:
		b.WriteString(e.Err.Error())
	default:
		b.WriteString("failed")
	}
	if t := tail(e.Stderr); t != "" {
		b.WriteString(": stderr: ")
		b.WriteString(t)
	} else if t := tail(e.Stdout); t != "" {
		b.WriteString(": stdout: ")
		b.WriteString(t)
	}
	return b.String()
}

// Unwrap returns the cause, Err.
func (e *Error) Unwrap() error { return e.Err }

// ExitCode returns the exit code that err carries: 0 for nil, the program's
// exit code when err is or wraps an [*Error] for a program that exited on its
// own, and -1 for any other error.
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	var e *Error
	if errors.As(err, &e) && e.ExitCode > 0 {
		return e.ExitCode
	}
	return -1
}

// tail returns the last few non-empty lines of out, joined with "; ",
// trimmed, with control characters replaced, and cut to tailBytes from the
// end ("…" marks a cut).
func tail(out []byte) string {
	var lines []string
	rest := out
	for len(rest) > 0 && len(lines) < tailLines {
		i := bytes.LastIndexByte(rest, '\n')
		line := bytes.TrimSpace(rest[i+1:])
		if i < 0 {
			rest = nil
		} else {
			rest = rest[:i]
		}
		if len(line) > 0 {
			lines = append(lines, string(line))
		}
	}
	if len(lines) == 0 {
		return ""
	}
	for i, j := 0, len(lines)-1; i < j; i, j = i+1, j-1 {
		lines[i], lines[j] = lines[j], lines[i]
	}
	s := strings.ToValidUTF8(strings.Join(lines, "; "), "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
	if len(s) > tailBytes {
		cut := len(s) - tailBytes
		for cut < len(s) && !utf8.RuneStart(s[cut]) {
			cut++
		}
		s = "…" + s[cut:]
	}
	return s
}
