package state

import (
	"time"

	linstor "github.com/LINBIT/golinstor"

	"github.com/pvehci/pvehci/ha/pki"
	"github.com/pvehci/pvehci/storage/model"
)

// ClusterInfo is the identity of the cluster: its name and the CA every
// member certificate chains to. The CA key is not here: it never enters the
// replicated log.
type ClusterInfo struct {
	Name          string `json:"name"`
	CAFingerprint string `json:"ca_fingerprint"`
	CACertPEM     string `json:"ca_cert_pem"`
	CreatedAt     int64  `json:"created_at"` // ms since the epoch
}

// Member is a node of the controller cluster, as pvehci records it beside
// raft's own configuration: where to reach it and whether it may vote.
type Member struct {
	Name        string `json:"name"`
	PeerAddress string `json:"peer_address"` // host:port of its mutual-TLS peer port
	Controller  bool   `json:"controller"`   // controller-capable: may become a voter
	JoinedAt    int64  `json:"joined_at"`    // ms since the epoch
}

// tokenRetention is how long expired or used join-token records are kept,
// so that a late retry is told "used" or "expired" rather than "unknown".
const tokenRetention = 24 * time.Hour

const objCluster model.ObjectKind = "cluster"

// InitCluster records the cluster's identity and its first member. It is
// the first command of every cluster and can run only once.
type InitCluster struct {
	Info   ClusterInfo `json:"info"`
	Member Member      `json:"member"`
}

// Type implements Command.
func (*InitCluster) Type() string { return "InitCluster" }

func (c *InitCluster) prepare(s *State) (func(), Result, *Error) {
	if s.cluster != nil {
		return nil, Result{}, newErr(Exists, objCluster, s.cluster.Name, linstor.FailExistsNode,
			"this state already belongs to a cluster; use `pvehci cluster status`", "cluster %s is already initialised", s.cluster.Name)
	}
	if err := pki.ValidateClusterName(c.Info.Name); err != nil {
		return nil, Result{}, errInvalid(objCluster, c.Info.Name, linstor.FailInvldRequest, err)
	}
	if c.Info.CAFingerprint == "" || c.Info.CACertPEM == "" {
		return nil, Result{}, newErr(Invalid, objCluster, c.Info.Name, linstor.FailInvldRequest,
			"this is a bug in the caller", "the cluster CA certificate and fingerprint are required")
	}
	if err := validMember(c.Member); err != nil {
		return nil, Result{}, err
	}
	info, m := c.Info, c.Member
	return func() {
		s.cluster = &info
		s.members[model.Key(m.Name)] = &m
	}, Result{}, nil
}

func validMember(m Member) *Error {
	if err := pki.ValidateNodeName(m.Name); err != nil {
		return errInvalid(objCluster, m.Name, linstor.FailInvldNodeName, err)
	}
	if m.PeerAddress == "" {
		return newErr(Invalid, objCluster, m.Name, linstor.FailInvldRequest,
			"give the address other nodes reach its peer port at", "member %s has no peer address", m.Name)
	}
	return nil
}

// IssueJoinToken stores the record of a join token (its secret only as a
// hash). Records older than a day past their expiry are dropped here, so
// the state does not grow with every token ever issued.
type IssueJoinToken struct {
	Record pki.TokenRecord `json:"record"`
	At     int64           `json:"at"` // ms since the epoch
}

// Type implements Command.
func (*IssueJoinToken) Type() string { return "IssueJoinToken" }

func (c *IssueJoinToken) prepare(s *State) (func(), Result, *Error) {
	if s.cluster == nil {
		return nil, Result{}, errNoCluster()
	}
	rec := c.Record
	if rec.ID == "" || rec.SecretHash == "" {
		return nil, Result{}, newErr(Invalid, objCluster, rec.NodeName, linstor.FailInvldRequest,
			"this is a bug in the caller", "a join token record needs an ID and a secret hash")
	}
	if m, ok := s.members[model.Key(rec.NodeName)]; ok {
		return nil, Result{}, newErr(Exists, objCluster, rec.NodeName, linstor.FailExistsNode,
			"remove it first with `pvehci cluster remove "+m.Name+"` if it is to join again", "%s is already a member of the cluster", m.Name)
	}
	if _, dup := s.tokens[rec.ID]; dup {
		return nil, Result{}, newErr(Exists, objCluster, rec.NodeName, linstor.FailExistsNode, "issue a new token", "token %s exists already", rec.ID)
	}
	now := time.UnixMilli(c.At)
	return func() {
		for id, old := range s.tokens {
			if now.Sub(old.Expires) > tokenRetention || (old.Used && now.Sub(old.UsedAt) > tokenRetention) {
				delete(s.tokens, id)
			}
		}
		r := rec
		s.tokens[rec.ID] = &r
	}, Result{}, nil
}

// ConsumeJoinToken marks a join token used and records the new member, in
// one step. It is the compare-and-set that makes a token single-use: of two
// joins racing with the same token, the log orders them and the second is
// refused.
type ConsumeJoinToken struct {
	ID     string `json:"id"`
	Member Member `json:"member"`
	At     int64  `json:"at"` // ms since the epoch
}

// Type implements Command.
func (*ConsumeJoinToken) Type() string { return "ConsumeJoinToken" }

func (c *ConsumeJoinToken) prepare(s *State) (func(), Result, *Error) {
	if s.cluster == nil {
		return nil, Result{}, errNoCluster()
	}
	rec, ok := s.tokens[c.ID]
	if !ok {
		return nil, Result{}, newErr(NotFound, objCluster, c.Member.Name, linstor.FailNotFoundNode,
			"create a new one with `pvehci cluster token "+c.Member.Name+"`", "join token %s is unknown to the cluster", c.ID)
	}
	now := time.UnixMilli(c.At)
	switch {
	case rec.Used:
		return nil, Result{}, newErr(InUse, objCluster, c.Member.Name, linstor.FailInUse,
			"create a new one with `pvehci cluster token "+rec.NodeName+"`", "join token %s was already used at %s", c.ID, rec.UsedAt.UTC().Format(time.RFC3339))
	case !pki.SameNodeName(rec.NodeName, c.Member.Name):
		return nil, Result{}, newErr(Invalid, objCluster, c.Member.Name, linstor.FailInvldNodeName,
			"create a token for "+c.Member.Name+" with `pvehci cluster token "+c.Member.Name+"`", "join token %s is bound to node %s, not %s", c.ID, rec.NodeName, c.Member.Name)
	case rec.Expired(now):
		return nil, Result{}, newErr(Invalid, objCluster, c.Member.Name, linstor.FailInvldTimeParam,
			"create a new one with `pvehci cluster token "+rec.NodeName+"`", "join token %s expired at %s", c.ID, rec.Expires.UTC().Format(time.RFC3339))
	}
	if _, exists := s.members[model.Key(c.Member.Name)]; exists {
		return nil, Result{}, newErr(Exists, objCluster, c.Member.Name, linstor.FailExistsNode,
			"remove it first with `pvehci cluster remove "+c.Member.Name+"`", "%s is already a member", c.Member.Name)
	}
	if err := validMember(c.Member); err != nil {
		return nil, Result{}, err
	}
	m := c.Member
	return func() {
		used := *rec
		used.MarkUsed(now)
		s.tokens[c.ID] = &used
		s.members[model.Key(m.Name)] = &m
	}, Result{}, nil
}

// RemoveMember forgets a member. Raft's configuration is changed by the
// caller; this removes pvehci's record of it.
type RemoveMember struct {
	Name string `json:"name"`
}

// Type implements Command.
func (*RemoveMember) Type() string { return "RemoveMember" }

func (c *RemoveMember) prepare(s *State) (func(), Result, *Error) {
	k := model.Key(c.Name)
	if _, ok := s.members[k]; !ok {
		return nil, Result{}, newErr(NotFound, objCluster, c.Name, linstor.FailNotFoundNode,
			"see the members with `pvehci cluster status`", "%s is not a member of the cluster", c.Name)
	}
	if len(s.members) == 1 {
		return nil, Result{}, newErr(InUse, objCluster, c.Name, linstor.FailInUse,
			"a cluster cannot remove its last member", "%s is the only member", c.Name)
	}
	return func() { delete(s.members, k) }, Result{}, nil
}

func errNoCluster() *Error {
	return newErr(Invalid, objCluster, "", linstor.FailInvldRequest,
		"run `pvehci cluster init NAME` on the first node", "this state belongs to no cluster yet")
}

// Cluster returns the cluster's identity, ok=false before InitCluster.
func (s *State) Cluster() (ClusterInfo, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.cluster == nil {
		return ClusterInfo{}, false
	}
	return *s.cluster, true
}

// Members returns the cluster's members sorted by name.
func (s *State) Members() []Member {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Member, 0, len(s.members))
	for _, k := range sortedKeys(s.members) {
		out = append(out, *s.members[k])
	}
	return out
}

// Member returns one member's record.
func (s *State) Member(name string) (Member, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	m, ok := s.members[model.Key(name)]
	if !ok {
		return Member{}, false
	}
	return *m, true
}

// JoinToken returns a join token's record by ID.
func (s *State) JoinToken(id string) (pki.TokenRecord, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r, ok := s.tokens[id]
	if !ok {
		return pki.TokenRecord{}, false
	}
	return *r, true
}

// WithMembershipOf gives s (a state restored from a backup) the cluster
// identity, members and join tokens of cur, and returns the result as a
// snapshot. A restore replaces the storage objects, not who is in the
// cluster: a backup from last month must not evict a node that joined since.
// s is changed; it is meant to be a scratch state.
func (s *State) WithMembershipOf(cur *State) ([]byte, error) {
	cur.mu.RLock()
	var info *ClusterInfo
	if cur.cluster != nil {
		c := *cur.cluster
		info = &c
	}
	members := make(map[string]*Member, len(cur.members))
	for k, m := range cur.members {
		c := *m
		members[k] = &c
	}
	tokens := make(map[string]*pki.TokenRecord, len(cur.tokens))
	for k, t := range cur.tokens {
		c := *t
		tokens[k] = &c
	}
	cur.mu.RUnlock()

	s.mu.Lock()
	s.cluster, s.members, s.tokens = info, members, tokens
	s.mu.Unlock()
	return s.Snapshot()
}
