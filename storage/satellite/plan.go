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
// adjust, which attaches and connects). Deleting: Down, WipeMD, RemoveLV,
// RemoveRes (§3 "Delete one replica"); the .res goes last so that a crash
// before it leaves a file the next pass still plans from.
const (
	CreateLV   Kind = "CreateLV"
	ActivateLV Kind = "ActivateLV"
	WriteRes   Kind = "WriteRes"
	CreateMD   Kind = "CreateMD"
	Adjust     Kind = "Adjust"
	Down       Kind = "Down"
	WipeMD     Kind = "WipeMD"
	RemoveLV   Kind = "RemoveLV"
	RemoveRes  Kind = "RemoveRes"
)

// Action is one step of a plan. Which fields are set depends on Kind.
type Action struct {
	Kind     Kind
	Resource string
	Volume   int    // volume actions
	Minor    int    // CreateMD, WipeMD
	VG       string // LV actions
	ThinPool string // CreateLV
	LV       string
	SizeKiB  int64  // CreateLV: the LV size (gross, extent-rounded)
	Peers    int    // CreateMD: --max-peers
	Res      []byte // WriteRes
}

// String is a one-line description for logs and reports.
func (a Action) String() string {
	switch a.Kind {
	case CreateLV:
		return fmt.Sprintf("%s %s/%s %dKiB in %s/%s", a.Kind, a.VG, a.LV, a.SizeKiB, a.VG, a.ThinPool)
	case ActivateLV, RemoveLV:
		return fmt.Sprintf("%s %s/%s", a.Kind, a.VG, a.LV)
	case CreateMD, WipeMD:
		return fmt.Sprintf("%s %s/%d", a.Kind, a.Resource, a.Volume)
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
	var deletes []Action
	for _, d := range want.Resources {
		if d.Err != nil {
			p.Problems = append(p.Problems, Problem{d.Name, d.Err})
			continue
		}
		var acts []Action
		var err error
		if d.Delete || d.Down {
			acts, err = planDelete(d, got, &p)
			deletes = append(deletes, acts...)
		} else {
			acts, err = planCreate(d, got, &p)
			p.Actions = append(p.Actions, acts...)
		}
		if err != nil {
			p.Problems = append(p.Problems, Problem{d.Name, err})
		}
	}
	p.Actions = append(p.Actions, deletes...)

	for _, key := range sortedKeys(got.LVs) {
		lv := got.LVs[key]
		// Snapshots (Origin set) belong to their origin's snapshot
		// definitions, which this slice does not manage.
		if owned[key] || lv.Origin != "" || !slices.Contains(lv.Tags, lvm.Tag) {
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
	var acts, mds []Action
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
		case !exists:
			acts = append(acts, Action{Kind: CreateLV, Resource: d.Name, Volume: v.Number, VG: v.VG, ThinPool: v.ThinPool, LV: v.LV, SizeKiB: roundUp(v.GrossKiB, ext)})
			mds = append(mds, Action{Kind: CreateMD, Resource: d.Name, Volume: v.Number, Minor: v.Minor, VG: v.VG, LV: v.LV, Peers: d.PeerSlots})
			continue
		case !slices.Contains(lv.Tags, lvm.Tag):
			p.Orphans = append(p.Orphans, Orphan{"lv", v.Key(), "has the name of volume " + fmt.Sprint(v.Number) + " of " + d.Name + " but not the tag " + lvm.Tag + "; pvehci does not use or remove LVs it did not make: rename it, or tag it if it really is this volume"})
			return nil, fmt.Errorf("volume %d: %s exists but is not tagged %s; left alone", v.Number, v.Key(), lvm.Tag)
		case int64(lv.Size/1024) < v.GrossKiB:
			// LINSTOR #523: a backing LV smaller than the DRBD device
			// fails adjust; refuse before attaching.
			return nil, fmt.Errorf("volume %d: %s is %d KiB but DRBD needs %d KiB; grow it with lvextend -L %dk", v.Number, v.Key(), lv.Size/1024, v.GrossKiB, v.GrossKiB)
		}
		if !lv.Attr.Active() {
			acts = append(acts, Action{Kind: ActivateLV, Resource: d.Name, Volume: v.Number, VG: v.VG, LV: v.LV})
		}
		if attached(k, v.Number) {
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
		if !has {
			mds = append(mds, Action{Kind: CreateMD, Resource: d.Name, Volume: v.Number, Minor: v.Minor, VG: v.VG, LV: v.LV, Peers: d.PeerSlots})
		}
	}
	if !bytesEqual(got.Res[d.Name], d.Res) {
		acts = append(acts, Action{Kind: WriteRes, Resource: d.Name, Res: d.Res})
		needAdjust = true
	}
	acts = append(acts, mds...)
	if len(acts) > 0 || needAdjust || kernelDiffers(d, k) {
		acts = append(acts, Action{Kind: Adjust, Resource: d.Name})
	}
	return acts, nil
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
		if err := safeToDown(k); err != nil {
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
func safeToDown(k drbd.ObservedResource) error {
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
		if !peerUpToDate(k, dev.Volume) {
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

func bytesEqual(a, b []byte) bool { return a != nil && string(a) == string(b) }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, strings.Compare)
	return keys
}
