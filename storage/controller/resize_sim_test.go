package controller

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
	"github.com/pvehci/pvehci/storage/lvm"
	"github.com/pvehci/pvehci/storage/model"
	"github.com/pvehci/pvehci/storage/satellite"
	"github.com/pvehci/pvehci/storage/sim"
)

// simNode is a simulated host with the satellite's file system root. It
// gives drbdadm the resource's .res with -c, since the simulation reads
// only the file it is given (the real drbdadm reads /etc/drbd.conf, which
// includes satellite.ResDir).
type simNode struct {
	host *sim.Host
	root string
	mu   sync.Mutex
	cmds []run.Cmd
}

func (n *simNode) Run(ctx context.Context, c run.Cmd) (run.Result, error) {
	n.mu.Lock()
	n.cmds = append(n.cmds, c)
	n.mu.Unlock()
	if c.Name == "drbdadm" && len(c.Args) > 0 {
		res, _, _ := strings.Cut(c.Args[len(c.Args)-1], "/")
		c.Args = append([]string{"-c", n.root + satellite.ResPath(res)}, c.Args...)
	}
	return n.host.Runner().Run(ctx, c)
}

func (n *simNode) take() []run.Cmd {
	n.mu.Lock()
	defer n.mu.Unlock()
	c := n.cmds
	n.cmds = nil
	return c
}

// TestResizeOnSim grows a volume end to end on simulated hosts: two
// diskful replicas and a diskless client, their satellites' real code,
// the Store and the Completer. The satellites grow their LVs, the
// Completer names pve1, pve1 runs drbdadm resize once, every node's DRBD
// device reaches the new size, and the RESIZE flag clears. The data
// written before stays, the grown area reads as zeros on every node, and
// the backing LVs of the diskful replicas are equal block for block.
func TestResizeOnSim(t *testing.T) {
	t.Parallel()
	const oldKiB, newKiB = 8 << 10, 20 << 10
	names := []string{"pve1", "pve2", "pve3"}
	c := newSimCluster(t, oldKiB)
	s, nodes, recs, store := c.s, c.nodes, c.recs, c.store
	ran := map[string][]string{}
	c.onCmd = func(n string, cmd run.Cmd) {
		if (cmd.Name == "drbdadm" && slices.Contains(cmd.Args, "resize")) || cmd.Name == "lvextend" {
			ran[n] = append(ran[n], cmd.String())
		}
	}
	round := c.round
	vd := func() model.VolumeDefinition {
		rd, _ := s.ResourceDefinition(testRD)
		v, _ := rd.VolumeDefinition(0)
		return v
	}
	for i := 0; i < 6 && !vd().Flags.Has(model.VdFlagDrbdInitialized); i++ {
		round()
	}
	if !vd().Flags.Has(model.VdFlagDrbdInitialized) {
		t.Fatal("the resource never came up")
	}
	// The VM writes a pattern through pve3, the diskless client.
	pattern := bytes.Repeat([]byte("pvehci-resize-"), 4096/14+1)[:4096]
	dev, err := nodes["pve3"].host.OpenDRBD("/dev/drbd1000", true)
	if err != nil {
		t.Fatal(err)
	}
	for off := int64(0); off < oldKiB*1024; off += 256 << 10 {
		if _, err := dev.WriteAt(pattern, off); err != nil {
			t.Fatal(err)
		}
	}
	dev.Close()
	clear(ran)

	mustApply(t, s, &state.ModifyVolumeDefinition{ResourceDefinition: testRD, VolumeNumber: 0, SizeKiB: newKiB})
	rounds := 0
	for ; rounds < 8 && vd().Flags.Has(model.VdFlagResize); rounds++ {
		round()
	}
	if vd().Flags.Has(model.VdFlagResize) {
		t.Fatalf("RESIZE never cleared; commands %v; props %v", ran, vd().Props)
	}
	if _, ok := vd().Props[satellite.PropResizeRequest]; ok {
		t.Fatalf("request left behind: %v", vd().Props)
	}
	t.Logf("completed in %d rounds; commands %v", rounds, ran)
	resizes := 0
	for n, cmds := range ran {
		for _, c := range cmds {
			if strings.Contains(c, "drbdadm") && strings.Contains(c, " resize ") {
				resizes++
				if n != "pve1" {
					t.Errorf("%s ran %s; want only pve1", n, c)
				}
			}
		}
	}
	if resizes != 1 || len(ran["pve1"]) != 2 || len(ran["pve2"]) != 1 || len(ran["pve3"]) != 0 {
		t.Fatalf("commands %v: want lvextend on pve1 and pve2 and one drbdadm resize on pve1", ran)
	}
	// 20 MiB net with 7 peer slots is 20544 KiB gross, 24 MiB in 4 MiB
	// extents; LINSTOR's resize form for a thin volume.
	lvextend := "lvextend --size 24576k pve/" + lvm.VolumeLVName(testRD, 0)
	resize := "drbdadm -vvv -- --assume-clean resize " + testRD + "/0"
	if !strings.HasSuffix(ran["pve1"][0], lvextend) || !strings.HasSuffix(ran["pve2"][0], lvextend) || !strings.HasSuffix(ran["pve1"][1], resize) {
		t.Fatalf("commands %v: want %q on both and %q on pve1", ran, lvextend, resize)
	}
	// A converged cluster plans nothing more.
	for _, n := range names {
		rep, err := recs[n].Pass(t.Context(), s)
		if err != nil || len(rep.Plan.Actions) > 0 {
			t.Fatalf("%s after the resize: %v %v", n, rep.Plan.Actions, err)
		}
	}
	zero := make([]byte, 4096)
	buf := make([]byte, 4096)
	for _, n := range names {
		rep, _, _ := store.Report(n)
		k, _ := rep.Resource(testRD)
		if got := int64(k.Devices[0].SizeKiB); got < newKiB {
			t.Fatalf("%s: device %d KiB, want at least %d", n, got, newKiB)
		}
		dev, err := nodes[n].host.OpenDRBD("/dev/drbd1000", false)
		if err != nil {
			t.Fatal(err)
		}
		for off := int64(0); off < oldKiB*1024; off += 256 << 10 {
			if _, err := dev.ReadAt(buf, off); err != nil || !bytes.Equal(buf, pattern) {
				t.Fatalf("%s: data at %d lost (%v)", n, off, err)
			}
		}
		for off := int64(oldKiB * 1024); off < newKiB*1024; off += 4096 {
			if _, err := dev.ReadAt(buf, off); err != nil || !bytes.Equal(buf, zero) {
				t.Fatalf("%s: grown area at %d not zero (%v)", n, off, err)
			}
		}
		dev.Close()
	}
	// --assume-clean: the grown area was not resynchronized, so pve2's
	// thin LV holds only the chunks the VM wrote (a resync would have
	// written zeros over the whole new area).
	want, err := satellite.Desired(s, "pve2")
	if err != nil {
		t.Fatal(err)
	}
	got, err := recs["pve2"].Observe(t.Context(), want)
	if err != nil {
		t.Fatal(err)
	}
	if lv := got.LVs["pve/"+lvm.VolumeLVName(testRD, 0)]; lv.DataPercent.Value > 20 {
		t.Errorf("pve2's LV is %.2f%% allocated after the grow; the new area was resynchronized", lv.DataPercent.Value)
	} else {
		t.Logf("pve2's LV allocated after the grow: %.2f%%", lv.DataPercent.Value)
	}
	a, err := nodes["pve1"].host.Device(lvm.DevicePath("pve", lvm.VolumeLVName(testRD, 0)))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := nodes["pve2"].host.Device(lvm.DevicePath("pve", lvm.VolumeLVName(testRD, 0)))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if a.Size() != b.Size() {
		t.Fatalf("LV sizes differ: %d and %d", a.Size(), b.Size())
	}
	x, y := make([]byte, 4096), make([]byte, 4096)
	for off := int64(0); off < a.Size(); off += 4096 {
		a.ReadAt(x, off)
		b.ReadAt(y, off)
		if !bytes.Equal(x, y) {
			t.Fatalf("backing LVs differ at %d", off)
		}
	}
}

// simCluster is three simulated hosts, pve1 and pve2 with a diskful
// replica of testRD and pve3 with a diskless one, their satellites' real
// code, the Store and the Completer.
type simCluster struct {
	t     *testing.T
	names []string
	s     *state.State
	net   *sim.Network
	nodes map[string]*simNode
	recs  map[string]*satellite.Reconciler
	store *Store
	comp  *Completer
	seq   uint64
	// onCmd, when set, sees every command a satellite pass ran.
	onCmd func(node string, c run.Cmd)
}

func newSimCluster(t *testing.T, sizeKiB int64) *simCluster {
	c := &simCluster{t: t, names: []string{"pve1", "pve2", "pve3"}, s: state.New(), net: sim.NewNetwork(),
		nodes: map[string]*simNode{}, recs: map[string]*satellite.Reconciler{}, store: &Store{}}
	s := c.s
	for i, n := range c.names {
		mustApply(t, s, &state.CreateNode{Name: n, NodeType: model.NodeTypeSatellite,
			NetInterfaces: []model.NetInterface{{Name: "default", Address: fmt.Sprintf("10.99.0.%d", i+1)}}})
		mustApply(t, s, &state.CreateStoragePool{Node: n, Name: model.DefaultStoragePool, ProviderKind: model.ProviderLVMThin,
			Props: model.Props{model.KeyStorDriverLvmVg: "pve", model.KeyStorDriverThinPool: "data"}})
	}
	mustApply(t, s, &state.CreateResourceDefinition{Name: testRD, DrbdSecret: testSecret,
		VolumeDefinitions: []state.NewVolumeDefinition{{SizeKiB: sizeKiB}}})
	for i, n := range c.names {
		kind := state.Diskful
		if i == 2 {
			kind = state.Diskless
		}
		mustApply(t, s, &state.CreateResource{ResourceDefinition: testRD, Node: n, Kind: kind})
	}
	for _, n := range c.names {
		h := sim.NewHost(n)
		if err := h.AddVG("pve", "/dev/sdb", 1<<30); err != nil {
			t.Fatal(err)
		}
		if err := h.AddThinPool("pve", "data", 256<<20); err != nil {
			t.Fatal(err)
		}
		c.net.Attach(h)
		root := t.TempDir()
		if err := os.MkdirAll(root+satellite.ResDir, 0o755); err != nil {
			t.Fatal(err)
		}
		c.nodes[n] = &simNode{host: h, root: root}
		c.recs[n] = &satellite.Reconciler{Node: n, Runner: c.nodes[n], FS: hostfs.Root(root), ResDir: os.DirFS(root + satellite.ResDir).(fs.ReadDirFS)}
	}
	c.comp = &Completer{Store: c.store, State: func() *state.State { return s },
		Apply: func(_ context.Context, cmd state.Command) (state.Result, error) { return s.Apply(cmd), nil }}
	return c
}

// round is one satellite pass per node, each followed by its report
// (taken after it acted, as the satellite loop sends it), one Completer
// pass, and the resyncs run to their end.
func (c *simCluster) round() {
	c.t.Helper()
	c.roundOn(c.names...)
}

// roundOn is a round in which only nodes run their satellites.
func (c *simCluster) roundOn(nodes ...string) {
	t := c.t
	t.Helper()
	for _, n := range nodes {
		rep, err := c.recs[n].Pass(t.Context(), c.s)
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		for _, f := range rep.Failed() {
			t.Fatalf("%s: %s failed: %v", n, f.Action, f.Err)
		}
		for _, cmd := range c.nodes[n].take() {
			if c.onCmd != nil {
				c.onCmd(n, cmd)
			}
		}
		want, err := satellite.Desired(c.s, n)
		if err != nil {
			t.Fatal(err)
		}
		got, err := c.recs[n].Observe(t.Context(), want)
		if err != nil {
			t.Fatal(err)
		}
		c.nodes[n].take()
		nr := satellite.BuildReport(n, c.s, want, got, rep)
		c.seq++
		nr.Seq = c.seq
		c.store.Put(nr)
	}
	if err := c.comp.Pass(t.Context()); err != nil {
		t.Fatal(err)
	}
	c.net.Settle()
}

// until runs rounds until done holds, at most max of them.
func (c *simCluster) until(what string, max int, done func() bool) {
	c.t.Helper()
	for i := 0; i < max; i++ {
		if done() {
			return
		}
		c.round()
	}
	if !done() {
		c.t.Fatalf("%s: not reached in %d rounds", what, max)
	}
}
