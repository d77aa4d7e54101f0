package controller

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/pvehci/pvehci/ha/relocate"
	"github.com/pvehci/pvehci/ha/state"
	"github.com/pvehci/pvehci/storage/drbd"
	"github.com/pvehci/pvehci/storage/model"
)

// Relocator runs the relocation decisions (ha/relocate) on the leader: a
// VM that runs on a diskless client gets a local replica after the delay,
// and the surplus replica goes once the new one is UpToDate.
type Relocator struct {
	Store   *Store
	State   func() *state.State
	Changed func() <-chan struct{}
	Apply   func(ctx context.Context, cmd state.Command) (state.Result, error)
	// VMs tells where the VMs run (the Proxmox API); nil knows none, and
	// DRBD's Primary role then says where each VM runs.
	VMs    func(ctx context.Context) (relocate.VMLocations, error)
	Limits relocate.Limits
	Log    *slog.Logger
	// Interval is the pace without changes; default 5 s.
	Interval time.Duration
	// Finished, when set, is called once for each relocation that reaches
	// done, failed or cancelled while this Relocator leads, whoever moved
	// it there (see relocationWatch); pvehci_relocations_total counts them.
	Finished func(model.Relocation)

	watch relocationWatch
}

// Run decides and applies until ctx ends (leadership lost).
func (r *Relocator) Run(ctx context.Context) error {
	iv := r.Interval
	if iv <= 0 {
		iv = 5 * time.Second
	}
	// Relocations that ended before this term are another leader's to
	// count (or were counted by this daemon's previous term).
	r.watch.reset()
	pass := func(ctx context.Context) error { return r.Pass(ctx, time.Now()) }
	return runLoop(ctx, r.Changed, r.Store, iv, time.Second, pass, r.log(), "relocation")
}

func (r *Relocator) log() *slog.Logger { return orDiscard(r.Log) }

// Pass makes one round of decisions at now and applies them.
func (r *Relocator) Pass(ctx context.Context, now time.Time) error {
	// Looking before deciding catches what a command from elsewhere ended
	// since the last pass; looking after applying counts this pass's own
	// endings even if leadership is lost before the next pass.
	r.noteEnded(r.State())
	defer func() { r.noteEnded(r.State()) }()
	var vms relocate.VMLocations
	if r.VMs != nil {
		var err error
		if vms, err = r.VMs(ctx); err != nil {
			// Without the VMs' places a relocation could follow a VM
			// that is migrating; decide nothing until they are known.
			return err
		}
	}
	st := r.State()
	var errs []error
	for _, d := range relocate.Decide(st, RelocationView(r.Store), vms, now, r.Limits) {
		for _, cmd := range d.Commands(now) {
			res, err := r.Apply(ctx, cmd)
			if err == nil {
				err = res.Err
			}
			if err != nil {
				errs = append(errs, err)
				break
			}
		}
		if d.Kind != relocate.Progress {
			r.log().Info("relocation", "decision", string(d.Kind), "resource", d.Resource, "node", d.Node, "reason", d.Reason)
		}
	}
	return errors.Join(errs...)
}

func (r *Relocator) noteEnded(st *state.State) {
	for _, rel := range r.watch.look(st.Relocations()) {
		r.log().Info("relocation ended", "resource", rel.ResourceName, "node", rel.TargetNode, "result", string(rel.State), "message", rel.Message)
		if r.Finished != nil {
			r.Finished(rel)
		}
	}
}

// relocationWatch finds the relocations that reached a final state between
// two looks at the state. A relocation has no ID of its own; the resource
// definition and the timer's creation time tell a new relocation of the
// same definition from the one it replaced.
type relocationWatch struct {
	mu   sync.Mutex
	seen map[relocationID]model.RelocationState // nil before a term's first look
}

type relocationID struct {
	rd      string
	created int64
}

func (w *relocationWatch) reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.seen = nil
}

// look returns the relocations of rels that are final now and were not at
// the previous look, or did not exist then. The first look only records:
// counting what it finds final would count again, after every failover or
// restart, what an earlier term already counted.
func (w *relocationWatch) look(rels []model.Relocation) []model.Relocation {
	w.mu.Lock()
	defer w.mu.Unlock()
	first := w.seen == nil
	next := make(map[relocationID]model.RelocationState, len(rels))
	var ended []model.Relocation
	for _, rel := range rels {
		id := relocationID{model.Key(rel.ResourceName), rel.CreatedAt}
		next[id] = rel.State
		if first || !rel.State.Final() {
			continue
		}
		if prev, ok := w.seen[id]; !ok || !prev.Final() {
			ended = append(ended, rel)
		}
	}
	w.seen = next
	return ended
}

// RelocationView is the store's reports as ha/relocate reads them: per
// resource the role, the worst disk state and the connected peers; per
// pool the free space. Only nodes that are online count.
func RelocationView(s *Store) relocate.Observed {
	out := relocate.Observed{Replicas: map[relocate.ResourceKey]relocate.Replica{}, PoolFreeKiB: map[relocate.PoolKey]int64{}}
	s.mu.Lock()
	entries := make([]entry, 0, len(s.reports))
	for _, e := range s.reports {
		entries = append(entries, e)
	}
	s.mu.Unlock()
	for _, e := range entries {
		if !s.online(e.received) || e.rep.ObserveError != "" {
			continue
		}
		node := e.rep.Node
		for _, p := range e.rep.Pools {
			out.PoolFreeKiB[relocate.PK(node, p.Name)] = p.FreeKiB
		}
		for _, k := range e.rep.Resources {
			rep := relocate.Replica{Primary: k.Role == drbd.RolePrimary, Disk: worstDisk(k.Devices)}
			for _, c := range k.Connections {
				if c.Connection == drbd.ConnConnected {
					rep.Connected = append(rep.Connected, c.Name)
				}
			}
			out.Replicas[relocate.RK(k.Name, node)] = rep
		}
	}
	return out
}

// worstDisk folds the volumes' disk states into the one relocate reads.
func worstDisk(devs []drbd.ObservedDevice) relocate.DiskState {
	if len(devs) == 0 {
		return relocate.DiskUnknown
	}
	rank := func(d drbd.DiskState) (int, relocate.DiskState) {
		switch d {
		case drbd.DiskUpToDate:
			return 4, relocate.DiskUpToDate
		case drbd.DiskDiskless:
			return 3, relocate.DiskDiskless
		case drbd.DiskOutdated, drbd.DiskConsistent:
			return 2, relocate.DiskOutdated
		case drbd.DiskInconsistent:
			return 1, relocate.DiskInconsistent
		}
		return 0, relocate.DiskUnknown
	}
	best, state := 5, relocate.DiskUnknown
	for _, d := range devs {
		if r, s := rank(d.Disk); r < best {
			best, state = r, s
		}
	}
	return state
}
