package sim

import (
	"fmt"
	"strconv"
)

// delPeer answers `drbdsetup del-peer RES PEER_ID`: the connection to the
// peer is taken down and removed from the running resource (drbdsetup(8)
// "del-peer"; `drbdadm adjust` runs it for a peer the configuration no
// longer names). The peer sees the connection go as a network failure. A
// peer the resource has no connection to is refused, with the kernel's
// ERR_INVALID_REQUEST wording from memory.
func (n *Network) delPeer(o *output, h *Host, args []string) {
	r, peerID, ok := resourceAndPeer(o, h, "del-peer", args)
	if !ok {
		return
	}
	c := r.conns[peerID]
	if c == nil {
		fmt.Fprintf(&o.stderr, "%s: Failure: (139) Invalid configuration request\nadditional info from kernel:\nunknown connection\n", args[0])
		o.code = drbdKernelFailure
		return
	}
	n.removeConn(r, peerID)
}

// removeConn takes r's connection to peerID away, as del-peer does.
func (n *Network) removeConn(r *drbdRes, peerID int) {
	c := r.conns[peerID]
	if c == nil {
		return
	}
	delete(r.conns, peerID)
	if p := n.peerRes(r, c); p != nil {
		if pc := p.conns[r.self.nodeID]; pc != nil && pc.established {
			pc.established = false
			n.lostPeer(p, pc)
		}
	}
	if c.established {
		c.established = false
		n.lostPeer(r, c)
	}
}

// forgetPeer answers `drbdsetup forget-peer RES PEER_ID`: "removes all
// traces of a peer node from the meta-data. It frees a bitmap slot in the
// meta-data ... The connection must be taken down before this command may
// be used. In case the peer re-connects at a later point a bit-map based
// resync will be turned into a full-sync" (drbdsetup(8) "forget-peer").
// With a connection still configured the kernel refuses with
// ERR_NET_CONFIGURED (125, drbd-utils' text). A peer without a slot is no
// error.
func (n *Network) forgetPeer(o *output, h *Host, args []string) {
	r, peerID, ok := resourceAndPeer(o, h, "forget-peer", args)
	if !ok {
		return
	}
	if r.conns[peerID] != nil {
		fmt.Fprintf(&o.stderr, "%s: Failure: (125) Device has a net-config (use disconnect first)\n", args[0])
		o.code = drbdKernelFailure
		return
	}
	for _, v := range r.vols {
		if v.meta == nil {
			continue
		}
		delete(v.meta.bitmapUUID, peerID)
		delete(v.meta.oos, peerID)
		delete(v.meta.fullSync, peerID)
	}
}

func resourceAndPeer(o *output, h *Host, cmd string, args []string) (*drbdRes, int, bool) {
	if len(args) != 2 {
		fmt.Fprintf(&o.stderr, "USAGE: drbdsetup %s {resource} {peer_node_id}\n", cmd)
		o.code = drbdUsage
		return nil, 0, false
	}
	peerID, err := strconv.Atoi(args[1])
	if err != nil || peerID < 0 {
		fmt.Fprintf(&o.stderr, "%s: peer node id %q is not a number\n", args[0], args[1])
		o.code = drbdUsage
		return nil, 0, false
	}
	r := h.drbd.res[args[0]]
	if r == nil {
		fmt.Fprintf(&o.stderr, "%s: No such resource\n", args[0])
		o.code = drbdKernelFailure
		return nil, 0, false
	}
	if peerID == r.self.nodeID {
		fmt.Fprintf(&o.stderr, "%s: Failure: (139) Invalid configuration request\nadditional info from kernel:\npeer node id %d is this node's\n", args[0], peerID)
		o.code = drbdKernelFailure
		return nil, 0, false
	}
	return r, peerID, true
}
