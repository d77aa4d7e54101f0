package metrics

import (
	"log/slog"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/pvehci/pvehci/ha/state"
	"github.com/pvehci/pvehci/internal/clock"
	"github.com/pvehci/pvehci/storage/api/apitest"
	"github.com/pvehci/pvehci/storage/model"
)

// TestJobRunMetrics checks the pvehci_job_* gauges computed from a
// schedule's run history; a metric missing from want must be absent.
func TestJobRunMetrics(t *testing.T) {
	const (
		lastOK   = "pvehci_job_last_run_success"
		success  = "pvehci_job_last_success_timestamp_seconds"
		duration = "pvehci_job_last_run_duration_seconds"
		failures = "pvehci_job_consecutive_failures"
		oos      = "pvehci_job_out_of_sync_bytes"
	)
	// run is one history entry: state, start and end in seconds, details.
	type run struct {
		state      model.JobRunState
		start, end int64
		details    map[string]string
	}
	ok := func(start, end int64) run { return run{state: model.RunSucceeded, start: start, end: end} }
	failed := func(start, end int64) run { return run{state: model.RunFailed, start: start, end: end} }
	skipped := func(at int64) run { return run{state: model.RunSkipped, start: at, end: at} }
	running := func(start int64) run { return run{state: model.RunRunning, start: start} }
	verified := func(s model.JobRunState, start, end int64, kib map[string]string) run {
		d := map[string]string{}
		for rd, v := range kib {
			d[model.JobDetailOutOfSyncKiB+"."+rd] = v
		}
		return run{state: s, start: start, end: end, details: d}
	}
	for _, tc := range []struct {
		name string
		kind model.JobKind
		runs []run
		want map[string]float64
	}{
		{"never ran", model.JobSnapshot, nil, map[string]float64{failures: 0}},
		{"one success", model.JobSnapshot, []run{ok(100, 160)},
			map[string]float64{lastOK: 1, success: 160, duration: 60, failures: 0}},
		{"failing since a success, one run under way", model.JobSnapshot,
			[]run{ok(100, 130), failed(200, 205), failed(300, 312), running(400)},
			map[string]float64{lastOK: 0, success: 130, duration: 12, failures: 2}},
		{"never succeeded", model.JobSnapshot, []run{failed(100, 101), failed(200, 202), failed(300, 303)},
			map[string]float64{lastOK: 0, duration: 3, failures: 3}},
		{"a skip ends the streak but has no duration", model.JobSnapshot, []run{failed(100, 140), failed(200, 250), skipped(300)},
			map[string]float64{lastOK: 1, duration: 50, failures: 0}},
		{"skip between failures", model.JobSnapshot, []run{failed(100, 140), skipped(200), failed(300, 301)},
			map[string]float64{lastOK: 0, duration: 1, failures: 1}},
		{"verify found blocks", model.JobVerify,
			[]run{verified(model.RunSucceeded, 100, 3700, map[string]string{"vm-100-disk-0": "0", "vm-101-disk-0": "8"})},
			map[string]float64{lastOK: 1, success: 3700, duration: 3600, failures: 0, oos: 8 * 1024}},
		{"verify clean after dirty", model.JobVerify,
			[]run{verified(model.RunSucceeded, 100, 200, map[string]string{"vm-101-disk-0": "8"}),
				verified(model.RunSucceeded, 300, 400, map[string]string{"vm-101-disk-0": "0"})},
			map[string]float64{lastOK: 1, success: 400, duration: 100, failures: 0, oos: 0}},
		{"verify partly unfinished", model.JobVerify,
			[]run{verified(model.RunFailed, 100, 200, map[string]string{"vm-100-disk-0": "unknown", "vm-101-disk-0": "4"})},
			map[string]float64{lastOK: 0, duration: 100, failures: 1, oos: 4 * 1024}},
		{"verify that finished nothing hides the older count", model.JobVerify,
			[]run{verified(model.RunSucceeded, 100, 200, map[string]string{"vm-101-disk-0": "8"}),
				verified(model.RunFailed, 300, 400, map[string]string{"vm-101-disk-0": "unknown"})},
			map[string]float64{lastOK: 0, success: 200, duration: 100, failures: 1}},
		{"verify skipped keeps the last count", model.JobVerify,
			[]run{verified(model.RunSucceeded, 100, 200, map[string]string{"vm-101-disk-0": "8"}), skipped(300)},
			map[string]float64{lastOK: 1, success: 200, duration: 100, failures: 0, oos: 8 * 1024}},
		{"snapshot runs have no out-of-sync count", model.JobSnapshot,
			[]run{verified(model.RunSucceeded, 100, 200, map[string]string{"vm-101-disk-0": "8"})},
			map[string]float64{lastOK: 1, success: 200, duration: 100, failures: 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := apitest.New()
			target := model.JobTarget{Kind: model.TargetAll}
			cmds := []state.Command{&state.AddJobSchedule{Name: "nightly", Cron: "@daily", Kind: tc.kind, Target: target, At: 1}}
			for i, r := range tc.runs {
				run := model.JobRun{ID: "r" + string(rune('a'+i)), Schedule: "nightly", Kind: tc.kind, Target: target,
					State: r.state, StartedAt: r.start * 1000, FinishedAt: r.end * 1000, Details: r.details}
				cmds = append(cmds, &state.RecordJobRun{Run: run})
			}
			for _, cmd := range cmds {
				if res := b.State.Apply(cmd); res.Err != nil {
					t.Fatalf("%s: %v", cmd.Type(), res.Err)
				}
			}
			got := jobGauges(t, b, "nightly")
			if !maps.Equal(got, tc.want) {
				t.Errorf("got %v\nwant %v", got, tc.want)
			}
		})
	}
}

// jobGauges scrapes b's cluster metrics and returns the pvehci_job_*
// values of schedule, by metric name, except pvehci_job_paused.
func jobGauges(t *testing.T, b *apitest.Backend, schedule string) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(newCollector(b, Options{Clock: clock.NewFake(time.Unix(0, 0)), Linstor: testVersion(), ReadTimeout: time.Second},
		slog.New(slog.DiscardHandler)))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gathering: %v", err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		name := mf.GetName()
		if !strings.HasPrefix(name, "pvehci_job_") || name == "pvehci_job_paused" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["schedule"] != schedule {
				continue
			}
			if _, dup := got[name]; dup {
				t.Errorf("%s: more than one series for schedule %s", name, schedule)
			}
			got[name] = m.GetGauge().GetValue()
		}
	}
	return got
}
