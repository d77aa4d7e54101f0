package lab

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/pvehci/pvehci/bootstrap"
	"github.com/pvehci/pvehci/bootstrap/cluster"
	"github.com/pvehci/pvehci/bootstrap/simhost"
	"github.com/pvehci/pvehci/internal/clock"
)

// The lab's storage names, as its cluster file sets them.
const (
	VolumeGroup = "pvehci"
	diskPath    = "/dev/vdb"
	poolPercent = 95
)

// ClusterFile is the lab's cluster file: every node on its loopback
// address, a bond of two simulated NICs under vmbr0, one disk for the
// thin pool, no InfiniBand (DRBD and corosync then use the management
// address). Controllers are the first 1, 3 or 5 nodes: raft wants an odd
// number.
func (l *Lab) ClusterFile() []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "# The lab's cluster file, written by pvehci lab up.\ncluster: %s\nnetworks:\n  management: 127.0.0.0/8\n", ClusterName)
	fmt.Fprintf(&b, "storage:\n  volume_group: %s\n  thin_pool: %s\n  pool_percent: %d\n  proxmox_storage: %s\n", VolumeGroup, StoragePool, poolPercent, StorageName)
	fmt.Fprintf(&b, "drbd:\n  transport: tcp\nresource_groups:\n  - name: %s\n    place_count: %d\nnodes:\n", ResourceGroup, min(2, len(l.Nodes)))
	controllers := 1
	for _, k := range []int{3, 5} {
		if len(l.Nodes) >= k {
			controllers = k
		}
	}
	for i, n := range l.Nodes {
		fmt.Fprintf(&b, "  - name: %s\n    management: %s/8\n    bond: {slaves: [eth0, eth1]}\n    disks: [%s]\n    controller: %t\n",
			n.Name, n.Addr, diskPath, i < controllers)
	}
	return []byte(b.String())
}

// ClusterFilePath is where the lab keeps its cluster file.
func (l *Lab) ClusterFilePath() string { return filepath.Join(l.cfg.Dir, "cluster.yaml") }

// setupHosts makes each node a fresh simulated Proxmox VE node around its
// root directory and simulated kernel, all in one simulated Proxmox
// cluster world (pmxcfs under DIR/pve).
func (l *Lab) setupHosts() error {
	cl, err := cluster.Parse(l.ClusterFile())
	if err != nil {
		return fmt.Errorf("the lab's cluster file: %w", err)
	}
	l.cluster = cl
	l.world = simhost.NewWorld(filepath.Join(l.cfg.Dir, "pve"))
	for _, n := range l.Nodes {
		sn, err := l.world.AddNodeOn(n.Name, n.Root, n.host, "eth0", "eth1")
		if err != nil {
			return err
		}
		// The simulated systemd runs the daemon the lab way (its root,
		// the shared kernel socket); the unit file bootstrap wrote is
		// on disk for inspection.
		sn.OnStart = func(ctx context.Context, unit string) error {
			if unit != bootstrap.UnitName {
				return fmt.Errorf("the lab runs no unit %s", unit)
			}
			if n.Alive() {
				n.stop(10 * time.Second)
			}
			return l.startDaemon(n)
		}
		n.simHost = sn
	}
	return nil
}

// engine is `pvehci bootstrap` for one lab node against its simulated host.
func (l *Lab) engine(n *Node) (*bootstrap.Engine, error) {
	node, err := l.cluster.Node(n.Name)
	if err != nil {
		return nil, err
	}
	h := n.simHost.Host()
	h.Clock, h.Log = clock.Real{}, l.log
	o := bootstrap.Options{Cluster: l.cluster, Node: node,
		Daemon: bootstrap.NewLocalDaemon(n.Socket), APIURL: n.APIURL()}
	return &bootstrap.Engine{Host: h, Steps: bootstrap.Steps(o)}, nil
}

// bootstrapAll brings every node up through `pvehci bootstrap`'s steps,
// first node first, as an admin would.
func (l *Lab) bootstrapAll(ctx context.Context) error {
	for _, n := range l.Nodes {
		start := time.Now()
		e, err := l.engine(n)
		if err != nil {
			return err
		}
		plan, err := e.Plan(ctx)
		if err != nil {
			return fmt.Errorf("planning bootstrap of %s: %w", n.Name, err)
		}
		if _, err := e.Apply(ctx, plan, nil); err != nil {
			return fmt.Errorf("bootstrapping %s: %w", n.Name, err)
		}
		l.log.Info("node bootstrapped", "node", n.Name, "elapsed", time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// BootstrapRequest asks the supervisor to run bootstrap on a node.
type BootstrapRequest struct {
	Node string `json:"node"`
	Plan bool   `json:"plan"`
}

// BootstrapResult is what `lab exec NODE -- bootstrap` shows.
type BootstrapResult struct {
	Plan   string           `json:"plan"`
	Empty  bool             `json:"empty"`
	Record bootstrap.Record `json:"record,omitzero"`
}

// Bootstrap runs bootstrap on a node as `pvehci bootstrap` would there:
// the plan, and unless planOnly, the apply (which on a converged node
// only verifies).
func (l *Lab) Bootstrap(ctx context.Context, name string, planOnly bool) (BootstrapResult, error) {
	n, err := l.Node(name)
	if err != nil {
		return BootstrapResult{}, err
	}
	e, err := l.engine(n)
	if err != nil {
		return BootstrapResult{}, err
	}
	plan, err := e.Plan(ctx)
	if err != nil {
		return BootstrapResult{}, err
	}
	res := BootstrapResult{Plan: plan.String(), Empty: plan.Empty()}
	if planOnly {
		return res, nil
	}
	rec, err := e.Apply(ctx, plan, nil)
	if rec != nil {
		res.Record = *rec
	}
	return res, err
}
