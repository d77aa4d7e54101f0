package jobs

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pvehci/pvehci/ha/state"
	"github.com/pvehci/pvehci/storage/model"
)

func TestParseVerifyOptions(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		opts map[string]string
		want VerifyOptions
		bad  string
	}{
		{opts: nil, want: VerifyOptions{PerNode: 1, Resync: ResyncOff, Timeout: DefaultVerifyTimeout}},
		{opts: map[string]string{"per-node": "0", "max-rate": "50M", "window": "4h", "resync": "from-primary", "keep-daily": "7"},
			want: VerifyOptions{PerNode: 0, MaxRate: "50M", Window: 4 * time.Hour, Resync: ResyncFromPrimary, Timeout: DefaultVerifyTimeout}},
		{opts: map[string]string{"per-node": "-1"}, bad: "option per-node"},
		{opts: map[string]string{"max-rate": "fast"}, bad: "option max-rate is \"fast\""},
		{opts: map[string]string{"window": "soon"}, bad: "option window"},
		{opts: map[string]string{"window": "2h", "timeout": "1h"}, bad: "not shorter than the run's timeout"},
		{opts: map[string]string{"resync": "always"}, bad: "give off or from-primary"},
	} {
		got, err := ParseVerifyOptions(tc.opts)
		if tc.bad != "" {
			if err == nil || !strings.Contains(err.Error(), tc.bad) {
				t.Errorf("%v: err %v, want %q", tc.opts, err, tc.bad)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%v: %+v %v, want %+v", tc.opts, got, err, tc.want)
		}
	}
}

// requestTimes returns when each definition's verify was requested, from
// the commands the fixture applied, with the props set along.
func (f *fixture) verifyRequests() map[string]model.Props {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]model.Props{}
	for _, cmd := range f.applied {
		if c, ok := cmd.(*state.SetProps); ok && c.Change.Set[PropVerifyRequest] != "" {
			out[c.Target.ResourceDefinition] = c.Change.Set
		}
	}
	return out
}

// TestVerifyWindowSpreadsStarts: with window=30s the three definitions'
// verifies start 0, 10 and 20 s into the run, not at once.
func TestVerifyWindowSpreadsStarts(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.oos = map[string]uint64{"vm-100-disk-0": 0, "vm-101-disk-0": 0, "other-disk": 0}
	var starts []time.Duration
	start := t0.Add(7 * 24 * time.Hour)
	apply := f.r.Apply
	f.r.Apply = func(ctx context.Context, cmd state.Command) (state.Result, error) {
		if c, ok := cmd.(*state.SetProps); ok && c.Change.Set[PropVerifyRequest] != "" {
			starts = append(starts, f.clk.Now().Sub(start))
		}
		return apply(ctx, cmd)
	}
	f.addSchedule("weekly", "@weekly", model.JobVerify, all, map[string]string{"per-node": "0", "window": "30s"})
	f.pass(start)
	if runs := f.runs("weekly"); len(runs) != 1 || runs[0].State != model.RunSucceeded {
		t.Fatalf("runs %+v", runs)
	}
	want := []time.Duration{0, 10 * time.Second, 20 * time.Second}
	if len(starts) != 3 {
		t.Fatalf("verify starts %v, want %v", starts, want)
	}
	for i := range want {
		// The runner looks once per poll (1 s on the fake clock).
		if starts[i] < want[i] || starts[i] > want[i]+time.Second {
			t.Errorf("start %d at %s, want %s", i, starts[i], want[i])
		}
	}
}

// TestVerifyMaxRate: a verify run caps each definition's c-max-rate while
// it verifies it, leaves one set on the definition alone (lower or
// higher: it is the operator's) and an inherited lower one, caps an
// inherited higher one, and removes only its own at the end.
func TestVerifyMaxRate(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.oos = map[string]uint64{"vm-100-disk-0": 0, "vm-101-disk-0": 0, "other-disk": 0}
	mustApply(t, f.st, &state.SetProps{Target: state.Target{Kind: model.ObjResourceDefinition, ResourceDefinition: "vm-101-disk-0"},
		Change: model.PropsChange{Set: model.Props{KeyCMaxRate: "10M"}}})
	mustApply(t, f.st, &state.SetProps{Target: state.Target{Kind: model.ObjResourceDefinition, ResourceDefinition: "other-disk"},
		Change: model.PropsChange{Set: model.Props{KeyCMaxRate: "500M"}}})
	mustApply(t, f.st, &state.SetProps{Target: state.Target{Kind: model.ObjController}, Change: model.PropsChange{Set: model.Props{KeyCMaxRate: "1G"}}})
	f.addSchedule("weekly", "@weekly", model.JobVerify, all, map[string]string{"per-node": "0", "max-rate": "50M"})
	f.pass(t0.Add(7 * 24 * time.Hour))
	if runs := f.runs("weekly"); len(runs) != 1 || runs[0].State != model.RunSucceeded {
		t.Fatalf("runs %+v", f.runs("weekly"))
	}
	req := f.verifyRequests()
	for rd, want := range map[string]string{"vm-100-disk-0": "50M", "vm-101-disk-0": "", "other-disk": ""} {
		if got := req[rd][KeyCMaxRate]; got != want {
			t.Errorf("%s: c-max-rate set with the request %q, want %q", rd, got, want)
		}
	}
	for rd, want := range map[string]string{"vm-100-disk-0": "", "vm-101-disk-0": "10M", "other-disk": "500M"} {
		def, _ := f.st.ResourceDefinition(rd)
		if def.Props[KeyCMaxRate] != want || def.Props[PropVerifyMaxRate] != "" || def.Props[PropVerifyRequest] != "" {
			t.Errorf("%s after the run: %v, want c-max-rate %q and no marker", rd, def.Props, want)
		}
	}
}
