package sim

import (
	"fmt"
	"strconv"

	"github.com/pvehci/pvehci/internal/run"
	"github.com/pvehci/pvehci/storage/drbd"
)

// uuidJustCreated is the current UUID of fresh metadata (drbd's
// UUID_JUST_CREATED); real drbdmeta get-gi right after create-md prints it
// as 0000000000000004. The model keeps 0 for "just created".
const uuidJustCreated = 4

// drbdmeta answers the drbdmeta command lines the satellite runs
// (storage/satellite observe.go, apply.go and restore.go):
//
//	drbdmeta [--force] MINOR v09 DEVICE internal get-gi --node-id N
//	drbdmeta --force MINOR v09 DEVICE internal wipe-md
//	drbdmeta [--force] MINOR v09 DEVICE internal forget-peer --node-id N
//	drbdmeta [--force] MINOR v09 DEVICE internal check-resize   (checkresize.go)
//
// drbdmeta works without the DRBD module (testbed-local.md §2), so a host
// that is not attached to a Network answers too; it has no metadata.
// Outputs are the real drbdmeta's on this machine, on a 64 MiB file
// (see TestDRBDMeta), less the "ioctl(md_fd, BLKSSZGET) returned -1" line
// it prints only because a file is not a block device.
func (h *Host) drbdmeta(o *output, c run.Cmd) {
	args := c.Args
	force := len(args) > 0 && args[0] == "--force"
	if force {
		args = args[1:]
	}
	if len(args) < 5 || args[1] != "v09" || args[3] != "internal" {
		o.notModelled("drbdmeta", "a command line other than MINOR v09 DEVICE internal COMMAND")
		o.code = drbdUsage
		return
	}
	minor, err := strconv.Atoi(args[0])
	if err != nil || minor < 0 {
		o.notModelled("drbdmeta", fmt.Sprintf("minor %q", args[0]))
		o.code = drbdUsage
		return
	}
	device, command, rest := args[2], args[4], args[5:]
	nodeID := -1
	switch {
	case command == "get-gi" && len(rest) == 2 && rest[0] == "--node-id":
		if nodeID, err = strconv.Atoi(rest[1]); err != nil || nodeID < 0 || nodeID > 31 {
			o.notModelled("drbdmeta", "get-gi --node-id "+rest[1])
			o.code = drbdUsage
			return
		}
	case command == "forget-peer" && len(rest) == 2 && rest[0] == "--node-id":
		if nodeID, err = strconv.Atoi(rest[1]); err != nil || nodeID < 0 || nodeID > 31 {
			// Real, --node-id 40: this text and rc 10.
			o.stderr.WriteString("node-id out of range (0...31)\n")
			o.code = drbdKernelFailure
			return
		}
	case command == "wipe-md" && len(rest) == 0 && force:
	case command == "check-resize" && len(rest) == 0:
	default:
		o.notModelled("drbdmeta", fmt.Sprintf("%s %v (get-gi --node-id N, forget-peer --node-id N, --force wipe-md and check-resize are modelled)", command, rest))
		o.code = drbdUsage
		return
	}

	n := h.network()
	if n != nil {
		// Lock order: net.mu before h.mu (h.Device takes h.mu).
		n.mu.Lock()
		defer n.mu.Unlock()
	}
	dev, err := h.Device(device)
	if err != nil {
		// Real: "open(/dev/nosuch/lv) failed: No such file or directory", rc 20.
		fmt.Fprintf(&o.stderr, "open(%s) failed: No such file or directory\n", device)
		o.code = drbdNoModule
		return
	}
	defer dev.Close()
	var meta *drbdMeta
	if n != nil {
		// Metadata left at the end of a smaller size is not found
		// (checkresize.go).
		meta = metaAtEnd(h.drbd, dev)
		for _, r := range h.drbd.res {
			for _, v := range r.vols {
				if v.minor == minor && v.backing != nil {
					// drbdmeta refuses a minor the kernel has attached; the
					// text and rc 20 are the ones createMD reports (from
					// memory of drbd-utils 9, not checkable here).
					fmt.Fprintf(&o.stderr, "Device '%d' is configured!\n", minor)
					o.code = drbdNoModule
					return
				}
			}
		}
	}
	switch command {
	case "get-gi":
		if meta == nil {
			// Real, on a zeroed file: nothing on stdout, rc 1.
			o.code = 1
			return
		}
		o.stdout.WriteString(giLine(meta, nodeID) + "\n")
	case "forget-peer":
		// Real drbdmeta frees the peer's bitmap slot and clears its
		// bitmap UUID; on a zeroed file it answers rc 1 and nothing.
		if meta == nil {
			o.code = 1
			return
		}
		if _, used := meta.bitmapUUID[nodeID]; !used && len(meta.oos[nodeID]) == 0 {
			// Real, for a slot no peer holds (rc 0).
			o.stderr.WriteString("Copying bitmap slot -1 to -1 not implemented.\nDo it with dump-md, edit, restore-md\n")
		}
		delete(meta.bitmapUUID, nodeID)
		delete(meta.oos, nodeID)
		delete(meta.fullSync, nodeID)
		h.metaWritten(o, meta, dev, minor, device)
	case "wipe-md":
		if meta == nil {
			// Real, a second wipe-md: rc 0.
			o.stderr.WriteString("There appears to be no drbd meta data to wipe out?\n")
			return
		}
		delete(h.drbd.meta, dev.lv)
		h.deleteLastKnown(o, minor)
		o.stderr.WriteString("\nDo you really want to wipe out the DRBD meta data?\n*** confirmation forced via --force option ***\n")
		o.stdout.WriteString("Wiping meta data...\nDRBD meta data block successfully wiped out.\n")
	case "check-resize":
		var d *drbdHost
		if n != nil {
			d = h.drbd
		}
		h.checkResizeMeta(o, d, dev, minor, device)
	}
}

// giLine is drbdmeta get-gi's line: current UUID, the bitmap UUID toward
// nodeID, two history UUIDs (not modelled: zero), then twelve flag
// columns. Real drbdmeta on fresh metadata prints
//
//	0000000000000004:0000000000000000:0000000000000000:0000000000000000:0:0:0:0:1:0:0:0:0:0:0:0
//
// The model sets the first two flags (consistent, was-up-to-date) from the
// disk state and keeps the others as on fresh metadata.
func giLine(m *drbdMeta, nodeID int) string {
	cur := m.current
	if cur == 0 {
		cur = uuidJustCreated
	}
	b := func(v bool) int {
		if v {
			return 1
		}
		return 0
	}
	consistent := m.disk == drbd.DiskUpToDate || m.disk == drbd.DiskOutdated || m.disk == drbd.DiskConsistent
	return fmt.Sprintf("%016X:%016X:%016X:%016X:%d:%d:0:0:1:0:0:0:0:0:0:0",
		cur, m.bitmapUUID[nodeID], 0, 0, b(consistent), b(m.disk == drbd.DiskUpToDate))
}
