package satellite

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pvehci/pvehci/storage/drbd"
	"github.com/pvehci/pvehci/storage/lvm"
)

// PropResizeRequest, set on a volume definition flagged RESIZE to
// "<node>/<size KiB>", names the node that runs `drbdadm resize RES/VNR`
// for a grow to that size. The active controller (storage/controller's
// Completer) sets it once every diskful replica reports its LV grown and
// connected, and removes it with the flag once every replica reports the
// DRBD device at the new size.
const PropResizeRequest = "Aux/pvehci/resize-request"

// ResizeRetryInterval is how long a satellite waits before it runs
// `drbdadm resize` again for the same request when the device has still
// not reached the size (DRBD grows only as far as every connected diskful
// peer's backing allows, and keeps the size while a diskful peer is away).
const ResizeRetryInterval = 30 * time.Second

// FormatResizeRequest is the value of PropResizeRequest.
func FormatResizeRequest(node string, sizeKiB int64) string {
	return node + "/" + strconv.FormatInt(sizeKiB, 10)
}

// ParseResizeRequest splits a PropResizeRequest value.
func ParseResizeRequest(v string) (node string, sizeKiB int64, ok bool) {
	node, size, found := strings.Cut(v, "/")
	if !found || node == "" {
		return "", 0, false
	}
	n, err := strconv.ParseInt(size, 10, 64)
	if err != nil || n <= 0 {
		return "", 0, false
	}
	return node, n, true
}

// ResizeRun is a `drbdadm resize` this satellite ran, from its memory.
type ResizeRun struct {
	Request string
	At      time.Time
}

// VolumeSize is the size of one volume of a resource on the node: its
// LV (0 for a diskless volume or a missing LV) and its DRBD device (0
// when DRBD does not have the volume). The controller compares them
// with the volume definition to drive a grow.
type VolumeSize struct {
	Resource  string `json:"resource"`
	Volume    int    `json:"volume"`
	LVKiB     int64  `json:"lv_kib"`
	DeviceKiB int64  `json:"device_kib"`
}

// ResizeReport is a `drbdadm resize` this node ran for a request.
type ResizeReport struct {
	Resource string `json:"resource"`
	Volume   int    `json:"volume"`
	Request  string `json:"request"`
}

func resizeKey(rsc string, vnr int) string { return rsc + "/" + strconv.Itoa(vnr) }

// planResize runs `drbdadm resize RES/VNR` for every volume of d whose
// definition names this node in PropResizeRequest, once per request (or
// again after ResizeRetryInterval if the device has still not grown),
// and only while DRBD would do it: the local disk attached and
// UpToDate, the LV grown, the device still smaller than the definition,
// and every diskful peer of the .res connected with no resync or verify
// running (DRBD refuses a resize during a resync, and keeps the size
// while a diskful peer is away). It is planned only in a pass that plans
// nothing else for the resource.
func planResize(d DesiredResource, got Observed, now time.Time) []Action {
	if d.Diskless {
		return nil
	}
	k, up := got.DRBD[d.Name]
	if !up {
		return nil
	}
	var out []Action
	for _, v := range d.Volumes {
		if v.ResizeRequest == "" || v.Diskless {
			continue
		}
		if run, ok := got.Resized[resizeKey(d.Name, v.Number)]; ok && run.Request == v.ResizeRequest && now.Sub(run.At) < ResizeRetryInterval {
			continue
		}
		if lv, ok := got.LVs[v.Key()]; !ok || int64(lv.Size/1024) < v.GrossKiB {
			continue
		}
		dev := slices.IndexFunc(k.Devices, func(x drbd.ObservedDevice) bool { return x.Volume == v.Number })
		if dev < 0 || k.Devices[dev].Disk != drbd.DiskUpToDate || int64(k.Devices[dev].SizeKiB) >= v.SizeKiB {
			continue
		}
		if !peersReady(d, k, v.Number) {
			continue
		}
		out = append(out, Action{Kind: ResizeDRBD, Resource: d.Name, Volume: v.Number, RunID: v.ResizeRequest, AssumeClean: v.Thin})
	}
	return out
}

// peersReady reports whether every diskful peer of the .res is connected
// with volume vnr Established and no connection runs a resync or verify
// of it.
func peersReady(d DesiredResource, k drbd.ObservedResource, vnr int) bool {
	for _, c := range k.Connections {
		for _, pd := range c.PeerDevices {
			if pd.Volume == vnr && pd.Replication.HasProgress() {
				return false
			}
		}
	}
	for _, id := range d.DiskfulPeers {
		c := slices.IndexFunc(k.Connections, func(c drbd.ObservedConnection) bool { return c.PeerNodeID == id })
		if c < 0 || k.Connections[c].Connection != drbd.ConnConnected {
			return false
		}
		pd := slices.IndexFunc(k.Connections[c].PeerDevices, func(pd drbd.ObservedPeerDevice) bool { return pd.Volume == vnr })
		if pd < 0 || k.Connections[c].PeerDevices[pd].Replication != drbd.ReplEstablished {
			return false
		}
	}
	return true
}

// growLV extends a volume's LV to its new gross size. lvextend keeps the
// data of a thin LV; the new blocks are unprovisioned and read as zeros.
func (r *Reconciler) growLV(ctx context.Context, a Action) error {
	if _, err := r.Runner.Run(ctx, r.cmd("lvextend", "--size", strconv.FormatInt(a.SizeKiB, 10)+"k", a.VG+"/"+a.LV)); err != nil {
		if poolFull(err) {
			return fmt.Errorf("grow LV %s/%s of %s to %d KiB: thin pool has no room: extend the pool or free space in it; the next pass retries: %w", a.VG, a.LV, a.Resource, a.SizeKiB, err)
		}
		return fmt.Errorf("grow LV %s/%s of %s to %d KiB (the next pass retries): %w", a.VG, a.LV, a.Resource, a.SizeKiB, err)
	}
	return nil
}

// runResize runs drbdadm resize and remembers the request it answered.
// DRBD grows the device on every connected node. A thin volume is resized
// with --assume-clean, as LINSTOR's DrbdLayer does for thinly backed
// volumes (research/linstor-server.md; DrbdAdm.resize): the grown area
// of every replica is unprovisioned thin space that reads as zeros, and
// a resync of it would only write zeros into every peer's thin pool,
// allocating the whole new area there. A thick volume's new area is
// resynchronized from this node.
func (r *Reconciler) runResize(ctx context.Context, a Action) error {
	rv := a.Resource + "/" + strconv.Itoa(a.Volume)
	argv := []string{"drbdadm", "-vvv", "resize", rv}
	if a.AssumeClean {
		argv = []string{"drbdadm", "-vvv", "--", "--assume-clean", "resize", rv}
	}
	if _, err := r.Runner.Run(ctx, r.cmd(argv...)); err != nil {
		return fmt.Errorf("grow DRBD device %s (request %s; the next pass retries while it is still requested): %w", rv, a.RunID, err)
	}
	if r.resized == nil {
		r.resized = map[string]ResizeRun{}
	}
	now := time.Now()
	if r.Now != nil {
		now = r.Now()
	}
	r.resized[resizeKey(a.Resource, a.Volume)] = ResizeRun{Request: a.RunID, At: now}
	return nil
}

// volumeSizes lists, for every desired resource that is not being taken
// down, each volume's LV size and DRBD device size.
func volumeSizes(want DesiredState, got Observed) []VolumeSize {
	var out []VolumeSize
	for _, d := range want.Resources {
		if d.Err != nil || d.Delete || d.Down {
			continue
		}
		k := got.DRBD[d.Name]
		for _, v := range d.Volumes {
			s := VolumeSize{Resource: d.Name, Volume: v.Number}
			if lv, ok := got.LVs[v.Key()]; ok && !v.Diskless && slices.Contains(lv.Tags, lvm.Tag) {
				s.LVKiB = int64(lv.Size / 1024)
			}
			for _, dev := range k.Devices {
				if dev.Volume == v.Number {
					s.DeviceKiB = int64(dev.SizeKiB)
				}
			}
			out = append(out, s)
		}
	}
	return out
}

// resizeReports lists the resizes this satellite ran that are still
// requested.
func resizeReports(want DesiredState, got Observed) []ResizeReport {
	var out []ResizeReport
	for _, d := range want.Resources {
		for _, v := range d.Volumes {
			if run, ok := got.Resized[resizeKey(d.Name, v.Number)]; ok && v.ResizeRequest != "" && run.Request == v.ResizeRequest {
				out = append(out, ResizeReport{Resource: d.Name, Volume: v.Number, Request: run.Request})
			}
		}
	}
	return out
}

func cloneResized(m map[string]ResizeRun) map[string]ResizeRun { return maps.Clone(m) }
