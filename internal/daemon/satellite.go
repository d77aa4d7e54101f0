package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/pvehci/pvehci/ha"
	"github.com/pvehci/pvehci/internal/localapi"
	"github.com/pvehci/pvehci/storage/satellite"
)

// runSatellite reconciles this node's storage against the replicated state
// and reports each pass to the leader, until ctx ends.
func runSatellite(ctx context.Context, c *ha.Cluster, rec *satellite.Reconciler, cfg SatelliteConfig, log *slog.Logger) {
	loop := &satellite.Loop{
		Reconciler: rec,
		State:      c.State,
		Changed:    c.Changed,
		Leader:     c.LeaderID,
		Send: func(ctx context.Context, rep satellite.NodeReport) error {
			body, err := json.Marshal(rep)
			if err != nil {
				return err
			}
			return c.SendReport(ctx, body)
		},
		IdleInterval: cfg.IdleInterval,
		Network:      cfg.Network,
		Log:          log,
	}
	log.Info("satellite running", "node", rec.Node)
	loop.Run(ctx)
}

// serveOrphans lists the node's orphans, or removes those named by keys.
// It refuses without a leader: the node's copy of the state may then be
// behind, and something a newer state owns would look like an orphan.
func serveOrphans(c *ha.Cluster, rec *satellite.Reconciler, keys []string, w http.ResponseWriter, r *http.Request) {
	if rec == nil {
		localapi.WriteError(w, http.StatusNotFound, errors.New("this daemon runs no satellite (--no-satellite); it has no storage to clean up"))
		return
	}
	if c.LeaderID() == "" {
		localapi.WriteError(w, http.StatusServiceUnavailable, errors.New("the cluster has no leader, so this node's copy of the state may be behind; "+
			"orphans are judged against it, so wait until `pvehci cluster status` shows a leader and try again"))
		return
	}
	var items []satellite.CleanupItem
	var err error
	if keys == nil {
		items, err = rec.Orphans(r.Context(), c.State())
	} else {
		items, err = rec.RemoveOrphans(r.Context(), c.State(), keys)
	}
	if err != nil {
		localapi.WriteError(w, http.StatusInternalServerError, fmt.Errorf("listing orphans: %w", err))
		return
	}
	if items == nil {
		items = []satellite.CleanupItem{}
	}
	localapi.WriteJSON(w, http.StatusOK, items)
}
