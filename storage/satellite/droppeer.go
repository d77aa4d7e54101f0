package satellite

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"

	"github.com/pvehci/pvehci/storage/drbd"
)

// A peer that leaves a resource.
//
// When a replica is deleted (or moves away in a relocation), the nodes
// that keep the resource drop it from their .res. `drbdadm adjust` would
// take its connection down (del-peer), but the peer's bitmap slot in the
// local metadata stays allocated, with the peer's bitmap UUID and the
// blocks marked for it: slots are few (--max-peers), and a stale bitmap
// is what LINSTOR's data-loss reports around "delete and recreate a
// replica" came from (research/linstor-server.md §3 "Delete one replica",
// §8 #4: "Keep forget-peer on delete so slots do not retain stale
// bitmaps"). So before the new .res is written and adjusted, each peer
// that the running resource or the old .res still names, and the desired
// one does not, gets [DropPeer]: `drbdsetup del-peer RES ID` while DRBD
// still has a connection to it, then `drbdsetup forget-peer RES ID`.
//
// The old .res on disk is the record that survives a crash: until it is
// rewritten, every pass plans the DropPeer again, and both commands are
// safe to repeat (del-peer only while the connection exists, forget-peer
// of a free slot is no error).

// DropPeer is `drbdsetup del-peer RES ID` (when DRBD has the connection)
// then `drbdsetup forget-peer RES ID`, for a peer the resource no longer
// has. It runs before WriteRes.
const DropPeer Kind = "DropPeer"

// resNodeID reads the node ids of a .res file as Render writes them: one
// `node-id N;` per `on` section.
var resNodeID = regexp.MustCompile(`(?m)^\s*node-id\s+(\d+)\s*;`)

// planDropPeers returns the DropPeers of running resource d, whose kernel
// state is k.
func planDropPeers(d DesiredResource, oldRes []byte, k drbd.ObservedResource) []Action {
	keep := func(id int) bool { return id == d.NodeID || slices.Contains(d.Peers, id) }
	var gone []int
	for _, m := range resNodeID.FindAllSubmatch(oldRes, -1) {
		if id, err := strconv.Atoi(string(m[1])); err == nil && !keep(id) && !slices.Contains(gone, id) {
			gone = append(gone, id)
		}
	}
	connected := map[int]bool{}
	for _, c := range k.Connections {
		connected[c.PeerNodeID] = true
		if !keep(c.PeerNodeID) && !slices.Contains(gone, c.PeerNodeID) {
			gone = append(gone, c.PeerNodeID)
		}
	}
	slices.Sort(gone)
	var out []Action
	for _, id := range gone {
		out = append(out, Action{Kind: DropPeer, Resource: d.Name, PeerNodeID: id, DelPeer: connected[id]})
	}
	return out
}

// dropPeer runs a DropPeer.
func (r *Reconciler) dropPeer(ctx context.Context, a Action) error {
	id := strconv.Itoa(a.PeerNodeID)
	if a.DelPeer {
		if _, err := r.Runner.Run(ctx, r.cmd("drbdsetup", "del-peer", a.Resource, id)); err != nil {
			return fmt.Errorf("take down the connection of %s to node id %d, which left the resource (the next pass retries): %w", a.Resource, a.PeerNodeID, err)
		}
	}
	if _, err := r.Runner.Run(ctx, r.cmd("drbdsetup", "forget-peer", a.Resource, id)); err != nil {
		return fmt.Errorf("free the bitmap slot of node id %d, which left %s (the next pass retries): %w", a.PeerNodeID, a.Resource, err)
	}
	return nil
}
