package bootstrap

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/pvehci/pvehci/internal/run"
	"github.com/pvehci/pvehci/storage/lvm"
)

// Thin pool metadata: 1 % of the volume group, as Proxmox's installer sizes
// the metadata of its own data pool, within what LVM allows (2 MiB to
// 15.81 GiB). Snapshot-heavy pools need the room: a full metadata device
// stops every volume in the pool.
const (
	minPoolMetadata = 64 << 20
	maxPoolMetadata = 16192 << 20
)

func poolMetadataSize(vgBytes uint64) uint64 {
	m := vgBytes / 100
	m = max(m, minPoolMetadata)
	m = min(m, maxPoolMetadata)
	return m &^ (1<<20 - 1)
}

// diskSize asks lsblk for a disk's size in bytes.
func diskSize(ctx context.Context, h *Host, disk string) (uint64, error) {
	out, err := output(ctx, h, "lsblk", "--json", "--bytes", "--nodeps", "--output", "SIZE", disk)
	if err != nil {
		return 0, fmt.Errorf("reading the size of %s: %w", disk, err)
	}
	var rep struct {
		Blockdevices []struct {
			Size json.Number `json:"size"`
		} `json:"blockdevices"`
	}
	if err := json.Unmarshal(out, &rep); err != nil || len(rep.Blockdevices) != 1 {
		return 0, fmt.Errorf("reading the size of %s from lsblk's answer %q", disk, strings.TrimSpace(string(out)))
	}
	n, err := strconv.ParseUint(rep.Blockdevices[0].Size.String(), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("reading the size of %s: %w", disk, err)
	}
	return n, nil
}

func readVGs(ctx context.Context, h *Host) ([]lvm.VG, error) {
	args := lvm.VGSArgs()
	out, err := output(ctx, h, args[0], args[1:]...)
	if err != nil {
		return nil, fmt.Errorf("listing LVM volume groups: %w", err)
	}
	return lvm.ParseVGs(out)
}

func readLVs(ctx context.Context, h *Host, vg string) ([]lvm.LV, error) {
	args := lvm.LVSArgs(vg)
	out, err := output(ctx, h, args[0], args[1:]...)
	if err != nil {
		return nil, fmt.Errorf("listing the logical volumes of %s: %w", vg, err)
	}
	return lvm.ParseLVs(out)
}

func storageStep(o Options) Step {
	n := o.Node
	return &actionStep{
		name: "storage",
		plan: func(ctx context.Context, h *Host) ([]action, error) {
			if len(n.Disks) == 0 {
				return nil, nil
			}
			pvs, err := readPVs(ctx, h)
			if err != nil {
				return nil, err
			}
			vgs, err := readVGs(ctx, h)
			if err != nil {
				return nil, err
			}
			var vg *lvm.VG
			for i := range vgs {
				if vgs[i].Name == n.VolumeGroup {
					vg = &vgs[i]
				}
			}
			var acts []action
			var fresh []string // disks to become physical volumes of the group
			for _, d := range n.Disks {
				st, err := inspectDisk(ctx, h, d, pvs)
				if err != nil {
					return nil, err
				}
				if p := diskProblem(st, n.VolumeGroup, o.Wipe); p != "" {
					return nil, fmt.Errorf("%s", p)
				}
				if st.VG == n.VolumeGroup {
					continue
				}
				if len(st.Signatures) > 0 {
					acts = append(acts, commandAction("erase "+strings.Join(st.Signatures, ", ")+" (--wipe "+d+")", run.Command("wipefs", "--all", d)))
				}
				fresh = append(fresh, d)
			}
			if vg != nil {
				for _, p := range pvs {
					if p.VG == n.VolumeGroup && !slices.Contains(n.Disks, p.Name) {
						return nil, fmt.Errorf("volume group %s also has %s, which is not in this node's disks in the cluster file; add it there", n.VolumeGroup, p.Name)
					}
				}
			}
			if len(fresh) > 0 {
				acts = append(acts, commandAction("make "+strings.Join(fresh, ", ")+" LVM physical volumes", run.Command("pvcreate", fresh...)))
				if vg == nil {
					acts = append(acts, commandAction("create volume group "+n.VolumeGroup, run.Command("vgcreate", append([]string{n.VolumeGroup}, fresh...)...)))
				} else {
					acts = append(acts, commandAction("add "+strings.Join(fresh, ", ")+" to volume group "+n.VolumeGroup, run.Command("vgextend", append([]string{n.VolumeGroup}, fresh...)...)))
				}
			}
			hasPool := false
			if vg != nil {
				lvs, err := readLVs(ctx, h, n.VolumeGroup)
				if err != nil {
					return nil, err
				}
				for _, lv := range lvs {
					if lv.Name == n.ThinPool {
						if !strings.HasPrefix(string(lv.Attr), "t") {
							return nil, fmt.Errorf("%s/%s exists but is not a thin pool (lv_attr %s); rename it or pick another thin_pool name in the cluster file", n.VolumeGroup, n.ThinPool, lv.Attr)
						}
						hasPool = true
					}
				}
			}
			if !hasPool {
				var size uint64
				if vg != nil {
					size = vg.Size
				}
				for _, d := range fresh {
					s, err := diskSize(ctx, h, d)
					if err != nil {
						return nil, err
					}
					size += s
				}
				meta := poolMetadataSize(size)
				acts = append(acts, commandAction(fmt.Sprintf("create thin pool %s on %d%% of %s with %d MiB of metadata", n.ThinPool, n.PoolPercent, n.VolumeGroup, meta>>20),
					run.Command("lvcreate", "--yes", "--type", "thin-pool", "--extents", strconv.Itoa(n.PoolPercent)+"%VG",
						"--poolmetadatasize", strconv.FormatUint(meta>>20, 10)+"m", "--name", n.ThinPool, n.VolumeGroup)))
			}
			return acts, nil
		},
		verify: func(ctx context.Context, h *Host) error {
			if len(n.Disks) == 0 {
				return nil
			}
			lvs, err := readLVs(ctx, h, n.VolumeGroup)
			if err != nil {
				return err
			}
			for _, lv := range lvs {
				if lv.Name == n.ThinPool && strings.HasPrefix(string(lv.Attr), "t") {
					return nil
				}
			}
			return fmt.Errorf("thin pool %s/%s is missing (lvs %s)", n.VolumeGroup, n.ThinPool, n.VolumeGroup)
		},
	}
}
