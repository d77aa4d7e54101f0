package lab

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pvehci/pvehci/bootstrap/cluster"
	"github.com/pvehci/pvehci/bootstrap/simhost"
	"github.com/pvehci/pvehci/internal/daemon"
	"github.com/pvehci/pvehci/internal/kernelrpc"
	"github.com/pvehci/pvehci/internal/localapi"
	"github.com/pvehci/pvehci/internal/run"
	"github.com/pvehci/pvehci/storage/lvm"
	"github.com/pvehci/pvehci/storage/sim"
)

// Defaults of a lab.
const (
	DefaultNodes    = 3
	DefaultPoolSize = 64 << 30 // bytes of each node's thin pool; sparse
	// The names the Proxmox side of the lab uses: storage.cfg's storage
	// and resource group, as in the plugin's documentation.
	StorageName   = "drbdstorage"
	ResourceGroup = "drbdgrp"
	StoragePool   = "thinpool"
	PeerPort      = 3372
	// resyncBlocks per resyncTick is the simulated resync bandwidth:
	// 8192 4-KiB blocks every 100 ms, 320 MiB/s.
	resyncBlocks = 8192
	resyncTick   = 100 * time.Millisecond
)

// LogFile is the supervisor's log in the lab directory.
const LogFile = "lab.log"

// DefaultAddrBase is the address before n1's: n1 is 127.0.0.11.
var DefaultAddrBase = netip.MustParseAddr("127.0.0.10")

// Config says what lab to start.
type Config struct {
	// Dir holds everything of the lab; it must be empty or absent.
	Dir   string
	Nodes int
	// AddrBase is the address before n1's.
	AddrBase netip.Addr
	// Binary is the pvehci executable the nodes run; default: this one.
	Binary string
	// PoolSize is each node's thin pool in bytes.
	PoolSize uint64
	// SatelliteInterval is the satellites' idle pass interval; the lab
	// uses 2 s so that the tour does not wait.
	SatelliteInterval time.Duration
	// RelocateDelay is how long a VM runs diskless before its replica
	// follows it; the lab uses 5 s instead of 30 min so the tour shows it.
	RelocateDelay time.Duration
	// RelocateMaxRate is the daemons' --relocate-max-rate; empty: no cap.
	RelocateMaxRate string
	Log             *slog.Logger
}

func (c *Config) setDefaults() error {
	if c.Dir == "" {
		return errors.New("the lab needs a directory (--dir)")
	}
	abs, err := filepath.Abs(c.Dir)
	if err != nil {
		return err
	}
	c.Dir = abs
	if c.Nodes == 0 {
		c.Nodes = DefaultNodes
	}
	if c.Nodes < 1 || c.Nodes > 9 {
		return fmt.Errorf("a lab has 1 to 9 nodes, not %d", c.Nodes)
	}
	if !c.AddrBase.IsValid() {
		c.AddrBase = DefaultAddrBase
	}
	if !c.AddrBase.Is4() || !c.AddrBase.IsLoopback() {
		return fmt.Errorf("--addr-base %s: the lab's nodes live on IPv4 loopback addresses (127.0.0.0/8)", c.AddrBase)
	}
	if c.Binary == "" {
		if c.Binary, err = os.Executable(); err != nil {
			return fmt.Errorf("finding the pvehci binary: %w", err)
		}
	}
	if c.PoolSize == 0 {
		c.PoolSize = DefaultPoolSize
	}
	if c.SatelliteInterval == 0 {
		c.SatelliteInterval = 2 * time.Second
	}
	if c.RelocateDelay == 0 {
		c.RelocateDelay = 5 * time.Second
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Node is one simulated Proxmox node and its daemon.
type Node struct {
	Name string
	Addr netip.Addr
	// Dir is DIR/nodes/NAME; Root is its file system root.
	Dir, Root string
	Socket    string
	host      *sim.Host
	simHost   *simhost.Node

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// APIURL is the node's LINSTOR REST API.
func (n *Node) APIURL() string { return "http://" + net.JoinHostPort(n.Addr.String(), "3370") }

// PeerAddr is the node's peer port.
func (n *Node) PeerAddr() string { return net.JoinHostPort(n.Addr.String(), fmt.Sprint(PeerPort)) }

// Host is the node's simulated kernel.
func (n *Node) Host() *sim.Host { return n.host }

// Alive reports whether the node's daemon runs.
func (n *Node) Alive() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.done == nil {
		return false
	}
	select {
	case <-n.done:
		return false
	default:
		return true
	}
}

// PID is the daemon's process id, 0 when it does not run.
func (n *Node) PID() int {
	if !n.Alive() {
		return 0
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cmd.Process.Pid
}

// Lab is a running lab.
type Lab struct {
	cfg   Config
	log   *slog.Logger
	Nodes []*Node
	Net   *sim.Network

	kernel     *http.Server
	stopResync context.CancelFunc
	resyncDone chan struct{}
	vms        *vms
	cluster    *cluster.Cluster
	world      *simhost.World
}

// Start creates the lab in cfg.Dir: the simulated kernel, one daemon per
// node, the cluster formed and the LINSTOR objects created. It returns
// once every node answers /health and a leader exists.
func Start(ctx context.Context, cfg Config) (_ *Lab, err error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	if entries, err := os.ReadDir(cfg.Dir); err == nil && slices.ContainsFunc(entries, func(e os.DirEntry) bool { return e.Name() != LogFile }) {
		return nil, fmt.Errorf("%s is not empty; is a lab running there? stop it with `pvehci lab down --dir %s`, or choose another --dir", cfg.Dir, cfg.Dir)
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating the lab directory: %w", err)
	}
	l := &Lab{cfg: cfg, log: cfg.Log, Net: sim.NewNetwork()}
	defer func() {
		if err != nil {
			l.Close()
		}
	}()
	addr := cfg.AddrBase
	for i := 1; i <= cfg.Nodes; i++ {
		addr = addr.Next()
		n, err := l.newNode(fmt.Sprintf("n%d", i), addr)
		if err != nil {
			return nil, err
		}
		l.Nodes = append(l.Nodes, n)
	}
	if err := l.serveKernel(); err != nil {
		return nil, err
	}
	if err := l.startPVE(); err != nil {
		return nil, err
	}
	l.startResync()
	if err := l.setupHosts(); err != nil {
		return nil, err
	}
	if err := os.WriteFile(l.ClusterFilePath(), l.ClusterFile(), 0o644); err != nil {
		return nil, err
	}
	// Each node comes up through pvehci bootstrap's own steps against
	// its simulated host: packages, network, corosync, thin pool, DRBD,
	// the service (which starts the daemon), cluster init or join,
	// registration and the Proxmox storage entry.
	if err := l.bootstrapAll(ctx); err != nil {
		return nil, err
	}
	if err := l.WaitReady(ctx, 60*time.Second); err != nil {
		return nil, err
	}
	if err := l.waitPools(ctx); err != nil {
		return nil, err
	}
	if err := l.writeEnv(); err != nil {
		return nil, err
	}
	return l, nil
}

// Dir is the lab's directory.
func (l *Lab) Dir() string { return l.cfg.Dir }

// Node returns the node called name.
func (l *Lab) Node(name string) (*Node, error) {
	for _, n := range l.Nodes {
		if n.Name == name {
			return n, nil
		}
	}
	names := make([]string, len(l.Nodes))
	for i, n := range l.Nodes {
		names[i] = n.Name
	}
	return nil, fmt.Errorf("the lab has no node %q; its nodes are %s", name, strings.Join(names, " "))
}

// Controllers is the controller list for clients, as the Proxmox plugin's
// `controller` option and LS_CONTROLLERS take it.
func (l *Lab) Controllers() []string {
	out := make([]string, len(l.Nodes))
	for i, n := range l.Nodes {
		out[i] = n.APIURL()
	}
	return out
}

func (l *Lab) newNode(name string, addr netip.Addr) (*Node, error) {
	dir := filepath.Join(l.cfg.Dir, "nodes", name)
	n := &Node{Name: name, Addr: addr, Dir: dir, Root: filepath.Join(dir, "root"), Socket: filepath.Join(dir, "pvehci.sock")}
	for _, d := range []string{n.Root, filepath.Join(dir, "data")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("creating %s: %w", d, err)
		}
	}
	// drbd-utils' files, the include of the satellite's resources and
	// the thin pool come from bootstrap; the node starts with its host
	// name and a blank disk.
	if err := os.MkdirAll(filepath.Join(n.Root, "etc"), 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(n.Root, "etc/hostname"), []byte(name+"\n"), 0o644); err != nil {
		return nil, err
	}
	h := sim.NewHost(name)
	// The thin pool takes poolPercent of the disk, less its metadata
	// (1 %) and the spare metadata LV.
	if err := h.AddDisk(diskPath, (l.cfg.PoolSize*100/(poolPercent-2))&^(1<<20-1)); err != nil {
		return nil, err
	}
	h.SetConfigRoot(n.Root)
	l.Net.Attach(h)
	n.host = h
	return n, nil
}

func (l *Lab) kernelSocket() string { return filepath.Join(l.cfg.Dir, "kernel.sock") }

// serveKernel answers the daemons' storage commands with each node's
// simulated host.
func (l *Lab) serveKernel() error {
	ln, err := net.Listen("unix", l.kernelSocket())
	if err != nil {
		return fmt.Errorf("listening for the simulated kernel: %w", err)
	}
	srv := &kernelrpc.Server{Log: l.log.With("component", "kernel"), Runner: func(node string) (run.Runner, bool) {
		n, err := l.Node(node)
		if err != nil {
			return nil, false
		}
		return n.host.Runner(), true
	}}
	l.kernel = &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	go l.kernel.Serve(ln)
	return nil
}

// startResync moves running resyncs at the simulated bandwidth.
func (l *Lab) startResync() {
	ctx, cancel := context.WithCancel(context.Background())
	l.stopResync = cancel
	l.Net.SetResyncTick(resyncTick)
	l.resyncDone = make(chan struct{})
	go func() {
		defer close(l.resyncDone)
		t := time.NewTicker(resyncTick)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				l.Net.Resync(resyncBlocks)
			}
		}
	}()
}

// startDaemon runs the node's `pvehci daemon`.
func (l *Lab) startDaemon(n *Node) error {
	if n.Alive() {
		return fmt.Errorf("%s is already running (pid %d)", n.Name, n.PID())
	}
	logf, err := os.OpenFile(filepath.Join(n.Dir, "daemon.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(l.cfg.Binary, "--log-level", "info", "daemon",
		"--node", n.Name, "--data-dir", filepath.Join(n.Dir, "data"),
		"--peer-listen", n.PeerAddr(), "--advertise", n.PeerAddr(),
		"--api-listen", net.JoinHostPort(n.Addr.String(), fmt.Sprint(daemon.DefaultAPIPort)),
		"--socket", n.Socket, "--root", n.Root, "--kernel-socket", l.kernelSocket(),
		"--satellite-interval", l.cfg.SatelliteInterval.String(),
		"--relocate-delay", l.cfg.RelocateDelay.String(),
		"--pve-api", n.PVEURL(), "--pve-token-file", l.pveTokenFile())
	if l.cfg.RelocateMaxRate != "" {
		cmd.Args = append(cmd.Args, "--relocate-max-rate", l.cfg.RelocateMaxRate)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET=")
	// Its own process group: a Ctrl-C on `lab up` must not reach the
	// nodes, which run until `lab down`. They die with the supervisor,
	// which holds their kernels: a node without its kernel is useless,
	// and no daemon may outlive a killed test.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("starting the daemon of %s: %w", n.Name, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(done) }()
	n.mu.Lock()
	n.cmd, n.done = cmd, done
	n.mu.Unlock()
	deadline := time.Now().Add(20 * time.Second)
	c := localapi.NewClient(n.Socket)
	for time.Now().Before(deadline) {
		if c.Do(context.Background(), "GET", "/v1/status", nil, nil) == nil {
			l.log.Info("node started", "node", n.Name, "pid", cmd.Process.Pid)
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("the daemon of %s exited during start:\n%s", n.Name, tail(filepath.Join(n.Dir, "daemon.log"), 5))
		case <-time.After(20 * time.Millisecond):
		}
	}
	return fmt.Errorf("the daemon of %s did not answer on %s within 20 s; see %s", n.Name, n.Socket, filepath.Join(n.Dir, "daemon.log"))
}

// Kill ends a node's daemon with SIGKILL, as a crash would. Its simulated
// kernel keeps running, as a real kernel outlives a crashed daemon.
func (l *Lab) Kill(name string) error {
	n, err := l.Node(name)
	if err != nil {
		return err
	}
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.mu.Unlock()
	if cmd == nil || !n.Alive() {
		return fmt.Errorf("%s is not running; start it with `pvehci lab start %s`", name, name)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	<-done
	return nil
}

// StartNode starts a node's daemon again after Kill.
func (l *Lab) StartNode(name string) error {
	n, err := l.Node(name)
	if err != nil {
		return err
	}
	return l.startDaemon(n)
}

// stop ends a daemon with SIGTERM, as systemd does.
func (n *Node) stop(timeout time.Duration) {
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.mu.Unlock()
	if cmd == nil || done == nil {
		return
	}
	select {
	case <-done:
		return
	default:
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(timeout):
		cmd.Process.Signal(syscall.SIGKILL)
		<-done
	}
}

// Close stops every node and the simulated kernel. The directory stays;
// Remove deletes it.
func (l *Lab) Close() error {
	var wg sync.WaitGroup
	for _, n := range l.Nodes {
		wg.Add(1)
		go func() { defer wg.Done(); n.stop(20 * time.Second) }()
	}
	wg.Wait()
	if l.stopResync != nil {
		l.stopResync()
		<-l.resyncDone
	}
	if l.kernel != nil {
		l.kernel.Close()
	}
	if l.vms != nil {
		l.vms.close()
	}
	return nil
}

// Partition cuts the simulated DRBD links between the given nodes and
// all others.
func (l *Lab) Partition(names ...string) error {
	in := map[string]bool{}
	for _, name := range names {
		if _, err := l.Node(name); err != nil {
			return err
		}
		in[name] = true
	}
	for _, a := range l.Nodes {
		for _, b := range l.Nodes {
			if a.Name < b.Name && in[a.Name] != in[b.Name] {
				l.Net.Cut(a.Name, b.Name)
			}
		}
	}
	return nil
}

// Heal restores every simulated link.
func (l *Lab) Heal() {
	for _, a := range l.Nodes {
		for _, b := range l.Nodes {
			if a.Name < b.Name {
				l.Net.Heal(a.Name, b.Name)
			}
		}
	}
}

// tail returns the last lines of a file, for errors that point at a log.
func tail(path string, lines int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	return strings.Join(all[max(0, len(all)-lines):], "\n")
}

// FailDisk makes a node's disk (the one under its thin pool) fail as a dead
// drive does: DRBD detaches every replica there and serves it through the
// peers; the satellite's attempts to attach it again fail.
func (l *Lab) FailDisk(node string) error {
	n, err := l.Node(node)
	if err != nil {
		return err
	}
	return n.host.FailDisk(diskPath)
}

// Corrupt flips the bytes of block 3 (4 KiB at 12 KiB) of volume 0 of rd
// on node's backing LV, behind DRBD's back: what a failing disk or a bad
// cable leaves, and what an online verify must find.
func (l *Lab) Corrupt(node, rd string) error {
	n, err := l.Node(node)
	if err != nil {
		return err
	}
	path := lvm.DevicePath(VolumeGroup, lvm.VolumeLVName(rd, 0))
	dev, err := n.host.Device(path)
	if err != nil {
		return fmt.Errorf("%s has no backing volume for %s (%s): %w; corrupt a node with a diskful replica", node, rd, path, err)
	}
	defer dev.Close()
	buf := make([]byte, 4096)
	if _, err := dev.ReadAt(buf, 3*4096); err != nil {
		return err
	}
	for i := range buf {
		buf[i] ^= 0xff
	}
	_, err = dev.WriteAt(buf, 3*4096)
	return err
}
