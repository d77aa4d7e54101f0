package ha

import (
	"context"
	"net/http"
	"time"
)

// maxVoters is the largest voter set: beyond five, elections and commits
// get slower without surviving more failures that matter in one rack.
const maxVoters = 5

// catchUpSlack is how far (in log entries) a non-voter may lag the leader
// and still be promoted.
const catchUpSlack = 64

// reconcileMembership runs while this node leads. The member records in the
// replicated state are the truth; raft's configuration follows them: members
// missing from raft are added as non-voters, raft servers without a record
// are removed, and caught-up controller-capable non-voters are promoted
// until the cluster has an odd number of voters, at most five. Joins add
// non-voters first so that a node which never comes up cannot take quorum
// away from the others.
func (c *Cluster) reconcileMembership(ctx context.Context) error {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		c.reconcileOnce(ctx)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

func (c *Cluster) reconcileOnce(ctx context.Context) {
	m := c.Member()
	if m == nil || !m.IsLeader() {
		return
	}
	servers, err := m.Servers()
	if err != nil {
		return
	}
	inRaft := map[string]Server{}
	voters := 0
	for _, s := range servers {
		inRaft[s.ID] = s
		if s.Voter {
			voters++
		}
	}
	members := c.state.Members()
	if len(members) == 0 {
		return // before InitCluster is applied
	}
	recorded := map[string]bool{}
	controllers := 0
	for _, mem := range members {
		recorded[mem.Name] = true
		if mem.Controller {
			controllers++
		}
		if _, ok := inRaft[mem.Name]; !ok {
			if err := m.AddNonvoter(mem.Name, mem.PeerAddress); err != nil {
				c.log.Warn("adding member to raft", "node", mem.Name, "err", err)
			} else {
				c.log.Info("member added to raft as non-voter", "node", mem.Name)
			}
		}
	}
	for id := range inRaft {
		if !recorded[id] && id != c.cfg.NodeName {
			if err := m.RemoveServer(id); err != nil {
				c.log.Warn("removing a server without a member record from raft", "node", id, "err", err)
			} else {
				c.log.Info("server removed from raft", "node", id)
			}
		}
	}
	target := min(controllers, maxVoters)
	if target%2 == 0 {
		target--
	}
	if voters >= target {
		return
	}
	leaderIndex := m.Status().AppliedIndex
	for _, mem := range members {
		if voters >= target {
			break
		}
		s, ok := inRaft[mem.Name]
		if !ok || s.Voter || !mem.Controller {
			continue
		}
		if !c.caughtUp(ctx, s.Address, leaderIndex) {
			continue
		}
		// Promote two at a time when going from an even count would
		// leave the cluster with an even number of voters only briefly;
		// raft commits each change under the new configuration.
		if err := m.AddVoter(mem.Name, s.Address); err != nil {
			c.log.Warn("promoting member to voter", "node", mem.Name, "err", err)
			continue
		}
		voters++
		c.log.Info("member promoted to voter", "node", mem.Name, "voters", voters)
	}
}

func (c *Cluster) caughtUp(ctx context.Context, addr string, leaderIndex uint64) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var st Status
	if err := c.call(ctx, addr, http.MethodGet, "/internal/v1/status", nil, &st); err != nil {
		return false
	}
	return st.AppliedIndex+catchUpSlack >= leaderIndex
}
