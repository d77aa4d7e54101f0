package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/pvehci/pvehci/ha/state"
	"github.com/pvehci/pvehci/storage/drbd"
	"github.com/pvehci/pvehci/storage/lvm"
	"github.com/pvehci/pvehci/storage/model"
)

// Completer finishes intents on the leader (see the package doc).
type Completer struct {
	Store *Store
	// State is the replicated state; Changed wakes the loop on its changes.
	State   func() *state.State
	Changed func() <-chan struct{}
	// Apply replicates a command.
	Apply func(ctx context.Context, cmd state.Command) (state.Result, error)
	Log   *slog.Logger
	// Interval is the pace without changes; default 2 s.
	Interval time.Duration
	// Now is the clock of the snapshot deadlines; time.Now when nil.
	Now func() time.Time
}

func (c *Completer) log() *slog.Logger { return orDiscard(c.Log) }

// Run completes intents until ctx ends (leadership lost).
func (c *Completer) Run(ctx context.Context) error {
	iv := c.Interval
	if iv <= 0 {
		iv = 2 * time.Second
	}
	return runLoop(ctx, c.Changed, c.Store, iv, 0, c.Pass, c.log(), "completing intents")
}

// Pass completes what the current reports allow. It returns the first
// error; the next pass retries.
func (c *Completer) Pass(ctx context.Context) error {
	st := c.State()
	var errs []error
	apply := func(cmd state.Command) {
		res, err := c.Apply(ctx, cmd)
		if err == nil {
			err = res.Err
		}
		if err != nil {
			errs = append(errs, err)
			return
		}
		c.log().Info("completed", "command", cmd.Type(), "detail", describe(cmd))
	}
	for _, rd := range st.ResourceDefinitions() {
		rscs := st.Resources(rd.Name)
		// Diskless resources first, so the last diskful one may follow
		// (the state refuses the other order).
		for pass := 0; pass < 2; pass++ {
			for _, r := range rscs {
				if !r.Flags.Has(model.RscFlagDelete) || (pass == 0) != r.Diskless() {
					continue
				}
				if c.goneFrom(r, rd.VolumeDefinitions) {
					apply(&state.DeleteResource{ResourceDefinition: r.Name, Node: r.Node})
				}
			}
		}
		for _, r := range rscs {
			c.completeToggle(r, apply)
			c.completeRestore(r, rd.VolumeDefinitions, apply)
			c.completeRollback(r, apply)
		}
		c.completeSnapshots(st, rd.Name, apply)
		if rd.Flags.Has(model.RdFlagDelete) {
			if len(st.Resources(rd.Name)) == 0 && len(st.SnapshotDefinitions(rd.Name)) == 0 {
				apply(&state.DeleteResourceDefinition{Name: rd.Name})
			}
			continue
		}
		c.completeResize(st, rd, apply)
		for _, vd := range rd.VolumeDefinitions {
			if !vd.Flags.Has(model.VdFlagDrbdInitialized) && c.upToDateSomewhere(rscs, vd.VolumeNumber) {
				apply(&state.SetFlags{Target: state.Target{Kind: model.ObjVolumeDefinition, ResourceDefinition: rd.Name, VolumeNumber: vd.VolumeNumber},
					Set: []string{model.VdFlagDrbdInitialized}})
			}
		}
	}
	return errors.Join(errs...)
}

// goneFrom says whether r's node has proven the delete done: its latest
// report comes from a pass that saw the DELETE flag (Deleting names the
// resource) and shows neither the DRBD resource nor any of its volumes.
// A report from before the node saw the flag proves nothing, however late
// it arrives.
func (c *Completer) goneFrom(r model.Resource, vds []model.VolumeDefinition) bool {
	rep, _, ok := c.Store.Report(r.Node)
	if !ok || rep.ObserveError != "" || !slices.Contains(rep.Deleting, r.Name) {
		return false
	}
	if _, up := rep.Resource(r.Name); up {
		return false
	}
	for _, vd := range vds {
		suffix := "/" + lvm.VolumeLVName(r.Name, vd.VolumeNumber)
		for _, v := range rep.Volumes {
			if strings.HasSuffix(v, suffix) {
				return false
			}
		}
	}
	return true
}

// completeToggle clears a toggle-disk request once the node's DRBD shows
// it done: every volume attached to a disk (DISK_ADD_REQUESTED; the sync
// may still run) or every volume a diskless client (DISK_REMOVE_REQUESTED).
// A report from before the toggle shows the opposite, so it cannot
// complete it.
func (c *Completer) completeToggle(r model.Resource, apply func(state.Command)) {
	var flag string
	switch {
	case r.Flags.Has(model.RscFlagDiskAddRequested):
		flag = model.RscFlagDiskAddRequested
	case r.Flags.Has(model.RscFlagDiskRemoveRequested):
		flag = model.RscFlagDiskRemoveRequested
	default:
		return
	}
	rep, _, ok := c.Store.Report(r.Node)
	if !ok {
		return
	}
	k, ok := rep.Resource(r.Name)
	if !ok || len(k.Devices) == 0 {
		return
	}
	for _, d := range k.Devices {
		attached := d.Disk != drbd.DiskDiskless && !d.Client
		if attached != (flag == model.RscFlagDiskAddRequested) {
			return
		}
	}
	apply(&state.SetFlags{Target: state.Target{Kind: model.ObjResource, ResourceDefinition: r.Name, Node: r.Node}, Clear: []string{flag}})
}

func (c *Completer) upToDateSomewhere(rscs []model.Resource, vnr int) bool {
	for _, r := range rscs {
		rep, _, ok := c.Store.Report(r.Node)
		if !ok {
			continue
		}
		k, ok := rep.Resource(r.Name)
		if !ok {
			continue
		}
		for _, d := range k.Devices {
			if d.Volume == vnr && d.Disk == drbd.DiskUpToDate {
				return true
			}
		}
	}
	return false
}

func describe(cmd state.Command) string {
	switch c := cmd.(type) {
	case *state.DeleteResource:
		return c.ResourceDefinition + " on " + c.Node
	case *state.DeleteResourceDefinition:
		return c.Name
	case *state.SetFlags:
		return c.Target.ResourceDefinition + " " + c.Target.Node + c.Target.Snapshot + " set " + strings.Join(c.Set, ",") + " clear " + strings.Join(c.Clear, ",")
	case *state.SetProps:
		return c.Target.ResourceDefinition + "/" + c.Target.Snapshot + " set " + fmt.Sprint(c.Change.Set) + " delete " + strings.Join(c.Change.Delete, ",")
	case *state.DeleteSnapshotDefinition:
		return c.ResourceDefinition + " " + c.Name
	}
	return ""
}
