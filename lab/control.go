package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pvehci/pvehci/internal/localapi"
)

// ControlSocket is the supervisor's control API in the lab directory.
const ControlSocket = "lab.sock"

// DefaultDir is where `pvehci lab` keeps its lab unless told otherwise.
func DefaultDir() string {
	if d := os.Getenv("PVEHCI_LAB_DIR"); d != "" {
		return d
	}
	return filepath.Join(os.TempDir(), "pvehci-lab")
}

// Control requests.
type (
	NodeRequest      struct{ Node string }
	CorruptRequest   struct{ Node, Resource string }
	PartitionRequest struct{ Nodes []string }
	VMRequest        struct {
		VMID     int
		Node     string
		SizeKiB  int64
		Snapshot string
	}
)

// Serve answers the control API on DIR/lab.sock until ctx ends or a
// client asks for shutdown; then it stops the lab.
func (l *Lab) Serve(ctx context.Context) error {
	path := filepath.Join(l.cfg.Dir, ControlSocket)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("listening on the lab's control socket: %w", err)
	}
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	mux := http.NewServeMux()
	handle := func(pattern string, fn func(r *http.Request) (any, error)) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			out, err := fn(r)
			if err != nil {
				writeJSON(w, http.StatusConflict, errJSON{Error: err.Error()})
				return
			}
			if out == nil {
				out = struct{}{}
			}
			writeJSON(w, http.StatusOK, out)
		})
	}
	decode := func(r *http.Request, v any) error {
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(v); err != nil {
			return fmt.Errorf("bad request: %w", err)
		}
		return nil
	}
	handle("GET /status", func(r *http.Request) (any, error) { return l.Status(r.Context()), nil })
	handle("POST /kill", func(r *http.Request) (any, error) {
		var req NodeRequest
		if err := decode(r, &req); err != nil {
			return nil, err
		}
		return nil, l.Kill(req.Node)
	})
	handle("POST /start", func(r *http.Request) (any, error) {
		var req NodeRequest
		if err := decode(r, &req); err != nil {
			return nil, err
		}
		if err := l.StartNode(req.Node); err != nil {
			return nil, err
		}
		return nil, l.WaitReady(r.Context(), 30*time.Second)
	})
	handle("POST /partition", func(r *http.Request) (any, error) {
		var req PartitionRequest
		if err := decode(r, &req); err != nil {
			return nil, err
		}
		return nil, l.Partition(req.Nodes...)
	})
	handle("POST /corrupt", func(r *http.Request) (any, error) {
		var req CorruptRequest
		if err := decode(r, &req); err != nil {
			return nil, err
		}
		return nil, l.Corrupt(req.Node, req.Resource)
	})
	handle("POST /bootstrap", func(r *http.Request) (any, error) {
		var req BootstrapRequest
		if err := decode(r, &req); err != nil {
			return nil, err
		}
		return l.Bootstrap(r.Context(), req.Node, req.Plan)
	})
	handle("POST /disk/fail", func(r *http.Request) (any, error) {
		var req NodeRequest
		if err := decode(r, &req); err != nil {
			return nil, err
		}
		return nil, l.FailDisk(req.Node)
	})
	handle("POST /heal", func(r *http.Request) (any, error) { l.Heal(); return nil, nil })
	handle("GET /vms", func(r *http.Request) (any, error) { return l.VMs(), nil })
	handle("POST /vm/create", func(r *http.Request) (any, error) {
		var req VMRequest
		if err := decode(r, &req); err != nil {
			return nil, err
		}
		return l.CreateVM(r.Context(), req.VMID, req.Node, req.SizeKiB)
	})
	handle("POST /vm/migrate", func(r *http.Request) (any, error) {
		var req VMRequest
		if err := decode(r, &req); err != nil {
			return nil, err
		}
		return l.MigrateVM(r.Context(), req.VMID, req.Node)
	})
	handle("POST /vm/delete", func(r *http.Request) (any, error) {
		var req VMRequest
		if err := decode(r, &req); err != nil {
			return nil, err
		}
		return nil, l.DeleteVM(r.Context(), req.VMID)
	})
	handle("POST /vm/snapshot", func(r *http.Request) (any, error) {
		var req VMRequest
		if err := decode(r, &req); err != nil {
			return nil, err
		}
		return l.SnapshotVM(r.Context(), req.VMID, req.Snapshot)
	})
	handle("POST /vm/rollback", func(r *http.Request) (any, error) {
		var req VMRequest
		if err := decode(r, &req); err != nil {
			return nil, err
		}
		return l.RollbackVM(r.Context(), req.VMID, req.Snapshot)
	})
	handle("POST /vm/delsnapshot", func(r *http.Request) (any, error) {
		var req VMRequest
		if err := decode(r, &req); err != nil {
			return nil, err
		}
		return nil, l.DeleteVMSnapshot(r.Context(), req.VMID, req.Snapshot)
	})
	handle("POST /shutdown", func(r *http.Request) (any, error) { stop(); return nil, nil })
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	srv.Shutdown(sctx)
	cancel()
	os.Remove(path)
	return l.Close()
}

// Control is a client of a running lab's supervisor.
type Control struct {
	Dir string
	c   *localapi.Client
}

// Dial returns a client for the lab in dir, or an error saying no lab
// runs there.
func Dial(dir string) (*Control, error) {
	path := filepath.Join(dir, ControlSocket)
	if _, err := os.Stat(path); err != nil {
		return nil, notRunning(fmt.Sprintf("no lab is running in %s (start one with `pvehci lab up`, or give --dir)", dir))
	}
	return &Control{Dir: dir, c: localapi.NewClient(path)}, nil
}

// Do calls the control API.
func (c *Control) Do(ctx context.Context, method, path string, in, out any) error {
	err := c.c.Do(ctx, method, path, in, out)
	if err != nil && strings.Contains(err.Error(), "connect: connection refused") {
		return notRunning(fmt.Sprintf("the lab supervisor of %s does not answer (it died?); remove the lab with `pvehci lab down --dir %s`", c.Dir, c.Dir))
	}
	return err
}

// notRunning is an error that says no lab answers, and how to go on.
type notRunning string

func (e notRunning) Error() string        { return string(e) }
func (e notRunning) Is(target error) bool { return target == errNotRunning }

// IsNotRunning reports whether err says no lab supervisor answers.
func IsNotRunning(err error) bool { return errors.Is(err, errNotRunning) }
