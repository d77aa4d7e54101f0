package daemon

import (
	"context"
	"encoding/json"
	"log/slog"

	"github.com/pvehci/pvehci/ha"
	"github.com/pvehci/pvehci/storage/satellite"
)

// runSatellite reconciles this node's storage against the replicated state
// and reports each pass to the leader, until ctx ends.
func runSatellite(ctx context.Context, c *ha.Cluster, node string, cfg SatelliteConfig, log *slog.Logger) {
	loop := &satellite.Loop{
		Reconciler: &satellite.Reconciler{Node: node, Runner: cfg.Runner, FS: cfg.FS, ResDir: cfg.ResDir, Log: log},
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
		Log:          log,
	}
	log.Info("satellite running", "node", node)
	loop.Run(ctx)
}
