package satellite

import (
	"fmt"
	"slices"
	"time"

	"github.com/pvehci/pvehci/ha/state"
	"github.com/pvehci/pvehci/storage/drbd"
	"github.com/pvehci/pvehci/storage/lvm"
	"github.com/pvehci/pvehci/storage/model"
)

// NodeReport is what a satellite tells the active controller after each
// pass: the kernel's view of every DRBD resource on the node, the capacity
// of its storage pools, and what went wrong. It is a full picture, never a
// delta, so a new leader is current after one report from each node.
type NodeReport struct {
	Node string `json:"node"`
	// Boot identifies one run of the satellite and Seq orders its
	// reports, so the controller can drop one that arrives late.
	Boot string    `json:"boot"`
	Seq  uint64    `json:"seq"`
	Time time.Time `json:"time"`
	// ObserveError is set when the node could not be observed (no DRBD
	// module, lvm failing); everything else is then empty.
	ObserveError string                  `json:"observe_error,omitempty"`
	Resources    []drbd.ObservedResource `json:"resources,omitempty"`
	Pools        []PoolReport            `json:"pools,omitempty"`
	// Volumes are the node's LVs that carry pvehci's tag, as "VG/LV":
	// the controller completes a delete only once they are gone.
	Volumes []string `json:"volumes,omitempty"`
	// Snapshots are the node's snapshot LVs that carry pvehci's tag, as
	// "VG/LV" (LV named by SnapshotLVName): the controller ends a
	// snapshot's take phase once they are there and completes its delete
	// once they are gone.
	Snapshots []string `json:"snapshots,omitempty"`
	// Barriers names, as "resource/snapshot", the snapshot rounds whose
	// barrier this pass held (phase suspend or take, within the local
	// deadline). With the resource reported suspended by user, it proves
	// the suspension is this round's: a late report, or one left from an
	// earlier round, does not name it.
	Barriers []string `json:"barriers,omitempty"`
	// Deleting names the resources this pass had to delete (flag DELETE):
	// with no DRBD resource and no volume of them left, the report proves
	// the delete done, since it was taken after the pass acted.
	Deleting []string `json:"deleting,omitempty"`
	// Verifies are the online verifies this node started for a job run
	// (PropVerifyRequest), by resource.
	Verifies []VerifyReport `json:"verifies,omitempty"`
	// Sizes are the LV and DRBD device sizes of every volume of the
	// node's resources (not those being taken down): the controller
	// drives a grow with them (resize.go).
	Sizes []VolumeSize `json:"sizes,omitempty"`
	// Resizes are the `drbdadm resize` runs of this node that answer a
	// current PropResizeRequest.
	Resizes []ResizeReport `json:"resizes,omitempty"`
	// Network is the node's links and RDMA ports (Loop.Network), for
	// the leader's network health checks; nil where the satellite does not
	// read them (the lab).
	Network *model.NodeNetwork `json:"network,omitempty"`
	// Rollbacks name, as "resource/rollback id", the rollbacks this
	// node has finished (restore.go): the controller then removes the
	// replica's RollbackTarget.
	Rollbacks []string       `json:"rollbacks,omitempty"`
	Failed    []FailedAction `json:"failed,omitempty"`
	Problems  []string       `json:"problems,omitempty"`
	Orphans   []Orphan       `json:"orphans,omitempty"`
}

// PoolReport is the capacity of one storage pool, in KiB.
type PoolReport struct {
	Name     string `json:"name"`
	TotalKiB int64  `json:"total_kib"`
	FreeKiB  int64  `json:"free_kib"`
	// DataPercent and MetadataPercent are the thin pool's usage.
	DataPercent     float64 `json:"data_percent"`
	MetadataPercent float64 `json:"metadata_percent"`
}

// FailedAction is an action of the last pass that failed.
type FailedAction struct {
	Resource string `json:"resource"`
	Action   string `json:"action"`
	Error    string `json:"error"`
}

// Resource returns the report on one DRBD resource.
func (r NodeReport) Resource(name string) (drbd.ObservedResource, bool) {
	for _, res := range r.Resources {
		if res.Name == name {
			return res, true
		}
	}
	return drbd.ObservedResource{}, false
}

// Size returns the sizes of one volume of a resource.
func (r NodeReport) Size(rsc string, vnr int) (VolumeSize, bool) {
	for _, s := range r.Sizes {
		if s.Resource == rsc && s.Volume == vnr {
			return s, true
		}
	}
	return VolumeSize{}, false
}

// Pool returns the report on one storage pool.
func (r NodeReport) Pool(name string) (PoolReport, bool) {
	for _, p := range r.Pools {
		if model.SameName(p.Name, name) {
			return p, true
		}
	}
	return PoolReport{}, false
}

// BuildReport assembles a report from the desired state of a pass, the
// observation taken after it acted, and its outcome (rep may be empty when
// no pass ran).
func BuildReport(node string, st *state.State, want DesiredState, got Observed, rep Report) NodeReport {
	out := NodeReport{Node: node}
	for _, d := range want.Resources {
		if d.Delete {
			out.Deleting = append(out.Deleting, d.Name)
		}
		for _, s := range d.Snapshots {
			if s.barrier(want.Now) {
				out.Barriers = append(out.Barriers, d.Name+"/"+s.Name)
			}
		}
	}
	for _, name := range sortedKeys(got.DRBD) {
		out.Resources = append(out.Resources, got.DRBD[name])
	}
	out.Verifies = verifyReports(want, got)
	out.Sizes = volumeSizes(want, got)
	out.Resizes = resizeReports(want, got)
	out.Rollbacks = rollbackReports(want, got)
	for _, key := range sortedKeys(got.LVs) {
		switch lv := got.LVs[key]; {
		case !slices.Contains(lv.Tags, lvm.Tag):
		case snapshotLV(lv):
			out.Snapshots = append(out.Snapshots, key)
		default:
			out.Volumes = append(out.Volumes, key)
		}
	}
	for _, sp := range st.StoragePools() {
		if !model.SameName(sp.Node, node) || sp.ProviderKind != model.ProviderLVMThin {
			continue
		}
		vg, pool := sp.Props[model.KeyStorDriverLvmVg], sp.Props[model.KeyStorDriverThinPool]
		lv, ok := got.LVs[vg+"/"+pool]
		if !ok || !lv.Attr.ThinPool() {
			out.Problems = append(out.Problems, fmt.Sprintf("storage pool %s: thin pool %s/%s not found; create it or fix the pool's %s and %s", sp.Name, vg, pool, model.KeyStorDriverLvmVg, model.KeyStorDriverThinPool))
			continue
		}
		total := int64(lv.Size / 1024)
		used := int64(float64(total) * lv.DataPercent.Value / 100)
		out.Pools = append(out.Pools, PoolReport{Name: sp.Name, TotalKiB: total, FreeKiB: max(total-used, 0),
			DataPercent: lv.DataPercent.Value, MetadataPercent: lv.MetadataPercent.Value})
	}
	for _, o := range rep.Failed() {
		out.Failed = append(out.Failed, FailedAction{Resource: o.Action.Resource, Action: o.Action.String(), Error: o.Err.Error()})
	}
	for _, p := range rep.Plan.Problems {
		out.Problems = append(out.Problems, p.Err.Error())
	}
	out.Orphans = rep.Plan.Orphans
	return out
}
