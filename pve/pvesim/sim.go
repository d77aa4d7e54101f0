package pvesim

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pvehci/pvehci/internal/clock"
)

// Storage is the storage plugin as a VM's lifecycle uses it: the hooks
// PVE calls for a drbd storage. pve/plugin.Storage implements it.
type Storage interface {
	Alloc(ctx context.Context, vmid int, sizeKiB int64, node string) (volname string, err error)
	Activate(ctx context.Context, volname, node string) error
	Deactivate(ctx context.Context, volname, node string) error
	Free(ctx context.Context, volname string) error
	// Snapshot, Rollback and DeleteSnapshot are volume_snapshot,
	// volume_snapshot_rollback and volume_snapshot_delete of one disk.
	Snapshot(ctx context.Context, volname, snap string) error
	Rollback(ctx context.Context, volname, snap string) error
	DeleteSnapshot(ctx context.Context, volname, snap string) error
}

// Options configure a Sim.
type Options struct {
	// Nodes are the cluster's node names, in nodeid order (from 1).
	Nodes []string
	// IPs gives each node's address in /cluster/status; a node missing
	// here gets 127.0.0.<11+index>.
	IPs map[string]string
	// Local is the node whose pveproxy answers (local:1); default Nodes[0].
	Local string
	// ClusterName defaults to "lab".
	ClusterName string
	// StorageID is the storage.cfg id in volids; default "drbdstorage".
	StorageID string
	// Storage makes the disks; required for VMs that have any.
	Storage Storage
	// Clock gives task start and end times; default real time.
	Clock clock.Clock
	// Token, when set, is the one API token accepted, written as in the
	// header: USER@REALM!TOKENID=SECRET. Empty disables authentication.
	Token string
	// BothActive, when set, runs during a migration after every disk was
	// activated on the target and before the config moves: the moment
	// both QEMUs have the devices open. An error fails the migration.
	BothActive func(ctx context.Context, vmid int, source, target string, volnames []string) error
}

// Disk is one disk to create: a config key such as scsi0 and a size.
type Disk struct {
	Key     string
	SizeKiB int64
}

type disk struct {
	key, volname string
	sizeKiB      int64
}

type vm struct {
	vmid          int
	name, node    string
	running       bool
	lock          string
	disks         []disk
	started       time.Time
	migrateSource string   // set while locked for migration
	snapshots     []string // by age, oldest first
}

// task is one worker task; exit is "" while it runs.
type task struct {
	upid    UPID
	end     time.Time
	exit    string
	running bool
}

// Sim is a simulated PVE cluster. It is safe for concurrent use.
type Sim struct {
	opts Options
	clk  clock.Clock

	mu         sync.Mutex
	online     map[string]bool
	vms        map[int]*vm
	tasks      []*task
	pid        int
	transcript []string
	wg         sync.WaitGroup
}

// New returns a cluster with every node online and no VMs.
func New(opts Options) *Sim {
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	if opts.Local == "" && len(opts.Nodes) > 0 {
		opts.Local = opts.Nodes[0]
	}
	if opts.ClusterName == "" {
		opts.ClusterName = "lab"
	}
	if opts.StorageID == "" {
		opts.StorageID = "drbdstorage"
	}
	s := &Sim{opts: opts, clk: opts.Clock, online: map[string]bool{}, vms: map[int]*vm{}, pid: 0x1000}
	for _, n := range opts.Nodes {
		s.online[n] = true
	}
	return s
}

// Transcript returns every storage and hook call so far, one line each:
// "alloc 100 1048576 pve1 -> pm-…_100", "activate <vol> <node>",
// "lock 100 migrate", "both-active 100 pve1 pve2", "move 100 pve1 pve2",
// "deactivate <vol> <node>", "unlock 100", "free <vol>", with " error: …"
// appended to a failed call.
func (s *Sim) Transcript() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.transcript)
}

// recordErr records a call and its outcome.
func (s *Sim) recordErr(err error, format string, args ...any) error {
	line := fmt.Sprintf(format, args...)
	if err != nil {
		line += " error: " + err.Error()
	}
	s.mu.Lock()
	s.transcript = append(s.transcript, line)
	s.mu.Unlock()
	return err
}

// Wait waits for the tasks started over HTTP to finish.
func (s *Sim) Wait() { s.wg.Wait() }

// SetNodeOnline marks node on- or offline: /cluster/status reports it,
// requests for /nodes/<node>/… fail with 595 as pveproxy's proxy does,
// its VMs report status unknown, and it cannot be a migration target.
func (s *Sim) SetNodeOnline(node string, online bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.online[node]; !ok {
		return fmt.Errorf("no such cluster node '%s'", node)
	}
	s.online[node] = online
	return nil
}

func (s *Sim) isNode(n string) bool { _, ok := s.online[n]; return ok }

// startTask registers a running task and returns it; s.mu must be held.
func (s *Sim) startTask(node, typ, id, user string) *task {
	s.pid++
	now := s.clk.Now()
	t := &task{running: true, upid: UPID{Node: node, PID: s.pid, PStart: 0x100000 + int64(s.pid)*7,
		StartTime: now.Truncate(time.Second), Type: typ, ID: id, User: user}}
	s.tasks = append(s.tasks, t)
	return t
}

func (s *Sim) endTask(t *task, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t.running, t.end, t.exit = false, s.clk.Now(), "OK"
	if err != nil {
		t.exit = err.Error()
	}
}

// CreateVM creates VM vmid on node and starts it: each disk is allocated
// through Storage on node and activated there, as qm create plus qm start
// would. A failure frees what was allocated. It returns the qmcreate
// task's UPID.
func (s *Sim) CreateVM(ctx context.Context, vmid int, node, name string, disks ...Disk) (string, error) {
	s.mu.Lock()
	if !s.isNode(node) {
		s.mu.Unlock()
		return "", fmt.Errorf("create vm %d: no such cluster node '%s'", vmid, node)
	}
	if _, ok := s.vms[vmid]; ok {
		s.mu.Unlock()
		return "", fmt.Errorf("create vm %d: VM %d already exists", vmid, vmid)
	}
	// Reserve the id while the disks are made, locked as PVE does.
	v := &vm{vmid: vmid, name: name, node: node, lock: "create"}
	s.vms[vmid] = v
	t := s.startTask(node, "qmcreate", strconv.Itoa(vmid), "root@pam")
	s.mu.Unlock()

	err := s.createDisks(ctx, v, disks)
	s.mu.Lock()
	if err != nil {
		delete(s.vms, vmid)
	} else {
		v.lock, v.running, v.started = "", true, s.clk.Now()
	}
	s.mu.Unlock()
	s.endTask(t, err)
	if err != nil {
		return t.upid.String(), fmt.Errorf("create vm %d on %s: %w", vmid, node, err)
	}
	return t.upid.String(), nil
}

func (s *Sim) createDisks(ctx context.Context, v *vm, disks []Disk) error {
	var made []disk
	undo := func() {
		for _, d := range made {
			_ = s.recordErr(s.opts.Storage.Deactivate(ctx, d.volname, v.node), "deactivate %s %s", d.volname, v.node)
			_ = s.recordErr(s.opts.Storage.Free(ctx, d.volname), "free %s", d.volname)
		}
	}
	for _, d := range disks {
		if !diskKey(d.Key) {
			undo()
			return fmt.Errorf("invalid disk key '%s'", d.Key)
		}
		vol, err := s.opts.Storage.Alloc(ctx, v.vmid, d.SizeKiB, v.node)
		if s.recordErr(err, "alloc %d %d %s -> %s", v.vmid, d.SizeKiB, v.node, vol) != nil {
			undo()
			return err
		}
		made = append(made, disk{key: d.Key, volname: vol, sizeKiB: d.SizeKiB})
		if err := s.recordErr(s.opts.Storage.Activate(ctx, vol, v.node), "activate %s %s", vol, v.node); err != nil {
			undo()
			return err
		}
	}
	s.mu.Lock()
	v.disks = made
	s.mu.Unlock()
	return nil
}

func diskKey(k string) bool {
	for _, p := range []string{"scsi", "virtio", "sata", "ide", "efidisk", "tpmstate"} {
		if n, ok := strings.CutPrefix(k, p); ok {
			_, err := strconv.Atoi(n)
			return err == nil
		}
	}
	return false
}

// Migrate live-migrates vmid to target as qm migrate --online does and
// returns the qmigrate task's UPID; the task has ended when it returns.
func (s *Sim) Migrate(ctx context.Context, vmid int, target string) (string, error) {
	t, v, err := s.beginMigrate(vmid, target, true, "root@pam")
	if err != nil {
		return "", err
	}
	err = s.runMigrate(ctx, t, v, target)
	return t.upid.String(), err
}

// beginMigrate does the checks PVE does before it forks the worker (so a
// failure is an API error, not a failed task), then takes the lock and
// starts the qmigrate task on the source node.
func (s *Sim) beginMigrate(vmid int, target string, online bool, user string) (*task, *vm, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.vms[vmid]
	switch {
	case !ok:
		return nil, nil, fmt.Errorf("migrate vm %d: %w", vmid, errNoVM(vmid))
	case !s.isNode(target):
		return nil, nil, fmt.Errorf("migrate vm %d: no such cluster node '%s'", vmid, target)
	case target == v.node:
		return nil, nil, fmt.Errorf("migrate vm %d: target is local node", vmid)
	case !s.online[target]:
		return nil, nil, fmt.Errorf("migrate vm %d: target node '%s' is not online", vmid, target)
	case v.lock != "":
		return nil, nil, fmt.Errorf("migrate vm %d: VM is locked (%s)", vmid, v.lock)
	case v.running && !online:
		return nil, nil, fmt.Errorf("migrate vm %d: can't migrate running VM without --online", vmid)
	}
	v.lock, v.migrateSource = "migrate", v.node
	s.transcript = append(s.transcript, fmt.Sprintf("lock %d migrate", vmid))
	return s.startTask(v.node, "qmigrate", strconv.Itoa(vmid), user), v, nil
}

func (s *Sim) runMigrate(ctx context.Context, t *task, v *vm, target string) (err error) {
	s.mu.Lock()
	source, disks, running := v.node, slices.Clone(v.disks), v.running
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		v.lock, v.migrateSource = "", ""
		s.transcript = append(s.transcript, fmt.Sprintf("unlock %d", v.vmid))
		s.mu.Unlock()
		if err != nil {
			err = fmt.Errorf("migration of vm %d from %s to %s aborted: %w", v.vmid, source, target, err)
		}
		s.endTask(t, err)
	}()

	if !running {
		// Offline migration on shared storage only moves the config:
		// no QEMU starts on the target and nothing is active on the source.
		s.mu.Lock()
		v.node = target
		s.transcript = append(s.transcript, fmt.Sprintf("move %d %s %s", v.vmid, source, target))
		s.mu.Unlock()
		return nil
	}
	var active []string
	for _, d := range disks {
		if err := s.recordErr(s.opts.Storage.Activate(ctx, d.volname, target), "activate %s %s", d.volname, target); err != nil {
			s.deactivateAll(ctx, active, target)
			return err
		}
		active = append(active, d.volname)
	}
	if s.opts.BothActive != nil {
		err := s.opts.BothActive(ctx, v.vmid, source, target, slices.Clone(active))
		if s.recordErr(err, "both-active %d %s %s", v.vmid, source, target) != nil {
			s.deactivateAll(ctx, active, target)
			return err
		}
	}
	s.mu.Lock()
	v.node = target
	s.transcript = append(s.transcript, fmt.Sprintf("move %d %s %s", v.vmid, source, target))
	s.mu.Unlock()
	// The VM now runs on the target; a failed deactivation on the source
	// fails the task (PVE reports "migration problems") but does not
	// move it back.
	var errs []error
	for _, d := range disks {
		errs = append(errs, s.recordErr(s.opts.Storage.Deactivate(ctx, d.volname, source), "deactivate %s %s", d.volname, source))
	}
	return errors.Join(errs...)
}

// deactivateAll undoes a failed migration's activations on the target.
func (s *Sim) deactivateAll(ctx context.Context, vols []string, node string) {
	for _, vol := range vols {
		_ = s.recordErr(s.opts.Storage.Deactivate(ctx, vol, node), "deactivate %s %s", vol, node)
	}
}

// DeleteVM stops vmid (deactivating its disks on its node) and destroys
// it (freeing its disks), as qm stop plus qm destroy would.
func (s *Sim) DeleteVM(ctx context.Context, vmid int) (string, error) {
	s.mu.Lock()
	v, ok := s.vms[vmid]
	if !ok {
		s.mu.Unlock()
		return "", fmt.Errorf("delete vm %d: %w", vmid, errNoVM(vmid))
	}
	if v.lock != "" {
		s.mu.Unlock()
		return "", fmt.Errorf("delete vm %d: VM is locked (%s)", vmid, v.lock)
	}
	v.lock = "destroy"
	node, disks := v.node, slices.Clone(v.disks)
	t := s.startTask(node, "qmdestroy", strconv.Itoa(vmid), "root@pam")
	s.mu.Unlock()

	var errs []error
	for _, d := range disks {
		errs = append(errs, s.recordErr(s.opts.Storage.Deactivate(ctx, d.volname, node), "deactivate %s %s", d.volname, node))
	}
	for _, d := range disks {
		errs = append(errs, s.recordErr(s.opts.Storage.Free(ctx, d.volname), "free %s", d.volname))
	}
	err := errors.Join(errs...)
	s.mu.Lock()
	if err == nil {
		delete(s.vms, vmid)
	} else {
		v.running, v.lock = false, ""
	}
	s.mu.Unlock()
	s.endTask(t, err)
	if err != nil {
		return t.upid.String(), fmt.Errorf("delete vm %d: %w", vmid, err)
	}
	return t.upid.String(), nil
}

// VM is a VM as the lab sees it.
type VM struct {
	VMID     int
	Name     string
	Node     string
	Running  bool
	Lock     string
	Volnames map[string]string // disk key → volname
}

// VM returns vmid's current state.
func (s *Sim) VM(vmid int) (VM, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.vms[vmid]
	if !ok {
		return VM{}, false
	}
	out := VM{VMID: v.vmid, Name: v.name, Node: v.node, Running: v.running, Lock: v.lock, Volnames: map[string]string{}}
	for _, d := range v.disks {
		out.Volnames[d.key] = d.volname
	}
	return out, true
}

func errNoVM(vmid int) error { return fmt.Errorf("VM %d does not exist", vmid) }

// config renders v's config as the API returns it, with the digest PVE
// computes over the config file: a SHA-1 of its text, here of ours.
func (s *Sim) config(v *vm) map[string]any {
	cfg := map[string]any{"name": v.name}
	if v.lock != "" {
		cfg["lock"] = v.lock
	}
	for _, d := range v.disks {
		cfg[d.key] = s.opts.StorageID + ":" + d.volname + ",size=" + formatSize(d.sizeKiB)
	}
	keys := make([]string, 0, len(cfg))
	for k := range cfg {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s: %v\n", k, cfg[k])
	}
	sum := sha1.Sum([]byte(b.String()))
	cfg["digest"] = hex.EncodeToString(sum[:])
	return cfg
}

// formatSize is PVE's size=… notation: the largest unit that divides.
func formatSize(kib int64) string {
	for _, u := range []struct {
		s string
		n int64
	}{{"T", 1 << 30}, {"G", 1 << 20}, {"M", 1 << 10}} {
		if kib%u.n == 0 && kib >= u.n {
			return strconv.FormatInt(kib/u.n, 10) + u.s
		}
	}
	return strconv.FormatInt(kib, 10) + "K"
}
