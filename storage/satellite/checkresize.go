package satellite

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"

	"github.com/pvehci/pvehci/storage/lvm"
)

// A grown LV whose metadata DRBD did not move.
//
// DRBD's internal metadata sits at the end of the backing LV, at offsets
// computed from the LV's size, and drbdmeta and the kernel look for it
// only there. The satellite extends an LV only while DRBD holds it (DRBD
// moves the metadata at `drbdadm resize`) or before create-md, but a node
// that crashes after lvextend and before the resize, or an LV an operator
// extended while the resource was down, leaves the metadata at the end of
// the old size. `drbdmeta get-gi` then exits 1 exactly as for an LV
// without metadata, and create-md --force, which the probe's answer would
// call for, writes new metadata at the new end: the volume loses its
// generation identifiers and its data counts as Inconsistent (real
// drbdmeta 9.22 on a loop device, research in storage/sim/checkresize.go).
//
// drbd-utils records each minor's backing size in LastKnownPath whenever
// it writes metadata (create-md, the apply-al of every attach, resize).
// `drbdadm check-resize RES/VNR` (drbdadm(8), drbdmeta(8)) finds the
// metadata at the end of that size and moves it to the LV's end. So a
// volume whose probe finds no metadata while that file names a size
// smaller than the LV gets [CheckResize] instead of create-md, and is
// then attached as usual; once attached, the grow completes with
// `drbdadm resize` (resize.go). drbdmeta does not compare the device name
// in the file, and neither does this check.
//
// When check-resize finds nothing there either (the file is stale: the
// kernel moved the metadata at a resize that drbdadm on this node did not
// run, or it belongs to a device this minor had before), the action fails
// every pass with what to do; pvehci never guesses by creating metadata.

// LastKnownDir is drbd-utils' DRBD_LIB_DIR on Debian and Proxmox.
const LastKnownDir = "/var/lib/drbd"

// LastKnownPath is the file in which drbd-utils keeps the last-known size
// of minor's backing device: "SIZE\tDEVICE\n", the size in bytes
// (drbd-utils shared_tool.c lk_bdev_save; drbdsetup(8) "check-resize").
func LastKnownPath(minor int) string {
	return LastKnownDir + "/drbd-minor-" + strconv.Itoa(minor) + ".lkbd"
}

// checkResizeArgv is the command line of CheckResize.
func checkResizeArgv(rsc string, vnr int) []string {
	return []string{"drbdadm", "-vvv", "check-resize", rsc + "/" + strconv.Itoa(vnr)}
}

// observeLastKnown records in o.LastKnownSize the last-known size of v's
// backing device when it is smaller than lv, whose end the probe found
// without metadata. A missing file is no information; a file that cannot
// be read is an error, so that no metadata is created on a guess.
func (r *Reconciler) observeLastKnown(o *Observed, v DesiredVolume, lv lvm.LV) error {
	data, err := r.FS.ReadFile(LastKnownPath(v.Minor))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read DRBD's last-known size of %s: %w", v.Device(), err)
	}
	size, err := parseLastKnown(data)
	if err != nil {
		return fmt.Errorf("%s has no DRBD metadata at its end and %s cannot be read (%v): if the LV grew while DRBD was down its metadata is at the end of its old size; write that size in bytes into the file, or delete the file if the LV never held this volume's data", v.Device(), LastKnownPath(v.Minor), err)
	}
	if size >= lv.Size {
		return nil // the probe looked there already
	}
	if o.LastKnownSize == nil {
		o.LastKnownSize = map[string]uint64{}
	}
	o.LastKnownSize[v.Key()] = size
	return nil
}

// parseLastKnown reads the size from a last-known-size file, as
// lk_bdev_load's fscanf("%llu") does.
func parseLastKnown(data []byte) (uint64, error) {
	s := strings.TrimLeft(string(data), " \t\n")
	n := 0
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	size, err := strconv.ParseUint(s[:n], 10, 64)
	if err != nil || size == 0 {
		return 0, fmt.Errorf("no size in %q", strings.TrimSpace(string(data)))
	}
	return size, nil
}

// planCheckResize returns the CheckResize of volume v, which the probe
// found without metadata at the end of its LV, when DRBD last knew the LV
// at a smaller size.
func planCheckResize(d DesiredResource, v DesiredVolume, got Observed) (Action, bool) {
	old, ok := got.LastKnownSize[v.Key()]
	if !ok {
		return Action{}, false
	}
	return Action{Kind: CheckResize, Resource: d.Name, Volume: v.Number, Minor: v.Minor, VG: v.VG, LV: v.LV, SizeKiB: int64(old / 1024)}, true
}

// checkResize runs `drbdadm check-resize RES/VNR`. It is planned only
// while DRBD does not hold the disk: on an attached volume drbdadm runs
// `drbdsetup resize` instead (drbd-utils drbdadm_main.c adm_chk_resize),
// a resize the controller did not ask for.
func (r *Reconciler) checkResize(ctx context.Context, a Action) error {
	rv := a.Resource + "/" + strconv.Itoa(a.Volume)
	if _, err := r.Runner.Run(ctx, r.cmd(checkResizeArgv(a.Resource, a.Volume)...)); err != nil {
		if strings.Contains(err.Error(), "no suitable meta data found") {
			return fmt.Errorf("move the DRBD metadata of %s to the end of its grown LV %s/%s: it is neither there nor at the end of the %d KiB that %s names, and pvehci creates no metadata over a volume that may hold some. Write the LV's size in bytes before it grew (lvm keeps old sizes in /etc/lvm/archive) into that file as \"<bytes>\\t%s\" and the next pass moves the metadata; only if the LV never held this volume's data, delete the file and the next pass creates new metadata: %w",
				rv, a.VG, a.LV, a.SizeKiB, LastKnownPath(a.Minor), lvm.DevicePath(a.VG, a.LV), err)
		}
		return fmt.Errorf("move the DRBD metadata of %s to the end of its grown LV %s/%s (the next pass retries): %w", rv, a.VG, a.LV, err)
	}
	return nil
}
