package bootstrap

import (
	"context"
	"encoding/json"
	"time"

	"github.com/pvehci/pvehci/ha"
	"github.com/pvehci/pvehci/ha/state"
	"github.com/pvehci/pvehci/internal/daemon"
	"github.com/pvehci/pvehci/internal/localapi"
	"github.com/pvehci/pvehci/storage/model"
)

// LocalDaemon is the pvehci daemon on this node through its local API
// socket (root only), the same calls `pvehci cluster` and `pvehci
// schedule` make.
type LocalDaemon struct {
	Client *localapi.Client
}

// NewLocalDaemon talks to the daemon on socket.
func NewLocalDaemon(socket string) *LocalDaemon {
	return &LocalDaemon{Client: localapi.NewClient(socket)}
}

// Status implements Daemon.
func (d *LocalDaemon) Status(ctx context.Context) (ha.ClusterStatus, error) {
	var st ha.ClusterStatus
	err := d.Client.Do(ctx, "GET", "/v1/status", nil, &st)
	return st, err
}

// Init implements Daemon.
func (d *LocalDaemon) Init(ctx context.Context, name string) error {
	return d.Client.Do(ctx, "POST", "/v1/cluster/init", daemon.InitRequest{Name: name}, nil)
}

// Join implements Daemon.
func (d *LocalDaemon) Join(ctx context.Context, token string) error {
	return d.Client.Do(ctx, "POST", "/v1/cluster/join", daemon.JoinRequest{Token: token}, nil)
}

// IssueToken implements Daemon.
func (d *LocalDaemon) IssueToken(ctx context.Context, node string, ttl time.Duration) (string, error) {
	var resp daemon.TokenResponse
	err := d.Client.Do(ctx, "POST", "/v1/cluster/token", daemon.TokenRequest{Node: node, TTL: ttl}, &resp)
	return resp.Token, err
}

// Schedules implements Daemon.
func (d *LocalDaemon) Schedules(ctx context.Context) ([]model.JobSchedule, error) {
	var data []byte
	if err := d.Client.Do(ctx, "GET", "/v1/state", nil, &data); err != nil {
		return nil, err
	}
	st := state.New()
	if err := st.Restore(data); err != nil {
		return nil, err
	}
	return st.JobSchedules(), nil
}

// AddSchedule implements Daemon.
func (d *LocalDaemon) AddSchedule(ctx context.Context, cmd *state.AddJobSchedule) error {
	entry, err := state.Encode(cmd)
	if err != nil {
		return err
	}
	return d.Client.Do(ctx, "POST", "/v1/apply", json.RawMessage(entry), nil)
}
