package sim

import (
	"fmt"
	"io"
	"io/fs"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"

	"github.com/pvehci/pvehci/storage/lvm"
)

const (
	// DefaultExtentSize is vgcreate's default physical extent size.
	DefaultExtentSize = 4 << 20
	// DefaultChunkSize is lvm's default thin pool chunk size (lvmthin(7)
	// "Chunk size": a multiple of 64KiB; lvmconfig --type default
	// allocation/thin_pool_chunk_size prints 64).
	DefaultChunkSize = 64 << 10
	// peStart is where the first extent starts on a PV: lvm's default data
	// alignment of 1 MiB. A 64 MiB PV gives a 60 MiB VG (15 extents), as
	// storage/lvm's real-LVM test shows.
	peStart = 1 << 20
	// metaBytesPerMapping estimates dm-thin metadata per mapped chunk, for
	// metadata_percent only (not measured; the btree costs vary).
	metaBytesPerMapping = 64
)

// Host is one simulated node. Its methods are safe for concurrent use.
type Host struct {
	name string

	mu  sync.Mutex
	vgs map[string]*volumeGroup
	// disks are the host's whole disks by path (see disk.go); every PV
	// of a VG is one of them.
	disks map[string]*disk
	// net and drbd are set once by Network.Attach (under mu); the DRBD
	// state in drbd is guarded by net.mu. Lock order: net.mu, then mu.
	net  *Network
	drbd *drbdHost
	// cfgRoot is where drbdadm without -c finds etc/drbd.conf.
	cfgRoot string
}

// SetConfigRoot makes dir the root of the host's file system for drbdadm
// without -c: it reads dir/etc/drbd.conf, as the real drbdadm reads
// /etc/drbd.conf, and resolves absolute include patterns under dir. This
// is how a `pvehci lab` node, whose satellite writes its .res files under
// a per-node directory, runs `drbdadm adjust RES` as on a real host. ""
// (the default) refuses drbdadm without -c.
func (h *Host) SetConfigRoot(dir string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.cfgRoot = dir
}

func (h *Host) configRoot() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.cfgRoot
}

// network returns the host's network, nil before Network.Attach.
func (h *Host) network() *Network {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.net
}

// NewHost returns a host with no volume groups.
func NewHost(name string) *Host {
	return &Host{name: name, vgs: map[string]*volumeGroup{}, disks: map[string]*disk{}}
}

// Name is the host's name.
func (h *Host) Name() string { return h.name }

type volumeGroup struct {
	name string
	// pvs are the VG's PVs in the order they joined it (vgcreate, then
	// vgextend); extents is the sum of their extents.
	pvs     []*disk
	extent  uint64
	extents uint64 // total
	tags    []string
	lvs     map[string]*logicalVolume
}

func (vg *volumeGroup) used() uint64 {
	var n uint64
	for _, lv := range vg.lvs {
		n += lv.extents
	}
	return n
}

func (vg *volumeGroup) free() uint64 { return vg.extents - vg.used() }

type logicalVolume struct {
	name string
	vg   *volumeGroup
	pool bool
	size uint64 // bytes (for a pool: its data size)
	// extents taken from the VG: data and metadata (and spare) of a pool;
	// thin volumes take none.
	extents uint64
	tags    []string

	active   bool
	skip     bool // persistent activation skip ('k')
	readOnly bool
	open     int

	// Thin volume.
	thinPool *logicalVolume
	origin   string
	chunks   map[uint64]*chunk

	// Thin pool.
	chunkSize  uint64
	metaSize   uint64
	allocated  uint64 // chunks in use
	outOfSpace bool
}

// chunk is one pool chunk; refs counts the thin volumes mapping it, so a
// snapshot and its origin share it until one of them writes (dm-thin's
// copy-on-write, lvmthin(7) "Thin Snapshots").
type chunk struct {
	refs int
	data []byte
}

// AddVG creates volume group vg on one PV named pv (a device path such as
// /dev/sdb) of pvSize bytes, with the default 4 MiB extents, as
// `pvcreate pv && vgcreate vg pv` would. The PV is also a disk of the host
// (see [Host.AddDisk]), so lsblk and wipefs see it; pv may already be a
// blank disk of that size.
func (h *Host) AddVG(vg, pv string, pvSize uint64) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.vgs[vg]; ok {
		return fmt.Errorf("sim: volume group %q exists", vg)
	}
	if pvSize < peStart+DefaultExtentSize {
		return fmt.Errorf("sim: PV %s of %d bytes is too small", pv, pvSize)
	}
	d := h.disks[pv]
	switch {
	case d == nil:
		d = &disk{path: pv, size: pvSize}
		h.disks[pv] = d
	case d.size != pvSize || d.vg != nil || d.ptable || d.fs != "":
		return fmt.Errorf("sim: disk %s exists and is not a blank disk of %d bytes", pv, pvSize)
	}
	d.pv = true
	g := &volumeGroup{name: vg, extent: DefaultExtentSize, lvs: map[string]*logicalVolume{}}
	g.addPV(d)
	h.vgs[vg] = g
	return nil
}

// addPV makes PV d part of g.
func (g *volumeGroup) addPV(d *disk) {
	d.vg = g
	g.pvs = append(g.pvs, d)
	g.extents += d.extents(g.extent)
}

// AddThinPool creates an active thin pool of size bytes (rounded up to
// extents) in vg, as `lvcreate --type thin-pool -L size -n pool vg` would
// with the default chunk size and zeroing. Its metadata LV is sized like
// lvm's estimate (64 bytes per chunk, at least 2 MiB, rounded up to an
// extent), and lvm keeps a spare metadata LV of the same size
// (lvmthin(7) "Metadata check and repair"), so the pool takes
// data + 2 × metadata extents from the VG.
func (h *Host) AddThinPool(vg, pool string, size uint64) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	g, ok := h.vgs[vg]
	if !ok {
		return fmt.Errorf("sim: volume group %q not found", vg)
	}
	if _, ok := g.lvs[pool]; ok {
		return fmt.Errorf("sim: logical volume %s/%s exists", vg, pool)
	}
	data := roundUp(size, g.extent)
	meta := roundUp(max(2<<20, data/DefaultChunkSize*64), g.extent)
	need := (data + 2*meta) / g.extent
	if need > g.free() {
		return fmt.Errorf("sim: volume group %q has insufficient free space (%d extents): %d required", vg, g.free(), need)
	}
	g.lvs[pool] = &logicalVolume{
		name: pool, vg: g, pool: true, size: data, extents: need,
		active: true, chunkSize: DefaultChunkSize, metaSize: meta,
	}
	return nil
}

func roundUp(n, unit uint64) uint64 {
	if n%unit == 0 {
		return n
	}
	return n + unit - n%unit
}

// lookup finds VG/LV; when it is missing, msg is lvm's message.
func (h *Host) lookup(full string) (lv *logicalVolume, msg string) {
	vgName, lvName, ok := strings.Cut(full, "/")
	if !ok || lvName == "" {
		return nil, fmt.Sprintf("Failed to find logical volume %q", full)
	}
	g, ok := h.vgs[vgName]
	if !ok {
		return nil, fmt.Sprintf("Volume group %q not found", vgName)
	}
	if lv = g.lvs[lvName]; lv == nil {
		return nil, fmt.Sprintf("Failed to find logical volume %q", full)
	}
	return lv, ""
}

// attr is lv_attr, the ten characters lvs(8) "NOTES" describes.
func (lv *logicalVolume) attr() string {
	a := []byte("----------")
	if lv.pool {
		a[0] = 't'
	} else {
		a[0] = 'V'
	}
	a[1] = 'w'
	if lv.readOnly {
		a[1] = 'r'
	}
	a[2] = 'i'
	if lv.active {
		a[4] = 'a'
	}
	if lv.open > 0 || lv.pool && lv.active && lv.poolOpen() {
		a[5] = 'o'
	}
	a[6] = 't'
	a[7] = 'z'
	if lv.pool && lv.outOfSpace {
		a[8] = 'D'
	}
	if lv.skip {
		a[9] = 'k'
	}
	return string(a)
}

// poolOpen: an active thin volume holds its pool's device open.
func (lv *logicalVolume) poolOpen() bool {
	for _, t := range lv.vg.lvs {
		if t.thinPool == lv && t.active {
			return true
		}
	}
	return false
}

// dataPercent is reported only for active LVs (lvs(8): "the percentage
// full if LV is active").
func (lv *logicalVolume) dataPercent() string {
	if !lv.active {
		return ""
	}
	if lv.pool {
		return fmt.Sprintf("%.2f", 100*float64(lv.allocated)/float64(lv.size/lv.chunkSize))
	}
	total := (lv.size + lv.thinPool.chunkSize - 1) / lv.thinPool.chunkSize
	return fmt.Sprintf("%.2f", 100*float64(len(lv.chunks))/float64(total))
}

func (lv *logicalVolume) metadataPercent() string {
	if !lv.pool || !lv.active {
		return ""
	}
	var mappings uint64
	thins := uint64(0)
	for _, t := range lv.vg.lvs {
		if t.thinPool == lv {
			thins++
			mappings += uint64(len(t.chunks))
		}
	}
	used := 4096*(1+thins) + mappings*metaBytesPerMapping
	return fmt.Sprintf("%.2f", min(100, 100*float64(used)/float64(lv.metaSize)))
}

func (lv *logicalVolume) field(name string) (string, bool) {
	switch name {
	case "lv_name":
		return lv.name, true
	case "vg_name":
		return lv.vg.name, true
	case "lv_full_name":
		return lv.vg.name + "/" + lv.name, true
	case "lv_path":
		return lvm.DevicePath(lv.vg.name, lv.name), true
	case "lv_attr":
		return lv.attr(), true
	case "lv_size":
		return fmt.Sprint(lv.size), true
	case "pool_lv":
		if lv.thinPool != nil {
			return lv.thinPool.name, true
		}
		return "", true
	case "origin":
		return lv.origin, true
	case "data_percent":
		return lv.dataPercent(), true
	case "metadata_percent":
		return lv.metadataPercent(), true
	case "lv_tags":
		return strings.Join(lv.tags, ","), true
	case "lv_active":
		if lv.active {
			return "active", true
		}
		return "", true
	case "lv_when_full":
		if lv.pool {
			return "error", true // see the package doc: errorwhenfull y
		}
		return "", true
	case "chunk_size":
		if lv.pool {
			return fmt.Sprint(lv.chunkSize), true
		}
		return "0", true
	}
	return "", false
}

func (vg *volumeGroup) field(name string) (string, bool) {
	switch name {
	case "vg_name":
		return vg.name, true
	case "vg_size":
		return fmt.Sprint(vg.extents * vg.extent), true
	case "vg_free":
		return fmt.Sprint(vg.free() * vg.extent), true
	case "vg_extent_size":
		return fmt.Sprint(vg.extent), true
	case "vg_extent_count":
		return fmt.Sprint(vg.extents), true
	case "vg_free_count":
		return fmt.Sprint(vg.free()), true
	case "vg_tags":
		return strings.Join(vg.tags, ","), true
	case "lv_count":
		return fmt.Sprint(len(vg.lvs)), true
	}
	return "", false
}

// pvField is a pvs field of PV d. A PV in no VG reports the whole device
// as its size and free space and attr "---"; in a VG its size is its
// extents (the device less the 1 MiB metadata area, rounded down).
func (d *disk) pvField(name string) (string, bool) {
	switch name {
	case "pv_name":
		return d.path, true
	case "vg_name":
		if d.vg == nil {
			return "", true
		}
		return d.vg.name, true
	case "pv_attr":
		if d.vg == nil {
			return "---", true
		}
		return "a--", true
	case "pv_size":
		if d.vg == nil {
			return fmt.Sprint(d.size), true
		}
		return fmt.Sprint(d.extents(d.vg.extent) * d.vg.extent), true
	case "pv_free":
		if d.vg == nil {
			return fmt.Sprint(d.size), true
		}
		return fmt.Sprint(d.vg.pvFree(d) * d.vg.extent), true
	}
	return "", false
}

// pvFree is the free extents of PV d of g. The simulation does not track
// where extents lie; it counts the VG's used extents as filling its PVs in
// the order they joined, as lvm's normal allocation policy tends to.
func (vg *volumeGroup) pvFree(d *disk) uint64 {
	used := vg.used()
	for _, p := range vg.pvs {
		n := p.extents(vg.extent)
		take := min(used, n)
		used -= take
		if p == d {
			return n - take
		}
	}
	return 0
}

// sortedVGs returns the VGs by name, lvm's default report order.
func (h *Host) sortedVGs() []*volumeGroup {
	out := make([]*volumeGroup, 0, len(h.vgs))
	for _, g := range h.vgs {
		out = append(out, g)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

func (vg *volumeGroup) sortedLVs() []*logicalVolume {
	out := make([]*logicalVolume, 0, len(vg.lvs))
	for _, lv := range vg.lvs {
		out = append(out, lv)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

func addTag(tags []string, t string) []string {
	if slices.Contains(tags, t) {
		return tags
	}
	tags = append(tags, t)
	slices.Sort(tags) // lvm stores tags as a sorted list
	return tags
}

// release drops a thin volume's chunks back to its pool (lvmthin(7)
// "Removing ... returns the blocks it used to the thin pool LV").
func (lv *logicalVolume) release() {
	for _, c := range lv.chunks {
		c.refs--
		if c.refs == 0 {
			lv.thinPool.allocated--
		}
	}
	lv.chunks = nil
}

// IOError is a failed read or write on a simulated device; Err is the
// errno a real block device returns (ENOSPC from a full thin pool, EIO,
// ENXIO after removal).
type IOError struct {
	Op   string
	Path string
	Off  int64
	Err  syscall.Errno
}

func (e *IOError) Error() string {
	return fmt.Sprintf("%s %s at offset %d: %v", e.Op, e.Path, e.Off, e.Err)
}

func (e *IOError) Unwrap() error { return e.Err }

// Device is an open LV, a block device for tests and the DRBD layer. Close
// it when done: an open LV cannot be removed (lvremove "in use").
type Device struct {
	h    *Host
	lv   *logicalVolume
	path string

	closeOnce sync.Once
}

// Device opens the active LV at path (/dev/VG/LV). Like a device node, it
// exists only while the LV is active.
func (h *Host) Device(path string) (*Device, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	rest, ok := strings.CutPrefix(path, "/dev/")
	var lv *logicalVolume
	if ok {
		lv, _ = h.lookup(rest)
	}
	if lv == nil || !lv.active || lv.pool {
		return nil, &fs.PathError{Op: "open", Path: path, Err: syscall.ENOENT}
	}
	lv.open++
	return &Device{h: h, lv: lv, path: path}, nil
}

// Close releases the device.
func (d *Device) Close() error {
	d.closeOnce.Do(func() {
		d.h.mu.Lock()
		defer d.h.mu.Unlock()
		d.lv.open--
	})
	return nil
}

// Path is the device path Device was opened with.
func (d *Device) Path() string { return d.path }

// Size is the LV's current size in bytes.
func (d *Device) Size() int64 {
	d.h.mu.Lock()
	defer d.h.mu.Unlock()
	return int64(d.lv.size)
}

// ReadAt reads like pread(2) on a block device: short with io.EOF at the
// end of the device. Unmapped chunks read as zeros.
func (d *Device) ReadAt(p []byte, off int64) (int, error) {
	d.h.mu.Lock()
	defer d.h.mu.Unlock()
	if err := d.failedIO("read", off); err != nil {
		return 0, err
	}
	lv := d.lv
	if off < 0 {
		return 0, &IOError{Op: "read", Path: d.path, Off: off, Err: syscall.EINVAL}
	}
	if uint64(off) >= lv.size {
		return 0, io.EOF
	}
	n := len(p)
	var err error
	if rem := lv.size - uint64(off); uint64(n) > rem {
		n, err = int(rem), io.EOF
	}
	cs := lv.thinPool.chunkSize
	for done := 0; done < n; {
		pos := uint64(off) + uint64(done)
		idx, in := pos/cs, pos%cs
		m := min(uint64(n-done), cs-in)
		if c := lv.chunks[idx]; c != nil {
			copy(p[done:done+int(m)], c.data[in:in+m])
		} else {
			clear(p[done : done+int(m)])
		}
		done += int(m)
	}
	return n, err
}

// WriteAt writes like pwrite(2) on a block device. A write past the end
// fails with ENOSPC, as on a real block device. It maps a chunk on first
// write and copies a chunk shared with a snapshot before changing it; when
// the pool has no free chunk for that, the write fails with ENOSPC and
// nothing of it is written (a real multi-chunk write may be partly done;
// the simulation keeps it all-or-nothing so a test sees one outcome).
func (d *Device) WriteAt(p []byte, off int64) (int, error) {
	d.h.mu.Lock()
	defer d.h.mu.Unlock()
	if err := d.failedIO("write", off); err != nil {
		return 0, err
	}
	lv := d.lv
	if lv.readOnly {
		return 0, &IOError{Op: "write", Path: d.path, Off: off, Err: syscall.EROFS}
	}
	if off < 0 || uint64(off)+uint64(len(p)) > lv.size {
		return 0, &IOError{Op: "write", Path: d.path, Off: off, Err: syscall.ENOSPC}
	}
	if len(p) == 0 {
		return 0, nil
	}
	pool := lv.thinPool
	cs := pool.chunkSize
	first, last := uint64(off)/cs, (uint64(off)+uint64(len(p))-1)/cs
	var need uint64
	for i := first; i <= last; i++ {
		if c := lv.chunks[i]; c == nil || c.refs > 1 {
			need++
		}
	}
	if pool.allocated+need > pool.size/cs {
		pool.outOfSpace = true
		return 0, &IOError{Op: "write", Path: d.path, Off: off, Err: syscall.ENOSPC}
	}
	if lv.chunks == nil {
		lv.chunks = map[uint64]*chunk{}
	}
	for i := first; i <= last; i++ {
		c := lv.chunks[i]
		switch {
		case c == nil:
			c = &chunk{refs: 1, data: make([]byte, cs)}
			pool.allocated++
		case c.refs > 1:
			c.refs--
			c = &chunk{refs: 1, data: slices.Clone(c.data)}
			pool.allocated++
		}
		lv.chunks[i] = c
		lo := max(uint64(off), i*cs)
		hi := min(uint64(off)+uint64(len(p)), (i+1)*cs)
		copy(c.data[lo-i*cs:hi-i*cs], p[lo-uint64(off):hi-uint64(off)])
	}
	return len(p), nil
}
