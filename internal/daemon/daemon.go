// Package daemon is `pvehci daemon`: the long-running process on every node.
// It wires the cluster member (ha), the local API the command line talks to,
// and systemd's notify protocol, and it shuts down in the order that keeps
// the cluster writable: leadership handed over first, then the peer port.
package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"time"

	sddaemon "github.com/coreos/go-systemd/v22/daemon"

	"github.com/pvehci/pvehci/ha"
	"github.com/pvehci/pvehci/ha/relocate"
	"github.com/pvehci/pvehci/ha/state"
	"github.com/pvehci/pvehci/internal/hostfs"
	"github.com/pvehci/pvehci/internal/localapi"
	"github.com/pvehci/pvehci/internal/logging"
	"github.com/pvehci/pvehci/internal/run"
	"github.com/pvehci/pvehci/jobs"
	"github.com/pvehci/pvehci/pve/pveapi"
	"github.com/pvehci/pvehci/storage/controller"
	"github.com/pvehci/pvehci/storage/metrics"
	"github.com/pvehci/pvehci/storage/model"
	"github.com/pvehci/pvehci/storage/satellite"
)

// Config is what `pvehci daemon` is started with.
type Config struct {
	NodeName   string
	DataDir    string
	PeerListen string
	Advertise  string
	Controller bool
	Socket     string
	// API configures the LINSTOR REST API; an empty HTTPListen turns it off.
	API APIConfig
	// Satellite, when set, runs this node's storage reconciler.
	Satellite *SatelliteConfig
	// Relocation bounds the leader's relocations; zero fields take
	// ha/relocate's defaults.
	Relocation relocate.Limits
	// PVE, when set, tells the relocation where VMs run and which are
	// migrating; without it DRBD's Primary role is all it knows.
	PVE    *pveapi.Client
	Timing ha.Timing
}

// SatelliteConfig is how the satellite reaches the node's storage: on a
// Proxmox node the real programs and the root file system; in the lab the
// simulated kernel and the node's directory. Nothing else differs.
type SatelliteConfig struct {
	Runner run.Runner
	// FS is the node's file system for .res files; ResDir lists
	// satellite.ResDir on it, for the orphan report.
	FS     hostfs.FS
	ResDir fs.ReadDirFS
	// IdleInterval overrides satellite.DefaultIdleInterval when set.
	IdleInterval time.Duration
	// Network, when set, reads the node's links and RDMA ports into each
	// report, for the leader's network health checks.
	Network satellite.NetworkReader
}

// APIConfig is where and how the LINSTOR REST API listens.
type APIConfig struct {
	HTTPListen  string // host:port, normally the management address and 3370
	HTTPSListen string // host:port (3371); HTTPS needs CertFile and KeyFile
	CertFile    string
	KeyFile     string
	// ClientCAFile makes HTTPS require a client certificate from these CAs
	// (the Proxmox plugin's apicrt/apikey/apica).
	ClientCAFile string
	// BearerTokenFile holds a token every request but /health must carry.
	BearerTokenFile string
}

// DefaultDataDir is where a node keeps its certificates and raft state.
const DefaultDataDir = "/var/lib/pvehci"

// shutdownTimeout bounds the leadership handover and the final writes.
const shutdownTimeout = 15 * time.Second

// Run runs the daemon until ctx is cancelled (SIGTERM), then shuts down.
func Run(ctx context.Context, cfg Config, log *slog.Logger, level *slog.LevelVar) error {
	store := &controller.Store{}
	if cfg.Satellite != nil && cfg.Satellite.IdleInterval > 0 {
		store.OnlineWindow = 3*cfg.Satellite.IdleInterval + 5*time.Second
	}
	// The leader's loops need the cluster, which exists only once
	// OpenCluster returns; leadership can be won before that.
	var cluster *ha.Cluster
	opened := make(chan struct{})
	afterOpen := func(build func() func(context.Context) error) func(context.Context) error {
		return func(ctx context.Context) error {
			select {
			case <-opened:
			case <-ctx.Done():
				return ctx.Err()
			}
			return build()(ctx)
		}
	}
	// One counter for every leadership term of this daemon: a term that
	// ends and a later one that begins add to the same series.
	relocResults := metrics.NewRelocationResults()
	leaderWork := map[string]func(context.Context) error{
		"complete": afterOpen(func() func(context.Context) error {
			c := &controller.Completer{Store: store, State: cluster.State, Changed: cluster.Changed,
				Apply: cluster.Apply, Log: log.With("component", "controller")}
			return c.Run
		}),
		"relocate": afterOpen(func() func(context.Context) error {
			r := &controller.Relocator{Store: store, State: cluster.State, Changed: cluster.Changed,
				Apply: cluster.Apply, Limits: cfg.Relocation, Log: log.With("component", "relocation"),
				Finished: relocResults.Finished}
			if cfg.PVE != nil {
				r.VMs = vmLocations(cfg.PVE)
			}
			return r.Run
		}),
		"jobs": afterOpen(func() func(context.Context) error {
			j := &jobs.Runner{Store: store, State: cluster.State, Changed: cluster.Changed,
				Apply: cluster.Apply, Log: log.With("component", "jobs")}
			return j.Run
		}),
	}
	cluster, err := ha.OpenCluster(ha.ClusterConfig{
		NodeName:   cfg.NodeName,
		DataDir:    cfg.DataDir,
		PeerListen: cfg.PeerListen,
		Advertise:  cfg.Advertise,
		Controller: cfg.Controller,
		Logger:     log,
		Timing:     cfg.Timing,
		LeaderWork: leaderWork,
	})
	if err != nil {
		return fmt.Errorf("starting the cluster member: %w", err)
	}
	close(opened)
	cluster.SetReportHandler(func(_ context.Context, from string, body []byte) error {
		return store.Take(from, body)
	})
	ln, err := localapi.Listen(cfg.Socket)
	if err != nil {
		cluster.Close(context.Background())
		return err
	}
	var rec *satellite.Reconciler
	if sc := cfg.Satellite; sc != nil {
		rec = &satellite.Reconciler{Node: cfg.NodeName, Runner: sc.Runner, FS: sc.FS, ResDir: sc.ResDir, Log: log.With("component", "satellite")}
	}
	srv := &http.Server{Handler: localHandler(cluster, store, rec, level, log), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)

	restCtx, stopREST := context.WithCancel(context.Background())
	restDone := make(chan error, 1)
	if cfg.API.HTTPListen != "" {
		restSrv, err := startREST(cluster, store, cfg.API, log, relocResults)
		if err != nil {
			stopREST()
			srv.Close()
			cluster.Close(context.Background())
			return err
		}
		go func() { restDone <- restSrv.Serve(restCtx) }()
	} else {
		restDone <- nil
	}

	satDone := make(chan struct{})
	satCtx, stopSatellite := context.WithCancel(context.Background())
	if sc := cfg.Satellite; sc != nil {
		go func() {
			defer close(satDone)
			runSatellite(satCtx, cluster, rec, *sc, log.With("component", "satellite"))
		}()
	} else {
		close(satDone)
	}

	notify(log, sddaemon.SdNotifyReady, "STATUS="+statusLine(cluster))
	log.Info("pvehci daemon running", "node", cfg.NodeName, "socket", cfg.Socket, "peer", cfg.Advertise)

	watchdog := watchdogTicker()
	status := time.NewTicker(10 * time.Second)
	defer status.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-watchdog:
			// The loop itself is the liveness: a wedged daemon stops
			// feeding the watchdog and systemd restarts it.
			notify(log, sddaemon.SdNotifyWatchdog)
		case <-status.C:
			notify(log, "STATUS="+statusLine(cluster))
		}
	}

	notify(log, sddaemon.SdNotifyStopping)
	log.Info("pvehci daemon stopping")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	srv.Shutdown(sctx)
	stopSatellite()
	<-satDone
	stopREST()
	<-restDone
	if err := cluster.Close(sctx); err != nil {
		return fmt.Errorf("leaving the cluster cleanly: %w", err)
	}
	return nil
}

func notify(log *slog.Logger, states ...string) {
	for _, s := range states {
		if _, err := sddaemon.SdNotify(false, s); err != nil {
			log.Warn("systemd notify failed", "state", s, "err", err)
		}
	}
}

// watchdogTicker ticks at half the WatchdogSec systemd gave us, or never.
func watchdogTicker() <-chan time.Time {
	interval, err := sddaemon.SdWatchdogEnabled(false)
	if err != nil || interval == 0 {
		return nil
	}
	return time.NewTicker(interval / 2).C
}

func statusLine(c *ha.Cluster) string {
	st := c.Status()
	if !st.Member {
		return "not a cluster member; run `pvehci cluster init` or `pvehci cluster join`"
	}
	leader := "no leader"
	if st.Raft != nil && st.Raft.LeaderID != "" {
		leader = "leader " + st.Raft.LeaderID
	}
	return fmt.Sprintf("cluster %s, %d members, %s", st.ClusterName, len(st.Members), leader)
}

// Requests and answers of the local API.
type (
	InitRequest  struct{ Name string }
	TokenRequest struct {
		Node string
		TTL  time.Duration
	}
	TokenResponse struct{ Token string }
	JoinRequest   struct{ Token string }
	RemoveRequest struct{ Node string }
	// OrphanRemoveRequest names the orphans to remove by their keys.
	OrphanRemoveRequest struct{ Keys []string }
	BackupData          struct{ Backup []byte }
)

func localHandler(c *ha.Cluster, store *controller.Store, rec *satellite.Reconciler, level *slog.LevelVar, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	// /v1/events?since=MS: the automation's decisions (model.Event) from
	// this node's copy of the state.
	mux.HandleFunc("GET /v1/events", func(w http.ResponseWriter, r *http.Request) {
		var since int64
		if v := r.URL.Query().Get("since"); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				localapi.WriteError(w, http.StatusBadRequest, fmt.Errorf("since=%q: give milliseconds since the epoch", v))
				return
			}
			since = n
		}
		events := c.State().Events(since)
		if events == nil {
			events = []model.Event{}
		}
		localapi.WriteJSON(w, http.StatusOK, events)
	})
	mux.HandleFunc("GET /v1/node/orphans", func(w http.ResponseWriter, r *http.Request) {
		serveOrphans(c, rec, nil, w, r)
	})
	mux.HandleFunc("POST /v1/node/orphans/remove", func(w http.ResponseWriter, r *http.Request) {
		var req OrphanRemoveRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
			localapi.WriteError(w, http.StatusBadRequest, fmt.Errorf("decoding the request: %w", err))
			return
		}
		if len(req.Keys) == 0 {
			localapi.WriteError(w, http.StatusBadRequest, errors.New("name the orphans to remove (the keys `pvehci node cleanup --orphans` lists)"))
			return
		}
		serveOrphans(c, rec, req.Keys, w, r)
	})
	mux.HandleFunc("GET /v1/cluster-view", func(w http.ResponseWriter, r *http.Request) {
		serveClusterView(c, store, w, r)
	})
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		localapi.WriteJSON(w, http.StatusOK, c.Status())
	})
	mux.HandleFunc("POST /v1/cluster/init", func(w http.ResponseWriter, r *http.Request) {
		var req InitRequest
		if !decode(w, r, &req) {
			return
		}
		if err := c.Init(r.Context(), req.Name); err != nil {
			localapi.WriteError(w, http.StatusConflict, err)
			return
		}
		localapi.WriteJSON(w, http.StatusOK, c.Status())
	})
	mux.HandleFunc("POST /v1/cluster/token", func(w http.ResponseWriter, r *http.Request) {
		var req TokenRequest
		if !decode(w, r, &req) {
			return
		}
		tok, err := c.IssueToken(r.Context(), req.Node, req.TTL)
		if err != nil {
			localapi.WriteError(w, http.StatusConflict, err)
			return
		}
		localapi.WriteJSON(w, http.StatusOK, TokenResponse{Token: tok})
	})
	mux.HandleFunc("POST /v1/cluster/join", func(w http.ResponseWriter, r *http.Request) {
		var req JoinRequest
		if !decode(w, r, &req) {
			return
		}
		if err := c.Join(r.Context(), req.Token); err != nil {
			localapi.WriteError(w, http.StatusConflict, err)
			return
		}
		localapi.WriteJSON(w, http.StatusOK, c.Status())
	})
	mux.HandleFunc("POST /v1/cluster/remove", func(w http.ResponseWriter, r *http.Request) {
		var req RemoveRequest
		if !decode(w, r, &req) {
			return
		}
		if err := c.Remove(r.Context(), req.Node); err != nil {
			localapi.WriteError(w, http.StatusConflict, err)
			return
		}
		localapi.WriteJSON(w, http.StatusOK, c.Status())
	})
	mux.HandleFunc("GET /v1/cluster/backup", func(w http.ResponseWriter, r *http.Request) {
		data, err := c.Backup(r.Context())
		if err != nil {
			localapi.WriteError(w, http.StatusServiceUnavailable, err)
			return
		}
		localapi.WriteJSON(w, http.StatusOK, BackupData{Backup: data})
	})
	mux.HandleFunc("POST /v1/cluster/restore", func(w http.ResponseWriter, r *http.Request) {
		var req BackupData
		if !decode(w, r, &req) {
			return
		}
		if err := c.Restore(r.Context(), req.Backup); err != nil {
			localapi.WriteError(w, http.StatusConflict, err)
			return
		}
		localapi.WriteJSON(w, http.StatusOK, c.Status())
	})
	// /v1/state is this node's applied state, as it is here (not read
	// through the leader): comparing it between nodes shows whether they
	// have converged.
	mux.HandleFunc("GET /v1/state", func(w http.ResponseWriter, r *http.Request) {
		data, err := c.State().Snapshot()
		if err != nil {
			localapi.WriteError(w, http.StatusInternalServerError, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(data)
	})
	// /v1/apply replicates one encoded state command: the expert's escape
	// hatch (and the tests' write path) beneath the REST API.
	mux.HandleFunc("POST /v1/apply", func(w http.ResponseWriter, r *http.Request) {
		entry, err := io.ReadAll(io.LimitReader(r.Body, 16<<20))
		if err != nil {
			localapi.WriteError(w, http.StatusBadRequest, err)
			return
		}
		cmd, err := state.Decode(entry)
		if err != nil {
			localapi.WriteError(w, http.StatusBadRequest, err)
			return
		}
		res, err := c.Apply(r.Context(), cmd)
		if err != nil {
			var ql *ha.QuorumLostError
			status := http.StatusInternalServerError
			if errors.As(err, &ql) || errors.Is(err, ha.ErrNotMember) {
				status = http.StatusServiceUnavailable
			}
			localapi.WriteError(w, status, err)
			return
		}
		if res.Err != nil {
			localapi.WriteError(w, http.StatusConflict, res.Err)
			return
		}
		localapi.WriteJSON(w, http.StatusOK, res.Allocated)
	})
	mux.Handle("/v1/log-level", logging.LevelHandler(level))
	// Go's profiler, for chasing memory and CPU on a live node; the socket
	// is root-only, like everything else here.
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	return logRequests(mux, log)
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := localapi.DecodeJSON(r, v); err != nil {
		localapi.WriteError(w, http.StatusBadRequest, err)
		return false
	}
	return true
}

func logRequests(h http.Handler, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		h.ServeHTTP(w, r)
		log.Debug("local API request", "method", r.Method, "path", r.URL.Path, "took", time.Since(start))
	})
}

// DefaultAdvertise guesses this node's peer address from its host name, as
// Proxmox VE resolves it (/etc/hosts maps the node name to its management
// address). A loopback answer is refused: other nodes could not dial it.
func DefaultAdvertise(nodeName string, port int) (string, error) {
	addrs, err := net.LookupHost(nodeName)
	if err != nil || len(addrs) == 0 {
		return "", fmt.Errorf("cannot resolve node name %s to its management address (%v); give --advertise IP:%d", nodeName, err, port)
	}
	for _, a := range addrs {
		ip := net.ParseIP(a)
		if ip != nil && !ip.IsLoopback() {
			return net.JoinHostPort(a, fmt.Sprint(port)), nil
		}
	}
	return "", fmt.Errorf("node name %s resolves only to loopback (%v); give --advertise IP:%d with the management address", nodeName, addrs, port)
}

// vmLocations reads the VMs' places from the Proxmox API for relocation.
func vmLocations(c *pveapi.Client) func(ctx context.Context) (relocate.VMLocations, error) {
	return func(ctx context.Context) (relocate.VMLocations, error) {
		vms, err := c.VMs(ctx)
		if err != nil {
			return nil, err
		}
		out := make(relocate.VMLocations, len(vms))
		for id, vm := range vms {
			out[id] = relocate.VM{Node: vm.Node, PreviousNode: vm.PreviousNode, Migrating: vm.Migrating, Since: vm.Since}
		}
		return out, nil
	}
}
