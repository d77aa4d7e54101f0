package run

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
)

// Reporter is the part of testing.TB a [Fake] uses to fail a test. It is an
// interface so that this package does not import testing.
type Reporter interface {
	Helper()
	Errorf(format string, args ...any)
}

// Fake is a scripted, recording [Runner] for tests.
//
// Register expectations with [Fake.On], [Fake.OnPrefix] or [Fake.OnFunc]; each
// Run answers from the first registered expectation that matches and has
// uses left. A command that matches none fails loudly: Run returns an *Error
// wrapping [ErrUnexpected] that names the command, and the Reporter (if any)
// gets an Errorf. Every command is recorded, matched or not, except those
// whose ctx was already done (a real program would not have started).
//
// A Fake is safe for concurrent use. The zero value is a Fake without a
// Reporter.
type Fake struct {
	mu    sync.Mutex
	rep   Reporter
	exps  []*Expectation
	calls []Cmd
}

var _ Runner = (*Fake)(nil)

// NewFake returns a Fake that reports unexpected commands to r (usually the
// *testing.T); r may be nil.
func NewFake(r Reporter) *Fake {
	return &Fake{rep: r}
}

// Response is a scripted outcome.
type Response struct {
	Stdout, Stderr string
	// ExitCode, when not zero, makes Run fail with an *Error carrying it.
	ExitCode int
	// Err, when set, makes Run fail with it: as is if it is an *Error,
	// otherwise wrapped in one. context.DeadlineExceeded on a Cmd with a
	// Timeout reads "timed out after …", exec.ErrNotFound reads "not
	// found in PATH", as from Exec.
	Err error
}

// Expectation is one scripted answer; the methods set it up and return it
// for chaining. Without a response it answers with exit code 0 and no
// output.
type Expectation struct {
	f     *Fake
	desc  string
	match func(Cmd) bool
	resp  Response
	do    func(context.Context, Cmd) (Result, error)
	// stream answers Stream (stream.go); Run ignores it.
	stream func(ctx context.Context, line func([]byte)) error
	left   int // uses left; -1 means unlimited
}

// On expects exactly the program and arguments argv.
func (f *Fake) On(argv ...string) *Expectation {
	return f.add(ShellLine(argv...), func(c Cmd) bool { return slices.Equal(c.Argv(), argv) })
}

// OnPrefix expects any command whose program and arguments start with argv.
func (f *Fake) OnPrefix(argv ...string) *Expectation {
	return f.add(ShellLine(argv...)+" …", func(c Cmd) bool {
		a := c.Argv()
		return len(a) >= len(argv) && slices.Equal(a[:len(argv)], argv)
	})
}

// OnFunc expects any command for which match returns true; desc names the
// expectation in messages.
func (f *Fake) OnFunc(desc string, match func(Cmd) bool) *Expectation {
	return f.add(desc, match)
}

func (f *Fake) add(desc string, match func(Cmd) bool) *Expectation {
	e := &Expectation{f: f, desc: desc, match: match, left: -1}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.exps = append(f.exps, e)
	return e
}

// Return sets the response.
func (e *Expectation) Return(r Response) *Expectation {
	e.f.mu.Lock()
	defer e.f.mu.Unlock()
	e.resp, e.do = r, nil
	return e
}

// Stdout answers with exit code 0 and stdout out.
func (e *Expectation) Stdout(out string) *Expectation {
	return e.Return(Response{Stdout: out})
}

// Fail answers with a non-zero exit code and stderr.
func (e *Expectation) Fail(code int, stderr string) *Expectation {
	return e.Return(Response{ExitCode: code, Stderr: stderr})
}

// Do answers by calling fn, for responses that depend on the command or on
// state. fn runs without the Fake's lock held; an error it returns that is
// not an *Error is wrapped in one.
func (e *Expectation) Do(fn func(ctx context.Context, c Cmd) (Result, error)) *Expectation {
	e.f.mu.Lock()
	defer e.f.mu.Unlock()
	e.do = fn
	return e
}

// Times limits the expectation to n uses, after which later expectations
// get their turn: On(x).Times(1).Fail(…) then On(x) scripts a retry.
func (e *Expectation) Times(n int) *Expectation {
	e.f.mu.Lock()
	defer e.f.mu.Unlock()
	e.left = n
	return e
}

// Run implements [Runner].
func (f *Fake) Run(ctx context.Context, c Cmd) (Result, error) {
	if err := ctx.Err(); err != nil {
		return Result{ExitCode: -1}, &Error{Argv: c.Argv(), ExitCode: -1, Err: err}
	}
	c = cloneCmd(c)
	exp, rep := f.take(c)
	if exp == nil {
		if rep != nil {
			rep.Helper()
			rep.Errorf("run.Fake: unexpected command: %s", c)
		}
		return Result{ExitCode: -1}, &Error{Argv: c.Argv(), ExitCode: -1, Err: ErrUnexpected}
	}
	return f.answer(ctx, c, exp)
}

// answer gives exp's scripted outcome for c.
func (f *Fake) answer(ctx context.Context, c Cmd, exp *Expectation) (Result, error) {
	f.mu.Lock()
	resp, do := exp.resp, exp.do
	f.mu.Unlock()
	var res Result
	var err error
	if do != nil {
		res, err = do(ctx, c)
	} else {
		res = Result{Stdout: []byte(resp.Stdout), Stderr: []byte(resp.Stderr), ExitCode: resp.ExitCode}
		err = resp.Err
	}
	switch {
	case err != nil:
		if res.ExitCode == 0 {
			res.ExitCode = -1
		}
		return res, wrapError(c, res, err)
	case res.ExitCode != 0:
		return res, &Error{Argv: c.Argv(), ExitCode: res.ExitCode, Stdout: res.Stdout, Stderr: res.Stderr}
	}
	return res, nil
}

// take records c and returns the first expectation with uses left that
// matches it, using one up (nil when none matches).
func (f *Fake) take(c Cmd) (*Expectation, Reporter) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, c)
	for _, e := range f.exps {
		if e.left != 0 && e.match(c) {
			if e.left > 0 {
				e.left--
			}
			return e, f.rep
		}
	}
	return nil, f.rep
}

// Unmet returns the expectations limited with [Expectation.Times] that
// still have uses left, so a test can check that every scripted command
// ran.
func (f *Fake) Unmet() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, e := range f.exps {
		if e.left > 0 {
			out = append(out, e.desc)
		}
	}
	return out
}

// wrapError makes err an *Error unless it is nil or one already.
func wrapError(c Cmd, res Result, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := err.(*Error); ok {
		return err
	}
	e := &Error{Argv: c.Argv(), ExitCode: -1, Stdout: res.Stdout, Stderr: res.Stderr, Err: err}
	if res.ExitCode > 0 {
		e.ExitCode = res.ExitCode
	}
	if c.Timeout > 0 && errors.Is(err, context.DeadlineExceeded) {
		e.Timeout = c.Timeout
	}
	return e
}

func cloneCmd(c Cmd) Cmd {
	c.Args = slices.Clone(c.Args)
	c.Env = slices.Clone(c.Env)
	c.Stdin = slices.Clone(c.Stdin)
	return c
}

// Calls returns a copy of every recorded command, in order.
func (f *Fake) Calls() []Cmd {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Cmd, len(f.calls))
	for i, c := range f.calls {
		out[i] = cloneCmd(c)
	}
	return out
}

// Transcript returns one line per recorded command, rendered by
// [Cmd.String].
func (f *Fake) Transcript() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	lines := make([]string, len(f.calls))
	for i, c := range f.calls {
		lines[i] = c.String()
	}
	return lines
}

// String returns the transcript as text, each line ending in a newline, for
// comparison against a golden string.
func (f *Fake) String() string {
	var b strings.Builder
	for _, l := range f.Transcript() {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.String()
}
