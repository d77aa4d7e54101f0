package sim

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Internal metadata and the size of its backing device.
//
// DRBD keeps internal metadata in the last blocks of the backing device,
// at offsets computed from the device's size (guide 23.1.3), and both
// drbdmeta and the kernel look for it only there. drbdMeta.at is that
// size: the LV's size when the metadata was last written or moved. An LV
// extended while DRBD does not hold it, or held but not yet resized,
// keeps its metadata at the old end, where nothing finds it.
//
// drbd-utils' answer is the last-known size of each minor's backing
// device, the file /var/lib/drbd/drbd-minor-MINOR.lkbd (drbdsetup(8)
// "check-resize"), and `drbdadm check-resize` (drbdadm(8): "If the backing
// device was resized, while DRBD was not running, meta data has to be
// moved to the end of the device, so that the next attach command can
// succeed"; drbdmeta(8) "check-resize": "if the size of the lower-level
// device has changed and the metadata can be found at the previous
// position, move the metadata to the new position at the end of the block
// device"). What the simulation does, checked against real drbdmeta 9.22 on
// a loop device (TestCheckResizeMatchesRealDRBDMeta) and read in drbd-utils
// 9.22 (shared_tool.c lk_bdev_*, drbdmeta.c v08_check_for_resize and
// meta_chk_offline_resize, drbdadm_main.c adm_chk_resize and adm_attach):
//
//   - the file is "SIZE\tDEVICE\n", the size in bytes; drbdmeta writes it
//     whenever it writes metadata (create-md, forget-peer, check-resize,
//     and apply-al, which drbdadm runs before every attach and which for
//     v09 metadata always rewrites the superblock); drbdadm resize records
//     the backing size after the kernel grew the device; wipe-md deletes
//     it. The simulation has no device UUID, so it writes no "uuid:" line
//     (real drbdadm create-md does) and never checks one;
//   - drbdmeta finds metadata at the end of the device, or else, when the
//     file names a smaller size and valid metadata sits at the end of that
//     size, at its last-known location. get-gi, forget-peer and wipe-md
//     treat the latter as no metadata (exit 1, 1 and "There appears to be
//     no drbd meta data to wipe out?"); check-resize and apply-al move it
//     to the end of the device (stderr "Moving the internal meta data to
//     its proper location", stdout "Internal drbd meta data successfully
//     moved.") and record the new size. So `drbdadm adjust` attaches a
//     grown disk by itself when the file is right;
//   - check-resize exits 0 without a word when the metadata is at the end
//     and the file exists (updating its size), 1 without a word when the
//     file is missing (lk_bdev_load fails), and 1 with "no suitable meta
//     data found :(" when the metadata is neither at the end nor where the
//     file says, including when there is none at all. The device name in
//     the file is not compared (real drbdmeta does not either);
//   - `drbdadm check-resize RES[/VOL]` is `drbdsetup resize` (silent) and
//     `drbdsetup check-resize` for an attached volume, which is an online
//     resize (resize.go) without --assume-clean, and `drbdmeta … check-resize`
//     for one that is not;
//   - the kernel lays the metadata out for the backing device's current
//     size whenever it (re)computes the device size; the simulation does it
//     at resize, on the node that runs it and on its connected diskful peers
//     (from memory of drbd 9's drbd_determine_dev_size, not checkable on
//     this machine, which has no DRBD module). Re-layouts at connect time
//     are not modelled: the simulation keeps the metadata at the old end
//     until a resize, which is the more demanding case for the satellite.
//
// The files live in the host's file system, under the root given to
// [Host.SetConfigRoot]; a host without a root has no /var/lib/drbd, like a
// host that lost it: metadata moved by nothing can then only be found at
// the end of the device.

// lkbdDir is drbd-utils' DRBD_LIB_DIR (Debian builds: /var/lib/drbd).
const lkbdDir = "/var/lib/drbd"

// lkbdFile is the host path of minor's last-known-size file.
func lkbdFile(minor int) string {
	return lkbdDir + "/drbd-minor-" + strconv.Itoa(minor) + ".lkbd"
}

// lastKnown is one last-known-size file.
type lastKnown struct {
	size uint64 // bytes
	name string
}

// lkbdPath is where minor's file is on this machine, "" without a root.
func (h *Host) lkbdPath(minor int) string {
	root := h.configRoot()
	if root == "" {
		return ""
	}
	return filepath.Join(root, lkbdFile(minor))
}

// loadLastKnown reads minor's file as lk_bdev_load does: a size, then the
// device name. A missing file is silently no information; an unreadable
// or unparsable one prints drbdmeta's message first.
func (h *Host) loadLastKnown(o *output, minor int) (lastKnown, bool) {
	p := h.lkbdPath(minor)
	if p == "" {
		return lastKnown{}, false
	}
	data, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return lastKnown{}, false
	}
	if err != nil {
		fmt.Fprintf(&o.stderr, "lk_bdev_load(%s) failed: %v\n", lkbdFile(minor), err)
		return lastKnown{}, false
	}
	// fscanf("%llu %ms"): leading digits, then the name after blanks.
	n := 0
	for n < len(data) && data[n] >= '0' && data[n] <= '9' {
		n++
	}
	size, err := strconv.ParseUint(string(data[:n]), 10, 64)
	if err != nil {
		fmt.Fprintf(&o.stderr, "lk_bdev_load(%s): parse error\n", lkbdFile(minor))
		return lastKnown{}, false
	}
	lk := lastKnown{size: size}
	if f := strings.Fields(string(data[n:])); len(f) > 0 {
		lk.name = f[0]
	}
	return lk, true
}

// saveLastKnown writes minor's file as lk_bdev_save does. A host without
// a root keeps nothing.
func (h *Host) saveLastKnown(o *output, minor int, name string, size uint64) {
	p := h.lkbdPath(minor)
	if p == "" {
		return
	}
	err := os.MkdirAll(filepath.Dir(p), 0o755)
	if err == nil {
		err = os.WriteFile(p, fmt.Appendf(nil, "%d\t%s\n", size, name), 0o644)
	}
	if err != nil {
		fmt.Fprintf(&o.stderr, "lk_bdev_save(%s) failed: %v\n", lkbdFile(minor), err)
	}
}

// deleteLastKnown removes minor's file, as wipe-md does.
func (h *Host) deleteLastKnown(o *output, minor int) {
	if p := h.lkbdPath(minor); p != "" {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			fmt.Fprintf(&o.stderr, "lk_bdev_delete(%s) failed: %v\n", lkbdFile(minor), err)
		}
	}
}

// metaAtEnd is dev's metadata where drbdmeta and the kernel look for it:
// at the end of the device as it is now; nil when there is none there.
// d may be nil (a host without the module has no metadata).
func metaAtEnd(d *drbdHost, dev *Device) *drbdMeta {
	if d == nil {
		return nil
	}
	if m := d.meta[dev.lv]; m != nil && m.at == uint64(dev.Size()) {
		return m
	}
	return nil
}

// metaWritten records that drbdmeta wrote m at the end of dev (create-md,
// forget-peer, apply-al): drbdmeta's md_close then saves the size.
func (h *Host) metaWritten(o *output, m *drbdMeta, dev *Device, minor int, name string) {
	m.at = uint64(dev.Size())
	h.saveLastKnown(o, minor, name, m.at)
}

// metaAtLastKnown is dev's metadata when it is not at the end but at the
// end of the smaller size minor's file names (v08_check_for_resize).
func (h *Host) metaAtLastKnown(o *output, d *drbdHost, dev *Device, minor int) *drbdMeta {
	if d == nil || d.meta[dev.lv] == nil {
		return nil
	}
	lk, ok := h.loadLastKnown(o, minor)
	if m := d.meta[dev.lv]; ok && lk.size < uint64(dev.Size()) && m.at == lk.size {
		return m
	}
	return nil
}

// moveMeta moves m to the end of dev, with drbdmeta's messages
// (v08_move_internal_md_after_resize), and records the new size.
func (h *Host) moveMeta(o *output, m *drbdMeta, dev *Device, minor int, name string) {
	o.stderr.WriteString("Moving the internal meta data to its proper location\n")
	o.stdout.WriteString("Internal drbd meta data successfully moved.\n")
	h.metaWritten(o, m, dev, minor, name)
}

// applyAL is the `drbdmeta MINOR v09 DISK internal apply-al` that drbdadm
// runs before `drbdsetup attach`: it returns the metadata the attach finds,
// after moving it from its last-known location if that is where it is,
// or nil.
func (h *Host) applyAL(o *output, d *drbdHost, dev *Device, minor int, name string) *drbdMeta {
	if m := metaAtEnd(d, dev); m != nil {
		h.metaWritten(o, m, dev, minor, name) // v09: the superblock is always rewritten
		return m
	}
	if m := h.metaAtLastKnown(o, d, dev, minor); m != nil {
		h.moveMeta(o, m, dev, minor, name)
		return m
	}
	return nil
}

// checkResizeMeta is `drbdmeta MINOR v09 DEVICE internal check-resize`
// (meta_chk_offline_resize). d may be nil.
func (h *Host) checkResizeMeta(o *output, d *drbdHost, dev *Device, minor int, name string) {
	if metaAtEnd(d, dev) != nil {
		lk, ok := h.loadLastKnown(o, minor)
		if !ok {
			o.code = 1 // the file is missing: lk_bdev_load fails, no message
			return
		}
		if lk.size != uint64(dev.Size()) {
			h.saveLastKnown(o, minor, name, uint64(dev.Size()))
		}
		return
	}
	if m := h.metaAtLastKnown(o, d, dev, minor); m != nil {
		h.moveMeta(o, m, dev, minor, name)
		return
	}
	o.stderr.WriteString("no suitable meta data found :(\n")
	o.code = 1
}

// checkResize is `drbdadm check-resize RES[/VOL]` (adm_chk_resize):
// `drbdsetup resize MINOR && drbdsetup check-resize MINOR`, whose stderr
// drbdadm suppresses, and when that fails `drbdmeta MINOR v09 DISK
// internal check-resize`. Called with n.mu held; r is nil when the
// resource is down.
func (h *Host) checkResize(o *output, n *Network, d *drbdHost, r *drbdRes, self *resNode, vol int) {
	for _, v := range self.volumes {
		if vol >= 0 && v.number != vol {
			continue
		}
		if v.disk == "" {
			o.notModelled("drbdadm", "check-resize of a diskless volume")
			o.code = drbdUsage
			return
		}
		if r != nil && r.vols[v.number] != nil && r.vols[v.number].backing != nil {
			var quiet output
			n.resize(&quiet, r, v.number, false, false)
			o.stdout.WriteString(quiet.stdout.String())
			if quiet.code == 0 {
				h.saveLastKnown(o, v.minor, v.disk, uint64(r.vols[v.number].backing.Size()))
				continue
			}
			// drbdmeta refuses a minor the kernel holds.
			fmt.Fprintf(&o.stderr, "Device '%d' is configured!\n", v.minor)
			o.code = drbdNoModule
			return
		}
		dev, err := h.Device(v.disk)
		if err != nil {
			fmt.Fprintf(&o.stderr, "open(%s) failed: No such file or directory\n", v.disk)
			o.code = drbdNoModule
			return
		}
		h.checkResizeMeta(o, d, dev, v.minor, v.disk)
		dev.Close()
		if o.code != 0 {
			return
		}
	}
}

// relayoutMeta is the kernel laying out v's metadata, and that of the
// connected peers that have the volume on a disk, for their backing
// devices' current sizes, as it does when it recomputes the device size
// at a resize. drbdadm resize then records the local size (drbdsetup
// check-resize). Called with n.mu held.
func (n *Network) relayoutMeta(o *output, r *drbdRes, v *drbdVol) {
	v.meta.at = uint64(v.backing.Size())
	if h := n.hostOf(r); h != nil {
		h.saveLastKnown(o, v.minor, v.diskPath, v.meta.at)
	}
	for _, c := range r.sortedConns() {
		if p := n.peerRes(r, c); c.established && p != nil {
			if pv := p.vols[v.nr]; pv != nil && pv.backing != nil && pv.meta != nil {
				pv.meta.at = uint64(pv.backing.Size())
			}
		}
	}
}
