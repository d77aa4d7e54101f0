package jobs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pvehci/pvehci/ha/state"
	"github.com/pvehci/pvehci/storage/drbd"
	"github.com/pvehci/pvehci/storage/model"
	"github.com/pvehci/pvehci/storage/satellite"
)

// hasVerifyAlg reports whether rd has a verify-alg, set on it, its
// resource group or the controller.
func hasVerifyAlg(st *state.State, rd string) bool {
	def, ok := st.ResourceDefinition(rd)
	if !ok {
		return false
	}
	if def.Props[KeyVerifyAlg] != "" || st.ControllerProps()[KeyVerifyAlg] != "" {
		return true
	}
	rg, ok := st.ResourceGroup(def.ResourceGroup)
	return ok && rg.Props[KeyVerifyAlg] != ""
}

// detailKey is a run detail's key: lower case (model.JobRun details take
// only lower-case keys) and prefixed by what it says.
func detailKey(what, rd string) string { return what + "." + strings.ToLower(rd) }

// Verify job options (see the package doc).
const (
	// ResyncOff leaves what a verify found for the operator (the default).
	ResyncOff = "off"
	// ResyncFromPrimary resynchronizes what a verify found from the
	// Primary's replica, when a diskful replica is Primary.
	ResyncFromPrimary = "from-primary"
)

// KeyCMaxRate is DRBD's c-max-rate peer-device option, which caps online
// verify as it caps a resync: DRBD paces verify requests with the resync
// controller (drbd.conf(5), c-max-rate; guide 5.11.3).
const KeyCMaxRate = "DrbdOptions/PeerDevice/c-max-rate"

// PropVerifyMaxRate marks a c-max-rate on a resource definition as set by
// the verify run it names, so the run removes only its own.
const PropVerifyMaxRate = "Aux/pvehci/verify-max-rate"

// VerifyOptions are a verify job's options, read by ParseVerifyOptions.
type VerifyOptions struct {
	// PerNode is how many verifies may read one node's disks at once; 0
	// for no limit.
	PerNode int
	// MaxRate caps each verify's read rate (DRBD rate syntax, e.g. 50M);
	// empty for none.
	MaxRate string
	// Window spreads the starts: the i-th of n definitions starts no
	// earlier than i*Window/n after the run began.
	Window time.Duration
	// Resync is ResyncOff or ResyncFromPrimary.
	Resync string
	// Timeout bounds the whole run.
	Timeout time.Duration
}

// ParseVerifyOptions reads and checks a verify job's options, so that a
// bad one is refused when the schedule is stored rather than failing every
// run. Options of other kinds are ignored.
func ParseVerifyOptions(opts map[string]string) (VerifyOptions, error) {
	vo := VerifyOptions{PerNode: DefaultVerifyPerNode, Resync: ResyncOff, Timeout: timeout(opts, DefaultVerifyTimeout)}
	var errs []error
	if v, ok := opts["per-node"]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			errs = append(errs, fmt.Errorf("option per-node is %q; give a whole number, 0 for no limit", v))
		}
		vo.PerNode = n
	}
	if v, ok := opts["max-rate"]; ok {
		if _, ok := drbd.ParseRate(v); !ok {
			errs = append(errs, fmt.Errorf("option max-rate is %q; give a rate as DRBD reads it, e.g. 50M (MiB/s) or 20480 (KiB/s)", v))
		}
		vo.MaxRate = v
	}
	if v, ok := opts["window"]; ok {
		d, err := parseDuration(v)
		switch {
		case err != nil || d < 0:
			errs = append(errs, fmt.Errorf("option window is %q; give a duration such as 4h", v))
		case d >= vo.Timeout:
			errs = append(errs, fmt.Errorf("option window %s is not shorter than the run's timeout %s: the last verifies could not start; lower window or raise timeout", d, vo.Timeout))
		}
		vo.Window = d
	}
	if v, ok := opts["resync"]; ok {
		if v != ResyncOff && v != ResyncFromPrimary {
			errs = append(errs, fmt.Errorf("option resync is %q; give %s or %s", v, ResyncOff, ResyncFromPrimary))
		}
		vo.Resync = v
	}
	return vo, errors.Join(errs...)
}

// effectiveCMaxRate is the c-max-rate rd inherits (its own, its group's or
// the controller's), empty for none.
func effectiveCMaxRate(st *state.State, def model.ResourceDefinition) string {
	if v := def.Props[KeyCMaxRate]; v != "" {
		return v
	}
	if rg, ok := st.ResourceGroup(def.ResourceGroup); ok && rg.Props[KeyCMaxRate] != "" {
		return rg.Props[KeyCMaxRate]
	}
	return st.ControllerProps()[KeyCMaxRate]
}

// verifyTask is one definition's progress through a verify run.
type verifyTask struct {
	rd        string
	notBefore time.Time
	nodes     []string // node keys whose disks the verify reads, while it runs
	requested bool
	result    *satellite.VerifyReport
	from      string // the node that verified
	resync    string // "" not asked; "pending"; then model.ResyncDone or why not
	finished  bool
}

func (r *Runner) verifyJob(ctx context.Context, js model.JobSchedule, runID string) outcome {
	if r.Store == nil {
		return outcome{err: errors.New("this runner has no satellite reports to read verify results from")}
	}
	vo, err := ParseVerifyOptions(js.Options)
	if err != nil {
		return outcome{err: fmt.Errorf("verify options: %w", err)}
	}
	rds := Targets(r.State(), js.Target)
	if len(rds) == 0 {
		return outcome{message: "no resource definition matches " + js.Target.String()}
	}
	var errs []error
	st := r.State()
	start := r.now()
	var tasks []*verifyTask
	for _, rd := range rds {
		if !hasVerifyAlg(st, rd) {
			if err := r.apply(ctx, &state.SetProps{Target: state.Target{Kind: model.ObjResourceDefinition, ResourceDefinition: rd},
				Change: model.PropsChange{Set: model.Props{KeyVerifyAlg: DefaultVerifyAlg}}}); err != nil {
				errs = append(errs, fmt.Errorf("setting %s on %s: %w", KeyVerifyAlg, rd, err))
				continue
			}
		}
		tasks = append(tasks, &verifyTask{rd: rd})
	}
	// Spread over the window: a whole cluster verified at once reads
	// every disk at once.
	for i, t := range tasks {
		t.notBefore = start.Add(vo.Window * time.Duration(i) / time.Duration(len(tasks)))
	}
	defer r.clearVerifyProps(ctx, runID, tasks)

	// A verify reads every block of every diskful replica: at most
	// PerNode verifies involve one node's disks at a time (default 1,
	// "one verify per disk at a time"), the others wait in the queue.
	busy := map[string]int{} // node key → verifies running on its disks
	nodesOf := func(rd string) []string {
		var out []string
		for _, res := range r.State().Resources(rd) {
			if !res.Diskless() && !res.Flags.Has(model.RscFlagDelete) {
				out = append(out, model.Key(res.Node))
			}
		}
		return out
	}
	release := func(t *verifyTask) {
		for _, n := range t.nodes {
			busy[n]--
		}
		t.nodes = nil
	}
	werr := r.waitFor(ctx, vo.Timeout, func() bool {
		reports := r.Store.Reports()
		for _, t := range tasks {
			if !t.requested || t.finished {
				continue
			}
			if t.result == nil {
				for _, rep := range reports {
					for _, v := range rep.Verifies {
						if model.SameName(v.Resource, t.rd) && v.RunID == runID && !v.Running {
							v := v
							t.result, t.from = &v, rep.Node
						}
					}
				}
				if t.result == nil {
					continue
				}
				if t.result.OutOfSyncKiB == 0 || vo.Resync == ResyncOff {
					t.finished = true
				} else if !t.result.Primary {
					t.resync = "not repaired: no diskful Primary verified it (the VM is stopped or runs diskless), so no replica is known to hold the good data"
					t.finished = true
				} else if err := r.apply(ctx, &state.SetProps{Target: state.Target{Kind: model.ObjResourceDefinition, ResourceDefinition: t.rd},
					Change: model.PropsChange{Set: model.Props{satellite.PropVerifyResync: runID}}}); err != nil {
					t.resync = "not repaired: " + err.Error()
					t.finished = true
				} else {
					t.resync = "pending"
				}
			}
			if t.resync == "pending" {
				if rep, _, ok := r.Store.Report(t.from); ok {
					for _, v := range rep.Verifies {
						if model.SameName(v.Resource, t.rd) && v.RunID == runID && v.Resync == runID && !resyncing(v) && v.OutOfSyncKiB == 0 {
							t.resync, t.finished = model.ResyncDone, true
						}
					}
				}
			}
			if t.finished {
				release(t)
			}
		}
		now := r.now()
		pending := false
		for _, t := range tasks {
			if !t.finished {
				pending = true
			}
			if t.requested || now.Before(t.notBefore) {
				continue
			}
			nodes := nodesOf(t.rd)
			if vo.PerNode > 0 && slices.ContainsFunc(nodes, func(n string) bool { return busy[n] >= vo.PerNode }) {
				continue
			}
			set := model.Props{PropVerifyRequest: runID}
			if vo.MaxRate != "" {
				// A c-max-rate set on the definition itself is the
				// operator's and stays; an inherited one is capped.
				if def, ok := r.State().ResourceDefinition(t.rd); ok && def.Props[KeyCMaxRate] == "" && lowerRate(vo.MaxRate, effectiveCMaxRate(r.State(), def)) {
					set[KeyCMaxRate], set[PropVerifyMaxRate] = vo.MaxRate, runID
				}
			}
			if err := r.apply(ctx, &state.SetProps{Target: state.Target{Kind: model.ObjResourceDefinition, ResourceDefinition: t.rd},
				Change: model.PropsChange{Set: set}}); err != nil {
				errs = append(errs, fmt.Errorf("requesting the verify of %s: %w", t.rd, err))
				t.requested, t.finished = true, true
				continue
			}
			t.requested, t.nodes = true, nodes
			for _, n := range nodes {
				busy[n]++
			}
		}
		return !pending
	})
	details := map[string]string{}
	var total uint64
	var dirty []string
	done, repaired := 0, 0
	for _, t := range tasks {
		if t.result == nil {
			if !t.finished {
				details[detailKey(model.JobDetailOutOfSyncKiB, t.rd)] = "unknown"
				why := "did not finish"
				if !t.requested {
					why = "did not start"
				}
				errs = append(errs, fmt.Errorf("the verify of %s %s: %v", t.rd, why, werr))
			}
			continue
		}
		done++
		v := t.result
		details[detailKey(model.JobDetailOutOfSyncKiB, t.rd)] = strconv.FormatUint(v.OutOfSyncKiB, 10)
		details[detailKey(model.JobDetailVerifiedFrom, t.rd)] = strings.ToLower(t.from)
		var peers []string
		for _, p := range v.Peers {
			details[detailKey(model.JobDetailOutOfSyncPeer, t.rd)+"."+strings.ToLower(p.Node)] = strconv.FormatUint(p.OutOfSyncKiB, 10)
			if p.OutOfSyncKiB > 0 {
				peers = append(peers, fmt.Sprintf("%s %d KiB", p.Node, p.OutOfSyncKiB))
			}
		}
		total += v.OutOfSyncKiB
		if v.OutOfSyncKiB == 0 {
			continue
		}
		finding := fmt.Sprintf("%s (%d KiB against %s's replica: %s", t.rd, v.OutOfSyncKiB, t.from, strings.Join(peers, ", "))
		switch {
		case t.resync == "":
		case t.resync == model.ResyncDone:
			repaired++
			finding += "; resynchronized from " + t.from
		case t.resync == "pending":
			t.resync = fmt.Sprintf("not repaired: the resync from %s did not finish: %v", t.from, werr)
			errs = append(errs, fmt.Errorf("the resync of %s %s", t.rd, t.resync))
			fallthrough
		default:
			finding += "; " + t.resync
		}
		if t.resync != "" {
			details[detailKey(model.JobDetailResync, t.rd)] = t.resync
		}
		dirty = append(dirty, finding+")")
	}
	msg := fmt.Sprintf("verified %d of %d resource definitions", done, len(rds))
	if len(dirty) > 0 {
		msg += fmt.Sprintf("; %d KiB out of sync in %s", total, strings.Join(dirty, ", "))
		if repaired > 0 {
			msg += fmt.Sprintf("; %d repaired from the Primary", repaired)
		}
	} else if done > 0 {
		msg += "; no block out of sync"
	}
	return outcome{err: errors.Join(errs...), message: msg, details: details}
}

// resyncing reports whether a resync toward a peer of v still runs.
func resyncing(v satellite.VerifyReport) bool {
	return slices.ContainsFunc(v.Peers, func(p satellite.VerifyPeer) bool { return p.Resyncing })
}

// lowerRate reports whether rate caps more than current (empty: no cap);
// an unreadable current value is left alone.
func lowerRate(rate, current string) bool {
	if current == "" {
		return true
	}
	want, ok1 := drbd.ParseRate(rate)
	have, ok2 := drbd.ParseRate(current)
	return ok1 && ok2 && want < have
}

// clearVerifyProps removes what the run set on its definitions: the verify
// and resync requests and its c-max-rate.
func (r *Runner) clearVerifyProps(ctx context.Context, runID string, tasks []*verifyTask) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	for _, t := range tasks {
		def, ok := r.State().ResourceDefinition(t.rd)
		if !ok {
			continue
		}
		var del []string
		for _, k := range []string{PropVerifyRequest, satellite.PropVerifyResync} {
			if def.Props[k] == runID {
				del = append(del, k)
			}
		}
		if def.Props[PropVerifyMaxRate] == runID {
			del = append(del, PropVerifyMaxRate, KeyCMaxRate)
		}
		if len(del) == 0 {
			continue
		}
		if err := r.apply(cctx, &state.SetProps{Target: state.Target{Kind: model.ObjResourceDefinition, ResourceDefinition: t.rd},
			Change: model.PropsChange{Delete: del}}); err != nil {
			r.log().Warn("removing a verify run's properties", "resource", t.rd, "err", err)
		}
	}
}
