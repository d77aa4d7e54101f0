package satellite

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/pvehci/pvehci/ha/state"
	"github.com/pvehci/pvehci/storage/drbd"
	"github.com/pvehci/pvehci/storage/lvm"
	"github.com/pvehci/pvehci/storage/model"
)

// ResDir is where the satellite keeps its DRBD .res files; drbd-utils reads
// them through an include, as LINSTOR's /var/lib/linstor.d
// (research/linstor-server.md §2).
const ResDir = "/var/lib/pvehci/drbd.d"

// ResPath is the .res file of a resource.
func ResPath(resource string) string { return ResDir + "/" + resource + ".res" }

// DesiredState is everything one node should hold.
type DesiredState struct {
	Node      string
	Resources []DesiredResource // sorted by name
	// Now is when the state was read: the clock of the snapshot
	// deadlines (see SnapshotLocalDeadline). Desired sets time.Now;
	// Reconciler.Now and tests override it.
	Now time.Time
	// Snapshots are every snapshot definition that lists this node, by
	// resource and name: their LVs are never orphans, and those flagged
	// DELETE are removed.
	Snapshots []DesiredSnapshot
}

// Resource returns the desired resource called name.
func (d DesiredState) Resource(name string) (DesiredResource, bool) {
	i, ok := slices.BinarySearchFunc(d.Resources, name, func(r DesiredResource, n string) int { return strings.Compare(r.Name, n) })
	if !ok {
		return DesiredResource{}, false
	}
	return d.Resources[i], true
}

// DesiredResource is one resource placed on the node.
type DesiredResource struct {
	Name string
	// Delete is set when the node's resource carries DELETE: take it
	// down, wipe its metadata, remove its LVs and its .res file.
	Delete bool
	// Down is set when it carries DRBD_DELETE (and not DELETE): take it
	// down and remove the .res file, keep the LVs (LINSTOR's first
	// delete phase).
	Down bool
	// DefinitionDeleted is set when the whole resource definition carries
	// DELETE: the operator (or Proxmox destroying the VM's disk) asked for
	// the data to go, so the last UpToDate replica may be taken down too.
	DefinitionDeleted bool
	Diskless          bool
	// Res is the rendered .res file; nil for a resource being deleted.
	Res       []byte
	PeerSlots int
	// NodeID is this node's DRBD node id in the resource.
	NodeID int
	// Peers are the DRBD node ids of the peers the .res file names.
	Peers []int
	// DiskfulPeers are the diskful ones among Peers: the replicas that
	// must be connected and fresh before the initial sync is skipped.
	DiskfulPeers []int
	// InitialSyncWinner is set on the one resource of the definition
	// that may start the data of a new volume: the diskful resource
	// with the lowest node id among the definition's diskful resources
	// not being deleted. Every node derives it from the same state, so
	// at most one node ever acts (research/peers.md "Skip-initial-sync,
	// the birth flow").
	InitialSyncWinner bool
	// ForceInitialSync is DrbdOptions/ForceInitialSync (RD > RG > C)
	// set to true or yes: new volumes get a full initial sync from the
	// winner instead of a skipped one (research/linstor-server.md §3).
	ForceInitialSync bool
	Volumes          []DesiredVolume // by number
	// Warnings are Build's notes about properties it did not render.
	Warnings []string
	// Snapshots are the resource definition's snapshot definitions, by
	// name: the rounds this node takes part in.
	Snapshots []DesiredSnapshot
	// VerifyRequest is the definition's PropVerifyRequest: the job run
	// that asks for an online verify, empty for none.
	VerifyRequest string
	// VerifyResync is the definition's PropVerifyResync: the job run
	// whose verify findings this node resyncs from its own data if it
	// coordinated that verify and is Primary.
	VerifyResync string
	// Restore is set for a diskful resource flagged
	// RESTORE_FROM_SNAPSHOT: missing volumes are cloned from the
	// snapshot (restore.go).
	Restore *DesiredRestore
	// Rollback is the definition's rollback, if one runs (restore.go).
	Rollback DesiredRollback
	// Err is why the resource could not be computed; the plan leaves such
	// a resource alone and reports the error.
	Err error
}

// DesiredVolume is one volume of a desired resource.
type DesiredVolume struct {
	Number int
	Minor  int
	// Diskless volumes have no LV; VG, ThinPool and LV are empty.
	Diskless     bool
	VG, ThinPool string
	LV           string
	// SizeKiB is the usable size, GrossKiB the backing size with DRBD's
	// internal metadata (before rounding to the VG's extent size).
	SizeKiB, GrossKiB int64
	// Initialized is the volume definition's flag DRBD_INITIALIZED: some
	// replica has held UpToDate data, so the volume is not new and no
	// node may start its data again.
	Initialized bool
	// Thin is set for a volume backed by a thin LV, whose unwritten
	// blocks read as zeros on every replica: the condition for skipping
	// the initial sync.
	Thin bool
	// Resize is the volume definition's flag RESIZE: a grow is under
	// way and not yet completed by the controller.
	Resize bool
	// ResizeRequest is the volume definition's PropResizeRequest when it
	// names this node ("<node>/<size KiB>"): this node is to run
	// `drbdadm resize` for the grow. Empty otherwise.
	ResizeRequest string
	// RestoreLV is the snapshot LV (in VG) a missing LV is cloned from,
	// for a resource being restored; RollbackLV the one this replica
	// rolls back to. Empty otherwise.
	RestoreLV, RollbackLV string
}

// Key is "VG/LV", the key of Observed.LVs.
func (v DesiredVolume) Key() string { return v.VG + "/" + v.LV }

// Device is the LV's device node.
func (v DesiredVolume) Device() string { return lvm.DevicePath(v.VG, v.LV) }

// Desired computes the desired state of node from the replicated state.
// A resource that cannot be computed (a missing pool, a .res that does not
// render) carries its error in DesiredResource.Err instead of failing the
// others; Desired itself fails only for a node the state does not know.
func Desired(st *state.State, node string) (DesiredState, error) {
	if _, ok := st.Node(node); !ok {
		return DesiredState{}, fmt.Errorf("compute desired state: node %s is not in the cluster state; check the node name (uname -n or --node) or join the node first", node)
	}
	d := DesiredState{Node: node, Now: time.Now()}
	for _, r := range st.ResourcesOnNode(node) {
		d.Resources = append(d.Resources, desiredResource(st, node, r))
	}
	slices.SortFunc(d.Resources, func(a, b DesiredResource) int { return strings.Compare(a.Name, b.Name) })
	for _, s := range desiredSnapshots(st, node, "") {
		if len(s.LVs) > 0 || s.Err != nil {
			d.Snapshots = append(d.Snapshots, s)
		}
	}
	return d, nil
}

// initialSyncWinner is the node id of the diskful resource of rd with the
// lowest node id among those not being deleted, or -1 when there is none.
// It depends on the replicated state only, so every node computes the same
// winner; a resource being deleted hands the role on, since it will not be
// there to serve the data it would start.
func initialSyncWinner(st *state.State, rd string) int {
	winner := -1
	for _, r := range st.Resources(rd) {
		if r.Diskless() || r.Flags.Has(model.RscFlagDelete) || r.Flags.Has(model.RscFlagDrbdDelete) {
			continue
		}
		if winner < 0 || r.NodeID < winner {
			winner = r.NodeID
		}
	}
	return winner
}

func desiredResource(st *state.State, node string, r model.Resource) DesiredResource {
	dr := DesiredResource{
		Name:      r.Name,
		Delete:    r.Flags.Has(model.RscFlagDelete),
		Down:      r.Flags.Has(model.RscFlagDrbdDelete) && !r.Flags.Has(model.RscFlagDelete),
		Diskless:  r.Diskless(),
		PeerSlots: r.PeerSlots,
		NodeID:    r.NodeID,
		Snapshots: desiredSnapshots(st, node, r.Name),
	}
	if dr.PeerSlots <= 0 {
		dr.PeerSlots = model.DefaultPeerSlots
	}
	fail := func(err error) DesiredResource {
		dr.Err = fmt.Errorf("resource %s: %w", r.Name, err)
		return dr
	}
	def, ok := st.ResourceDefinition(r.Name)
	if !ok {
		return fail(fmt.Errorf("its definition is missing from the state"))
	}
	dr.DefinitionDeleted = def.Flags.Has(model.RdFlagDelete)
	dr.VerifyRequest = def.Props[PropVerifyRequest]
	dr.VerifyResync = def.Props[PropVerifyResync]
	for _, vd := range def.VolumeDefinitions {
		v := DesiredVolume{Number: vd.VolumeNumber, Minor: vd.Minor, Diskless: dr.Diskless, SizeKiB: vd.SizeKiB,
			Initialized: vd.Flags.Has(model.VdFlagDrbdInitialized), Resize: vd.Flags.Has(model.VdFlagResize)}
		if req := vd.Props[PropResizeRequest]; v.Resize && !dr.Diskless {
			if n, _, ok := ParseResizeRequest(req); ok && model.SameName(n, node) {
				v.ResizeRequest = req
			}
		}
		if !v.Diskless {
			vol, ok := r.Volume(vd.VolumeNumber)
			if !ok {
				return fail(fmt.Errorf("volume %d has no volume on %s; recreate the resource", vd.VolumeNumber, node))
			}
			pool, ok := st.StoragePool(node, vol.StoragePool)
			if !ok {
				return fail(fmt.Errorf("volume %d: storage pool %s does not exist on %s; create it or move the resource", vd.VolumeNumber, vol.StoragePool, node))
			}
			if pool.ProviderKind != model.ProviderLVMThin {
				return fail(fmt.Errorf("volume %d: storage pool %s is %s; this satellite manages only LVM-thin pools", vd.VolumeNumber, pool.Name, pool.ProviderKind))
			}
			v.VG, v.ThinPool = pool.Props[model.KeyStorDriverLvmVg], pool.Props[model.KeyStorDriverThinPool]
			if v.VG == "" || v.ThinPool == "" {
				return fail(fmt.Errorf("storage pool %s on %s lacks %s or %s; set both on the pool", pool.Name, node, model.KeyStorDriverLvmVg, model.KeyStorDriverThinPool))
			}
			v.Thin = true // the only provider this satellite accepts, checked above
			v.LV = lvm.VolumeLVName(r.Name, vd.VolumeNumber)
			v.GrossKiB = GrossKiB(vd.SizeKiB, dr.PeerSlots)
		}
		dr.Volumes = append(dr.Volumes, v)
	}
	if dr.Delete || dr.Down {
		return dr
	}
	desiredRestoreAndRollback(st, node, r, &dr)
	cfg, warnings, err := drbd.Build(st, r.Name, drbd.BuildOptions{Local: node})
	if err != nil {
		return fail(fmt.Errorf("build .res: %w", err))
	}
	dr.Warnings = warnings
	for _, n := range cfg.Nodes {
		// Two diskless nodes get no connection (drbd.SelectPaths).
		if n.NodeID != r.NodeID && !(dr.Diskless && n.Diskless) {
			dr.Peers = append(dr.Peers, n.NodeID)
			if !n.Diskless {
				dr.DiskfulPeers = append(dr.DiskfulPeers, n.NodeID)
			}
		}
	}
	slices.Sort(dr.Peers)
	slices.Sort(dr.DiskfulPeers)
	dr.InitialSyncWinner = !dr.Diskless && initialSyncWinner(st, r.Name) == r.NodeID
	scope, err := st.ResourceScope(r.Name, node)
	if err != nil {
		return fail(fmt.Errorf("resolve %s: %w", model.KeyForceInitialSync, err))
	}
	switch strings.ToLower(strings.TrimSpace(scope.Get(model.KeyForceInitialSync))) {
	case "true", "yes":
		dr.ForceInitialSync = true
	}
	res, err := drbd.Render(cfg)
	if err != nil {
		return fail(fmt.Errorf("render .res: %w", err))
	}
	dr.Res = res
	return dr
}
