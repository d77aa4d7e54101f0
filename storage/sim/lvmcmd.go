package sim

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/pvehci/pvehci/internal/run"
)

// commonSpecs are options every simulated lvm command accepts. --config
// is accepted and ignored: LINSTOR passes a device filter with it, and the
// simulation has no other devices to filter out.
var commonSpecs = []optSpec{
	{long: "yes", short: 'y'},
	{long: "quiet", short: 'q'},
	{long: "config", value: true},
}

func specs(extra ...optSpec) []optSpec { return append(slices.Clone(commonSpecs), extra...) }

// report answers lvs, vgs and pvs with JSON shaped byte for byte like
// lvm2 2.03's --reportformat json (two-space indent, one row per line,
// every value a string); see TestReportShapeMatchesRealLVM.
func (h *Host) report(o *output, prog string, args []string) {
	p, err := parseArgs(prog, args, specs(
		optSpec{long: "reportformat", value: true},
		optSpec{long: "units", value: true},
		optSpec{long: "nosuffix"},
		optSpec{long: "options", short: 'o', value: true},
	))
	if err != nil {
		o.usage(err)
		return
	}
	if f, _ := p.last("reportformat"); f != "json" {
		o.notModelled(prog, "a report without --reportformat json")
		return
	}
	if u, _ := p.last("units"); (u != "b" && u != "B") || !p.has("nosuffix") {
		o.notModelled(prog, "a report without --units b --nosuffix")
		return
	}
	cols, ok := p.last("options")
	if !ok {
		o.notModelled(prog, "the default column set (no -o)")
		return
	}
	fields := strings.Split(cols, ",")
	h.mu.Lock()
	defer h.mu.Unlock()

	kind := prog[:2]
	var probe func(string) bool
	switch kind {
	case "lv":
		probe = func(f string) bool { _, ok := (&logicalVolume{vg: &volumeGroup{}}).field(f); return ok }
	case "vg":
		probe = func(f string) bool { _, ok := (&volumeGroup{}).field(f); return ok }
	default:
		probe = func(f string) bool { _, ok := (&disk{}).pvField(f); return ok }
	}
	for _, f := range fields {
		if !probe(f) {
			// lvm prints the list of fields first; the last line is the
			// one that says what is wrong, and the report stays empty.
			o.fail(lvmFailed, "Unrecognised field: %s", f)
			o.stdout.WriteString("  {\n      \"report\": [\n      ]\n  }\n")
			return
		}
	}

	var rows [][]string
	switch kind {
	case "lv":
		for _, lv := range h.selectLVs(o, p.pos) {
			rows = append(rows, values(fields, lv.field))
		}
	case "vg":
		for _, g := range h.selectVGs(o, p.pos) {
			rows = append(rows, values(fields, g.field))
		}
	default:
		// lvm sorts pvs by pv_name by default.
		for _, d := range h.sortedDisks() {
			if d.pv && (len(p.pos) == 0 || slices.Contains(p.pos, d.path)) {
				rows = append(rows, values(fields, d.pvField))
			}
		}
		for _, name := range p.pos {
			if d := h.disks[name]; d == nil || !d.pv {
				o.fail(lvmFailed, "Failed to find physical volume %q.", name)
			}
		}
	}
	writeReport(&o.stdout, kind, fields, rows)
}

func values(fields []string, get func(string) (string, bool)) []string {
	out := make([]string, len(fields))
	for i, f := range fields {
		out[i], _ = get(f)
	}
	return out
}

func writeReport(b *strings.Builder, kind string, fields []string, rows [][]string) {
	b.WriteString("  {\n      \"report\": [\n          {\n              \"" + kind + "\": [\n")
	for i, r := range rows {
		b.WriteString("                  {")
		for j, f := range fields {
			if j > 0 {
				b.WriteString(", ")
			}
			k, _ := json.Marshal(f)
			v, _ := json.Marshal(r[j])
			b.Write(k)
			b.WriteByte(':')
			b.Write(v)
		}
		b.WriteByte('}')
		if i < len(rows)-1 {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
	}
	b.WriteString("              ]\n          }\n      ]\n  }\n")
}

// selectLVs resolves lvs selectors (VG, VG/LV, @TAG; none: all), in lvm's
// default order (vg_name, lv_name).
func (h *Host) selectLVs(o *output, sel []string) []*logicalVolume {
	want := map[*logicalVolume]bool{}
	for _, s := range sel {
		switch {
		case strings.HasPrefix(s, "@"):
			for _, g := range h.vgs {
				for _, lv := range g.lvs {
					if slices.Contains(lv.tags, s[1:]) {
						want[lv] = true
					}
				}
			}
		case strings.Contains(s, "/"):
			lv, msg := h.lookup(s)
			if lv == nil {
				h.failLookup(o, s, msg)
				continue
			}
			want[lv] = true
		default:
			g, ok := h.vgs[s]
			if !ok {
				o.fail(lvmFailed, "Volume group %q not found", s)
				o.fail(lvmFailed, "Cannot process volume group %s", s)
				continue
			}
			for _, lv := range g.lvs {
				want[lv] = true
			}
		}
	}
	var out []*logicalVolume
	for _, g := range h.sortedVGs() {
		for _, lv := range g.sortedLVs() {
			if len(sel) == 0 || want[lv] {
				out = append(out, lv)
			}
		}
	}
	return out
}

func (h *Host) selectVGs(o *output, sel []string) []*volumeGroup {
	var out []*volumeGroup
	for _, g := range h.sortedVGs() {
		if len(sel) == 0 || slices.Contains(sel, g.name) || slices.ContainsFunc(g.tags, func(t string) bool { return slices.Contains(sel, "@"+t) }) {
			out = append(out, g)
		}
	}
	for _, s := range sel {
		if _, ok := h.vgs[s]; !ok && !strings.HasPrefix(s, "@") {
			o.fail(lvmFailed, "Volume group %q not found", s)
			o.fail(lvmFailed, "Cannot process volume group %s", s)
		}
	}
	return out
}

// failLookup prints lvm's message for a VG/LV that does not resolve.
func (h *Host) failLookup(o *output, full, msg string) {
	o.fail(lvmFailed, "%s", msg)
	if vg, _, _ := strings.Cut(full, "/"); h.vgs[vg] == nil {
		o.fail(lvmFailed, "Cannot process volume group %s", vg)
	}
}

// validName follows lvm's name rules (lvm(8) "VALID NAMES": letters,
// digits and "+_.-", not starting with '-', not "." or "..", and not
// ending in a reserved suffix of hidden sub-LVs).
func validName(n string) bool {
	if n == "" || n == "." || n == ".." || n[0] == '-' || len(n) > 127 {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("+_.-", c) >= 0) {
			return false
		}
	}
	for _, s := range []string{"_cdata", "_cmeta", "_corig", "_mlog", "_mimage", "_pmspare", "_rimage", "_rmeta", "_tdata", "_tmeta", "_vorigin"} {
		if strings.Contains(n, s) {
			return false
		}
	}
	return !strings.HasPrefix(n, "snapshot") && !strings.HasPrefix(n, "pvmove")
}

// validTag follows lvm(8) "VALID NAMES" for tags: letters, digits and
// "_+.-/=!:&#", at most 1024 characters.
func validTag(t string) bool {
	if t == "" || len(t) > 1024 {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("_+.-/=!:&#", c) >= 0) {
			return false
		}
	}
	return true
}

func yesNo(v string) (bool, bool) {
	switch v {
	case "y", "ay":
		return true, true
	case "n", "an":
		return false, true
	}
	return false, false
}

// autoName is lvm's default name for an LV created without -n: the first
// free lvolN.
func autoName(g *volumeGroup) string {
	for i := 0; ; i++ {
		if n := fmt.Sprintf("lvol%d", i); g.lvs[n] == nil {
			return n
		}
	}
}

// lvcreate creates a thin volume in a pool or a thin snapshot.
func (h *Host) lvcreate(o *output, args []string) {
	p, err := parseArgs("lvcreate", args, specs(
		optSpec{long: "virtualsize", short: 'V', value: true},
		optSpec{long: "size", short: 'L', value: true},
		optSpec{long: "thin", short: 'T'},
		optSpec{long: "thinpool", value: true},
		optSpec{long: "name", short: 'n', value: true},
		optSpec{long: "addtag", value: true},
		optSpec{long: "snapshot", short: 's'},
		optSpec{long: "setactivationskip", short: 'k', value: true},
		optSpec{long: "ignoreactivationskip", short: 'K'},
		optSpec{long: "activate", short: 'a', value: true},
		optSpec{long: "permission", short: 'p', value: true},
		optSpec{long: "type", value: true},
		optSpec{long: "extents", short: 'l', value: true},
		optSpec{long: "poolmetadatasize", value: true},
	))
	if err != nil {
		o.usage(err)
		return
	}
	if t, _ := p.last("type"); t == "thin-pool" {
		h.lvcreateThinPool(o, p)
		return
	}
	if p.has("extents") || p.has("poolmetadatasize") {
		o.notModelled("lvcreate", "--extents or --poolmetadatasize without --type thin-pool")
		return
	}
	if t, ok := p.last("type"); ok && t != "thin" {
		o.notModelled("lvcreate", "--type "+t)
		return
	}
	for _, t := range p.all("addtag") {
		if !validTag(t) {
			o.usageMsg(fmt.Sprintf("Invalid argument for --addtag: %s\n  Error during parsing of command line.", t))
			return
		}
	}
	activate, readOnly := true, false
	if v, ok := p.last("activate"); ok {
		if activate, ok = yesNo(v); !ok {
			o.usageMsg(fmt.Sprintf("Invalid argument for --activate: %s\n  Error during parsing of command line.", v))
			return
		}
	}
	if v, ok := p.last("permission"); ok {
		switch v {
		case "r":
			readOnly = true
		case "rw":
		default:
			o.usageMsg(fmt.Sprintf("Invalid argument for --permission: %s\n  Error during parsing of command line.", v))
			return
		}
	}
	name, named := p.last("name")
	if named && !validName(name) {
		o.usageMsg(fmt.Sprintf("Logical volume name %q is invalid.\n  Run `lvcreate --help' for more information.", name))
		return
	}
	// A snapshot copies the origin's DRBD metadata, which the network's
	// resync changes under net.mu; lock order: net.mu before h.mu.
	var meta map[*logicalVolume]*drbdMeta
	if n := h.network(); n != nil && p.has("snapshot") {
		n.mu.Lock()
		defer n.mu.Unlock()
		meta = h.drbd.meta
	}
	h.mu.Lock()
	defer h.mu.Unlock()

	if p.has("snapshot") {
		if p.has("size") || p.has("virtualsize") {
			o.notModelled("lvcreate", "a snapshot with a size (old-style COW snapshot)")
			return
		}
		if len(p.pos) != 1 {
			o.usageMsg("Please specify a logical volume to act as the snapshot origin.")
			return
		}
		origin, msg := h.lookup(p.pos[0])
		if origin == nil {
			h.failLookup(o, p.pos[0], msg)
			return
		}
		if origin.pool {
			o.notModelled("lvcreate", "a snapshot of a thin pool")
			return
		}
		// Thin snapshots get the persistent activation-skip flag unless
		// -kn, and are then activated only with -K (lvmthin(7) "Thin
		// snapshots are created with the persistent activation skip flag").
		skip := true
		if v, ok := p.last("setactivationskip"); ok {
			if skip, ok = yesNo(v); !ok {
				o.usageMsg(fmt.Sprintf("Invalid argument for --setactivationskip: %s\n  Error during parsing of command line.", v))
				return
			}
		}
		g := origin.vg
		if !named {
			name = autoName(g)
		}
		if g.lvs[name] != nil {
			o.fail(lvmFailed, "Logical Volume %q already exists in volume group %q", name, g.name)
			return
		}
		snap := &logicalVolume{
			name: name, vg: g, size: origin.size, thinPool: origin.thinPool, origin: origin.name,
			tags: sortedTags(p.all("addtag")), skip: skip, readOnly: readOnly,
			active: activate && (!skip || p.has("ignoreactivationskip")),
		}
		if len(origin.chunks) > 0 {
			snap.chunks = make(map[uint64]*chunk, len(origin.chunks))
			for i, c := range origin.chunks {
				c.refs++
				snap.chunks[i] = c
			}
		}
		g.lvs[name] = snap
		// DRBD's internal metadata sits in the origin's last blocks, so
		// the snapshot has a copy of it as it was at this instant: what
		// a restore or a rollback from the snapshot attaches.
		if meta != nil && meta[origin] != nil {
			meta[snap] = meta[origin].clone()
		}
		h.warnOverprovisioned(o, origin.thinPool)
		o.info("Logical volume %q created.", name)
		return
	}

	vsize, ok := p.last("virtualsize")
	if !ok {
		if p.has("size") {
			o.notModelled("lvcreate", "a linear LV or thin pool (-L without -V)")
		} else {
			o.usageMsg("No command with matching syntax recognised.  Run 'lvcreate --help' for more information.")
		}
		return
	}
	if p.has("size") {
		o.notModelled("lvcreate", "creating a thin pool and a thin volume at once (-L with -V)")
		return
	}
	size, plus, err := parseSize(vsize, 'm')
	if err != nil || plus || size == 0 {
		o.usageMsg(fmt.Sprintf("Can't parse size argument.\n  Invalid argument for --virtualsize: %s\n  Error during parsing of command line.", vsize))
		return
	}
	// The pool: -T VG/POOL, --thinpool VG/POOL, or VG --thinpool POOL.
	var vgName, poolName string
	tp, hasTP := p.last("thinpool")
	switch {
	case hasTP && strings.Contains(tp, "/") && len(p.pos) == 0:
		vgName, poolName, _ = strings.Cut(tp, "/")
	case hasTP && len(p.pos) == 1 && !strings.Contains(p.pos[0], "/"):
		vgName, poolName = p.pos[0], tp
	case !hasTP && p.has("thin") && len(p.pos) == 1 && strings.Contains(p.pos[0], "/"):
		vgName, poolName, _ = strings.Cut(p.pos[0], "/")
	default:
		o.notModelled("lvcreate", "this form of -V (the simulation needs -T VG/POOL or --thinpool)")
		return
	}
	g, ok := h.vgs[vgName]
	if !ok {
		o.fail(lvmFailed, "Volume group %q not found", vgName)
		o.fail(lvmFailed, "Cannot process volume group %s", vgName)
		return
	}
	pool := g.lvs[poolName]
	if pool == nil || !pool.pool {
		o.fail(lvmFailed, "Pool %s not found in Volume group %s.", poolName, vgName)
		return
	}
	if !named {
		name = autoName(g)
	}
	if g.lvs[name] != nil {
		o.fail(lvmFailed, "Logical Volume %q already exists in volume group %q", name, g.name)
		return
	}
	if size%g.extent != 0 {
		size = roundUp(size, g.extent)
		o.info("Rounding up size to full physical extent %s", displaySize(size))
	}
	g.lvs[name] = &logicalVolume{
		name: name, vg: g, size: size, thinPool: pool,
		tags: sortedTags(p.all("addtag")), active: activate, readOnly: readOnly,
	}
	h.warnOverprovisioned(o, pool)
	o.info("Logical volume %q created.", name)
}

func sortedTags(tags []string) []string {
	var out []string
	for _, t := range tags {
		out = addTag(out, t)
	}
	return out
}

// warnOverprovisioned prints lvm's warning when the thin volumes of a pool
// add up to more than the pool (lvmthin(7) "Overprovisioning"). It is a
// warning only; the command succeeds.
func (h *Host) warnOverprovisioned(o *output, pool *logicalVolume) {
	var sum uint64
	for _, lv := range pool.vg.lvs {
		if lv.thinPool == pool {
			sum += lv.size
		}
	}
	if sum > pool.size {
		o.warn("WARNING: Sum of all thin volume sizes (%s) exceeds the size of thin pool %s/%s (%s).",
			displaySize(sum), pool.vg.name, pool.name, displaySize(pool.size))
	}
}

// lvremove removes thin volumes and snapshots. A snapshot of a removed
// origin stays valid (it owns its chunks) and loses its origin.
func (h *Host) lvremove(o *output, c run.Cmd) {
	p, err := parseArgs("lvremove", c.Args, specs(optSpec{long: "force", short: 'f'}))
	if err != nil {
		o.usage(err)
		return
	}
	if len(p.pos) == 0 {
		o.usageMsg("Please enter one or more logical volume paths.\n  Run `lvremove --help' for more information.")
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, full := range p.pos {
		if !strings.Contains(full, "/") {
			o.notModelled("lvremove", "removing a whole volume group's LVs")
			continue
		}
		lv, msg := h.lookup(full)
		if lv == nil {
			h.failLookup(o, full, msg)
			continue
		}
		if lv.pool {
			o.notModelled("lvremove", "removing a thin pool")
			continue
		}
		// Not verifiable here (it needs an active LV, so device-mapper):
		// the wording of "in use" and of the prompt is lvm2's as
		// remembered.
		if lv.open > 0 {
			o.fail(lvmFailed, "Logical volume %s/%s in use.", lv.vg.name, lv.name)
			continue
		}
		// An active LV needs confirmation; without -f or -y lvm asks on
		// the terminal and takes anything but "y" (EOF included) as no.
		if lv.active && !p.has("force") && !p.has("yes") {
			fmt.Fprintf(&o.stdout, "Do you really want to remove active logical volume %s/%s? [y/n]: ", lv.vg.name, lv.name)
			if !strings.HasPrefix(strings.TrimSpace(string(c.Stdin)), "y") {
				o.fail(lvmFailed, "Logical volume %s not removed.", lv.name)
				continue
			}
		}
		lv.release()
		delete(lv.vg.lvs, lv.name)
		for _, s := range lv.vg.lvs {
			if s.origin == lv.name {
				s.origin = ""
			}
		}
		o.info("Logical volume %q successfully removed.", lv.name)
	}
}

// lvrename renames an LV within its VG: `lvrename VG/OLD [VG/]NEW` or
// `lvrename VG OLD NEW`. Snapshots keep their origin under its new name, and
// an LV's DRBD metadata (kept by LV, see drbdHost) goes with it, as both
// live inside the LV. Messages and exit codes are lvm2 2.03's on this
// machine (TestReportShapeMatchesRealLVM).
func (h *Host) lvrename(o *output, args []string) {
	p, err := parseArgs("lvrename", args, specs())
	if err != nil {
		o.usage(err)
		return
	}
	var vgName, oldName, newName string
	switch {
	case len(p.pos) == 2 && strings.Contains(p.pos[0], "/"):
		vgName, oldName, _ = strings.Cut(p.pos[0], "/")
		newName = p.pos[1]
		if v, n, ok := strings.Cut(newName, "/"); ok {
			if v != vgName {
				o.usageMsg(fmt.Sprintf("Logical volume names must have the same volume group (%q or %q)\n  Run `lvrename --help' for more information.", vgName, v))
				return
			}
			newName = n
		}
	case len(p.pos) == 3:
		vgName, oldName, newName = p.pos[0], p.pos[1], p.pos[2]
	default:
		o.usageMsg("No command with matching syntax recognised.  Run 'lvrename --help' for more information.")
		return
	}
	if !validName(newName) {
		o.usageMsg(fmt.Sprintf("New logical volume name %q is invalid\n  Run `lvrename --help' for more information.", newName))
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	g := h.vgs[vgName]
	if g == nil {
		o.fail(lvmFailed, "Volume group %q not found", vgName)
		o.fail(lvmFailed, "Cannot process volume group %s", vgName)
		return
	}
	lv := g.lvs[oldName]
	if lv == nil {
		o.fail(lvmFailed, "Existing logical volume %q not found in volume group %q", oldName, vgName)
		return
	}
	if g.lvs[newName] != nil {
		o.fail(lvmFailed, "Logical Volume %q already exists in volume group %q", newName, vgName)
		return
	}
	if lv.pool {
		o.notModelled("lvrename", "renaming a thin pool")
		return
	}
	delete(g.lvs, oldName)
	lv.name = newName
	g.lvs[newName] = lv
	for _, s := range g.lvs {
		if s.origin == oldName {
			s.origin = newName
		}
	}
	o.info("Renamed %q to %q in volume group %q", oldName, newName, vgName)
}

// lvextend grows a thin volume (no VG space needed) or a thin pool's data
// (VG extents needed; a pool that ran out of space recovers).
func (h *Host) lvextend(o *output, args []string) {
	p, err := parseArgs("lvextend", args, specs(optSpec{long: "size", short: 'L', value: true}))
	if err != nil {
		o.usage(err)
		return
	}
	arg, ok := p.last("size")
	if !ok || len(p.pos) != 1 {
		o.usageMsg("No command with matching syntax recognised.  Run 'lvextend --help' for more information.")
		return
	}
	size, plus, err := parseSize(arg, 'm')
	if err != nil {
		o.usageMsg(fmt.Sprintf("Can't parse size argument.\n  Invalid argument for --size: %s\n  Error during parsing of command line.", arg))
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	lv, msg := h.lookup(p.pos[0])
	if lv == nil {
		h.failLookup(o, p.pos[0], msg)
		return
	}
	g := lv.vg
	if plus {
		size += lv.size
	}
	if size%g.extent != 0 {
		size = roundUp(size, g.extent)
		o.info("Rounding size to boundary between physical extents: %s.", displaySize(size))
	}
	oldExt, newExt := lv.size/g.extent, size/g.extent
	switch {
	case newExt == oldExt:
		o.fail(lvmFailed, "New size (%d extents) matches existing size (%d extents).", newExt, oldExt)
		return
	case newExt < oldExt:
		o.fail(lvmFailed, "New size given (%d extents) not larger than existing size (%d extents)", newExt, oldExt)
		return
	}
	shown := g.name + "/" + lv.name
	if lv.pool {
		// Wording unverified: a pool cannot be made here without
		// device-mapper.
		if need := newExt - oldExt; need > g.free() {
			o.fail(lvmFailed, "Insufficient free space: %d extents needed, but only %d available", need, g.free())
			return
		}
		lv.extents += newExt - oldExt
		lv.outOfSpace = false
		shown += "_tdata" // lvm reports the pool's data sub-LV here
	}
	o.info("Size of logical volume %s changed from %s (%d extents) to %s (%d extents).",
		shown, displaySize(lv.size), oldExt, displaySize(size), newExt)
	lv.size = size
	o.info("Logical volume %s/%s successfully resized.", g.name, lv.name)
}

// lvchange changes tags, activation and the activation-skip flag.
func (h *Host) lvchange(o *output, args []string) {
	p, err := parseArgs("lvchange", args, specs(
		optSpec{long: "addtag", value: true},
		optSpec{long: "deltag", value: true},
		optSpec{long: "activate", short: 'a', value: true},
		optSpec{long: "ignoreactivationskip", short: 'K'},
		optSpec{long: "setactivationskip", short: 'k', value: true},
	))
	if err != nil {
		o.usage(err)
		return
	}
	if !p.has("addtag") && !p.has("deltag") && !p.has("activate") && !p.has("setactivationskip") || len(p.pos) == 0 {
		o.usageMsg("No command with matching syntax recognised.  Run 'lvchange --help' for more information.")
		return
	}
	for _, t := range append(p.all("addtag"), p.all("deltag")...) {
		if !validTag(t) {
			o.usageMsg(fmt.Sprintf("Invalid argument for --addtag: %s\n  Error during parsing of command line.", t))
			return
		}
	}
	var activate, setSkip, skip bool
	if v, ok := p.last("activate"); ok {
		activate = true
		if _, ok := yesNo(v); !ok {
			o.usageMsg(fmt.Sprintf("Invalid argument for --activate: %s\n  Error during parsing of command line.", v))
			return
		}
	}
	if v, ok := p.last("setactivationskip"); ok {
		setSkip = true
		if skip, ok = yesNo(v); !ok {
			o.usageMsg(fmt.Sprintf("Invalid argument for --setactivationskip: %s\n  Error during parsing of command line.", v))
			return
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, full := range p.pos {
		lv, msg := h.lookup(full)
		if lv == nil {
			h.failLookup(o, full, msg)
			continue
		}
		meta := false
		for _, t := range p.all("addtag") {
			lv.tags, meta = addTag(lv.tags, t), true
		}
		for _, t := range p.all("deltag") {
			lv.tags, meta = slices.DeleteFunc(lv.tags, func(x string) bool { return x == t }), true
		}
		if setSkip {
			lv.skip, meta = skip, true
		}
		if activate {
			v, _ := p.last("activate")
			on, _ := yesNo(v)
			switch {
			case !on && lv.pool:
				o.notModelled("lvchange", "deactivating a thin pool")
				continue
			case !on && lv.open > 0:
				o.fail(lvmFailed, "Logical volume %s/%s in use.", lv.vg.name, lv.name)
				continue
			case !on:
				lv.active = false
			case !lv.skip || p.has("ignoreactivationskip"):
				// An LV with the activation-skip flag is skipped
				// without -K (lvmthin(7)); lvm says so only at -v.
				lv.active = true
			}
		}
		if meta {
			if len(lv.tags) == 0 {
				lv.tags = nil
			}
			o.info("Logical volume %s/%s changed.", lv.vg.name, lv.name)
		}
	}
}
