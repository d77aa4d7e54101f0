package satellite

import (
	"context"
	"fmt"
	"slices"
	"strconv"

	"github.com/pvehci/pvehci/storage/drbd"
)

// PropVerifyRequest, set on a resource definition to a job run's ID, asks
// the definition's coordinating node to run DRBD online verify once for
// that run (jobs.Runner sets and removes it).
const PropVerifyRequest = "Aux/pvehci/verify-request"

// PropVerifyResync, set on a resource definition to the job run whose
// verify found blocks out of sync, asks the node that coordinated that
// verify to resynchronize them from its own data. jobs.Runner sets it
// only when the schedule's policy allows it and the coordinator reported
// itself Primary: the Primary's data is what the VM has been reading, so
// making the other replicas equal to it changes nothing the VM sees.
const PropVerifyResync = "Aux/pvehci/verify-resync"

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
	// Peers splits OutOfSyncKiB by peer: the KiB in which that peer's
	// replica differs from this node's.
	Peers []VerifyPeer `json:"peers,omitempty"`
	// Primary is set while this node is Primary: its replica is the one
	// the VM reads.
	Primary bool `json:"primary,omitempty"`
	// Resync is the PropVerifyResync request this node carried out.
	Resync string `json:"resync,omitempty"`
}

// VerifyPeer is what a verify found toward one peer.
type VerifyPeer struct {
	Node         string `json:"node"`
	OutOfSyncKiB uint64 `json:"out_of_sync_kib"`
	// Resyncing is set while a resync toward the peer runs.
	Resyncing bool `json:"resyncing,omitempty"`
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
// resource. The candidates are the diskful replicas that are UpToDate and
// connected to a diskful peer, as far as this node sees them: itself and
// its connected UpToDate diskful peers. A Primary among them is preferred:
// its counts then say which replicas differ from the data the VM reads,
// and only it may repair them (PropVerifyResync). Of the preferred
// candidates the one with the lowest DRBD node id coordinates. Every node
// decides alike from its own view, so one node verifies unless the
// replicas are split.
func verifyCoordinator(d DesiredResource, k drbd.ObservedResource) bool {
	if len(k.Devices) == 0 {
		return false
	}
	for _, dev := range k.Devices {
		if dev.Disk != drbd.DiskUpToDate {
			return false
		}
	}
	type candidate struct {
		id      int
		primary bool
	}
	self := candidate{d.NodeID, k.Role == drbd.RolePrimary}
	cands := []candidate{self}
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
		if fresh {
			cands = append(cands, candidate{c.PeerNodeID, c.PeerRole == drbd.RolePrimary})
		}
	}
	if len(cands) < 2 {
		return false // nothing to compare with
	}
	if slices.ContainsFunc(cands, func(c candidate) bool { return c.primary }) {
		cands = slices.DeleteFunc(cands, func(c candidate) bool { return !c.primary })
	}
	lowest := cands[0].id
	for _, c := range cands {
		lowest = min(lowest, c.id)
	}
	return lowest == d.NodeID && slices.Contains(cands, self)
}

// planVerifyResync resynchronizes, from this node, the blocks its verify
// for run d.VerifyResync found out of sync: `drbdsetup invalidate-remote
// --reset-bitmap=no` per peer volume with out-of-sync blocks. DRBD's own
// remedy for verify findings is direction-less (the guide's disconnect and
// connect lets the handshake pick a source); naming the source is what
// makes the repair safe, so it runs only on the node that verified, while
// it is Primary with UpToDate data, toward UpToDate peers, once per
// request, and not while a verify or resync runs.
func planVerifyResync(d DesiredResource, got Observed) []Action {
	if d.VerifyResync == "" || d.Diskless || got.Verified[d.Name] != d.VerifyResync || got.Resynced[d.Name] == d.VerifyResync {
		return nil
	}
	k, ok := got.DRBD[d.Name]
	if !ok || k.Role != drbd.RolePrimary || len(k.Devices) == 0 {
		return nil
	}
	for _, dev := range k.Devices {
		if dev.Disk != drbd.DiskUpToDate {
			return nil
		}
	}
	var acts []Action
	for _, c := range k.Connections {
		for _, pd := range c.PeerDevices {
			if pd.Replication.HasProgress() {
				return nil
			}
			if c.Connection == drbd.ConnConnected && slices.Contains(d.DiskfulPeers, c.PeerNodeID) &&
				pd.Replication == drbd.ReplEstablished && pd.PeerDisk == drbd.DiskUpToDate && pd.OutOfSyncKiB > 0 {
				acts = append(acts, Action{Kind: ResyncVerified, Resource: d.Name, Volume: pd.Volume, PeerNodeID: c.PeerNodeID, RunID: d.VerifyResync})
			}
		}
	}
	return acts
}

// resyncVerified starts the resync of one peer volume's verify findings
// and remembers the request it answered.
func (r *Reconciler) resyncVerified(ctx context.Context, a Action) error {
	if r.resynced == nil {
		r.resynced = map[string]string{}
	}
	// Remembered before it runs: a failed start is not retried blindly
	// (the run reports the resource as not repaired).
	r.resynced[a.Resource] = a.RunID
	args := []string{"invalidate-remote", a.Resource, strconv.Itoa(a.PeerNodeID), strconv.Itoa(a.Volume), "--reset-bitmap=no"}
	if _, err := r.Runner.Run(ctx, r.cmd(append([]string{"drbdsetup"}, args...)...)); err != nil {
		return fmt.Errorf("resync the blocks verify run %s found out of sync on %s/%d toward node id %d: %w", a.RunID, a.Resource, a.Volume, a.PeerNodeID, err)
	}
	return nil
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
// a verify of, whether it still runs and how many KiB are out of sync,
// in all and per peer.
func verifyReports(want DesiredState, got Observed) []VerifyReport {
	var out []VerifyReport
	for _, d := range want.Resources {
		id := got.Verified[d.Name]
		if id == "" {
			continue
		}
		k := got.DRBD[d.Name]
		v := VerifyReport{Resource: d.Name, RunID: id, Primary: k.Role == drbd.RolePrimary, Resync: got.Resynced[d.Name]}
		for _, c := range k.Connections {
			var peer *VerifyPeer
			if slices.Contains(d.DiskfulPeers, c.PeerNodeID) {
				v.Peers = append(v.Peers, VerifyPeer{Node: c.Name})
				peer = &v.Peers[len(v.Peers)-1]
			}
			for _, pd := range c.PeerDevices {
				if pd.Replication == drbd.ReplVerifyS || pd.Replication == drbd.ReplVerifyT {
					v.Running = true
				}
				v.OutOfSyncKiB += pd.OutOfSyncKiB
				if peer != nil {
					peer.OutOfSyncKiB += pd.OutOfSyncKiB
					if pd.Replication.HasProgress() && pd.Replication != drbd.ReplVerifyS && pd.Replication != drbd.ReplVerifyT {
						peer.Resyncing = true
					}
				}
			}
		}
		out = append(out, v)
	}
	return out
}
