package lab

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/pvehci/pvehci/internal/hostfs"
	"github.com/pvehci/pvehci/pve/plugin"
	"github.com/pvehci/pvehci/pve/pvesim"
	"github.com/pvehci/pvehci/storage/sim"
)

// PVEPort is where each lab node serves the simulated Proxmox API (plain
// HTTP; a real node's pveproxy speaks HTTPS on the same port).
const PVEPort = 8006

// PVETokenFile holds the lab's PVE API token, which the daemons read.
const PVETokenFile = "pve-token"

// VM is a simulated Proxmox VM with one disk on the lab's drbd storage. A
// running VM holds its disk's DRBD device open for writing on its node,
// as QEMU does, so DRBD sees it Primary there.
type VM struct {
	ID      int    `json:"vmid"`
	Node    string `json:"node"`
	Volname string `json:"volname"`
	Device  string `json:"device"`
	SizeKiB int64  `json:"size_kib"`

	dev *sim.DRBDDevice
}

// vms is the lab's Proxmox side: the simulated PVE API (pve/pvesim) whose
// storage hooks make the Proxmox plugin's REST calls (pve/plugin), and
// the simulated devices the running VMs hold open.
type vms struct {
	l       *Lab
	pve     *pvesim.Sim
	servers []*http.Server
	mu      sync.Mutex
	m       map[int]*VM
}

// startPVE serves the simulated Proxmox API on every node's address and
// writes the token the daemons use to read it.
func (l *Lab) startPVE() error {
	var secret [16]byte
	rand.Read(secret[:])
	token := "root@pam!pvehci=" + hex.EncodeToString(secret[:])
	if _, err := hostfs.Root(l.cfg.Dir).WriteFile("/"+PVETokenFile, []byte(token+"\n"), 0o600, hostfs.WriteOptions{}); err != nil {
		return err
	}
	v := &vms{l: l, m: map[int]*VM{}}
	names := make([]string, len(l.Nodes))
	ips := map[string]string{}
	for i, n := range l.Nodes {
		names[i] = n.Name
		ips[n.Name] = n.Addr.String()
	}
	v.pve = pvesim.New(pvesim.Options{Nodes: names, IPs: ips, StorageID: StorageName, Token: token,
		Storage: plugin.Storage{Client: v.plugin()}, BothActive: v.bothActive})
	for _, n := range l.Nodes {
		ln, err := net.Listen("tcp", net.JoinHostPort(n.Addr.String(), fmt.Sprint(PVEPort)))
		if err != nil {
			return fmt.Errorf("serving the simulated Proxmox API on %s: %w", n.Name, err)
		}
		srv := &http.Server{Handler: v.pve.Handler(), ReadHeaderTimeout: 10 * time.Second}
		go srv.Serve(ln)
		v.servers = append(v.servers, srv)
	}
	l.vms = v
	return nil
}

func (v *vms) close() {
	for _, s := range v.servers {
		s.Close()
	}
}

// PVEURL is a node's simulated Proxmox API.
func (n *Node) PVEURL() string {
	return "http://" + net.JoinHostPort(n.Addr.String(), fmt.Sprint(PVEPort))
}

func (l *Lab) pveTokenFile() string { return filepath.Join(l.cfg.Dir, PVETokenFile) }

// plugin is the Proxmox plugin as storage.cfg configures it for the lab
// (controller list of every node, resource group drbdgrp).
func (v *vms) plugin() *plugin.Client {
	return &plugin.Client{Controllers: v.l.Controllers(), ResourceGroup: ResourceGroup,
		HTTP: &http.Client{Timeout: 3 * time.Minute}}
}

// stamp is what a VM writes at the start of its disk, so the tour can show
// the data follows it.
func stamp(vmid int) []byte { return fmt.Appendf(nil, "pvehci lab vm %d\n", vmid) }

// CreateVM creates a VM through the simulated Proxmox API, whose storage
// hooks make the disk with exactly the REST calls the Proxmox plugin makes
// (alloc_image, activate_volume), then starts it on node: opens the device
// for writing and writes its stamp.
func (l *Lab) CreateVM(ctx context.Context, vmid int, node string, sizeKiB int64) (VM, error) {
	v := l.vms
	n, err := l.Node(node)
	if err != nil {
		return VM{}, err
	}
	if _, err := v.pve.CreateVM(ctx, vmid, node, fmt.Sprintf("vm%d", vmid), pvesim.Disk{Key: "scsi0", SizeKiB: sizeKiB}); err != nil {
		return VM{}, err
	}
	pv, _ := v.pve.VM(vmid)
	volname := pv.Volnames["scsi0"]
	dev, err := v.plugin().Path(ctx, volname, node)
	if err != nil {
		return VM{}, fmt.Errorf("the device of VM %d on %s: %w", vmid, node, err)
	}
	vm := &VM{ID: vmid, Node: node, Volname: volname, Device: dev, SizeKiB: sizeKiB}
	if vm.dev, err = open(n, dev, vmid); err != nil {
		return VM{}, err
	}
	if _, err := vm.dev.WriteAt(stamp(vmid), 0); err != nil {
		return VM{}, fmt.Errorf("VM %d writing to %s on %s: %w", vmid, dev, node, err)
	}
	v.mu.Lock()
	v.m[vmid] = vm
	v.mu.Unlock()
	return *vm, nil
}

func open(n *Node, dev string, vmid int) (*sim.DRBDDevice, error) {
	d, err := n.host.OpenDRBD(dev, true)
	if err != nil {
		return nil, fmt.Errorf("starting VM %d on %s: opening %s: %w", vmid, n.Name, dev, err)
	}
	return d, nil
}

// get returns the lab's VM vmid.
func (v *vms) get(vmid int) (*VM, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	vm, ok := v.m[vmid]
	if !ok {
		return nil, fmt.Errorf("the lab has no VM %d; create it with `pvehci lab vm create %d --node NODE`", vmid, vmid)
	}
	return vm, nil
}

// bothActive is the moment of a live migration when the target's QEMU
// has opened the disks and the source's stops: the target opens the
// device (DRBD has both Primary for an instant: allow-two-primaries), the
// source closes it, so the deactivation on the source that follows finds
// it unused, as after a real migration.
func (v *vms) bothActive(ctx context.Context, vmid int, source, target string, volnames []string) error {
	vm, err := v.get(vmid)
	if err != nil {
		return err
	}
	tn, err := v.l.Node(target)
	if err != nil {
		return err
	}
	dev, err := v.plugin().Path(ctx, vm.Volname, target)
	if err != nil {
		return err
	}
	d, err := open(tn, dev, vmid)
	if err != nil {
		return fmt.Errorf("%w (both sides are Primary during a live migration: allow-two-primaries)", err)
	}
	vm.dev.Close()
	v.mu.Lock()
	vm.dev, vm.Node, vm.Device = d, target, dev
	v.mu.Unlock()
	return nil
}

// MigrateVM live-migrates a VM through the simulated Proxmox API, which
// follows qemu-server's phases (research/proxmox.md §4.3,
// linstor-proxmox.md §8): lock, activate on the target, both active,
// config moved, deactivate on the source (which deletes a diskless
// replica there), unlock. Then it checks the VM reads its stamp.
func (l *Lab) MigrateVM(ctx context.Context, vmid int, target string) (VM, error) {
	v := l.vms
	vm, err := v.get(vmid)
	if err != nil {
		return VM{}, err
	}
	if vm.Node == target {
		return VM{}, fmt.Errorf("VM %d already runs on %s", vmid, target)
	}
	if _, err := l.Node(target); err != nil {
		return VM{}, err
	}
	if _, err := v.pve.Migrate(ctx, vmid, target); err != nil {
		return VM{}, fmt.Errorf("migrating VM %d to %s: %w", vmid, target, err)
	}
	v.mu.Lock()
	moved := *vm
	v.mu.Unlock()
	buf := make([]byte, len(stamp(vmid)))
	if _, err := moved.dev.ReadAt(buf, 0); err != nil || !bytes.Equal(buf, stamp(vmid)) {
		return VM{}, fmt.Errorf("VM %d on %s reads %q from its disk, want %q (err %v)", vmid, target, buf, stamp(vmid), err)
	}
	return moved, nil
}

// DeleteVM stops a VM and destroys it through the simulated Proxmox API:
// deactivate on its node, then free_image.
func (l *Lab) DeleteVM(ctx context.Context, vmid int) error {
	v := l.vms
	vm, err := v.get(vmid)
	if err != nil {
		return err
	}
	vm.dev.Close()
	if _, err := v.pve.DeleteVM(ctx, vmid); err != nil {
		return err
	}
	v.mu.Lock()
	delete(v.m, vmid)
	v.mu.Unlock()
	return nil
}

// VMs lists the lab's VMs.
func (l *Lab) VMs() []VM {
	v := l.vms
	v.mu.Lock()
	defer v.mu.Unlock()
	out := make([]VM, 0, len(v.m))
	for _, vm := range v.m {
		out = append(out, *vm)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// markerOffset is where a VM writes after a snapshot: the second 4 KiB
// block, so the stamp at 0 stays.
const markerOffset = 4096

// marker is what VM vmid writes after snapshot snap is taken.
func marker(vmid int, snap string) []byte {
	return fmt.Appendf(nil, "pvehci lab vm %d: written after snapshot %s\n", vmid, snap)
}

// SnapshotVM takes snapshot snap of a VM through the simulated Proxmox
// API (qm snapshot: volume_snapshot, the plugin's POST …/snapshots), then
// the running VM writes on: a marker after the snapshot, which a rollback
// to it must take away again.
func (l *Lab) SnapshotVM(ctx context.Context, vmid int, snap string) (VM, error) {
	v := l.vms
	vm, err := v.get(vmid)
	if err != nil {
		return VM{}, err
	}
	if _, err := v.pve.Snapshot(ctx, vmid, snap); err != nil {
		return VM{}, err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, err := vm.dev.WriteAt(marker(vmid, snap), markerOffset); err != nil {
		return VM{}, fmt.Errorf("VM %d writing after snapshot %s: %w", vmid, snap, err)
	}
	return *vm, nil
}

// VMRollback is the outcome of RollbackVM: the VM and its second block
// before and after the rollback.
type VMRollback struct {
	VM     VM     `json:"vm"`
	Before string `json:"before"`
	After  string `json:"after"`
}

// RollbackVM rolls a VM back to snapshot snap as qm rollback does (the VM
// stops: QEMU closes the device and the disk is deactivated; the plugin's
// POST …/snapshot-rollback; the VM stays stopped), then starts it again
// (qm start: activate, QEMU opens the device) and checks that what it
// wrote after the snapshot is gone and its stamp is still there.
func (l *Lab) RollbackVM(ctx context.Context, vmid int, snap string) (VMRollback, error) {
	v := l.vms
	vm, err := v.get(vmid)
	if err != nil {
		return VMRollback{}, err
	}
	n, err := l.Node(vm.Node)
	if err != nil {
		return VMRollback{}, err
	}
	block := make([]byte, len(marker(vmid, snap)))
	v.mu.Lock()
	_, err = vm.dev.ReadAt(block, markerOffset)
	before := string(bytes.TrimRight(block, "\x00"))
	vm.dev.Close()
	v.mu.Unlock()
	if err != nil {
		return VMRollback{}, fmt.Errorf("VM %d reading its disk: %w", vmid, err)
	}
	_, rbErr := v.pve.Rollback(ctx, vmid, snap)
	// Started again even after a failed rollback, as an admin would.
	if _, err := v.pve.Start(ctx, vmid); err != nil {
		return VMRollback{}, errors.Join(rbErr, err)
	}
	dev, err := open(n, vm.Device, vmid)
	if err != nil {
		return VMRollback{}, errors.Join(rbErr, err)
	}
	v.mu.Lock()
	vm.dev = dev
	out := VMRollback{VM: *vm, Before: before}
	v.mu.Unlock()
	if rbErr != nil {
		return out, rbErr
	}
	if _, err := dev.ReadAt(block, markerOffset); err != nil {
		return out, fmt.Errorf("VM %d reading its disk after the rollback: %w", vmid, err)
	}
	out.After = string(bytes.TrimRight(block, "\x00"))
	if bytes.Equal(block, marker(vmid, snap)) {
		return out, fmt.Errorf("VM %d still reads %q after the rollback to %s", vmid, out.After, snap)
	}
	stampBuf := make([]byte, len(stamp(vmid)))
	if _, err := dev.ReadAt(stampBuf, 0); err != nil || !bytes.Equal(stampBuf, stamp(vmid)) {
		return out, fmt.Errorf("VM %d reads %q at its start after the rollback, want %q (err %v)", vmid, stampBuf, stamp(vmid), err)
	}
	return out, nil
}

// DeleteVMSnapshot deletes a VM's snapshot as qm delsnapshot does.
func (l *Lab) DeleteVMSnapshot(ctx context.Context, vmid int, snap string) error {
	_, err := l.vms.pve.DeleteSnapshot(ctx, vmid, snap)
	return err
}
