package lab

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/pvehci/pvehci/pve/plugin"
	"github.com/pvehci/pvehci/storage/sim"
)

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

// vms is the lab's Proxmox side: the plugin's calls for the disks, the
// simulated devices for the running VMs.
type vms struct {
	l  *Lab
	mu sync.Mutex
	m  map[int]*VM
}

func newVMs(l *Lab) *vms { return &vms{l: l, m: map[int]*VM{}} }

// plugin is the Proxmox plugin as storage.cfg configures it for the lab
// (controller list of every node, resource group drbdgrp).
func (v *vms) plugin() *plugin.Client {
	return &plugin.Client{Controllers: v.l.Controllers(), ResourceGroup: ResourceGroup,
		HTTP: &http.Client{Timeout: 3 * time.Minute}}
}

// stamp is what a VM writes at the start of its disk, so the tour can show
// the data follows it.
func stamp(vmid int) []byte { return fmt.Appendf(nil, "pvehci lab vm %d\n", vmid) }

// CreateVM creates a VM whose disk is made through exactly the REST calls
// the Proxmox plugin makes (alloc_image, activate_volume, path), then
// starts it on node: opens the device for writing and writes its stamp.
func (l *Lab) CreateVM(ctx context.Context, vmid int, node string, sizeKiB int64) (VM, error) {
	v := l.vms
	n, err := l.Node(node)
	if err != nil {
		return VM{}, err
	}
	v.mu.Lock()
	_, exists := v.m[vmid]
	v.mu.Unlock()
	if exists {
		return VM{}, fmt.Errorf("VM %d exists already; delete it first with `pvehci lab vm delete %d`", vmid, vmid)
	}
	pc := v.plugin()
	volname, err := pc.AllocImage(ctx, vmid, sizeKiB, node)
	if err != nil {
		return VM{}, fmt.Errorf("allocating the disk of VM %d: %w", vmid, err)
	}
	dev, err := pc.ActivateVolume(ctx, volname, node)
	if err != nil {
		return VM{}, fmt.Errorf("activating the disk of VM %d on %s: %w", vmid, node, err)
	}
	vm := &VM{ID: vmid, Node: node, Volname: volname, Device: dev, SizeKiB: sizeKiB}
	if err := vm.start(n); err != nil {
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

func (vm *VM) start(n *Node) error {
	d, err := n.host.OpenDRBD(vm.Device, true)
	if err != nil {
		return fmt.Errorf("starting VM %d on %s: opening %s: %w", vm.ID, n.Name, vm.Device, err)
	}
	vm.dev = d
	return nil
}

// MigrateVM live-migrates a VM as Proxmox does (research/proxmox.md §4.3,
// linstor-proxmox.md §8): activate the disk on the target, start the
// target (both sides Primary while memory moves), stop the source,
// deactivate the disk on the source (which deletes a diskless replica
// there), and check the VM reads its stamp on the target.
func (l *Lab) MigrateVM(ctx context.Context, vmid int, target string) (VM, error) {
	v := l.vms
	v.mu.Lock()
	vm, ok := v.m[vmid]
	v.mu.Unlock()
	if !ok {
		return VM{}, fmt.Errorf("the lab has no VM %d; create it with `pvehci lab vm create %d --node NODE`", vmid, vmid)
	}
	if vm.Node == target {
		return VM{}, fmt.Errorf("VM %d already runs on %s", vmid, target)
	}
	tn, err := l.Node(target)
	if err != nil {
		return VM{}, err
	}
	pc := v.plugin()
	dev, err := pc.ActivateVolume(ctx, vm.Volname, target)
	if err != nil {
		return VM{}, fmt.Errorf("migrating VM %d: activating its disk on %s: %w", vmid, target, err)
	}
	moved := &VM{ID: vmid, Node: target, Volname: vm.Volname, Device: dev, SizeKiB: vm.SizeKiB}
	if err := moved.start(tn); err != nil {
		return VM{}, fmt.Errorf("migrating VM %d: %w (both sides must be Primary during a live migration: allow-two-primaries)", vmid, err)
	}
	source := vm.Node
	vm.dev.Close()
	if err := pc.DeactivateVolume(ctx, vm.Volname, source); err != nil {
		return VM{}, fmt.Errorf("migrating VM %d: deactivating its disk on %s: %w", vmid, source, err)
	}
	buf := make([]byte, len(stamp(vmid)))
	if _, err := moved.dev.ReadAt(buf, 0); err != nil || !bytes.Equal(buf, stamp(vmid)) {
		return VM{}, fmt.Errorf("VM %d on %s reads %q from its disk, want %q (err %v)", vmid, target, buf, stamp(vmid), err)
	}
	v.mu.Lock()
	v.m[vmid] = moved
	v.mu.Unlock()
	return *moved, nil
}

// DeleteVM stops a VM and frees its disk as Proxmox does: deactivate on
// its node, then free_image.
func (l *Lab) DeleteVM(ctx context.Context, vmid int) error {
	v := l.vms
	v.mu.Lock()
	vm, ok := v.m[vmid]
	v.mu.Unlock()
	if !ok {
		return fmt.Errorf("the lab has no VM %d", vmid)
	}
	vm.dev.Close()
	pc := v.plugin()
	if err := pc.DeactivateVolume(ctx, vm.Volname, vm.Node); err != nil {
		return fmt.Errorf("deleting VM %d: deactivating its disk on %s: %w", vmid, vm.Node, err)
	}
	if err := pc.FreeImage(ctx, vm.Volname); err != nil {
		return fmt.Errorf("deleting VM %d: freeing %s: %w", vmid, vm.Volname, err)
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
