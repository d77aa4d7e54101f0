package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	lc "github.com/LINBIT/golinstor/client"

	"github.com/pvehci/pvehci/ha"
	"github.com/pvehci/pvehci/internal/hostfs"
	"github.com/pvehci/pvehci/internal/localapi"
)

// ClusterName is the lab cluster's name.
const ClusterName = "lab"

// WaitReady waits until every running node answers GET /health (which
// needs a leader it can reach).
func (l *Lab) WaitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	hc := &http.Client{Timeout: 2 * time.Second}
	for {
		var notReady []string
		for _, n := range l.Nodes {
			if !n.Alive() {
				continue
			}
			resp, err := hc.Get(n.APIURL() + "/health")
			if err == nil {
				resp.Body.Close()
			}
			if err != nil || resp.StatusCode != http.StatusOK {
				notReady = append(notReady, n.Name)
			}
		}
		if len(notReady) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nodes %s do not answer /health within %s; see their daemon.log under %s", strings.Join(notReady, " "), timeout, filepath.Join(l.cfg.Dir, "nodes"))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Client is a golinstor client on the lab's controller list.
func (l *Lab) Client() (*lc.Client, error) {
	urls := make([]*url.URL, len(l.Nodes))
	for i, n := range l.Nodes {
		u, err := url.Parse(n.APIURL())
		if err != nil {
			return nil, err
		}
		urls[i] = u
	}
	return lc.NewClient(lc.BaseURL(urls...), lc.HTTPClient(&http.Client{Timeout: 3 * time.Minute}), lc.Log(nil), lc.UserAgent("pvehci-lab"))
}

// waitPools waits until every node's satellite reported its pool:
// autoplace needs every pool's capacity, which the satellites report within
// a pass.
func (l *Lab) waitPools(ctx context.Context) error {
	c, err := l.Client()
	if err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		pools, err := c.Nodes.GetStoragePoolView(ctx)
		if err == nil {
			reported := 0
			for _, p := range pools {
				if p.StoragePoolName == StoragePool && p.TotalCapacity > 0 {
					reported++
				}
			}
			if reported == len(l.Nodes) {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the satellites did not report their pools within 30 s (%v); see the nodes' daemon.log", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// EnvFile is DIR/env: shell assignments for scripts.
const EnvFile = "env"

func (l *Lab) writeEnv() error {
	names := make([]string, len(l.Nodes))
	for i, n := range l.Nodes {
		names[i] = n.Name
	}
	env := fmt.Sprintf("LS_CONTROLLERS=%s\nPVEHCI_LAB_NODES=%q\nPVEHCI_LAB_DIR=%s\nPVEHCI_LAB_PVE_API=%s/api2/json\nPVEHCI_LAB_PVE_TOKEN_FILE=%s\n",
		strings.Join(l.Controllers(), ","), strings.Join(names, " "), l.cfg.Dir, l.Nodes[0].PVEURL(), l.pveTokenFile())
	_, err := hostfs.Root(l.cfg.Dir).WriteFile("/"+EnvFile, []byte(env), 0o644, hostfs.WriteOptions{})
	return err
}

// NodeStatus is one node in Status.
type NodeStatus struct {
	Name   string `json:"name"`
	Addr   string `json:"address"`
	APIURL string `json:"api_url"`
	Alive  bool   `json:"alive"`
	PID    int    `json:"pid,omitempty"`
	Leader bool   `json:"leader"`
	Root   string `json:"root"`
	Socket string `json:"socket"`
	// RSSKiB is the daemon's resident memory.
	RSSKiB int64 `json:"rss_kib,omitempty"`
}

// Status is what `pvehci lab status` shows.
type Status struct {
	Dir       string       `json:"dir"`
	Leader    string       `json:"leader"`
	Nodes     []NodeStatus `json:"nodes"`
	Resources []string     `json:"resources"`
	Replicas  []Replica    `json:"replicas"`
}

// Replica is one resource on one node, as the REST API reports it.
type Replica struct {
	Resource string `json:"resource"`
	Node     string `json:"node"`
	Diskful  bool   `json:"diskful"`
	// Disk is DRBD's disk state of volume 0 (UpToDate, Inconsistent,
	// Diskless, TieBreaker, …).
	Disk  string `json:"disk"`
	InUse bool   `json:"in_use"`
}

// Status reports the nodes, the leader and the resource definitions.
func (l *Lab) Status(ctx context.Context) Status {
	st := Status{Dir: l.cfg.Dir, Resources: []string{}}
	for _, n := range l.Nodes {
		ns := NodeStatus{Name: n.Name, Addr: n.Addr.String(), APIURL: n.APIURL(), Alive: n.Alive(), PID: n.PID(), Root: n.Root, Socket: n.Socket}
		if ns.Alive {
			var cs ha.ClusterStatus
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			if localapi.NewClient(n.Socket).Do(cctx, "GET", "/v1/status", nil, &cs) == nil && cs.Raft != nil && cs.Raft.LeaderID != "" {
				st.Leader = cs.Raft.LeaderID
			}
			cancel()
			ns.RSSKiB = rssKiB(ns.PID)
		}
		st.Nodes = append(st.Nodes, ns)
	}
	for i := range st.Nodes {
		st.Nodes[i].Leader = st.Nodes[i].Name == st.Leader
	}
	if c, err := l.Client(); err == nil {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if rds, err := c.ResourceDefinitions.GetAll(cctx, lc.RDGetAllRequest{}); err == nil {
			for _, rd := range rds {
				st.Resources = append(st.Resources, rd.Name)
			}
		}
		if view, err := c.Resources.GetResourceView(cctx); err == nil {
			for _, r := range view {
				rep := Replica{Resource: r.Name, Node: r.NodeName, Diskful: !slices.Contains(r.Flags, "DISKLESS")}
				if len(r.Volumes) > 0 {
					rep.Disk = r.Volumes[0].State.DiskState
				}
				if r.State.InUse != nil {
					rep.InUse = *r.State.InUse
				}
				st.Replicas = append(st.Replicas, rep)
			}
			slices.SortFunc(st.Replicas, func(a, b Replica) int { return strings.Compare(a.Resource+"/"+a.Node, b.Resource+"/"+b.Node) })
		}
		cancel()
	}
	return st
}

// rssKiB reads VmRSS of a process.
func rssKiB(pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kib int64
			fmt.Sscanf(strings.TrimSpace(v), "%d", &kib)
			return kib
		}
	}
	return 0
}

// errJSON is a control API error body.
type errJSON struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

var errNotRunning = errors.New("no lab is running there")
