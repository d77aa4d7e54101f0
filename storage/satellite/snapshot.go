package satellite

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/pvehci/pvehci/ha/state"
	"github.com/pvehci/pvehci/storage/drbd"
	"github.com/pvehci/pvehci/storage/lvm"
	"github.com/pvehci/pvehci/storage/model"
)

// The snapshot round is driven by the controller through two properties of
// the snapshot definition (storage/controller snapshot.go), which every
// satellite reads from the replicated state:
//
//   - KeySnapshotPhase is the phase: PhaseSuspend (every node with the
//     resource suspends its I/O), PhaseTake (every diskful node in the
//     snapshot takes its thin snapshots), PhaseResume (every node resumes
//     I/O). A snapshot definition without it has not started yet, or is
//     finished (flag SUCCESSFUL or FAILED_*).
//   - KeySnapshotPhaseSince is when the controller entered the phase, in
//     RFC 3339 UTC: the start of every deadline.
//   - KeySnapshotFailed is set to the reason when a phase timed out: the
//     round resumes and then ends FAILED_DEPLOYMENT instead of SUCCESSFUL.
//
// They live under Aux/, the namespace LINSTOR leaves to its clients, so no
// LINSTOR tool gives them a meaning of its own.
const (
	KeySnapshotPhase      = "Aux/pvehci/snapshot-phase"
	KeySnapshotPhaseSince = "Aux/pvehci/snapshot-phase-since"
	KeySnapshotFailed     = "Aux/pvehci/snapshot-failed"

	PhaseSuspend = "suspend"
	PhaseTake    = "take"
	PhaseResume  = "resume"
)

// SnapshotLocalDeadline is how long a satellite keeps I/O suspended for a
// snapshot phase on its own. It is twice the controller's deadline, so a
// live controller always ends a stuck round first; it exists for the
// controller that died mid-round (design §4: I/O resumes on every node
// whatever happens).
const SnapshotLocalDeadline = 60 * time.Second

// SnapshotLVName is the LV of volume vnr of snapshot snap, LINSTOR's
// "<lv>_<snap>" (research/linstor-server.md §3 "Snapshot create"), for
// example "vm-100-disk-1_00000_snap1".
func SnapshotLVName(resource string, vnr int, snap string) string {
	return lvm.VolumeLVName(resource, vnr) + "_" + snap
}

// DesiredSnapshot is one snapshot definition, as this node must act on it.
type DesiredSnapshot struct {
	Resource, Name string
	// Phase and Since are the controller's KeySnapshotPhase and
	// KeySnapshotPhaseSince; Phase is "" for a finished or unstarted
	// snapshot.
	Phase string
	Since time.Time
	// Delete is the flag DELETE: the node removes its snapshot LVs.
	Delete bool
	// LVs are the snapshot LVs this node holds, or must take: set only
	// when the snapshot lists the node. Every node with the resource,
	// diskless too, joins the suspend barrier, but only these take.
	LVs []SnapshotLV
	// Err is why the LVs could not be computed (a pool gone from the
	// state); the node then neither takes nor removes them.
	Err error
}

// SnapshotLV is one volume's snapshot LV.
type SnapshotLV struct {
	Volume int
	VG     string
	Origin string // the volume's LV
	Name   string // SnapshotLVName
}

// Key is "VG/LV", the key of Observed.LVs.
func (l SnapshotLV) Key() string { return l.VG + "/" + l.Name }

// barrier reports whether the snapshot holds this node's I/O suspended at
// now: a running round in phase suspend or take that has not outlasted
// SnapshotLocalDeadline. A phase without a readable start never holds it,
// so a damaged property cannot keep a VM frozen.
func (s DesiredSnapshot) barrier(now time.Time) bool {
	if s.Delete || (s.Phase != PhaseSuspend && s.Phase != PhaseTake) || s.Since.IsZero() {
		return false
	}
	return now.Sub(s.Since) < SnapshotLocalDeadline
}

// desiredSnapshots reads the snapshot definitions of rd (every one when rd
// is "") as node must act on them. The LVs come from the snapshot's own
// volumes and pools, not from the resource's current ones: a replica
// toggled to diskless or deleted since still holds its snapshot LVs.
func desiredSnapshots(st *state.State, node, rd string) []DesiredSnapshot {
	var out []DesiredSnapshot
	for _, sd := range st.SnapshotDefinitions(rd) {
		ds := DesiredSnapshot{Resource: sd.ResourceName, Name: sd.Name, Delete: sd.Flags.Has(model.SnapFlagDelete)}
		if !sd.Flags.Has(model.SnapFlagSuccessful) && !sd.Flags.Has(model.SnapFlagFailedDeployment) && !sd.Flags.Has(model.SnapFlagFailedDisconnect) {
			ds.Phase = sd.Props[KeySnapshotPhase]
			ds.Since, _ = time.Parse(time.RFC3339Nano, sd.Props[KeySnapshotPhaseSince])
		}
		for _, sn := range sd.Snapshots {
			if !model.SameName(sn.Node, node) {
				continue
			}
			for _, v := range sn.Volumes {
				pool, ok := st.StoragePool(node, v.StoragePool)
				vg := pool.Props[model.KeyStorDriverLvmVg]
				if !ok || vg == "" {
					ds.Err = fmt.Errorf("snapshot %s of %s: volume %d: storage pool %s on %s is gone or has no %s", sd.Name, sd.ResourceName, v.VolumeNumber, v.StoragePool, node, model.KeyStorDriverLvmVg)
					break
				}
				ds.LVs = append(ds.LVs, SnapshotLV{Volume: v.VolumeNumber, VG: vg,
					Origin: lvm.VolumeLVName(sd.ResourceName, v.VolumeNumber), Name: SnapshotLVName(sd.ResourceName, v.VolumeNumber, sd.Name)})
			}
		}
		out = append(out, ds)
	}
	return out
}

// suspendedByUser reports whether I/O of k is suspended by suspend-io
// (events2 "suspended:user", possibly with other reasons).
func suspendedByUser(k drbd.ObservedResource) bool {
	return slices.Contains(strings.Split(k.Suspended, ","), "user")
}

// planSnapshots lists the snapshot round's actions of one resource:
// suspend, take and resume. now is the satellite's clock for the local
// deadline.
//
// Resume is decided on the local view alone: I/O suspended by user is
// resumed whenever no round holds the barrier, whatever the controller
// does, so a dead controller or a deleted snapshot cannot keep a VM
// frozen. Taking needs the local barrier in place: a node that is not
// suspended (it restarted mid-round) takes nothing, and the controller's
// deadline fails the round.
func planSnapshots(d DesiredResource, got Observed, now time.Time, p *PlanResult) []Action {
	var acts []Action
	k, up := got.DRBD[d.Name]
	held := false
	for _, s := range d.Snapshots {
		held = held || s.barrier(now)
	}
	suspended := up && suspendedByUser(k)
	switch {
	case suspended && !held:
		return []Action{{Kind: ResumeIO, Resource: d.Name}}
	case !held || !up || d.Delete || d.Down:
		return nil
	}
	for _, s := range d.Snapshots {
		if !s.barrier(now) {
			continue
		}
		if !suspended {
			if s.Phase == PhaseSuspend {
				return []Action{{Kind: SuspendIO, Resource: d.Name, Snapshot: s.Name}}
			}
			continue
		}
		if s.Phase != PhaseTake || s.Err != nil {
			continue
		}
		for _, l := range s.LVs {
			lv, exists := got.LVs[l.Key()]
			switch {
			case exists && !slices.Contains(lv.Tags, lvm.Tag):
				p.Orphans = append(p.Orphans, untaggedSnapshot(s, l))
			case !exists:
				if _, ok := got.LVs[l.VG+"/"+l.Origin]; ok {
					acts = append(acts, Action{Kind: TakeSnapshot, Resource: d.Name, Volume: l.Volume, VG: l.VG, LV: l.Origin, Snapshot: s.Name})
				}
			}
		}
	}
	return acts
}

// planSnapshotRemovals removes the LVs of the node's snapshots flagged
// DELETE, whether or not the node still has the resource.
func planSnapshotRemovals(want DesiredState, got Observed, p *PlanResult) []Action {
	var acts []Action
	for _, s := range want.Snapshots {
		if !s.Delete {
			continue
		}
		if s.Err != nil {
			p.Problems = append(p.Problems, Problem{s.Resource, s.Err})
			continue
		}
		for _, l := range s.LVs {
			lv, exists := got.LVs[l.Key()]
			switch {
			case !exists:
			case !slices.Contains(lv.Tags, lvm.Tag):
				p.Orphans = append(p.Orphans, untaggedSnapshot(s, l))
			default:
				acts = append(acts, Action{Kind: RemoveSnapshot, Resource: s.Resource, Volume: l.Volume, VG: l.VG, LV: l.Name, Snapshot: s.Name})
			}
		}
	}
	return acts
}

func untaggedSnapshot(s DesiredSnapshot, l SnapshotLV) Orphan {
	return Orphan{"lv", l.Key(), "has the name of snapshot " + s.Name + " of " + s.Resource + " but not the tag " + lvm.Tag + "; pvehci neither uses nor removes it"}
}

// snapshotString describes the snapshot actions for logs.
func (a Action) snapshotString() string {
	switch a.Kind {
	case TakeSnapshot:
		return fmt.Sprintf("%s %s/%s of %s/%s", a.Kind, a.VG, SnapshotLVName(a.Resource, a.Volume, a.Snapshot), a.VG, a.LV)
	case RemoveSnapshot:
		return fmt.Sprintf("%s %s/%s", a.Kind, a.VG, a.LV)
	}
	return fmt.Sprintf("%s %s", a.Kind, a.Resource)
}

// snapshotArgv is the command line of a snapshot action.
func snapshotArgv(a Action) []string {
	switch a.Kind {
	case SuspendIO:
		return []string{"drbdadm", "suspend-io", a.Resource}
	case ResumeIO:
		return []string{"drbdadm", "resume-io", a.Resource}
	case TakeSnapshot:
		// LINSTOR's thin form (research/linstor-server.md §3 "Snapshot
		// create"), read-only and tagged so that it is ours. The
		// activation skip flag keeps a host's autoactivation from
		// opening it; -K activates it now, so its blocks can be read.
		return []string{"lvcreate", "--snapshot", "--setactivationskip", "y", "--ignoreactivationskip", "--activate", "y",
			"--name", SnapshotLVName(a.Resource, a.Volume, a.Snapshot), "-pr", "--addtag", lvm.Tag, a.VG + "/" + a.LV}
	case RemoveSnapshot:
		return []string{"lvremove", "-f", a.VG + "/" + a.LV}
	}
	return nil
}

// doSnapshot runs one snapshot action.
func (r *Reconciler) doSnapshot(ctx context.Context, a Action) error {
	if _, err := r.Runner.Run(ctx, r.cmd(snapshotArgv(a)...)); err != nil {
		switch a.Kind {
		case SuspendIO:
			return fmt.Errorf("suspend I/O of %s for snapshot %s (the controller's deadline ends the round): %w", a.Resource, a.Snapshot, err)
		case ResumeIO:
			return fmt.Errorf("resume I/O of %s (VMs using it stay frozen until `drbdadm resume-io %s` succeeds; the next pass retries): %w", a.Resource, a.Resource, err)
		case TakeSnapshot:
			return fmt.Errorf("take snapshot %s of %s/%s: %w", a.Snapshot, a.VG, a.LV, err)
		}
		return fmt.Errorf("remove snapshot LV %s/%s of %s: %w", a.VG, a.LV, a.Resource, err)
	}
	return nil
}
