package jobs

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pvehci/pvehci/ha/state"
	"github.com/pvehci/pvehci/snapshots/retention"
	"github.com/pvehci/pvehci/storage/controller"
	"github.com/pvehci/pvehci/storage/model"
	"github.com/pvehci/pvehci/storage/satellite"
)

var t0 = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func mustApply(t *testing.T, s *state.State, cmd state.Command) {
	t.Helper()
	if res := s.Apply(cmd); res.Err != nil {
		t.Fatalf("%s: %v", cmd.Type(), res.Err)
	}
}

// cluster is two nodes with diskful replicas of vm-100-disk-0 and
// vm-101-disk-0 in group grp, and other-disk in the default group.
func cluster(t *testing.T) *state.State {
	t.Helper()
	s := state.New()
	for i, n := range []string{"pve1", "pve2"} {
		mustApply(t, s, &state.CreateNode{Name: n, NodeType: model.NodeTypeSatellite,
			NetInterfaces: []model.NetInterface{{Name: "default", Address: fmt.Sprintf("10.99.0.%d", i+1)}}})
		mustApply(t, s, &state.CreateStoragePool{Node: n, Name: model.DefaultStoragePool, ProviderKind: model.ProviderLVMThin,
			Props: model.Props{model.KeyStorDriverLvmVg: "pve", model.KeyStorDriverThinPool: "data"}})
	}
	mustApply(t, s, &state.CreateResourceGroup{Name: "grp"})
	for _, rd := range []struct{ name, rg string }{{"vm-100-disk-0", "grp"}, {"vm-101-disk-0", "grp"}, {"other-disk", ""}} {
		mustApply(t, s, &state.CreateResourceDefinition{Name: rd.name, ResourceGroup: rd.rg, DrbdSecret: "s3cret",
			VolumeDefinitions: []state.NewVolumeDefinition{{SizeKiB: 1 << 20}}})
		for _, n := range []string{"pve1", "pve2"} {
			mustApply(t, s, &state.CreateResource{ResourceDefinition: rd.name, Node: n, Kind: state.Diskful})
		}
	}
	return s
}

// fixture is a runner on a real state with a fake clock. snapOutcome is
// the flag a new snapshot gets at once ("" leaves it pending); onVerify
// answers a verify request with a report.
type fixture struct {
	t           *testing.T
	st          *state.State
	clk         *clock
	store       *controller.Store
	r           *Runner
	mu          sync.Mutex
	snapOutcome string
	applied     []state.Command
	oos         map[string]uint64 // verify result per resource; missing: no answer
	seq         uint64
	// slowVerify leaves a requested verify running until the runner's
	// next sleep; maxRunning is the most verifies running at once.
	slowVerify bool
	verifying  []satellite.VerifyReport
	maxRunning int
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{t: t, st: cluster(t), clk: &clock{t: t0}, snapOutcome: model.SnapFlagSuccessful}
	f.store = &controller.Store{Now: f.clk.Now, OnlineWindow: 1000 * time.Hour}
	f.r = &Runner{
		State:   func() *state.State { return f.st },
		Changed: func() <-chan struct{} { return make(chan struct{}) },
		Apply:   f.apply,
		Store:   f.store,
		Now:     f.clk.Now,
		sleep: func(ctx context.Context, d time.Duration) error {
			f.clk.Add(d)
			f.finishVerifies()
			return ctx.Err()
		},
	}
	return f
}

func (f *fixture) apply(_ context.Context, cmd state.Command) (state.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applied = append(f.applied, cmd)
	res := f.st.Apply(cmd)
	if res.Err != nil {
		return res, nil
	}
	switch c := cmd.(type) {
	case *state.CreateSnapshotDefinition:
		if f.snapOutcome != "" {
			f.st.Apply(&state.SetFlags{Target: state.Target{Kind: model.ObjSnapshotDefinition, ResourceDefinition: c.ResourceDefinition,
				Snapshot: c.Name}, Set: []string{f.snapOutcome}})
		}
	case *state.SetProps:
		id := c.Change.Set[PropVerifyRequest]
		oos, ok := f.oos[c.Target.ResourceDefinition]
		if id == "" || !ok {
			break
		}
		// pve1 coordinates: first a running report, then a finished one.
		rep, _, _ := f.store.Report("pve1")
		f.seq++
		rep.Node, rep.Boot, rep.Seq = "pve1", "b", f.seq
		rep.Verifies = append(rep.Verifies, satellite.VerifyReport{Resource: c.Target.ResourceDefinition, RunID: id, Running: true})
		f.store.Put(rep)
		done := satellite.VerifyReport{Resource: c.Target.ResourceDefinition, RunID: id, OutOfSyncKiB: oos}
		if f.slowVerify {
			f.verifying = append(f.verifying, done)
			f.maxRunning = max(f.maxRunning, len(f.verifying))
			break
		}
		f.putFinished(done)
	}
	return res, nil
}

// putFinished reports a verify finished on pve1.
func (f *fixture) putFinished(v satellite.VerifyReport) {
	rep, _, _ := f.store.Report("pve1")
	rep.Verifies = slices.DeleteFunc(slices.Clone(rep.Verifies), func(x satellite.VerifyReport) bool { return x.Resource == v.Resource })
	rep.Verifies = append(rep.Verifies, v)
	f.seq++
	rep.Node, rep.Boot, rep.Seq = "pve1", "b", f.seq
	f.store.Put(rep)
}

// finishVerifies ends every verify left running (slowVerify).
func (f *fixture) finishVerifies() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, v := range f.verifying {
		f.putFinished(v)
	}
	f.verifying = nil
}

func (f *fixture) addSchedule(name, cron string, kind model.JobKind, target model.JobTarget, opts map[string]string) {
	f.t.Helper()
	mustApply(f.t, f.st, &state.AddJobSchedule{Name: name, Cron: cron, Kind: kind, Target: target, Options: opts, At: t0.UnixMilli()})
}

// pass runs one Pass at t and waits for the runs it started.
func (f *fixture) pass(t time.Time) {
	f.clk.Set(t)
	f.r.Pass(context.Background())
	f.r.Wait()
}

func (f *fixture) runs(schedule string) []model.JobRun { return f.st.JobRuns(schedule) }

func snapNames(st *state.State, rd string) (live, deleting []string) {
	for _, sd := range st.SnapshotDefinitions(rd) {
		if sd.Flags.Has(model.SnapFlagDelete) {
			deleting = append(deleting, sd.Name)
		} else {
			live = append(live, sd.Name)
		}
	}
	return live, deleting
}

var all = model.JobTarget{Kind: model.TargetAll}

func TestDueRuns(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		cron   string
		passes []time.Duration // offsets from t0
		want   []time.Duration // start offsets of the recorded runs
	}{
		{"not yet due", "@hourly", []time.Duration{30 * time.Minute}, nil},
		{"due on time", "@hourly", []time.Duration{time.Hour}, []time.Duration{time.Hour}},
		{"not twice for one slot", "@hourly", []time.Duration{time.Hour, time.Hour + time.Minute, time.Hour + 59*time.Minute},
			[]time.Duration{time.Hour}},
		{"each slot once", "@hourly", []time.Duration{time.Hour, 2 * time.Hour, 3 * time.Hour},
			[]time.Duration{time.Hour, 2 * time.Hour, 3 * time.Hour}},
		{"catch-up once, never a burst", "@hourly", []time.Duration{5*time.Hour + 10*time.Minute, 5*time.Hour + 20*time.Minute, 6 * time.Hour},
			[]time.Duration{5*time.Hour + 10*time.Minute, 6 * time.Hour}},
		{"daily at two", "0 2 * * *", []time.Duration{time.Hour, 2 * time.Hour, 25 * time.Hour, 26 * time.Hour},
			[]time.Duration{2 * time.Hour, 26 * time.Hour}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			f.addSchedule("nightly", tc.cron, model.JobSnapshot, model.JobTarget{Kind: model.TargetResourceDefinition, Name: "other-disk"}, nil)
			for _, p := range tc.passes {
				f.pass(t0.Add(p))
			}
			runs := f.runs("nightly")
			if len(runs) != len(tc.want) {
				t.Fatalf("got %d runs %+v, want %d", len(runs), runs, len(tc.want))
			}
			for i, r := range runs {
				if got := time.UnixMilli(r.StartedAt).Sub(t0); got != tc.want[i] {
					t.Errorf("run %d started at +%s, want +%s", i, got, tc.want[i])
				}
				if r.State != model.RunSucceeded {
					t.Errorf("run %d: %s %q", i, r.State, r.Message)
				}
			}
		})
	}
}

func TestPausedScheduleDoesNotRun(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.addSchedule("nightly", "@hourly", model.JobSnapshot, all, nil)
	mustApply(t, f.st, &state.PauseJobSchedule{Name: "nightly", At: t0.UnixMilli()})
	f.pass(t0.Add(2 * time.Hour))
	if runs := f.runs("nightly"); len(runs) != 0 {
		t.Fatalf("paused schedule ran: %+v", runs)
	}
}

func TestCatchUpSkip(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.addSchedule("nightly", "@hourly", model.JobSnapshot, all, map[string]string{"catch-up": "skip"})
	f.pass(t0.Add(3*time.Hour + 30*time.Minute))
	runs := f.runs("nightly")
	if len(runs) != 1 || runs[0].State != model.RunSkipped || !strings.Contains(runs[0].Message, "catch-up is skip") {
		t.Fatalf("want one skipped run, got %+v", runs)
	}
	if live, _ := snapNames(f.st, "other-disk"); len(live) != 0 {
		t.Fatalf("a skipped run took snapshots: %v", live)
	}
	f.pass(t0.Add(4 * time.Hour))
	if runs := f.runs("nightly"); len(runs) != 2 || runs[1].State != model.RunSucceeded {
		t.Fatalf("the on-time run after a skip: %+v", runs)
	}
}

func TestSnapshotJobTargets(t *testing.T) {
	t.Parallel()
	tests := []struct {
		target model.JobTarget
		want   []string
	}{
		{all, []string{"other-disk", "vm-100-disk-0", "vm-101-disk-0"}},
		{model.JobTarget{Kind: model.TargetResourceGroup, Name: "grp"}, []string{"vm-100-disk-0", "vm-101-disk-0"}},
		{model.JobTarget{Kind: model.TargetResourceDefinition, Name: "vm-101-disk-0"}, []string{"vm-101-disk-0"}},
		{model.JobTarget{Kind: model.TargetResourceDefinitions, Name: "other-disk, VM-101-disk-0"}, []string{"other-disk", "vm-101-disk-0"}},
		{model.JobTarget{Kind: model.TargetSelector, Name: "Aux/backup=nightly"}, []string{"other-disk"}},
	}
	for _, tc := range tests {
		t.Run(tc.target.String(), func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			// The selector's property, and a near miss.
			for rd, v := range map[string]string{"other-disk": "nightly", "vm-100-disk-0": "weekly"} {
				if res := f.st.Apply(&state.ModifyResourceDefinition{Name: rd, Props: model.PropsChange{Set: model.Props{"Aux/backup": v}}}); res.Err != nil {
					t.Fatal(res.Err)
				}
			}
			f.addSchedule("nightly", "@hourly", model.JobSnapshot, tc.target, nil)
			at := t0.Add(time.Hour)
			f.pass(at)
			name := retention.Name("nightly", at)
			for _, rd := range []string{"other-disk", "vm-100-disk-0", "vm-101-disk-0"} {
				sd, ok := f.st.SnapshotDefinition(rd, name)
				want := strings.Contains(strings.Join(tc.want, " "), rd)
				if ok != want {
					t.Errorf("%s: snapshot %s exists=%v, want %v", rd, name, ok, want)
				}
				if ok && (sd.Props[PropJob] != "nightly" || !sd.Flags.Has(model.SnapFlagSuccessful)) {
					t.Errorf("%s: props %v flags %v", rd, sd.Props, sd.Flags)
				}
			}
			runs := f.runs("nightly")
			if len(runs) != 1 || runs[0].State != model.RunSucceeded {
				t.Fatalf("runs: %+v", runs)
			}
			if want := fmt.Sprintf("taken of %d of %d", len(tc.want), len(tc.want)); !strings.Contains(runs[0].Message, want) {
				t.Errorf("message %q lacks %q", runs[0].Message, want)
			}
			if runs[0].FinishedAt == 0 || runs[0].Details["snapshot."+tc.want[0]] != "ok" {
				t.Errorf("run details: %+v", runs[0])
			}
		})
	}
}

func TestSnapshotJobPrunesOwnSnapshotsOnly(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	rd := "other-disk"
	f.addSchedule("nightly", "@hourly", model.JobSnapshot, model.JobTarget{Kind: model.TargetResourceDefinition, Name: rd},
		map[string]string{"keep-last": "2"})
	var old []string
	for i := 1; i <= 3; i++ {
		n := retention.Name("nightly", t0.Add(-time.Duration(i)*time.Hour))
		old = append(old, n)
		mustApply(t, f.st, &state.CreateSnapshotDefinition{ResourceDefinition: rd, Name: n, Props: model.Props{PropJob: "nightly"}})
	}
	// Hand-made ones, one with the job's name shape but not marked by it.
	forged := retention.Name("nightly", t0.Add(-10*time.Hour))
	for _, n := range []string{"before-upgrade", "other-20260228T230000Z", forged} {
		mustApply(t, f.st, &state.CreateSnapshotDefinition{ResourceDefinition: rd, Name: n})
	}
	at := t0.Add(time.Hour)
	f.pass(at)
	live, deleting := snapNames(f.st, rd)
	// keep-last 2 counting the new one: the newest old one and the new.
	wantLive := []string{"before-upgrade", "other-20260228T230000Z", forged, old[0], retention.Name("nightly", at)}
	if strings.Join(sorted(live), " ") != strings.Join(sorted(wantLive), " ") {
		t.Errorf("live %v, want %v", live, wantLive)
	}
	if strings.Join(sorted(deleting), " ") != strings.Join(sorted(old[1:]), " ") {
		t.Errorf("flagged DELETE %v, want %v", deleting, old[1:])
	}
	runs := f.runs("nightly")
	if len(runs) != 1 || !strings.Contains(runs[0].Message, "2 old snapshots pruned") {
		t.Fatalf("runs %+v", runs)
	}
	// A lowered policy applies to the existing snapshots at the next run.
	mustApply(t, f.st, &state.EditJobSchedule{Name: "nightly", SetOptions: map[string]string{"keep-last": "1"}, At: at.UnixMilli()})
	at2 := t0.Add(2 * time.Hour)
	f.pass(at2)
	live, _ = snapNames(f.st, rd)
	wantLive = []string{"before-upgrade", "other-20260228T230000Z", forged, retention.Name("nightly", at2)}
	if strings.Join(sorted(live), " ") != strings.Join(sorted(wantLive), " ") {
		t.Errorf("after lowering: live %v, want %v", live, wantLive)
	}
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func TestSnapshotJobFailureAndAutoPause(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		outcome   string // "" never completes
		opts      map[string]string
		runs      int
		wantPause int // run (1-based) after which the schedule is paused; 0 never
		wantMsg   string
	}{
		{"failed deployment pauses after 4 (the default)", model.SnapFlagFailedDeployment, nil, 5, 4, "FAILED_DEPLOYMENT"},
		{"timeout", "", map[string]string{"timeout": "5m", "max-failures": "2"}, 2, 2, "did not complete"},
		{"max-failures 0 never pauses", model.SnapFlagFailedDeployment, map[string]string{"max-failures": "0"}, 5, 0, "FAILED_DEPLOYMENT"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			f.snapOutcome = tc.outcome
			f.addSchedule("nightly", "@hourly", model.JobSnapshot, all, tc.opts)
			for i := 1; i <= tc.runs; i++ {
				f.pass(t0.Add(time.Duration(i) * time.Hour))
				js, _ := f.st.JobSchedule("nightly")
				runs := f.runs("nightly")
				paused := tc.wantPause != 0 && i >= tc.wantPause
				if js.Paused != paused {
					t.Fatalf("after run %d paused=%v, want %v", i, js.Paused, paused)
				}
				if i > tc.wantPause && tc.wantPause != 0 {
					if len(runs) != tc.wantPause {
						t.Fatalf("a paused schedule ran: %d runs", len(runs))
					}
					continue
				}
				last := runs[len(runs)-1]
				if last.State != model.RunFailed || !strings.Contains(last.Message, tc.wantMsg) {
					t.Fatalf("run %d: %s %q", i, last.State, last.Message)
				}
				if said := strings.Contains(last.Message, "paused after"); said != (i == tc.wantPause) {
					t.Errorf("run %d message %q: says paused=%v", i, last.Message, said)
				}
			}
		})
	}
}

func TestSuccessResetsFailureCount(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.addSchedule("nightly", "@hourly", model.JobSnapshot, all, nil)
	outcomes := []string{model.SnapFlagFailedDeployment, model.SnapFlagFailedDeployment, model.SnapFlagFailedDeployment, model.SnapFlagSuccessful,
		model.SnapFlagFailedDeployment, model.SnapFlagFailedDeployment, model.SnapFlagFailedDeployment}
	for i, o := range outcomes {
		f.snapOutcome = o
		f.pass(t0.Add(time.Duration(i+1) * time.Hour))
	}
	if js, _ := f.st.JobSchedule("nightly"); js.Paused {
		t.Fatal("paused although no 4 failures in a row")
	}
	if n := len(f.runs("nightly")); n != 7 {
		t.Fatalf("%d runs", n)
	}
}

func TestOrphanedRunIsClosedNotRerun(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.addSchedule("nightly", "@hourly", model.JobSnapshot, all, nil)
	start := t0.Add(time.Hour)
	mustApply(t, f.st, &state.RecordJobRun{Run: model.JobRun{ID: RunID("nightly", start), Schedule: "nightly",
		Kind: model.JobSnapshot, Target: all, State: model.RunRunning, StartedAt: start.UnixMilli()}})
	f.pass(start.Add(10 * time.Minute))
	runs := f.runs("nightly")
	if len(runs) != 1 || runs[0].State != model.RunFailed || !strings.Contains(runs[0].Message, "leader changed") {
		t.Fatalf("runs %+v", runs)
	}
}

func TestVerifyJob(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.oos = map[string]uint64{"vm-100-disk-0": 0, "vm-101-disk-0": 8}
	f.addSchedule("weekly-verify", "@hourly", model.JobVerify, model.JobTarget{Kind: model.TargetResourceGroup, Name: "grp"}, nil)
	f.pass(t0.Add(time.Hour))
	runs := f.runs("weekly-verify")
	if len(runs) != 1 {
		t.Fatalf("runs %+v", runs)
	}
	r := runs[0]
	if r.State != model.RunSucceeded {
		t.Fatalf("run %s %q", r.State, r.Message)
	}
	if r.Details["oos-kib.vm-100-disk-0"] != "0" || r.Details["oos-kib.vm-101-disk-0"] != "8" {
		t.Errorf("details %v", r.Details)
	}
	if !strings.Contains(r.Message, "8 KiB out of sync in vm-101-disk-0") {
		t.Errorf("message %q", r.Message)
	}
	for _, rd := range []string{"vm-100-disk-0", "vm-101-disk-0"} {
		def, _ := f.st.ResourceDefinition(rd)
		if _, ok := def.Props[PropVerifyRequest]; ok {
			t.Errorf("%s still carries the verify request", rd)
		}
	}
	for _, rd := range []string{"vm-100-disk-0", "vm-101-disk-0"} {
		if def, _ := f.st.ResourceDefinition(rd); def.Props[KeyVerifyAlg] != DefaultVerifyAlg {
			t.Errorf("%s: verify-alg %q, want %q (DRBD refuses verify without one)", rd, def.Props[KeyVerifyAlg], DefaultVerifyAlg)
		}
	}
	// The request went out with the run's ID.
	var ids []string
	for _, c := range f.applied {
		if sp, ok := c.(*state.SetProps); ok && sp.Change.Set[PropVerifyRequest] != "" {
			ids = append(ids, sp.Change.Set[PropVerifyRequest])
		}
	}
	if len(ids) != 2 || ids[0] != r.ID {
		t.Errorf("requests %v, run %s", ids, r.ID)
	}
}

func TestVerifyJobTimesOut(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.oos = map[string]uint64{"vm-100-disk-0": 0} // vm-101-disk-0 never answers
	f.addSchedule("weekly-verify", "@hourly", model.JobVerify, model.JobTarget{Kind: model.TargetResourceGroup, Name: "grp"},
		map[string]string{"timeout": "1h"})
	f.pass(t0.Add(time.Hour))
	r := f.runs("weekly-verify")[0]
	if r.State != model.RunFailed || !strings.Contains(r.Message, "verify of vm-101-disk-0 did not finish") ||
		r.Details["oos-kib.vm-101-disk-0"] != "unknown" || r.Details["oos-kib.vm-100-disk-0"] != "0" {
		t.Fatalf("run %+v", r)
	}
	def, _ := f.st.ResourceDefinition("vm-101-disk-0")
	if _, ok := def.Props[PropVerifyRequest]; ok {
		t.Error("the request stayed after the timeout")
	}
}

func TestPolicyOptions(t *testing.T) {
	t.Parallel()
	p, err := Policy(map[string]string{"keep-last": "3", "keep-daily": "7", "max-age": "30d"})
	if err != nil || p.KeepLast != 3 || p.KeepDaily != 7 || p.MaxAge != 30*24*time.Hour {
		t.Fatalf("%+v %v", p, err)
	}
	for _, bad := range []map[string]string{{"keep-last": "x"}, {"keep-last": "-1"}, {"max-age": "forever"}} {
		if _, err := Policy(bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

// TestRunNow: a request runs the job once at the next pass, off its cron
// spec and even while paused; a request from a clock ahead of the
// leader's is answered once, not at every pass.
func TestRunNow(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.addSchedule("weekly", "0 4 * * 0", model.JobSnapshot, all, nil)
	mustApply(t, f.st, &state.PauseJobSchedule{Name: "weekly", At: t0.UnixMilli()})
	ahead := t0.Add(10 * time.Minute) // the requester's clock
	mustApply(t, f.st, &state.RequestJobRun{Name: "weekly", At: ahead.UnixMilli()})
	f.pass(t0.Add(time.Minute))
	runs := f.runs("weekly")
	if len(runs) != 1 || runs[0].State != model.RunSucceeded {
		t.Fatalf("runs after run-now: %+v", runs)
	}
	if runs[0].StartedAt < ahead.UnixMilli() {
		t.Errorf("run started at %d, before the request at %d", runs[0].StartedAt, ahead.UnixMilli())
	}
	f.pass(t0.Add(2 * time.Minute))
	f.pass(t0.Add(3 * time.Minute))
	if runs := f.runs("weekly"); len(runs) != 1 {
		t.Fatalf("run-now ran %d times, want once", len(runs))
	}
}

// TestVerifyOneAtATimePerNode: the three definitions share their nodes, so
// with the default per-node=1 their verifies run one after another; with
// per-node=0 they all start at once.
func TestVerifyOneAtATimePerNode(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		opts        map[string]string
		wantRunning int
	}{{nil, 1}, {map[string]string{"per-node": "2"}, 2}, {map[string]string{"per-node": "0"}, 3}} {
		f := newFixture(t)
		f.slowVerify = true
		f.oos = map[string]uint64{"vm-100-disk-0": 0, "vm-101-disk-0": 4, "other-disk": 0}
		f.addSchedule("weekly", "@weekly", model.JobVerify, all, tc.opts)
		f.pass(t0.Add(7 * 24 * time.Hour))
		runs := f.runs("weekly")
		if len(runs) != 1 || runs[0].State != model.RunSucceeded || !strings.Contains(runs[0].Message, "4 KiB out of sync in vm-101-disk-0") {
			t.Fatalf("per-node %v: runs %+v", tc.opts, runs)
		}
		if f.maxRunning != tc.wantRunning {
			t.Errorf("per-node %v: %d verifies ran at once, want %d", tc.opts, f.maxRunning, tc.wantRunning)
		}
	}
}
