package sim

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// disk is a whole disk of the host: blank, with a GPT label and one
// partition, with a mounted file system, or an LVM PV (in a VG or not).
type disk struct {
	path string
	size uint64 // bytes

	ptable bool   // a GPT label with one partition, partPath()
	fs     string // file system on the disk or its partition ("ext4")
	mount  string // where that file system is mounted; "" if not
	onPart bool   // fs and mount are on the partition, not the disk

	pv bool         // carries an LVM2 label (pvcreate)
	vg *volumeGroup // the VG it is a PV of, nil if none

	failed bool // FailDisk: every I/O on it fails
}

// extents is how many extents of size ext the disk gives a VG: the device
// less the 1 MiB metadata area, rounded down.
func (d *disk) extents(ext uint64) uint64 {
	if d.size < peStart {
		return 0
	}
	return (d.size - peStart) / ext
}

// partPath is the path of the disk's first partition, named as the kernel
// names it: a "p" goes between a disk name ending in a digit and the
// partition number (/dev/nvme0n1p1, /dev/loop0p1, but /dev/vdb1).
func (d *disk) partPath() string {
	if c := d.path[len(d.path)-1]; c >= '0' && c <= '9' {
		return d.path + "p1"
	}
	return d.path + "1"
}

// busy: something holds the disk, so an exclusive open (O_EXCL, as wipefs
// and pvcreate use) fails with EBUSY: a mounted file system on it or its
// partition, or device-mapper devices of active LVs on the PV.
func (d *disk) busy() bool {
	if d.mount != "" {
		return true
	}
	if d.vg != nil {
		for _, lv := range d.vg.lvs {
			if lv.active {
				return true
			}
		}
	}
	return false
}

// AddDisk adds a blank whole disk (no partition table, no signature) of
// size bytes at path, e.g. /dev/vdb.
func (h *Host) AddDisk(path string, size uint64) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !strings.HasPrefix(path, "/dev/") || len(path) <= len("/dev/") {
		return fmt.Errorf("sim: disk path %q is not under /dev", path)
	}
	if h.disks[path] != nil {
		return fmt.Errorf("sim: disk %s exists", path)
	}
	if size == 0 || size%512 != 0 {
		return fmt.Errorf("sim: disk size %d is not a positive multiple of 512", size)
	}
	h.disks[path] = &disk{path: path, size: size}
	return nil
}

// PartitionDisk gives the blank disk at path a GPT label with one
// partition spanning it (as `sgdisk -n 1:0:0` would): lsblk then shows
// pttype gpt and the partition, pvcreate refuses the disk, wipefs --all
// removes both.
func (h *Host) PartitionDisk(path string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	d := h.disks[path]
	if d == nil {
		return fmt.Errorf("sim: no disk %s", path)
	}
	if d.pv || d.ptable || d.fs != "" {
		return fmt.Errorf("sim: disk %s is not blank", path)
	}
	d.ptable = true
	return nil
}

// MountDisk puts an ext4 file system on the disk at path, or on its
// partition when path is the partition of a disk partitioned with
// [Host.PartitionDisk], and mounts it at mountpoint. The disk is then in
// use: lsblk shows the mount point, wipefs and pvcreate refuse it.
func (h *Host) MountDisk(path, mountpoint string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	d, onPart := h.disks[path], false
	if d == nil {
		for _, x := range h.disks {
			if x.ptable && x.partPath() == path {
				d, onPart = x, true
			}
		}
	}
	switch {
	case d == nil:
		return fmt.Errorf("sim: no disk or partition %s", path)
	case d.pv || d.fs != "" || !onPart && d.ptable:
		return fmt.Errorf("sim: %s is not blank", path)
	case !strings.HasPrefix(mountpoint, "/"):
		return fmt.Errorf("sim: mount point %q is not absolute", mountpoint)
	}
	d.fs, d.mount, d.onPart = "ext4", mountpoint, onPart
	return nil
}

func (h *Host) sortedDisks() []*disk {
	out := make([]*disk, 0, len(h.disks))
	for _, d := range h.disks {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].path < out[j].path })
	return out
}

// lsblk exit codes (misc-utils/lsblk.c): 32 when none of the given devices
// was found (LSBLK_EXIT_ALLFAILED), 64 when some were (LSBLK_EXIT_SOMEOK).
const (
	lsblkAllFailed = 32
	lsblkSomeOK    = 64
)

// lsblkRow is one device row of lsblk's output.
type lsblkRow struct {
	path, typ, fstype, pttype, mount string
	size                             uint64
}

// lsblkRows are the rows lsblk prints for disk d: the disk, then, since the
// output has no NAME column and so no tree (util-linux 2.38 prints a flat
// list then, every device once, in tree order), its partition and the
// device-mapper devices of active LVs on it.
func (h *Host) lsblkRows(d *disk, nodeps bool) []lsblkRow {
	row := lsblkRow{path: d.path, typ: "disk", size: d.size}
	switch {
	case d.ptable:
		row.pttype = "gpt"
	case d.pv:
		row.fstype = "LVM2_member"
	case d.fs != "" && !d.onPart:
		row.fstype, row.mount = d.fs, d.mount
	}
	rows := []lsblkRow{row}
	if nodeps {
		return rows
	}
	if d.ptable {
		// Partition 1 from sector 2048 to the last usable one, before
		// the backup GPT (33 sectors).
		part := lsblkRow{path: d.partPath(), typ: "part", size: d.size - 1<<20 - 33*512}
		if d.onPart {
			part.fstype, part.mount = d.fs, d.mount
		}
		rows = append(rows, part)
	}
	if d.vg != nil {
		// Unverified here (no device-mapper on this machine): the dm
		// devices of a thin pool and its thin volumes in the order of
		// lsblk's tree walk: _tmeta, -tpool, the pool, its thin
		// volumes, then _tdata (whose child -tpool was printed).
		g := d.vg
		dm := func(lv string) string {
			return "/dev/mapper/" + strings.ReplaceAll(g.name, "-", "--") + "-" + strings.ReplaceAll(lv, "-", "--")
		}
		for _, lv := range g.sortedLVs() {
			if !lv.pool || !lv.active {
				continue
			}
			rows = append(rows, lsblkRow{path: dm(lv.name + "_tmeta"), typ: "lvm", size: lv.metaSize},
				lsblkRow{path: dm(lv.name) + "-tpool", typ: "lvm", size: lv.size},
				lsblkRow{path: dm(lv.name), typ: "lvm", size: lv.size})
			for _, t := range g.sortedLVs() {
				if t.thinPool == lv && t.active {
					rows = append(rows, lsblkRow{path: dm(t.name), typ: "lvm", size: t.size})
				}
			}
			rows = append(rows, lsblkRow{path: dm(lv.name + "_tdata"), typ: "lvm", size: lv.size})
		}
		// Seen on the VM tier (Debian 12's lsblk 2.38.1, a PV with an
		// active thin pool): without a NAME column the disk itself comes
		// after the devices stacked on it.
		if len(rows) > 1 {
			rows = append(rows[1:], rows[0])
		}
	}
	return rows
}

// lsblk answers `lsblk --json [--bytes] [--nodeps] --output COL,… [DEVICE…]`
// with util-linux 2.38's JSON (three-space indent, columns in the order
// given, null for an empty value; see TestLsblkMatchesReal).
func (h *Host) lsblk(o *output, args []string) {
	p, err := parseArgs("lsblk", args, []optSpec{
		{long: "json", short: 'J'},
		{long: "bytes", short: 'b'},
		{long: "nodeps", short: 'd'},
		{long: "output", short: 'o', value: true},
	})
	if err != nil {
		fmt.Fprintf(&o.stderr, "%s\nTry 'lsblk --help' for more information.\n", strings.SplitN(err.Error(), "\n", 2)[0])
		o.code = 1
		return
	}
	cols, ok := p.last("output")
	if !p.has("json") || !p.has("bytes") || !ok {
		o.notModelled("lsblk", "output other than --json --bytes --output COLS")
		return
	}
	fields := strings.Split(cols, ",")
	for _, f := range fields {
		switch strings.ToUpper(f) {
		case "PATH", "TYPE", "FSTYPE", "PTTYPE", "MOUNTPOINTS", "SIZE":
		default:
			o.notModelled("lsblk", "column "+f)
			return
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	var rows []lsblkRow
	failed := 0
	devs := p.pos
	if len(devs) == 0 {
		for _, d := range h.sortedDisks() {
			devs = append(devs, d.path)
		}
	}
	for _, name := range devs {
		d := h.disks[name]
		if d == nil {
			// A partition or LV path given directly is not modelled;
			// lsblk says the same as for a missing device, which is
			// true for paths that do not exist.
			fmt.Fprintf(&o.stderr, "lsblk: %s: not a block device\n", name)
			failed++
			continue
		}
		rows = append(rows, h.lsblkRows(d, p.has("nodeps"))...)
	}
	switch {
	case failed == len(devs) && failed > 0:
		o.code = lsblkAllFailed
	case failed > 0:
		o.code = lsblkSomeOK
	}
	writeLsblk(&o.stdout, fields, rows)
}

// writeLsblk prints rows the way libsmartcols 2.38 prints a JSON table.
func writeLsblk(b *strings.Builder, fields []string, rows []lsblkRow) {
	str := func(s string) string {
		if s == "" {
			return "null"
		}
		v, _ := json.Marshal(s)
		return string(v)
	}
	b.WriteString("{\n   \"blockdevices\": [\n")
	if len(rows) == 0 {
		b.WriteString("\n")
	}
	for i, r := range rows {
		if i == 0 {
			b.WriteString("      {\n")
		} else {
			b.WriteString("      },{\n")
		}
		for j, f := range fields {
			var v string
			switch strings.ToUpper(f) {
			case "PATH":
				v = str(r.path)
			case "TYPE":
				v = str(r.typ)
			case "FSTYPE":
				v = str(r.fstype)
			case "PTTYPE":
				v = str(r.pttype)
			case "SIZE":
				v = fmt.Sprint(r.size)
			case "MOUNTPOINTS":
				v = "[\n             " + str(r.mount) + "\n         ]"
			}
			sep := ","
			if j == len(fields)-1 {
				sep = ""
			}
			fmt.Fprintf(b, "         \"%s\": %s%s\n", strings.ToLower(f), v, sep)
		}
	}
	if len(rows) > 0 {
		b.WriteString("      }\n")
	}
	b.WriteString("   ]\n}\n")
}

// wipefs answers `wipefs --all|-a DEVICE…` for whole disks: it erases the
// GPT label (both headers and the protective MBR) and with it the
// partition, an LVM2 label or a file system signature, printing what it
// erased as wipefs does. A disk in use (mounted, or a PV under active LVs)
// is refused with EBUSY, as wipefs's exclusive open is.
func (h *Host) wipefs(o *output, args []string) {
	p, err := parseArgs("wipefs", args, []optSpec{{long: "all", short: 'a'}})
	if err != nil {
		fmt.Fprintf(&o.stderr, "%s\nTry 'wipefs --help' for more information.\n", strings.SplitN(err.Error(), "\n", 2)[0])
		o.code = 1
		return
	}
	if !p.has("all") {
		o.notModelled("wipefs", "wipefs without --all")
		return
	}
	if len(p.pos) == 0 {
		fmt.Fprintf(&o.stderr, "wipefs: no device specified\nTry 'wipefs --help' for more information.\n")
		o.code = 1
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, name := range p.pos {
		d := h.disks[name]
		switch {
		case d == nil:
			fmt.Fprintf(&o.stderr, "wipefs: error: %s: probing initialization failed: No such file or directory\n", name)
			o.code = 1
			continue
		case d.busy():
			fmt.Fprintf(&o.stderr, "wipefs: error: %s: probing initialization failed: Device or resource busy\n", name)
			o.code = 1
			continue
		case d.vg != nil:
			// Real wipefs would erase the label of a PV whose VG has
			// no active LV, leaving the VG with a missing PV.
			o.notModelled("wipefs", "wiping a PV of a volume group")
			continue
		}
		switch {
		case d.ptable:
			fmt.Fprintf(&o.stdout, "%s: 8 bytes were erased at offset 0x%08x (gpt): 45 46 49 20 50 41 52 54\n", name, 512)
			fmt.Fprintf(&o.stdout, "%s: 8 bytes were erased at offset 0x%08x (gpt): 45 46 49 20 50 41 52 54\n", name, d.size-512)
			fmt.Fprintf(&o.stdout, "%s: 2 bytes were erased at offset 0x%08x (PMBR): 55 aa\n", name, 0x1fe)
			fmt.Fprintf(&o.stdout, "%s: calling ioctl to re-read partition table: Success\n", name)
		case d.pv:
			fmt.Fprintf(&o.stdout, "%s: 8 bytes were erased at offset 0x%08x (LVM2_member): 4c 56 4d 32 20 30 30 31\n", name, 0x218)
		case d.fs != "":
			fmt.Fprintf(&o.stdout, "%s: 2 bytes were erased at offset 0x%08x (ext4): 53 ef\n", name, 0x438)
		}
		d.ptable, d.pv, d.fs, d.onPart = false, false, "", false
	}
}
