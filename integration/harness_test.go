package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pvehci/pvehci/ha"
	"github.com/pvehci/pvehci/ha/state"
	"github.com/pvehci/pvehci/internal/localapi"
	"github.com/pvehci/pvehci/storage/model"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// pvehciBinary builds the real binary once per test run.
func pvehciBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "pvehci-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "pvehci")
		out, err := exec.Command("go", "build", "-o", binPath, "../cmd/pvehci").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// daemonProc is one `pvehci daemon` process of a test cluster.
type daemonProc struct {
	t        testing.TB
	name     string
	dir      string
	addr     string
	socket   string
	logPath  string
	cmd      *exec.Cmd
	done     chan struct{}
	wrap     []string // runs the daemon under this command, e.g. ip netns exec NS
	api      *localapi.Client
	restAddr string // the LINSTOR REST API's address
}

func newDaemon(t testing.TB, name string) *daemonProc {
	dir := t.TempDir()
	d := &daemonProc{t: t, name: name, dir: dir, addr: freeAddr(t),
		socket: filepath.Join(dir, "pvehci.sock"), logPath: filepath.Join(dir, "daemon.log"), restAddr: freeAddr(t)}
	d.api = localapi.NewClient(d.socket)
	d.start()
	t.Cleanup(func() {
		d.kill()
		if t.Failed() {
			if b, err := os.ReadFile(d.logPath); err == nil {
				t.Logf("log of %s:\n%s", name, lastLines(string(b), 60))
			}
		}
	})
	return d
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (d *daemonProc) start() {
	d.t.Helper()
	logf, err := os.OpenFile(d.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		d.t.Fatal(err)
	}
	argv := append(append([]string(nil), d.wrap...), pvehciBinary(d.t), "--log-level", "debug", "daemon",
		"--node", d.name, "--data-dir", filepath.Join(d.dir, "data"),
		"--peer-listen", d.addr, "--advertise", d.addr, "--socket", d.socket, "--api-listen", d.restAddr, "--satellite=false")
	d.cmd = exec.Command(argv[0], argv[1:]...)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	if err := d.cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	d.done = make(chan struct{})
	go func(c *exec.Cmd, done chan struct{}) { c.Wait(); logf.Close(); close(done) }(d.cmd, d.done)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if d.client().Do(context.Background(), "GET", "/v1/status", nil, nil) == nil {
			return
		}
		select {
		case <-d.done:
			d.t.Fatalf("daemon %s exited during start", d.name)
		case <-time.After(20 * time.Millisecond):
		}
	}
	d.t.Fatalf("daemon %s did not answer on its socket within 20s", d.name)
}

// kill ends the process with SIGKILL, as a crash or power loss would.
func (d *daemonProc) kill() {
	if d.cmd == nil || d.cmd.Process == nil {
		return
	}
	select {
	case <-d.done:
	default:
		d.cmd.Process.Signal(syscall.SIGKILL)
		<-d.done
	}
}

// stop ends the process with SIGTERM, as systemd would.
func (d *daemonProc) stop() {
	select {
	case <-d.done:
		return
	default:
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(30 * time.Second):
		d.t.Errorf("daemon %s did not stop within 30s of SIGTERM", d.name)
		d.kill()
	}
}

// client is one client per daemon, so that its connections are reused.
func (d *daemonProc) client() *localapi.Client { return d.api }

// cli runs the real binary's command line against this daemon.
func (d *daemonProc) cli(args ...string) (string, error) {
	cmd := exec.Command(pvehciBinary(d.t), args...)
	cmd.Env = append(os.Environ(), "PVEHCI_SOCKET="+d.socket)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (d *daemonProc) status() (ha.ClusterStatus, error) {
	var st ha.ClusterStatus
	err := d.client().Do(context.Background(), "GET", "/v1/status", nil, &st)
	return st, err
}

// apply replicates a command through this node's daemon.
func (d *daemonProc) apply(ctx context.Context, cmd state.Command) error {
	entry, err := state.Encode(cmd)
	if err != nil {
		return err
	}
	return d.client().Do(ctx, "POST", "/v1/apply", json.RawMessage(entry), nil)
}

func (d *daemonProc) snapshot() ([]byte, error) {
	var b []byte
	err := d.client().Do(context.Background(), "GET", "/v1/state", nil, &b)
	return b, err
}

func waitUntil(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s", timeout, what)
}

// formCluster starts n daemons and makes them one cluster through the
// command line, the way an operator does.
func formCluster(t testing.TB, n int) []*daemonProc {
	t.Helper()
	nodes := make([]*daemonProc, n)
	for i := range nodes {
		nodes[i] = newDaemon(t, fmt.Sprintf("n%d", i+1))
	}
	joinAll(t, nodes)
	return nodes
}

// joinAll makes running daemons one cluster: init on the first, a token and
// a join for each other one, then waits for the voters.
func joinAll(t testing.TB, nodes []*daemonProc) {
	t.Helper()
	n := len(nodes)
	if out, err := nodes[0].cli("cluster", "init", "lab"); err != nil {
		t.Fatalf("cluster init: %v\n%s", err, out)
	}
	for _, d := range nodes[1:] {
		tok, err := nodes[0].cli("cluster", "token", d.name)
		if err != nil {
			t.Fatalf("cluster token %s: %v\n%s", d.name, err, tok)
		}
		token := strings.TrimSpace(strings.SplitN(tok, "\n", 2)[0])
		if out, err := d.cli("cluster", "join", token); err != nil {
			t.Fatalf("cluster join on %s: %v\n%s", d.name, err, out)
		}
	}
	want := min(n, 5)
	if want%2 == 0 {
		want--
	}
	waitUntil(t, 30*time.Second, fmt.Sprintf("%d voters", want), func() bool {
		st, err := nodes[0].status()
		if err != nil || st.Raft == nil {
			return false
		}
		v := 0
		for _, s := range st.Raft.Servers {
			if s.Voter {
				v++
			}
		}
		return v == want
	})
}

// leaderOf returns the daemon that leads, as the members report it.
func leaderOf(t testing.TB, nodes []*daemonProc) *daemonProc {
	t.Helper()
	var leader *daemonProc
	waitUntil(t, 15*time.Second, "a leader", func() bool {
		for _, d := range nodes {
			st, err := d.status()
			if err != nil || st.Raft == nil || st.Raft.LeaderID == "" {
				continue
			}
			for _, c := range nodes {
				if c.name == st.Raft.LeaderID {
					leader = c
					return true
				}
			}
		}
		return false
	})
	return leader
}

// storageObjects creates the satellite nodes and pools resources need.
func storageObjects(t testing.TB, d *daemonProc) {
	t.Helper()
	ctx := context.Background()
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("pve%d", i)
		cmds := []state.Command{
			&state.CreateNode{Name: name, NodeType: model.NodeTypeSatellite, NetInterfaces: []model.NetInterface{{Name: "default", Address: fmt.Sprintf("10.0.0.%d", i)}}},
			&state.CreateStoragePool{Node: name, Name: "thin", ProviderKind: model.ProviderLVMThin,
				Props: model.Props{model.KeyStorDriverLvmVg: "pve", model.KeyStorDriverThinPool: "data"}},
		}
		for _, c := range cmds {
			if err := d.apply(ctx, c); err != nil {
				t.Fatalf("%s: %v", c.Type(), err)
			}
		}
	}
}
