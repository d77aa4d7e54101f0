package bootstrap

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"time"

	"github.com/pvehci/pvehci/bootstrap/units"
	"github.com/pvehci/pvehci/internal/hostfs"
)

// UnitName and UnitPath are pvehci's systemd service.
const (
	UnitName = "pvehci.service"
	UnitPath = "/etc/systemd/system/" + UnitName
)

// Join tokens travel through pmxcfs: /etc/pve/priv is replicated to every
// node of the Proxmox cluster and readable by root only, which is exactly
// the trust a join token needs. The first node leaves one per node there;
// each node takes its own and removes it once it has joined.
const (
	joinTokenDir = "/etc/pve/priv/pvehci"
	joinTokenTTL = 24 * time.Hour
)

func joinTokenPath(node string) string { return joinTokenDir + "/join-" + node + ".json" }

type joinToken struct {
	Token   string    `json:"token"`
	Expires time.Time `json:"expires"`
}

func readJoinToken(fsys hostfs.FS, node string) (*joinToken, error) {
	data, err := fsys.ReadFile(joinTokenPath(node))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the join token for %s: %w", node, err)
	}
	var t joinToken
	if err := json.Unmarshal(data, &t); err != nil {
		return nil, fmt.Errorf("reading %s: %w; remove it and run bootstrap on %s again", joinTokenPath(node), err, "the first node")
	}
	return &t, nil
}

func (o Options) unit() units.Daemon {
	mgmt := o.Node.Management.Addr().String()
	return units.Daemon{
		Binary:     o.Binary,
		Node:       o.Node.Name,
		PeerListen: hostPort(mgmt, PeerPort),
		Advertise:  hostPort(mgmt, PeerPort),
		APIListen:  hostPort(mgmt, RESTPort),
		Controller: o.Node.Controller,
	}
}

func serviceStep(o Options) Step {
	return &actionStep{
		name: "service",
		plan: func(ctx context.Context, h *Host) ([]action, error) {
			unitData, err := o.unit().Render()
			if err != nil {
				return nil, err
			}
			acts, err := fileAction(h.FS, UnitPath, unitData, 0o644)
			if err != nil {
				return nil, err
			}
			changed := len(acts) > 0
			st, err := h.Systemd.State(ctx, UnitName)
			if err != nil {
				return nil, fmt.Errorf("asking systemd about %s: %w", UnitName, err)
			}
			if changed {
				acts = append(acts, action{Change: Change{Kind: ChangeService, Target: "systemd", Summary: "reload unit files"},
					do: func(ctx context.Context, h *Host) error { return h.Systemd.Reload(ctx) }})
			}
			if st.UnitFileState != "enabled" {
				acts = append(acts, action{Change: Change{Kind: ChangeService, Target: UnitName, Summary: "enable at boot"},
					do: func(ctx context.Context, h *Host) error { return h.Systemd.Enable(ctx, UnitName) }})
			}
			if changed || st.ActiveState != "active" {
				summary := "start and wait until it is ready"
				if st.ActiveState == "active" {
					summary = "restart with the new unit and wait until it is ready"
				}
				acts = append(acts, action{Change: Change{Kind: ChangeService, Target: UnitName, Summary: summary},
					do: func(ctx context.Context, h *Host) error { return h.Systemd.Restart(ctx, UnitName) }})
			}

			member := false
			members := map[string]bool{}
			if st.ActiveState == "active" {
				if cs, err := o.Daemon.Status(ctx); err == nil {
					member = cs.Member
					for _, m := range cs.Members {
						members[m.Name] = true
					}
					if member && cs.ClusterName != o.Cluster.Cluster {
						return nil, fmt.Errorf("this node's pvehci is in cluster %q, but the cluster file says %q", cs.ClusterName, o.Cluster.Cluster)
					}
				}
			}
			first := o.Node.Name == o.Cluster.First()
			switch {
			case member:
			case first:
				acts = append(acts, action{Change: Change{Kind: ChangeService, Target: UnitName, Summary: "create pvehci cluster " + o.Cluster.Cluster},
					do: func(ctx context.Context, h *Host) error { return o.Daemon.Init(ctx, o.Cluster.Cluster) }})
			default:
				acts = append(acts, action{Change: Change{Kind: ChangeService, Target: UnitName, Summary: "join pvehci cluster " + o.Cluster.Cluster + " with the token " + o.Cluster.First() + " left in " + joinTokenDir},
					do: func(ctx context.Context, h *Host) error {
						tok := o.Token
						if tok == "" {
							t, err := readJoinToken(h.FS, o.Node.Name)
							if err != nil {
								return err
							}
							if t == nil {
								return fmt.Errorf("no join token for %s in %s: run pvehci bootstrap on %s first, or pass --token (from `pvehci cluster token %s` on a member)", o.Node.Name, joinTokenDir, o.Cluster.First(), o.Node.Name)
							}
							tok = t.Token
						}
						if err := o.Daemon.Join(ctx, tok); err != nil {
							return fmt.Errorf("joining pvehci cluster %s: %w", o.Cluster.Cluster, err)
						}
						_, err := h.FS.Remove(joinTokenPath(o.Node.Name))
						return err
					}})
			}
			if first {
				tokenActs, err := planJoinTokens(h, o, members)
				if err != nil {
					return nil, err
				}
				acts = append(acts, tokenActs...)
			}
			return acts, nil
		},
		verify: func(ctx context.Context, h *Host) error {
			st, err := h.Systemd.State(ctx, UnitName)
			if err != nil {
				return fmt.Errorf("asking systemd about %s: %w", UnitName, err)
			}
			if st.ActiveState != "active" {
				return fmt.Errorf("%s is %s; see journalctl -u %s", UnitName, st.ActiveState, UnitName)
			}
			cs, err := o.Daemon.Status(ctx)
			if err != nil {
				return fmt.Errorf("asking pvehci for its status: %w", err)
			}
			if !cs.Member {
				return fmt.Errorf("%s is running but not a member of a pvehci cluster", o.Node.Name)
			}
			return waitHealthy(ctx, h, o.APIURL)
		},
	}
}

// planJoinTokens leaves a join token in pmxcfs for every node of the
// cluster file that is not a member yet and has no valid token waiting.
func planJoinTokens(h *Host, o Options, members map[string]bool) ([]action, error) {
	now := h.Clock.Now()
	var acts []action
	for _, name := range o.Cluster.NodeNames() {
		if name == o.Node.Name || members[name] {
			continue
		}
		t, err := readJoinToken(h.FS, name)
		if err != nil {
			return nil, err
		}
		if t != nil && t.Expires.After(now.Add(time.Hour)) {
			continue
		}
		acts = append(acts, action{Change: Change{Kind: ChangeFile, Target: joinTokenPath(name), Summary: "leave a join token for " + name + " (valid 24 h, root only, replicated by pmxcfs)"},
			do: func(ctx context.Context, h *Host) error {
				tok, err := o.Daemon.IssueToken(ctx, name, joinTokenTTL)
				if err != nil {
					return fmt.Errorf("issuing a join token for %s: %w", name, err)
				}
				data, err := json.Marshal(joinToken{Token: tok, Expires: h.Clock.Now().Add(joinTokenTTL)})
				if err != nil {
					return err
				}
				if err := h.FS.MkdirAll(joinTokenDir, 0o700); err != nil {
					return err
				}
				_, err = h.FS.WriteFile(joinTokenPath(name), data, 0o600, hostfs.WriteOptions{})
				return err
			}})
	}
	return acts, nil
}

// apiWait bounds how long the service step waits for the REST API to
// answer /health, which it does once the node has joined and a leader is
// known: registration, the next step, needs it.
const apiWait = 60 * time.Second

func waitHealthy(ctx context.Context, h *Host, apiURL string) error {
	hc := &http.Client{Timeout: 2 * time.Second}
	deadline := h.Clock.Now().Add(apiWait)
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, apiURL+"/health", nil)
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("HTTP %d", resp.StatusCode)
		}
		if h.Clock.Now().After(deadline) {
			return fmt.Errorf("pvehci's API at %s does not answer /health within %s (%v); see journalctl -u %s", apiURL, apiWait, err, UnitName)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
