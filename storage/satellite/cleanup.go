package satellite

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/pvehci/pvehci/ha/state"
	"github.com/pvehci/pvehci/storage/drbd"
	"github.com/pvehci/pvehci/storage/lvm"
)

// Orphans are never removed by a pass (plan.go); `pvehci node cleanup
// --orphans` lists them with what removing each would run, and removes the
// ones the operator confirmed, if they are still orphans then. What pvehci
// did not make (an LV without its tag), what is in use (a Primary or open
// DRBD device, an open LV, an LV a DRBD device is attached to) and
// snapshot LVs are listed and never removed.

// CleanupItem is one orphan and what cleanup does with it.
type CleanupItem struct {
	Orphan
	// Key names the item in a removal request: "KIND:NAME".
	Key string `json:"key"`
	// Command is what removes it; empty when it is kept.
	Command string `json:"command,omitempty"`
	// Kept says why it is not removed.
	Kept string `json:"kept,omitempty"`
	// Removed and Error are the outcome of a removal.
	Removed bool   `json:"removed,omitempty"`
	Error   string `json:"error,omitempty"`
}

func orphanKey(o Orphan) string { return o.Kind + ":" + o.Name }

// Orphans lists the node's orphans, each with the command that would
// remove it or why it is kept.
func (r *Reconciler) Orphans(ctx context.Context, st *state.State) ([]CleanupItem, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	items, _, err := r.orphans(ctx, st)
	return items, err
}

// RemoveOrphans removes the orphans named by keys that are still orphans
// and still removable, DRBD resources first (so that their .res files and
// LVs are free), then .res files, then LVs. It returns every orphan found
// before the removal, with the outcome for those it removed; the error is
// for a removal that could not start.
func (r *Reconciler) RemoveOrphans(ctx context.Context, st *state.State, keys []string) ([]CleanupItem, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	items, got, err := r.orphans(ctx, st)
	if err != nil {
		return nil, err
	}
	for _, kind := range []string{"drbd", "res", "lv"} {
		if kind == "lv" {
			// Taking DRBD resources down changed what holds the LVs:
			// look again, and remove only what is free now.
			fresh, _, err := r.orphans(ctx, st)
			if err != nil {
				return items, err
			}
			for i := range items {
				j := slices.IndexFunc(fresh, func(f CleanupItem) bool { return f.Key == items[i].Key })
				switch {
				case items[i].Kind != "lv":
				case j < 0:
					items[i].Command, items[i].Kept = "", "it is no orphan any more (gone, or a resource owns it now)"
				case fresh[j].Command == "":
					items[i].Command, items[i].Kept = "", fresh[j].Kept
				}
			}
		}
		for i := range items {
			it := &items[i]
			if it.Kind != kind || !slices.Contains(keys, it.Key) {
				continue
			}
			if it.Command == "" {
				it.Error = "not removed: " + it.Kept
				continue
			}
			// A .res is removable only with its DRBD resource down,
			// which the drbd phase above may have just done.
			if kind == "res" {
				if _, up := got.DRBD[it.Name]; up && !removed(items, "drbd:"+it.Name) {
					it.Error = "not removed: its DRBD resource is still up"
					continue
				}
			}
			if err := r.removeOrphan(ctx, *it); err != nil {
				it.Error = err.Error()
				continue
			}
			it.Removed = true
			r.log().Warn("orphan removed", "kind", it.Kind, "name", it.Name, "command", it.Command)
		}
	}
	return items, nil
}

func kindOrder(kind string) int { return strings.Index("drbd res lv", kind) }

func removed(items []CleanupItem, key string) bool {
	i := slices.IndexFunc(items, func(it CleanupItem) bool { return it.Key == key })
	return i >= 0 && items[i].Removed
}

// orphans observes the node and classifies what the plan calls orphans.
func (r *Reconciler) orphans(ctx context.Context, st *state.State) ([]CleanupItem, Observed, error) {
	want, err := Desired(st, r.Node)
	if err != nil {
		return nil, Observed{}, err
	}
	got, err := r.Observe(ctx, want)
	if err != nil {
		return nil, Observed{}, fmt.Errorf("observe the node: %w", err)
	}
	p := Plan(want, got)
	backing := map[string]string{} // device → the DRBD resource attached to it
	for name, k := range got.DRBD {
		for _, d := range k.Devices {
			if d.BackingDev != "" {
				backing[d.BackingDev] = name
			}
		}
	}
	var items []CleanupItem
	// DRBD resources first: an LV is removable when the DRBD resource
	// holding it is an orphan that cleanup takes down first.
	orphans := slices.Clone(p.Orphans)
	slices.SortStableFunc(orphans, func(a, b Orphan) int { return kindOrder(a.Kind) - kindOrder(b.Kind) })
	for _, o := range orphans {
		it := CleanupItem{Orphan: o, Key: orphanKey(o)}
		switch o.Kind {
		case "lv":
			lv, ok := got.LVs[o.Name]
			switch {
			case !ok:
				it.Kept = "it is gone"
			case !slices.Contains(lv.Tags, lvm.Tag):
				it.Kept = "not tagged " + lvm.Tag + ": pvehci did not make it"
			case snapshotLV(lv):
				it.Kept = "a snapshot LV; delete its snapshot definition instead"
			case backing[lvm.DevicePath(lv.VG, lv.Name)] != "":
				holder := backing[lvm.DevicePath(lv.VG, lv.Name)]
				if i := slices.IndexFunc(items, func(x CleanupItem) bool { return x.Key == "drbd:"+holder }); i >= 0 && items[i].Command != "" {
					it.Command = "lvremove -f " + o.Name + " (once drbdsetup down " + holder + " has detached it)"
				} else {
					it.Kept = "DRBD resource " + holder + " is attached to it"
				}
			case lv.Attr.Open():
				it.Kept = "open: something uses it"
			default:
				it.Command = "lvremove -f " + o.Name
			}
		case "res":
			it.Command = "rm " + ResPath(o.Name)
		case "drbd":
			k := got.DRBD[o.Name]
			switch {
			case k.Role == drbd.RolePrimary:
				it.Kept = "Primary here: something uses it; stop that first"
			case slices.ContainsFunc(k.Devices, func(d drbd.ObservedDevice) bool { return d.Open }):
				it.Kept = "a device is open; close what uses it first"
			default:
				it.Command = "drbdsetup down " + o.Name
			}
		default:
			it.Kept = "unknown kind"
		}
		// Two orphans can share a key (an untagged LV named like a
		// volume is reported by the plan and by the LV scan): list it
		// once.
		if !slices.ContainsFunc(items, func(x CleanupItem) bool { return x.Key == it.Key }) {
			items = append(items, it)
		}
	}
	return items, got, nil
}

// removeOrphan runs the command of one removable orphan.
func (r *Reconciler) removeOrphan(ctx context.Context, it CleanupItem) error {
	switch it.Kind {
	case "drbd":
		if _, err := r.Runner.Run(ctx, r.cmd("drbdsetup", "down", it.Name)); err != nil {
			return fmt.Errorf("take down DRBD resource %s: %w", it.Name, err)
		}
	case "res":
		for _, p := range []string{ResPath(it.Name), ResPath(it.Name) + ".bak"} {
			if _, err := r.FS.Remove(p); err != nil {
				return fmt.Errorf("remove %s: %w", p, err)
			}
		}
	case "lv":
		if _, err := r.Runner.Run(ctx, r.cmd("lvremove", "-f", it.Name)); err != nil {
			return fmt.Errorf("remove LV %s: %w", it.Name, err)
		}
	}
	return nil
}
