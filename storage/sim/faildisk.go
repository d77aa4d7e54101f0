package sim

import (
	"fmt"
	"syscall"

	"github.com/pvehci/pvehci/storage/drbd"
)

// FailDisk makes a disk fail as a dead drive does: from now on every read
// and write of the logical volumes in its volume group fails with EIO, and
// attaching one to DRBD fails ("(104) Can not open backing device"). DRBD,
// whose default on-io-error policy is detach (DRBD 9 guide, "Disk error
// handling strategies"), drops every backing disk of this host on that
// group at once and goes on Diskless, serving I/O through its UpToDate
// peers; the volume keeps its disk in the configuration, so DRBD reports
// it Diskless but not a client.
func (h *Host) FailDisk(path string) error {
	h.mu.Lock()
	d, ok := h.disks[path]
	if ok {
		d.failed = true
	}
	h.mu.Unlock()
	if !ok {
		return fmt.Errorf("sim: %s has no disk %s", h.name, path)
	}
	if n := h.network(); n != nil {
		n.detachFailed(h)
	}
	return nil
}

// failed reports whether a PV of the group has failed; h.mu held.
func (vg *volumeGroup) failed() bool {
	for _, pv := range vg.pvs {
		if pv.failed {
			return true
		}
	}
	return false
}

// failedIO is the error of an I/O on a failed disk's volume; h.mu held.
func (d *Device) failedIO(op string, off int64) error {
	if d.lv.vg != nil && d.lv.vg.failed() {
		return &IOError{Op: op, Path: d.path, Off: off, Err: syscall.EIO}
	}
	return nil
}

// onFailedDisk reports whether the device is on a failed disk.
func (d *Device) onFailedDisk() bool {
	d.h.mu.Lock()
	defer d.h.mu.Unlock()
	return d.lv.vg != nil && d.lv.vg.failed()
}

// detachFailed detaches, on host h, every DRBD volume whose backing disk
// failed (on-io-error detach).
func (n *Network) detachFailed(h *Host) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if h.drbd == nil {
		return
	}
	for _, r := range h.drbd.sortedRes() {
		for _, v := range r.vols {
			if v.backing == nil || !v.backing.onFailedDisk() {
				continue
			}
			v.backing.Close()
			v.backing, v.meta, v.disk = nil, nil, drbd.DiskDiskless
			// A resync to or from this disk ends with it, on both sides.
			for _, c := range r.conns {
				if pv := c.pv[v.nr]; pv != nil && pv.repl.HasProgress() {
					pv.repl, pv.total, pv.done = drbd.ReplEstablished, 0, 0
					if p := n.peerRes(r, c); p != nil {
						if x := p.conns[r.self.nodeID].pv[v.nr]; x != nil {
							x.repl, x.total, x.done = drbd.ReplEstablished, 0, 0
						}
					}
				}
			}
		}
	}
}
