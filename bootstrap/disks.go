package bootstrap

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/pvehci/pvehci/storage/lvm"
)

// blockDevice is one row of lsblk --json.
type blockDevice struct {
	Path        string        `json:"path"`
	Type        string        `json:"type"`
	FSType      *string       `json:"fstype"`
	PTType      *string       `json:"pttype"`
	Mountpoints []*string     `json:"mountpoints"`
	Children    []blockDevice `json:"children"`
}

// lsblkArgs is the lsblk command line inspectDisk parses.
var lsblkArgs = []string{"lsblk", "--json", "--bytes", "--output", "PATH,TYPE,FSTYPE,PTTYPE,MOUNTPOINTS"}

// diskState is what a disk holds, for the decision whether bootstrap may
// put it into the volume group.
type diskState struct {
	Path string
	// VG is the volume group the disk is a physical volume of.
	VG string
	// Signatures lists what is on the disk: a partition table, a file
	// system, an LVM label, partitions.
	Signatures []string
	// Mounted lists mount points on the disk or its partitions.
	Mounted []string
}

// inspectDisk asks lsblk and pvs what is on a disk.
func inspectDisk(ctx context.Context, h *Host, disk string, pvs []lvm.PV) (diskState, error) {
	out, err := output(ctx, h, lsblkArgs[0], append(lsblkArgs[1:], disk)...)
	if err != nil {
		return diskState{}, fmt.Errorf("disk %s: %w; check the disks list of this node in the cluster file", disk, err)
	}
	var rep struct {
		Blockdevices []blockDevice `json:"blockdevices"`
	}
	if err := json.Unmarshal(out, &rep); err != nil {
		return diskState{}, fmt.Errorf("reading lsblk's answer for %s: %w", disk, err)
	}
	// Without a NAME column lsblk prints a flat list rather than a tree:
	// the disk and, in an order that varies between versions (Debian
	// 12's lists the disk after the LVM volumes on it), its partitions
	// and the devices stacked on it.
	i := slices.IndexFunc(rep.Blockdevices, func(b blockDevice) bool { return b.Path == disk })
	if i < 0 {
		return diskState{}, fmt.Errorf("disk %s: lsblk does not know it as a block device; check the disks list of this node in the cluster file", disk)
	}
	dev := rep.Blockdevices[i]
	for j, b := range rep.Blockdevices {
		if j != i {
			dev.Children = append(dev.Children, b)
		}
	}
	st := diskState{Path: disk}
	switch dev.Type {
	case "disk", "loop", "mpath":
	default:
		return st, fmt.Errorf("disk %s is a %s, not a whole disk; name whole disks in the cluster file (pvehci partitions nothing)", disk, dev.Type)
	}
	for _, p := range pvs {
		if p.Name == disk {
			st.VG = p.VG
		}
	}
	if dev.PTType != nil && *dev.PTType != "" {
		st.Signatures = append(st.Signatures, *dev.PTType+" partition table")
	}
	if dev.FSType != nil && *dev.FSType != "" {
		st.Signatures = append(st.Signatures, *dev.FSType+" signature")
	}
	var walk func(d blockDevice)
	walk = func(d blockDevice) {
		for _, m := range d.Mountpoints {
			if m != nil && *m != "" {
				st.Mounted = append(st.Mounted, *m)
			}
		}
		for _, c := range d.Children {
			walk(c)
		}
	}
	walk(dev)
	for _, c := range dev.Children {
		st.Signatures = append(st.Signatures, c.Type+" "+c.Path)
	}
	return st, nil
}

// readPVs lists the physical volumes.
func readPVs(ctx context.Context, h *Host) ([]lvm.PV, error) {
	args := lvm.PVSArgs()
	out, err := output(ctx, h, args[0], args[1:]...)
	if err != nil {
		return nil, fmt.Errorf("listing LVM physical volumes: %w", err)
	}
	return lvm.ParsePVs(out)
}

// diskProblem says why bootstrap refuses a disk, or "" when the disk can go
// into (or already is in) the volume group. A disk in our volume group is
// ours; anything else on a disk is refused unless the operator named it
// with --wipe, and a mounted disk is refused always.
func diskProblem(d diskState, vg string, wipe []string) string {
	if len(d.Mounted) > 0 {
		return fmt.Sprintf("disk %s is mounted on %s; unmount it and take it out of /etc/fstab, or use another disk", d.Path, strings.Join(d.Mounted, ", "))
	}
	if d.VG == vg {
		return ""
	}
	if d.VG != "" {
		// Wiping a physical volume of a live group would pull disks from
		// under its logical volumes; the group goes first, by hand.
		return fmt.Sprintf("disk %s belongs to LVM volume group %s; if its data may go, remove that group first (vgremove %s; pvremove %s)", d.Path, d.VG, d.VG, d.Path)
	}
	if len(d.Signatures) > 0 && !slices.Contains(wipe, d.Path) {
		return fmt.Sprintf("disk %s is not empty (%s); if its data may go, pass --wipe %s", d.Path, strings.Join(d.Signatures, ", "), d.Path)
	}
	return ""
}
