package run

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"syscall"
)

// Streamer runs a program that keeps printing until it is stopped, such as
// `drbdsetup events2`, and hands each line of its standard output to line
// as it arrives (without the newline; the slice is only valid during the
// call). Stream returns when the program exits or ctx ends: nil for an
// exit with code 0, otherwise an [*Error] as [Runner.Run] returns it (with
// ctx.Err() as its cause when ctx ended it).
//
// It is a separate interface, not part of [Runner], because only a few
// callers follow a program's output and a Runner that cannot stream (a
// test's [Fake] without a script for it) is still a complete Runner; a
// caller falls back to polling with Run when its Runner is no Streamer.
type Streamer interface {
	Stream(ctx context.Context, c Cmd, line func([]byte)) error
}

// MaxStreamLine bounds one line of a stream; a longer line ends the stream
// with ErrOutputLimit. events2 lines are a few hundred bytes.
const MaxStreamLine = 1 << 20

var _ Streamer = Exec{}

// Stream implements [Streamer]: the program runs in its own process group,
// which is killed when ctx ends, as with Run. Cmd.Timeout bounds the
// whole stream when set. Standard error is kept (up to MaxOutput) for the
// error message.
func (e Exec) Stream(ctx context.Context, c Cmd, line func([]byte)) error {
	if c.Name == "" {
		return &Error{Argv: c.Argv(), ExitCode: -1, Err: errors.New("empty program name")}
	}
	limit := e.MaxOutput
	if limit <= 0 {
		limit = DefaultMaxOutput
	}
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if c.Timeout > 0 {
		var stop context.CancelFunc
		runCtx, stop = context.WithTimeoutCause(runCtx, c.Timeout, errTimedOut)
		defer stop()
	}
	stderr := &capture{max: limit, overflow: func() {}}
	cmd := exec.CommandContext(runCtx, c.Name, c.Args...)
	cmd.Env = append(append(os.Environ(), "LC_ALL=C"), c.Env...)
	cmd.Dir = c.Dir
	if len(c.Stdin) > 0 {
		cmd.Stdin = bytes.NewReader(c.Stdin)
	}
	cmd.Stderr = stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		if errors.Is(err, syscall.ESRCH) {
			return os.ErrProcessDone
		}
		return err
	}
	cmd.WaitDelay = waitDelay
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return &Error{Argv: c.Argv(), ExitCode: -1, Err: err}
	}
	if err := cmd.Start(); err != nil {
		return &Error{Argv: c.Argv(), ExitCode: -1, Err: err}
	}
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 0, 64<<10), MaxStreamLine)
	for sc.Scan() {
		line(sc.Bytes())
	}
	if errors.Is(sc.Err(), bufio.ErrTooLong) {
		cancel(ErrOutputLimit)
	}
	// Drain what is left so that Wait is not blocked by a full pipe.
	go func() { _, _ = bufio.NewReader(stdout).WriteTo(discard{}) }()
	werr := cmd.Wait()
	rerr := &Error{Argv: c.Argv(), ExitCode: -1, Stderr: stderr.bytes(), Err: werr}
	if cmd.ProcessState != nil {
		rerr.ExitCode = cmd.ProcessState.ExitCode()
	}
	switch {
	case runCtx.Err() != nil:
		switch cause := context.Cause(runCtx); {
		case errors.Is(cause, ErrOutputLimit):
			rerr.Err = ErrOutputLimit
		case errors.Is(cause, errTimedOut):
			rerr.Timeout, rerr.Err = c.Timeout, context.DeadlineExceeded
		default:
			rerr.Err = ctx.Err()
		}
		return rerr
	case werr == nil:
		return nil
	}
	var exitErr *exec.ExitError
	if errors.As(werr, &exitErr) {
		if st, ok := exitErr.Sys().(syscall.WaitStatus); ok && st.Signaled() {
			rerr.Signal = st.Signal()
		}
		rerr.Err = nil // the exit code or signal says it all
	}
	return rerr
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// StreamFunc scripts the answer to [Fake.Stream]: fn is called with the
// line callback and its return ends the stream, so a test can hand lines
// over one at a time and keep the stream open until ctx ends.
func (e *Expectation) StreamFunc(fn func(ctx context.Context, line func([]byte)) error) *Expectation {
	e.f.mu.Lock()
	defer e.f.mu.Unlock()
	e.stream = fn
	return e
}

var _ Streamer = (*Fake)(nil)

// Stream implements [Streamer]. A command scripted with
// [Expectation.StreamFunc] streams what that function hands over; any
// other is answered as Run answers it (and recorded in the transcript
// once), its stdout handed over line by line before the stream ends with
// Run's error.
func (f *Fake) Stream(ctx context.Context, c Cmd, line func([]byte)) error {
	if err := ctx.Err(); err != nil {
		return &Error{Argv: c.Argv(), ExitCode: -1, Err: err}
	}
	c = cloneCmd(c)
	exp, rep := f.take(c)
	if exp == nil {
		if rep != nil {
			rep.Helper()
			rep.Errorf("run.Fake: unexpected command: %s", c)
		}
		return &Error{Argv: c.Argv(), ExitCode: -1, Err: ErrUnexpected}
	}
	if exp.stream != nil {
		return wrapError(c, Result{ExitCode: -1}, exp.stream(ctx, line))
	}
	res, err := f.answer(ctx, c, exp)
	for l := range bytes.Lines(res.Stdout) {
		line(bytes.TrimSuffix(l, []byte("\n")))
	}
	return err
}
