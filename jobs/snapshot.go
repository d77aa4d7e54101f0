package jobs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pvehci/pvehci/ha/state"
	"github.com/pvehci/pvehci/snapshots/retention"
	"github.com/pvehci/pvehci/storage/model"
)

func (r *Runner) snapshotJob(ctx context.Context, js model.JobSchedule, runID string, now time.Time) outcome {
	if err := retention.CheckJob(js.Name); err != nil {
		return outcome{err: err}
	}
	policy, err := Policy(js.Options)
	if err != nil {
		return outcome{err: fmt.Errorf("retention options: %w", err)}
	}
	st := r.State()
	rds := Targets(st, js.Target)
	if len(rds) == 0 {
		return outcome{message: "no resource definition matches " + js.Target.String()}
	}
	name := retention.Name(js.Name, now)
	details := map[string]string{}
	var errs []error
	pruned := 0
	var created []string
	for _, rd := range rds {
		// Prune first: room for the new one, and a failing create does
		// not leave the set growing (snapshots/retention).
		var names []string
		for _, sd := range st.SnapshotDefinitions(rd) {
			// Only the job's own: named by it (Prune checks) and marked
			// by it, so a hand-made snapshot that happens to have the
			// job's name shape is never pruned.
			if !sd.Flags.Has(model.SnapFlagDelete) && model.SameName(sd.Props[PropJob], js.Name) {
				names = append(names, sd.Name)
			}
		}
		_, remove := retention.PruneBeforeCreate(js.Name, policy, names, now)
		for _, snap := range remove {
			if err := r.apply(ctx, &state.SetFlags{Target: state.Target{Kind: model.ObjSnapshotDefinition,
				ResourceDefinition: rd, Snapshot: snap}, Set: []string{model.SnapFlagDelete}}); err != nil {
				errs = append(errs, fmt.Errorf("deleting snapshot %s of %s: %w", snap, rd, err))
				continue
			}
			pruned++
		}
		if err := r.apply(ctx, &state.CreateSnapshotDefinition{ResourceDefinition: rd, Name: name,
			Props: model.Props{PropJob: js.Name}, CreateTimestamp: now.UnixMilli()}); err != nil {
			errs = append(errs, fmt.Errorf("snapshot %s of %s: %w", name, rd, err))
			details[detailKey("snapshot", rd)] = "failed"
			continue
		}
		created = append(created, rd)
	}
	// Wait for all of them at once: the barriers run in parallel.
	pending := map[string]bool{}
	for _, rd := range created {
		pending[rd] = true
	}
	failed := map[string]string{}
	werr := r.waitFor(ctx, timeout(js.Options, DefaultSnapshotTimeout), func() bool {
		st := r.State()
		for rd := range pending {
			sd, ok := st.SnapshotDefinition(rd, name)
			switch {
			case !ok:
				failed[rd] = "it disappeared while it was being taken"
			case sd.Flags.Has(model.SnapFlagFailedDeployment) || sd.Flags.Has(model.SnapFlagFailedDisconnect):
				failed[rd] = "the satellites report " + strings.Join(sd.Flags, ",")
			case sd.Flags.Has(model.SnapFlagSuccessful):
			default:
				continue
			}
			delete(pending, rd)
		}
		return len(pending) == 0
	})
	ok := 0
	for _, rd := range created {
		switch {
		case failed[rd] != "":
			details[detailKey("snapshot", rd)] = "failed"
			errs = append(errs, fmt.Errorf("snapshot %s of %s failed: %s", name, rd, failed[rd]))
		case pending[rd]:
			details[detailKey("snapshot", rd)] = "timeout"
			errs = append(errs, fmt.Errorf("snapshot %s of %s did not complete: %v", name, rd, werr))
		default:
			details[detailKey("snapshot", rd)] = "ok"
			ok++
		}
	}
	msg := fmt.Sprintf("snapshot %s taken of %d of %d resource definitions, %d old snapshots pruned", name, ok, len(rds), pruned)
	return outcome{err: errors.Join(errs...), message: msg, details: details}
}
