package bootstrap

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/pvehci/pvehci/internal/clock"
	"github.com/pvehci/pvehci/internal/hostfs"
	"github.com/pvehci/pvehci/internal/run"
	"github.com/pvehci/pvehci/network/ifupdown"
	"github.com/pvehci/pvehci/pve/corosync"
)

// Host is everything a step may touch, each behind its narrow interface, so
// that the same steps run on a real node and on the lab's simulated one.
type Host struct {
	FS      hostfs.FS
	Run     run.Runner
	Clock   clock.Clock
	Log     *slog.Logger
	Net     Network
	RDMA    RDMA
	Systemd Systemd
	// NetworkLock is the flock Proxmox takes around network edits.
	NetworkLock ifupdown.Lock
	// CorosyncLock is pmxcfs's cluster-wide lock on corosync.conf.
	CorosyncLock corosync.Lock
	// CorosyncChecker, when set, runs the real corosync over a new
	// corosync.conf before it goes live.
	CorosyncChecker corosync.Checker
}

// ChangeKind says what a planned change touches.
type ChangeKind string

// Kinds of change.
const (
	ChangeFile    ChangeKind = "file"
	ChangeCommand ChangeKind = "command"
	ChangeService ChangeKind = "service"
	ChangeAPI     ChangeKind = "api"
)

// Change is one thing a step would do to the host.
type Change struct {
	Kind    ChangeKind `json:"kind"`
	Target  string     `json:"target"` // a path, a command line, a unit
	Summary string     `json:"summary"`
	Diff    []string   `json:"diff,omitempty"` // for files: "- old" / "+ new" lines
}

// Step is one idempotent part of bringing a node up.
type Step interface {
	// Name is short and stable: it appears in plans and in the record.
	Name() string
	// Plan compares the host with what the step wants and lists the
	// changes it would make; none means the step is converged. Plan must
	// not change the host.
	Plan(ctx context.Context, h *Host) ([]Change, error)
	// Apply makes the host as planned. Running it on a converged host
	// changes nothing.
	Apply(ctx context.Context, h *Host) error
	// Verify checks that the step's result is in place and working.
	Verify(ctx context.Context, h *Host) error
}

// StepPlan is the plan of one step.
type StepPlan struct {
	Step    string   `json:"step"`
	Changes []Change `json:"changes"`
}

// Plan is the plan of every step, in order.
type Plan []StepPlan

// Empty reports whether nothing would change.
func (p Plan) Empty() bool {
	for _, s := range p {
		if len(s.Changes) > 0 {
			return false
		}
	}
	return true
}

// String renders the plan for the operator: every step, and for each change
// what it touches and, for files, the diff.
func (p Plan) String() string {
	if p.Empty() {
		return "nothing to do: this node is converged\n"
	}
	var b strings.Builder
	for _, s := range p {
		if len(s.Changes) == 0 {
			fmt.Fprintf(&b, "%s: converged\n", s.Step)
			continue
		}
		fmt.Fprintf(&b, "%s: %d change(s)\n", s.Step, len(s.Changes))
		for _, c := range s.Changes {
			fmt.Fprintf(&b, "  %s %s: %s\n", c.Kind, c.Target, c.Summary)
			for _, l := range c.Diff {
				fmt.Fprintf(&b, "      %s\n", l)
			}
		}
	}
	return b.String()
}

// Result of one step in the record.
type Result string

// Results.
const (
	Unchanged Result = "unchanged" // converged; verified
	Applied   Result = "applied"   // changed and verified
	Restored  Result = "restored"  // failed; its file changes were put back
	Failed    Result = "failed"    // failed, and putting files back failed too
	Skipped   Result = "skipped"   // not reached because an earlier step failed
)

// StepRecord is what the engine did in one step.
type StepRecord struct {
	Step         string    `json:"step"`
	Result       Result    `json:"result"`
	Changes      []Change  `json:"changes,omitempty"`
	FilesTouched []string  `json:"files_touched,omitempty"`
	Error        string    `json:"error,omitempty"`
	Started      time.Time `json:"started"`
	Finished     time.Time `json:"finished"`
}

// Record is /var/lib/pvehci/bootstrap.json.
type Record struct {
	Version  int          `json:"version"`
	Started  time.Time    `json:"started"`
	Finished time.Time    `json:"finished"`
	Steps    []StepRecord `json:"steps"`
}

// RecordPath is where the engine records what it did.
const RecordPath = "/var/lib/pvehci/bootstrap.json"

// StepError is a failed step: what failed, why, and what was put back.
type StepError struct {
	Step       string
	Err        error
	Restored   []string // files put back as they were
	RestoreErr error    // not nil when putting files back failed
}

func (e *StepError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "step %s failed: %v", e.Step, e.Err)
	if len(e.Restored) > 0 {
		fmt.Fprintf(&b, "; restored %s as they were", strings.Join(e.Restored, ", "))
	}
	if e.RestoreErr != nil {
		fmt.Fprintf(&b, "; RESTORING FAILED: %v — check these files by hand", e.RestoreErr)
	}
	return b.String()
}

func (e *StepError) Unwrap() error { return e.Err }

// Engine runs steps against a host.
type Engine struct {
	Host  *Host
	Steps []Step
	// Try, when set, asks for a confirmation after one step has been
	// applied and verified; without it the step is put back.
	Try *Try
}

// Try is Talos's try mode for one step: the network step can cut the
// operator off, so its change stays only once the operator, still
// connected, confirms it.
type Try struct {
	Step string
	// Confirm returns nil once the operator confirmed, and an error when
	// the time ran out or the operator declined.
	Confirm func(ctx context.Context) error
}

// Reverter is a step that must do more than put its files back when it
// fails: the network step runs ifreload again so that the running network
// follows the restored files.
type Reverter interface {
	Revert(ctx context.Context, h *Host) error
}

// Plan asks every step what it would change.
func (e *Engine) Plan(ctx context.Context) (Plan, error) {
	var p Plan
	for _, s := range e.Steps {
		changes, err := s.Plan(ctx, e.Host)
		if err != nil {
			return nil, fmt.Errorf("planning step %s: %w", s.Name(), err)
		}
		p = append(p, StepPlan{Step: s.Name(), Changes: changes})
	}
	return p, nil
}

// Event reports progress to the operator.
type Event struct {
	Step   string
	Result Result
	Err    error
}

// Apply runs the steps in order. Each step is planned again just before it
// runs, since the steps before it may have changed what it finds; a step
// with changes is applied through a journal and verified, a converged step
// is only verified. The first failure puts back the files of the failing
// step (and reverts it, for a Reverter), and stops. The record is written
// in every case; plan is what the operator was shown.
func (e *Engine) Apply(ctx context.Context, plan Plan, progress func(Event)) (*Record, error) {
	if progress == nil {
		progress = func(Event) {}
	}
	planned := map[string][]Change{}
	for _, s := range plan {
		planned[s.Step] = s.Changes
	}
	rec := &Record{Version: 1, Started: e.Host.Clock.Now()}
	var failure error
	for _, s := range e.Steps {
		sr := StepRecord{Step: s.Name(), Started: e.Host.Clock.Now(), Changes: planned[s.Name()]}
		if failure != nil {
			sr.Result = Skipped
			sr.Finished = sr.Started
			rec.Steps = append(rec.Steps, sr)
			continue
		}
		j := newJournal(e.Host.FS)
		h := *e.Host
		h.FS = j
		// Plan again: the steps before may have changed what this one
		// finds (the service step starts the API that registration
		// talks to). The operator saw the plan from before any change.
		changes, err := s.Plan(ctx, &h)
		if err == nil {
			sr.Changes = changes
			if len(changes) > 0 {
				err = s.Apply(ctx, &h)
			}
		}
		if err == nil {
			err = s.Verify(ctx, &h)
		}
		tried := false
		if err == nil && len(sr.Changes) > 0 && e.Try != nil && e.Try.Step == s.Name() {
			tried = true
			if cerr := e.Try.Confirm(ctx); cerr != nil {
				err = fmt.Errorf("not confirmed (%w): put back as it was", cerr)
			}
		}
		sr.FilesTouched = j.touched()
		switch {
		case err == nil && len(sr.Changes) > 0:
			sr.Result = Applied
		case err == nil:
			sr.Result = Unchanged
		default:
			restored, rerr := j.undo()
			if r, ok := s.(Reverter); ok && (tried || len(sr.Changes) > 0) {
				rerr = errors.Join(rerr, r.Revert(ctx, e.Host))
			}
			se := &StepError{Step: s.Name(), Err: err, Restored: restored, RestoreErr: rerr}
			sr.Result, sr.Error = Restored, se.Error()
			if rerr != nil {
				sr.Result = Failed
			}
			failure = se
		}
		sr.Finished = e.Host.Clock.Now()
		rec.Steps = append(rec.Steps, sr)
		progress(Event{Step: s.Name(), Result: sr.Result, Err: failure})
	}
	rec.Finished = e.Host.Clock.Now()
	if err := e.writeRecord(rec); err != nil {
		return rec, errors.Join(failure, fmt.Errorf("recording what bootstrap did: %w", err))
	}
	return rec, failure
}

func (e *Engine) writeRecord(rec *Record) error {
	data, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	if err := e.Host.FS.MkdirAll("/var/lib/pvehci", 0o700); err != nil {
		return err
	}
	_, err = e.Host.FS.WriteFile(RecordPath, append(data, '\n'), 0o600, hostfs.WriteOptions{})
	return err
}
