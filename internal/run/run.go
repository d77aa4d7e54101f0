package run

import (
	"context"
	"strconv"
	"strings"
	"time"
)

// Runner runs one program to completion.
//
// Run returns the captured output even when it also returns an error, so a
// caller can inspect stdout of a failed command. The error, when not nil, is
// an [*Error].
type Runner interface {
	Run(ctx context.Context, c Cmd) (Result, error)
}

// Cmd describes one program invocation.
type Cmd struct {
	// Name is the program: a name looked up in PATH, or a path.
	Name string
	// Args are the arguments, without the program name.
	Args []string
	// Env holds extra KEY=value entries, added after the inherited
	// environment and LC_ALL=C (see the package doc); later entries win.
	Env []string
	// Dir is the working directory; empty means the caller's.
	Dir string
	// Stdin is fed to the program's standard input; nil means /dev/null.
	// It is a byte slice rather than an io.Reader so that a command can be
	// retried and a fake can record exactly what was sent.
	Stdin []byte
	// Timeout bounds the run; 0 means no bound beyond ctx. When it expires
	// the program and every process in its process group are killed.
	Timeout time.Duration
}

// Command returns a Cmd for name and args, with nothing else set.
func Command(name string, args ...string) Cmd {
	return Cmd{Name: name, Args: args}
}

// Argv returns the program name followed by the arguments.
func (c Cmd) Argv() []string {
	argv := make([]string, 0, 1+len(c.Args))
	argv = append(argv, c.Name)
	return append(argv, c.Args...)
}

// String renders c as one shell line, the form a [Fake] transcript uses:
//
//	cd DIR && KEY=value timeout 5s name arg… <<< STDIN
//
// Each part appears only when set. The here-string shows stdin minus one
// trailing newline (a here-string adds one back); stdin without a trailing
// newline is shown the same way, so the rendering is not byte-exact there.
func (c Cmd) String() string {
	var b strings.Builder
	if c.Dir != "" {
		b.WriteString("cd ")
		b.WriteString(Quote(c.Dir))
		b.WriteString(" && ")
	}
	for _, kv := range c.Env {
		k, v, ok := strings.Cut(kv, "=")
		if ok && isEnvName(k) {
			b.WriteString(k)
			b.WriteByte('=')
			b.WriteString(Quote(v))
		} else {
			b.WriteString(Quote(kv))
		}
		b.WriteByte(' ')
	}
	if c.Timeout > 0 {
		b.WriteString("timeout ")
		b.WriteString(strconv.FormatFloat(c.Timeout.Seconds(), 'f', -1, 64))
		b.WriteString("s ")
	}
	b.WriteString(ShellLine(c.Argv()...))
	if len(c.Stdin) > 0 {
		b.WriteString(" <<< ")
		b.WriteString(Quote(strings.TrimSuffix(string(c.Stdin), "\n")))
	}
	return b.String()
}

func isEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_', 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// Result is what a finished (or killed) program left behind.
type Result struct {
	Stdout []byte
	Stderr []byte
	// ExitCode is the program's exit code, or -1 if it did not exit on its
	// own (killed by a signal, or never started).
	ExitCode int
	// Duration is the wall time from start to exit.
	Duration time.Duration
}
