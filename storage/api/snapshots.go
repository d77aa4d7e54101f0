package api

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	linstor "github.com/LINBIT/golinstor"
	"github.com/pvehci/pvehci/ha/state"
	"github.com/pvehci/pvehci/storage/model"
	"github.com/pvehci/pvehci/storage/satellite"
)

// createSnapshot records a snapshot on the definition's diskful replicas
// and waits until the satellites have taken it (flag SUCCESSFUL).
func (h *Handler) createSnapshot(w http.ResponseWriter, r *http.Request) {
	var req snapshotCreateRequest
	rdName := r.PathValue("rd")
	h.mutate(w, r, change{obj: model.ObjSnapshotDefinition, op: linstor.MaskCrt, status: http.StatusCreated, body: &req,
		refs: refs("RscDfn", rdName),
		plan: func(ctx context.Context, c *call) (func(context.Context) error, error) {
			c.refs["Snapshot"] = req.Name
			if req.ResourceName != "" && !model.SameName(req.ResourceName, rdName) {
				return nil, badRequest(linstor.FailInvldRscName, "leave resource_name out or make it match the path",
					"resource_name %q does not match resource definition %q in the path", req.ResourceName, rdName)
			}
			if aerr := checkName(model.NameSnapshot, req.Name); aerr != nil {
				return nil, aerr
			}
			props := req.SnapshotDefinitionProps.props()
			for k, v := range req.Props {
				if props == nil {
					props = model.Props{}
				}
				props[k] = v
			}
			id, err := h.newUUID()
			if err != nil {
				return nil, err
			}
			if _, err := h.apply(ctx, c, &state.CreateSnapshotDefinition{ResourceDefinition: rdName, Name: req.Name, Nodes: req.Nodes,
				Props: props, UUID: id, CreateTimestamp: h.nowMs()}); err != nil {
				return nil, err
			}
			return func(ctx context.Context) error {
				var failed string
				done, err := h.awaitOrWarn(ctx, c, "snapshot "+req.Name+" of "+rdName, func(st *state.State) (bool, error) {
					sd, ok := st.SnapshotDefinition(rdName, req.Name)
					if !ok {
						failed = "it disappeared while it was being taken"
						return true, nil
					}
					for _, f := range []string{model.SnapFlagFailedDeployment, model.SnapFlagFailedDisconnect} {
						if sd.Flags.Has(f) {
							failed = "the satellites report " + f
							return true, nil
						}
					}
					return sd.Flags.Has(model.SnapFlagSuccessful), nil
				})
				if err != nil || !done {
					return err
				}
				if failed != "" {
					return errorf(http.StatusInternalServerError, linstor.FailUnknownError,
						"check the pvehci daemon logs on the nodes of "+rdName+", delete the snapshot and retry",
						"snapshot %s of %s failed: %s", req.Name, rdName, failed)
				}
				c.add(created(model.ObjSnapshotDefinition), "snapshot %s of %s created", req.Name, rdName)
				return nil
			}, nil
		}})
}

// deleteSnapshot flags the snapshot for deletion and waits until the
// satellites have removed it. A missing snapshot is a warning (CSI and
// the Proxmox plugin retry deletes).
func (h *Handler) deleteSnapshot(w http.ResponseWriter, r *http.Request) {
	rdName, snap := r.PathValue("rd"), r.PathValue("snap")
	h.mutate(w, r, change{obj: model.ObjSnapshotDefinition, op: linstor.MaskDel, status: http.StatusOK,
		refs: refs("RscDfn", rdName, "Snapshot", snap),
		plan: func(ctx context.Context, c *call) (func(context.Context) error, error) {
			st, err := h.readState(ctx)
			if err != nil {
				return nil, err
			}
			sd, ok := st.SnapshotDefinition(rdName, snap)
			if !ok {
				c.add(linstor.WarnNotFound, "snapshot %s of %s does not exist; nothing to delete", snap, rdName)
				return nil, nil
			}
			// A restore clones the snapshot's LVs; until every restored
			// replica has its clone, the snapshot must stay.
			for _, rd := range st.ResourceDefinitions() {
				for _, res := range st.Resources(rd.Name) {
					if res.Flags.Has(model.RscFlagRestoreFromSnapshot) && !res.Flags.Has(model.RscFlagDelete) &&
						model.SameName(res.Props[linstor.KeyVlmRestoreFromResource], rdName) && model.SameName(res.Props[linstor.KeyVlmRestoreFromSnapshot], snap) {
						return nil, errorf(http.StatusConflict, linstor.FailInUse, "wait until the restore into "+res.Name+" is done, or delete "+res.Name,
							"snapshot %s of %s is being restored into %s on %s", snap, rdName, res.Name, res.Node)
					}
				}
			}
			if nodes := r.URL.Query()["nodes"]; len(nodes) > 0 {
				for _, sn := range sd.Snapshots {
					if !hasFold(nodes, sn.Node) {
						return nil, badRequest(linstor.FailInvldRequest, "leave out nodes to delete the snapshot everywhere",
							"deleting snapshot %s on some nodes only is not supported (it also exists on %s)", snap, sn.Node)
					}
				}
			}
			if !sd.Flags.Has(model.SnapFlagDelete) {
				if _, err := h.apply(ctx, c, &state.SetFlags{Target: state.Target{Kind: model.ObjSnapshotDefinition,
					ResourceDefinition: rdName, Snapshot: snap}, Set: []string{model.SnapFlagDelete}}); err != nil {
					return nil, err
				}
			}
			return func(ctx context.Context) error {
				if done, err := h.awaitOrWarn(ctx, c, "deletion of snapshot "+snap, func(st *state.State) (bool, error) {
					_, ok := st.SnapshotDefinition(rdName, snap)
					return !ok, nil
				}); err != nil || !done {
					return err
				}
				c.add(deleted(model.ObjSnapshotDefinition), "snapshot %s of %s deleted", snap, rdName)
				return nil
			}, nil
		}})
}

// rollbackSnapshot rolls every replica back to the snapshot, which must
// be the newest (as in LINSTOR: thin snapshots after it would be lost)
// and present on every diskful replica, with no replica in use, every
// node of the resource online and the volumes at the snapshot's sizes.
// It records LINSTOR's resource property RollbackTarget, with a fresh
// rollback id (satellite.PropRollbackID), on each diskful replica. The
// satellites keep the resource down everywhere while any replica still
// has it, roll their volumes back, and the controller removes it from
// each replica as its node reports the rollback done (storage/satellite
// restore.go). The call answers once every replica is rolled back and
// the devices are up again, since Proxmox starts the VM right after.
func (h *Handler) rollbackSnapshot(w http.ResponseWriter, r *http.Request) {
	var req rollbackRequest
	rdName, snap := r.PathValue("rd"), r.PathValue("snap")
	h.mutate(w, r, change{obj: model.ObjSnapshotDefinition, op: linstor.MaskMod, status: http.StatusOK, body: &req, allowEmpty: true,
		refs: refs("RscDfn", rdName, "Snapshot", snap),
		plan: func(ctx context.Context, c *call) (func(context.Context) error, error) {
			st, err := h.readState(ctx)
			if err != nil {
				return nil, err
			}
			rd, ok := st.ResourceDefinition(rdName)
			if !ok {
				return nil, notFound(linstor.FailNotFoundRscDfn, "check the name", "resource definition %s does not exist", rdName)
			}
			sd, ok := st.SnapshotDefinition(rdName, snap)
			if !ok {
				return nil, notFound(linstor.FailNotFoundSnapshotDfn, "list the snapshots with GET /v1/resource-definitions/"+rdName+"/snapshots",
					"snapshot %s of %s does not exist", snap, rdName)
			}
			if !sd.Flags.Has(model.SnapFlagSuccessful) || sd.Flags.Has(model.SnapFlagDelete) {
				return nil, errorf(http.StatusConflict, linstor.FailInUse, "wait until the snapshot is complete, or use another one",
					"snapshot %s of %s is not complete (flags %s)", snap, rdName, strings.Join(sd.Flags, ","))
			}
			// Snapshots taken in the same millisecond cannot be ordered
			// (the state keeps no sequence); treat them as newer rather
			// than risk destroying one.
			var newer []string
			for _, o := range st.SnapshotDefinitions(rdName) {
				if !model.SameName(o.Name, sd.Name) && !o.Flags.Has(model.SnapFlagDelete) &&
					o.CreateTimestamp >= sd.CreateTimestamp {
					newer = append(newer, o.Name)
				}
			}
			if len(newer) > 0 {
				return nil, errorf(http.StatusConflict, linstor.FailInUse, "delete the newer snapshots first: "+strings.Join(newer, ", "),
					"can only roll back to the newest snapshot of %s, and %s is not", rdName, snap)
			}
			for _, vd := range rd.VolumeDefinitions {
				i := slices.IndexFunc(sd.VolumeDefinitions, func(s model.SnapshotVolumeDefinition) bool { return s.VolumeNumber == vd.VolumeNumber })
				if i < 0 || sd.VolumeDefinitions[i].SizeKiB != vd.SizeKiB {
					return nil, errorf(http.StatusConflict, linstor.FailInvldRequest,
						"restore the snapshot into a new resource instead (snapshot-restore-volume-definition, then snapshot-restore-resource)",
						"volume %d of %s changed since snapshot %s (added or resized); a rollback would not give it its old size back", vd.VolumeNumber, rdName, snap)
				}
			}
			var targets, nodes []string
			for _, res := range st.Resources(rdName) {
				if res.Flags.Has(model.RscFlagDelete) {
					continue
				}
				if h.offline(res.Node) {
					return nil, errorf(http.StatusConflict, linstor.FailNotConnected,
						"bring node "+res.Node+" back, or delete its replica of "+rdName+", then roll back",
						"cannot roll back %s: node %s is offline, and every node of the resource takes part in a rollback", rdName, res.Node)
				}
				if aerr := h.checkNotInUse(ctx, rdName, res.Node, "roll back"); aerr != nil {
					return nil, aerr
				}
				if t := res.Props[linstor.KeyRscRollbackTarget]; t != "" {
					return nil, errorf(http.StatusConflict, linstor.FailInUse, "wait until the running rollback ends",
						"a rollback of %s to %s is already running (the replica on %s has not finished)", rdName, t, res.Node)
				}
				nodes = append(nodes, res.Node)
				if res.Diskless() {
					continue
				}
				if !slices.ContainsFunc(sd.Snapshots, func(s model.Snapshot) bool { return model.SameName(s.Node, res.Node) }) {
					return nil, errorf(http.StatusConflict, linstor.FailInvldRequest,
						"delete that replica first (it has no data from the snapshot's time), or roll back to a snapshot it has",
						"replica of %s on %s has no snapshot %s", rdName, res.Node, snap)
				}
				targets = append(targets, res.Node)
			}
			if len(targets) == 0 {
				return nil, errorf(http.StatusConflict, linstor.FailInvldRequest, "create a diskful replica first",
					"%s has no diskful replica to roll back", rdName)
			}
			id, err := h.newUUID()
			if err != nil {
				return nil, err
			}
			for _, n := range targets {
				if _, err := h.apply(ctx, c, &state.SetProps{Target: rscTarget(rdName, n),
					Change: model.PropsChange{Set: model.Props{linstor.KeyRscRollbackTarget: sd.Name, satellite.PropRollbackID: id}}}); err != nil {
					return nil, err
				}
			}
			return func(ctx context.Context) error {
				if done, err := h.awaitOrWarn(ctx, c, "rollback of "+rdName+" to "+snap, func(st *state.State) (bool, error) {
					for _, res := range st.Resources(rdName) {
						if res.Props[linstor.KeyRscRollbackTarget] != "" {
							return false, nil
						}
					}
					return true, nil
				}); err != nil || !done {
					return err
				}
				h.waitDevicesOrWarn(ctx, c, rdName, nodes)
				c.add(modified(model.ObjResourceDefinition), "resource %s rolled back to snapshot %s", rdName, snap)
				return nil
			}, nil
		}})
}

// snapshotForRestore reads the snapshot and the restore target.
func (h *Handler) snapshotForRestore(ctx context.Context, rdName, snap, to string) (*state.State, model.SnapshotDefinition, model.ResourceDefinition, error) {
	st, err := h.readState(ctx)
	if err != nil {
		return nil, model.SnapshotDefinition{}, model.ResourceDefinition{}, err
	}
	sd, ok := st.SnapshotDefinition(rdName, snap)
	if !ok {
		return nil, sd, model.ResourceDefinition{}, notFound(linstor.FailNotFoundSnapshotDfn, "list the snapshots of "+rdName,
			"snapshot %s of %s does not exist", snap, rdName)
	}
	if to == "" {
		return nil, sd, model.ResourceDefinition{}, badRequest(linstor.FailInvldRscName, "give to_resource, the resource definition to restore into",
			"to_resource is missing")
	}
	target, ok := st.ResourceDefinition(to)
	if !ok {
		return nil, sd, target, notFound(linstor.FailNotFoundRscDfn, "create the target with POST /v1/resource-definitions first",
			"resource definition %s (to_resource) does not exist", to)
	}
	if !sd.Flags.Has(model.SnapFlagSuccessful) {
		return nil, sd, target, errorf(http.StatusConflict, linstor.FailInUse, "wait until the snapshot is complete",
			"snapshot %s of %s is not complete", snap, rdName)
	}
	return st, sd, target, nil
}

// restoreVolumeDefinitions creates the target's volume definitions with
// the snapshot's sizes and volume properties, and copies the snapshot's
// definition properties the target does not set.
func (h *Handler) restoreVolumeDefinitions(w http.ResponseWriter, r *http.Request) {
	var req snapshotRestoreRequest
	rdName, snap := r.PathValue("rd"), r.PathValue("snap")
	h.mutate(w, r, change{obj: model.ObjVolumeDefinition, op: linstor.MaskCrt, status: http.StatusOK, body: &req,
		refs: refs("RscDfn", rdName, "Snapshot", snap),
		plan: func(ctx context.Context, c *call) (func(context.Context) error, error) {
			_, sd, target, err := h.snapshotForRestore(ctx, rdName, snap, req.ToResource)
			if err != nil {
				return nil, err
			}
			if len(target.VolumeDefinitions) > 0 {
				return nil, errorf(http.StatusConflict, linstor.FailExistsVlmDfn, "restore into a new, empty resource definition",
					"resource definition %s already has volume definitions", target.Name)
			}
			set := model.Props{}
			for k, v := range sd.ResourceDefinitionProps {
				if _, has := target.Props[k]; !has {
					set[k] = v
				}
			}
			if len(set) > 0 {
				if _, err := h.apply(ctx, c, &state.ModifyResourceDefinition{Name: target.Name, Props: model.PropsChange{Set: set}}); err != nil {
					return nil, err
				}
			}
			for i, vd := range sd.VolumeDefinitions {
				vnr := vd.VolumeNumber
				id, err := h.newUUID()
				if err != nil {
					return nil, err
				}
				// DRBD_INITIALIZED: the data comes from the snapshot, so no
				// node may start it afresh (skip the initial sync or force
				// a primary) on the restored replicas.
				if _, err := h.apply(ctx, c, &state.CreateVolumeDefinition{ResourceDefinition: target.Name, NewVolumeDefinition: state.NewVolumeDefinition{
					VolumeNumber: &vnr, SizeKiB: vd.SizeKiB, Props: vd.VolumeDefinitionProps.Clone(), UUID: id,
					Flags: []string{model.VdFlagDrbdInitialized}}}); err != nil {
					// Undo the ones made so far, so that a retry starts clean.
					for _, done := range sd.VolumeDefinitions[:i] {
						_, _ = h.apply(ctx, nil, &state.DeleteVolumeDefinition{ResourceDefinition: target.Name, VolumeNumber: done.VolumeNumber})
					}
					return nil, err
				}
				c.add(created(model.ObjVolumeDefinition), "volume definition %d of %s restored from snapshot %s (%d KiB)", vnr, target.Name, snap, vd.SizeKiB)
			}
			return nil, nil
		}})
}

// restoreResources creates the target's resources from the snapshot, on
// each node that has it (or the requested ones), with the node ids the
// snapshot was taken with. The new resources carry LINSTOR's volume
// source properties (RestoreFromResource, RestoreFromSnapshot) and flag
// RESTORE_FROM_SNAPSHOT, from which the satellite creates the volumes as
// copies of the snapshot instead of empty ones.
func (h *Handler) restoreResources(w http.ResponseWriter, r *http.Request) {
	var req snapshotRestoreRequest
	rdName, snap := r.PathValue("rd"), r.PathValue("snap")
	var p placed
	h.mutate(w, r, change{obj: model.ObjResource, op: linstor.MaskCrt, status: http.StatusOK, body: &req,
		refs: refs("RscDfn", rdName, "Snapshot", snap),
		plan: func(ctx context.Context, c *call) (func(context.Context) error, error) {
			st, sd, target, err := h.snapshotForRestore(ctx, rdName, snap, req.ToResource)
			if err != nil {
				return nil, err
			}
			if len(target.VolumeDefinitions) != len(sd.VolumeDefinitions) {
				return nil, errorf(http.StatusConflict, linstor.FailNotFoundVlmDfn,
					"restore the volume definitions first (snapshot-restore-volume-definition)",
					"resource definition %s has %d volume definition(s), snapshot %s has %d", target.Name, len(target.VolumeDefinitions), snap, len(sd.VolumeDefinitions))
			}
			if rscs := st.Resources(target.Name); len(rscs) > 0 {
				return nil, errorf(http.StatusConflict, linstor.FailExistsRsc, "restore into a resource definition without resources",
					"resource definition %s already has resources, e.g. on %s", target.Name, rscs[0].Node)
			}
			var cmds []*state.CreateResource
			for _, sn := range sd.Snapshots {
				if len(req.Nodes) > 0 && !hasFold(req.Nodes, sn.Node) {
					continue
				}
				pool := ""
				if len(sn.Volumes) > 0 {
					pool = sn.Volumes[0].StoragePool
				}
				if renamed, ok := req.StorPoolRename[pool]; ok {
					pool = renamed
				}
				id := sn.NodeID
				cmds = append(cmds, &state.CreateResource{ResourceDefinition: target.Name, Node: sn.Node, Kind: state.Diskful,
					StoragePool: pool, NodeID: &id, Flags: []string{model.RscFlagRestoreFromSnapshot},
					Props: model.Props{linstor.KeyVlmRestoreFromResource: sd.ResourceName, linstor.KeyVlmRestoreFromSnapshot: sd.Name}})
			}
			for _, n := range req.Nodes {
				if !slices.ContainsFunc(sd.Snapshots, func(s model.Snapshot) bool { return model.SameName(s.Node, n) }) {
					return nil, badRequest(linstor.FailInvldRequest, "name only nodes that hold the snapshot",
						"snapshot %s of %s does not exist on node %s", snap, rdName, n)
				}
			}
			for i, cmd := range cmds {
				if err := h.newResource(ctx, c, cmd); err != nil {
					for _, done := range cmds[:i] {
						_, _ = h.apply(ctx, nil, &state.DeleteResource{ResourceDefinition: target.Name, Node: done.Node})
					}
					return nil, fmt.Errorf("restoring %s on %s: %w", target.Name, cmd.Node, err)
				}
				c.add(created(model.ObjResource), "resource %s restored on %s from snapshot %s of %s", target.Name, cmd.Node, snap, rdName)
				p.nodes = append(p.nodes, cmd.Node)
			}
			if err := h.reconcileTieBreaker(ctx, c, target.Name); err != nil {
				return nil, err
			}
			return func(ctx context.Context) error {
				h.waitDevicesOrWarn(ctx, c, target.Name, p.nodes)
				return nil
			}, nil
		}})
}
