// Package simhost is a simulated Proxmox VE node for pvehci bootstrap: the
// programs bootstrap runs (pveversion, apt, dpkg, modprobe, ifreload, pvecm,
// pvesm, lvm2 through storage/sim, …), the kernel's network interfaces and
// InfiniBand ports, systemd, and pmxcfs's /etc/pve shared by the nodes of a
// World. Bootstrap's steps run against it through the same interfaces as on
// a real node, so a test (or the lab) can take a fresh node to converged
// and check every file and command on the way.
//
// Each command answers as the real one does where bootstrap reads the
// answer (formats, exit codes, the messages of the refusals it meets);
// everything is recorded in a transcript.
package simhost

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/pvehci/pvehci/bootstrap"
	"github.com/pvehci/pvehci/internal/hostfs"
	"github.com/pvehci/pvehci/storage/sim"
)

// World is the shared part of a simulated Proxmox cluster: pmxcfs and the
// nodes that can reach each other.
type World struct {
	mu      sync.Mutex
	dir     string
	nodes   map[string]*Node
	cluster string // Proxmox cluster name; "" before pvecm create
	members []string
}

// NewWorld keeps the nodes' files under dir.
func NewWorld(dir string) *World {
	return &World{dir: dir, nodes: map[string]*Node{}}
}

// Dir holds the nodes' files and the shared pmxcfs (Dir/pmxcfs).
func (w *World) Dir() string { return w.dir }

// Node is one simulated Proxmox VE node.
type Node struct {
	world *World
	Name  string
	// Root holds the node's files.
	Root string
	LVM  *sim.Host

	mu sync.Mutex
	// PVEVersion and Kernel are what pveversion says.
	PVEVersion, Kernel string
	packages           map[string]bool // installed
	// Versions are what dpkg-query --showformat=${Version} says.
	Versions map[string]string
	// NTP is what timedatectl says about clock synchronisation.
	NTP bool
	// Listening are local addresses of listening TCP sockets (ss).
	Listening []string
	links     map[string]*bootstrap.Link
	ibPorts   []bootstrap.IBPort
	units     map[string]*bootstrap.UnitState
	// OnStart runs when systemd (re)starts a unit; the service is
	// active when it returns nil.
	OnStart func(ctx context.Context, unit string) error
	// Fail makes the command whose line starts with the key fail with
	// the value on stderr (exit 1): fault injection.
	Fail       map[string]string
	transcript []string
	ownPVE     string // /etc/pve before the node joins a cluster
}

// AddNode creates a fresh Proxmox VE 8 node: its own /etc/pve, no
// packages of ours, NTP synchronised, the given NICs (down, no addresses).
func (w *World) AddNode(name string, nics ...string) (*Node, error) {
	return w.AddNodeOn(name, filepath.Join(w.dir, name), sim.NewHost(name), nics...)
}

// AddNodeOn is AddNode with the node's files under root and its disks and
// DRBD in kernel, as the lab keeps them.
func (w *World) AddNodeOn(name, root string, kernel *sim.Host, nics ...string) (*Node, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := &Node{
		world: w, Name: name, Root: root, LVM: kernel,
		PVEVersion: "8.2.4", Kernel: "6.8.8-2-pve", NTP: true,
		packages: map[string]bool{"pve-manager": true, "ifupdown2": true, "lvm2": true, "proxmox-default-headers": true},
		links:    map[string]*bootstrap.Link{"lo": {Name: "lo", Kind: "device", Up: true, LinkLayer: "loopback", Addrs: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/8")}}},
		units:    map[string]*bootstrap.UnitState{},
		Versions: map[string]string{"pve-manager": "8.2.4", "pve-ha-manager": "4.0.5"},
		Fail:     map[string]string{},
		ownPVE:   filepath.Join(root, "pmxcfs-local"),
	}
	for _, nic := range nics {
		n.links[nic] = &bootstrap.Link{Name: nic, Kind: "device", LinkLayer: "ether", MTU: 1500}
	}
	for _, d := range []string{root, n.ownPVE, filepath.Join(n.ownPVE, "nodes", name),
		filepath.Join(root, "etc/network/interfaces.d"), filepath.Join(root, "usr/bin"), filepath.Join(root, "var/lib")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	if err := os.WriteFile(filepath.Join(n.ownPVE, "storage.cfg"), []byte(defaultStorageCfg), 0o640); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(root, "usr/bin/pvehci"), []byte("#!/bin/false\n"), 0o755); err != nil {
		return nil, err
	}
	w.nodes[name] = n
	return n, nil
}

// defaultStorageCfg is what a fresh Proxmox VE install on LVM has.
const defaultStorageCfg = "dir: local\n\tpath /var/lib/vz\n\tcontent iso,vztmpl,backup\n\nlvmthin: local-lvm\n\tthinpool data\n\tvgname pve\n\tcontent rootdir,images\n"

// AddIBPort gives the node an InfiniBand port with an IPoIB netdev.
func (n *Node) AddIBPort(p bootstrap.IBPort) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if p.LinkLayer == "" {
		p.LinkLayer = "InfiniBand"
	}
	if p.State == "" {
		p.State = "ACTIVE"
	}
	n.ibPorts = append(n.ibPorts, p)
	if p.NetDev != "" {
		n.links[p.NetDev] = &bootstrap.Link{Name: p.NetDev, Kind: "ipoib", LinkLayer: "infiniband", MTU: 2044}
	}
}

// AddDisk gives the node a blank disk.
func (n *Node) AddDisk(path string, size uint64) error { return n.LVM.AddDisk(path, size) }

// Install marks packages as installed.
func (n *Node) Install(pkgs ...string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, p := range pkgs {
		n.packages[p] = true
	}
}

// Transcript is every command run on the node, in order.
func (n *Node) Transcript() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.transcript)
}

// Host is the node as bootstrap sees it.
func (n *Node) Host() *bootstrap.Host {
	return &bootstrap.Host{
		FS:           n.FS(),
		Run:          runner{n},
		Net:          netView{n},
		RDMA:         rdmaView{n},
		Systemd:      systemdView{n},
		NetworkLock:  noLock{},
		CorosyncLock: noLock{},
	}
}

// FS is the node's files, /etc/pve included.
func (n *Node) FS() hostfs.FS {
	return &pveFS{root: hostfs.Root(n.Root), pve: func() hostfs.FS { return hostfs.Root(n.pveDir()) }}
}

func (n *Node) pveDir() string {
	n.world.mu.Lock()
	defer n.world.mu.Unlock()
	if slices.Contains(n.world.members, n.Name) {
		return filepath.Join(n.world.dir, "pmxcfs")
	}
	return n.ownPVE
}

type noLock struct{}

func (noLock) Acquire(context.Context) (func() error, error) { return func() error { return nil }, nil }
func (noLock) String() string                                { return "simulated lock" }

// netView is bootstrap.Network.
type netView struct{ n *Node }

func (v netView) Link(_ context.Context, name string) (bootstrap.Link, error) {
	v.n.mu.Lock()
	defer v.n.mu.Unlock()
	l, ok := v.n.links[name]
	if !ok {
		return bootstrap.Link{}, fmt.Errorf("network interface %s: %w", name, bootstrap.ErrNoLink)
	}
	c := *l
	c.Addrs = slices.Clone(l.Addrs)
	return c, nil
}

func (v netView) Links(ctx context.Context) ([]bootstrap.Link, error) {
	v.n.mu.Lock()
	names := make([]string, 0, len(v.n.links))
	for k := range v.n.links {
		names = append(names, k)
	}
	v.n.mu.Unlock()
	sort.Strings(names)
	var out []bootstrap.Link
	for _, name := range names {
		l, err := v.Link(ctx, name)
		if err == nil {
			out = append(out, l)
		}
	}
	return out, nil
}

// rdmaView is bootstrap.RDMA.
type rdmaView struct{ n *Node }

func (v rdmaView) Ports(context.Context) ([]bootstrap.IBPort, error) {
	v.n.mu.Lock()
	defer v.n.mu.Unlock()
	return slices.Clone(v.n.ibPorts), nil
}

// systemdView is bootstrap.Systemd.
type systemdView struct{ n *Node }

func (v systemdView) unitFile(unit string) bool {
	_, err := os.Stat(filepath.Join(v.n.Root, "etc/systemd/system", unit))
	return err == nil
}

func (v systemdView) Reload(context.Context) error {
	v.n.record("systemctl daemon-reload")
	return nil
}

func (v systemdView) Enable(_ context.Context, units ...string) error {
	v.n.record("systemctl enable " + strings.Join(units, " "))
	for _, u := range units {
		if !v.unitFile(u) {
			return fmt.Errorf("enabling %s: Unit file %s does not exist", u, u)
		}
		v.n.mu.Lock()
		st := v.n.unit(u)
		st.UnitFileState = "enabled"
		v.n.mu.Unlock()
	}
	return nil
}

func (v systemdView) Restart(ctx context.Context, unit string) error {
	v.n.record("systemctl restart " + unit)
	if !v.unitFile(unit) {
		return fmt.Errorf("restarting %s: Unit %s not found", unit, unit)
	}
	var err error
	if v.n.OnStart != nil {
		err = v.n.OnStart(ctx, unit)
	}
	v.n.mu.Lock()
	defer v.n.mu.Unlock()
	st := v.n.unit(unit)
	if err != nil {
		st.ActiveState = "failed"
		return fmt.Errorf("restarting %s: job result failed; see journalctl -u %s: %w", unit, unit, err)
	}
	st.ActiveState = "active"
	return nil
}

func (v systemdView) State(_ context.Context, unit string) (bootstrap.UnitState, error) {
	file := v.unitFile(unit)
	v.n.mu.Lock()
	defer v.n.mu.Unlock()
	st := *v.n.unit(unit)
	if file {
		st.LoadState = "loaded"
	}
	return st, nil
}

// unit returns the state of a unit; n.mu held.
func (n *Node) unit(name string) *bootstrap.UnitState {
	st, ok := n.units[name]
	if !ok {
		st = &bootstrap.UnitState{LoadState: "not-found", ActiveState: "inactive"}
		n.units[name] = st
	}
	return st
}

func (n *Node) record(line string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.transcript = append(n.transcript, line)
}

// node finds a node of the world by one of its addresses.
func (w *World) nodeWithAddr(addr netip.Addr) *Node {
	w.mu.Lock()
	nodes := make([]*Node, 0, len(w.nodes))
	for _, n := range w.nodes {
		nodes = append(nodes, n)
	}
	w.mu.Unlock()
	for _, n := range nodes {
		n.mu.Lock()
		for _, l := range n.links {
			if !l.Up {
				continue
			}
			for _, a := range l.Addrs {
				if a.Addr() == addr {
					n.mu.Unlock()
					return n
				}
			}
		}
		n.mu.Unlock()
	}
	return nil
}
