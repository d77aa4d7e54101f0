// Package jobs runs the cluster's scheduled jobs on the leader: snapshot
// jobs (a consistent snapshot of every targeted resource definition, named
// by snapshots/retention, with the job's retention applied to its own
// snapshots) and DRBD online-verify jobs (the coordinating satellite runs
// drbdadm verify; the out-of-sync KiB it finds are recorded with the run).
//
// Schedules, and the history of their runs, live in the replicated state
// (model.JobSchedule, model.JobRun), so a new leader knows when each job
// last ran. A Runner computes due runs with snapshots/cronspec from the last
// recorded run (or the schedule's creation): runs that fell due while no
// leader existed are made up by one run, never a burst. Each run is
// recorded when it starts and again when it ends. A schedule pauses itself
// after a number of consecutive failed runs (option max-failures, default
// DefaultMaxFailures).
//
// Schedule options read here:
//
//	keep-last, keep-hourly, keep-daily, keep-weekly, keep-monthly  retention counts (snapshot)
//	max-age      retention age limit, a Go duration or "<n>d" (snapshot)
//	timeout      how long a run waits for its snapshots or verifies
//	max-failures consecutive failed runs before the schedule pauses
//	catch-up     run-once (default) or skip: what to do about a run that
//	             fell due while no leader ran it
//	per-node     how many verifies may read one node's disks at once
//	             (verify; default 1, 0 for no limit)
package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pvehci/pvehci/ha/state"
	"github.com/pvehci/pvehci/snapshots/cronspec"
	"github.com/pvehci/pvehci/snapshots/retention"
	"github.com/pvehci/pvehci/storage/controller"
	"github.com/pvehci/pvehci/storage/model"
	"github.com/pvehci/pvehci/storage/satellite"
)

// Defaults of the schedule options.
const (
	DefaultMaxFailures     = 4
	DefaultSnapshotTimeout = 10 * time.Minute
	DefaultVerifyTimeout   = 12 * time.Hour
	// DefaultVerifyPerNode is how many verifies may read one node's disks
	// at once (option per-node; 0 means no limit).
	DefaultVerifyPerNode = 1
)

// PropJob marks a snapshot definition as created by the job schedule it
// names.
const PropJob = "Aux/pvehci/job"

// PropVerifyRequest asks for an online verify of a resource definition;
// see satellite.PropVerifyRequest.
const PropVerifyRequest = satellite.PropVerifyRequest

// KeyVerifyAlg is DRBD's verify-alg net option. DRBD refuses online
// verify without it; a verify job sets DefaultVerifyAlg on a targeted
// resource definition that inherits none.
const (
	KeyVerifyAlg     = "DrbdOptions/Net/verify-alg"
	DefaultVerifyAlg = "crc32c"
)

// catchUpGrace is how late a run may start and still count as on time
// for catch-up=skip.
const catchUpGrace = time.Minute

// Runner runs due jobs until its context ends (leadership lost).
type Runner struct {
	State   func() *state.State
	Changed func() <-chan struct{}
	Apply   func(ctx context.Context, cmd state.Command) (state.Result, error)
	// Store holds the satellites' reports; verify jobs read their results
	// there. Nil fails verify jobs.
	Store *controller.Store
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	Log *slog.Logger
	// Interval bounds the sleep between two looks at the schedules;
	// default 30 s.
	Interval time.Duration
	// Poll bounds the sleep between two looks at a run's progress;
	// default 1 s.
	Poll time.Duration

	// sleep waits d or until something changes; tests replace it to move
	// a fake clock.
	sleep func(ctx context.Context, d time.Duration) error

	mu      sync.Mutex
	running map[string]bool // schedule key → a run is under way here
	wg      sync.WaitGroup
}

func (r *Runner) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Runner) log() *slog.Logger {
	if r.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Log
}

// Run starts due jobs until ctx ends, then waits for the runs under way
// (they end early, as ctx is done).
func (r *Runner) Run(ctx context.Context) error {
	defer r.Wait()
	iv := r.Interval
	if iv <= 0 {
		iv = 30 * time.Second
	}
	for {
		changed := r.Changed()
		next := r.Pass(ctx)
		wait := iv
		if !next.IsZero() {
			if d := next.Sub(r.now()); d < wait {
				wait = max(d, 0) + 10*time.Millisecond
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
			// Schedules added or edited; do not spin on every change.
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Second):
			}
		case <-time.After(wait):
		}
	}
}

// Wait blocks until the runs started by Pass have ended.
func (r *Runner) Wait() { r.wg.Wait() }

// Pass starts every due run (each in its own goroutine) and returns when
// the next run falls due (zero if none does).
func (r *Runner) Pass(ctx context.Context) time.Time {
	st := r.State()
	now := r.now()
	var next time.Time
	for _, js := range st.JobSchedules() {
		runs := st.JobRuns(js.Name)
		var lastStart int64
		if n := len(runs); n > 0 {
			lastStart = runs[n-1].StartedAt
		}
		// `schedule run-now`, paused or not, until a run has started at
		// or after the request.
		requested := js.RunRequestedAt > lastStart
		if js.Paused && !requested {
			continue
		}
		sched, err := cronspec.Parse(js.Cron)
		if err != nil {
			r.log().Warn("job schedule has a bad cron spec", "schedule", js.Name, "err", err)
			continue
		}
		k := model.Key(js.Name)
		r.mu.Lock()
		busy := r.running[k]
		r.mu.Unlock()
		if busy {
			continue
		}
		last := time.UnixMilli(js.CreatedAt)
		if n := len(runs); n > 0 {
			lr := runs[n-1]
			last = time.UnixMilli(lr.StartedAt)
			if !lr.State.Final() {
				// A run under way on a former leader: it cannot finish
				// now. Close it; its slot counts as run.
				r.orphaned(ctx, lr, now)
			}
		}
		if t := sched.Next(last); !t.IsZero() && (next.IsZero() || t.Before(next)) && t.After(now) {
			next = t
		}
		slot, due := sched.LastDue(last, now)
		runAt := now
		if requested {
			// Started no earlier than the request, so that a leader
			// whose clock is behind the requester's does not answer it
			// again and again.
			if req := time.UnixMilli(js.RunRequestedAt); req.After(now) {
				runAt = req
			}
			slot, due = runAt, true
		}
		if !due {
			continue
		}
		if t := sched.Next(now); !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
		r.mu.Lock()
		if r.running == nil {
			r.running = map[string]bool{}
		}
		r.running[k] = true
		r.mu.Unlock()
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			defer func() {
				r.mu.Lock()
				delete(r.running, k)
				r.mu.Unlock()
			}()
			r.runOnce(ctx, js, slot, runAt)
		}()
	}
	return next
}

func (r *Runner) apply(ctx context.Context, cmd state.Command) error {
	res, err := r.Apply(ctx, cmd)
	if err == nil {
		err = res.Err
	}
	return err
}

func (r *Runner) orphaned(ctx context.Context, run model.JobRun, now time.Time) {
	run.State = model.RunFailed
	run.FinishedAt = max(now.UnixMilli(), run.StartedAt)
	run.Message = "the leader changed while the run was under way; it was not finished"
	if err := r.apply(ctx, &state.RecordJobRun{Run: run}); err != nil {
		r.log().Warn("closing an orphaned job run", "run", run.ID, "err", err)
	}
}

// RunID names a schedule's run started at t: sortable, at most 64
// characters (model.NameJobRun).
func RunID(schedule string, t time.Time) string {
	return t.UTC().Format("20060102T150405") + "-" + schedule
}

// outcome is what a job did.
type outcome struct {
	err     error
	message string
	details map[string]string
}

func (r *Runner) runOnce(ctx context.Context, js model.JobSchedule, slot, now time.Time) {
	run := model.JobRun{ID: RunID(js.Name, now), Schedule: js.Name, Kind: js.Kind, Target: js.Target,
		State: model.RunRunning, StartedAt: now.UnixMilli()}
	if js.Options["catch-up"] == "skip" && now.Sub(slot) > catchUpGrace {
		run.State, run.FinishedAt = model.RunSkipped, now.UnixMilli()
		run.Message = fmt.Sprintf("the run due at %s was missed while no leader ran jobs; catch-up is skip", slot.UTC().Format(time.RFC3339))
		if err := r.apply(ctx, &state.RecordJobRun{Run: run}); err != nil {
			r.log().Warn("recording a skipped job run", "run", run.ID, "err", err)
		}
		return
	}
	if err := r.apply(ctx, &state.RecordJobRun{Run: run}); err != nil {
		r.log().Warn("recording the start of a job run", "run", run.ID, "err", err)
		return
	}
	r.log().Info("job run started", "run", run.ID, "kind", js.Kind, "target", js.Target.String())
	var out outcome
	switch js.Kind {
	case model.JobSnapshot:
		out = r.snapshotJob(ctx, js, run.ID, now)
	case model.JobVerify:
		out = r.verifyJob(ctx, js, run.ID)
	default:
		out.err = fmt.Errorf("job kind %q is unknown", js.Kind)
	}
	end := r.now()
	// The end is recorded even when leadership was lost meanwhile: the
	// command goes through whichever node leads.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	run.FinishedAt = max(end.UnixMilli(), run.StartedAt)
	run.Details = out.details
	run.Message = out.message
	run.State = model.RunSucceeded
	if out.err != nil {
		run.State = model.RunFailed
		run.Message = out.err.Error()
		if out.message != "" {
			run.Message = out.message + "; " + run.Message
		}
		limit := maxFailures(js.Options)
		if n := 1 + trailingFailures(r.State().JobRuns(js.Name), run.ID); limit > 0 && n >= limit {
			if err := r.apply(rctx, &state.PauseJobSchedule{Name: js.Name, At: end.UnixMilli()}); err != nil {
				r.log().Warn("pausing a failing job schedule", "schedule", js.Name, "err", err)
			} else {
				run.Message += fmt.Sprintf("; schedule %s paused after %d consecutive failed runs (resume it with `pvehci schedule resume %s`)", js.Name, n, js.Name)
			}
		}
	}
	if len(run.Message) > 4000 {
		run.Message = run.Message[:4000] + "…"
	}
	if err := r.apply(rctx, &state.RecordJobRun{Run: run}); err != nil {
		r.log().Warn("recording the end of a job run", "run", run.ID, "err", err)
	}
	r.log().Info("job run ended", "run", run.ID, "state", run.State, "message", run.Message)
}

// trailingFailures counts the failed runs at the end of runs (oldest
// first), not counting the run with ID skip.
func trailingFailures(runs []model.JobRun, skip string) int {
	n := 0
	for i := len(runs) - 1; i >= 0; i-- {
		if model.SameName(runs[i].ID, skip) {
			continue
		}
		if runs[i].State != model.RunFailed {
			break
		}
		n++
	}
	return n
}

func maxFailures(opts map[string]string) int {
	if v, ok := opts["max-failures"]; ok {
		if n, err := strconv.Atoi(v); err == nil && n >= 0 {
			return n
		}
	}
	return DefaultMaxFailures
}

func timeout(opts map[string]string, def time.Duration) time.Duration {
	if d, err := parseDuration(opts["timeout"]); err == nil && d > 0 {
		return d
	}
	return def
}

// parseDuration reads a Go duration or a number of days ("7d").
func parseDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil {
			return 0, fmt.Errorf("%q is not a number of days", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

// Policy reads a snapshot job's retention from its options.
func Policy(opts map[string]string) (retention.Policy, error) {
	var p retention.Policy
	var errs []error
	for key, dst := range map[string]*int{"keep-last": &p.KeepLast, "keep-hourly": &p.KeepHourly,
		"keep-daily": &p.KeepDaily, "keep-weekly": &p.KeepWeekly, "keep-monthly": &p.KeepMonthly} {
		v, ok := opts[key]
		if !ok {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("option %s is %q, not a count", key, v))
			continue
		}
		*dst = n
	}
	d, err := parseDuration(opts["max-age"])
	if err != nil {
		errs = append(errs, fmt.Errorf("option max-age: %w", err))
	}
	p.MaxAge = d
	if err := errors.Join(errs...); err != nil {
		return p, err
	}
	return p, p.Validate()
}

// Targets returns the names of the resource definitions target selects,
// sorted, leaving out those being deleted.
func Targets(st *state.State, t model.JobTarget) []string {
	var out []string
	for _, rd := range st.ResourceDefinitions() {
		if rd.Flags.Has(model.RdFlagDelete) {
			continue
		}
		if t.Selects(rd) {
			out = append(out, rd.Name)
		}
	}
	slices.Sort(out)
	return out
}

// waitFor checks cond until it returns true or bound passes.
func (r *Runner) waitFor(ctx context.Context, bound time.Duration, cond func() bool) error {
	start := r.now()
	for {
		if cond() {
			return nil
		}
		if r.now().Sub(start) >= bound {
			return fmt.Errorf("timed out after %s", bound)
		}
		if err := r.pause(ctx); err != nil {
			return err
		}
	}
}

func (r *Runner) pause(ctx context.Context) error {
	poll := r.Poll
	if poll <= 0 {
		poll = time.Second
	}
	if r.sleep != nil {
		return r.sleep(ctx, poll)
	}
	var reports <-chan struct{}
	if r.Store != nil {
		reports = r.Store.Changed()
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-r.Changed():
	case <-reports:
	case <-time.After(poll):
	}
	return nil
}
