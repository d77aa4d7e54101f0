package sim

import (
	"fmt"

	"github.com/pvehci/pvehci/storage/drbd"
)

// resize implements `drbdadm [-- --assume-clean|--assume-peer-has-space]
// resize RES[/VOL]` (drbdadm(8) "resize"; drbdsetup(8) "resize"): DRBD
// re-reads the size of the backing devices and grows the device to the
// largest size every diskful replica can hold, on every connected node at
// once (the size is negotiated over the connections; diskless peers take
// it too). Called with n.mu held.
//
// The rules the simulation follows:
//
//   - the node must have a backing disk: "Failure: (138) Device does not
//     have a disk-config" (drbdsetup(8)'s list of resize failures);
//   - no resync or verify may run on the device: "Failure: (130) Resize
//     not allowed during resync." (the same list; LINSTOR retries on
//     exactly this text);
//   - the new size is the minimum, over this node and its connected
//     diskful peers, of the backing size less the internal metadata
//     (usableSize). A diskful peer that is not connected caps the size at
//     the current one, unless --assume-peer-has-space is given (drbdadm(8):
//     the option "allows you to resize a device which is currently not
//     connected to the peer"). The real kernel then leaves the size
//     unchanged and succeeds without a message on the terminal (from
//     memory of drbd_nl.c's drbd_determine_dev_size, which keeps the last
//     agreed size; the kernel log line could not be checked on this
//     machine, which has no DRBD module), so the simulation exits 0 and
//     the device does not grow. Callers must check the size in events2;
//     pvehci's satellite only runs resize while every diskful peer is
//     connected;
//   - shrinking needs --size, which is not modelled: a smaller result
//     leaves the size as it is;
//   - the new area is synchronized from this node to every connected
//     diskful peer (it is marked out of sync and a resync of just those
//     blocks starts, the peers being SyncTarget until it ends), unless
//     --assume-clean says the new storage is already identical (drbdadm(8)
//     "--assume-clean ... avoid syncing the new device space"). The old
//     area is never resynchronized. A node whose own disk is not UpToDate
//     has nothing to be the source of: the simulation then treats the
//     new area as clean (a simplification; the real kernel's choice of
//     sync direction in that case is not modelled). The internal
//     metadata is kept out of band, so the grown area of a thin LV reads
//     as zeros on every node either way.
func (n *Network) resize(o *output, r *drbdRes, vol int, assumeClean, assumePeerHasSpace bool) {
	fail := func(minor int, msg string) {
		fmt.Fprintf(&o.stderr, "%d: Failure: %s\nCommand 'drbdsetup resize %d' terminated with exit code %d\n", minor, msg, minor, drbdKernelFailure)
		o.code = drbdKernelFailure
	}
	var vols []*drbdVol
	for _, v := range r.sortedVols() {
		if vol >= 0 && v.nr != vol {
			continue
		}
		if v.backing == nil || v.meta == nil {
			fail(v.minor, "(138) Device does not have a disk-config")
			return
		}
		for _, c := range r.conns {
			if pv := c.pv[v.nr]; c.established && pv != nil && pv.repl.HasProgress() {
				fail(v.minor, "(130) Resize not allowed during resync.")
				return
			}
		}
		vols = append(vols, v)
	}
	for _, v := range vols {
		n.relayoutMeta(o, r, v) // the metadata moves to the end of each grown LV
		size := usableSize(uint64(v.backing.Size()), v.meta.maxPeers)
		var peers []*drbdRes // connected, with the volume
		for _, c := range r.sortedConns() {
			p := n.peerRes(r, c)
			var pv *drbdVol
			if p != nil {
				pv = p.vols[v.nr]
			}
			if c.established && pv != nil {
				peers = append(peers, p)
				if pv.backing != nil && pv.meta != nil {
					size = min(size, usableSize(uint64(pv.backing.Size()), pv.meta.maxPeers))
				}
				continue
			}
			if c.peer.diskful() && !assumePeerHasSpace {
				size = min(size, v.size) // the last agreed size
			}
		}
		if size <= v.size {
			continue
		}
		old := v.size
		v.size = size
		for _, p := range peers {
			p.vols[v.nr].size = size
		}
		if assumeClean || v.disk != drbd.DiskUpToDate {
			continue
		}
		for _, p := range peers {
			pv := p.vols[v.nr]
			if pv.backing == nil || pv.meta == nil {
				continue
			}
			c, pc := r.conns[p.self.nodeID], p.conns[r.self.nodeID]
			var count uint64
			for blk := old / bmBlock; blk < (size+bmBlock-1)/bmBlock; blk++ {
				v.meta.mark(p.self.nodeID, blk)
				pv.meta.mark(r.self.nodeID, blk)
				count++
			}
			for _, x := range []*drbdConn{c, pc} {
				if x.pv[v.nr] == nil {
					x.pv[v.nr] = &peerVol{}
				}
			}
			c.pv[v.nr].repl, c.pv[v.nr].total, c.pv[v.nr].done = drbd.ReplSyncSource, count, 0
			pc.pv[v.nr].repl, pc.pv[v.nr].total, pc.pv[v.nr].done = drbd.ReplSyncTarget, count, 0
			pv.disk, pv.meta.disk = drbd.DiskInconsistent, drbd.DiskInconsistent
		}
	}
}
