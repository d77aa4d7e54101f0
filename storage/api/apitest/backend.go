// Package apitest is an in-memory api.Backend for tests: a *state.State
// that commands are applied to directly, satellites that create every
// device at once (as /dev/drbd<minor>, UpToDate), and a controller that
// completes every intent the API records straight away (deletes, snapshot
// success, resize, toggle-disk, rollback), as the real reconcilers would
// once the satellites have acted. Tests can override what is observed to
// model in-use resources, syncing replicas, offline nodes and full pools.
package apitest

import (
	"context"
	"fmt"
	"strconv"
	"sync"

	linstor "github.com/LINBIT/golinstor"
	"github.com/pvehci/pvehci/ha/state"
	"github.com/pvehci/pvehci/storage/api"
	"github.com/pvehci/pvehci/storage/model"
	"github.com/pvehci/pvehci/storage/satellite"
)

// DefaultPoolKiB is the free and total space every diskful pool reports
// unless SetPool says otherwise: 1 TiB.
const DefaultPoolKiB = int64(1) << 30

// Backend implements api.Backend, api.PoolObserver and api.NodeObserver.
type Backend struct {
	State *state.State

	mu       sync.Mutex
	observed map[string]api.ObservedResource // "rd key/node key"
	pools    map[string]api.ObservedPool     // "node key/pool key"
	offline  map[string]bool                 // node key
	applied  []string
	waited   []string         // "rd/node" of WaitDevice calls
	devErr   map[string]error // node key → WaitDevice failure
	// Complete, when false, leaves intents pending (to test timeouts).
	complete bool
	// applyErr, when set, fails every Apply as a replication error.
	applyErr error
}

var (
	_ api.Backend      = (*Backend)(nil)
	_ api.PoolObserver = (*Backend)(nil)
	_ api.NodeObserver = (*Backend)(nil)
)

// New returns a backend over a fresh cluster state (state.New).
func New() *Backend {
	return &Backend{State: state.New(), observed: map[string]api.ObservedResource{}, pools: map[string]api.ObservedPool{},
		offline: map[string]bool{}, devErr: map[string]error{}, complete: true}
}

func rkey(rd, node string) string { return model.Key(rd) + "/" + model.Key(node) }

// Read implements api.Backend.
func (b *Backend) Read(context.Context) (*state.State, error) { return b.State, nil }

// Apply implements api.Backend: the command is applied directly, then
// whatever it asks the satellites to do is done.
func (b *Backend) Apply(_ context.Context, cmd state.Command) (state.Result, error) {
	b.mu.Lock()
	err, complete := b.applyErr, b.complete
	b.mu.Unlock()
	if err != nil {
		return state.Result{}, err
	}
	res := b.State.Apply(cmd)
	if res.Err == nil {
		b.mu.Lock()
		b.applied = append(b.applied, cmd.Type())
		b.mu.Unlock()
	}
	if res.Err == nil && complete {
		if err := b.settle(); err != nil {
			return res, err
		}
	}
	return res, nil
}

// settle completes every pending intent, like the controller's
// reconcilers after the satellites report back.
func (b *Backend) settle() error {
	st := b.State
	apply := func(c state.Command) error {
		if r := st.Apply(c); r.Err != nil {
			return fmt.Errorf("apitest: completing %s: %w", c.Type(), r.Err)
		}
		return nil
	}
	for _, sd := range st.SnapshotDefinitions("") {
		t := state.Target{Kind: model.ObjSnapshotDefinition, ResourceDefinition: sd.ResourceName, Snapshot: sd.Name}
		switch {
		case sd.Flags.Has(model.SnapFlagDelete):
			if err := apply(&state.DeleteSnapshotDefinition{ResourceDefinition: sd.ResourceName, Name: sd.Name}); err != nil {
				return err
			}
		case !sd.Flags.Has(model.SnapFlagSuccessful) && !sd.Flags.Has(model.SnapFlagFailedDeployment):
			if err := apply(&state.SetFlags{Target: t, Set: []string{model.SnapFlagSuccessful}}); err != nil {
				return err
			}
		}
	}
	for _, rd := range st.ResourceDefinitions() {
		for _, vd := range rd.VolumeDefinitions {
			if vd.Flags.Has(model.VdFlagResize) {
				t := state.Target{Kind: model.ObjVolumeDefinition, ResourceDefinition: rd.Name, VolumeNumber: vd.VolumeNumber}
				if err := apply(&state.SetFlags{Target: t, Clear: []string{model.VdFlagResize}}); err != nil {
					return err
				}
			}
		}
		rscs := st.Resources(rd.Name)
		// Diskless resources go first, so that the last diskful one may
		// follow (the state refuses the other order).
		for pass := 0; pass < 2; pass++ {
			for _, r := range rscs {
				if !r.Flags.Has(model.RscFlagDelete) || (pass == 0) != r.Diskless() {
					continue
				}
				if err := apply(&state.DeleteResource{ResourceDefinition: r.Name, Node: r.Node}); err != nil {
					return err
				}
			}
		}
		for _, r := range st.Resources(rd.Name) {
			t := state.Target{Kind: model.ObjResource, ResourceDefinition: r.Name, Node: r.Node}
			var clear []string
			for _, f := range []string{model.RscFlagDiskAddRequested, model.RscFlagDiskRemoveRequested, model.RscFlagRestoreFromSnapshot} {
				if r.Flags.Has(f) {
					clear = append(clear, f)
				}
			}
			if len(clear) > 0 {
				if err := apply(&state.SetFlags{Target: t, Clear: clear}); err != nil {
					return err
				}
			}
			if r.Props[linstor.KeyRscRollbackTarget] != "" {
				if err := apply(&state.SetProps{Target: t, Change: model.PropsChange{Delete: []string{linstor.KeyRscRollbackTarget, satellite.PropRollbackID}}}); err != nil {
					return err
				}
			}
		}
		if rd.Flags.Has(model.RdFlagDelete) && len(st.SnapshotDefinitions(rd.Name)) == 0 {
			if err := apply(&state.DeleteResourceDefinition{Name: rd.Name}); err != nil {
				return err
			}
		}
	}
	return nil
}

// Observed implements api.Backend: an override from SetObserved, else a
// synthesised report for every resource in the state (UpToDate, or
// Diskless for diskless resources, on /dev/drbd<minor>).
func (b *Backend) Observed(rd, node string) (api.ObservedResource, bool) {
	b.mu.Lock()
	o, ok := b.observed[rkey(rd, node)]
	b.mu.Unlock()
	if ok {
		return o, true
	}
	r, ok := b.State.Resource(rd, node)
	if !ok {
		return api.ObservedResource{}, false
	}
	d, _ := b.State.ResourceDefinition(rd)
	out := api.ObservedResource{Connections: map[string]api.ObservedConnection{}}
	for _, v := range r.Volumes {
		vd, _ := d.VolumeDefinition(v.VolumeNumber)
		ov := api.ObservedVolume{VolumeNumber: v.VolumeNumber, DevicePath: "/dev/drbd" + strconv.Itoa(vd.Minor), UsableSizeKiB: vd.SizeKiB}
		if r.Diskless() {
			ov.DiskState = "Diskless"
		} else {
			ov.DiskState, ov.AllocatedSizeKiB = api.DiskUpToDate, vd.SizeKiB/10
			ov.BackingDevice = "/dev/" + v.StoragePool + "/" + r.Name + "_00000"
		}
		out.Volumes = append(out.Volumes, ov)
	}
	for _, peer := range b.State.Resources(rd) {
		if !model.SameName(peer.Node, node) {
			out.Connections[peer.Node] = api.ObservedConnection{Connected: true, Message: "Connected"}
		}
	}
	return out, true
}

// SetObserved overrides what is observed for rd on node.
func (b *Backend) SetObserved(rd, node string, o api.ObservedResource) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.observed[rkey(rd, node)] = o
}

// ClearObserved removes an override.
func (b *Backend) ClearObserved(rd, node string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.observed, rkey(rd, node))
}

// WaitDevice implements api.Backend: a device exists as soon as the
// resource is in the state.
func (b *Backend) WaitDevice(ctx context.Context, rd, node string) error {
	b.mu.Lock()
	b.waited = append(b.waited, rd+"/"+node)
	derr := b.devErr[model.Key(node)]
	b.mu.Unlock()
	if derr != nil {
		return derr
	}
	if _, ok := b.State.Resource(rd, node); !ok {
		return fmt.Errorf("apitest: resource %s on %s does not exist", rd, node)
	}
	return ctx.Err()
}

// ObservedPool implements api.PoolObserver: diskful pools report
// DefaultPoolKiB free unless SetPool says otherwise.
func (b *Backend) ObservedPool(node, pool string) (api.ObservedPool, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.offline[model.Key(node)] {
		return api.ObservedPool{}, false
	}
	if p, ok := b.pools[model.Key(node)+"/"+model.Key(pool)]; ok {
		return p, true
	}
	return api.ObservedPool{FreeKiB: DefaultPoolKiB, TotalKiB: DefaultPoolKiB}, true
}

// SetPool sets what a pool reports.
func (b *Backend) SetPool(node, pool string, freeKiB, totalKiB int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.pools[model.Key(node)+"/"+model.Key(pool)] = api.ObservedPool{FreeKiB: freeKiB, TotalKiB: totalKiB}
}

// ObservedNode implements api.NodeObserver.
func (b *Backend) ObservedNode(node string) (api.ObservedNode, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return api.ObservedNode{Online: !b.offline[model.Key(node)]}, true
}

// SetOnline marks a node's satellite connected or not.
func (b *Backend) SetOnline(node string, online bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.offline[model.Key(node)] = !online
}

// SetComplete turns the immediate completion of intents on or off.
func (b *Backend) SetComplete(on bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.complete = on
}

// SetApplyError makes every Apply fail with err (nil to stop).
func (b *Backend) SetApplyError(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.applyErr = err
}

// Applied returns the types of the commands Apply applied successfully,
// in order (refused ones and the fake controller's completions are not
// listed).
func (b *Backend) Applied() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.applied...)
}

// Waited returns "rd/node" for every WaitDevice call so far, in order.
func (b *Backend) Waited() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.waited...)
}

// SetDeviceError makes WaitDevice on node fail with err (nil to stop),
// as when a satellite cannot bring a device up.
func (b *Backend) SetDeviceError(node string, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err == nil {
		delete(b.devErr, model.Key(node))
		return
	}
	b.devErr[model.Key(node)] = err
}
