package run

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// DefaultMaxOutput is how much of stdout, and separately of stderr, [Exec]
// keeps when Exec.MaxOutput is 0.
const DefaultMaxOutput = 16 << 20

// waitDelay is how long Run waits, after the program exited or was killed,
// for processes that inherited its stdout or stderr to close them.
const waitDelay = 2 * time.Second

// errTimedOut is the cancellation cause of the Cmd.Timeout context.
var errTimedOut = errors.New("run: command timeout")

// Exec is the real [Runner]: it starts programs with os/exec.
//
// Each program starts as the leader of a new process group. On a timeout, a
// cancelled context, or too much output, Exec sends SIGKILL to the whole
// group, so shell pipelines and background children die with it. (No
// SIGTERM first: the programs pvehci runs are short-lived tools for which a
// timeout already means something is stuck.) A consequence of the separate
// group is that a terminal's Ctrl-C reaches only pvehci, which is expected
// to cancel ctx.
//
// If the program exits but a process it left behind keeps stdout or stderr
// open, Run stops reading 2s later and returns what it has; with exit code
// 0 that is still a success.
//
// The zero value is ready to use.
type Exec struct {
	// MaxOutput bounds how many bytes of stdout, and separately of
	// stderr, are kept. A program that writes more is killed and Run
	// returns an *Error wrapping ErrOutputLimit. 0 means
	// DefaultMaxOutput.
	MaxOutput int
}

var _ Runner = Exec{}

// Run implements [Runner].
func (e Exec) Run(ctx context.Context, c Cmd) (Result, error) {
	res := Result{ExitCode: -1}
	if c.Name == "" {
		return res, &Error{Argv: c.Argv(), ExitCode: -1, Err: errors.New("empty program name")}
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
	overflow := func() { cancel(ErrOutputLimit) }
	stdout := &capture{max: limit, overflow: overflow}
	stderr := &capture{max: limit, overflow: overflow}

	cmd := exec.CommandContext(runCtx, c.Name, c.Args...)
	cmd.Env = append(append(os.Environ(), "LC_ALL=C"), c.Env...)
	cmd.Dir = c.Dir
	if len(c.Stdin) > 0 {
		cmd.Stdin = bytes.NewReader(c.Stdin)
	}
	cmd.Stdout = stdout
	cmd.Stderr = stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		// With Setpgid the child's pid is its process group id.
		err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		if errors.Is(err, syscall.ESRCH) {
			return os.ErrProcessDone
		}
		return err
	}
	cmd.WaitDelay = waitDelay

	start := time.Now()
	err := cmd.Run()
	res.Duration = time.Since(start)
	res.Stdout = stdout.bytes()
	res.Stderr = stderr.bytes()
	if cmd.ProcessState != nil {
		res.ExitCode = cmd.ProcessState.ExitCode()
	}
	if err == nil {
		return res, nil
	}

	rerr := &Error{Argv: c.Argv(), ExitCode: -1, Stdout: res.Stdout, Stderr: res.Stderr, Err: err}
	var status syscall.WaitStatus
	started := cmd.ProcessState != nil
	if started {
		status, _ = cmd.ProcessState.Sys().(syscall.WaitStatus)
	}
	switch {
	case started && status.Exited() && runCtx.Err() == nil:
		if errors.Is(err, exec.ErrWaitDelay) && res.ExitCode == 0 {
			return res, nil // a leftover child held the pipes; the program itself succeeded
		}
		rerr.ExitCode = res.ExitCode
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			rerr.Err = nil // the exit code says it all
		}
	case runCtx.Err() != nil:
		switch cause := context.Cause(runCtx); {
		case errors.Is(cause, ErrOutputLimit):
			rerr.Err = ErrOutputLimit
		case errors.Is(cause, errTimedOut):
			rerr.Timeout = c.Timeout
			rerr.Err = context.DeadlineExceeded
		default:
			rerr.Err = ctx.Err()
		}
	case started && status.Signaled():
		rerr.Signal = status.Signal()
		rerr.Err = nil
	}
	return res, rerr
}

// capture is an io.Writer that keeps the first max bytes and calls overflow
// once when more arrive. It accepts (and drops) the excess so that the
// program is not blocked on a full pipe before it is killed.
type capture struct {
	mu       sync.Mutex
	buf      bytes.Buffer
	max      int
	full     bool
	overflow func()
}

func (w *capture) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if room := w.max - w.buf.Len(); len(p) > room {
		w.buf.Write(p[:room])
		if !w.full {
			w.full = true
			w.overflow()
		}
		return len(p), nil
	}
	return w.buf.Write(p)
}

func (w *capture) bytes() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Bytes()
}
