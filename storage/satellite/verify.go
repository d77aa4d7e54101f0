package satellite

import (
	"context"
	"fmt"
	"slices"

	"github.com/pvehci/pvehci/storage/drbd"
)

// PropVerifyRequest, set on a resource definition to a job run's ID, asks
// the definition's coordinating node to run DRBD online verify once for
// that run (jobs.Runner sets and removes it).
const PropVerifyRequest = "Aux/pvehci/verify-request"

// VerifyReport is the online-verify state of one resource on the node that
// coordinates its verify.
type VerifyReport struct {
	Resource string `json:"resource"`
	// RunID is the verify request this node started (the value of
	// PropVerifyRequest when it ran drbdadm verify).
	RunID string `json:"run_id"`
	// Running is set while a VerifyS or VerifyT replication is under way
	// toward any peer.
	Running bool `json:"running,omitempty"`
	// OutOfSyncKiB is the sum of the out-of-sync KiB over the peer
	// devices; after a verify it counts the blocks that differed.
	OutOfSyncKiB uint64 `json:"out_of_sync_kib"`
}

// planVerify starts an online verify of d when its definition asks for
// one (VerifyRequest) that this satellite has not started yet, this node
// coordinates the resource's verify (verifyCoordinator), and no resync or
// verify runs on it.
func planVerify(d DesiredResource, got Observed) []Action {
	if d.VerifyRequest == "" || d.Diskless || got.Verified[d.Name] == d.VerifyRequest {
		return nil
	}
	k, ok := got.DRBD[d.Name]
	if !ok || !verifyCoordinator(d, k) {
		return nil
	}
	for _, c := range k.Connections {
		for _, pd := range c.PeerDevices {
			if pd.Replication.HasProgress() {
				return nil
			}
		}
	}
	return []Action{{Kind: RunVerify, Resource: d.Name, RunID: d.VerifyRequest}}
}

// verifyCoordinator reports whether this node runs the verify of the
// resource: of the diskful replicas that are UpToDate and connected to a
// diskful peer (as far as this node sees them: itself and its connected
// peers), it has the lowest DRBD node id. Every node decides alike from its
// own view, so one node verifies unless the replicas are split.
func verifyCoordinator(d DesiredResource, k drbd.ObservedResource) bool {
	if len(k.Devices) == 0 {
		return false
	}
	for _, dev := range k.Devices {
		if dev.Disk != drbd.DiskUpToDate {
			return false
		}
	}
	self := false
	lowest := d.NodeID
	for _, c := range k.Connections {
		if c.Connection != drbd.ConnConnected || !slices.Contains(d.DiskfulPeers, c.PeerNodeID) || len(c.PeerDevices) == 0 {
			continue
		}
		fresh := true
		for _, pd := range c.PeerDevices {
			if pd.PeerDisk != drbd.DiskUpToDate {
				fresh = false
			}
		}
		if !fresh {
			continue
		}
		self = true // connected to an UpToDate diskful peer
		lowest = min(lowest, c.PeerNodeID)
	}
	return self && lowest == d.NodeID
}

// runVerify runs drbdadm verify and remembers the request it answered.
func (r *Reconciler) runVerify(ctx context.Context, a Action) (bool, error) {
	if _, err := r.Runner.Run(ctx, r.cmd("drbdadm", "verify", a.Resource)); err != nil {
		return false, fmt.Errorf("start online verify of %s (job run %s): %w", a.Resource, a.RunID, err)
	}
	if r.verified == nil {
		r.verified = map[string]string{}
	}
	r.verified[a.Resource] = a.RunID
	return false, nil
}

// verifyReports tells, for every desired resource this satellite started
// a verify of, whether it still runs and how many KiB are out of sync.
func verifyReports(want DesiredState, got Observed) []VerifyReport {
	var out []VerifyReport
	for _, d := range want.Resources {
		id := got.Verified[d.Name]
		if id == "" {
			continue
		}
		v := VerifyReport{Resource: d.Name, RunID: id}
		for _, c := range got.DRBD[d.Name].Connections {
			for _, pd := range c.PeerDevices {
				if pd.Replication == drbd.ReplVerifyS || pd.Replication == drbd.ReplVerifyT {
					v.Running = true
				}
				v.OutOfSyncKiB += pd.OutOfSyncKiB
			}
		}
		out = append(out, v)
	}
	return out
}
