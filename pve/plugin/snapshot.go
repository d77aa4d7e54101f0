package plugin

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
)

// SnapshotName is the LINSTOR snapshot the plugin makes for PVE snapshot
// snap of definition rd (linstor-proxmox.md §5: "snap_<rd>_<pvesnap>"),
// also the name of the definition a backup or clone restores it into.
func SnapshotName(rd, snap string) string { return "snap_" + rd + "_" + snap }

// VolumeSnapshot is volume_snapshot (§3.15 create_snapshot): POST
// …/snapshots {"name": "snap_<rd>_<snap>"}, which must answer 201.
func (c *Client) VolumeSnapshot(ctx context.Context, volname, snap string) error {
	rd, _, err := ParseVolname(volname)
	if err != nil {
		return fmt.Errorf("snapshot %s of %s: %w", snap, volname, err)
	}
	cn, err := c.connect(ctx)
	if err != nil {
		return fmt.Errorf("snapshot %s of %s: %w", snap, volname, err)
	}
	body := map[string]any{"name": SnapshotName(rd, snap)}
	if err := cn.call(ctx, http.MethodPost, rdPath(rd)+"/snapshots", body, http.StatusCreated, nil); err != nil {
		return fmt.Errorf("snapshot %s of %s: %w", snap, volname, err)
	}
	return nil
}

// VolumeSnapshotRollback is volume_snapshot_rollback (§3.15
// rollback_snapshot): POST …/snapshot-rollback/<snap> without a body,
// which must answer 200.
func (c *Client) VolumeSnapshotRollback(ctx context.Context, volname, snap string) error {
	rd, _, err := ParseVolname(volname)
	if err != nil {
		return fmt.Errorf("roll %s back to %s: %w", volname, snap, err)
	}
	cn, err := c.connect(ctx)
	if err != nil {
		return fmt.Errorf("roll %s back to %s: %w", volname, snap, err)
	}
	p := rdPath(rd) + "/snapshot-rollback/" + url.PathEscape(SnapshotName(rd, snap))
	if err := cn.call(ctx, http.MethodPost, p, nil, http.StatusOK, nil); err != nil {
		return fmt.Errorf("roll %s back to %s: %w", volname, snap, err)
	}
	return nil
}

// VolumeSnapshotDelete is volume_snapshot_delete (§5): the definition a
// backup restored the snapshot into goes first if it has resources, then
// the snapshot.
func (c *Client) VolumeSnapshotDelete(ctx context.Context, volname, snap string) error {
	rd, _, err := ParseVolname(volname)
	if err != nil {
		return fmt.Errorf("delete snapshot %s of %s: %w", snap, volname, err)
	}
	cn, err := c.connect(ctx)
	if err != nil {
		return fmt.Errorf("delete snapshot %s of %s: %w", snap, volname, err)
	}
	name := SnapshotName(rd, snap)
	view, err := cn.view(ctx, "")
	if err != nil {
		return fmt.Errorf("delete snapshot %s of %s: %w", snap, volname, err)
	}
	for _, v := range view {
		if v.Name == name {
			if err := cn.call(ctx, http.MethodDelete, rdPath(name), nil, http.StatusOK, nil); err != nil {
				return fmt.Errorf("delete snapshot %s of %s: %w", snap, volname, err)
			}
			break
		}
	}
	if err := cn.call(ctx, http.MethodDelete, rdPath(rd)+"/snapshots/"+url.PathEscape(name), nil, http.StatusOK, nil); err != nil {
		return fmt.Errorf("delete snapshot %s of %s: %w", snap, volname, err)
	}
	return nil
}
