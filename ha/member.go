package ha

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// FSM is the replicated state machine a Member drives. Apply must be
// deterministic: every member applies the same commands in the same order
// and must end in the same state.
type FSM interface {
	// Apply applies one committed command and returns its result.
	Apply(index uint64, command []byte) any
	// Snapshot returns the whole state as bytes. It runs between Applies and
	// must not keep references to live state.
	Snapshot() ([]byte, error)
	// Restore replaces the whole state with a snapshot, refusing one it
	// cannot read rather than starting empty.
	Restore(snapshot []byte) error
}

// Timing holds raft's timeouts. The defaults aim at a new leader serving
// writes well within 3 s of the old one dying on a LAN.
type Timing struct {
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	CommitTimeout      time.Duration
	SnapshotInterval   time.Duration
	SnapshotThreshold  uint64
	TrailingLogs       uint64
	ApplyTimeout       time.Duration
}

// DefaultTiming is tuned for the management LAN of a PVE cluster, where
// round trips are well under a millisecond: a follower notices a dead leader
// after 500 ms to 1 s without contact and wins an election within a few
// hundred milliseconds more.
func DefaultTiming() Timing {
	return Timing{
		HeartbeatTimeout:   500 * time.Millisecond,
		ElectionTimeout:    500 * time.Millisecond,
		LeaderLeaseTimeout: 250 * time.Millisecond,
		CommitTimeout:      20 * time.Millisecond,
		SnapshotInterval:   2 * time.Minute,
		SnapshotThreshold:  8192,
		TrailingLogs:       10240,
		ApplyTimeout:       10 * time.Second,
	}
}

// Config configures a Member.
type Config struct {
	// NodeID is this node's name; it is also its raft server ID.
	NodeID string
	// DataDir holds raft.db (log and stable store) and snapshots/.
	DataDir string
	// Transport carries raft between members (see NewTLSTransport).
	Transport raft.Transport
	FSM       FSM
	Logger    *slog.Logger
	Timing    Timing
}

// Member is this node's seat in the replicated controller: it owns the raft
// instance, its stores, and the leader-only work that runs while this node
// leads.
type Member struct {
	cfg      Config
	log      *slog.Logger
	raft     *raft.Raft
	store    *raftboltdb.BoltStore
	snaps    *raft.FileSnapshotStore
	notifyCh chan bool

	mu          sync.Mutex
	leaderWork  []leaderWorker
	leaderState LeaderState

	stop     context.CancelFunc
	monitorW sync.WaitGroup
	closed   bool
}

type leaderWorker struct {
	name string
	run  func(ctx context.Context) error
}

// LeaderState tells whether the leader-only work runs on this node.
type LeaderState struct {
	Leading bool      // leader work is running (the barrier has passed)
	Since   time.Time // when it started or stopped
	Terms   int       // how many times this node has started leading
}

const (
	storeFile   = "raft.db"
	snapshotDir = "snapshots" // raft's FileSnapshotStore adds this below its base
	retainSnaps = 3
)

// StorePath is where a Member keeps its raft log and stable store.
func StorePath(dataDir string) string { return filepath.Join(dataDir, storeFile) }

// Open starts this node's raft member over its data directory. It refuses
// to start over a store it cannot read: it never replaces existing data with
// an empty cluster. A node with no state waits, as a non-member, until
// Bootstrap or a join adds it to a cluster.
func Open(cfg Config) (*Member, error) {
	if cfg.NodeID == "" {
		return nil, errors.New("opening raft member: node ID is empty")
	}
	if cfg.FSM == nil || cfg.Transport == nil {
		return nil, errors.New("opening raft member: FSM and transport are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Timing == (Timing{}) {
		cfg.Timing = DefaultTiming()
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating raft data directory: %w", err)
	}
	storePath := StorePath(cfg.DataDir)
	if err := CheckStore(storePath); err != nil {
		return nil, err
	}
	st, err := openStoresLogged(cfg.DataDir, cfg.Logger)
	if err != nil {
		return nil, err
	}
	store, snaps := st.store, st.snaps
	if err := checkSnapshots(snaps, filepath.Join(cfg.DataDir, snapshotDir)); err != nil {
		store.Close()
		return nil, err
	}

	notify := make(chan bool, 16)
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.NodeID)
	rc.Logger = newHCLog(cfg.Logger, "raft")
	rc.NotifyCh = notify
	rc.HeartbeatTimeout = cfg.Timing.HeartbeatTimeout
	rc.ElectionTimeout = cfg.Timing.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.Timing.LeaderLeaseTimeout
	rc.CommitTimeout = cfg.Timing.CommitTimeout
	rc.SnapshotInterval = cfg.Timing.SnapshotInterval
	rc.SnapshotThreshold = cfg.Timing.SnapshotThreshold
	rc.TrailingLogs = cfg.Timing.TrailingLogs
	if err := raft.ValidateConfig(rc); err != nil {
		store.Close()
		return nil, fmt.Errorf("raft timing: %w", err)
	}

	r, err := raft.NewRaft(rc, &fsmAdapter{fsm: cfg.FSM}, st.logs, store, snaps, cfg.Transport)
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("starting raft over %s: %w; if the snapshots there are damaged, restore a backup with `pvehci cluster restore`", cfg.DataDir, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &Member{
		cfg:      cfg,
		log:      cfg.Logger,
		raft:     r,
		store:    store,
		snaps:    snaps,
		notifyCh: notify,
		stop:     cancel,
	}
	m.monitorW.Add(1)
	go func() {
		defer m.monitorW.Done()
		m.monitorLeadership(ctx)
	}()
	return m, nil
}

// stores are raft's log, stable and snapshot stores in one data directory.
type stores struct {
	store *raftboltdb.BoltStore
	logs  raft.LogStore
	snaps *raft.FileSnapshotStore
}

func openStores(dir string) (*stores, error) {
	return openStoresLogged(dir, slog.New(slog.DiscardHandler))
}

func openStoresLogged(dir string, log *slog.Logger) (*stores, error) {
	storePath := StorePath(dir)
	store, err := raftboltdb.New(raftboltdb.Options{
		Path:        storePath,
		BoltOptions: &bbolt.Options{Timeout: 2 * time.Second},
	})
	if err != nil {
		if errors.Is(err, bolterrors.ErrTimeout) {
			return nil, fmt.Errorf("opening raft store %s: another pvehci daemon holds it; stop it first (systemctl stop pvehci)", storePath)
		}
		return nil, fmt.Errorf("opening raft store %s: %w", storePath, err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, retainSnaps, newHCLog(log, "raft"))
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("opening raft snapshot store: %w", err)
	}
	logs, err := raft.NewLogCache(512, store)
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("creating raft log cache: %w", err)
	}
	return &stores{store: store, logs: logs, snaps: snaps}, nil
}

// checkSnapshots verifies every snapshot's checksum before raft sees them.
// raft would skip a damaged newest snapshot and start from an older one,
// whose log may since have been compacted away; a damaged snapshot must
// stop the daemon with its path instead.
func checkSnapshots(snaps *raft.FileSnapshotStore, dir string) error {
	metas, err := snaps.List()
	if err != nil {
		return fmt.Errorf("listing raft snapshots in %s: %w", dir, err)
	}
	for _, meta := range metas {
		_, rc, err := snaps.Open(meta.ID)
		if err == nil {
			_, err = io.Copy(io.Discard, rc)
			rc.Close()
		}
		if err != nil {
			path := filepath.Join(dir, meta.ID)
			return fmt.Errorf("raft snapshot %s is damaged (%v); pvehci will not start from a partial state. "+
				"If other members are healthy, move %s aside and re-join this node with `pvehci cluster join TOKEN`; "+
				"otherwise restore a backup with `pvehci cluster restore`", path, err, filepath.Dir(dir))
		}
	}
	return nil
}

// CheckStore refuses a raft store that is unreadable or is not a raft store
// at all, naming the file and the way out. A missing file is fine: it is a
// node that has never been part of a cluster.
func CheckStore(path string) (err error) {
	fi, statErr := os.Stat(path)
	if errors.Is(statErr, os.ErrNotExist) {
		return nil
	}
	if statErr != nil {
		return fmt.Errorf("checking raft store: %w", statErr)
	}
	recovery := "restore the state with `pvehci cluster restore BACKUP`, or, if the other members are healthy, move " +
		filepath.Dir(path) + " aside and re-join this node with `pvehci cluster join TOKEN`"
	if fi.Size() == 0 {
		return fmt.Errorf("raft store %s is empty (0 bytes) but exists: pvehci will not start an empty cluster over it; %s", path, recovery)
	}
	defer func() {
		// bbolt panics on some kinds of page corruption; that must become a
		// refusal to start, not a crash loop.
		if p := recover(); p != nil {
			err = fmt.Errorf("raft store %s is corrupt (%v); %s", path, p, recovery)
		}
	}()
	db, openErr := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: 2 * time.Second})
	if openErr != nil {
		if errors.Is(openErr, bolterrors.ErrTimeout) {
			return fmt.Errorf("raft store %s is in use by another process; stop the running pvehci daemon first", path)
		}
		return fmt.Errorf("raft store %s is unreadable (%v); %s", path, openErr, recovery)
	}
	defer db.Close()
	return db.View(func(tx *bbolt.Tx) error {
		// raft-boltdb keeps its log in "logs" and its stable store in "conf".
		if tx.Bucket([]byte("logs")) == nil || tx.Bucket([]byte("conf")) == nil {
			return fmt.Errorf("%s is a bbolt database but not a pvehci raft store (no logs/conf buckets); it was not written by pvehci — move it aside; %s", path, recovery)
		}
		for cerr := range tx.Check() {
			return fmt.Errorf("raft store %s fails its consistency check (%v); %s", path, cerr, recovery)
		}
		return nil
	})
}

// HasState reports whether this node already holds cluster state (a log,
// a term or a snapshot), i.e. whether it has ever been a member.
func (m *Member) HasState() (bool, error) {
	return raft.HasExistingState(m.store, m.store, m.snaps)
}

// Server is one member of the raft configuration.
type Server struct {
	ID      string `json:"id"`
	Address string `json:"address"`
	Voter   bool   `json:"voter"`
}

// Bootstrap makes this node the first member of a new cluster with the
// given servers (normally just itself). It refuses when the node already
// holds state, so a repeated `cluster init` cannot fork a cluster.
func (m *Member) Bootstrap(servers []Server) error {
	has, err := m.HasState()
	if err != nil {
		return fmt.Errorf("checking for existing cluster state: %w", err)
	}
	if has {
		return errors.New("this node already holds cluster state; it cannot bootstrap a new cluster over it (use `pvehci cluster status` to see its cluster)")
	}
	conf := raft.Configuration{}
	for _, s := range servers {
		suffrage := raft.Voter
		if !s.Voter {
			suffrage = raft.Nonvoter
		}
		conf.Servers = append(conf.Servers, raft.Server{ID: raft.ServerID(s.ID), Address: raft.ServerAddress(s.Address), Suffrage: suffrage})
	}
	if err := m.raft.BootstrapCluster(conf).Error(); err != nil {
		return fmt.Errorf("bootstrapping the cluster: %w", err)
	}
	return nil
}

// ErrOutcomeUnknown means a change was handed to raft but leadership was
// lost before it was known to be committed: it may or may not have been
// applied. It must not be retried blindly.
var ErrOutcomeUnknown = errors.New("leadership was lost while the change was being committed; it may or may not have been applied: check the state before repeating it")

// NotLeaderError is returned for work only the leader may do. It names the
// leader when one is known, so the caller can forward to it.
type NotLeaderError struct {
	LeaderID      string
	LeaderAddress string
}

func (e *NotLeaderError) Error() string {
	if e.LeaderID == "" {
		return "no leader: this node cannot reach a majority of the controller members (quorum lost); check `pvehci cluster status` on each node"
	}
	return fmt.Sprintf("not the leader; the leader is %s (%s)", e.LeaderID, e.LeaderAddress)
}

// Leader returns the current leader's ID and raft address, empty when none is known.
func (m *Member) Leader() (id, address string) {
	addr, sid := m.raft.LeaderWithID()
	return string(sid), string(addr)
}

// IsLeader reports whether raft considers this node the leader.
func (m *Member) IsLeader() bool { return m.raft.State() == raft.Leader }

func (m *Member) notLeader() error {
	id, addr := m.Leader()
	if id == m.cfg.NodeID {
		id, addr = "", ""
	}
	return &NotLeaderError{LeaderID: id, LeaderAddress: addr}
}

// Apply replicates one command and returns what the FSM's Apply returned.
// Only the leader can apply; others get a *NotLeaderError.
func (m *Member) Apply(ctx context.Context, command []byte) (any, uint64, error) {
	if !m.IsLeader() {
		return nil, 0, m.notLeader()
	}
	timeout := m.cfg.Timing.ApplyTimeout
	if dl, ok := ctx.Deadline(); ok {
		if d := time.Until(dl); d < timeout {
			timeout = d
		}
	}
	f := m.raft.Apply(command, timeout)
	if err := f.Error(); err != nil {
		switch {
		case errors.Is(err, raft.ErrNotLeader):
			// Not appended anywhere: safe to send again to the leader.
			return nil, 0, m.notLeader()
		case errors.Is(err, raft.ErrLeadershipLost), errors.Is(err, raft.ErrEnqueueTimeout):
			// Appended, maybe committed: sending it again could apply it twice.
			return nil, 0, fmt.Errorf("%w: %v", ErrOutcomeUnknown, err)
		}
		return nil, 0, fmt.Errorf("replicating command: %w", err)
	}
	return f.Response(), f.Index(), nil
}

// ConsistentRead makes sure this node is still the leader with a current
// FSM before the caller reads state: a deposed leader must not answer with
// stale data.
func (m *Member) ConsistentRead(ctx context.Context) error {
	if !m.IsLeader() {
		return m.notLeader()
	}
	if err := m.raft.VerifyLeader().Error(); err != nil {
		return m.notLeader()
	}
	return nil
}

// Barrier waits until every command committed before it has been applied.
func (m *Member) Barrier(timeout time.Duration) error {
	if err := m.raft.Barrier(timeout).Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
			return m.notLeader()
		}
		return err
	}
	return nil
}

// AddVoter adds (or promotes) a member that takes part in elections.
func (m *Member) AddVoter(id, address string) error {
	if !m.IsLeader() {
		return m.notLeader()
	}
	return m.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(address), 0, m.cfg.Timing.ApplyTimeout).Error()
}

// AddNonvoter adds a member that replicates the state but never votes.
func (m *Member) AddNonvoter(id, address string) error {
	if !m.IsLeader() {
		return m.notLeader()
	}
	return m.raft.AddNonvoter(raft.ServerID(id), raft.ServerAddress(address), 0, m.cfg.Timing.ApplyTimeout).Error()
}

// RemoveServer removes a member from the configuration.
func (m *Member) RemoveServer(id string) error {
	if !m.IsLeader() {
		return m.notLeader()
	}
	return m.raft.RemoveServer(raft.ServerID(id), 0, m.cfg.Timing.ApplyTimeout).Error()
}

// Servers returns the current raft configuration.
func (m *Member) Servers() ([]Server, error) {
	f := m.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, fmt.Errorf("reading raft configuration: %w", err)
	}
	var out []Server
	for _, s := range f.Configuration().Servers {
		out = append(out, Server{ID: string(s.ID), Address: string(s.Address), Voter: s.Suffrage == raft.Voter})
	}
	return out, nil
}

// Status is what `pvehci cluster status` shows of one member.
type Status struct {
	ID            string        `json:"id"`
	State         string        `json:"state"`
	LeaderID      string        `json:"leader_id"`
	LeaderAddress string        `json:"leader_address"`
	Term          uint64        `json:"term"`
	AppliedIndex  uint64        `json:"applied_index"`
	CommitIndex   uint64        `json:"commit_index"`
	LastContact   time.Duration `json:"last_contact_ns"` // since the last contact with the leader; 0 on the leader
	Servers       []Server      `json:"servers"`
	Leading       LeaderState   `json:"leading"`
}

// Status reports this member's view of the cluster.
func (m *Member) Status() Status {
	id, addr := m.Leader()
	st := Status{
		ID:            m.cfg.NodeID,
		State:         m.raft.State().String(),
		LeaderID:      id,
		LeaderAddress: addr,
		Term:          m.raft.CurrentTerm(),
		AppliedIndex:  m.raft.AppliedIndex(),
		CommitIndex:   m.raft.CommitIndex(),
	}
	if m.raft.State() != raft.Leader {
		if lc := m.raft.LastContact(); !lc.IsZero() {
			st.LastContact = time.Since(lc)
		}
	}
	st.Servers, _ = m.Servers()
	m.mu.Lock()
	st.Leading = m.leaderState
	m.mu.Unlock()
	return st
}

// Snapshot asks raft to take a snapshot now (and compact the log).
func (m *Member) Snapshot() error { return m.raft.Snapshot().Error() }

// RestoreSnapshot replaces the cluster's whole state with the given FSM
// snapshot, replicated to every member. Leader only; used by `cluster restore`.
func (m *Member) RestoreSnapshot(data []byte) error {
	if !m.IsLeader() {
		return m.notLeader()
	}
	servers, err := m.Servers()
	if err != nil {
		return err
	}
	conf := raft.Configuration{}
	for _, s := range servers {
		suffrage := raft.Voter
		if !s.Voter {
			suffrage = raft.Nonvoter
		}
		conf.Servers = append(conf.Servers, raft.Server{ID: raft.ServerID(s.ID), Address: raft.ServerAddress(s.Address), Suffrage: suffrage})
	}
	meta := &raft.SnapshotMeta{Version: raft.SnapshotVersionMax, Configuration: conf, Size: int64(len(data))}
	return m.raft.Restore(meta, bytes.NewReader(data), m.cfg.Timing.ApplyTimeout)
}

// OnLeader registers work that runs only while this node leads. Each
// function runs in its own goroutine with a context cancelled when
// leadership is lost; it is restarted if it returns early while leading.
// Register before the member can become leader.
func (m *Member) OnLeader(name string, run func(ctx context.Context) error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.leaderWork = append(m.leaderWork, leaderWorker{name: name, run: run})
}

// LeaderState reports whether leader work currently runs here.
func (m *Member) LeaderState() LeaderState {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.leaderState
}

// monitorLeadership follows raft's leadership notifications. On gaining
// leadership it first waits for a Barrier, so the FSM has applied everything
// the previous leader committed, and only then starts the leader work; on
// losing it, it cancels the work and waits for it to stop before anything
// else can start (Nomad's monitorLeadership pattern).
func (m *Member) monitorLeadership(ctx context.Context) {
	var (
		cancelWork context.CancelFunc
		workDone   sync.WaitGroup
	)
	stopWork := func() {
		if cancelWork == nil {
			return
		}
		cancelWork()
		workDone.Wait()
		cancelWork = nil
		m.mu.Lock()
		m.leaderState.Leading = false
		m.leaderState.Since = time.Now()
		m.mu.Unlock()
		m.log.Info("leadership lost; leader work stopped")
	}
	for {
		select {
		case <-ctx.Done():
			stopWork()
			return
		case isLeader := <-m.notifyCh:
			if !isLeader {
				stopWork()
				continue
			}
			if cancelWork != nil {
				continue
			}
			workCtx, cancel := context.WithCancel(ctx)
			cancelWork = cancel
			workDone.Add(1)
			go func() {
				defer workDone.Done()
				m.leaderLoop(workCtx)
			}()
		}
	}
}

func (m *Member) leaderLoop(ctx context.Context) {
	// The barrier can fail if leadership flaps; retry until it passes or the
	// leadership is gone (then ctx is cancelled).
	for {
		err := m.raft.Barrier(m.cfg.Timing.ApplyTimeout).Error()
		if err == nil {
			break
		}
		m.log.Warn("leader barrier failed; retrying", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
	m.mu.Lock()
	work := append([]leaderWorker(nil), m.leaderWork...)
	m.leaderState.Leading = true
	m.leaderState.Since = time.Now()
	m.leaderState.Terms++
	m.mu.Unlock()
	m.log.Info("leading: state is current, starting leader work", "workers", len(work))

	var wg sync.WaitGroup
	for _, w := range work {
		wg.Add(1)
		go func(w leaderWorker) {
			defer wg.Done()
			for {
				err := w.run(ctx)
				if ctx.Err() != nil {
					return
				}
				m.log.Warn("leader work returned while leading; restarting", "worker", w.name, "err", err)
				select {
				case <-ctx.Done():
					return
				case <-time.After(time.Second):
				}
			}
		}(w)
	}
	wg.Wait()
}

// Shutdown stops the member. A leader first hands leadership to another
// voter, so a planned restart costs no election timeout.
func (m *Member) Shutdown(ctx context.Context) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	m.mu.Unlock()

	if m.IsLeader() {
		if servers, err := m.Servers(); err == nil && countVoters(servers) > 1 {
			f := m.raft.LeadershipTransfer()
			done := make(chan error, 1)
			go func() { done <- f.Error() }()
			select {
			case err := <-done:
				if err != nil {
					m.log.Warn("leadership transfer before shutdown failed", "err", err)
				} else {
					m.log.Info("leadership transferred before shutdown")
				}
			case <-ctx.Done():
				m.log.Warn("leadership transfer before shutdown timed out")
			}
		}
	}
	m.stop()
	m.monitorW.Wait()
	err := m.raft.Shutdown().Error()
	if cerr := m.store.Close(); err == nil {
		err = cerr
	}
	if c, ok := m.cfg.Transport.(io.Closer); ok {
		c.Close()
	}
	return err
}

func countVoters(servers []Server) int {
	n := 0
	for _, s := range servers {
		if s.Voter {
			n++
		}
	}
	return n
}

// fsmAdapter turns the byte-oriented FSM into raft's interface.
type fsmAdapter struct{ fsm FSM }

func (a *fsmAdapter) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return nil
	}
	return a.fsm.Apply(l.Index, l.Data)
}

func (a *fsmAdapter) Snapshot() (raft.FSMSnapshot, error) {
	data, err := a.fsm.Snapshot()
	if err != nil {
		return nil, fmt.Errorf("snapshotting state: %w", err)
	}
	return fsmSnapshot(data), nil
}

func (a *fsmAdapter) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return fmt.Errorf("reading state snapshot: %w", err)
	}
	return a.fsm.Restore(data)
}

type fsmSnapshot []byte

func (s fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(s); err != nil {
		sink.Cancel()
		return fmt.Errorf("writing state snapshot: %w", err)
	}
	return sink.Close()
}

func (s fsmSnapshot) Release() {}
