package satellite

import (
	"context"
	"fmt"
	"slices"
	"strconv"

	linstor "github.com/LINBIT/golinstor"
	"github.com/pvehci/pvehci/ha/state"
	"github.com/pvehci/pvehci/storage/lvm"
	"github.com/pvehci/pvehci/storage/model"
)

// Restoring a snapshot into a new resource and rolling a resource back to
// one both make a volume out of a thin snapshot LV: `lvcreate --snapshot`
// of the snapshot, writable and tagged, which shares its blocks. The DRBD
// metadata lives in the LV's last blocks, so the new volume carries the
// snapshot's metadata: its generation identifiers, the same on every
// replica that took the snapshot behind the suspend-io barrier, so the
// replicas connect UpToDate without a sync (research/linstor-server.md §3
// "Restore into a new RD"; LINSTOR does not run create-md either).
//
// Restore (flag RESTORE_FROM_SNAPSHOT, set by snapshot-restore-resource
// with the properties RestoreFromResource and RestoreFromSnapshot): a
// missing volume LV is cloned from the snapshot instead of created empty.
// Before DRBD first attaches it, `drbdmeta forget-peer` clears the bitmap
// slot of every node id that is not a peer restored from the same
// snapshot, because the metadata still knows the source's peers, and a new
// peer given one of their node ids (a tie-breaker) would otherwise be
// compared against a bitmap that belongs to another resource. The
// controller clears the flag once the node reports every volume attached.
//
// Rollback (resource property RollbackTarget, set with PropRollbackID by
// the REST API on every diskful replica): while any replica of the
// definition still carries RollbackTarget, every node keeps the resource
// down, so no replica that still has the newer data can become the sync
// source of one that was rolled back. Each diskful replica then, per
// volume: clones the snapshot to RollbackLVName (tagged with
// RollbackTag(id)), removes its volume LV, and renames the clone to the
// volume's name. Every intermediate state is recognisable from the LVs
// alone, so a satellite that dies at any point finishes the next pass, and
// the tag on the volume LV proves this rollback done, so a restart never
// rolls back twice. The node reports it (NodeReport.Rollbacks) and the
// controller removes the replica's RollbackTarget; when none is left, the
// resource comes up on every node with the snapshot's data.

// PropRollbackID is the resource property the REST API sets with
// RollbackTarget: a fresh id per rollback request, so that rolling back to
// the same snapshot twice is two rollbacks and not one already done.
const PropRollbackID = "Aux/pvehci/rollback-id"

// Action kinds of restore and rollback (see above).
const (
	// CloneLV is `lvcreate --snapshot` of a snapshot LV into a writable,
	// tagged LV: a restored volume, or the rollback clone.
	CloneLV Kind = "CloneLV"
	// ForgetPeers is `drbdmeta forget-peer` for each of NodeIDs on a
	// restored volume DRBD has not attached yet.
	ForgetPeers Kind = "ForgetPeers"
	// RenameLV is `lvrename VG From LV`.
	RenameLV Kind = "RenameLV"
)

// RollbackLVName is the clone of the snapshot a rollback of volume LV lv
// makes before it replaces lv. The dot cannot occur in a LINSTOR name, so
// no resource or snapshot LV has this name.
func RollbackLVName(lv string) string { return lv + ".rollback" }

// RollbackTag marks the LV of a volume rolled back by the rollback id.
func RollbackTag(id string) string { return "pvehci-rollback-" + id }

// maxNodeID is DRBD's highest node id (drbdmeta: "node-id out of range
// (0...31)").
const maxNodeID = 31

// DesiredRestore is a resource restored from a snapshot, as this node
// must create it.
type DesiredRestore struct {
	// Resource and Snapshot name the source.
	Resource, Snapshot string
	// Forget are the node ids whose bitmap slots are cleared before the
	// restored volumes are first attached.
	Forget []int
	// Err is why the restore cannot be carried out (the snapshot is
	// gone, or in another volume group); it matters only while a volume
	// LV is still missing.
	Err error
}

// DesiredRollback is a rollback that concerns this node's resource.
type DesiredRollback struct {
	// Hold is set while some replica of the definition still carries
	// RollbackTarget: the resource stays down on this node.
	Hold bool
	// Snapshot and ID are this replica's own RollbackTarget and
	// PropRollbackID, empty when it has none (a diskless node, or one
	// already done).
	Snapshot, ID string
	// Err is why this replica cannot roll back.
	Err error
}

// desiredRestoreAndRollback fills dr.Restore, dr.Rollback and the
// volumes' RestoreLV and RollbackLV.
func desiredRestoreAndRollback(st *state.State, node string, r model.Resource, dr *DesiredResource) {
	def, _ := st.ResourceDefinition(r.Name)
	if !def.Flags.Has(model.RdFlagDelete) {
		for _, o := range st.Resources(r.Name) {
			if o.Props[linstor.KeyRscRollbackTarget] != "" && !o.Flags.Has(model.RscFlagDelete) {
				dr.Rollback.Hold = true
			}
		}
	}
	if snap := r.Props[linstor.KeyRscRollbackTarget]; snap != "" && dr.Rollback.Hold {
		dr.Rollback.Snapshot, dr.Rollback.ID = snap, r.Props[PropRollbackID]
		if dr.Rollback.ID == "" {
			dr.Rollback.Err = fmt.Errorf("RollbackTarget %s is set without %s, so pvehci cannot tell whether it already rolled back; "+
				"roll back through the REST API (POST /v1/resource-definitions/%s/snapshot-rollback/%s), which sets both", snap, PropRollbackID, r.Name, snap)
		} else if !dr.Diskless {
			dr.Rollback.Err = snapshotVolumes(st, node, r.Name, snap, dr.Volumes, func(v *DesiredVolume, lv string) { v.RollbackLV = lv })
		}
	}
	if !r.Flags.Has(model.RscFlagRestoreFromSnapshot) || dr.Diskless {
		return
	}
	src, snap := r.Props[linstor.KeyVlmRestoreFromResource], r.Props[linstor.KeyVlmRestoreFromSnapshot]
	dr.Restore = &DesiredRestore{Resource: src, Snapshot: snap}
	if src == "" || snap == "" {
		dr.Restore.Err = fmt.Errorf("flag %s without the properties %s and %s; delete the resource and restore it again", model.RscFlagRestoreFromSnapshot,
			linstor.KeyVlmRestoreFromResource, linstor.KeyVlmRestoreFromSnapshot)
		return
	}
	if err := snapshotVolumes(st, node, src, snap, dr.Volumes, func(v *DesiredVolume, lv string) { v.RestoreLV = lv }); err != nil {
		dr.Restore.Err = err
		return
	}
	// Peers restored from the same snapshot keep their slots: their
	// metadata shares this one's history.
	sd, _ := st.SnapshotDefinition(src, snap)
	keep := map[int]bool{r.NodeID: true}
	for _, sn := range sd.Snapshots {
		o, ok := st.Resource(r.Name, sn.Node)
		if ok && o.NodeID == sn.NodeID && !o.Diskless() && o.Flags.Has(model.RscFlagRestoreFromSnapshot) {
			keep[sn.NodeID] = true
		}
	}
	for id := 0; id <= maxNodeID; id++ {
		if !keep[id] {
			dr.Restore.Forget = append(dr.Restore.Forget, id)
		}
	}
}

// snapshotVolumes finds the snapshot LV of each diskful volume on node and
// hands it to set. A thin snapshot can only be cloned inside its own thin
// pool, so the volume must be in the snapshot's volume group and pool.
func snapshotVolumes(st *state.State, node, rd, snap string, vols []DesiredVolume, set func(*DesiredVolume, string)) error {
	sd, ok := st.SnapshotDefinition(rd, snap)
	if !ok {
		return fmt.Errorf("snapshot %s of %s does not exist (any more)", snap, rd)
	}
	i := slices.IndexFunc(sd.Snapshots, func(s model.Snapshot) bool { return model.SameName(s.Node, node) })
	if i < 0 {
		return fmt.Errorf("snapshot %s of %s was not taken on %s", snap, rd, node)
	}
	sn := sd.Snapshots[i]
	for vi := range vols {
		v := &vols[vi]
		if v.Diskless {
			continue
		}
		j := slices.IndexFunc(sn.Volumes, func(sv model.SnapshotVolume) bool { return sv.VolumeNumber == v.Number })
		if j < 0 {
			return fmt.Errorf("snapshot %s of %s has no volume %d on %s", snap, rd, v.Number, node)
		}
		pool, ok := st.StoragePool(node, sn.Volumes[j].StoragePool)
		if !ok || pool.Props[model.KeyStorDriverLvmVg] != v.VG || pool.Props[model.KeyStorDriverThinPool] != v.ThinPool {
			return fmt.Errorf("volume %d: snapshot %s of %s is in storage pool %s, not in %s/%s where the volume is; "+
				"a thin snapshot can only be used inside its own thin pool", v.Number, snap, rd, sn.Volumes[j].StoragePool, v.VG, v.ThinPool)
		}
		set(v, SnapshotLVName(rd, v.Number, snap))
	}
	return nil
}

// planRestoreVolume plans the creation of a missing volume LV from the
// snapshot: the clone and the forget-peers (which the caller puts with
// the metadata actions, before the adjust).
func planRestoreVolume(d DesiredResource, v DesiredVolume, got Observed) (clone, forget Action, err error) {
	if d.Restore.Err != nil {
		return Action{}, Action{}, fmt.Errorf("volume %d: restore from snapshot: %w; delete the resource, or fix the cause and the next pass retries", v.Number, d.Restore.Err)
	}
	src := v.VG + "/" + v.RestoreLV
	if _, ok := got.LVs[src]; !ok {
		return Action{}, Action{}, fmt.Errorf("volume %d: restore from snapshot %s of %s: its LV %s is missing on this node; delete the resource and restore on a node that has the snapshot",
			v.Number, d.Restore.Snapshot, d.Restore.Resource, src)
	}
	return Action{Kind: CloneLV, Resource: d.Name, Volume: v.Number, VG: v.VG, LV: v.LV, From: v.RestoreLV, Tags: []string{lvm.Tag}},
		forgetPeers(d, v), nil
}

func forgetPeers(d DesiredResource, v DesiredVolume) Action {
	return Action{Kind: ForgetPeers, Resource: d.Name, Volume: v.Number, Minor: v.Minor, VG: v.VG, LV: v.LV, NodeIDs: d.Restore.Forget}
}

// planRollback keeps the resource down while the definition rolls back and
// rolls this replica's volumes back when it has a RollbackTarget.
func planRollback(d DesiredResource, got Observed) ([]Action, error) {
	var acts []Action
	if k, up := got.DRBD[d.Name]; up {
		// Every replica goes back to the snapshot, so the newer data is
		// meant to go: only the in-use refusals apply.
		if err := safeToDown(k, true); err != nil {
			return nil, fmt.Errorf("rollback: %w", err)
		}
		acts = append(acts, Action{Kind: Down, Resource: d.Name})
	}
	if d.Rollback.ID == "" || d.Diskless {
		return acts, nil
	}
	if d.Rollback.Err != nil {
		return acts, fmt.Errorf("rollback to %s: %w", d.Rollback.Snapshot, d.Rollback.Err)
	}
	tag := RollbackTag(d.Rollback.ID)
	for _, v := range d.Volumes {
		if v.Diskless {
			continue
		}
		origin, hasOrigin := got.LVs[v.Key()]
		clone := RollbackLVName(v.LV)
		tmp, hasTmp := got.LVs[v.VG+"/"+clone]
		if hasOrigin && !slices.Contains(origin.Tags, lvm.Tag) {
			return acts, fmt.Errorf("rollback: volume %d: %s is not tagged %s; pvehci does not replace LVs it did not make", v.Number, v.Key(), lvm.Tag)
		}
		if hasTmp && !slices.Contains(tmp.Tags, tag) {
			// The clone of an earlier rollback that was given up.
			if !slices.Contains(tmp.Tags, lvm.Tag) {
				return acts, fmt.Errorf("rollback: volume %d: %s/%s exists and is not tagged %s; rename or remove it", v.Number, v.VG, clone, lvm.Tag)
			}
			acts = append(acts, Action{Kind: RemoveLV, Resource: d.Name, Volume: v.Number, VG: v.VG, LV: clone})
			hasTmp = false
		}
		if hasOrigin && slices.Contains(origin.Tags, tag) {
			continue // this volume is rolled back
		}
		if !hasTmp {
			if _, ok := got.LVs[v.VG+"/"+v.RollbackLV]; !ok {
				return acts, fmt.Errorf("rollback: volume %d: snapshot LV %s/%s is missing on this node; delete this replica (the others can still roll back) or restore from a backup",
					v.Number, v.VG, v.RollbackLV)
			}
			acts = append(acts, Action{Kind: CloneLV, Resource: d.Name, Volume: v.Number, VG: v.VG, LV: clone, From: v.RollbackLV, Tags: []string{lvm.Tag, tag}})
		}
		if hasOrigin {
			acts = append(acts, Action{Kind: RemoveLV, Resource: d.Name, Volume: v.Number, VG: v.VG, LV: v.LV})
		}
		acts = append(acts, Action{Kind: RenameLV, Resource: d.Name, Volume: v.Number, VG: v.VG, LV: v.LV, From: clone})
	}
	return acts, nil
}

// rolledBack reports whether this node has finished its part of d's
// rollback: the resource is down and every diskful volume LV carries the
// rollback's tag, with no clone left.
func rolledBack(d DesiredResource, got Observed) bool {
	if d.Rollback.ID == "" || d.Rollback.Err != nil {
		return false
	}
	if _, up := got.DRBD[d.Name]; up {
		return false
	}
	for _, v := range d.Volumes {
		if v.Diskless {
			continue
		}
		lv, ok := got.LVs[v.Key()]
		if !ok || !slices.Contains(lv.Tags, RollbackTag(d.Rollback.ID)) {
			return false
		}
		if _, left := got.LVs[v.VG+"/"+RollbackLVName(v.LV)]; left {
			return false
		}
	}
	return true
}

// rollbackReports names, as "resource/id", the rollbacks this node has
// finished (NodeReport.Rollbacks).
func rollbackReports(want DesiredState, got Observed) []string {
	var out []string
	for _, d := range want.Resources {
		if rolledBack(d, got) {
			out = append(out, d.Name+"/"+d.Rollback.ID)
		}
	}
	return out
}

// restoreArgv is the command line of a restore or rollback action; one
// per node id for ForgetPeers.
func restoreArgv(a Action) [][]string {
	switch a.Kind {
	case CloneLV:
		// Writable, activated now and on boot (-kn): it is a volume, not
		// a snapshot (research/linstor-server.md §3 "Restore").
		argv := []string{"lvcreate", "--snapshot", "--setactivationskip", "n", "--activate", "y", "--permission", "rw", "--name", a.LV}
		for _, t := range a.Tags {
			argv = append(argv, "--addtag", t)
		}
		return [][]string{append(argv, a.VG+"/"+a.From)}
	case RenameLV:
		return [][]string{{"lvrename", a.VG, a.From, a.LV}}
	case ForgetPeers:
		var out [][]string
		for _, id := range a.NodeIDs {
			out = append(out, []string{"drbdmeta", "--force", strconv.Itoa(a.Minor), "v09", lvm.DevicePath(a.VG, a.LV), "internal", "forget-peer", "--node-id", strconv.Itoa(id)})
		}
		return out
	}
	return nil
}

// doRestore runs one restore or rollback action.
func (r *Reconciler) doRestore(ctx context.Context, a Action) error {
	for _, argv := range restoreArgv(a) {
		if _, err := r.Runner.Run(ctx, r.cmd(argv...)); err != nil {
			switch a.Kind {
			case CloneLV:
				if poolFull(err) {
					return fmt.Errorf("clone %s/%s to %s for %s: the thin pool has no room; extend it (lvextend) or free space in it, the next pass retries: %w", a.VG, a.From, a.LV, a.Resource, err)
				}
				return fmt.Errorf("clone %s/%s to %s for %s: %w", a.VG, a.From, a.LV, a.Resource, err)
			case RenameLV:
				return fmt.Errorf("rename %s/%s to %s for %s (the next pass retries): %w", a.VG, a.From, a.LV, a.Resource, err)
			}
			return fmt.Errorf("clear the bitmap slots of peers that are not restored from the same snapshot on %s/%d: %w", a.Resource, a.Volume, err)
		}
	}
	return nil
}

// restoreString describes a restore or rollback action for logs.
func (a Action) restoreString() string {
	switch a.Kind {
	case CloneLV:
		return fmt.Sprintf("%s %s/%s to %s", a.Kind, a.VG, a.From, a.LV)
	case RenameLV:
		return fmt.Sprintf("%s %s/%s to %s", a.Kind, a.VG, a.From, a.LV)
	}
	return fmt.Sprintf("%s %s/%d %v", a.Kind, a.Resource, a.Volume, a.NodeIDs)
}
