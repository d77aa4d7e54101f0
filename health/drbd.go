package health

import (
	"context"
	"fmt"
	"strconv"

	"github.com/pvehci/pvehci/storage/drbd"
)

// DRBD check codes.
const (
	DRBDSplitBrain       Code = "DRBD_SPLIT_BRAIN"
	DRBDDiskNotUpToDate  Code = "DRBD_DISK_NOT_UPTODATE"
	DRBDConnecting       Code = "DRBD_CONNECTING"
	DRBDOutOfSync        Code = "DRBD_OUT_OF_SYNC"
	drbdEventsUnreadable      = "check that the DRBD 9 module is loaded: cat /proc/drbd; modprobe drbd"
)

func resObj(name string) Object  { return Object{"resource", name} }
func peerObj(name string) Object { return Object{"peer", name} }
func volObj(v int) Object        { return Object{"volume", strconv.Itoa(v)} }

// drbdCheck runs judge over every resource, or reports the source error.
func drbdCheck(judge func(r drbd.ObservedResource) []Finding, okMsg string) func(context.Context, *Inputs) []Finding {
	return func(ctx context.Context, in *Inputs) []Finding {
		if v, ok := in.haveView(ctx); ok {
			// Every node, from the satellites' reports to the leader.
			nodes, all := viewResources(v)
			var out []Finding
			count := 0
			for i, res := range all {
				count += len(res)
				for _, r := range res {
					out = append(out, withNode(nodes[i], judge(r))...)
				}
			}
			if len(out) == 0 {
				return []Finding{{Severity: OK, Message: fmt.Sprintf(okMsg, count) + fmt.Sprintf(" on %d node(s)", len(nodes))}}
			}
			return out
		}
		res, err := in.DRBDResources(ctx)
		if err != nil {
			return unknown("drbdsetup events2", drbdEventsUnreadable)
		}
		var out []Finding
		for _, r := range res {
			out = append(out, judge(r)...)
		}
		if len(out) == 0 {
			return []Finding{{Severity: OK, Message: fmt.Sprintf(okMsg, len(res))}}
		}
		return out
	}
}

func drbdChecks() []Check {
	return []Check{
		{
			Code:  DRBDSplitBrain,
			Title: "DRBD split brain",
			Run:   drbdCheck(splitBrain, "no split brain in %d resource(s)"),
		},
		{
			Code:      DRBDConnecting,
			Title:     "DRBD connections",
			DependsOn: []Code{DRBDSplitBrain},
			Run:       drbdCheck(connections, "%d resource(s) connected to every peer"),
		},
		{
			Code:      DRBDDiskNotUpToDate,
			Title:     "DRBD local disks up to date",
			DependsOn: []Code{DRBDSplitBrain},
			Run:       drbdCheck(disks, "every disk of %d resource(s) is UpToDate"),
		},
		{
			Code:      DRBDOutOfSync,
			Title:     "DRBD out-of-sync blocks",
			DependsOn: []Code{DRBDSplitBrain, DRBDConnecting},
			Run:       drbdCheck(outOfSync, "no out-of-sync blocks in %d resource(s)"),
		},
	}
}

// splitBrain is resource-wide (it names only the resource) so that it
// covers every symptom of the same resource in the dependent checks.
func splitBrain(r drbd.ObservedResource) []Finding {
	var out []Finding
	for _, c := range r.Connections {
		if c.SyncState != "SplitBrain" && c.SyncState != "Unrelated" {
			continue
		}
		if c.SyncState == "Unrelated" {
			out = append(out, Finding{Severity: Critical, Objects: []Object{resObj(r.Name)},
				Message: fmt.Sprintf("%s and %s hold unrelated data (different generation identifiers), so DRBD refuses to connect", r.Name, c.Name),
				Hint:    fmt.Sprintf("decide which copy is right; on the node with the wrong one, with nothing using it: drbdadm down %s && drbdadm create-md --force %s && drbdadm up %s (it then syncs in full)", r.Name, r.Name, r.Name)})
			continue
		}
		// The manual recovery of the DRBD 9 user's guide ("Manual
		// Split Brain Recovery"): the victim discards its changes, the
		// survivor reconnects if it went StandAlone too.
		out = append(out, Finding{Severity: Critical, Objects: []Object{resObj(r.Name)},
			Message: fmt.Sprintf("%s is split-brained with %s: both sides wrote while disconnected, and DRBD stays StandAlone until told which changes to discard", r.Name, c.Name),
			Hint: fmt.Sprintf("pick the victim, the node whose changes since the split are thrown away; on the victim: drbdadm disconnect %[1]s && drbdadm secondary %[1]s && drbdadm connect --discard-my-data %[1]s; then on the survivor, if it shows StandAlone: drbdadm connect %[1]s",
				r.Name)})
	}
	return out
}

func connections(r drbd.ObservedResource) []Finding {
	var out []Finding
	for _, c := range r.Connections {
		if c.Connection == drbd.ConnConnected {
			continue
		}
		f := Finding{Severity: Warning, Objects: []Object{resObj(r.Name), peerObj(c.Name)}}
		switch c.Connection {
		case drbd.ConnStandAlone:
			f.Message = fmt.Sprintf("%s does not try to reach %s (StandAlone): it was disconnected by hand or after an error", r.Name, c.Name)
			f.Hint = fmt.Sprintf("drbdadm connect %s:%s; if it falls back to StandAlone, read dmesg | grep drbd", r.Name, c.Name)
		case drbd.ConnConnecting:
			f.Message = fmt.Sprintf("%s is waiting for %s (Connecting): the peer is down or unreachable on the replication network, so this copy is not replicated there", r.Name, c.Name)
			f.Hint = fmt.Sprintf("check that %s is up and that `drbdadm status %s` there is not StandAlone; test the replication network with ping", c.Name, r.Name)
		default:
			f.Message = fmt.Sprintf("%s to %s is %s", r.Name, c.Name, c.Connection)
			f.Hint = fmt.Sprintf("watch `drbdadm status %s`; if it does not reach Connected: drbdadm disconnect %s:%s && drbdadm connect %s:%s", r.Name, r.Name, c.Name, r.Name, c.Name)
		}
		out = append(out, f)
	}
	return out
}

func disks(r drbd.ObservedResource) []Finding {
	var out []Finding
	for _, d := range r.Devices {
		if d.Disk == drbd.DiskUpToDate || (d.Client && d.Disk == drbd.DiskDiskless) {
			continue
		}
		f := Finding{Severity: Warning, Objects: []Object{resObj(r.Name), volObj(d.Volume)}}
		switch d.Disk {
		case drbd.DiskInconsistent:
			if p, ok := resyncFrom(r, d.Volume); ok {
				f.Message = fmt.Sprintf("%s volume %d is Inconsistent while it resyncs from %s (%.1f %% done); it cannot serve a failover until then", r.Name, d.Volume, p.name, p.done)
				f.Hint = fmt.Sprintf("nothing to do but wait; follow it with drbdadm status %s", r.Name)
			} else {
				f.Severity = Critical
				f.Message = fmt.Sprintf("%s volume %d is Inconsistent and no resync is running", r.Name, d.Volume)
				f.Hint = fmt.Sprintf("connect it to an UpToDate peer: drbdadm connect %s; check drbdadm status %s", r.Name, r.Name)
			}
		case drbd.DiskOutdated:
			f.Message = fmt.Sprintf("%s volume %d is Outdated: it missed writes and waits for an UpToDate peer", r.Name, d.Volume)
			f.Hint = fmt.Sprintf("reconnect it to the peers: drbdadm connect %s (it then resyncs)", r.Name)
		case drbd.DiskDiskless, drbd.DiskFailed:
			f.Severity = Critical
			f.Message = fmt.Sprintf("%s volume %d lost its disk (%s): I/O goes over the network, and one more failure loses access", r.Name, d.Volume, d.Disk)
			f.Hint = fmt.Sprintf("look for the disk error: dmesg | grep -i -e drbd -e 'I/O error'; once the backing device %s is fine: drbdadm attach %s", d.BackingDev, r.Name)
		default:
			f.Message = fmt.Sprintf("%s volume %d is %s", r.Name, d.Volume, d.Disk)
			f.Hint = fmt.Sprintf("watch drbdadm status %s; it should become UpToDate", r.Name)
		}
		out = append(out, f)
	}
	return out
}

type resync struct {
	name string
	done float64
}

func resyncFrom(r drbd.ObservedResource, vol int) (resync, bool) {
	for _, c := range r.Connections {
		for _, pd := range c.PeerDevices {
			if pd.Volume == vol && pd.Replication.HasProgress() && pd.HasDone {
				return resync{c.Name, pd.DonePercent}, true
			}
		}
	}
	return resync{}, false
}

func outOfSync(r drbd.ObservedResource) []Finding {
	var out []Finding
	for _, c := range r.Connections {
		for _, pd := range c.PeerDevices {
			if pd.OutOfSyncKiB == 0 {
				continue
			}
			f := Finding{Severity: Warning, Objects: []Object{resObj(r.Name), peerObj(c.Name), volObj(pd.Volume)}}
			if pd.Replication.HasProgress() {
				f.Message = fmt.Sprintf("%s volume %d: %s out of sync with %s, resync %s running (%.1f %% done)", r.Name, pd.Volume, kib(pd.OutOfSyncKiB), c.Name, pd.Replication, pd.DonePercent)
				f.Hint = fmt.Sprintf("nothing to do but wait; follow it with drbdadm status %s", r.Name)
			} else {
				// Blocks found by an online verify stay out of sync
				// until the connection is re-established (DRBD guide,
				// "Using On-line Device Verification").
				f.Message = fmt.Sprintf("%s volume %d: %s out of sync with %s and no resync running (%s)", r.Name, pd.Volume, kib(pd.OutOfSyncKiB), c.Name, pd.Replication)
				f.Hint = fmt.Sprintf("resync them: drbdadm disconnect %[1]s:%[2]s && drbdadm connect %[1]s:%[2]s", r.Name, c.Name)
			}
			out = append(out, f)
		}
	}
	return out
}

func kib(n uint64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d KiB", n)
}
