package plugin

import "context"

// Storage adapts a Client to pve/pvesim's Storage interface (which it
// satisfies structurally, so neither package imports the other): the
// simulated PVE then allocates, activates, deactivates and frees disks
// with the plugin's own requests.
type Storage struct{ Client *Client }

// Alloc is AllocImage.
func (s Storage) Alloc(ctx context.Context, vmid int, sizeKiB int64, node string) (string, error) {
	return s.Client.AllocImage(ctx, vmid, sizeKiB, node)
}

// Activate is ActivateVolume; the device path is PVE's business, not the
// simulator's, and is dropped.
func (s Storage) Activate(ctx context.Context, volname, node string) error {
	_, err := s.Client.ActivateVolume(ctx, volname, node)
	return err
}

// Deactivate is DeactivateVolume.
func (s Storage) Deactivate(ctx context.Context, volname, node string) error {
	return s.Client.DeactivateVolume(ctx, volname, node)
}

// Free is FreeImage.
func (s Storage) Free(ctx context.Context, volname string) error {
	return s.Client.FreeImage(ctx, volname)
}

// Snapshot is VolumeSnapshot.
func (s Storage) Snapshot(ctx context.Context, volname, snap string) error {
	return s.Client.VolumeSnapshot(ctx, volname, snap)
}

// Rollback is VolumeSnapshotRollback.
func (s Storage) Rollback(ctx context.Context, volname, snap string) error {
	return s.Client.VolumeSnapshotRollback(ctx, volname, snap)
}

// DeleteSnapshot is VolumeSnapshotDelete.
func (s Storage) DeleteSnapshot(ctx context.Context, volname, snap string) error {
	return s.Client.VolumeSnapshotDelete(ctx, volname, snap)
}
