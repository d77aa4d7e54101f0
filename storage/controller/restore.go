package controller

import (
	"slices"

	linstor "github.com/LINBIT/golinstor"
	"github.com/pvehci/pvehci/ha/state"
	"github.com/pvehci/pvehci/storage/drbd"
	"github.com/pvehci/pvehci/storage/model"
	"github.com/pvehci/pvehci/storage/satellite"
)

// completeRestore clears RESTORE_FROM_SNAPSHOT once the node's DRBD has a
// disk attached for every volume: the clone exists and its bitmap slots
// were cleared before that attach (storage/satellite restore.go), so from
// then on a lost LV is a lost disk, made again empty and synced from a
// peer rather than cloned from the snapshot a second time.
func (c *Completer) completeRestore(r model.Resource, vds []model.VolumeDefinition, apply func(state.Command)) {
	if !r.Flags.Has(model.RscFlagRestoreFromSnapshot) || r.Diskless() || r.Flags.Has(model.RscFlagDelete) {
		return
	}
	rep, _, ok := c.Store.Report(r.Node)
	if !ok {
		return
	}
	k, up := rep.Resource(r.Name)
	if !up {
		return
	}
	for _, vd := range vds {
		i := slices.IndexFunc(k.Devices, func(d drbd.ObservedDevice) bool { return d.Volume == vd.VolumeNumber })
		if i < 0 || k.Devices[i].Client || k.Devices[i].Disk == drbd.DiskDiskless || k.Devices[i].Disk == drbd.DiskAttaching {
			return
		}
	}
	apply(&state.SetFlags{Target: state.Target{Kind: model.ObjResource, ResourceDefinition: r.Name, Node: r.Node},
		Clear: []string{model.RscFlagRestoreFromSnapshot}})
}

// completeRollback removes a replica's RollbackTarget (and rollback id)
// once its node reports that rollback done. The report names the id, so a
// report from before the request, or from an earlier rollback to the same
// snapshot, completes nothing.
func (c *Completer) completeRollback(r model.Resource, apply func(state.Command)) {
	id := r.Props[satellite.PropRollbackID]
	if r.Props[linstor.KeyRscRollbackTarget] == "" || id == "" {
		return
	}
	rep, _, ok := c.Store.Report(r.Node)
	if !ok || !slices.Contains(rep.Rollbacks, r.Name+"/"+id) {
		return
	}
	apply(&state.SetProps{Target: state.Target{Kind: model.ObjResource, ResourceDefinition: r.Name, Node: r.Node},
		Change: model.PropsChange{Delete: []string{linstor.KeyRscRollbackTarget, satellite.PropRollbackID}}})
}
