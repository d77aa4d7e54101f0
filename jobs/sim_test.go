package jobs

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pvehci/pvehci/ha/state"
	"github.com/pvehci/pvehci/internal/hostfs"
	"github.com/pvehci/pvehci/internal/run"
	"github.com/pvehci/pvehci/snapshots/retention"
	"github.com/pvehci/pvehci/storage/controller"
	"github.com/pvehci/pvehci/storage/lvm"
	"github.com/pvehci/pvehci/storage/model"
	"github.com/pvehci/pvehci/storage/satellite"
	"github.com/pvehci/pvehci/storage/sim"
)

const simRD = "vm-100-disk-0"

// simHost hands commands to a simulated host, giving drbdadm the .res
// with -c (the simulation reads only the file it is given).
type simHost struct {
	host *sim.Host
	root string
}

func (h *simHost) Run(ctx context.Context, c run.Cmd) (run.Result, error) {
	if c.Name == "drbdadm" && len(c.Args) > 0 {
		res, _, _ := strings.Cut(c.Args[len(c.Args)-1], "/")
		c.Args = append([]string{"-c", h.root + satellite.ResPath(res)}, c.Args...)
	}
	return h.host.Runner().Run(ctx, c)
}

// simWorld is the whole path of a job on simulated hosts: the runner,
// the leader's completer and store, and a satellite per node, moved one
// round (completer pass, satellite passes with reports, resyncs settled,
// a second on the clock) each time the runner waits.
type simWorld struct {
	t     *testing.T
	st    *state.State
	clk   *clock
	net   *sim.Network
	hosts map[string]*simHost
	recs  map[string]*satellite.Reconciler
	nodes []string
	store *controller.Store
	ctrl  *controller.Completer
	r     *Runner
	mu    sync.Mutex // rounds: the runs of two schedules wait at once
	seq   uint64
}

func newSimWorld(t *testing.T) *simWorld {
	t.Helper()
	w := &simWorld{t: t, st: state.New(), clk: &clock{t: t0}, net: sim.NewNetwork(), hosts: map[string]*simHost{},
		recs: map[string]*satellite.Reconciler{}, nodes: []string{"pve1", "pve2"}}
	w.store = &controller.Store{Now: w.clk.Now, OnlineWindow: 1000 * time.Hour}
	for i, n := range w.nodes {
		mustApply(t, w.st, &state.CreateNode{Name: n, NodeType: model.NodeTypeSatellite,
			NetInterfaces: []model.NetInterface{{Name: "default", Address: fmt.Sprintf("10.99.0.%d", i+1)}}})
		mustApply(t, w.st, &state.CreateStoragePool{Node: n, Name: model.DefaultStoragePool, ProviderKind: model.ProviderLVMThin,
			Props: model.Props{model.KeyStorDriverLvmVg: "pve", model.KeyStorDriverThinPool: "data"}})
		h := sim.NewHost(n)
		if err := h.AddVG("pve", "/dev/sdb", 1<<30); err != nil {
			t.Fatal(err)
		}
		if err := h.AddThinPool("pve", "data", 256<<20); err != nil {
			t.Fatal(err)
		}
		w.net.Attach(h)
		root := t.TempDir()
		if err := os.MkdirAll(root+satellite.ResDir, 0o755); err != nil {
			t.Fatal(err)
		}
		w.hosts[n] = &simHost{host: h, root: root}
		w.recs[n] = &satellite.Reconciler{Node: n, Runner: w.hosts[n], FS: hostfs.Root(root),
			ResDir: os.DirFS(root + satellite.ResDir).(fs.ReadDirFS), Now: w.clk.Now}
	}
	mustApply(t, w.st, &state.CreateResourceDefinition{Name: simRD, DrbdSecret: "Zm9vYmFyYmF6cXV4MTIzNDU2",
		VolumeDefinitions: []state.NewVolumeDefinition{{SizeKiB: 8 << 10}}})
	for _, n := range w.nodes {
		mustApply(t, w.st, &state.CreateResource{ResourceDefinition: simRD, Node: n, Kind: state.Diskful})
	}
	apply := func(_ context.Context, cmd state.Command) (state.Result, error) { return w.st.Apply(cmd), nil }
	never := func() <-chan struct{} { return make(chan struct{}) }
	w.ctrl = &controller.Completer{Store: w.store, State: func() *state.State { return w.st }, Changed: never, Apply: apply, Now: w.clk.Now}
	w.r = &Runner{State: func() *state.State { return w.st }, Changed: never, Apply: apply, Store: w.store, Now: w.clk.Now,
		sleep: func(ctx context.Context, d time.Duration) error {
			w.round()
			w.clk.Add(d)
			return ctx.Err()
		}}
	for range 6 {
		w.round()
	}
	return w
}

func (w *simWorld) round() {
	w.t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	ctx := context.Background()
	if err := w.ctrl.Pass(ctx); err != nil {
		w.t.Errorf("completer: %v", err)
	}
	for _, n := range w.nodes {
		r := w.recs[n]
		rep, err := r.Pass(ctx, w.st)
		if err != nil {
			w.t.Fatalf("%s: %v", n, err)
		}
		want, err := satellite.Desired(w.st, n)
		if err != nil {
			w.t.Fatal(err)
		}
		want.Now = w.clk.Now()
		got, err := r.Observe(ctx, want)
		if err != nil {
			w.t.Fatal(err)
		}
		w.seq++
		nr := satellite.BuildReport(n, w.st, want, got, rep)
		nr.Boot, nr.Seq = "boot", w.seq
		w.store.Put(nr)
	}
	w.net.Settle()
}

func (w *simWorld) pass(at time.Time) {
	w.clk.Set(at)
	w.r.Pass(context.Background())
	w.r.Wait()
}

// TestJobsOnSim runs a snapshot job and a verify job through the real
// completer and satellites on simulated hosts.
func TestJobsOnSim(t *testing.T) {
	t.Parallel()
	w := newSimWorld(t)
	mustApply(t, w.st, &state.AddJobSchedule{Name: "nightly", Cron: "@hourly", Kind: model.JobSnapshot, Target: all,
		Options: map[string]string{"keep-last": "1"}, At: t0.UnixMilli()})
	mustApply(t, w.st, &state.AddJobSchedule{Name: "weekly-verify", Cron: "@hourly", Kind: model.JobVerify, Target: all, At: t0.UnixMilli()})

	// Snapshots: the first run takes one, the second takes another and
	// prunes the first (keep-last 1).
	at1 := t0.Add(time.Hour)
	w.pass(at1)
	checkRun := func(schedule string, n int) model.JobRun {
		t.Helper()
		runs := w.st.JobRuns(schedule)
		if len(runs) != n {
			t.Fatalf("%s: %d runs, want %d: %+v", schedule, len(runs), n, runs)
		}
		r := runs[n-1]
		if r.State != model.RunSucceeded {
			t.Fatalf("%s run %s: %s %q", schedule, r.ID, r.State, r.Message)
		}
		return r
	}
	checkRun("nightly", 1)
	first := retention.Name("nightly", at1)
	if sd, ok := w.st.SnapshotDefinition(simRD, first); !ok || !sd.Flags.Has(model.SnapFlagSuccessful) {
		t.Fatalf("snapshot %s: %+v", first, sd)
	}
	// The verify found nothing on equal replicas.
	if r := checkRun("weekly-verify", 1); r.Details["oos-kib."+simRD] != "0" {
		t.Fatalf("clean verify: %+v", r)
	}

	// Corrupt one block of pve2's backing LV behind DRBD's back.
	dev, err := w.hosts["pve2"].host.Device(lvm.DevicePath("pve", lvm.VolumeLVName(simRD, 0)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dev.WriteAt([]byte(strings.Repeat("x", 4096)), 3*4096); err != nil {
		t.Fatal(err)
	}
	dev.Close()

	at2 := t0.Add(2 * time.Hour)
	w.pass(at2)
	checkRun("nightly", 2)
	second := retention.Name("nightly", at2)
	if sd, ok := w.st.SnapshotDefinition(simRD, second); !ok || !sd.Flags.Has(model.SnapFlagSuccessful) {
		t.Fatalf("snapshot %s: %+v", second, sd)
	}
	if sd, ok := w.st.SnapshotDefinition(simRD, first); ok && !sd.Flags.Has(model.SnapFlagDelete) {
		t.Fatalf("snapshot %s was not pruned: %+v", first, sd)
	}
	r := checkRun("weekly-verify", 2)
	if r.Details["oos-kib."+simRD] != "4" || !strings.Contains(r.Message, "4 KiB out of sync") {
		t.Fatalf("verify after corruption: %+v", r)
	}
	if def, _ := w.st.ResourceDefinition(simRD); def.Props[PropVerifyRequest] != "" {
		t.Fatal("verify request left behind")
	}
}
