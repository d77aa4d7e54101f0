package sim

import (
	"fmt"
	"strconv"

	"github.com/pvehci/pvehci/storage/drbd"
)

// invalidateRemote answers `drbdsetup invalidate-remote RES PEER_ID VNR
// [--reset-bitmap=no]` (drbdsetup(8), DRBD 9; the refusals carry the
// kernel's state-change errors SS_NEED_CONNECTION, SS_NO_UP_TO_DATE_DISK,
// SS_NO_REMOTE_DISK and SS_RESYNC_RUNNING with their numbers and texts,
// exit code 11 as for the other state changes): the peer's replica of the
// volume becomes the SyncTarget of this node's. Without --reset-bitmap=no
// every block is marked out of sync first; with it only the blocks already
// marked, "usually used after an online verify operation found differences
// in the backing devices" (drbdsetup(8), since DRBD 9.0.29 and drbd-utils
// 9.17). The resync then runs as any other (Network.Resync).
func (n *Network) invalidateRemote(o *output, h *Host, args []string, flags map[string]bool) {
	for f := range flags {
		if f != "--reset-bitmap=no" {
			o.notModelled("drbdsetup", "invalidate-remote option "+f)
			o.code = drbdUsage
			return
		}
	}
	if len(args) != 3 {
		o.stderr.WriteString("USAGE: drbdsetup invalidate-remote {resource} {peer_node_id} {volume} [--reset-bitmap={yes|no}]\n")
		o.code = drbdUsage
		return
	}
	peerID, err1 := strconv.Atoi(args[1])
	nr, err2 := strconv.Atoi(args[2])
	if err1 != nil || err2 != nil {
		fmt.Fprintf(&o.stderr, "%s: peer node id and volume must be numbers\n", args[0])
		o.code = drbdUsage
		return
	}
	r := h.drbd.res[args[0]]
	if r == nil {
		fmt.Fprintf(&o.stderr, "%s: No such resource\n", args[0])
		o.code = drbdKernelFailure
		return
	}
	v, c := r.vols[nr], r.conns[peerID]
	if v == nil || c == nil {
		fmt.Fprintf(&o.stderr, "%s: No such peer device (peer node id %d, volume %d)\n", args[0], peerID, nr)
		o.code = drbdKernelFailure
		return
	}
	p := n.peerRes(r, c)
	if !c.established || p == nil || p.vols[nr] == nil || c.pv[nr] == nil {
		fmt.Fprintf(&o.stderr, "%s: State change failed: (-15) Need a connection to start verify or resync\n", args[0])
		o.code = drbdStateFailure
		return
	}
	if v.meta == nil || v.disk != drbd.DiskUpToDate {
		fmt.Fprintf(&o.stderr, "%s: State change failed: (-2) Need access to UpToDate data\n", args[0])
		o.code = drbdStateFailure
		return
	}
	pv := p.vols[nr]
	if pv.meta == nil {
		fmt.Fprintf(&o.stderr, "%s: State change failed: (-5) Can not resync without remote disk\n", args[0])
		o.code = drbdStateFailure
		return
	}
	pc := p.conns[r.self.nodeID]
	if c.pv[nr].repl != drbd.ReplEstablished {
		fmt.Fprintf(&o.stderr, "%s: State change failed: (-8) Can not start OV/resync since it is already active\n", args[0])
		o.code = drbdStateFailure
		return
	}
	marked := map[uint64]bool{}
	if !flags["--reset-bitmap=no"] {
		for b := range (pv.size + bmBlock - 1) / bmBlock {
			marked[b] = true
		}
	}
	for b := range v.meta.oos[peerID] {
		marked[b] = true
	}
	for b := range pv.meta.oos[r.self.nodeID] {
		marked[b] = true
	}
	v.meta.oos[peerID], pv.meta.oos[r.self.nodeID] = marked, marked
	if len(marked) == 0 {
		return // nothing marked: DRBD finishes the resync at once
	}
	pv.disk, pv.meta.disk = drbd.DiskInconsistent, drbd.DiskInconsistent
	c.pv[nr].repl, c.pv[nr].total, c.pv[nr].done = drbd.ReplSyncSource, uint64(len(marked)), 0
	pc.pv[nr].repl, pc.pv[nr].total, pc.pv[nr].done = drbd.ReplSyncTarget, uint64(len(marked)), 0
}
