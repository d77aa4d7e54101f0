package state

import (
	"fmt"
	"maps"
	"slices"

	linstor "github.com/LINBIT/golinstor"
	"github.com/pvehci/pvehci/storage/model"
)

// MaxRunsPerSchedule bounds the job history kept per schedule (and for
// manual runs): the replicated state must not grow without limit. The
// oldest runs by start time go first.
const MaxRunsPerSchedule = 100

// Limits of job options and messages.
const (
	maxOptionKeyLen = 64
	maxMessageLen   = 4096
)

// AddJobSchedule adds a recurring job.
type AddJobSchedule struct {
	Name    string            `json:"name"`
	Cron    string            `json:"cron"`
	Kind    model.JobKind     `json:"kind"`
	Target  model.JobTarget   `json:"target"`
	Options map[string]string `json:"options,omitempty"`
	Paused  bool              `json:"paused,omitempty"`
	At      int64             `json:"at"` // ms since the epoch: creation time
}

// Type implements Command.
func (*AddJobSchedule) Type() string { return "AddJobSchedule" }

func (c *AddJobSchedule) prepare(s *State) (func(), Result, *Error) {
	if e := model.ValidateName(model.NameJobSchedule, c.Name); e != nil {
		return nil, Result{}, errName(model.ObjJobSchedule, e)
	}
	k := model.Key(c.Name)
	if _, ok := s.schedules[k]; ok {
		return nil, Result{}, errExists(model.ObjJobSchedule, c.Name)
	}
	if c.Kind != model.JobSnapshot && c.Kind != model.JobVerify {
		return nil, Result{}, newErr(Invalid, model.ObjJobSchedule, c.Name, linstor.FailInvldRequest,
			"use snapshot or verify", "job kind %q is unknown", c.Kind)
	}
	if err := s.checkSchedule(c.Name, c.Cron, c.Target, c.Options); err != nil {
		return nil, Result{}, err
	}
	js := &model.JobSchedule{Name: c.Name, Cron: c.Cron, Kind: c.Kind, Target: c.Target,
		Options: cloneOpts(c.Options), Paused: c.Paused, CreatedAt: c.At, UpdatedAt: c.At}
	return func() { s.schedules[k] = js }, Result{}, nil
}

func (s *State) checkSchedule(name, cron string, t model.JobTarget, opts map[string]string) *Error {
	if e := model.ValidateCron(cron); e != nil {
		return errInvalid(model.ObjJobSchedule, name, linstor.FailInvldTimeParam, e)
	}
	if e := t.Validate(); e != nil {
		return errInvalid(model.ObjJobSchedule, name, linstor.FailInvldRequest, e)
	}
	switch t.Kind {
	case model.TargetResourceGroup:
		if _, err := s.group(t.Name); err != nil {
			return err
		}
	case model.TargetResourceDefinition:
		if _, err := s.definition(t.Name); err != nil {
			return err
		}
	case model.TargetResourceDefinitions:
		// Each must exist now; one deleted later just drops out.
		for _, n := range t.Names() {
			if _, err := s.definition(n); err != nil {
				return err
			}
		}
	}
	return checkOptions(model.ObjJobSchedule, name, opts)
}

func checkOptions(obj model.ObjectKind, name string, opts map[string]string) *Error {
	for _, k := range slices.Sorted(maps.Keys(opts)) {
		if k == "" || len(k) > maxOptionKeyLen {
			return newErr(Invalid, obj, name, linstor.FailInvldRequest, "use short names such as retain or prefix",
				"option name %q must be 1 to %d bytes long", k, maxOptionKeyLen)
		}
		for _, ch := range k {
			if !(ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9' || ch == '-' || ch == '_' || ch == '.') {
				return newErr(Invalid, obj, name, linstor.FailInvldRequest, "use lower-case letters, digits, '-', '_' and '.'",
					"option name %q contains %q", k, ch)
			}
		}
		if len(opts[k]) > maxMessageLen {
			return newErr(Invalid, obj, name, linstor.FailInvldRequest, "shorten it",
				"value of option %q is %d bytes long, at most %d are allowed", k, len(opts[k]), maxMessageLen)
		}
	}
	return nil
}

func cloneOpts(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return maps.Clone(m)
}

// EditJobSchedule changes a schedule. Nil fields stay as they are; options
// are set and deleted key by key. Its kind cannot change: that would be a
// different job, so remove and add instead.
type EditJobSchedule struct {
	Name          string            `json:"name"`
	Cron          *string           `json:"cron,omitempty"`
	Target        *model.JobTarget  `json:"target,omitempty"`
	SetOptions    map[string]string `json:"set_options,omitempty"`
	DeleteOptions []string          `json:"delete_options,omitempty"`
	At            int64             `json:"at"`
}

// Type implements Command.
func (*EditJobSchedule) Type() string { return "EditJobSchedule" }

func (c *EditJobSchedule) prepare(s *State) (func(), Result, *Error) {
	js, err := s.schedule(c.Name)
	if err != nil {
		return nil, Result{}, err
	}
	next := js.Clone()
	if c.Cron != nil {
		next.Cron = *c.Cron
	}
	if c.Target != nil {
		next.Target = *c.Target
	}
	opts := maps.Clone(next.Options)
	if opts == nil {
		opts = map[string]string{}
	}
	for _, k := range c.DeleteOptions {
		delete(opts, k)
	}
	maps.Copy(opts, c.SetOptions)
	next.Options = cloneOpts(opts)
	if err := s.checkSchedule(js.Name, next.Cron, next.Target, next.Options); err != nil {
		return nil, Result{}, err
	}
	next.UpdatedAt = c.At
	return func() { *js = next }, Result{}, nil
}

func (s *State) schedule(name string) (*model.JobSchedule, *Error) {
	if js, ok := s.schedules[model.Key(name)]; ok {
		return js, nil
	}
	return nil, errNotFound(model.ObjJobSchedule, name)
}

// RemoveJobSchedule removes a schedule and its run history.
type RemoveJobSchedule struct {
	Name string `json:"name"`
}

// Type implements Command.
func (*RemoveJobSchedule) Type() string { return "RemoveJobSchedule" }

func (c *RemoveJobSchedule) prepare(s *State) (func(), Result, *Error) {
	js, err := s.schedule(c.Name)
	if err != nil {
		return nil, Result{}, err
	}
	k := model.Key(js.Name)
	return func() {
		delete(s.schedules, k)
		for id := range s.idx.runsBySched[k] {
			delete(s.runs, id)
		}
		delete(s.idx.runsBySched, k)
	}, Result{}, nil
}

// PauseJobSchedule stops a schedule from starting runs until resumed.
type PauseJobSchedule struct {
	Name string `json:"name"`
	At   int64  `json:"at"`
}

// Type implements Command.
func (*PauseJobSchedule) Type() string { return "PauseJobSchedule" }

func (c *PauseJobSchedule) prepare(s *State) (func(), Result, *Error) {
	return s.setPaused(c.Name, true, c.At)
}

// ResumeJobSchedule lets a paused schedule start runs again.
type ResumeJobSchedule struct {
	Name string `json:"name"`
	At   int64  `json:"at"`
}

// Type implements Command.
func (*ResumeJobSchedule) Type() string { return "ResumeJobSchedule" }

func (c *ResumeJobSchedule) prepare(s *State) (func(), Result, *Error) {
	return s.setPaused(c.Name, false, c.At)
}

// RequestJobRun asks the leader's job runner for a run of a schedule now,
// outside its cron spec (`pvehci schedule run-now`), paused or not. The
// request is in the state so that it survives a leader change; a run
// started at or after it answers it.
type RequestJobRun struct {
	Name string `json:"name"`
	At   int64  `json:"at"` // ms since the epoch
}

// Type implements Command.
func (*RequestJobRun) Type() string { return "RequestJobRun" }

func (c *RequestJobRun) prepare(s *State) (func(), Result, *Error) {
	js, err := s.schedule(c.Name)
	if err != nil {
		return nil, Result{}, err
	}
	if c.At <= 0 {
		return nil, Result{}, newErr(Invalid, model.ObjJobSchedule, js.Name, linstor.FailInvldProp,
			"send the request time in milliseconds since the epoch", "run request for %s has no time", js.Name)
	}
	return func() { js.RunRequestedAt = max(js.RunRequestedAt, c.At) }, Result{}, nil
}

func (s *State) setPaused(name string, paused bool, at int64) (func(), Result, *Error) {
	js, err := s.schedule(name)
	if err != nil {
		return nil, Result{}, err
	}
	if js.Paused == paused {
		word := "running"
		if paused {
			word = "paused"
		}
		return func() {}, Result{Warnings: []Warning{{Code: linstor.WarnInvldConf, Message: fmt.Sprintf("schedule %s is already %s", js.Name, word)}}}, nil
	}
	return func() { js.Paused, js.UpdatedAt = paused, at }, Result{}, nil
}

// RecordJobRun records a job run when it starts and again when it ends
// (same ID). A run that has ended cannot change any more. Only the newest
// MaxRunsPerSchedule runs of each schedule are kept.
type RecordJobRun struct {
	Run model.JobRun `json:"run"`
}

// Type implements Command.
func (*RecordJobRun) Type() string { return "RecordJobRun" }

func (c *RecordJobRun) prepare(s *State) (func(), Result, *Error) {
	run := c.Run.Clone()
	if e := model.ValidateName(model.NameJobRun, run.ID); e != nil {
		return nil, Result{}, errName(model.ObjJobRun, e)
	}
	bad := func(fix, format string, args ...any) (func(), Result, *Error) {
		return nil, Result{}, newErr(Invalid, model.ObjJobRun, run.ID, linstor.FailInvldRequest, fix, format, args...)
	}
	if run.Schedule != "" {
		js, err := s.schedule(run.Schedule)
		if err != nil {
			return nil, Result{}, err
		}
		run.Schedule = js.Name
	}
	if run.Kind != model.JobSnapshot && run.Kind != model.JobVerify {
		return bad("use snapshot or verify", "job kind %q is unknown", run.Kind)
	}
	if e := run.Target.Validate(); e != nil {
		return nil, Result{}, errInvalid(model.ObjJobRun, run.ID, linstor.FailInvldRequest, e)
	}
	if !run.State.Valid() {
		return bad("use running, succeeded, failed or skipped", "job run state %q is unknown", run.State)
	}
	if run.State.Final() && run.FinishedAt == 0 {
		return bad("give the time the run ended", "job run %s ended (%s) but has no finished_at", run.ID, run.State)
	}
	if !run.State.Final() && run.FinishedAt != 0 {
		return bad("leave finished_at empty until the run ends", "job run %s is still running but has finished_at", run.ID)
	}
	if run.FinishedAt != 0 && run.FinishedAt < run.StartedAt {
		return bad("check the clock of the node that ran it", "job run %s finished before it started", run.ID)
	}
	if len(run.Message) > maxMessageLen {
		return bad("shorten it", "job run message is %d bytes long, at most %d are allowed", len(run.Message), maxMessageLen)
	}
	if err := checkOptions(model.ObjJobRun, run.ID, run.Details); err != nil {
		return nil, Result{}, err
	}
	id := model.Key(run.ID)
	if old, ok := s.runs[id]; ok {
		if old.State.Final() {
			return nil, Result{}, newErr(Invalid, model.ObjJobRun, run.ID, linstor.FailInvldRequest,
				"start a new run with a new ID", "job run %s already ended (%s)", run.ID, old.State)
		}
		if !model.SameName(old.Schedule, run.Schedule) || old.Kind != run.Kind || old.StartedAt != run.StartedAt {
			return bad("record the end of a run with the schedule, kind and start it began with",
				"job run %s does not match its start record", run.ID)
		}
	}
	sk := model.Key(run.Schedule)
	// Which runs fall out of the history, decided now so the commit
	// cannot fail: the oldest by start time, then ID, never this one.
	var drop []string
	if _, exists := s.runs[id]; !exists && len(s.idx.runsBySched[sk]) >= MaxRunsPerSchedule {
		ids := sortedKeys(s.idx.runsBySched[sk])
		slices.SortStableFunc(ids, func(a, b string) int {
			if d := s.runs[a].StartedAt - s.runs[b].StartedAt; d != 0 {
				if d < 0 {
					return -1
				}
				return 1
			}
			return cmpStr(a, b)
		})
		drop = ids[:len(ids)-MaxRunsPerSchedule+1]
	}
	r := &run
	return func() {
		for _, d := range drop {
			delete(s.runs, d)
			delete(s.idx.runsBySched[sk], d)
		}
		s.runs[id] = r
		s.indexRun(id, r)
	}, Result{}, nil
}

// SetRelocationTimer starts (or restarts) the timer of an automatic
// diskful relocation of a resource definition to the node its VM now runs
// on. A relocation already under way (adding, syncing, removing) is not
// replaced: cancel it first.
type SetRelocationTimer struct {
	ResourceDefinition string `json:"resource_definition"`
	TargetNode         string `json:"target_node"`
	SourceNode         string `json:"source_node,omitempty"`
	Reason             string `json:"reason,omitempty"`
	DueAt              int64  `json:"due_at"` // ms since the epoch
	At                 int64  `json:"at"`     // ms since the epoch
}

// Type implements Command.
func (*SetRelocationTimer) Type() string { return "SetRelocationTimer" }

func (c *SetRelocationTimer) prepare(s *State) (func(), Result, *Error) {
	rd, err := s.definition(c.ResourceDefinition)
	if err != nil {
		return nil, Result{}, err
	}
	target, err := s.node(c.TargetNode)
	if err != nil {
		return nil, Result{}, err
	}
	if !target.Type.HostsResources() {
		return nil, Result{}, newErr(Invalid, model.ObjRelocation, rd.Name, linstor.FailInvldNodeType,
			"relocate to a satellite or combined node", "node %s runs no satellite", target.Name)
	}
	source := ""
	if c.SourceNode != "" {
		n, err := s.node(c.SourceNode)
		if err != nil {
			return nil, Result{}, err
		}
		source = n.Name
	}
	if len(c.Reason) > maxMessageLen {
		return nil, Result{}, newErr(Invalid, model.ObjRelocation, rd.Name, linstor.FailInvldRequest, "shorten it", "reason is too long")
	}
	k := model.Key(rd.Name)
	if old, ok := s.relocs[k]; ok && !old.State.Final() && old.State != model.RelocPending {
		return nil, Result{}, errInUse(model.ObjRelocation, rd.Name, "wait for it to finish, or cancel it first",
			"relocation of %s to %s is %s", rd.Name, old.TargetNode, old.State)
	}
	rel := &model.Relocation{ResourceName: rd.Name, TargetNode: target.Name, SourceNode: source, State: model.RelocPending,
		Reason: c.Reason, CreatedAt: c.At, DueAt: c.DueAt, UpdatedAt: c.At}
	return func() {
		s.relocs[k] = rel
		s.recordEvent(model.Event{At: c.At, Kind: model.EventRelocation, Resource: rd.Name, Node: target.Name, State: string(rel.State), Message: rel.Reason})
	}, Result{}, nil
}

// recordEvent appends e, dropping the oldest beyond model.MaxEvents.
func (s *State) recordEvent(e model.Event) {
	if len(s.events) >= model.MaxEvents {
		s.events = slices.Delete(s.events, 0, len(s.events)-model.MaxEvents+1)
	}
	s.events = append(s.events, e)
}

// UpdateRelocation moves a relocation along its states (see
// model.RelocationState) and records a message; DueAt, when given, moves
// the timer.
type UpdateRelocation struct {
	ResourceDefinition string                `json:"resource_definition"`
	State              model.RelocationState `json:"state"`
	Message            string                `json:"message,omitempty"`
	DueAt              *int64                `json:"due_at,omitempty"`
	At                 int64                 `json:"at"`
}

// Type implements Command.
func (*UpdateRelocation) Type() string { return "UpdateRelocation" }

func (c *UpdateRelocation) prepare(s *State) (func(), Result, *Error) {
	rel, ok := s.relocs[model.Key(c.ResourceDefinition)]
	if !ok {
		return nil, Result{}, newErr(NotFound, model.ObjRelocation, c.ResourceDefinition, linstor.FailNotFoundRscDfn,
			"list relocations to see which are pending", "no relocation of %s is pending", c.ResourceDefinition)
	}
	if !c.State.Valid() {
		return nil, Result{}, newErr(Invalid, model.ObjRelocation, rel.ResourceName, linstor.FailInvldRequest,
			"use pending, adding, syncing, removing, done, failed or cancelled", "relocation state %q is unknown", c.State)
	}
	if c.State != rel.State && !rel.State.CanMoveTo(c.State) {
		return nil, Result{}, newErr(Invalid, model.ObjRelocation, rel.ResourceName, linstor.FailInvldRequest,
			"a relocation moves forward only (pending, adding, syncing, removing, done) and ends when done, failed or cancelled",
			"relocation of %s cannot go from %s to %s", rel.ResourceName, rel.State, c.State)
	}
	if c.State == rel.State && rel.State.Final() {
		return nil, Result{}, newErr(Invalid, model.ObjRelocation, rel.ResourceName, linstor.FailInvldRequest,
			"clear it, or set a new timer", "relocation of %s has ended (%s)", rel.ResourceName, rel.State)
	}
	if len(c.Message) > maxMessageLen {
		return nil, Result{}, newErr(Invalid, model.ObjRelocation, rel.ResourceName, linstor.FailInvldRequest, "shorten it", "message is too long")
	}
	next := *rel
	next.State, next.Message, next.UpdatedAt = c.State, c.Message, c.At
	if c.DueAt != nil {
		next.DueAt = *c.DueAt
	}
	return func() {
		// A skip repeats its reason every pass: only a change is news.
		if next.State != rel.State || next.Message != rel.Message {
			s.recordEvent(model.Event{At: c.At, Kind: model.EventRelocation, Resource: rel.ResourceName, Node: rel.TargetNode, State: string(next.State), Message: next.Message})
		}
		*rel = next
	}, Result{}, nil
}

// ClearRelocation forgets a relocation, whatever its state.
type ClearRelocation struct {
	ResourceDefinition string `json:"resource_definition"`
}

// Type implements Command.
func (*ClearRelocation) Type() string { return "ClearRelocation" }

func (c *ClearRelocation) prepare(s *State) (func(), Result, *Error) {
	k := model.Key(c.ResourceDefinition)
	if _, ok := s.relocs[k]; !ok {
		return nil, Result{}, newErr(NotFound, model.ObjRelocation, c.ResourceDefinition, linstor.FailNotFoundRscDfn,
			"nothing to clear", "no relocation of %s exists", c.ResourceDefinition)
	}
	return func() { delete(s.relocs, k) }, Result{}, nil
}
