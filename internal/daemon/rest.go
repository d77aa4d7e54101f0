package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"

	linstor "github.com/LINBIT/golinstor"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pvehci/pvehci/ha"
	"github.com/pvehci/pvehci/ha/state"
	"github.com/pvehci/pvehci/storage/api"
	"github.com/pvehci/pvehci/storage/controller"
	"github.com/pvehci/pvehci/storage/metrics"
)

// LINSTOR's REST ports; the Proxmox plugin dials 3370 (3371 with TLS).
const (
	DefaultAPIPort      = 3370
	DefaultAPITLSPort   = 3371
	maxBearerTokenBytes = 4096
)

// startREST builds the REST API with its /metrics (the cluster metrics, the
// health gauges and extra, the leader loops' own collectors) and binds its
// listeners; a bad setting fails the daemon's start, naming the setting.
func startREST(c *ha.Cluster, store *controller.Store, cfg APIConfig, log *slog.Logger, extra ...prometheus.Collector) (*api.Server, error) {
	backend := clusterBackend{c: c, store: store}
	m := metrics.New(backend, metrics.Options{Logger: log.With("component", "metrics"),
		Extra: append([]prometheus.Collector{newHealthCollector(c, store)}, extra...)})
	apiHandler := api.New(backend, api.Options{
		Logger:         log.With("component", "rest"),
		Metrics:        m.Handler(),
		ObserveRequest: m.ObserveRequest,
	})
	mux := http.NewServeMux()
	mux.Handle("GET "+ClusterViewPath, clusterViewHandler(c, store))
	mux.Handle("/", apiHandler)
	var handler http.Handler = mux
	c.SetRESTHandler(handler)

	sc := api.ServerConfig{Logger: log, CertFile: cfg.CertFile, KeyFile: cfg.KeyFile, ClientCAFile: cfg.ClientCAFile, HTTPSPort: api.PortDisabled}
	if cfg.BearerTokenFile != "" {
		data, err := os.ReadFile(cfg.BearerTokenFile)
		if err != nil {
			return nil, fmt.Errorf("reading the REST API token: %w", err)
		}
		if len(data) > maxBearerTokenBytes {
			return nil, fmt.Errorf("the REST API token file %s is larger than %d bytes; it should hold one token", cfg.BearerTokenFile, maxBearerTokenBytes)
		}
		sc.BearerToken = strings.TrimSpace(string(data))
	}
	var err error
	if sc.HTTPListener, err = net.Listen("tcp", cfg.HTTPListen); err != nil {
		return nil, fmt.Errorf("listening for the REST API on %s: %w (is a LINSTOR controller still running?)", cfg.HTTPListen, err)
	}
	if cfg.HTTPSListen != "" {
		if sc.HTTPSListener, err = net.Listen("tcp", cfg.HTTPSListen); err != nil {
			sc.HTTPListener.Close()
			return nil, fmt.Errorf("listening for the REST API (HTTPS) on %s: %w", cfg.HTTPSListen, err)
		}
		sc.HTTPSPort = 0
	}
	srv, err := api.Listen(restFront(c, handler, log), sc)
	if err != nil {
		sc.HTTPListener.Close()
		if sc.HTTPSListener != nil {
			sc.HTTPSListener.Close()
		}
		return nil, fmt.Errorf("starting the REST API: %w", err)
	}
	return srv, nil
}

// clusterBackend is what the REST API runs on in the daemon: the replicated
// state through the cluster member. It is only called on the leader; other
// nodes forward the whole request (see restFront).
type clusterBackend struct {
	c     *ha.Cluster
	store *controller.Store
}

func (b clusterBackend) Read(ctx context.Context) (*state.State, error) {
	m := b.c.Member()
	if m == nil {
		return nil, ha.ErrNotMember
	}
	// A deposed leader must not answer from state that may be stale.
	if err := m.ConsistentRead(ctx); err != nil {
		return nil, err
	}
	return b.c.State(), nil
}

func (b clusterBackend) Apply(ctx context.Context, cmd state.Command) (state.Result, error) {
	return b.c.Apply(ctx, cmd)
}

// The kernel's view comes from the satellites' reports to this leader.
func (b clusterBackend) Observed(rd, node string) (api.ObservedResource, bool) {
	return b.store.Observed(rd, node)
}

func (b clusterBackend) ObservedPool(node, pool string) (api.ObservedPool, bool) {
	return b.store.ObservedPool(node, pool)
}

func (b clusterBackend) Refresh(ctx context.Context, node string) { b.store.Refresh(ctx, node) }

func (b clusterBackend) ObservedNode(node string) (api.ObservedNode, bool) {
	return b.store.ObservedNode(node)
}

func (b clusterBackend) WaitDevice(ctx context.Context, rd, node string) error {
	def, ok := b.c.State().ResourceDefinition(rd)
	if !ok {
		return fmt.Errorf("resource definition %s is gone", rd)
	}
	return b.store.WaitDevice(ctx, rd, node, len(def.VolumeDefinitions))
}

// restFront serves the REST API on this node: locally while it leads, by
// proxy on the leader otherwise, so a client may use any node (the Proxmox
// plugin's controller list). /health answers here: 200 when this node can
// reach a leader, 503 otherwise, so that a client moves on to another node.
func restFront(c *ha.Cluster, h http.Handler, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			m := c.Member()
			if m == nil {
				writeAPIError(w, http.StatusServiceUnavailable, ha.ErrNotMember)
				return
			}
			if id, _ := m.Leader(); id == "" {
				writeAPIError(w, http.StatusServiceUnavailable, errors.New("no controller leader is reachable from this node (quorum lost?)"))
				return
			}
			w.WriteHeader(http.StatusOK)
			return
		}
		local, proxy, err := c.RouteREST(r)
		if err != nil {
			log.Warn("REST request refused: no leader", "path", r.URL.Path, "err", err)
			writeAPIError(w, http.StatusServiceUnavailable, err)
			return
		}
		if local {
			h.ServeHTTP(w, r)
			return
		}
		proxy.ServeHTTP(w, r)
	})
}

// writeAPIError answers in LINSTOR's error format, a list of ApiCallRc.
func writeAPIError(w http.ResponseWriter, status int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode([]api.ApiCallRc{{
		RetCode:    signed(linstor.MaskError),
		Message:    err.Error(),
		Correction: "check `pvehci cluster status` on the controller nodes",
	}})
}

// signed gives a ret_code as LINSTOR sends it: the two type bits are the
// sign bits, so an error arrives as a negative number.
func signed(code uint64) int64 { return int64(code) }
