package sim

import (
	"fmt"
	"io"
	"io/fs"
	"maps"
	"slices"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/pvehci/pvehci/storage/drbd"
)

// bmBlock is DRBD's bitmap granularity: one bit per 4 KiB block (DRBD
// guide 23.1 "DRBD meta data": the bitmap tracks 4KiB blocks).
const bmBlock = 4096

// Network connects simulated hosts for DRBD. Links between two hosts can
// be cut and healed; a resource's connection is Connected when both hosts
// have the resource up, their link is not cut and neither side stands
// alone. All DRBD state of all attached hosts is guarded by one lock, so a
// replicated write is atomic across the nodes (a synchronous protocol C
// write, with no in-flight window).
type Network struct {
	mu    sync.Mutex
	hosts map[string]*Host
	cut   map[[2]string]bool
	seq   uint64 // source of generation UUIDs, deterministic for tests
	// tick is the wall time one Resync call stands for; it turns a
	// SyncTarget's c-max-rate into blocks per call (SetResyncTick).
	tick time.Duration
	// changed is closed (and replaced) at the end of every update, which
	// wakes the live events2 streams (events2stream.go).
	changed chan struct{}
}

// SetResyncTick says how much time one Resync call stands for (default
// 100 ms), so that a SyncTarget's c-max-rate limits its resync per call.
func (n *Network) SetResyncTick(d time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.tick = d
}

// rateBlocks is how many 4 KiB blocks a SyncTarget with configuration cfg
// takes per Resync call: c-max-rate (guide 5.11.3 "Variable sync rate
// configuration": the upper limit of the dynamic resync controller, in
// KiB/s unless suffixed K, M or G) over one tick, at least one block; -1
// without a cap.
func (n *Network) rateBlocks(cfg *resConfig) int {
	kib, ok := drbd.ParseRate(cfg.options["c-max-rate"])
	if !ok {
		return -1
	}
	tick := n.tick
	if tick <= 0 {
		tick = 100 * time.Millisecond
	}
	return max(1, int(float64(kib)*tick.Seconds()/(bmBlock/1024)))
}

// NewNetwork returns a network without hosts.
func NewNetwork() *Network {
	return &Network{hosts: map[string]*Host{}, cut: map[[2]string]bool{}}
}

// Attach puts h on the network; until then h has no DRBD module (its
// drbdadm and drbdsetup fail as on a kernel without DRBD).
func (n *Network) Attach(h *Host) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.hosts[h.name] = h
	h.mu.Lock()
	h.net = n
	h.drbd = &drbdHost{meta: map[*logicalVolume]*drbdMeta{}, res: map[string]*drbdRes{}}
	h.mu.Unlock()
}

func link(a, b string) [2]string {
	if a > b {
		a, b = b, a
	}
	return [2]string{a, b}
}

// Cut breaks the link between hosts a and b (both directions).
func (n *Network) Cut(a, b string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cut[link(a, b)] = true
	n.update()
}

// Isolate cuts every link of host at once, as a failed switch port or a
// crashed node looks to its peers.
func (n *Network) Isolate(host string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for other := range n.hosts {
		if other != host {
			n.cut[link(host, other)] = true
		}
	}
	n.update()
}

// Heal restores the link between a and b; connections come back and
// resync starts where needed.
func (n *Network) Heal(a, b string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.cut, link(a, b))
	n.update()
}

// Resync copies up to blocks out-of-sync 4 KiB blocks on every running
// resync, so a test can observe SyncSource/SyncTarget with progress.
func (n *Network) Resync(blocks int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.resync(blocks, true)
	n.update()
}

// Settle runs every resync to completion.
func (n *Network) Settle() {
	n.mu.Lock()
	defer n.mu.Unlock()
	// However long it takes: c-max-rate does not apply.
	n.resync(-1, false)
	n.update()
}

func (n *Network) newUUID() uint64 {
	n.seq++
	// The lowest bit encodes the role (guide 23.2.1); keep it clear.
	return (0x9e3779b97f4a7c15 * n.seq) &^ 1
}

// drbdHost is the DRBD state of one host: on-disk metadata by backing
// device and the resources that are up.
type drbdHost struct {
	// meta is keyed by the LV rather than its path: metadata lives in the
	// LV's last blocks, so an LV removed and created again under the same
	// name has none.
	meta map[*logicalVolume]*drbdMeta
	res  map[string]*drbdRes
}

// drbdMeta is internal metadata on a backing device: it outlives down/up.
// It keeps the generation identifiers (guide 23.2.2: current UUID, bitmap
// UUID per peer) and the per-peer out-of-sync bitmap.
type drbdMeta struct {
	current    uint64
	bitmapUUID map[int]uint64
	oos        map[int]map[uint64]bool
	// fullSync holds the peers toward which this disk started a full
	// sync that has not ended: all their bits were set then (guide 4.6,
	// 13.1.3), so what is still marked is what is left to copy. Bits
	// marked for a peer without it come from writes only (a peer
	// configured with a disk it has not attached yet) and say nothing
	// about the rest of a new disk.
	fullSync map[int]bool
	disk     drbd.DiskState // Inconsistent, Outdated or UpToDate
	maxPeers int
	// at is the backing size, in bytes, whose end holds the metadata:
	// an LV grown since keeps it at the old end (checkresize.go).
	at uint64
}

// usableSize is the size of a DRBD device on a backing device of size
// bytes with internal metadata for maxPeers peers. The metadata takes
// Ms = ceil(Cs / 2^18) * 8 * N + 72 sectors at the end (guide 23.1.3
// "Estimating meta data size", exact formula; Cs the device in sectors, N
// the peers); the rest is rounded down to the 4 KiB bitmap granularity.
// The metadata itself is kept out of band: the simulation does not write
// it into the LV.
func usableSize(size uint64, maxPeers int) uint64 {
	cs := size / 512
	ms := (cs+1<<18-1)>>18*8*uint64(maxPeers) + 72
	if ms*512 >= size {
		return 0
	}
	return (size - ms*512) / bmBlock * bmBlock
}

// clone is a deep copy: the metadata a block-level copy of the backing
// device (a thin snapshot) carries.
func (m *drbdMeta) clone() *drbdMeta {
	c := *m
	c.bitmapUUID = maps.Clone(m.bitmapUUID)
	c.fullSync = maps.Clone(m.fullSync)
	c.oos = make(map[int]map[uint64]bool, len(m.oos))
	for id, blocks := range m.oos {
		c.oos[id] = maps.Clone(blocks)
	}
	return &c
}

func (m *drbdMeta) mark(peer int, blk uint64) {
	if m.oos[peer] == nil {
		m.oos[peer] = map[uint64]bool{}
	}
	m.oos[peer][blk] = true
}

type drbdRes struct {
	name   string
	cfg    *resConfig
	self   *resNode
	role   drbd.Role
	auto   bool // promoted by opening the device (guide 2.5)
	user   bool // suspend-io
	quorum bool
	vols   map[int]*drbdVol
	conns  map[int]*drbdConn
}

type drbdVol struct {
	nr, minor     int
	diskPath      string // "" for a diskless client
	backing       *Device
	meta          *drbdMeta
	disk          drbd.DiskState
	size          uint64
	read, written uint64 // KiB
	open          int
}

type drbdConn struct {
	peer        *resNode
	established bool
	// justLost is set during the update in which an established
	// connection went down: the outdate-via-a-common-peer rule of
	// computeQuorum reacts to that loss, not to a link that is merely
	// not up yet.
	justLost    bool
	standAlone  bool   // split brain or drbdadm disconnect
	syncState   string // SplitBrain, Unrelated
	discardMine bool   // connect --discard-my-data
	pv          map[int]*peerVol
}

type peerVol struct {
	repl        drbd.ReplState
	total, done uint64 // resync blocks
	sent, recv  uint64 // KiB
}

// peerOf returns the other host's view of this resource, or nil.
func (n *Network) peerRes(r *drbdRes, c *drbdConn) *drbdRes {
	h := n.hosts[c.peer.name]
	if h == nil || h.drbd == nil {
		return nil
	}
	return h.drbd.res[r.name]
}

func (n *Network) hostOf(r *drbdRes) *Host { return n.hosts[r.self.name] }

// update recomputes connections, handshakes, quorum and derived states
// after anything changed. It is the simulation's "state engine".
func (n *Network) update() {
	names := make([]string, 0, len(n.hosts))
	for name := range n.hosts {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, hn := range names {
		h := n.hosts[hn]
		for _, r := range h.drbd.sortedRes() {
			for _, c := range r.sortedConns() {
				p := n.peerRes(r, c)
				pc := (*drbdConn)(nil)
				if p != nil {
					pc = p.conns[r.self.nodeID]
				}
				up := p != nil && pc != nil && !n.cut[link(hn, c.peer.name)] && !c.standAlone && !pc.standAlone
				switch {
				case up && !c.established:
					n.handshake(r, c, p, pc)
				case !up && c.established:
					c.established, c.justLost = false, true
					pc := pc
					if pc != nil && pc.established {
						pc.established, pc.justLost = false, true
						n.lostPeer(p, pc)
					}
					n.lostPeer(r, c)
				}
			}
		}
	}
	for _, hn := range names {
		for _, r := range n.hosts[hn].drbd.sortedRes() {
			n.computeQuorum(r)
		}
	}
	for _, hn := range names {
		for _, r := range n.hosts[hn].drbd.sortedRes() {
			for _, c := range r.conns {
				c.justLost = false
			}
		}
	}
	if n.changed != nil {
		close(n.changed)
		n.changed = nil
	}
}

// changedChan returns a channel closed at the end of the next update.
// Called with n.mu held.
func (n *Network) changedChan() <-chan struct{} {
	if n.changed == nil {
		n.changed = make(chan struct{})
	}
	return n.changed
}

// lostPeer handles a connection going down: a Primary starts a new data
// generation (guide 23.2.3 "When a node in Primary role loses connection
// to its peer ... creates a new UUID").
func (n *Network) lostPeer(r *drbdRes, c *drbdConn) {
	// A SyncTarget cut off mid-resync stays Inconsistent; its source
	// keeps the remaining blocks in its bitmap.
	for _, pv := range c.pv {
		pv.repl = drbd.ReplOff
		pv.total, pv.done = 0, 0
	}
	if r.role == drbd.RolePrimary {
		n.newGeneration(r)
	}
}

// newGeneration rotates the current UUID of every attached volume of a
// Primary (guide 23.2.3: the old one becomes the bitmap UUID). Connected
// UpToDate peers follow (they share the generation, guide 23.2.1), and
// every node that moves on starts tracking, against the old UUID, the
// peers that stay behind, so any of them can later resync those peers.
func (n *Network) newGeneration(r *drbdRes) {
	for nr, v := range r.vols {
		if v.meta == nil || v.disk != drbd.DiskUpToDate {
			continue
		}
		old, u := v.meta.current, n.newUUID()
		movers := []*drbdRes{r}
		for _, c := range r.conns {
			if p := n.peerRes(r, c); c.established && p != nil {
				if pv := p.vols[nr]; pv != nil && pv.meta != nil && pv.disk == drbd.DiskUpToDate && pv.meta.current == old {
					movers = append(movers, p)
				}
			}
		}
		moved := map[int]bool{}
		for _, m := range movers {
			moved[m.self.nodeID] = true
		}
		for _, m := range movers {
			mm := m.vols[nr].meta
			mm.current = u
			for _, node := range m.cfg.nodes {
				if node != m.self && node.diskful() && !moved[node.nodeID] && mm.bitmapUUID[node.nodeID] == 0 {
					mm.bitmapUUID[node.nodeID] = old
				}
			}
		}
	}
}

// handshake connects r and p (c and pc are their connections to each
// other) and decides, per volume, between no resync, a resync in either
// direction and split brain, by the generation identifiers (guide 23.2.4
// "Generation identifier handshake"; guide 2.11 for split brain).
func (n *Network) handshake(r *drbdRes, c *drbdConn, p *drbdRes, pc *drbdConn) {
	type plan struct {
		nr       int
		src, dst *drbdVol
		srcRes   *drbdRes
		full     bool
	}
	var plans []plan
	split := ""
	for nr, a := range r.vols {
		b := p.vols[nr]
		// A diskless volume learns its size from a peer with a disk.
		if b != nil && a.meta == nil && b.size > a.size {
			a.size = b.size
		}
		if b != nil && b.meta == nil && a.size > b.size {
			b.size = a.size
		}
		if b == nil || a.meta == nil || b.meta == nil {
			continue // a diskless side: nothing to compare
		}
		am, bm := a.meta, b.meta
		ai, bi := p.self.nodeID, r.self.nodeID // a's slot for b, b's slot for a
		switch {
		case c.discardMine:
			plans = append(plans, plan{nr: nr, src: b, dst: a, srcRes: p})
		case pc.discardMine:
			plans = append(plans, plan{nr: nr, src: a, dst: b, srcRes: r})
		case am.current == 0 && bm.current == 0:
			// Both just created: nothing to sync until one side is made
			// UpToDate (guide 4.6 "Initializing your cluster").
		case am.current == bm.current:
			if a.disk == drbd.DiskUpToDate && b.disk == drbd.DiskOutdated {
				b.disk, bm.disk = drbd.DiskUpToDate, drbd.DiskUpToDate
			} else if b.disk == drbd.DiskUpToDate && a.disk == drbd.DiskOutdated {
				a.disk, am.disk = drbd.DiskUpToDate, drbd.DiskUpToDate
			}
			if len(am.oos[ai]) > 0 || len(bm.oos[bi]) > 0 {
				// Only UpToDate data is a sync source: between two
				// Inconsistent disks (two SyncTargets of a third node)
				// nothing moves.
				switch {
				case a.disk == drbd.DiskUpToDate:
					plans = append(plans, plan{nr: nr, src: a, dst: b, srcRes: r})
				case b.disk == drbd.DiskUpToDate:
					plans = append(plans, plan{nr: nr, src: b, dst: a, srcRes: p})
				}
			}
		case (bm.current == 0 || b.disk == drbd.DiskInconsistent && am.bitmapUUID[ai] == 0) && a.disk == drbd.DiskUpToDate:
			plans = append(plans, plan{nr: nr, src: a, dst: b, srcRes: r, full: true})
		case (am.current == 0 || a.disk == drbd.DiskInconsistent && bm.bitmapUUID[bi] == 0) && b.disk == drbd.DiskUpToDate:
			plans = append(plans, plan{nr: nr, src: b, dst: a, srcRes: p, full: true})
		case am.current == 0 || bm.current == 0:
			// A fresh disk syncs in full, and only from an UpToDate peer:
			// an Inconsistent peer (itself a SyncTarget) is no source
			// (guide 4.6, 2.7: only UpToDate data is a sync source).
			// It waits for one; a peer that becomes UpToDate is
			// compared again then.
		case am.bitmapUUID[ai] == bm.current:
			plans = append(plans, plan{nr: nr, src: a, dst: b, srcRes: r})
		case bm.bitmapUUID[bi] == am.current:
			plans = append(plans, plan{nr: nr, src: b, dst: a, srcRes: p})
		case am.bitmapUUID[ai] != 0 && am.bitmapUUID[ai] == bm.bitmapUUID[bi]:
			split = "SplitBrain"
		default:
			split = "Unrelated"
		}
	}
	if split != "" {
		// Both sides refuse the connection and stand alone (guide 13.3
		// "Manual split brain recovery").
		for _, x := range []*drbdConn{c, pc} {
			x.standAlone, x.syncState, x.established = true, split, false
		}
		return
	}
	c.established, pc.established = true, true
	c.syncState, pc.syncState = "", ""
	c.discardMine, pc.discardMine = false, false
	for nr := range r.vols {
		for _, x := range []*drbdConn{c, pc} {
			if x.pv[nr] == nil {
				x.pv[nr] = &peerVol{}
			}
			x.pv[nr].repl = drbd.ReplEstablished
		}
	}
	for _, pl := range plans {
		srcID, dstID := pl.srcRes.self.nodeID, r.self.nodeID
		srcConn, dstConn := pc, c
		if pl.srcRes == r {
			dstID = p.self.nodeID
			srcConn, dstConn = c, pc
		}
		blocks := map[uint64]bool{}
		// A full sync marks every block; an interrupted one resumes with
		// the blocks its source still has marked. Blocks marked by
		// writes alone (a disk configured on the peer but not attached
		// yet) are no resumed sync: a new disk needs all of them.
		if pl.full && !pl.src.meta.fullSync[dstID] {
			for b := range (pl.dst.size + bmBlock - 1) / bmBlock {
				blocks[b] = true
			}
			if pl.src.meta.fullSync == nil {
				pl.src.meta.fullSync = map[int]bool{}
			}
			pl.src.meta.fullSync[dstID] = true
		}
		for b := range pl.src.meta.oos[dstID] {
			blocks[b] = true
		}
		for b := range pl.dst.meta.oos[srcID] {
			blocks[b] = true
		}
		pl.src.meta.oos[dstID], pl.dst.meta.oos[srcID] = blocks, blocks
		// The target's data is unusable until the resync ends.
		pl.dst.disk, pl.dst.meta.disk = drbd.DiskInconsistent, drbd.DiskInconsistent
		if len(blocks) == 0 {
			n.finishSync(r.name, pl.nr, pl.src, pl.dst, srcID, dstID)
			continue
		}
		srcConn.pv[pl.nr].repl, srcConn.pv[pl.nr].total, srcConn.pv[pl.nr].done = drbd.ReplSyncSource, uint64(len(blocks)), 0
		dstConn.pv[pl.nr].repl, dstConn.pv[pl.nr].total, dstConn.pv[pl.nr].done = drbd.ReplSyncTarget, uint64(len(blocks)), 0
	}
}

// finishSync: "the synchronization target adopts the entire GI tuple from
// the synchronization source" (guide 23.2.3 "Completion of
// re-synchronization").
//
// Every other node of the same generation is now in sync with the target
// and stops tracking it.
func (n *Network) finishSync(name string, nr int, src, dst *drbdVol, srcID, dstID int) {
	dst.meta.current = src.meta.current
	clear(dst.meta.bitmapUUID)
	for k, v := range src.meta.bitmapUUID {
		if k != dstID {
			dst.meta.bitmapUUID[k] = v
		}
	}
	delete(src.meta.bitmapUUID, dstID)
	delete(src.meta.oos, dstID)
	delete(src.meta.fullSync, dstID)
	delete(dst.meta.oos, srcID)
	dst.disk, dst.meta.disk = drbd.DiskUpToDate, drbd.DiskUpToDate
	for _, h := range n.hosts {
		if x := h.drbd.res[name]; x != nil && x.vols[nr] != nil && x.vols[nr].meta != nil && x.vols[nr] != dst &&
			x.vols[nr].meta.current == dst.meta.current {
			delete(x.vols[nr].meta.oos, dstID)
			delete(x.vols[nr].meta.bitmapUUID, dstID)
			delete(x.vols[nr].meta.fullSync, dstID)
		}
	}
}

// resync copies out-of-sync blocks from each SyncSource to its target.
func (n *Network) resync(limit int, capped bool) {
	for _, h := range n.hosts {
		for _, r := range h.drbd.res {
			for _, c := range r.conns {
				if !c.established {
					continue
				}
				p := n.peerRes(r, c)
				for nr, pv := range c.pv {
					if pv.repl != drbd.ReplSyncSource {
						continue
					}
					src, dst := r.vols[nr], p.vols[nr]
					if src.backing == nil || dst == nil || dst.backing == nil {
						continue // a disk went away (detached, failed) mid-resync
					}
					if src.disk != drbd.DiskUpToDate {
						continue // only UpToDate data is a sync source
					}
					pc := p.conns[r.self.nodeID]
					blocks := slices.Sorted(func(yield func(uint64) bool) {
						for b := range src.meta.oos[p.self.nodeID] {
							if !yield(b) {
								return
							}
						}
					})
					buf := make([]byte, bmBlock)
					lim := limit
					if c := n.rateBlocks(p.cfg); capped && c >= 0 && (lim < 0 || c < lim) {
						lim = c
					}
					for i, b := range blocks {
						if lim >= 0 && i >= lim {
							break
						}
						off := int64(b * bmBlock)
						m, _ := src.backing.ReadAt(buf, off)
						if _, err := dst.backing.WriteAt(buf[:m], off); err != nil {
							continue // stays out of sync (e.g. a full thin pool)
						}
						delete(src.meta.oos[p.self.nodeID], b)
						pv.done++
						pv.sent += bmBlock / 1024
						pc.pv[nr].done++
						pc.pv[nr].recv += bmBlock / 1024
					}
					if len(src.meta.oos[p.self.nodeID]) == 0 {
						n.finishSync(r.name, nr, src, dst, r.self.nodeID, p.self.nodeID)
						pv.repl, pc.pv[nr].repl = drbd.ReplEstablished, drbd.ReplEstablished
					}
				}
			}
		}
	}
}

// computeQuorum applies guide 11.21: with `quorum majority` a partition
// has quorum when it holds more than half of the votes; every node with a
// disk votes, diskless nodes do not (11.21.1). At exactly half, the side
// that reaches the majority of the diskless nodes has quorum: they are the
// tiebreaker (11.21.3). When the link between a Primary and a Secondary
// breaks but both still reach the tiebreaker, "the primary can continue
// working, while the secondary demotes its disk to Outdated" (11.21.3):
// the Secondary is outdated when its link to a Primary breaks while both
// still reach a common peer. A link that is not up yet (a partition
// healing one link at a time) outdates nothing: the node was not cut off
// from a Primary it was replicating from, and its data is compared with
// the peers' at the handshakes.
func (n *Network) computeQuorum(r *drbdRes) {
	q := r.cfg.options["quorum"]
	if q == "" || q == "off" {
		r.quorum = true
	} else {
		voters, votes, diskless, tiebreakers := 0, 0, 0, 0
		for _, node := range r.cfg.nodes {
			if node.diskful() {
				voters++
			} else if node != r.self {
				diskless++
			}
		}
		if r.self.diskful() {
			votes++
		}
		for _, c := range r.conns {
			switch {
			case !c.established:
			case c.peer.diskful():
				votes++
			default:
				tiebreakers++
			}
		}
		fixed, numeric := 0, false
		if _, err := fmt.Sscanf(q, "%d", &fixed); err == nil {
			numeric = true // "quorum N": at least N votes (guide 11.21)
		}
		switch {
		case voters == 0:
			r.quorum = true
		case numeric:
			r.quorum = votes >= fixed
		case q == "all":
			r.quorum = votes == voters
		default:
			r.quorum = 2*votes > voters || 2*votes == voters && 2*tiebreakers > diskless
		}
	}
	if r.role != drbd.RoleSecondary {
		return
	}
	for _, c := range r.conns {
		p := n.peerRes(r, c)
		if !c.established || p == nil {
			continue
		}
		for _, pc := range p.conns {
			pp := n.peerRes(p, pc)
			if !pc.established || pp == nil || pp == r || pp.role != drbd.RolePrimary {
				continue
			}
			if direct := r.conns[pp.self.nodeID]; direct != nil && !direct.established && direct.justLost {
				for _, v := range r.vols {
					if v.meta != nil && v.disk == drbd.DiskUpToDate {
						v.disk, v.meta.disk = drbd.DiskOutdated, drbd.DiskOutdated
					}
				}
			}
		}
	}
}

// mayPromote reports why r cannot become Primary, as drbdsetup's state
// change failure; "" means it can (guide 2.5: auto-promote succeeds only
// when an explicit `drbdadm primary` would).
//
// A connected peer in the Primary role forbids it, unless the connection
// is in dual-primary mode (guide 2.2, 11.8.1: `allow-two-primaries yes`
// in the net section, which both sides must have, since DRBD refuses to
// connect peers whose net options disagree); even then "DRBD 9.0.x
// Dual-Primary mode is limited to exactly 2 Primaries for the use in live
// migration" (11.8), so a second connected Primary forbids it too.
func (n *Network) mayPromote(r *drbdRes, force bool) string {
	primaries := 0
	for _, c := range r.conns {
		p := n.peerRes(r, c)
		if !c.established || p == nil || p.role != drbd.RolePrimary {
			continue
		}
		primaries++
		if primaries > 1 || !twoPrimaries(r) || !twoPrimaries(p) {
			return "(-1) Multiple primaries not allowed by config"
		}
	}
	if !r.quorum && !force {
		return "(-23) No quorum"
	}
	for nr, v := range r.vols {
		if v.disk == drbd.DiskUpToDate || force && v.meta != nil {
			continue
		}
		ok := false
		for _, c := range r.conns {
			if p := n.peerRes(r, c); c.established && p != nil && p.vols[nr] != nil && p.vols[nr].disk == drbd.DiskUpToDate {
				ok = true // a diskless Primary reads and writes through its peer
			}
		}
		if !ok {
			return "(-2) Need access to UpToDate data"
		}
	}
	return ""
}

// twoPrimaries reports whether r's configuration allows dual-primary
// mode (guide 11.8.1).
func twoPrimaries(r *drbdRes) bool { return r.cfg.net["allow-two-primaries"] == "yes" }

// promote makes r Primary. With force, Inconsistent local disks become
// UpToDate and start a new generation (guide 4.6: `drbdadm primary
// --force` starts the initial full sync toward the peers).
func (n *Network) promote(r *drbdRes, force bool) {
	if force {
		for _, v := range r.vols {
			if v.meta != nil && v.disk != drbd.DiskUpToDate {
				v.disk, v.meta.disk = drbd.DiskUpToDate, drbd.DiskUpToDate
				v.meta.current = n.newUUID()
				clear(v.meta.bitmapUUID)
				for _, c := range r.conns {
					if c.established {
						// Reconnect-style full sync toward every peer.
						c.established = false
						if p := n.peerRes(r, c); p != nil {
							p.conns[r.self.nodeID].established = false
						}
					}
				}
			}
		}
	}
	r.role = drbd.RolePrimary
	// "A disconnected resource switching to the primary role" starts a
	// new data generation (guide 23.2.1).
	for _, c := range r.conns {
		if !c.established {
			n.newGeneration(r)
			break
		}
	}
	n.update()
}

// DRBDDevice is an open /dev/drbdN: reads and writes go through the DRBD
// model (local backing device and replication to connected peers).
type DRBDDevice struct {
	n     *Network
	r     *drbdRes
	v     *drbdVol
	path  string
	write bool
	once  sync.Once
}

// OpenDRBD opens the DRBD device at path (/dev/drbdMINOR). Opening for
// writing auto-promotes the resource (guide 2.5 "Automatic Promotion of
// Resources"), and fails like the open(2) of a real device (EROFS) when
// promotion is not possible; closing the last writer demotes it again.
func (h *Host) OpenDRBD(path string, write bool) (*DRBDDevice, error) {
	n := h.network()
	if n == nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: syscall.ENOENT}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	var minor int
	if _, err := fmt.Sscanf(path, "/dev/drbd%d", &minor); err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: syscall.ENOENT}
	}
	for _, r := range h.drbd.res {
		for _, v := range r.vols {
			if v.minor != minor {
				continue
			}
			if write && r.role != drbd.RolePrimary {
				if r.cfg.options["auto-promote"] == "no" || n.mayPromote(r, false) != "" {
					return nil, &fs.PathError{Op: "open", Path: path, Err: syscall.EROFS}
				}
				n.promote(r, false)
				r.auto = true
			}
			v.open++
			return &DRBDDevice{n: n, r: r, v: v, path: path, write: write}, nil
		}
	}
	return nil, &fs.PathError{Op: "open", Path: path, Err: syscall.ENOENT}
}

// Close closes the device; the last close of an auto-promoted resource
// demotes it to Secondary (guide 2.5).
func (d *DRBDDevice) Close() error {
	d.once.Do(func() {
		d.n.mu.Lock()
		defer d.n.mu.Unlock()
		d.v.open--
		if d.r.auto && d.r.role == drbd.RolePrimary {
			for _, v := range d.r.vols {
				if v.open > 0 {
					return
				}
			}
			d.r.role, d.r.auto = drbd.RoleSecondary, false
			d.n.update()
		}
	})
	return nil
}

// ioBlocked returns the errno for I/O that the resource does not serve
// now: EIO without quorum and on-no-quorum io-error (guide 11.21.2),
// EAGAIN where the kernel would block (suspended I/O).
func (d *DRBDDevice) ioBlocked() error {
	r := d.r
	if _, ok := d.n.hostOf(r).drbd.res[r.name]; !ok || d.n.hostOf(r).drbd.res[r.name] != r {
		return syscall.ENXIO
	}
	if r.user || !r.quorum && r.cfg.options["on-no-quorum"] == "suspend-io" {
		return syscall.EAGAIN
	}
	if !r.quorum {
		return syscall.EIO
	}
	return nil
}

// ReadAt reads from the local disk when UpToDate, else from a connected
// UpToDate peer (a diskless client).
func (d *DRBDDevice) ReadAt(p []byte, off int64) (int, error) {
	d.n.mu.Lock()
	defer d.n.mu.Unlock()
	// Guide 11.21.2: without quorum "IO immediately starts to complete
	// all IO requests with errors", reads included.
	if err := d.ioBlocked(); err != nil {
		return 0, &IOError{Op: "read", Path: d.path, Off: off, Err: err.(syscall.Errno)}
	}
	src := d.readSource()
	if src == nil {
		return 0, &IOError{Op: "read", Path: d.path, Off: off, Err: syscall.EIO}
	}
	if uint64(off) >= d.v.size {
		return 0, io.EOF
	}
	if rem := d.v.size - uint64(off); uint64(len(p)) > rem {
		p = p[:rem]
	}
	k, err := src.backing.ReadAt(p, off)
	d.v.read += uint64(k) / 1024
	return k, err
}

func (d *DRBDDevice) readSource() *drbdVol {
	if d.v.disk == drbd.DiskUpToDate {
		return d.v
	}
	for _, c := range d.r.sortedConns() {
		if p := d.n.peerRes(d.r, c); c.established && p != nil {
			if pv := p.vols[d.v.nr]; pv != nil && pv.disk == drbd.DiskUpToDate {
				return pv
			}
		}
	}
	return nil
}

// WriteAt writes on a Primary: to the local disk and, block for block, to
// every connected peer's disk; a peer that is not connected gets the
// blocks marked out of sync in the bitmap for it (guide 2.7 "Efficient
// synchronization", 23.2 bitmap UUIDs).
func (d *DRBDDevice) WriteAt(p []byte, off int64) (int, error) {
	d.n.mu.Lock()
	defer d.n.mu.Unlock()
	if !d.write || d.r.role != drbd.RolePrimary {
		return 0, &IOError{Op: "write", Path: d.path, Off: off, Err: syscall.EROFS}
	}
	if err := d.ioBlocked(); err != nil {
		return 0, &IOError{Op: "write", Path: d.path, Off: off, Err: err.(syscall.Errno)}
	}
	if off < 0 || uint64(off)+uint64(len(p)) > d.v.size {
		return 0, &IOError{Op: "write", Path: d.path, Off: off, Err: syscall.ENOSPC}
	}
	if d.readSource() == nil {
		return 0, &IOError{Op: "write", Path: d.path, Off: off, Err: syscall.EIO}
	}
	first, last := uint64(off)/bmBlock, (uint64(off)+uint64(len(p))-1)/bmBlock
	wrote := false
	var reached []*drbdRes
	// An attached disk gets the write whatever its state: a SyncTarget
	// (Inconsistent) keeps the blocks it was written, and the ones not
	// yet resynchronized stay marked at its source.
	if d.v.backing != nil {
		if _, err := d.v.backing.WriteAt(p, off); err != nil {
			return 0, err
		}
		wrote = true
		reached = append(reached, d.r)
	}
	for _, c := range d.r.sortedConns() {
		pr := d.n.peerRes(d.r, c)
		var pv *drbdVol
		if pr != nil {
			pv = pr.vols[d.v.nr]
		}
		replicate := c.established && pv != nil && pv.backing != nil
		if replicate {
			if _, err := pv.backing.WriteAt(p, off); err != nil {
				replicate = false // the peer's disk failed the write
			} else {
				for b := first; b <= last && d.v.meta != nil; b++ {
					delete(d.v.meta.oos[c.peer.nodeID], b) // now in sync
				}
				wrote = true
				if x := c.pv[d.v.nr]; x != nil {
					x.sent += uint64(len(p)) / 1024
				}
				if x := pr.conns[d.r.self.nodeID].pv[d.v.nr]; x != nil {
					x.recv += uint64(len(p)) / 1024
				}
				pv.written += uint64(len(p)) / 1024
			}
		}
		if replicate {
			reached = append(reached, pr)
		}
	}
	// Every node that got the write tracks the diskful nodes that did
	// not, so that any of them can resync those later.
	got := map[int]bool{}
	for _, x := range reached {
		got[x.self.nodeID] = true
	}
	for _, x := range reached {
		xv := x.vols[d.v.nr]
		if xv == nil || xv.meta == nil {
			continue
		}
		for _, node := range x.cfg.nodes {
			if node.diskful() && !got[node.nodeID] {
				for b := first; b <= last; b++ {
					xv.meta.mark(node.nodeID, b)
				}
			}
		}
	}
	if !wrote {
		return 0, &IOError{Op: "write", Path: d.path, Off: off, Err: syscall.EIO}
	}
	d.v.written += uint64(len(p)) / 1024
	return len(p), nil
}

func (dh *drbdHost) sortedRes() []*drbdRes {
	out := make([]*drbdRes, 0, len(dh.res))
	for _, r := range dh.res {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

func (r *drbdRes) sortedConns() []*drbdConn {
	out := make([]*drbdConn, 0, len(r.conns))
	for _, c := range r.conns {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].peer.nodeID < out[j].peer.nodeID })
	return out
}

func (r *drbdRes) sortedVols() []*drbdVol {
	out := make([]*drbdVol, 0, len(r.vols))
	for _, v := range r.vols {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].nr < out[j].nr })
	return out
}
