package satellite

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/pvehci/pvehci/ha/state"
	"github.com/pvehci/pvehci/internal/hostfs"
	"github.com/pvehci/pvehci/storage/lvm"
)

// Outcome is what became of one action.
type Outcome struct {
	Action Action
	// Err is set when the action failed; its message names the command
	// and the tail of its stderr.
	Err error
	// Skipped is set when an earlier action of the same resource failed.
	Skipped bool
	// Restored is set on a failed Adjust after which the previous .res
	// was put back.
	Restored bool
}

// Report is the result of a pass.
type Report struct {
	Plan     PlanResult
	Outcomes []Outcome
}

// Failed returns the outcomes that failed.
func (r Report) Failed() []Outcome {
	var out []Outcome
	for _, o := range r.Outcomes {
		if o.Err != nil {
			out = append(out, o)
		}
	}
	return out
}

// Pass runs one reconcile pass: Desired, Observe, Plan, Apply. The error is
// for a pass that could not start (the state or the observation failed);
// failed actions are in the report.
func (r *Reconciler) Pass(ctx context.Context, st *state.State) (Report, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	want, err := Desired(st, r.Node)
	if err != nil {
		return Report{}, err
	}
	if r.Now != nil {
		want.Now = r.Now()
	}
	got, err := r.Observe(ctx, want)
	if err != nil {
		return Report{}, err
	}
	p := Plan(want, got)
	return Report{Plan: p, Outcomes: r.Apply(ctx, p.Actions)}, nil
}

// Apply runs actions in order. A failed action skips the rest of its
// resource's actions and no others. When Adjust fails after this call wrote
// the resource's .res, the previous file is restored (or the new one
// removed if there was none), so the kernel and the file agree again and
// the next pass retries.
func (r *Reconciler) Apply(ctx context.Context, actions []Action) []Outcome {
	out := make([]Outcome, 0, len(actions))
	failed := map[string]bool{}
	wrote := map[string]bool{} // .res replaced in this call
	for _, a := range actions {
		// ResumeIO is never skipped: I/O resumes whatever happens.
		if failed[a.Resource] && a.Kind != ResumeIO {
			out = append(out, Outcome{Action: a, Skipped: true})
			continue
		}
		o := Outcome{Action: a}
		changed, err := r.do(ctx, a)
		if a.Kind == WriteRes && changed {
			wrote[a.Resource] = true
		}
		if err != nil {
			o.Err = err
			failed[a.Resource] = true
			if a.Kind == Adjust && wrote[a.Resource] {
				if rerr := r.restoreRes(a.Resource); rerr != nil {
					o.Err = fmt.Errorf("%w; and restoring the previous %s failed: %v", err, ResPath(a.Resource), rerr)
				} else {
					o.Restored = true
				}
			}
			r.log().Error("action failed", "action", a.String(), "err", o.Err, "restored", o.Restored)
		} else {
			r.log().Info("action done", "action", a.String())
		}
		out = append(out, o)
	}
	return out
}

func (r *Reconciler) restoreRes(rsc string) error {
	p := ResPath(rsc)
	err := r.FS.Restore(p)
	if errors.Is(err, hostfs.ErrNoBackup) {
		_, err = r.FS.Remove(p)
	}
	return err
}

// do runs one action; changed is only meaningful for WriteRes.
func (r *Reconciler) do(ctx context.Context, a Action) (changed bool, err error) {
	dev := lvm.DevicePath(a.VG, a.LV)
	switch a.Kind {
	case CreateLV:
		_, err := r.Runner.Run(ctx, r.cmd("lvcreate", "-V", strconv.FormatInt(a.SizeKiB, 10)+"k", "-T", a.VG+"/"+a.ThinPool, "-n", a.LV, "--addtag", "pvehci"))
		if err != nil {
			if poolFull(err) {
				return false, fmt.Errorf("create LV %s/%s for %s: thin pool %s/%s has no room: extend the pool (lvextend) or free space in it; the next pass retries: %w", a.VG, a.LV, a.Resource, a.VG, a.ThinPool, err)
			}
			return false, fmt.Errorf("create LV %s/%s for %s: %w", a.VG, a.LV, a.Resource, err)
		}
	case ActivateLV:
		if _, err := r.Runner.Run(ctx, r.cmd("lvchange", "-ay", "-K", a.VG+"/"+a.LV)); err != nil {
			return false, fmt.Errorf("activate LV %s/%s for %s: %w", a.VG, a.LV, a.Resource, err)
		}
	case WriteRes:
		if err := r.FS.MkdirAll(ResDir, 0o755); err != nil {
			return false, fmt.Errorf("write .res of %s: %w", a.Resource, err)
		}
		changed, err := r.FS.WriteFile(ResPath(a.Resource), a.Res, 0o644, hostfs.WriteOptions{Backup: true})
		if err != nil {
			return false, fmt.Errorf("write .res of %s: %w", a.Resource, err)
		}
		return changed, nil
	case CreateMD:
		// LINSTOR's form (research §3 step 6); --force because the
		// LV is new or was shown to hold no metadata.
		if _, err := r.Runner.Run(ctx, r.cmd("drbdadm", "-vvv", "--max-peers", strconv.Itoa(a.Peers), "--", "--force", "create-md", a.Resource+"/"+strconv.Itoa(a.Volume))); err != nil {
			return false, fmt.Errorf("create DRBD metadata for %s/%d: %w", a.Resource, a.Volume, err)
		}
	case Adjust:
		if _, err := r.Runner.Run(ctx, r.cmd("drbdadm", "-vvv", "adjust", a.Resource)); err != nil {
			return false, fmt.Errorf("adjust %s (the previous .res is kept; fix the cause, the next pass retries): %w", a.Resource, err)
		}
	case SkipInitialSync:
		// DRBD guide "Skipping initial device synchronization"; the
		// plan checked that every replica is connected and fresh.
		rv := a.Resource + "/" + strconv.Itoa(a.Volume)
		if _, err := r.Runner.Run(ctx, r.cmd("drbdadm", "new-current-uuid", "--clear-bitmap", rv)); err != nil {
			return false, fmt.Errorf("skip the initial sync of %s (the replicas stay Inconsistent; the next pass retries while they are still fresh): %w", rv, err)
		}
	case ForcePrimary:
		// DRBD guide 4.6: the forced primary's data becomes the
		// reference and every peer syncs from it in full.
		if _, err := r.Runner.Run(ctx, r.cmd("drbdadm", "primary", "--force", a.Resource)); err != nil {
			return false, fmt.Errorf("force %s primary for its initial sync (the next pass retries while every replica is still fresh): %w", a.Resource, err)
		}
		// Back to Secondary at once: auto-promote gives the resource to
		// whichever node opens it, and a Primary here would keep the VM
		// from starting anywhere else.
		if _, err := r.Runner.Run(ctx, r.cmd("drbdadm", "secondary", a.Resource)); err != nil {
			return false, fmt.Errorf("demote %s after forcing it primary (its data is started and the sync runs, but it stays Primary until `drbdadm secondary %s` succeeds): %w", a.Resource, a.Resource, err)
		}
	case Down:
		if _, err := r.Runner.Run(ctx, r.cmd("drbdsetup", "down", a.Resource)); err != nil {
			return false, fmt.Errorf("take down %s: %w", a.Resource, err)
		}
	case WipeMD:
		// drbdmeta rather than drbdadm: it needs no .res, so a delete
		// interrupted after the .res went away still completes.
		if _, err := r.Runner.Run(ctx, r.cmd("drbdmeta", "--force", strconv.Itoa(a.Minor), "v09", dev, "internal", "wipe-md")); err != nil {
			return false, fmt.Errorf("wipe DRBD metadata of %s/%d on %s: %w", a.Resource, a.Volume, dev, err)
		}
	case RemoveLV:
		if _, err := r.Runner.Run(ctx, r.cmd("lvremove", "-f", a.VG+"/"+a.LV)); err != nil {
			return false, fmt.Errorf("remove LV %s/%s of %s: %w", a.VG, a.LV, a.Resource, err)
		}
	case SuspendIO, ResumeIO, TakeSnapshot, RemoveSnapshot:
		return false, r.doSnapshot(ctx, a)
	case CloneLV, RenameLV, ForgetPeers:
		return false, r.doRestore(ctx, a)
	case RunVerify:
		return r.runVerify(ctx, a)
	case ResyncVerified:
		return false, r.resyncVerified(ctx, a)
	case GrowLV:
		return false, r.growLV(ctx, a)
	case ResizeDRBD:
		return false, r.runResize(ctx, a)
	case CheckResize:
		return false, r.checkResize(ctx, a)
	case DropPeer:
		return false, r.dropPeer(ctx, a)
	case RemoveRes:
		for _, p := range []string{ResPath(a.Resource), ResPath(a.Resource) + ".bak"} {
			if _, err := r.FS.Remove(p); err != nil {
				return false, fmt.Errorf("remove %s: %w", p, err)
			}
		}
	default:
		return false, fmt.Errorf("unknown action %q; this is a bug", a.Kind)
	}
	return false, nil
}

// poolFull recognises LVM's refusals for lack of space in a thin pool or
// volume group.
func poolFull(err error) bool {
	msg := err.Error()
	for _, s := range []string{"Insufficient free space", "reached threshold", "out of data space", "is full", "Cannot create new thin volume"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}
