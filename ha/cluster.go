package ha

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/pvehci/pvehci/ha/pki"
	"github.com/pvehci/pvehci/ha/state"
	"github.com/pvehci/pvehci/internal/clock"
	"github.com/pvehci/pvehci/internal/notify"
)

// ClusterConfig configures this node's part in the controller cluster.
type ClusterConfig struct {
	// NodeName is this node's name (its hostname on Proxmox VE).
	NodeName string
	// DataDir holds pki/ (certificates and keys) and raft/ (log, snapshots).
	DataDir string
	// PeerListen is where the peer port listens, e.g. ":3372".
	PeerListen string
	// Advertise is the peer address other nodes dial, e.g. "10.0.0.1:3372".
	Advertise string
	// Controller marks a node that may become a voter (and so the leader).
	Controller bool
	Logger     *slog.Logger
	Timing     Timing
	Clock      clock.Clock
	// LeaderWork runs while this node leads (the active controller's
	// loops), each function with a context cancelled when leadership is
	// lost; see Member.OnLeader.
	LeaderWork map[string]func(ctx context.Context) error
}

// Cluster is this node's seat in the pvehci cluster: its certificates, its
// raft member over the replicated state, the peer port, and the internal API
// that forwards writes to the leader. A node that has not joined a cluster
// yet runs a Cluster too, waiting for `cluster init` or `cluster join`.
type Cluster struct {
	cfg   ClusterConfig
	log   *slog.Logger
	clock clock.Clock
	state *state.State

	mu      sync.Mutex
	member  *Member
	mux     *Mux
	servers []*http.Server
	node    *pki.NodeCert
	ca      *pki.CA // only on controller-capable nodes
	rpc     *http.Client
	rest    restHandler
	reports reportHandler
	changes notify.Broadcast
}

func (c *Cluster) pkiDir() string  { return filepath.Join(c.cfg.DataDir, "pki") }
func (c *Cluster) raftDir() string { return filepath.Join(c.cfg.DataDir, "raft") }

// OpenCluster starts this node's cluster membership from what its data
// directory holds: a member resumes; a node without certificates waits to
// be initialised or joined.
func OpenCluster(cfg ClusterConfig) (*Cluster, error) {
	if err := pki.ValidateNodeName(cfg.NodeName); err != nil {
		return nil, fmt.Errorf("node name: %w", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Timing == (Timing{}) {
		cfg.Timing = DefaultTiming()
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating data directory: %w", err)
	}
	c := &Cluster{cfg: cfg, log: cfg.Logger, clock: cfg.Clock, state: state.New()}
	if _, err := os.Stat(filepath.Join(c.pkiDir(), pki.NodeCertFile)); errors.Is(err, os.ErrNotExist) {
		if err := CheckStore(StorePath(c.raftDir())); err != nil {
			return nil, err
		}
		if _, err := os.Stat(StorePath(c.raftDir())); err == nil {
			return nil, fmt.Errorf("%s holds cluster state but %s has no node certificate; restore the certificates or move %s aside and re-join with `pvehci cluster join TOKEN`",
				c.raftDir(), c.pkiDir(), c.cfg.DataDir)
		}
		c.log.Info("not a cluster member yet; waiting for `pvehci cluster init` or `pvehci cluster join`")
		return c, nil
	}
	node, err := pki.LoadNodeCert(c.pkiDir())
	if err != nil {
		return nil, fmt.Errorf("loading this node's certificate: %w", err)
	}
	if !pki.SameNodeName(node.Name(), cfg.NodeName) {
		return nil, fmt.Errorf("the certificate in %s is for node %s, but this node is %s; a renamed node must leave and re-join the cluster", c.pkiDir(), node.Name(), cfg.NodeName)
	}
	var ca *pki.CA
	if _, err := os.Stat(filepath.Join(c.pkiDir(), pki.CAKeyFile)); err == nil {
		if ca, err = pki.LoadCA(c.pkiDir()); err != nil {
			return nil, fmt.Errorf("loading the cluster CA: %w", err)
		}
	}
	if err := c.start(node, ca); err != nil {
		return nil, err
	}
	return c, nil
}

// start brings up the peer port, the internal API and the raft member.
func (c *Cluster) start(node *pki.NodeCert, ca *pki.CA) error {
	ln, err := net.Listen("tcp", c.cfg.PeerListen)
	if err != nil {
		return fmt.Errorf("listening on the peer port %s: %w (is another pvehci running, or the port taken?)", c.cfg.PeerListen, err)
	}
	mux, err := NewMux(ln, MuxConfig{
		ServerTLS: node.ServerTLSConfig(c.peerCheck),
		ClientTLS: node.ClientTLSConfig(pki.AnyMember),
		JoinTLS:   node.JoinServerTLSConfig(),
		Advertise: c.cfg.Advertise,
		Logger:    c.log,
	})
	if err != nil {
		ln.Close()
		return err
	}
	member, err := Open(Config{
		NodeID:    c.cfg.NodeName,
		DataDir:   c.raftDir(),
		Transport: mux.RaftTransport(c.log),
		FSM:       &stateFSM{s: c.state, log: c.log, changed: c.changes.Notify},
		Logger:    c.log,
		Timing:    c.cfg.Timing,
	})
	if err != nil {
		mux.Close()
		return err
	}
	rpcSrv := &http.Server{Handler: c.rpcHandler(), ReadHeaderTimeout: 10 * time.Second}
	joinSrv := &http.Server{Handler: c.joinHandler(), ReadHeaderTimeout: 10 * time.Second}
	go rpcSrv.Serve(mux.RPCListener())
	go joinSrv.Serve(mux.JoinListener())
	member.OnLeader("membership", c.reconcileMembership)
	for _, name := range slices.Sorted(maps.Keys(c.cfg.LeaderWork)) {
		member.OnLeader(name, c.cfg.LeaderWork[name])
	}

	c.mu.Lock()
	c.node, c.ca, c.mux, c.member = node, ca, mux, member
	c.servers = []*http.Server{rpcSrv, joinSrv}
	c.rpc = mux.RPCClient(30 * time.Second)
	c.mu.Unlock()
	c.log.Info("cluster member started", "node", c.cfg.NodeName, "peer", c.cfg.Advertise, "controller", ca != nil)
	return nil
}

// peerCheck refuses connections from nodes that were removed from the
// cluster. Before the state knows any member (while joining), every
// certificate of the cluster CA is accepted.
func (c *Cluster) peerCheck(name string, _ *x509.Certificate) error {
	members := c.state.Members()
	if len(members) == 0 {
		return nil
	}
	for _, m := range members {
		if pki.SameNodeName(m.Name, name) {
			return nil
		}
	}
	return fmt.Errorf("%s is not a member of the cluster (removed?)", name)
}

// State is the replicated state as this node has applied it. On a follower
// it may lag the leader by a few milliseconds.
func (c *Cluster) State() *state.State { return c.state }

// Member is the raft member, nil while the node is not in a cluster.
func (c *Cluster) Member() *Member {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.member
}

// ErrNotMember is returned for cluster work on a node that has not joined.
var ErrNotMember = errors.New("this node is not a member of a cluster yet; run `pvehci cluster init NAME` on the first node, or `pvehci cluster join TOKEN` with a token from a member")

func (c *Cluster) requireMember() (*Member, error) {
	m := c.Member()
	if m == nil {
		return nil, ErrNotMember
	}
	return m, nil
}

// QuorumLostError says that writes are refused because too few controller
// members answer.
type QuorumLostError struct {
	Voters    int
	Answering []string
}

func (e *QuorumLostError) Error() string {
	need := e.Voters/2 + 1
	if len(e.Answering) >= need {
		return fmt.Sprintf("no leader elected yet although %d of %d controller members answer (%v); an election is under way or the members cannot reach each other on the peer port; retry, and check `pvehci cluster status` on each",
			len(e.Answering), e.Voters, e.Answering)
	}
	return fmt.Sprintf("quorum lost: %d of %d controller members answer (%v); writes need %d of them. Bring members back or, if a majority is gone for good, see `pvehci cluster recover --help`",
		len(e.Answering), e.Voters, e.Answering, need)
}

// Apply replicates one command through the leader, wherever it runs, and
// returns the state machine's result.
func (c *Cluster) Apply(ctx context.Context, cmd state.Command) (state.Result, error) {
	entry, err := state.Encode(cmd)
	if err != nil {
		return state.Result{}, err
	}
	return c.applyEncoded(ctx, entry, false)
}

func (c *Cluster) applyEncoded(ctx context.Context, entry []byte, forwarded bool) (state.Result, error) {
	m, err := c.requireMember()
	if err != nil {
		return state.Result{}, err
	}
	deadline := time.Now().Add(leaderWait)
	for {
		resp, _, err := m.Apply(ctx, entry)
		if err == nil {
			res, ok := resp.(state.Result)
			if !ok {
				return state.Result{}, fmt.Errorf("state machine returned %T", resp)
			}
			return res, nil
		}
		if errors.Is(err, ErrOutcomeUnknown) {
			// Usually leadership was lost because quorum was: say so, so the
			// operator knows why, not only that the outcome is unknown.
			var ql *QuorumLostError
			if qerr := c.quorumLost(ctx); errors.As(qerr, &ql) && len(ql.Answering) < ql.Voters/2+1 {
				return state.Result{}, fmt.Errorf("%w; %w", err, qerr)
			}
			return state.Result{}, err
		}
		var nle *NotLeaderError
		if !errors.As(err, &nle) {
			return state.Result{}, err
		}
		if forwarded {
			// One hop only: the forwarding node waits for the election and
			// sends the change again.
			return state.Result{}, errForwardNotLeader
		}
		leaderID, leaderAddr, err := c.awaitLeader(ctx, deadline)
		if err != nil {
			return state.Result{}, err
		}
		if leaderID == c.cfg.NodeName {
			continue // this node won the election meanwhile
		}
		var wr wireResult
		err = c.call(ctx, leaderAddr, http.MethodPost, "/internal/v1/apply", entry, &wr)
		if err == nil {
			return wr.result(), nil
		}
		if errors.Is(err, errForwardNotLeader) && time.Now().Before(deadline) {
			continue // it stepped down before appending; nothing was applied
		}
		if notSent(err) && time.Now().Before(deadline) {
			// This node still names a leader that has gone away (it has not
			// heard from the new one yet). Nothing reached it, so sending the
			// change again once the new leader is known cannot apply it twice.
			select {
			case <-ctx.Done():
				return state.Result{}, ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		ferr := fmt.Errorf("forwarding to leader %s: %w", leaderID, err)
		// A leader that went away mid-request is, as often as not, the
		// quorum going: say so, as for an unknown outcome above.
		var ql *QuorumLostError
		if qerr := c.quorumLost(ctx); errors.As(qerr, &ql) && len(ql.Answering) < ql.Voters/2+1 {
			return state.Result{}, fmt.Errorf("%w; %w", ferr, qerr)
		}
		return state.Result{}, ferr
	}
}

// notSent reports whether a forwarded request failed before any byte of it
// could reach the leader: the connection was never made.
func notSent(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// errForwardNotLeader tells a forwarding node that the change was not
// appended, so it may send it again once a leader is known.
var errForwardNotLeader = errors.New("not the leader: the change was not appended")

// leaderWait is how long a request waits for an election to finish before
// it is refused: the failover target.
const leaderWait = 3 * time.Second

// awaitLeader returns the current leader, waiting until deadline for one
// to be elected. When none appears it explains why.
func (c *Cluster) awaitLeader(ctx context.Context, deadline time.Time) (id, addr string, err error) {
	m := c.Member()
	for {
		if id, addr := m.Leader(); id != "" {
			return id, addr, nil
		}
		if time.Now().After(deadline) {
			return "", "", c.quorumLost(ctx)
		}
		select {
		case <-ctx.Done():
			return "", "", c.quorumLost(context.Background())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// quorumLost asks the other voters whether they answer, so the error can
// say how many are up.
func (c *Cluster) quorumLost(ctx context.Context) error {
	m := c.Member()
	servers, _ := m.Servers()
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var (
		mu        sync.Mutex
		answering []string
		wg        sync.WaitGroup
		voters    int
	)
	for _, s := range servers {
		if !s.Voter {
			continue
		}
		voters++
		if s.ID == c.cfg.NodeName {
			answering = append(answering, s.ID)
			continue
		}
		wg.Add(1)
		go func(s Server) {
			defer wg.Done()
			var st Status
			if c.call(ctx, s.Address, http.MethodGet, "/internal/v1/status", nil, &st) == nil {
				mu.Lock()
				answering = append(answering, s.ID)
				mu.Unlock()
			}
		}(s)
	}
	wg.Wait()
	slices.Sort(answering)
	return &QuorumLostError{Voters: voters, Answering: answering}
}

// call does one internal-API request to another member.
func (c *Cluster) call(ctx context.Context, addr, method, path string, body []byte, out any) error {
	c.mu.Lock()
	client := c.rpc
	c.mu.Unlock()
	if client == nil {
		return ErrNotMember
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, "https://"+addr+path, rd)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxRPCBody))
	if err != nil {
		return err
	}
	if resp.StatusCode == http.StatusMisdirectedRequest {
		return errForwardNotLeader
	}
	if resp.StatusCode != http.StatusOK {
		var e rpcError
		if json.Unmarshal(data, &e) == nil && e.Message != "" {
			return errors.New(e.Message)
		}
		return fmt.Errorf("%s answered %s", addr, resp.Status)
	}
	switch o := out.(type) {
	case nil:
		return nil
	case *[]byte:
		*o = data
		return nil
	default:
		return json.Unmarshal(data, out)
	}
}

// ClusterStatus is what `pvehci cluster status` shows.
type ClusterStatus struct {
	Node        string         `json:"node"`
	Member      bool           `json:"member"`
	ClusterName string         `json:"cluster_name,omitempty"`
	Raft        *Status        `json:"raft,omitempty"`
	Members     []MemberStatus `json:"members,omitempty"`
	CertExpiry  time.Time      `json:"cert_expiry,omitzero"`
	CAExpiry    time.Time      `json:"ca_expiry,omitzero"`
	CAKey       bool           `json:"ca_key"` // this node can sign joins
}

// MemberStatus is one member as the cluster records it.
type MemberStatus struct {
	Name        string `json:"name"`
	PeerAddress string `json:"peer_address"`
	Controller  bool   `json:"controller"`
	Voter       bool   `json:"voter"`
	InRaft      bool   `json:"in_raft"`
	Leader      bool   `json:"leader"`
}

// Status reports this node's view of the cluster.
func (c *Cluster) Status() ClusterStatus {
	st := ClusterStatus{Node: c.cfg.NodeName}
	m := c.Member()
	if m == nil {
		return st
	}
	st.Member = true
	rs := m.Status()
	st.Raft = &rs
	if info, ok := c.state.Cluster(); ok {
		st.ClusterName = info.Name
	}
	c.mu.Lock()
	st.CertExpiry, st.CAExpiry, st.CAKey = c.node.NotAfter(), c.node.CANotAfter(), c.ca != nil
	c.mu.Unlock()
	inRaft := map[string]Server{}
	for _, s := range rs.Servers {
		inRaft[s.ID] = s
	}
	for _, mem := range c.state.Members() {
		s, ok := inRaft[mem.Name]
		st.Members = append(st.Members, MemberStatus{
			Name: mem.Name, PeerAddress: mem.PeerAddress, Controller: mem.Controller,
			Voter: ok && s.Voter, InRaft: ok, Leader: mem.Name == rs.LeaderID,
		})
	}
	return st
}

// Close leaves the cluster running without this node: it hands leadership
// over if it leads, and stops the peer port.
func (c *Cluster) Close(ctx context.Context) error {
	c.mu.Lock()
	member, mux, servers := c.member, c.mux, c.servers
	c.member, c.mux, c.servers = nil, nil, nil
	c.mu.Unlock()
	var err error
	if member != nil {
		err = member.Shutdown(ctx)
	}
	for _, s := range servers {
		s.Close()
	}
	if mux != nil {
		mux.Close()
	}
	return err
}

// stateFSM adapts the state machine to raft.
type stateFSM struct {
	s   *state.State
	log *slog.Logger
	// changed is called after every applied entry and restore; nil for
	// throwaway state machines.
	changed func()
}

func (f *stateFSM) notify() {
	if f.changed != nil {
		f.changed()
	}
}

func (f *stateFSM) Apply(index uint64, entry []byte) any {
	res := f.s.ApplyEncoded(entry)
	defer f.notify()
	if errors.Is(res.Err, state.Unsupported) {
		// Skipping an entry this binary cannot apply would let this replica
		// silently diverge from the others. Stopping is the only safe move;
		// systemd restarts the daemon, which stops here again until the
		// binary is upgraded.
		f.log.Error("stopping: the replicated log holds a command this pvehci cannot apply; upgrade pvehci on this node", "index", index, "err", res.Err)
		panic(fmt.Sprintf("pvehci: raft log entry %d: %v", index, res.Err))
	}
	return res
}

func (f *stateFSM) Snapshot() ([]byte, error) { return f.s.Snapshot() }
func (f *stateFSM) Restore(b []byte) error {
	defer f.notify()
	return f.s.Restore(b)
}

// wireResult carries a state.Result between nodes.
type wireResult struct {
	Err       *state.Error       `json:"error,omitempty"`
	Allocated []state.Allocation `json:"allocated,omitempty"`
	Warnings  []state.Warning    `json:"warnings,omitempty"`
}

func toWire(r state.Result) wireResult {
	w := wireResult{Allocated: r.Allocated, Warnings: r.Warnings}
	if r.Err != nil {
		var se *state.Error
		if errors.As(r.Err, &se) {
			w.Err = se
		} else {
			w.Err = &state.Error{Kind: state.Invalid, Message: r.Err.Error()}
		}
	}
	return w
}

func (w wireResult) result() state.Result {
	r := state.Result{Allocated: w.Allocated, Warnings: w.Warnings}
	if w.Err != nil {
		r.Err = w.Err
	}
	return r
}
