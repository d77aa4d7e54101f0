package satellite_test

// The end-to-end snapshot test lives in the external test package because
// it runs the controller (storage/controller imports this package).

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
	"time"

	"github.com/pvehci/pvehci/ha/state"
	"github.com/pvehci/pvehci/internal/hostfs"
	"github.com/pvehci/pvehci/internal/run"
	"github.com/pvehci/pvehci/storage/controller"
	"github.com/pvehci/pvehci/storage/lvm"
	"github.com/pvehci/pvehci/storage/model"
	"github.com/pvehci/pvehci/storage/satellite"
	"github.com/pvehci/pvehci/storage/sim"
)

const (
	snapRsc  = "vm-100-disk-1"
	snapName = "snap1"
)

// cmdLog records the mutating commands of every host in one order.
type cmdLog struct {
	mu   sync.Mutex
	cmds []string // "node argv…"
}

func (l *cmdLog) add(node string, c run.Cmd) {
	switch c.Name {
	case "drbdadm", "lvcreate", "lvremove":
	default:
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cmds = append(l.cmds, node+" "+strings.Join(append([]string{c.Name}, c.Args...), " "))
}

func (l *cmdLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.cmds)
}

// simRunner hands commands to a simulated host, giving drbdadm the .res
// with -c as the real drbdadm finds it through /etc/drbd.conf (see
// initialsync_sim_test.go).
type simRunner struct {
	node string
	host *sim.Host
	root string
	log  *cmdLog
}

func (n *simRunner) Run(ctx context.Context, c run.Cmd) (run.Result, error) {
	n.log.add(n.node, c)
	if c.Name == "drbdadm" && len(c.Args) > 0 {
		res, _, _ := strings.Cut(c.Args[len(c.Args)-1], "/")
		c.Args = append([]string{"-c", n.root + satellite.ResPath(res)}, c.Args...)
	}
	return n.host.Runner().Run(ctx, c)
}

type snapSim struct {
	t     *testing.T
	s     *state.State
	nodes []string
	hosts map[string]*simRunner
	store *controller.Store
	ctrl  *controller.Completer
	seq   uint64
	log   *cmdLog
	// now is the clock of the controller and every satellite.
	now time.Time
	// slow skips the passes of a node for as many rounds: a satellite
	// that lags behind the others.
	slow map[string]int
}

func newSnapSim(t *testing.T, sizeKiB int64) *snapSim {
	t.Helper()
	s := state.New()
	must := func(cmd state.Command) {
		t.Helper()
		if res := s.Apply(cmd); res.Err != nil {
			t.Fatalf("%s: %v", cmd.Type(), res.Err)
		}
	}
	e := &snapSim{t: t, s: s, nodes: []string{"pve1", "pve2", "pve3"}, hosts: map[string]*simRunner{}, store: &controller.Store{}, log: &cmdLog{},
		now: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
	e.store.Now = e.clock
	net := sim.NewNetwork()
	for i, n := range e.nodes {
		must(&state.CreateNode{Name: n, NodeType: model.NodeTypeSatellite,
			NetInterfaces: []model.NetInterface{{Name: "default", Address: fmt.Sprintf("10.99.0.%d", i+1)}}})
		must(&state.CreateStoragePool{Node: n, Name: model.DefaultStoragePool, ProviderKind: model.ProviderLVMThin,
			Props: model.Props{model.KeyStorDriverLvmVg: "pve", model.KeyStorDriverThinPool: "data"}})
		h := sim.NewHost(n)
		if err := h.AddVG("pve", "/dev/sdb", 1<<30); err != nil {
			t.Fatal(err)
		}
		if err := h.AddThinPool("pve", "data", 256<<20); err != nil {
			t.Fatal(err)
		}
		net.Attach(h)
		root := t.TempDir()
		if err := os.MkdirAll(root+satellite.ResDir, 0o755); err != nil {
			t.Fatal(err)
		}
		e.hosts[n] = &simRunner{node: n, host: h, root: root, log: e.log}
	}
	must(&state.CreateResourceDefinition{Name: snapRsc, DrbdSecret: "Zm9vYmFyYmF6cXV4MTIzNDU2",
		VolumeDefinitions: []state.NewVolumeDefinition{{SizeKiB: sizeKiB}}})
	for n, k := range map[string]state.ResourceKind{"pve1": state.Diskful, "pve2": state.Diskful, "pve3": state.Diskless} {
		must(&state.CreateResource{ResourceDefinition: snapRsc, Node: n, Kind: k})
	}
	e.ctrl = &controller.Completer{Store: e.store, State: func() *state.State { return s },
		Changed: func() <-chan struct{} { return make(chan struct{}) },
		Apply: func(_ context.Context, cmd state.Command) (state.Result, error) {
			return s.Apply(cmd), nil
		}, Now: e.clock}
	return e
}

func (e *snapSim) clock() time.Time { return e.now }

func (e *snapSim) reconciler(n string) *satellite.Reconciler {
	h := e.hosts[n]
	return &satellite.Reconciler{Node: n, Runner: h, FS: hostfs.Root(h.root), ResDir: os.DirFS(h.root + satellite.ResDir).(fs.ReadDirFS), Now: e.clock}
}

// round runs one controller pass, then one satellite pass per node, each
// followed by its report to the controller, as the satellite loop sends it.
// It returns the number of actions the satellites ran.
func (e *snapSim) round() int {
	e.t.Helper()
	if err := e.ctrl.Pass(context.Background()); err != nil {
		e.t.Fatalf("controller pass: %v", err)
	}
	return e.satellites()
}

// satellites runs one satellite pass per node, each followed by its
// report, and returns the number of actions they ran.
func (e *snapSim) satellites() int {
	e.t.Helper()
	ctx := context.Background()
	acted := 0
	for _, n := range e.nodes {
		if e.slow[n] > 0 {
			e.slow[n]--
			continue
		}
		r := e.reconciler(n)
		rep, err := r.Pass(ctx, e.s)
		if err != nil {
			e.t.Fatalf("%s: %v", n, err)
		}
		for _, o := range rep.Outcomes {
			acted++
			if o.Err != nil {
				e.t.Fatalf("%s: %s failed: %v", n, o.Action, o.Err)
			}
		}
		want, err := satellite.Desired(e.s, n)
		if err != nil {
			e.t.Fatal(err)
		}
		want.Now = e.now
		got, err := r.Observe(ctx, want)
		if err != nil {
			e.t.Fatal(err)
		}
		e.seq++
		nr := satellite.BuildReport(n, e.s, want, got, rep)
		nr.Boot, nr.Seq = "boot", e.seq
		e.store.Put(nr)
	}
	return acted
}

// until runs rounds until done holds, at most 10.
func (e *snapSim) until(what string, done func() bool) {
	e.t.Helper()
	for range 10 {
		e.round()
		if done() {
			return
		}
	}
	e.t.Fatalf("%s did not happen within 10 rounds; commands: %q", what, e.log.all())
}

func (e *snapSim) observed(n string) satellite.Observed {
	e.t.Helper()
	r := e.reconciler(n)
	want, err := satellite.Desired(e.s, n)
	if err != nil {
		e.t.Fatal(err)
	}
	got, err := r.Observe(context.Background(), want)
	if err != nil {
		e.t.Fatal(err)
	}
	return got
}

// read returns the first n bytes of an LV of a node.
func (e *snapSim) read(node, lv string, n int64) []byte {
	e.t.Helper()
	dev, err := e.hosts[node].host.Device(lvm.DevicePath("pve", lv))
	if err != nil {
		e.t.Fatalf("%s: %v", node, err)
	}
	defer dev.Close()
	buf := make([]byte, n)
	if _, err := dev.ReadAt(buf, 0); err != nil {
		e.t.Fatalf("%s: read %s: %v", node, lv, err)
	}
	return buf
}

// write fills blocks through pve1's DRBD device (auto-promote on open).
func (e *snapSim) write(fill byte, sizeKiB int64) {
	e.t.Helper()
	def, _ := e.s.ResourceDefinition(snapRsc)
	dev, err := e.hosts["pve1"].host.OpenDRBD(fmt.Sprintf("/dev/drbd%d", def.VolumeDefinitions[0].Minor), true)
	if err != nil {
		e.t.Fatal(err)
	}
	for i, off := range []int64{0, 4096, 1 << 20, sizeKiB*1024 - 4096} {
		if _, err := dev.WriteAt(bytes.Repeat([]byte{fill + byte(i)}, 4096), off); err != nil {
			e.t.Fatalf("write at %d: %v", off, err)
		}
	}
	if err := dev.Close(); err != nil {
		e.t.Fatal(err)
	}
}

// TestSnapshotOnSim takes a snapshot of a resource with two diskful
// replicas and a diskless client through the controller's phases and the
// satellites' actions, then deletes it.
func TestSnapshotOnSim(t *testing.T) {
	t.Parallel()
	const sizeKiB = 4 << 10
	e := newSnapSim(t, sizeKiB)
	// Birth: the satellites bring the resource up, the controller flags
	// the volume initialized.
	e.until("the birth", func() bool {
		for _, n := range []string{"pve1", "pve2"} {
			if k := e.observed(n).DRBD[snapRsc]; len(k.Devices) != 1 || k.Devices[0].Disk != "UpToDate" {
				return false
			}
		}
		return true
	})
	e.write(0xa0, sizeKiB)
	lv := lvm.VolumeLVName(snapRsc, 0)
	before := e.read("pve1", lv, sizeKiB*1024)
	if bytes.Equal(before, make([]byte, len(before))) {
		t.Fatal("nothing was written")
	}

	if res := e.s.Apply(&state.CreateSnapshotDefinition{ResourceDefinition: snapRsc, Name: snapName}); res.Err != nil {
		t.Fatal(res.Err)
	}
	start := len(e.log.all())
	// The diskless client lags two rounds behind: the others must wait
	// for it before anything is taken.
	e.slow = map[string]int{"pve3": 2}
	e.until("SUCCESSFUL", func() bool {
		sd, _ := e.s.SnapshotDefinition(snapRsc, snapName)
		if sd.Flags.Has(model.SnapFlagFailedDeployment) {
			t.Fatalf("snapshot failed: %v; commands %q", sd.Props, e.log.all()[start:])
		}
		return sd.Flags.Has(model.SnapFlagSuccessful)
	})
	cmds := e.log.all()[start:]
	t.Logf("commands: %q", cmds)

	// Every node suspended before any LV snapshot was taken, and every
	// node resumed after the last one.
	firstTake, lastTake := -1, -1
	for i, c := range cmds {
		if strings.Contains(c, " lvcreate --snapshot ") {
			lastTake = i
			if firstTake < 0 {
				firstTake = i
			}
		}
	}
	if firstTake < 0 {
		t.Fatal("no snapshot was taken")
	}
	for _, n := range e.nodes {
		susp := slices.Index(cmds, n+" drbdadm suspend-io "+snapRsc)
		res := slices.Index(cmds, n+" drbdadm resume-io "+snapRsc)
		if susp < 0 || susp > firstTake {
			t.Errorf("%s suspended at %d, first snapshot at %d", n, susp, firstTake)
		}
		if res < lastTake {
			t.Errorf("%s resumed at %d, last snapshot at %d", n, res, lastTake)
		}
		if k := e.observed(n).DRBD[snapRsc]; k.Suspended != "no" {
			t.Errorf("%s: I/O suspended %q after the round", n, k.Suspended)
		}
	}
	for _, n := range []string{"pve1", "pve2"} {
		want := n + " lvcreate --snapshot --setactivationskip y --ignoreactivationskip --activate y --name " +
			satellite.SnapshotLVName(snapRsc, 0, snapName) + " -pr --addtag pvehci pve/" + lv
		if !slices.Contains(cmds, want) {
			t.Errorf("%s did not run %q", n, want)
		}
	}
	if sd, _ := e.s.SnapshotDefinition(snapRsc, snapName); sd.Props[satellite.KeySnapshotPhase] != "" {
		t.Errorf("phase left behind: %v", sd.Props)
	}

	// New writes change the volume, not the snapshots.
	e.write(0xb0, sizeKiB)
	if after := e.read("pve1", lv, sizeKiB*1024); bytes.Equal(after, before) {
		t.Fatal("the second write changed nothing")
	}
	for _, n := range []string{"pve1", "pve2"} {
		if got := e.read(n, satellite.SnapshotLVName(snapRsc, 0, snapName), sizeKiB*1024); !bytes.Equal(got, before) {
			t.Errorf("%s: the snapshot does not hold the data written before it", n)
		}
	}
	if e.round() != 0 {
		t.Errorf("a round after the snapshot acted: %q", e.log.all()[len(cmds)+start:])
	}

	// Delete.
	if res := e.s.Apply(&state.SetFlags{Target: state.Target{Kind: model.ObjSnapshotDefinition, ResourceDefinition: snapRsc, Snapshot: snapName},
		Set: []string{model.SnapFlagDelete}}); res.Err != nil {
		t.Fatal(res.Err)
	}
	e.until("the delete", func() bool {
		_, ok := e.s.SnapshotDefinition(snapRsc, snapName)
		return !ok
	})
	for _, n := range []string{"pve1", "pve2"} {
		got := e.observed(n)
		if _, ok := got.LVs["pve/"+satellite.SnapshotLVName(snapRsc, 0, snapName)]; ok {
			t.Errorf("%s still holds the snapshot LV", n)
		}
		if _, ok := got.LVs["pve/"+lv]; !ok {
			t.Errorf("%s lost the volume's LV", n)
		}
	}
	if after := e.read("pve2", lv, sizeKiB*1024); bytes.Equal(after, before) {
		t.Error("pve2 does not hold the second write")
	}
}

// TestSnapshotControllerDiesOnSim: the controller starts a round and dies
// with every node suspended; each satellite resumes on its own once the
// phase is older than its local deadline, and nothing is taken.
func TestSnapshotControllerDiesOnSim(t *testing.T) {
	t.Parallel()
	const sizeKiB = 1 << 10
	e := newSnapSim(t, sizeKiB)
	e.until("the birth", func() bool {
		k := e.observed("pve2").DRBD[snapRsc]
		return len(k.Devices) == 1 && k.Devices[0].Disk == "UpToDate"
	})
	if res := e.s.Apply(&state.CreateSnapshotDefinition{ResourceDefinition: snapRsc, Name: snapName}); res.Err != nil {
		t.Fatal(res.Err)
	}
	e.round() // the controller enters suspend, and the satellites follow
	start := len(e.log.all())
	suspended := func() (n int) {
		for _, name := range e.nodes {
			if k := e.observed(name).DRBD[snapRsc]; k.Suspended == "user" {
				n++
			}
		}
		return n
	}
	if n := suspended(); n != 3 {
		t.Fatalf("%d nodes suspended after the suspend phase, want 3", n)
	}
	// No more controller passes. Just before the deadline I/O stays
	// suspended.
	e.now = e.now.Add(satellite.SnapshotLocalDeadline - time.Second)
	if acted := e.satellites(); acted != 0 || suspended() != 3 {
		t.Fatalf("before the local deadline: %d actions, %d nodes suspended; commands %q", acted, suspended(), e.log.all()[start:])
	}
	e.now = e.now.Add(time.Second)
	e.satellites()
	if n := suspended(); n != 0 {
		t.Errorf("%d nodes still suspended after the local deadline; commands %q", n, e.log.all()[start:])
	}
	for _, c := range e.log.all()[start:] {
		if strings.Contains(c, "lvcreate") {
			t.Errorf("took a snapshot without the controller: %s", c)
		}
	}
	// The controller comes back: the round fails, nothing freezes again.
	e.until("FAILED_DEPLOYMENT", func() bool {
		sd, _ := e.s.SnapshotDefinition(snapRsc, snapName)
		return sd.Flags.Has(model.SnapFlagFailedDeployment)
	})
	if n := suspended(); n != 0 {
		t.Errorf("%d nodes suspended after the failed round", n)
	}
}
