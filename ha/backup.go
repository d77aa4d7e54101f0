package ha

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/hashicorp/raft"

	"github.com/pvehci/pvehci/ha/state"
)

// Backup returns a consistent copy of the whole replicated state, read on
// the leader (forwarded there if needed).
func (c *Cluster) Backup(ctx context.Context) ([]byte, error) {
	m, err := c.requireMember()
	if err != nil {
		return nil, err
	}
	if err := m.ConsistentRead(ctx); err == nil {
		return c.state.Snapshot()
	}
	id, addr, err := c.awaitLeader(ctx, time.Now().Add(leaderWait))
	if err != nil {
		return nil, err
	}
	if id == c.cfg.NodeName {
		return nil, errors.New("this node leads but could not confirm it; retry")
	}
	var data []byte
	if err := c.call(ctx, addr, http.MethodGet, "/internal/v1/snapshot", nil, &data); err != nil {
		return nil, fmt.Errorf("reading the state from leader %s: %w", id, err)
	}
	return data, nil
}

// Restore replaces the cluster's state with a backup. The backup must come
// from this cluster (same CA); the cluster's identity and members are kept
// as they are now, so an old backup cannot evict today's members.
func (c *Cluster) Restore(ctx context.Context, backup []byte) error {
	if _, err := c.requireMember(); err != nil {
		return err
	}
	// Refuse an unreadable or foreign backup here, before any leadership
	// question: the answer does not depend on which node leads.
	if _, err := c.checkBackup(backup); err != nil {
		return err
	}
	// Restoring the same snapshot twice gives the same state, so unlike an
	// ordinary command a restore may be repeated when leadership moves
	// under it.
	deadline := time.Now().Add(leaderWait)
	for {
		id, addr, err := c.awaitLeader(ctx, deadline)
		if err != nil {
			return err
		}
		if id == c.cfg.NodeName {
			err = c.restoreHere(ctx, backup)
		} else {
			err = c.call(ctx, addr, http.MethodPost, "/internal/v1/restore", backup, nil)
		}
		var nle *NotLeaderError
		retry := errors.Is(err, ErrOutcomeUnknown) || errors.As(err, &nle) || errors.Is(err, errForwardNotLeader)
		if err == nil || !retry || time.Now().After(deadline) {
			return err
		}
		c.log.Warn("leadership moved during the restore; restoring again", "err", err)
	}
}

func (c *Cluster) restoreHere(ctx context.Context, backup []byte) error {
	m, err := c.requireMember()
	if err != nil {
		return err
	}
	restored, err := c.checkBackup(backup)
	if err != nil {
		return err
	}
	if err := m.ConsistentRead(ctx); err != nil {
		return err
	}
	merged, err := restored.WithMembershipOf(c.state)
	if err != nil {
		return err
	}
	if err := m.RestoreSnapshot(merged); err != nil {
		if errors.Is(err, raft.ErrLeadershipLost) || errors.Is(err, raft.ErrNotLeader) {
			return fmt.Errorf("%w: %v", ErrOutcomeUnknown, err)
		}
		return fmt.Errorf("replicating the restored state: %w", err)
	}
	c.log.Warn("cluster state replaced from a backup", "bytes", len(backup))
	return nil
}

// checkBackup reads a backup and makes sure it belongs to this cluster.
func (c *Cluster) checkBackup(backup []byte) (*state.State, error) {
	restored := state.New()
	if err := restored.Restore(backup); err != nil {
		return nil, fmt.Errorf("the backup cannot be read: %w", err)
	}
	cur, ok := c.state.Cluster()
	if !ok {
		return nil, errors.New("this cluster has no identity yet; nothing to restore into")
	}
	if old, ok := restored.Cluster(); ok && old.CAFingerprint != cur.CAFingerprint {
		return nil, fmt.Errorf("the backup belongs to cluster %s (CA %s), not to this cluster %s (CA %s); restore refused",
			old.Name, old.CAFingerprint, cur.Name, cur.CAFingerprint)
	}
	return restored, nil
}

// RecoverConfig describes an offline recovery after the permanent loss of a
// majority of voters.
type RecoverConfig struct {
	NodeName string
	DataDir  string
	// Servers is the new raft configuration: the surviving members.
	Servers []Server
}

// Recover rewrites the raft configuration of a stopped node to the given
// surviving members (raft's RecoverCluster). Run it on every survivor with
// the same Servers, with the daemons stopped, then start them. Anything the
// lost majority committed but this node never received is lost; that is
// why it needs --force.
func Recover(cfg RecoverConfig) error {
	if len(cfg.Servers) == 0 {
		return errors.New("recover: name at least this node as a surviving member")
	}
	raftDir := cfg.DataDir + "/raft"
	if err := CheckStore(StorePath(raftDir)); err != nil {
		return err
	}
	fsm := &stateFSM{s: state.New()}
	_, trans := raft.NewInmemTransport(raft.ServerAddress(cfg.NodeName))
	m, err := openStores(raftDir)
	if err != nil {
		return err
	}
	defer m.store.Close()
	has, err := raft.HasExistingState(m.store, m.store, m.snaps)
	if err != nil {
		return err
	}
	if !has {
		return fmt.Errorf("recover: %s holds no cluster state; there is nothing to recover", raftDir)
	}
	conf := raft.Configuration{}
	for _, s := range cfg.Servers {
		conf.Servers = append(conf.Servers, raft.Server{ID: raft.ServerID(s.ID), Address: raft.ServerAddress(s.Address), Suffrage: raft.Voter})
	}
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.NodeName)
	if err := raft.RecoverCluster(rc, &fsmAdapter{fsm: fsm}, m.logs, m.store, m.snaps, trans, conf); err != nil {
		return fmt.Errorf("recovering the raft configuration: %w", err)
	}
	return nil
}
