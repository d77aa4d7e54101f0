package controller

import (
	"slices"

	"github.com/pvehci/pvehci/ha/state"
	"github.com/pvehci/pvehci/storage/drbd"
	"github.com/pvehci/pvehci/storage/model"
	"github.com/pvehci/pvehci/storage/satellite"
)

// completeResize drives the online grow of every volume definition of rd
// flagged RESIZE (state.ModifyVolumeDefinition sets the flag with the new
// size; the satellites grow their LVs on their own):
//
//   - once every diskful replica reports, from a node that is online, its
//     LV at least the gross size for the new size (satellite.GrossKiB)
//     and its disk UpToDate, with every connection to another diskful
//     replica Connected and the volume Established (no resync), the
//     volume definition gets satellite.PropResizeRequest naming the
//     diskful replica with the lowest DRBD node id, which runs `drbdadm
//     resize RES/VNR` once;
//   - once every replica (diskless ones too, unless their node is
//     offline: a diskless client takes the size from its peers when it
//     connects) reports the DRBD device at the new size or more, the
//     request property and the flag go, which completes the REST API's
//     resize.
//
// A replica being deleted does not count. While some diskful replica is
// not ready, nothing is requested (the REST API refuses a grow up front
// when one is offline or not connected); a request already set stays,
// and its satellite checks the connections itself before it acts.
func (c *Completer) completeResize(st *state.State, rd model.ResourceDefinition, apply func(state.Command)) {
	var rscs []model.Resource
	for _, r := range st.Resources(rd.Name) {
		if !r.Flags.Has(model.RscFlagDelete) && !r.Flags.Has(model.RscFlagDrbdDelete) {
			rscs = append(rscs, r)
		}
	}
	for _, vd := range rd.VolumeDefinitions {
		if !vd.Flags.Has(model.VdFlagResize) || len(rscs) == 0 {
			continue
		}
		target := state.Target{Kind: model.ObjVolumeDefinition, ResourceDefinition: rd.Name, VolumeNumber: vd.VolumeNumber}
		if c.allResized(rscs, vd) {
			if _, ok := vd.Props[satellite.PropResizeRequest]; ok {
				apply(&state.SetProps{Target: target, Change: model.PropsChange{Delete: []string{satellite.PropResizeRequest}}})
			}
			apply(&state.SetFlags{Target: target, Clear: []string{model.VdFlagResize}})
			continue
		}
		node, ok := c.resizeCoordinator(rscs, vd)
		if !ok {
			continue
		}
		want := satellite.FormatResizeRequest(node, vd.SizeKiB)
		if vd.Props[satellite.PropResizeRequest] != want {
			apply(&state.SetProps{Target: target, Change: model.PropsChange{Set: model.Props{satellite.PropResizeRequest: want}}})
		}
	}
}

// allResized reports whether every replica reports the DRBD device of
// vd at its size or more.
func (c *Completer) allResized(rscs []model.Resource, vd model.VolumeDefinition) bool {
	for _, r := range rscs {
		rep, at, ok := c.Store.Report(r.Node)
		if r.Diskless() && (!ok || !c.Store.online(at)) {
			// A diskless client learns the size from its peers when it
			// connects again; it does not hold up the grow.
			continue
		}
		if !ok || rep.ObserveError != "" {
			return false
		}
		k, ok := rep.Resource(r.Name)
		if !ok {
			return false
		}
		i := slices.IndexFunc(k.Devices, func(d drbd.ObservedDevice) bool { return d.Volume == vd.VolumeNumber })
		if i < 0 || int64(k.Devices[i].SizeKiB) < vd.SizeKiB {
			return false
		}
	}
	return true
}

// resizeCoordinator returns the node that is to run drbdadm resize for
// vd, when every diskful replica is ready for it (see completeResize).
func (c *Completer) resizeCoordinator(rscs []model.Resource, vd model.VolumeDefinition) (string, bool) {
	diskful := map[int]bool{}
	for _, r := range rscs {
		if !r.Diskless() {
			diskful[r.NodeID] = true
		}
	}
	coordinator, lowest := "", -1
	for _, r := range rscs {
		if r.Diskless() {
			continue
		}
		rep, at, ok := c.Store.Report(r.Node)
		if !ok || rep.ObserveError != "" || !c.Store.online(at) {
			return "", false
		}
		peers := r.PeerSlots
		if peers <= 0 {
			peers = model.DefaultPeerSlots
		}
		size, ok := rep.Size(r.Name, vd.VolumeNumber)
		if !ok || size.LVKiB < satellite.GrossKiB(vd.SizeKiB, peers) {
			return "", false
		}
		k, ok := rep.Resource(r.Name)
		if !ok {
			return "", false
		}
		i := slices.IndexFunc(k.Devices, func(d drbd.ObservedDevice) bool { return d.Volume == vd.VolumeNumber })
		if i < 0 || k.Devices[i].Disk != drbd.DiskUpToDate {
			return "", false
		}
		for id := range diskful {
			if id == r.NodeID {
				continue
			}
			ci := slices.IndexFunc(k.Connections, func(x drbd.ObservedConnection) bool { return x.PeerNodeID == id })
			if ci < 0 || k.Connections[ci].Connection != drbd.ConnConnected {
				return "", false
			}
			pd := slices.IndexFunc(k.Connections[ci].PeerDevices, func(x drbd.ObservedPeerDevice) bool { return x.Volume == vd.VolumeNumber })
			if pd < 0 || k.Connections[ci].PeerDevices[pd].Replication != drbd.ReplEstablished {
				return "", false
			}
		}
		if lowest < 0 || r.NodeID < lowest {
			coordinator, lowest = r.Node, r.NodeID
		}
	}
	return coordinator, lowest >= 0
}
