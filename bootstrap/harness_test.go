package bootstrap_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pvehci/pvehci/bootstrap"
	"github.com/pvehci/pvehci/bootstrap/cluster"
	"github.com/pvehci/pvehci/bootstrap/simhost"
	"github.com/pvehci/pvehci/ha"
	"github.com/pvehci/pvehci/ha/state"
	"github.com/pvehci/pvehci/internal/clock"
	"github.com/pvehci/pvehci/storage/api"
	"github.com/pvehci/pvehci/storage/api/apitest"
	"github.com/pvehci/pvehci/storage/model"
)

// testClusterFile is a 3-node cluster: bonds of two NICs, one IPoIB port
// and one disk per node.
const testClusterFile = `cluster: hci1
networks:
  management: 10.0.0.0/24
  storage: 10.20.0.0/24
gateway: 10.0.0.254
bond:
  mtu: 9000
storage:
  pool_percent: 90
resource_groups:
  - name: drbdgrp
    place_count: 2
schedules:
  - name: nightly
    kind: snapshot
    cron: "0 2 * * *"
    resource_group: drbdgrp
    keep: 7
nodes:
  - name: pve1
    management: 10.0.0.1/24
    bond: {slaves: [enp65s0f0, enp65s0f1]}
    ipoib: {guid: "0002:c903:00a1:b201", address: 10.20.0.1/24}
    disks: [/dev/nvme0n1]
  - name: pve2
    management: 10.0.0.2/24
    bond: {slaves: [enp65s0f0, enp65s0f1]}
    ipoib: {guid: "0002:c903:00a1:b202", address: 10.20.0.2/24}
    disks: [/dev/nvme0n1]
  - name: pve3
    management: 10.0.0.3/24
    bond: {slaves: [enp65s0f0, enp65s0f1]}
    ipoib: {pci: "0000:81:00.0", port: 1, address: 10.20.0.3/24}
    disks: [/dev/nvme0n1]
`

// fakeDaemon is the pvehci daemons of the test cluster: membership and
// tokens as ha.Cluster keeps them, schedules in the API's state.
type fakeDaemon struct {
	mu      sync.Mutex
	name    string // cluster name once created
	members []string
	tokens  map[string]string // token → node
	running map[string]bool
	backend *apitest.Backend
}

type nodeDaemon struct {
	f    *fakeDaemon
	node string
}

func (d nodeDaemon) Status(context.Context) (ha.ClusterStatus, error) {
	d.f.mu.Lock()
	defer d.f.mu.Unlock()
	if !d.f.running[d.node] {
		return ha.ClusterStatus{}, errors.New("dial unix /run/pvehci/pvehci.sock: connect: no such file or directory")
	}
	st := ha.ClusterStatus{Node: d.node}
	for _, m := range d.f.members {
		st.Members = append(st.Members, ha.MemberStatus{Name: m})
		if m == d.node {
			st.Member, st.ClusterName = true, d.f.name
		}
	}
	return st, nil
}

func (d nodeDaemon) Init(_ context.Context, name string) error {
	d.f.mu.Lock()
	defer d.f.mu.Unlock()
	if d.f.name != "" {
		return errors.New("already initialised")
	}
	d.f.name, d.f.members = name, []string{d.node}
	return nil
}

func (d nodeDaemon) Join(_ context.Context, token string) error {
	d.f.mu.Lock()
	defer d.f.mu.Unlock()
	if d.f.tokens[token] != d.node {
		return fmt.Errorf("token is not for %s", d.node)
	}
	delete(d.f.tokens, token)
	d.f.members = append(d.f.members, d.node)
	return nil
}

func (d nodeDaemon) IssueToken(_ context.Context, node string, _ time.Duration) (string, error) {
	d.f.mu.Lock()
	defer d.f.mu.Unlock()
	tok := fmt.Sprintf("token-%s-%d", node, len(d.f.tokens))
	d.f.tokens[tok] = node
	return tok, nil
}

func (d nodeDaemon) Schedules(context.Context) ([]model.JobSchedule, error) {
	st, err := d.f.backend.Read(context.Background())
	if err != nil {
		return nil, err
	}
	return st.JobSchedules(), nil
}

func (d nodeDaemon) AddSchedule(ctx context.Context, cmd *state.AddJobSchedule) error {
	r, err := d.f.backend.Apply(ctx, cmd)
	if err != nil {
		return err
	}
	return r.Err
}

// testCluster is a simulated 3-node Proxmox cluster before bootstrap.
type testCluster struct {
	t       testing.TB
	world   *simhost.World
	nodes   map[string]*simhost.Node
	file    *cluster.Cluster
	daemons *fakeDaemon
	apiURL  map[string]string
	clock   *clock.Fake
}

func newTestCluster(t testing.TB) *testCluster {
	t.Helper()
	cl, err := cluster.Parse([]byte(testClusterFile))
	if err != nil {
		t.Fatal(err)
	}
	backend := apitest.New()
	handler := api.New(backend, api.Options{CompletionTimeout: 2 * time.Second, DeviceWaitTimeout: 2 * time.Second})
	tc := &testCluster{t: t, world: simhost.NewWorld(t.TempDir()), nodes: map[string]*simhost.Node{}, file: cl,
		daemons: &fakeDaemon{tokens: map[string]string{}, running: map[string]bool{}, backend: backend},
		apiURL:  map[string]string{}, clock: clock.NewFake(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC))}
	// Each node's API answers once its daemon runs, as on a node, where
	// the service step starts it.
	for _, name := range []string{"pve1", "pve2", "pve3"} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			tc.daemons.mu.Lock()
			up := tc.daemons.running[name]
			tc.daemons.mu.Unlock()
			if !up {
				http.Error(w, "pvehci is not running on "+name, http.StatusServiceUnavailable)
				return
			}
			handler.ServeHTTP(w, r)
		}))
		t.Cleanup(srv.Close)
		tc.apiURL[name] = srv.URL
	}
	guids := map[string]string{"pve1": "0002c90300a1b201", "pve2": "0002c90300a1b202", "pve3": "0002c90300a1b203"}
	for _, name := range []string{"pve1", "pve2", "pve3"} {
		n, err := tc.world.AddNode(name, "enp65s0f0", "enp65s0f1")
		if err != nil {
			t.Fatal(err)
		}
		n.AddIBPort(bootstrap.IBPort{Device: "mlx5_0", Port: 1, GUID: guids[name], PCI: "0000:81:00.0", NetDev: "ibp129s0"})
		if err := n.AddDisk("/dev/nvme0n1", 100<<30); err != nil {
			t.Fatal(err)
		}
		n.OnStart = func(context.Context, string) error {
			tc.daemons.mu.Lock()
			tc.daemons.running[name] = true
			tc.daemons.mu.Unlock()
			return nil
		}
		tc.nodes[name] = n
	}
	return tc
}

// engine is bootstrap for one node.
func (tc *testCluster) engine(name string, mod ...func(*bootstrap.Options)) *bootstrap.Engine {
	tc.t.Helper()
	node, err := tc.file.Node(name)
	if err != nil {
		tc.t.Fatal(err)
	}
	h := tc.nodes[name].Host()
	h.Clock = tc.clock
	o := bootstrap.Options{Cluster: tc.file, Node: node, Daemon: nodeDaemon{tc.daemons, name}, APIURL: tc.apiURL[name]}
	for _, f := range mod {
		f(&o)
	}
	return &bootstrap.Engine{Host: h, Steps: bootstrap.Steps(o)}
}

// bootstrapNode plans and applies, failing the test on an error.
func (tc *testCluster) bootstrapNode(name string) bootstrap.Plan {
	tc.t.Helper()
	e := tc.engine(name)
	ctx := context.Background()
	plan, err := e.Plan(ctx)
	if err != nil {
		tc.t.Fatalf("planning %s: %v", name, err)
	}
	if _, err := e.Apply(ctx, plan, nil); err != nil {
		tc.t.Fatalf("bootstrapping %s: %v\ncommands:\n%s", name, err, strings.Join(tc.nodes[name].Transcript(), "\n"))
	}
	return plan
}

// read returns a node's file ("" when missing).
func (tc *testCluster) read(node, path string) string {
	tc.t.Helper()
	data, err := tc.nodes[node].FS().ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return ""
	}
	if err != nil {
		tc.t.Fatal(err)
	}
	return string(data)
}

// tree is every file under a node's root with its bytes, for comparisons
// before and after a failed step.
func tree(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		out[rel] = fmt.Sprintf("%04o %s", fi.Mode().Perm(), data)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
