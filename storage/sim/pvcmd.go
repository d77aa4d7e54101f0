package sim

import (
	"fmt"
	"strconv"
	"strings"
)

// checkNewPV is pvcreate's check of a device it is to initialize (also run
// by vgcreate and vgextend for a device that is not yet a PV); it prints
// lvm's refusal and returns nil when the device cannot be used.
func (h *Host) checkNewPV(o *output, name string) *disk {
	d := h.disks[name]
	switch {
	case d == nil:
		o.fail(lvmFailed, "No device found for %s.", name)
	case d.busy():
		// pvcreate's exclusive open fails; it tries twice.
		o.fail(lvmFailed, "Can't open %s exclusively.  Mounted filesystem?", name)
		o.fail(lvmFailed, "Can't open %s exclusively.  Mounted filesystem?", name)
		o.fail(lvmFailed, "Error opening device %s for reading at 0 length 4096.", name)
		o.fail(lvmFailed, "Cannot use %s: device has a signature", name)
	case d.ptable:
		o.fail(lvmFailed, "Cannot use %s: device is partitioned", name)
	default:
		return d
	}
	return nil
}

// pvcreate answers `pvcreate [-y|--yes] [-q] DEVICE…`: each device must
// exist, be unused and carry no partition table; a PV in no VG is
// initialized again, one in a VG is refused (lvm wants -ff for that).
func (h *Host) pvcreate(o *output, args []string) {
	p, err := parseArgs("pvcreate", args, specs())
	if err != nil {
		o.usage(err)
		return
	}
	if len(p.pos) == 0 {
		o.usageMsg("Please enter a physical volume path.\n  Run `pvcreate --help' for more information.")
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, name := range p.pos {
		if d := h.disks[name]; d != nil && d.vg != nil {
			o.fail(lvmFailed, "Can't initialize physical volume %q of volume group %q without -ff", name, d.vg.name)
			o.fail(lvmFailed, "%s: physical volume not initialized.", name)
			continue
		}
		d := h.checkNewPV(o, name)
		if d == nil {
			continue
		}
		d.pv = true
		o.info("Physical volume %q successfully created.", name)
	}
}

// vgcreate answers `vgcreate [-y] VG DEVICE…` with the default 4 MiB
// extents; vgextend answers `vgextend [-y] VG DEVICE…`. A device that is
// not a PV yet is initialized first, as lvm 2.03 does; a PV of some VG
// is refused. Nothing changes unless every device can be used.
func (h *Host) vgcreateExtend(o *output, prog string, args []string) {
	p, err := parseArgs(prog, args, specs())
	if err != nil {
		o.usage(err)
		return
	}
	if len(p.pos) < 2 {
		if prog == "vgcreate" {
			o.usageMsg("Please provide volume group name and physical volume paths")
		} else {
			o.usageMsg("Please enter volume group name and physical volume(s)")
		}
		return
	}
	vgName, names := p.pos[0], p.pos[1:]
	h.mu.Lock()
	defer h.mu.Unlock()
	g := h.vgs[vgName]
	switch {
	case prog == "vgcreate" && !validName(vgName):
		o.fail(lvmFailed, "New volume group name %q is invalid.", vgName)
		return
	case prog == "vgcreate" && g != nil:
		o.fail(lvmFailed, "A volume group called %s already exists.", vgName)
		return
	}
	var add []*disk
	for _, name := range names {
		d := h.disks[name]
		switch {
		case d != nil && d.vg != nil:
			o.fail(lvmFailed, "Physical volume '%s' is already in volume group '%s'", name, d.vg.name)
			o.fail(lvmFailed, "Unable to add physical volume '%s' to volume group '%s'", name, d.vg.name)
			o.fail(lvmFailed, "%s: physical volume not initialized.", name)
		case d != nil && d.pv:
			add = append(add, d)
		default:
			if d = h.checkNewPV(o, name); d != nil {
				add = append(add, d)
			}
		}
	}
	if o.code != 0 {
		return
	}
	// vgextend checks the devices first, then looks for the VG; vgcreate
	// refuses an existing VG before looking at the devices.
	if prog == "vgextend" && g == nil {
		o.fail(lvmFailed, "Volume group %q not found", vgName)
		o.fail(lvmFailed, "Cannot process volume group %s", vgName)
		return
	}
	for _, d := range add {
		if d.extents(DefaultExtentSize) == 0 {
			o.fail(lvmFailed, "%s: device is too small for a physical volume.", d.path)
			return
		}
	}
	for _, d := range add {
		if !d.pv {
			d.pv = true
			o.info("Physical volume %q successfully created.", d.path)
		}
	}
	if g == nil {
		g = &volumeGroup{name: vgName, extent: DefaultExtentSize, lvs: map[string]*logicalVolume{}}
		h.vgs[vgName] = g
	}
	for _, d := range add {
		g.addPV(d)
	}
	if prog == "vgcreate" {
		o.info("Volume group %q successfully created", vgName)
	} else {
		o.info("Volume group %q successfully extended", vgName)
	}
}

// lvcreateThinPool creates a thin pool: `lvcreate --type thin-pool
// -l|--extents N|N%VG|N%FREE | -L|--size SIZE [--poolmetadatasize SIZE]
// -n|--name POOL VG`. It follows lvm2 2.03's tools/lvcreate.c and
// lib/metadata/lv_manip.c (see TestThinPoolCreateMatchesRealLVM for what
// this machine's lvm shows of it):
//
//   - the metadata size is --poolmetadatasize rounded up to extents, or
//     lvm's estimate as in [Host.AddThinPool];
//   - the spare metadata LV (as big as the metadata) is allocated first;
//     if it does not fit, lvcreate fails with "insufficient free space";
//   - N%FREE first takes twice the metadata off the data; N%VG does not,
//     but any percentage makes the allocation approximate (approx_alloc):
//     the data gets what is left after spare and metadata when the
//     request does not fit, without an error (lvm says so only with -v);
//   - an exact size (-L, -l N) that does not fit fails.
func (h *Host) lvcreateThinPool(o *output, p parsedArgs) {
	for _, bad := range []string{"virtualsize", "thin", "thinpool", "snapshot", "addtag", "setactivationskip", "ignoreactivationskip", "permission"} {
		if p.has(bad) {
			o.notModelled("lvcreate", "--type thin-pool with --"+bad)
			return
		}
	}
	if v, ok := p.last("activate"); ok && v != "y" {
		o.notModelled("lvcreate", "an inactive thin pool")
		return
	}
	name, named := p.last("name")
	if !named {
		o.notModelled("lvcreate", "a thin pool without --name")
		return
	}
	if !validName(name) {
		o.usageMsg(fmt.Sprintf("Logical volume name %q is invalid.\n  Run `lvcreate --help' for more information.", name))
		return
	}
	if len(p.pos) != 1 || strings.Contains(p.pos[0], "/") {
		o.notModelled("lvcreate", "a thin pool not given as NAME VG")
		return
	}
	extArg, hasExt := p.last("extents")
	sizeArg, hasSize := p.last("size")
	switch {
	case hasExt && hasSize:
		o.usageMsg("Please specify either size or extents (not both).")
		return
	case !hasExt && !hasSize:
		o.usageMsg("Please specify either size or extents.")
		return
	}
	var size, metaSize uint64
	var pct uint64
	var pctOf string
	if hasSize {
		var plus bool
		var err error
		if size, plus, err = parseSize(sizeArg, 'm'); err != nil || plus || size == 0 {
			o.usageMsg(fmt.Sprintf("Can't parse size argument.\n  Invalid argument for --size: %s\n  Error during parsing of command line.", sizeArg))
			return
		}
	} else {
		num, of, isPct := strings.Cut(extArg, "%")
		n, err := strconv.ParseUint(num, 10, 32)
		if err != nil || n == 0 || isPct && (of != "VG" && of != "FREE" || n > 100) {
			o.usageMsg(fmt.Sprintf("Invalid argument for --extents: %s\n  Error during parsing of command line.", extArg))
			return
		}
		if isPct {
			pct, pctOf = n, of
		} else {
			size = n // extents, converted below
		}
	}
	if v, ok := p.last("poolmetadatasize"); ok {
		var plus bool
		var err error
		if metaSize, plus, err = parseSize(v, 'm'); err != nil || plus || metaSize == 0 {
			o.usageMsg(fmt.Sprintf("Can't parse size argument.\n  Invalid argument for --poolmetadatasize: %s\n  Error during parsing of command line.", v))
			return
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	g, ok := h.vgs[p.pos[0]]
	if !ok {
		o.fail(lvmFailed, "Volume group %q not found", p.pos[0])
		o.fail(lvmFailed, "Cannot process volume group %s", p.pos[0])
		return
	}
	if g.lvs[name] != nil {
		o.fail(lvmFailed, "Logical Volume %q already exists in volume group %q", name, g.name)
		return
	}
	var data uint64 // extents
	approx := pctOf != ""
	switch {
	case pctOf == "VG":
		data = pct * g.extents / 100
	case pctOf == "FREE":
		data = pct * g.free() / 100
	case hasSize:
		if size%g.extent != 0 {
			size = roundUp(size, g.extent)
			o.info("Rounding up size to full physical extent %s.", displaySize(size))
		}
		data = size / g.extent
	default:
		data = size
	}
	if data == 0 {
		o.fail(lvmFailed, "Calculated size of logical volume is 0 extents. Needs to be larger.")
		return
	}
	var meta uint64 // extents
	if metaSize > 0 {
		meta = roundUp(max(metaSize, 2<<20), g.extent) / g.extent
	} else {
		meta = roundUp(max(2<<20, data*g.extent/DefaultChunkSize*64), g.extent) / g.extent
	}
	o.info("Thin pool volume with chunk size %s can address at most <15.88 TiB of data.", displaySize(DefaultChunkSize))
	if pctOf == "FREE" {
		if data <= 2*meta {
			o.fail(lvmFailed, "Not enough space for thin pool creation.")
			return
		}
		data -= 2 * meta
	}
	free := g.free()
	if free < meta { // the spare, allocated first without approximation
		o.fail(lvmFailed, "Volume group %q has insufficient free space (%d extents): %d required.", g.name, free, meta)
		return
	}
	free -= meta
	switch {
	case !approx && free < data:
		o.fail(lvmFailed, "Volume group %q has insufficient free space (%d extents): %d required.", g.name, free, data)
		return
	case !approx && free < data+meta:
		o.fail(lvmFailed, "Insufficient suitable allocatable extents for logical volume %s: %d more required", name, data+meta-free)
		return
	case free <= meta:
		o.fail(lvmFailed, "Insufficient suitable allocatable extents found for logical volume %s.", name)
		return
	case free < data+meta:
		data = free - meta // approx_alloc: as much as there is
	}
	g.lvs[name] = &logicalVolume{
		name: name, vg: g, pool: true, size: data * g.extent, extents: data + 2*meta,
		active: true, chunkSize: DefaultChunkSize, metaSize: meta * g.extent,
	}
	o.info("Logical volume %q created.", name)
}
