package pvesim

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
)

// snapName is PVE's rule for snapshot names (pve-configid-like
// "pve-snapshot-name": a letter, then letters, digits, '-' and '_', at
// most 40 characters).
var snapName = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_-]{1,39}$`)

// lockFor locks vmid for op, as PVE's config lock does, and returns the VM.
func (s *Sim) lockFor(vmid int, op string) (*vm, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.vms[vmid]
	if !ok {
		return nil, fmt.Errorf("%s vm %d: %w", op, vmid, errNoVM(vmid))
	}
	if v.lock != "" {
		return nil, fmt.Errorf("%s vm %d: VM is locked (%s)", op, vmid, v.lock)
	}
	v.lock = op
	s.transcript = append(s.transcript, fmt.Sprintf("lock %d %s", vmid, op))
	return v, nil
}

func (s *Sim) unlock(v *vm) {
	s.mu.Lock()
	v.lock = ""
	s.transcript = append(s.transcript, fmt.Sprintf("unlock %d", v.vmid))
	s.mu.Unlock()
}

// Snapshot is qm snapshot VMID NAME without vmstate: volume_snapshot on
// every disk, under the lock "snapshot". A failure deletes the snapshots
// made so far, as PVE's snapshot_create does.
func (s *Sim) Snapshot(ctx context.Context, vmid int, name string) (string, error) {
	if !snapName.MatchString(name) {
		return "", fmt.Errorf("snapshot vm %d: invalid snapshot name '%s' (a letter, then letters, digits, '-' or '_', 2 to 40 characters)", vmid, name)
	}
	v, err := s.lockFor(vmid, "snapshot")
	if err != nil {
		return "", err
	}
	defer s.unlock(v)
	s.mu.Lock()
	if slices.Contains(v.snapshots, name) {
		s.mu.Unlock()
		return "", fmt.Errorf("snapshot vm %d: snapshot name '%s' already used", vmid, name)
	}
	disks := slices.Clone(v.disks)
	t := s.startTask(v.node, "qmsnapshot", strconv.Itoa(vmid), "root@pam")
	s.mu.Unlock()
	var done []disk
	for _, d := range disks {
		if err = s.recordErr(s.opts.Storage.Snapshot(ctx, d.volname, name), "snapshot %s %s", d.volname, name); err != nil {
			for _, u := range done {
				_ = s.recordErr(s.opts.Storage.DeleteSnapshot(ctx, u.volname, name), "delsnapshot %s %s", u.volname, name)
			}
			break
		}
		done = append(done, d)
	}
	if err == nil {
		s.mu.Lock()
		v.snapshots = append(v.snapshots, name)
		s.mu.Unlock()
	}
	s.endTask(t, err)
	if err != nil {
		return t.upid.String(), fmt.Errorf("snapshot vm %d: %w", vmid, err)
	}
	return t.upid.String(), nil
}

// Rollback is qm rollback VMID NAME for a snapshot without vmstate: a
// running VM is stopped first (vm_stop deactivates its disks on its node),
// then volume_snapshot_rollback runs on every disk under the lock
// "rollback", and the VM stays stopped.
func (s *Sim) Rollback(ctx context.Context, vmid int, name string) (string, error) {
	v, err := s.lockFor(vmid, "rollback")
	if err != nil {
		return "", err
	}
	defer s.unlock(v)
	s.mu.Lock()
	if !slices.Contains(v.snapshots, name) {
		s.mu.Unlock()
		return "", fmt.Errorf("rollback vm %d: snapshot '%s' does not exist", vmid, name)
	}
	node, disks, running := v.node, slices.Clone(v.disks), v.running
	t := s.startTask(node, "qmrollback", strconv.Itoa(vmid), "root@pam")
	s.mu.Unlock()
	var errs []error
	if running {
		for _, d := range disks {
			errs = append(errs, s.recordErr(s.opts.Storage.Deactivate(ctx, d.volname, node), "deactivate %s %s", d.volname, node))
		}
		s.mu.Lock()
		v.running = false
		s.mu.Unlock()
	}
	if err = errors.Join(errs...); err == nil {
		for _, d := range disks {
			if err = s.recordErr(s.opts.Storage.Rollback(ctx, d.volname, name), "rollback %s %s", d.volname, name); err != nil {
				break
			}
		}
	}
	s.endTask(t, err)
	if err != nil {
		return t.upid.String(), fmt.Errorf("rollback vm %d to %s: %w", vmid, name, err)
	}
	return t.upid.String(), nil
}

// DeleteSnapshot is qm delsnapshot VMID NAME: volume_snapshot_delete on
// every disk.
func (s *Sim) DeleteSnapshot(ctx context.Context, vmid int, name string) (string, error) {
	v, err := s.lockFor(vmid, "snapshot-delete")
	if err != nil {
		return "", err
	}
	defer s.unlock(v)
	s.mu.Lock()
	i := slices.Index(v.snapshots, name)
	if i < 0 {
		s.mu.Unlock()
		return "", fmt.Errorf("delsnapshot vm %d: snapshot '%s' does not exist", vmid, name)
	}
	disks := slices.Clone(v.disks)
	t := s.startTask(v.node, "qmdelsnapshot", strconv.Itoa(vmid), "root@pam")
	s.mu.Unlock()
	for _, d := range disks {
		if err = s.recordErr(s.opts.Storage.DeleteSnapshot(ctx, d.volname, name), "delsnapshot %s %s", d.volname, name); err != nil {
			break
		}
	}
	if err == nil {
		s.mu.Lock()
		v.snapshots = slices.Delete(v.snapshots, i, i+1)
		s.mu.Unlock()
	}
	s.endTask(t, err)
	if err != nil {
		return t.upid.String(), fmt.Errorf("delsnapshot vm %d %s: %w", vmid, name, err)
	}
	return t.upid.String(), nil
}

// Start is qm start VMID: activate_volume for every disk on the VM's node.
func (s *Sim) Start(ctx context.Context, vmid int) (string, error) {
	// qm start takes no config lock, but refuses a locked VM.
	s.mu.Lock()
	v, ok := s.vms[vmid]
	switch {
	case !ok:
		s.mu.Unlock()
		return "", fmt.Errorf("start vm %d: %w", vmid, errNoVM(vmid))
	case v.lock != "":
		s.mu.Unlock()
		return "", fmt.Errorf("start vm %d: VM is locked (%s)", vmid, v.lock)
	case v.running:
		s.mu.Unlock()
		return "", fmt.Errorf("start vm %d: VM %d already running", vmid, vmid)
	}
	node, disks := v.node, slices.Clone(v.disks)
	t := s.startTask(node, "qmstart", strconv.Itoa(vmid), "root@pam")
	s.mu.Unlock()
	var err error
	for _, d := range disks {
		if err = s.recordErr(s.opts.Storage.Activate(ctx, d.volname, node), "activate %s %s", d.volname, node); err != nil {
			break
		}
	}
	if err == nil {
		s.mu.Lock()
		v.running, v.started = true, s.clk.Now()
		s.mu.Unlock()
	}
	s.endTask(t, err)
	if err != nil {
		return t.upid.String(), fmt.Errorf("start vm %d: %w", vmid, err)
	}
	return t.upid.String(), nil
}
