package controller

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/pvehci/pvehci/ha/state"
	"github.com/pvehci/pvehci/storage/drbd"
	"github.com/pvehci/pvehci/storage/model"
	"github.com/pvehci/pvehci/storage/satellite"
)

// SnapshotPhaseTimeout bounds each phase of a snapshot round. A suspend or
// take phase that outlasts it moves to resume and the round ends
// FAILED_DEPLOYMENT; a resume phase that outlasts it ends the round with
// the result it has, since every satellite resumes on its own
// (satellite.SnapshotLocalDeadline) and waiting longer changes nothing.
// The VM's I/O is frozen for at most this long (design §4).
const SnapshotPhaseTimeout = 30 * time.Second

func (c *Completer) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// completeSnapshots moves every snapshot definition of rd one step: a new
// one through suspend, take and resume to SUCCESSFUL (or FAILED_DEPLOYMENT),
// one flagged DELETE out of the state once its LVs are gone. Each step
// depends only on the state and the latest reports, so a new leader picks
// a round up where the old one left it.
func (c *Completer) completeSnapshots(st *state.State, rd string, apply func(state.Command)) {
	for _, sd := range st.SnapshotDefinitions(rd) {
		target := state.Target{Kind: model.ObjSnapshotDefinition, ResourceDefinition: sd.ResourceName, Snapshot: sd.Name}
		phase := sd.Props[satellite.KeySnapshotPhase]
		done := sd.Flags.Has(model.SnapFlagSuccessful) || sd.Flags.Has(model.SnapFlagFailedDeployment) || sd.Flags.Has(model.SnapFlagFailedDisconnect)
		switch {
		case sd.Flags.Has(model.SnapFlagDelete) && !done && (phase == satellite.PhaseSuspend || phase == satellite.PhaseTake):
			// Deleted mid-round: end the barrier first, so that no
			// satellite takes an LV after the definition is gone.
			apply(&state.SetProps{Target: target, Change: model.PropsChange{Set: model.Props{
				satellite.KeySnapshotPhase: satellite.PhaseResume, satellite.KeySnapshotPhaseSince: c.now().UTC().Format(time.RFC3339Nano),
				satellite.KeySnapshotFailed: "deleted during the round"}}})
		case sd.Flags.Has(model.SnapFlagDelete):
			if c.snapshotGone(sd) {
				apply(&state.DeleteSnapshotDefinition{ResourceDefinition: sd.ResourceName, Name: sd.Name})
			}
		case done:
			// A crash between the flag and the clean-up leaves the
			// phase behind; finish the clean-up.
			if phase != "" || sd.Props[satellite.KeySnapshotPhaseSince] != "" || sd.Props[satellite.KeySnapshotFailed] != "" {
				apply(&state.SetProps{Target: target, Change: clearPhase()})
			}
		default:
			c.stepSnapshot(st, sd, target, phase, apply)
		}
	}
}

// stepSnapshot advances one running round.
func (c *Completer) stepSnapshot(st *state.State, sd model.SnapshotDefinition, target state.Target, phase string, apply func(state.Command)) {
	now := c.now()
	since, err := time.Parse(time.RFC3339Nano, sd.Props[satellite.KeySnapshotPhaseSince])
	expired := err != nil || now.Sub(since) >= SnapshotPhaseTimeout
	enter := func(next, failure string) {
		set := model.Props{satellite.KeySnapshotPhase: next, satellite.KeySnapshotPhaseSince: now.UTC().Format(time.RFC3339Nano)}
		if failure != "" {
			set[satellite.KeySnapshotFailed] = failure
			c.log().Warn("snapshot round failed; resuming I/O", "resource", sd.ResourceName, "snapshot", sd.Name, "reason", failure)
		}
		apply(&state.SetProps{Target: target, Change: model.PropsChange{Set: set}})
	}
	members := barrierNodes(st, sd.ResourceName)
	switch phase {
	case "":
		enter(satellite.PhaseSuspend, "")
	case satellite.PhaseSuspend:
		switch waiting := c.notSuspended(sd, members); {
		case len(waiting) == 0:
			enter(satellite.PhaseTake, "")
		case expired:
			enter(satellite.PhaseResume, fmt.Sprintf("I/O not suspended within %s on %s", SnapshotPhaseTimeout, strings.Join(waiting, ", ")))
		}
	case satellite.PhaseTake:
		switch waiting := c.notTaken(sd); {
		case len(waiting) == 0:
			enter(satellite.PhaseResume, "")
		case expired:
			enter(satellite.PhaseResume, fmt.Sprintf("snapshot not taken within %s on %s", SnapshotPhaseTimeout, strings.Join(waiting, ", ")))
		}
	case satellite.PhaseResume:
		waiting := c.stillSuspended(sd.ResourceName, members)
		if len(waiting) > 0 && !expired {
			return
		}
		if len(waiting) > 0 {
			c.log().Warn("snapshot round ends with I/O still reported suspended; those satellites resume on their own",
				"resource", sd.ResourceName, "snapshot", sd.Name, "nodes", waiting)
		}
		flag := model.SnapFlagSuccessful
		if sd.Props[satellite.KeySnapshotFailed] != "" {
			flag = model.SnapFlagFailedDeployment
		}
		apply(&state.SetFlags{Target: target, Set: []string{flag}})
		apply(&state.SetProps{Target: target, Change: clearPhase()})
	default:
		// Not a phase this controller wrote: resume, to be safe.
		enter(satellite.PhaseResume, fmt.Sprintf("unknown phase %q", phase))
	}
}

func clearPhase() model.PropsChange {
	return model.PropsChange{Delete: []string{satellite.KeySnapshotPhase, satellite.KeySnapshotPhaseSince, satellite.KeySnapshotFailed}}
}

// barrierNodes are the nodes whose I/O a snapshot of rd must suspend:
// every node with a resource of rd that the satellites bring up, diskless
// ones included, since a diskless Primary writes to the diskful replicas
// over the network (research/linstor-server.md §3 "Snapshot create": the
// suspend flag goes on every resource of the definition).
func barrierNodes(st *state.State, rd string) []string {
	var nodes []string
	for _, r := range st.Resources(rd) {
		if r.Flags.Has(model.RscFlagDelete) || r.Flags.Has(model.RscFlagDrbdDelete) || r.Flags.Has(model.RscFlagInactive) {
			continue
		}
		nodes = append(nodes, r.Node)
	}
	return nodes
}

// reported returns node's report on rd's DRBD resource; ok is false when
// there is no usable report (none, or one that could not observe).
func (c *Completer) reported(node, rd string) (k drbd.ObservedResource, up, ok bool) {
	rep, _, ok := c.Store.Report(node)
	if !ok || rep.ObserveError != "" {
		return drbd.ObservedResource{}, false, false
	}
	k, up = rep.Resource(rd)
	return k, up, true
}

func userSuspended(k drbd.ObservedResource) bool {
	return slices.Contains(strings.Split(k.Suspended, ","), "user")
}

// notSuspended are the members whose reports do not show sd's resource
// suspended by user from a pass that held sd's barrier: a suspension seen
// by a pass that did not know the round may be another round's, about to
// be resumed.
func (c *Completer) notSuspended(sd model.SnapshotDefinition, members []string) []string {
	var out []string
	for _, n := range members {
		rep, _, ok := c.Store.Report(n)
		k, up := rep.Resource(sd.ResourceName)
		if !ok || rep.ObserveError != "" || !up || !userSuspended(k) || !slices.Contains(rep.Barriers, sd.ResourceName+"/"+sd.Name) {
			out = append(out, n)
		}
	}
	return out
}

// stillSuspended are the members that may still hold rd suspended: those
// whose report shows it suspended by user, or that do not report.
func (c *Completer) stillSuspended(rd string, members []string) []string {
	var out []string
	for _, n := range members {
		if k, up, ok := c.reported(n, rd); !ok || up && userSuspended(k) {
			out = append(out, n)
		}
	}
	return out
}

// snapshotLVs returns, for each node of sd, whether its report lists any of
// sd's snapshot LVs and whether it lists all of them; ok is false without a
// usable report.
func (c *Completer) snapshotLVs(sd model.SnapshotDefinition, sn model.Snapshot) (some, all, ok bool) {
	rep, _, ok := c.Store.Report(sn.Node)
	if !ok || rep.ObserveError != "" {
		return false, false, false
	}
	lvs := append(slices.Clone(rep.Snapshots), rep.Volumes...)
	all = true
	for _, v := range sn.Volumes {
		suffix := "/" + satellite.SnapshotLVName(sd.ResourceName, v.VolumeNumber, sd.Name)
		has := slices.ContainsFunc(lvs, func(key string) bool { return strings.HasSuffix(key, suffix) })
		some = some || has
		all = all && has
	}
	return some, all, true
}

// notTaken are the nodes of sd whose reports do not yet list every
// snapshot LV.
func (c *Completer) notTaken(sd model.SnapshotDefinition) []string {
	var out []string
	for _, sn := range sd.Snapshots {
		if _, all, ok := c.snapshotLVs(sd, sn); !ok || !all {
			out = append(out, sn.Node)
		}
	}
	return out
}

// snapshotGone says whether every node of sd reports none of its snapshot
// LVs. A node that does not report keeps the definition, as for resources:
// its LVs may still be there.
func (c *Completer) snapshotGone(sd model.SnapshotDefinition) bool {
	for _, sn := range sd.Snapshots {
		if some, _, ok := c.snapshotLVs(sd, sn); !ok || some {
			return false
		}
	}
	return true
}
