package kernelrpc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os/exec"
	"syscall"
	"time"

	"github.com/pvehci/pvehci/internal/run"
)

// Path is the one HTTP endpoint: POST a [Request], get a [Response].
const Path = "/v1/run"

// Request is one [run.Cmd] for one node.
type Request struct {
	Node  string   `json:"node"`
	Name  string   `json:"name"`
	Args  []string `json:"args,omitempty"`
	Env   []string `json:"env,omitempty"`
	Dir   string   `json:"dir,omitempty"`
	Stdin []byte   `json:"stdin,omitempty"`
	// TimeoutMS is Cmd.Timeout in milliseconds; 0 means none.
	TimeoutMS int64 `json:"timeout_ms,omitempty"`
}

// Response is what the node's Runner returned.
type Response struct {
	Stdout     []byte `json:"stdout,omitempty"`
	Stderr     []byte `json:"stderr,omitempty"`
	ExitCode   int    `json:"exit_code"`
	DurationNS int64  `json:"duration_ns,omitempty"`
	// Error is set when Run returned an error.
	Error *ErrorInfo `json:"error,omitempty"`
}

// ErrorInfo carries the fields of a [*run.Error] that are not in the
// Result, and its cause as a kind the client can turn back into the
// sentinel errors callers test with errors.Is.
type ErrorInfo struct {
	Kind      string `json:"kind"`
	ExitCode  int    `json:"exit_code"`
	Signal    int    `json:"signal,omitempty"`
	TimeoutMS int64  `json:"timeout_ms,omitempty"`
	// Message is the cause's text (run.Error.Err), empty for a plain
	// non-zero exit.
	Message string `json:"message,omitempty"`
}

// Error kinds.
const (
	KindExit        = "exit"         // non-zero exit or signal; no other cause
	KindNotFound    = "not-found"    // exec.ErrNotFound
	KindDeadline    = "deadline"     // context.DeadlineExceeded (Cmd.Timeout or ctx)
	KindCanceled    = "canceled"     // context.Canceled
	KindOutputLimit = "output-limit" // run.ErrOutputLimit
	KindUnexpected  = "unexpected"   // run.ErrUnexpected (a run.Fake's)
	KindOther       = "other"        // anything else, as text
)

// Server answers [Request]s on the Runners that Runner returns.
type Server struct {
	// Runner returns the Runner of a node, false for an unknown node.
	Runner func(node string) (run.Runner, bool)
	// Log gets one debug line per command; nil logs nothing.
	Log *slog.Logger
}

// Serve answers requests on ln until ln is closed, and returns the error
// that ended it (wrapping net.ErrClosed after a Close).
func (s *Server) Serve(ln net.Listener) error {
	mux := http.NewServeMux()
	mux.Handle("POST "+Path, s)
	mux.Handle("POST "+StreamPath, s)
	return (&http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}).Serve(ln)
}

// ServeHTTP answers one POST [Path] request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	log := s.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if r.URL.Path == StreamPath {
		s.serveStream(w, r, log)
		return
	}
	var req Request
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, "kernelrpc: bad request: "+err.Error(), http.StatusBadRequest)
		return
	}
	rn, ok := s.Runner(req.Node)
	if !ok {
		http.Error(w, fmt.Sprintf("kernelrpc: the lab supervisor has no node %q", req.Node), http.StatusNotFound)
		return
	}
	c := run.Cmd{Name: req.Name, Args: req.Args, Env: req.Env, Dir: req.Dir, Stdin: req.Stdin,
		Timeout: time.Duration(req.TimeoutMS) * time.Millisecond}
	// r.Context ends when the client goes away, which is how the
	// client's cancellation reaches the Runner.
	res, err := rn.Run(r.Context(), c)
	log.Debug("kernel command", "node", req.Node, "cmd", c.String(), "exit_code", res.ExitCode, "err", err)
	resp := Response{Stdout: res.Stdout, Stderr: res.Stderr, ExitCode: res.ExitCode, DurationNS: int64(res.Duration)}
	if err != nil {
		resp.Error = encodeError(err, res.ExitCode)
	}
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(resp); err != nil {
		log.Debug("kernel command: writing the answer", "node", req.Node, "err", err)
	}
}

func encodeError(err error, exitCode int) *ErrorInfo {
	info := &ErrorInfo{Kind: KindOther, ExitCode: exitCode, Message: err.Error()}
	var re *run.Error
	if errors.As(err, &re) {
		info.ExitCode, info.Signal, info.TimeoutMS = re.ExitCode, int(re.Signal), re.Timeout.Milliseconds()
		if re.Err == nil {
			info.Kind, info.Message = KindExit, ""
			return info
		}
		info.Message = re.Err.Error()
	}
	switch {
	case errors.Is(err, exec.ErrNotFound):
		info.Kind = KindNotFound
	case errors.Is(err, context.DeadlineExceeded):
		info.Kind = KindDeadline
	case errors.Is(err, context.Canceled):
		info.Kind = KindCanceled
	case errors.Is(err, run.ErrOutputLimit):
		info.Kind = KindOutputLimit
	case errors.Is(err, run.ErrUnexpected):
		info.Kind = KindUnexpected
	}
	return info
}

// decodeError rebuilds the *run.Error that the server's Runner returned.
func decodeError(c run.Cmd, res run.Result, info *ErrorInfo) *run.Error {
	e := &run.Error{Argv: c.Argv(), ExitCode: info.ExitCode, Signal: syscall.Signal(info.Signal),
		Timeout: time.Duration(info.TimeoutMS) * time.Millisecond, Stdout: res.Stdout, Stderr: res.Stderr}
	switch info.Kind {
	case KindExit:
	case KindNotFound:
		e.Err = &exec.Error{Name: c.Name, Err: exec.ErrNotFound}
	case KindDeadline:
		e.Err = context.DeadlineExceeded
	case KindCanceled:
		e.Err = context.Canceled
	case KindOutputLimit:
		e.Err = run.ErrOutputLimit
	case KindUnexpected:
		e.Err = run.ErrUnexpected
	default:
		e.Err = errors.New(info.Message)
	}
	return e
}

// timeoutGrace is how long past Cmd.Timeout the client waits for the
// server before giving up on it: the server's Runner enforces the timeout
// itself, and the grace only bounds a hung supervisor.
const timeoutGrace = 10 * time.Second

// maxAnswer bounds an answer: twice run.DefaultMaxOutput (stdout and
// stderr) in base64, with room for the rest.
const maxAnswer = 3*run.DefaultMaxOutput + 1<<20

// NewRunner returns a Runner that runs every command as node on the
// supervisor listening on socketPath.
func NewRunner(socketPath, node string) run.Runner {
	return &client{
		socket: socketPath,
		node:   node,
		http: &http.Client{Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				conn, err := d.DialContext(ctx, "unix", socketPath)
				if err != nil {
					return nil, &dialError{err}
				}
				return conn, nil
			},
			MaxIdleConns:    4,
			IdleConnTimeout: 30 * time.Second,
		}},
	}
}

type client struct {
	socket, node string
	http         *http.Client
}

// dialError marks a failure to reach the socket, as opposed to a failure
// during a call.
type dialError struct{ err error }

func (e *dialError) Error() string { return e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

func (cl *client) Run(ctx context.Context, c run.Cmd) (run.Result, error) {
	fail := func(err error) (run.Result, error) {
		return run.Result{ExitCode: -1}, &run.Error{Argv: c.Argv(), ExitCode: -1, Err: err}
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	body, err := json.Marshal(Request{Node: cl.node, Name: c.Name, Args: c.Args, Env: c.Env, Dir: c.Dir,
		Stdin: c.Stdin, TimeoutMS: c.Timeout.Milliseconds()})
	if err != nil {
		return fail(fmt.Errorf("kernelrpc: encode request: %w", err))
	}
	callCtx := ctx
	if c.Timeout > 0 {
		var cancel context.CancelFunc
		callCtx, cancel = context.WithTimeout(ctx, c.Timeout+timeoutGrace)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(callCtx, http.MethodPost, "http://kernel"+Path, bytes.NewReader(body))
	if err != nil {
		return fail(fmt.Errorf("kernelrpc: %w", err))
	}
	req.Header.Set("Content-Type", "application/json")
	start := time.Now()
	hr, err := cl.http.Do(req)
	if err != nil {
		return fail(cl.callError(ctx, callCtx, c, err))
	}
	defer hr.Body.Close()
	data, err := io.ReadAll(io.LimitReader(hr.Body, maxAnswer))
	if err != nil {
		return fail(cl.callError(ctx, callCtx, c, err))
	}
	if hr.StatusCode != http.StatusOK {
		return fail(fmt.Errorf("kernelrpc %s: %s", cl.socket, bytes.TrimSpace(data)))
	}
	var resp Response
	if err := json.Unmarshal(data, &resp); err != nil {
		return fail(fmt.Errorf("kernelrpc %s: decode answer: %w", cl.socket, err))
	}
	res := run.Result{Stdout: resp.Stdout, Stderr: resp.Stderr, ExitCode: resp.ExitCode, Duration: time.Duration(resp.DurationNS)}
	if res.Duration == 0 {
		res.Duration = time.Since(start)
	}
	if resp.Error != nil {
		return res, decodeError(c, res, resp.Error)
	}
	return res, nil
}

// callError explains a failed HTTP call: the caller's context ending (the
// error is then ctx.Err(), as run.Exec reports it), the guard past
// Cmd.Timeout, or the supervisor being unreachable.
func (cl *client) callError(ctx, callCtx context.Context, c run.Cmd, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if callCtx.Err() != nil {
		return fmt.Errorf("kernelrpc %s: no answer %v past the command's %v timeout: %w", cl.socket, timeoutGrace, c.Timeout, context.DeadlineExceeded)
	}
	var de *dialError
	if errors.As(err, &de) {
		return fmt.Errorf("kernel RPC socket %s: the lab supervisor is not running (%w)", cl.socket, de.err)
	}
	return fmt.Errorf("kernelrpc %s: %w", cl.socket, err)
}
