package kernelrpc

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pvehci/pvehci/internal/run"
	"github.com/pvehci/pvehci/storage/lvm"
	"github.com/pvehci/pvehci/storage/sim"
)

// serve starts a Server for runners on a unix socket in a temporary
// directory and returns the socket's path.
func serve(t *testing.T, runners map[string]run.Runner) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "k.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Runner: func(node string) (run.Runner, bool) {
		r, ok := runners[node]
		return r, ok
	}}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		ln.Close()
		if err := <-done; !errors.Is(err, net.ErrClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return sock
}

// sameRun runs c on local and through remote and checks that both return
// the same Result (but Duration) and the same error.
func sameRun(t *testing.T, local, remote run.Runner, c run.Cmd) (run.Result, error) {
	t.Helper()
	ctx := context.Background()
	lres, lerr := local.Run(ctx, c)
	rres, rerr := remote.Run(ctx, c)
	lres.Duration, rres.Duration = 0, 0
	if !bytes.Equal(lres.Stdout, rres.Stdout) || !bytes.Equal(lres.Stderr, rres.Stderr) || lres.ExitCode != rres.ExitCode {
		t.Errorf("%s: result through the socket differs:\nlocal  %+v\nremote %+v", c, lres, rres)
	}
	if (lerr == nil) != (rerr == nil) {
		t.Fatalf("%s: local error %v, remote error %v", c, lerr, rerr)
	}
	if lerr != nil {
		var le, re *run.Error
		if !errors.As(lerr, &le) || !errors.As(rerr, &re) {
			t.Fatalf("%s: not *run.Error: local %T, remote %T", c, lerr, rerr)
		}
		if lerr.Error() != rerr.Error() {
			t.Errorf("%s: error message differs:\nlocal  %s\nremote %s", c, lerr, rerr)
		}
		if !reflect.DeepEqual(le.Argv, re.Argv) || le.ExitCode != re.ExitCode || le.Signal != re.Signal || le.Timeout != re.Timeout ||
			!bytes.Equal(le.Stdout, re.Stdout) || !bytes.Equal(le.Stderr, re.Stderr) {
			t.Errorf("%s: *run.Error differs:\nlocal  %#v\nremote %#v", c, le, re)
		}
		if run.ExitCode(lerr) != run.ExitCode(rerr) {
			t.Errorf("%s: run.ExitCode local %d, remote %d", c, run.ExitCode(lerr), run.ExitCode(rerr))
		}
	}
	return rres, rerr
}

func TestRoundTripFake(t *testing.T) {
	f := run.NewFake(t)
	f.On("lvs", "-o", "lv_name").Stdout("  lv0\n")
	f.On("drbdadm", "up", "r0").Return(run.Response{Stdout: "some output\n", Stderr: "r0: Failure: (114) Lower device is already claimed\n", ExitCode: 10})
	f.On("cat").Do(func(_ context.Context, c run.Cmd) (run.Result, error) {
		return run.Result{Stdout: c.Stdin}, nil
	})
	f.On("broken").Return(run.Response{Err: errors.New("something odd"), Stderr: "half a line"})
	sock := serve(t, map[string]run.Runner{"pve1": f})
	remote := NewRunner(sock, "pve1")

	tests := []struct {
		name string
		cmd  run.Cmd
		code int // run.ExitCode of the error
		out  string
	}{
		{"success", run.Command("lvs", "-o", "lv_name"), 0, "  lv0\n"},
		{"exit code", run.Command("drbdadm", "up", "r0"), 10, "some output\n"},
		{"stdin", run.Cmd{Name: "cat", Stdin: []byte("binary\x00\xff\n")}, 0, "binary\x00\xff\n"},
		{"other cause", run.Command("broken"), -1, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := sameRun(t, f, remote, tt.cmd)
			if got := run.ExitCode(err); got != tt.code {
				t.Errorf("exit code %d, want %d (%v)", got, tt.code, err)
			}
			if string(res.Stdout) != tt.out {
				t.Errorf("stdout %q, want %q", res.Stdout, tt.out)
			}
		})
	}

	// Everything in the Cmd reaches the server's Runner.
	c := run.Cmd{Name: "cat", Args: []string{"-"}, Env: []string{"__DRBD_NODE__=pve2"}, Dir: "/etc/drbd.d",
		Stdin: []byte("yes\n"), Timeout: 1500 * time.Millisecond}
	f.On("cat", "-").Stdout("")
	if _, err := remote.Run(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	calls := f.Calls()
	if got := calls[len(calls)-1]; got.String() != c.String() {
		t.Errorf("server ran\n%s\nwant\n%s", got, c)
	}
}

func TestUnexpectedCommandOnFake(t *testing.T) {
	f := run.NewFake(nil) // no reporter: the unexpected call is the test
	remote := NewRunner(serve(t, map[string]run.Runner{"pve1": f}), "pve1")
	_, err := remote.Run(context.Background(), run.Command("vgs"))
	if !errors.Is(err, run.ErrUnexpected) || run.ExitCode(err) != -1 {
		t.Errorf("err = %v, want run.ErrUnexpected", err)
	}
}

// newSimHost is a host with VG "pve", thin pool "data" and one thin LV.
func newSimHost(t *testing.T) *sim.Host {
	t.Helper()
	h := sim.NewHost("pve1")
	if err := h.AddVG("pve", "/dev/sdb", 1<<30); err != nil {
		t.Fatal(err)
	}
	if err := h.AddThinPool("pve", "data", 64<<20); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Runner().Run(context.Background(), run.Command("lvcreate", "-V", "8m", "-T", "pve/data", "-n", "vm-100-disk-0", "--addtag", "pvehci")); err != nil {
		t.Fatal(err)
	}
	return h
}

func TestRoundTripSim(t *testing.T) {
	h := newSimHost(t)
	local := h.Runner()
	remote := NewRunner(serve(t, map[string]run.Runner{"pve1": local}), "pve1")

	lvs := lvm.LVSArgs()
	res, err := sameRun(t, local, remote, run.Command(lvs[0], lvs[1:]...))
	if err != nil {
		t.Fatal(err)
	}
	got, err := lvm.ParseLVs(res.Stdout)
	if err != nil || len(got) != 2 {
		t.Errorf("lvs through the socket: %v, %d LVs (want the pool and one thin LV)\n%s", err, len(got), res.Stdout)
	}

	// lvm's own failure (exit 5) and command-line error (exit 3).
	_, err = sameRun(t, local, remote, run.Command("lvremove", "-f", "pve/nosuch"))
	if run.ExitCode(err) != 5 {
		t.Errorf("lvremove of a missing LV: %v, want exit code 5", err)
	}
	_, err = sameRun(t, local, remote, run.Command("lvcreate", "--bogus"))
	if run.ExitCode(err) != 3 {
		t.Errorf("lvcreate --bogus: %v, want exit code 3", err)
	}
	// A state change through the socket is seen locally.
	if _, err := remote.Run(context.Background(), run.Command("lvremove", "-f", "pve/vm-100-disk-0")); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Device("pve/vm-100-disk-0"); err == nil {
		t.Error("LV removed through the socket still exists on the host")
	}

	// A program the simulation does not answer is not found, as run.Exec
	// reports a program missing from PATH.
	_, err = sameRun(t, local, remote, run.Command("zfs", "list"))
	if !errors.Is(err, exec.ErrNotFound) || run.ExitCode(err) != -1 || !strings.Contains(err.Error(), "not found") {
		t.Errorf("zfs: %v, want not found", err)
	}
}

func TestExecTimeoutAndSignal(t *testing.T) {
	local := run.Exec{}
	remote := NewRunner(serve(t, map[string]run.Runner{"n": local}), "n")

	_, err := sameRun(t, local, remote, run.Cmd{Name: "sleep", Args: []string{"10"}, Timeout: 100 * time.Millisecond})
	var re *run.Error
	if !errors.As(err, &re) || re.Timeout != 100*time.Millisecond || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("sleep past Timeout: %v, want a timeout", err)
	}
	_, err = sameRun(t, local, remote, run.Command("sh", "-c", "echo out; echo err >&2; exit 7"))
	if run.ExitCode(err) != 7 {
		t.Errorf("exit 7: %v", err)
	}
	_, err = sameRun(t, local, remote, run.Command("sh", "-c", "kill -TERM $$"))
	if !errors.As(err, &re) || re.Signal != 15 {
		t.Errorf("killed by SIGTERM: %v", err)
	}
	_, err = sameRun(t, local, remote, run.Command("pvehci-no-such-program"))
	if !errors.Is(err, exec.ErrNotFound) {
		t.Errorf("missing program: %v, want exec.ErrNotFound", err)
	}
}

func TestClientContextEndsTheCall(t *testing.T) {
	f := run.NewFake(t)
	serverSaw := make(chan error, 1)
	f.On("drbdsetup", "wait-connect-resource", "r0").Do(func(ctx context.Context, c run.Cmd) (run.Result, error) {
		<-ctx.Done()
		serverSaw <- ctx.Err()
		return run.Result{ExitCode: -1}, ctx.Err()
	})
	remote := NewRunner(serve(t, map[string]run.Runner{"pve1": f}), "pve1")

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := remote.Run(ctx, run.Command("drbdsetup", "wait-connect-resource", "r0"))
	if !errors.Is(err, context.DeadlineExceeded) || run.ExitCode(err) != -1 {
		t.Errorf("err = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("call took %v after its context ended", d)
	}
	// The server's Runner is told too, so nothing keeps running.
	select {
	case <-serverSaw:
	case <-time.After(5 * time.Second):
		t.Error("the server's Runner never saw the cancellation")
	}

	// A context cancelled before the call is reported as such.
	done, stop := context.WithCancel(context.Background())
	stop()
	if _, err := remote.Run(done, run.Command("lvs")); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v", err)
	}
}

func TestConnectionErrors(t *testing.T) {
	sock := serve(t, map[string]run.Runner{"pve1": run.NewFake(t)})
	_, err := NewRunner(sock, "pve9").Run(context.Background(), run.Command("lvs"))
	if run.ExitCode(err) != -1 || !strings.Contains(err.Error(), `no node "pve9"`) {
		t.Errorf("unknown node: %v", err)
	}

	missing := filepath.Join(t.TempDir(), "gone.sock")
	_, err = NewRunner(missing, "pve1").Run(context.Background(), run.Command("lvs"))
	var re *run.Error
	if !errors.As(err, &re) || re.ExitCode != -1 || !strings.Contains(err.Error(), missing) ||
		!strings.Contains(err.Error(), "lab supervisor is not running") {
		t.Errorf("no socket: %v", err)
	}
	if !reflect.DeepEqual(re.Argv, []string{"lvs"}) {
		t.Errorf("Argv = %q", re.Argv)
	}
}
