package kernelrpc

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/pvehci/pvehci/internal/run"
)

// StreamPath is the endpoint of [run.Streamer] calls: POST a [Request],
// get [Frame]s, one JSON object per line, for as long as the program runs;
// the last frame has End set. The connection stays open for the whole
// stream, which is how the daemon follows `drbdsetup events2` on the
// simulated kernel.
const StreamPath = "/v1/stream"

// Frame is one line of a stream's answer.
type Frame struct {
	// Line is one line of the program's stdout, without the newline.
	Line string `json:"line,omitempty"`
	// End marks the last frame; Error is then what Stream returned and
	// Stderr the program's standard error that came with it.
	End    bool       `json:"end,omitempty"`
	Error  *ErrorInfo `json:"error,omitempty"`
	Stderr []byte     `json:"stderr,omitempty"`
}

// serveStream answers one POST [StreamPath] request.
func (s *Server) serveStream(w http.ResponseWriter, r *http.Request, log *slog.Logger) {
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
	st, ok := rn.(run.Streamer)
	if !ok {
		http.Error(w, fmt.Sprintf("kernelrpc: node %q cannot stream commands", req.Node), http.StatusNotImplemented)
		return
	}
	c := run.Cmd{Name: req.Name, Args: req.Args, Env: req.Env, Dir: req.Dir, Stdin: req.Stdin,
		Timeout: time.Duration(req.TimeoutMS) * time.Millisecond}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	enc := json.NewEncoder(w)
	var werr error
	send := func(f Frame) {
		if werr != nil {
			return
		}
		if werr = enc.Encode(f); werr == nil && flusher != nil {
			flusher.Flush()
		}
	}
	log.Debug("kernel stream started", "node", req.Node, "cmd", c.String())
	// r.Context ends when the daemon goes away, which ends the stream.
	err := st.Stream(r.Context(), c, func(line []byte) { send(Frame{Line: string(line)}) })
	end := Frame{End: true}
	if err != nil {
		end.Error = encodeError(err, run.ExitCode(err))
		var re *run.Error
		if errors.As(err, &re) {
			end.Stderr = re.Stderr
		}
	}
	send(end)
	log.Debug("kernel stream ended", "node", req.Node, "cmd", c.String(), "err", err)
}

var _ run.Streamer = (*client)(nil)

// Stream implements [run.Streamer]: the command streams on the supervisor
// and its lines arrive here as they come.
func (cl *client) Stream(ctx context.Context, c run.Cmd, line func([]byte)) error {
	fail := func(err error) error { return &run.Error{Argv: c.Argv(), ExitCode: -1, Err: err} }
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	body, err := json.Marshal(Request{Node: cl.node, Name: c.Name, Args: c.Args, Env: c.Env, Dir: c.Dir,
		Stdin: c.Stdin, TimeoutMS: c.Timeout.Milliseconds()})
	if err != nil {
		return fail(fmt.Errorf("kernelrpc: encode request: %w", err))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://kernel"+StreamPath, bytes.NewReader(body))
	if err != nil {
		return fail(fmt.Errorf("kernelrpc: %w", err))
	}
	req.Header.Set("Content-Type", "application/json")
	hr, err := cl.http.Do(req)
	if err != nil {
		return fail(cl.callError(ctx, ctx, c, err))
	}
	defer hr.Body.Close()
	if hr.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(hr.Body, 64<<10))
		return fail(fmt.Errorf("kernelrpc %s: %s", cl.socket, bytes.TrimSpace(data)))
	}
	dec := json.NewDecoder(bufio.NewReader(hr.Body))
	for {
		var f Frame
		if err := dec.Decode(&f); err != nil {
			if ctx.Err() != nil {
				return fail(ctx.Err())
			}
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return fail(fmt.Errorf("kernelrpc %s: the stream broke off: %w", cl.socket, err))
		}
		if f.End {
			if f.Error != nil {
				return decodeError(c, run.Result{ExitCode: f.Error.ExitCode, Stderr: f.Stderr}, f.Error)
			}
			return nil
		}
		line([]byte(f.Line))
	}
}
