package satellite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/pvehci/pvehci/ha/state"
	"github.com/pvehci/pvehci/internal/golden"
	"github.com/pvehci/pvehci/internal/run"
	"github.com/pvehci/pvehci/storage/model"
)

const rsc = "vm-100-disk-1"

// env is one test's node: the cluster state, the fake host and the root of
// its file system.
type env struct {
	s     *state.State
	h     *fakeHost
	root  string
	saved []byte // a .res saved by setup
}

func (e *env) res(t *testing.T) []byte {
	t.Helper()
	data, err := os.ReadFile(e.root + ResPath(rsc))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// converge runs passes until one plans nothing, outside the golden
// transcript.
func (e *env) converge(t *testing.T) {
	t.Helper()
	for range 3 {
		rep, err := newReconciler(e.root, e.h.fake(t, nil)).Pass(context.Background(), e.s)
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Plan.Actions) == 0 {
			return
		}
	}
	t.Fatal("the node does not converge")
}

// renderPass writes a pass's commands and report as the golden files hold
// them.
func renderPass(b *bytes.Buffer, n int, f *run.Fake, rep Report) {
	fmt.Fprintf(b, "## pass %d: commands\n%s", n, f.String())
	fmt.Fprintf(b, "## pass %d: actions\n", n)
	for _, o := range rep.Outcomes {
		switch {
		case o.Skipped:
			fmt.Fprintf(b, "skipped %s\n", o.Action)
		case o.Err != nil:
			restored := ""
			if o.Restored {
				restored = " (previous .res restored)"
			}
			fmt.Fprintf(b, "FAILED  %s%s\n        %v\n", o.Action, restored, o.Err)
		default:
			fmt.Fprintf(b, "ok      %s\n", o.Action)
		}
	}
	for _, o := range rep.Plan.Orphans {
		fmt.Fprintf(b, "orphan  %s %s: %s\n", o.Kind, o.Name, o.Reason)
	}
	for _, p := range rep.Plan.Problems {
		fmt.Fprintf(b, "problem %s: %v\n", p.Resource, p.Err)
	}
}

var readCommands = map[string]bool{"vgs": true, "lvs": true, "drbdsetup events2": true, "drbdmeta get-gi": true}

func isRead(c run.Cmd) bool {
	key := c.Name
	switch c.Name {
	case "drbdsetup":
		key += " " + c.Args[0]
	case "drbdmeta":
		key += " " + c.Args[len(c.Args)-3]
	}
	return readCommands[key]
}

func failOnce(argvPrefix []string, code int, stderr string) func(*run.Fake) {
	return func(f *run.Fake) { f.OnPrefix(argvPrefix...).Times(1).Fail(code, stderr) }
}

func TestPass(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// layout is what adjust brings up; nil is twoNodeLayout.
		layout func(string) fakeDRBD
		setup  func(t *testing.T, e *env)
		// passes hold each pass's injected failures (nil: none).
		passes []func(*run.Fake)
		check  func(t *testing.T, e *env, reps []Report)
	}{{
		name:   "fresh",
		passes: []func(*run.Fake){nil},
		check: func(t *testing.T, e *env, reps []Report) {
			want, _ := Desired(e.s, "pve1")
			d, _ := want.Resource(rsc)
			if got := e.res(t); !bytes.Equal(got, d.Res) {
				t.Errorf(".res on disk:\n%s\nwant:\n%s", got, d.Res)
			}
			if lv := e.h.lvs[rsc+"_00000"]; lv == nil || lv.sizeKiB != 1052672 || lv.tags != "pvehci" {
				t.Errorf("LV = %+v, want 1052672 KiB tagged pvehci", lv)
			}
		},
	}, {
		name:   "converged",
		setup:  func(t *testing.T, e *env) { e.converge(t) },
		passes: []func(*run.Fake){nil},
		check: func(t *testing.T, e *env, reps []Report) {
			if n := len(reps[0].Plan.Actions); n != 0 {
				t.Errorf("converged node planned %d actions: %v", n, reps[0].Plan.Actions)
			}
		},
	}, {
		name: "adjust-fails-restores-res",
		setup: func(t *testing.T, e *env) {
			e.converge(t)
			e.saved = e.res(t)
			setProps(t, e.s, state.Target{Kind: model.ObjResourceDefinition, ResourceDefinition: rsc}, model.Props{"DrbdOptions/Net/max-buffers": "8000"})
		},
		passes: []func(*run.Fake){failOnce([]string{"drbdadm", "-vvv", "adjust"}, 10,
			"vm-100-disk-1: Failure: (162) Invalid configuration request\nadditional info from kernel:\nfailed to apply net options\nCommand 'drbdsetup net-options vm-100-disk-1 1 --max-buffers=8000' terminated with exit code 10\n")},
		check: func(t *testing.T, e *env, reps []Report) {
			if got := e.res(t); !bytes.Equal(got, e.saved) {
				t.Errorf(".res after a failed adjust:\n%s\nwant the previous file byte for byte:\n%s", got, e.saved)
			}
			if e.h.lvs[rsc+"_00000"] == nil {
				t.Error("the LV is gone after a failed adjust")
			}
			if f := reps[0].Failed(); len(f) != 1 || f[0].Action.Kind != Adjust || !f[0].Restored || !strings.Contains(f[0].Err.Error(), "terminated with exit code 10") {
				t.Errorf("failed outcomes = %+v, want the adjust, restored, with stderr", f)
			}
		},
	}, {
		name: "pool-full",
		passes: []func(*run.Fake){failOnce([]string{"lvcreate"}, 5,
			"  Cannot create new thin volume, free space in thin pool pve/data reached threshold.\n")},
		check: func(t *testing.T, e *env, reps []Report) {
			if got := e.res(t); got != nil {
				t.Errorf("a .res was written for a volume that could not be created:\n%s", got)
			}
			if len(e.h.lvs) != 0 || len(e.h.kernel) != 0 {
				t.Errorf("something was made: LVs %v, DRBD %v", e.h.lvs, e.h.kernel)
			}
			if f := reps[0].Failed(); len(f) != 1 || !strings.Contains(f[0].Err.Error(), "extend the pool") {
				t.Errorf("failed outcomes = %+v, want the lvcreate with advice", f)
			}
		},
	}, {
		name: "delete",
		setup: func(t *testing.T, e *env) {
			e.converge(t)
			setResourceFlag(t, e.s, rsc, "pve1", model.RscFlagDelete)
		},
		passes: []func(*run.Fake){nil, nil},
		check: func(t *testing.T, e *env, reps []Report) {
			if len(e.h.lvs) != 0 || len(e.h.kernel) != 0 || len(e.h.md) != 0 || e.res(t) != nil {
				t.Errorf("left behind: LVs %v, DRBD %v, metadata %v, .res %q", e.h.lvs, e.h.kernel, e.h.md, e.res(t))
			}
			if _, err := os.Stat(e.root + ResPath(rsc) + ".bak"); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf(".res.bak left behind: %v", err)
			}
			if n := len(reps[1].Plan.Actions); n != 0 {
				t.Errorf("second pass after a delete planned %v", reps[1].Plan.Actions)
			}
		},
	}, {
		name: "delete-refuses-last-uptodate",
		setup: func(t *testing.T, e *env) {
			e.converge(t)
			e.h.kernel[rsc].peerDisk = "Inconsistent" // pve2 is SyncTarget
			setResourceFlag(t, e.s, rsc, "pve1", model.RscFlagDelete)
		},
		passes: []func(*run.Fake){nil},
		check: func(t *testing.T, e *env, reps []Report) {
			if len(reps[0].Plan.Actions) != 0 || len(reps[0].Plan.Problems) != 1 || e.h.lvs[rsc+"_00000"] == nil {
				t.Errorf("plan = %+v, want nothing done and one problem", reps[0].Plan)
			}
		},
	}, {
		name: "untagged-lv-is-orphan",
		setup: func(t *testing.T, e *env) {
			e.h.lvs[rsc+"_00000"] = &fakeLV{sizeKiB: 1052672, tags: "pve-vm-100", active: true}
		},
		passes: []func(*run.Fake){nil},
		check: func(t *testing.T, e *env, reps []Report) {
			if lv := e.h.lvs[rsc+"_00000"]; lv == nil || lv.tags != "pve-vm-100" || e.res(t) != nil {
				t.Errorf("the untagged LV was touched (%+v) or a .res written", lv)
			}
			if len(reps[0].Plan.Orphans) != 1 || len(reps[0].Plan.Problems) != 1 {
				t.Errorf("plan = %+v, want one orphan and one problem", reps[0].Plan)
			}
		},
	}, {
		name: "orphans-of-gone-resources",
		setup: func(t *testing.T, e *env) {
			e.converge(t)
			e.h.lvs["vm-555-disk-0_00000"] = &fakeLV{sizeKiB: 1052672, tags: "pvehci", active: true}
			k := twoNodeLayout("")
			e.h.kernel["vm-555-disk-0"] = &k
			if err := os.WriteFile(e.root+ResPath("vm-555-disk-0"), []byte("resource \"vm-555-disk-0\" {}\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		},
		passes: []func(*run.Fake){nil},
		check: func(t *testing.T, e *env, reps []Report) {
			if len(reps[0].Plan.Actions) != 0 || len(reps[0].Plan.Orphans) != 3 {
				t.Errorf("plan = %+v, want no action and three orphans", reps[0].Plan)
			}
		},
	}, {
		name: "crash-during-create-then-complete",
		passes: []func(*run.Fake){
			failOnce([]string{"drbdadm", "-vvv", "--max-peers"}, 137, "drbdadm: killed\n"),
			nil, nil},
		check: func(t *testing.T, e *env, reps []Report) {
			if len(reps[2].Plan.Actions) != 0 || len(e.h.kernel) != 1 {
				t.Errorf("third pass planned %v; kernel %v", reps[2].Plan.Actions, e.h.kernel)
			}
		},
	}, {
		name: "crash-during-delete-then-complete",
		setup: func(t *testing.T, e *env) {
			e.converge(t)
			setResourceFlag(t, e.s, rsc, "pve1", model.RscFlagDelete)
		},
		passes: []func(*run.Fake){
			failOnce([]string{"lvremove"}, 5, "  Logical volume pve/vm-100-disk-1_00000 in use.\n"),
			nil, nil},
		check: func(t *testing.T, e *env, reps []Report) {
			if len(e.h.lvs) != 0 || e.res(t) != nil || len(reps[2].Plan.Actions) != 0 {
				t.Errorf("left behind: LVs %v, .res %q; third pass %v", e.h.lvs, e.res(t), reps[2].Plan.Actions)
			}
		},
	}, {
		// pve1 has the lowest node id: once both replicas are up,
		// connected and fresh, it skips the sync; then nothing is left.
		name:   "skip-initial-sync",
		layout: freshLayout,
		passes: []func(*run.Fake){nil, nil, nil},
		check: func(t *testing.T, e *env, reps []Report) {
			if got := kinds(reps[1].Plan.Actions); !slices.Equal(got, []Kind{SkipInitialSync}) {
				t.Errorf("second pass planned %v, want [SkipInitialSync]", got)
			}
			if k := e.h.kernel[rsc]; k.disk != "UpToDate" || k.peerDisk != "UpToDate" || k.role != "Secondary" {
				t.Errorf("kernel = %+v, want both UpToDate, Secondary", k)
			}
			if n := len(reps[2].Plan.Actions); n != 0 {
				t.Errorf("third pass planned %v", reps[2].Plan.Actions)
			}
		},
	}, {
		name:   "force-initial-sync",
		layout: freshLayout,
		setup: func(t *testing.T, e *env) {
			setProps(t, e.s, state.Target{Kind: model.ObjResourceDefinition, ResourceDefinition: rsc}, model.Props{model.KeyForceInitialSync: "true"})
		},
		passes: []func(*run.Fake){nil, nil, nil},
		check: func(t *testing.T, e *env, reps []Report) {
			if got := kinds(reps[1].Plan.Actions); !slices.Equal(got, []Kind{ForcePrimary}) {
				t.Errorf("second pass planned %v, want [ForcePrimary]", got)
			}
			if k := e.h.kernel[rsc]; k.disk != "UpToDate" || k.peerRepl != "SyncSource" || k.role != "Secondary" {
				t.Errorf("kernel = %+v, want UpToDate, SyncSource toward the peer, Secondary again", k)
			}
			if n := len(reps[2].Plan.Actions); n != 0 {
				t.Errorf("third pass planned %v", reps[2].Plan.Actions)
			}
		},
	}, {
		// DRBD_INITIALIZED: the volume has held data, so fresh-looking
		// replicas are left to sync from whoever has it.
		name:   "no-initial-sync-when-initialized",
		layout: freshLayout,
		setup: func(t *testing.T, e *env) {
			if res := e.s.Apply(&state.SetFlags{Target: state.Target{Kind: model.ObjVolumeDefinition, ResourceDefinition: rsc, VolumeNumber: 0},
				Set: []string{model.VdFlagDrbdInitialized}}); res.Err != nil {
				t.Fatal(res.Err)
			}
		},
		passes: []func(*run.Fake){nil, nil},
		check: func(t *testing.T, e *env, reps []Report) {
			if n := len(reps[1].Plan.Actions); n != 0 || e.h.kernel[rsc].disk != "Inconsistent" {
				t.Errorf("second pass planned %v; kernel %+v", reps[1].Plan.Actions, e.h.kernel[rsc])
			}
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			layout := tc.layout
			if layout == nil {
				layout = twoNodeLayout
			}
			e := &env{s: cluster(t, rsc), h: newHost(layout), root: t.TempDir()}
			if err := os.MkdirAll(e.root+ResDir, 0o755); err != nil {
				t.Fatal(err)
			}
			if tc.setup != nil {
				tc.setup(t, e)
			}
			var b bytes.Buffer
			var reps []Report
			for i, failures := range tc.passes {
				f := e.h.fake(t, failures)
				rep, err := newReconciler(e.root, f).Pass(context.Background(), e.s)
				if err != nil {
					t.Fatalf("pass %d: %v", i+1, err)
				}
				if len(rep.Plan.Actions) == 0 {
					for _, c := range f.Calls() {
						if !isRead(c) {
							t.Errorf("pass %d planned nothing but ran %s", i+1, c)
						}
					}
				}
				if unmet := f.Unmet(); len(unmet) > 0 {
					t.Errorf("pass %d: injected failures not reached: %v", i+1, unmet)
				}
				renderPass(&b, i+1, f, rep)
				reps = append(reps, rep)
			}
			golden.Check(t, "testdata/"+tc.name+".txt", b.Bytes())
			tc.check(t, e, reps)
		})
	}
}

func kinds(acts []Action) []Kind {
	var out []Kind
	for _, a := range acts {
		out = append(out, a.Kind)
	}
	return out
}

func setProps(t *testing.T, s *state.State, target state.Target, props model.Props) {
	t.Helper()
	if res := s.Apply(&state.SetProps{Target: target, Change: model.PropsChange{Set: props}}); res.Err != nil {
		t.Fatal(res.Err)
	}
}
