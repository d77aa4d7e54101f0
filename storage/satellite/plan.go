package satellite

import (
	"fmt"
	"slices"
	"strings"

	"github.com/pvehci/pvehci/storage/drbd"
	"github.com/pvehci/pvehci/storage/lvm"
)

// Kind is what an action does.
type Kind string

// Action kinds, in the order a resource's actions run. Creating: CreateLV,
// ActivateLV, WriteRes, CreateMD, Adjust (LINSTOR's satellite order,
// research/linstor-server.md §3 "Create": the LV, the .res, create-md, then
// adjust, which attaches and connects), then SkipInitialSync or
// ForcePrimary, which start the data of a new volume on the winner (see
// the package documentation). Those two are planned only in a pass that
// plans nothing else for the resource, because they are decided on the
// connections and disk states that the previous adjust brought up; a pass
// that still adjusts leaves them to the next one. Deleting: Down, WipeMD,
// RemoveLV, RemoveRes (§3 "Delete one replica"); the .res goes last so that
// a crash before it leaves a file the next pass still plans from.
// Snapshots (see snapshot.go): SuspendIO, TakeSnapshot, ResumeIO and
// RemoveSnapshot follow a resource's other actions, except that ResumeIO
// runs even after an earlier action of the resource failed and comes
// before Down.
const (
	CreateLV   Kind = "CreateLV"
	ActivateLV Kind = "ActivateLV"
	WriteRes   Kind = "WriteRes"
	CreateMD   Kind = "CreateMD"
	Adjust     Kind = "Adjust"
	// SkipInitialSync is `drbdadm new-current-uuid --clear-bitmap
	// RES/VNR`: one new generation shared by all connected replicas, all
	// of which become UpToDate without copying a block.
	SkipInitialSync Kind = "SkipInitialSync"
	// ForcePrimary is `drbdadm primary --force RES` then `drbdadm
	// secondary RES`: the winner's disk becomes UpToDate and every peer
	// gets a full sync from it.
	ForcePrimary Kind = "ForcePrimary"
	Down         Kind = "Down"
	WipeMD       Kind = "WipeMD"
	RemoveLV     Kind = "RemoveLV"
	RemoveRes    Kind = "RemoveRes"
	// SuspendIO is `drbdadm suspend-io RES`: the node's part of a
	// snapshot's barrier.
	SuspendIO Kind = "SuspendIO"
	// TakeSnapshot is the thin `lvcreate --snapshot` of one volume.
	TakeSnapshot Kind = "TakeSnapshot"
	// ResumeIO is `drbdadm resume-io RES`.
	ResumeIO Kind = "ResumeIO"
	// RemoveSnapshot is `lvremove -f VG/LV` of a deleted snapshot's LV.
	RemoveSnapshot Kind = "RemoveSnapshot"
	// RunVerify starts DRBD online verify (verify.go).
	RunVerify Kind = "RunVerify"
	// ResyncVerified is `drbdsetup invalidate-remote RES PEER VNR
	// --reset-bitmap=no`: the blocks a verify found out of sync toward
	// one peer are resynchronized from this node (verify.go).
	ResyncVerified Kind = "ResyncVerified"
	// GrowLV is `lvextend --size <N>k VG/LV`: the backing LV of a volume
	// whose definition grew (resize.go).
	GrowLV Kind = "GrowLV"
	// ResizeDRBD is `drbdadm -vvv [-- --assume-clean] resize RES/VNR` on
	// the node the controller named (resize.go).
	ResizeDRBD Kind = "ResizeDRBD"
	// CheckResize is `drbdadm -vvv check-resize RES/VNR`: it moves the
	// internal metadata of an LV that grew while DRBD did not hold it
	// from the end of its last-known size to its new end. It takes
	// CreateMD's place, before Adjust (checkresize.go).
	CheckResize Kind = "CheckResize"
)

// Action is one step of a plan. Which fields are set depends on Kind.
type Action struct {
	Kind     Kind
	Resource string
	Volume   int    // volume actions
	Minor    int    // CreateMD, WipeMD, CheckResize
	VG       string // LV actions
	ThinPool string // CreateLV
	LV       string
	SizeKiB  int64  // CreateLV, GrowLV: the LV size (gross, extent-rounded); CheckResize: the last-known size
	Peers    int    // CreateMD: --max-peers
	Res      []byte // WriteRes
	Snapshot string // snapshot actions: the snapshot definition's name
	From     string // CloneLV: the LV cloned; RenameLV: the old name
	Tags     []string
	NodeIDs  []int  // ForgetPeers
	RunID    string // RunVerify, ResyncVerified, ResizeDRBD: the request it answers
	// PeerNodeID is the DRBD node id of the peer a ResyncVerified
	// overwrites, or that a DropPeer drops.
	PeerNodeID int
	// DelPeer is set on a DropPeer while DRBD still has the connection.
	DelPeer bool
	// AssumeClean is set on a ResizeDRBD of a thin volume: the grown
	// area reads as zeros on every replica and is not resynchronized.
	AssumeClean bool
}

// String is a one-line description for logs and reports.
func (a Action) String() string {
	switch a.Kind {
	case CreateLV:
		return fmt.Sprintf("%s %s/%s %dKiB in %s/%s", a.Kind, a.VG, a.LV, a.SizeKiB, a.VG, a.ThinPool)
	case ActivateLV, RemoveLV:
		return fmt.Sprintf("%s %s/%s", a.Kind, a.VG, a.LV)
	case GrowLV:
		return fmt.Sprintf("%s %s/%s to %dKiB", a.Kind, a.VG, a.LV, a.SizeKiB)
	case CheckResize:
		return fmt.Sprintf("%s %s/%d from %dKiB", a.Kind, a.Resource, a.Volume, a.SizeKiB)
	case CreateMD, WipeMD, SkipInitialSync, ResizeDRBD:
		return fmt.Sprintf("%s %s/%d", a.Kind, a.Resource, a.Volume)
	case SuspendIO, TakeSnapshot, ResumeIO, RemoveSnapshot:
		return a.snapshotString()
	case CloneLV, RenameLV, ForgetPeers:
		return a.restoreString()
	case ResyncVerified:
		return fmt.Sprintf("%s %s/%d toward node id %d", a.Kind, a.Resource, a.Volume, a.PeerNodeID)
	case DropPeer:
		return fmt.Sprintf("%s %s node id %d", a.Kind, a.Resource, a.PeerNodeID)
	}
	return fmt.Sprintf("%s %s", a.Kind, a.Resource)
}

// Orphan is something on the node that no desired resource owns, or that
// looks like ours but is not. Passes report orphans and never remove them.
type Orphan struct {
	Kind   string // "lv", "res" or "drbd"
	Name   string // VG/LV, resource name
	Reason string
}

// Problem is a resource the plan leaves alone this pass, and why.
type Problem struct {
	Resource string
	Err      error
}

// PlanResult is the outcome of Plan.
type PlanResult struct {
	Actions  []Action
	Orphans  []Orphan
	Problems []Problem
}

// Plan lists the actions that turn got into want, grouped per resource:
// first the resources to create or update, by name, then those to delete,
// by name, so that capacity freed by deletes is never counted on and a
// delete never waits behind an unrelated failure. An empty plan means the
// node has converged.
func Plan(want DesiredState, got Observed) PlanResult {
	var p PlanResult
	owned := map[string]bool{} // VG/LV of every desired volume
	for _, d := range want.Resources {
		for _, v := range d.Volumes {
			if !v.Diskless {
				owned[v.Key()] = true
			}
		}
	}
	// A snapshot LV outlives its origin's removal, when lvs no longer
	// names the origin; it is still no orphan.
	for _, s := range want.Snapshots {
		for _, l := range s.LVs {
			owned[l.Key()] = true
		}
	}
	for _, d := range want.Resources {
		for _, v := range d.Volumes {
			if d.Rollback.ID != "" && !v.Diskless {
				owned[v.VG+"/"+RollbackLVName(v.LV)] = true
			}
		}
	}
	var deletes []Action
	for _, d := range want.Resources {
		if d.Err != nil {
			p.Problems = append(p.Problems, Problem{d.Name, d.Err})
			continue
		}
		var acts []Action
		var err error
		snaps := planSnapshots(d, got, want.Now, &p)
		if d.Delete || d.Down {
			acts, err = planDelete(d, got, &p)
			if err == nil && d.Delete {
				acts = append(acts, planStrayDisks(d, got)...)
			}
			// Resume before Down: a resource going away must not
			// leave a frozen I/O path behind while it is refused.
			deletes = append(deletes, snaps...)
			deletes = append(deletes, acts...)
		} else if d.Rollback.Hold {
			acts, err = planRollback(d, got)
			p.Actions = append(p.Actions, snaps...)
			p.Actions = append(p.Actions, acts...)
		} else {
			acts, err = planCreate(d, got, &p)
			if err == nil {
				acts = append(acts, planStrayDisks(d, got)...)
			}
			p.Actions = append(p.Actions, acts...)
			p.Actions = append(p.Actions, snaps...)
			if err == nil && len(acts) == 0 && len(snaps) == 0 {
				p.Actions = append(p.Actions, planVerify(d, got)...)
				p.Actions = append(p.Actions, planVerifyResync(d, got)...)
				p.Actions = append(p.Actions, planResize(d, got, want.Now)...)
			}
		}
		if err != nil {
			p.Problems = append(p.Problems, Problem{d.Name, err})
		}
	}
	p.Actions = append(p.Actions, deletes...)
	p.Actions = append(p.Actions, planSnapshotRemovals(want, got, &p)...)

	removing := map[string]bool{}
	for _, a := range append(p.Actions, deletes...) {
		if a.Kind == RemoveLV {
			removing[a.VG+"/"+a.LV] = true
		}
	}
	for _, key := range sortedKeys(got.LVs) {
		lv := got.LVs[key]
		if removing[key] {
			continue
		}
		// Snapshots (Origin set) belong to their origin's snapshot
		// definitions, which this slice does not manage.
		if owned[key] || snapshotLV(lv) || !slices.Contains(lv.Tags, lvm.Tag) {
			continue
		}
		p.Orphans = append(p.Orphans, Orphan{"lv", key, "tagged " + lvm.Tag + " but no resource on this node owns it; remove it with lvremove once you are sure its data is not needed"})
	}
	for _, name := range got.ResFiles {
		if _, ok := want.Resource(name); !ok {
			p.Orphans = append(p.Orphans, Orphan{"res", name, "no resource on this node owns " + ResPath(name) + "; delete the file once the resource is down"})
		}
	}
	for _, name := range sortedKeys(got.DRBD) {
		if _, ok := want.Resource(name); !ok {
			p.Orphans = append(p.Orphans, Orphan{"drbd", name, "DRBD resource is up but no resource on this node owns it; take it down with drbdsetup down once nothing uses it"})
		}
	}
	return p
}

func planCreate(d DesiredResource, got Observed, p *PlanResult) ([]Action, error) {
	var acts, mds, grows []Action
	k, up := got.DRBD[d.Name]
	needAdjust := !up
	for _, v := range d.Volumes {
		if v.Diskless {
			continue
		}
		lv, exists := got.LVs[v.Key()]
		ext, vgOK := got.ExtentKiB[v.VG]
		switch {
		case !exists && !vgOK:
			return nil, fmt.Errorf("volume %d: volume group %s does not exist on this node; create it or fix the storage pool's %s", v.Number, v.VG, "StorDriver/LvmVg")
		case !exists && d.Restore != nil:
			clone, forget, err := planRestoreVolume(d, v, got)
			if err != nil {
				return nil, err
			}
			acts = append(acts, clone)
			mds = append(mds, forget)
			continue
		case !exists:
			acts = append(acts, Action{Kind: CreateLV, Resource: d.Name, Volume: v.Number, VG: v.VG, ThinPool: v.ThinPool, LV: v.LV, SizeKiB: roundUp(v.GrossKiB, ext)})
			mds = append(mds, Action{Kind: CreateMD, Resource: d.Name, Volume: v.Number, Minor: v.Minor, VG: v.VG, LV: v.LV, Peers: d.PeerSlots})
			continue
		case !slices.Contains(lv.Tags, lvm.Tag):
			p.Orphans = append(p.Orphans, Orphan{"lv", v.Key(), "has the name of volume " + fmt.Sprint(v.Number) + " of " + d.Name + " but not the tag " + lvm.Tag + "; pvehci does not use or remove LVs it did not make: rename it, or tag it if it really is this volume"})
			return nil, fmt.Errorf("volume %d: %s exists but is not tagged %s; left alone", v.Number, v.Key(), lvm.Tag)
		}
		// A volume whose definition grew: its LV is extended to the new
		// gross size (resize.go). While DRBD holds the disk, DRBD moves
		// its internal metadata at `drbdadm resize`; an LV without
		// metadata has none to move. An LV with metadata that DRBD does
		// not hold is attached at its old size first and grown in a
		// later pass, since growing it would leave the metadata short of
		// the LV's end, where attach looks for it. One that grew anyway
		// (a crash before the resize, an operator's lvextend) has its
		// metadata moved to the new end first (CheckResize), never a
		// create-md over it (checkresize.go).
		grow := int64(lv.Size/1024) < v.GrossKiB
		growLV := Action{Kind: GrowLV, Resource: d.Name, Volume: v.Number, VG: v.VG, LV: v.LV, SizeKiB: roundUp(v.GrossKiB, ext)}
		if !lv.Attr.Active() {
			acts = append(acts, Action{Kind: ActivateLV, Resource: d.Name, Volume: v.Number, VG: v.VG, LV: v.LV})
		}
		if attached(k, v.Number) {
			if grow {
				grows = append(grows, growLV)
			}
			continue
		}
		needAdjust = true
		if err := got.ProbeErr[v.Key()]; err != nil {
			return nil, fmt.Errorf("volume %d: %w", v.Number, err)
		}
		has, probed := got.HasMD[v.Key()]
		if !probed {
			return nil, fmt.Errorf("volume %d: %s was not probed for DRBD metadata; the next pass will", v.Number, v.Key())
		}
		if cr, moved := planCheckResize(d, v, got); !has && moved {
			mds = append(mds, cr)
		} else if !has {
			if grow {
				grows = append(grows, growLV)
			}
			mds = append(mds, Action{Kind: CreateMD, Resource: d.Name, Volume: v.Number, Minor: v.Minor, VG: v.VG, LV: v.LV, Peers: d.PeerSlots})
		} else if d.Restore != nil {
			// A restore interrupted after the clone: the slots are
			// cleared again (forget-peer is idempotent) before the
			// first attach.
			mds = append(mds, forgetPeers(d, v))
		}
	}
	if up {
		acts = append(acts, planDropPeers(d, got.Res[d.Name], k)...)
	}
	if !bytesEqual(got.Res[d.Name], d.Res) {
		acts = append(acts, Action{Kind: WriteRes, Resource: d.Name, Res: d.Res})
		needAdjust = true
	}
	acts = append(acts, mds...)
	if len(acts) > 0 || needAdjust || kernelDiffers(d, k) {
		acts = append(grows, append(acts, Action{Kind: Adjust, Resource: d.Name})...)
		return acts, nil
	}
	if len(grows) > 0 {
		// Growing an attached disk changes nothing DRBD runs: no
		// adjust. The controller asks for `drbdadm resize` once every
		// replica has grown.
		return grows, nil
	}
	// The kernel runs exactly what the .res says: its connections are
	// the desired ones, so their states can be trusted for the decision.
	return planInitialSync(d, k), nil
}

// planStrayDisks removes the backing LVs that a now diskless volume left
// behind: after toggle-disk to diskless (or a relocation that keeps the
// replica as a tie-breaker), DRBD detaches the disk at the adjust, and the
// LV, ours by its tag and its name, holds a copy nobody uses any more. It is
// removed only once DRBD no longer has it attached, so a pass that still
// sees it attached plans nothing and the next one removes it.
func planStrayDisks(d DesiredResource, got Observed) []Action {
	var acts []Action
	k, up := got.DRBD[d.Name]
	for _, v := range d.Volumes {
		if !v.Diskless || (up && attached(k, v.Number)) {
			continue
		}
		name := lvm.VolumeLVName(d.Name, v.Number)
		for _, key := range sortedKeys(got.LVs) {
			lv := got.LVs[key]
			if lv.Name != name || snapshotLV(lv) || !slices.Contains(lv.Tags, lvm.Tag) {
				continue
			}
			acts = append(acts,
				Action{Kind: WipeMD, Resource: d.Name, Volume: v.Number, Minor: v.Minor, VG: lv.VG, LV: lv.Name},
				Action{Kind: RemoveLV, Resource: d.Name, Volume: v.Number, VG: lv.VG, LV: lv.Name})
		}
	}
	return acts
}

// planInitialSync starts the data of the resource's new volumes when this
// node is the winner and every replica is still fresh. Thin volumes skip
// the sync: every replica is a zeroed thin LV with just-created metadata,
// so declaring them all UpToDate under one new generation claims nothing
// that is not true. A volume that is not thin, a definition with
// ForceInitialSync, or a winner without diskful peers gets `primary
// --force` instead: its own zeroes become the data and the peers copy them
// in full.
func planInitialSync(d DesiredResource, k drbd.ObservedResource) []Action {
	if d.Diskless || !d.InitialSyncWinner || k.Role != drbd.RoleSecondary {
		return nil
	}
	for _, c := range k.Connections {
		if c.PeerRole == drbd.RolePrimary {
			return nil // someone serves data: not a birth
		}
	}
	var skip []Action
	force := false
	fresh := map[int]bool{}
	for _, v := range d.Volumes {
		if v.Initialized || !freshEverywhere(d, k, v.Number) {
			continue
		}
		fresh[v.Number] = true
		if v.Thin && !d.ForceInitialSync && len(d.DiskfulPeers) > 0 {
			skip = append(skip, Action{Kind: SkipInitialSync, Resource: d.Name, Volume: v.Number})
		} else {
			force = true
		}
	}
	if force {
		// primary --force makes every local volume that is not
		// UpToDate the source of a full sync, so each of them must
		// have passed the checks above.
		for _, dev := range k.Devices {
			if dev.Disk != drbd.DiskUpToDate && !fresh[dev.Volume] {
				force = false
			}
		}
	}
	if force {
		skip = append(skip, Action{Kind: ForcePrimary, Resource: d.Name})
	}
	return skip
}

// freshEverywhere reports whether volume vnr has never held data anywhere
// this node can tell: the local disk is Inconsistent, every diskful peer
// of the .res is connected with its disk Inconsistent and no resync
// running, and no peer at all reports UpToDate, Outdated or Consistent
// data. A replica that is Inconsistent because it is a sync target has an
// UpToDate source somewhere, and that source is among the connected peers
// or the volume definition is DRBD_INITIALIZED already.
func freshEverywhere(d DesiredResource, k drbd.ObservedResource, vnr int) bool {
	local := slices.IndexFunc(k.Devices, func(dev drbd.ObservedDevice) bool { return dev.Volume == vnr })
	if local < 0 || k.Devices[local].Disk != drbd.DiskInconsistent {
		return false
	}
	for _, c := range k.Connections {
		for _, pd := range c.PeerDevices {
			if pd.Volume != vnr {
				continue
			}
			switch pd.PeerDisk {
			case drbd.DiskUpToDate, drbd.DiskOutdated, drbd.DiskConsistent:
				return false
			}
			if pd.Replication != drbd.ReplEstablished && pd.Replication != drbd.ReplOff {
				return false // a resync or verify is running
			}
		}
	}
	for _, id := range d.DiskfulPeers {
		c := slices.IndexFunc(k.Connections, func(c drbd.ObservedConnection) bool { return c.PeerNodeID == id })
		if c < 0 || k.Connections[c].Connection != drbd.ConnConnected {
			return false
		}
		pd := slices.IndexFunc(k.Connections[c].PeerDevices, func(pd drbd.ObservedPeerDevice) bool { return pd.Volume == vnr })
		if pd < 0 {
			return false
		}
		if p := k.Connections[c].PeerDevices[pd]; p.Replication != drbd.ReplEstablished || p.PeerDisk != drbd.DiskInconsistent {
			return false
		}
	}
	return true
}

// kernelDiffers reports whether the running resource lacks a volume or a
// connection the .res asks for, or has one it no longer names: what
// `drbdadm adjust` would change.
func kernelDiffers(d DesiredResource, k drbd.ObservedResource) bool {
	if len(k.Devices) != len(d.Volumes) {
		return true
	}
	for i, v := range d.Volumes {
		if k.Devices[i].Volume != v.Number || k.Devices[i].Minor != v.Minor {
			return true
		}
	}
	var ids []int
	for _, c := range k.Connections {
		ids = append(ids, c.PeerNodeID)
	}
	return !slices.Equal(ids, d.Peers)
}

func planDelete(d DesiredResource, got Observed, p *PlanResult) ([]Action, error) {
	var acts []Action
	if k, up := got.DRBD[d.Name]; up {
		if err := safeToDown(k, d.DefinitionDeleted); err != nil {
			return nil, err
		}
		acts = append(acts, Action{Kind: Down, Resource: d.Name})
	}
	if d.Delete {
		for _, v := range d.Volumes {
			lv, exists := got.LVs[v.Key()]
			if v.Diskless || !exists {
				continue
			}
			if !slices.Contains(lv.Tags, lvm.Tag) {
				p.Orphans = append(p.Orphans, Orphan{"lv", v.Key(), "has the name of volume " + fmt.Sprint(v.Number) + " of " + d.Name + " (being deleted) but not the tag " + lvm.Tag + "; pvehci does not remove LVs it did not make"})
				continue
			}
			acts = append(acts,
				Action{Kind: WipeMD, Resource: d.Name, Volume: v.Number, Minor: v.Minor, VG: v.VG, LV: v.LV},
				Action{Kind: RemoveLV, Resource: d.Name, Volume: v.Number, VG: v.VG, LV: v.LV})
		}
	}
	if got.Res[d.Name] != nil || slices.Contains(got.ResFiles, d.Name) {
		acts = append(acts, Action{Kind: RemoveRes, Resource: d.Name})
	}
	return acts, nil
}

// safeToDown refuses to take down a resource in use, or one whose local
// disk may be the last good copy of a volume: with local data that is
// UpToDate, Consistent or Outdated, some connected peer must have that
// volume UpToDate (research/linstor-server.md §8 #3, peers.md "last
// UpToDate replica" guard).
//
// When the whole definition is being deleted the data itself is what the
// operator asked to remove; only the in-use refusals remain.
func safeToDown(k drbd.ObservedResource, definitionDeleted bool) error {
	if k.Role == drbd.RolePrimary {
		return fmt.Errorf("it is Primary here; stop or migrate the VM that uses it, then the next pass deletes it")
	}
	for _, dev := range k.Devices {
		if dev.Open {
			return fmt.Errorf("volume %d (minor %d) is open; close what uses it, then the next pass deletes it", dev.Volume, dev.Minor)
		}
		switch dev.Disk {
		case drbd.DiskUpToDate, drbd.DiskConsistent, drbd.DiskOutdated:
		default:
			continue
		}
		if !definitionDeleted && !peerUpToDate(k, dev.Volume) {
			return fmt.Errorf("refusing to take down the last UpToDate replica of volume %d (local disk %s, no connected peer UpToDate); wait for a peer to finish its sync or bring one back", dev.Volume, dev.Disk)
		}
	}
	return nil
}

func peerUpToDate(k drbd.ObservedResource, vnr int) bool {
	for _, c := range k.Connections {
		if c.Connection != drbd.ConnConnected {
			continue
		}
		for _, pd := range c.PeerDevices {
			if pd.Volume == vnr && pd.PeerDisk == drbd.DiskUpToDate && pd.Replication == drbd.ReplEstablished {
				return true
			}
		}
	}
	return false
}

// snapshotLV reports whether lv is one of pvehci's snapshot LVs, which are
// read-only (TakeSnapshot). The origin field cannot tell: a restored or
// rolled-back volume is a writable snapshot of a snapshot, and a snapshot
// whose origin was removed has none.
func snapshotLV(lv lvm.LV) bool { return lv.Attr.ReadOnly() }

func bytesEqual(a, b []byte) bool { return a != nil && string(a) == string(b) }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, strings.Compare)
	return keys
}
