package satellite

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/pvehci/pvehci/ha/state"
	"github.com/pvehci/pvehci/internal/hostfs"
	"github.com/pvehci/pvehci/internal/run"
	"github.com/pvehci/pvehci/storage/drbd"
	"github.com/pvehci/pvehci/storage/lvm"
	"github.com/pvehci/pvehci/storage/model"
	"github.com/pvehci/pvehci/storage/sim"
)

// simNode is one simulated host with the satellite's file system root.
type simNode struct {
	host *sim.Host
	root string
	mu   sync.Mutex
	cmds []run.Cmd // commands of the current round
}

// Run hands the command to the simulated host, giving drbdadm the .res
// with -c: the satellite runs drbdadm without -c (the real one reads
// /etc/drbd.conf, which includes ResDir), and the simulation reads only the
// file it is given.
func (n *simNode) Run(ctx context.Context, c run.Cmd) (run.Result, error) {
	n.mu.Lock()
	n.cmds = append(n.cmds, c)
	n.mu.Unlock()
	if c.Name == "drbdadm" && len(c.Args) > 0 {
		res, _, _ := strings.Cut(c.Args[len(c.Args)-1], "/")
		c.Args = append([]string{"-c", n.root + ResPath(res)}, c.Args...)
	}
	return n.host.Runner().Run(ctx, c)
}

func (n *simNode) takeCmds() []run.Cmd {
	n.mu.Lock()
	defer n.mu.Unlock()
	c := n.cmds
	n.cmds = nil
	return c
}

type simCluster struct {
	t     *testing.T
	s     *state.State
	net   *sim.Network
	nodes map[string]*simNode
	order []string
}

func newSimCluster(t *testing.T, s *state.State, names ...string) *simCluster {
	t.Helper()
	c := &simCluster{t: t, s: s, net: sim.NewNetwork(), nodes: map[string]*simNode{}, order: names}
	for _, name := range names {
		h := sim.NewHost(name)
		if err := h.AddVG("pve", "/dev/sdb", 1<<30); err != nil {
			t.Fatal(err)
		}
		if err := h.AddThinPool("pve", "data", 256<<20); err != nil {
			t.Fatal(err)
		}
		c.net.Attach(h)
		root := t.TempDir()
		if err := os.MkdirAll(root+ResDir, 0o755); err != nil {
			t.Fatal(err)
		}
		c.nodes[name] = &simNode{host: h, root: root}
	}
	return c
}

func (c *simCluster) reconciler(name string) *Reconciler {
	n := c.nodes[name]
	return &Reconciler{Node: name, Runner: n, FS: hostfs.Root(n.root), ResDir: os.DirFS(n.root + ResDir).(fs.ReadDirFS)}
}

// converge runs rounds of one pass per node, in order, until a round
// plans nothing anywhere; that last round must run only read commands.
// It returns the kinds of the actions each node ran, in order.
func (c *simCluster) converge() map[string][]Kind {
	c.t.Helper()
	ran := map[string][]Kind{}
	for round := 1; round <= 6; round++ {
		planned := false
		for _, name := range c.order {
			rep, err := c.reconciler(name).Pass(context.Background(), c.s)
			if err != nil {
				c.t.Fatalf("round %d, %s: %v", round, name, err)
			}
			for _, o := range rep.Outcomes {
				if o.Err != nil || o.Skipped {
					c.t.Fatalf("round %d, %s: %s failed: %v", round, name, o.Action, o.Err)
				}
				ran[name] = append(ran[name], o.Action.Kind)
			}
			for _, p := range rep.Plan.Problems {
				c.t.Errorf("round %d, %s: problem %s: %v", round, name, p.Resource, p.Err)
			}
			cmds := c.nodes[name].takeCmds()
			if len(rep.Plan.Actions) > 0 {
				planned = true
				continue
			}
			for _, cmd := range cmds {
				if !isRead(cmd) {
					c.t.Errorf("round %d, %s planned nothing but ran %s", round, name, cmd)
				}
			}
		}
		if !planned {
			return ran
		}
	}
	c.t.Fatal("the cluster does not converge")
	return nil
}

// observe is the kernel's view of the resource on a node, through the
// satellite's own Observe.
func (c *simCluster) observe(name string) drbd.ObservedResource {
	c.t.Helper()
	r := c.reconciler(name)
	want, err := Desired(c.s, name)
	if err != nil {
		c.t.Fatal(err)
	}
	got, err := r.Observe(context.Background(), want)
	if err != nil {
		c.t.Fatal(err)
	}
	c.nodes[name].takeCmds()
	return got.DRBD[rsc]
}

// data reads the usable part of a node's backing LV (DRBD's internal
// metadata sits behind it).
func (c *simCluster) data(name string, sizeKiB int64) []byte {
	c.t.Helper()
	dev, err := c.nodes[name].host.Device(lvm.DevicePath("pve", lvm.VolumeLVName(rsc, 0)))
	if err != nil {
		c.t.Fatal(err)
	}
	defer dev.Close()
	buf := make([]byte, sizeKiB*1024)
	if _, err := dev.ReadAt(buf, 0); err != nil {
		c.t.Fatalf("%s: read backing device: %v", name, err)
	}
	return buf
}

// TestInitialSyncOnSim runs the satellite on simulated hosts through the
// birth of a resource (two diskful replicas and a diskless client: the
// winner skips the initial sync, nothing is copied) and the later addition
// of a diskful replica to the initialized volume (full sync, data equal
// block for block).
func TestInitialSyncOnSim(t *testing.T) {
	t.Parallel()
	const sizeKiB = 8 << 10
	s := kindCluster(t, sizeKiB, state.Diskful, state.Diskful, state.Diskless)
	// pve4 is in the cluster from the start and gets its replica later.
	if res := s.Apply(&state.CreateNode{Name: "pve4", NodeType: model.NodeTypeSatellite,
		NetInterfaces: []model.NetInterface{{Name: "default", Address: "10.99.0.4"}}}); res.Err != nil {
		t.Fatal(res.Err)
	}
	if res := s.Apply(&state.CreateStoragePool{Node: "pve4", Name: model.DefaultStoragePool, ProviderKind: model.ProviderLVMThin,
		Props: model.Props{model.KeyStorDriverLvmVg: "pve", model.KeyStorDriverThinPool: "data"}}); res.Err != nil {
		t.Fatal(res.Err)
	}
	c := newSimCluster(t, s, "pve1", "pve2", "pve3", "pve4")
	c.order = []string{"pve1", "pve2", "pve3"}

	// Birth: the winner (pve1, node id 0) waits for pve2 to connect, then
	// skips the sync; nobody forces a primary.
	ran := c.converge()
	t.Logf("birth: %v", ran)
	for _, name := range c.order {
		want := 0
		if name == "pve1" {
			want = 1
		}
		if n := strings.Count(fmt.Sprint(ran[name]), string(SkipInitialSync)); n != want || slices.Contains(ran[name], ForcePrimary) {
			t.Errorf("%s ran %v, want SkipInitialSync %d times and no ForcePrimary", name, ran[name], want)
		}
	}
	for _, name := range []string{"pve1", "pve2"} {
		k := c.observe(name)
		if len(k.Devices) != 1 || k.Devices[0].Disk != drbd.DiskUpToDate {
			t.Fatalf("%s: devices %+v, want volume 0 UpToDate", name, k.Devices)
		}
		for _, conn := range k.Connections {
			for _, pd := range conn.PeerDevices {
				if conn.Connection != drbd.ConnConnected || pd.Replication != drbd.ReplEstablished || pd.SentKiB != 0 || pd.ReceivedKiB != 0 || pd.OutOfSyncKiB != 0 {
					t.Errorf("%s toward %s: %s %s sent %d received %d out-of-sync %d KiB, want connected with nothing copied or owed",
						name, conn.Name, conn.Connection, pd.Replication, pd.SentKiB, pd.ReceivedKiB, pd.OutOfSyncKiB)
				}
			}
		}
	}
	if k := c.observe("pve3"); len(k.Devices) != 1 || k.Devices[0].Disk != drbd.DiskDiskless {
		t.Errorf("pve3: devices %+v, want a diskless client", k.Devices)
	}

	// A VM writes through pve1 (auto-promote on open, demote on close).
	def, _ := s.ResourceDefinition(rsc)
	dev, err := c.nodes["pve1"].host.OpenDRBD(fmt.Sprintf("/dev/drbd%d", def.VolumeDefinitions[0].Minor), true)
	if err != nil {
		t.Fatal(err)
	}
	for i, off := range []int64{0, 4096, 1 << 20, 5<<20 + 8192, sizeKiB*1024 - 4096} {
		if _, err := dev.WriteAt(bytes.Repeat([]byte{byte(0xa0 + i)}, 4096), off); err != nil {
			t.Fatalf("write at %d: %v", off, err)
		}
	}
	if err := dev.Close(); err != nil {
		t.Fatal(err)
	}

	// The controller flags the volume once a replica is UpToDate; then a
	// third diskful replica joins and must copy everything.
	setVDInitialized(t, s)
	if res := s.Apply(&state.CreateResource{ResourceDefinition: rsc, Node: "pve4", Kind: state.Diskful}); res.Err != nil {
		t.Fatal(res.Err)
	}
	c.order = []string{"pve1", "pve2", "pve3", "pve4"}
	ran = c.converge()
	t.Logf("join: %v", ran)
	for _, name := range c.order {
		if slices.Contains(ran[name], SkipInitialSync) || slices.Contains(ran[name], ForcePrimary) {
			t.Errorf("%s ran %v on an initialized volume", name, ran[name])
		}
	}
	if !slices.Contains(ran["pve4"], CreateMD) {
		t.Errorf("pve4 ran %v, want fresh metadata", ran["pve4"])
	}
	k := c.observe("pve4")
	if len(k.Devices) != 1 || k.Devices[0].Disk != drbd.DiskInconsistent {
		t.Fatalf("pve4 before the sync: devices %+v, want Inconsistent", k.Devices)
	}
	syncing := false
	for _, conn := range k.Connections {
		for _, pd := range conn.PeerDevices {
			syncing = syncing || pd.Replication == drbd.ReplSyncTarget && pd.PeerDisk == drbd.DiskUpToDate
		}
	}
	if !syncing {
		t.Fatalf("pve4 is no SyncTarget of an UpToDate peer: %+v", k.Connections)
	}

	c.net.Settle()
	if k := c.observe("pve4"); k.Devices[0].Disk != drbd.DiskUpToDate {
		t.Errorf("pve4 after the sync: %s, want UpToDate", k.Devices[0].Disk)
	}
	src, dst := c.data("pve1", sizeKiB), c.data("pve4", sizeKiB)
	if bytes.Equal(src, make([]byte, len(src))) {
		t.Fatal("pve1 holds no written data; the test wrote nothing")
	}
	for off := 0; off < len(src); off += 4096 {
		if !bytes.Equal(src[off:off+4096], dst[off:off+4096]) {
			t.Errorf("block at %d differs between pve1 and pve4 after the full sync", off)
		}
	}
	if pve2 := c.data("pve2", sizeKiB); !bytes.Equal(src, pve2) {
		t.Error("pve2 differs from pve1")
	}
	// Nothing is left to do anywhere.
	if ran := c.converge(); len(ran) != 0 {
		t.Errorf("a pass after the sync ran %v", ran)
	}
}

// TestForcedInitialSyncOnSim covers the births that copy: ForceInitialSync
// (the peer becomes a full SyncTarget of the winner) and a lone diskful
// replica (which simply becomes UpToDate).
func TestForcedInitialSyncOnSim(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		kinds     []state.ResourceKind
		force     bool
		wantPeers int // diskful peers that must be SyncTarget of pve1
	}{
		{name: "ForceInitialSync", kinds: []state.ResourceKind{state.Diskful, state.Diskful}, force: true, wantPeers: 1},
		{name: "single replica with a client", kinds: []state.ResourceKind{state.Diskful, state.Diskless}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := kindCluster(t, 1<<10, tc.kinds...)
			if tc.force {
				setProps(t, s, state.Target{Kind: model.ObjResourceDefinition, ResourceDefinition: rsc}, model.Props{model.KeyForceInitialSync: "true"})
			}
			var names []string
			for i := range tc.kinds {
				names = append(names, fmt.Sprintf("pve%d", i+1))
			}
			c := newSimCluster(t, s, names...)
			ran := c.converge()
			for _, name := range names {
				want := 0
				if name == "pve1" {
					want = 1
				}
				if n := strings.Count(fmt.Sprint(ran[name]), string(ForcePrimary)); n != want || slices.Contains(ran[name], SkipInitialSync) {
					t.Errorf("%s ran %v, want ForcePrimary %d times and no SkipInitialSync", name, ran[name], want)
				}
			}
			k := c.observe("pve1")
			if k.Role != drbd.RoleSecondary || k.Devices[0].Disk != drbd.DiskUpToDate {
				t.Errorf("pve1: %s, disk %s; want Secondary again, UpToDate", k.Role, k.Devices[0].Disk)
			}
			targets := 0
			for _, conn := range k.Connections {
				for _, pd := range conn.PeerDevices {
					if pd.Replication == drbd.ReplSyncSource {
						targets++
					}
				}
			}
			if targets != tc.wantPeers {
				t.Errorf("pve1 is SyncSource toward %d peers, want %d: %+v", targets, tc.wantPeers, k.Connections)
			}
			c.net.Settle()
			for i, kind := range tc.kinds {
				name := names[i]
				want := drbd.DiskUpToDate
				if kind == state.Diskless {
					want = drbd.DiskDiskless
				}
				if k := c.observe(name); k.Devices[0].Disk != want {
					t.Errorf("%s after the sync: %s, want %s", name, k.Devices[0].Disk, want)
				}
			}
			if ran := c.converge(); len(ran) != 0 {
				t.Errorf("a pass after the sync ran %v", ran)
			}
		})
	}
}
