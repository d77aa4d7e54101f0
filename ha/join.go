package ha

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/pvehci/pvehci/ha/pki"
	"github.com/pvehci/pvehci/ha/state"
)

// errJoinRefused marks a join that was refused for a reason other than the
// token (e.g. the name is already a member).
var errJoinRefused = errors.New("join refused")

// advertiseIPs are the IP addresses to put into this node's certificate.
func (c *Cluster) advertiseIPs() ([]net.IP, error) {
	host, _, err := net.SplitHostPort(c.cfg.Advertise)
	if err != nil {
		return nil, fmt.Errorf("advertise address %q: %w", c.cfg.Advertise, err)
	}
	ip := net.ParseIP(host)
	if ip == nil || ip.IsUnspecified() {
		return nil, fmt.Errorf("advertise address %q must be an IP address other nodes can dial", c.cfg.Advertise)
	}
	return []net.IP{ip}, nil
}

// Init creates a new cluster with this node as its only member: the
// cluster CA, this node's certificate, and a raft configuration of one
// voter. If any step fails, what Init created is removed again.
func (c *Cluster) Init(ctx context.Context, clusterName string) (err error) {
	if c.Member() != nil {
		return errors.New("this node is already a cluster member; see `pvehci cluster status`")
	}
	if err := pki.ValidateClusterName(clusterName); err != nil {
		return err
	}
	ips, err := c.advertiseIPs()
	if err != nil {
		return err
	}
	now := c.clock.Now()
	ca, err := pki.NewCA(clusterName, now)
	if err != nil {
		return fmt.Errorf("creating the cluster CA: %w", err)
	}
	node, err := ca.IssueNode(c.cfg.NodeName, ips, nil, now, pki.DefaultNodeValidity)
	if err != nil {
		return fmt.Errorf("issuing this node's certificate: %w", err)
	}
	defer func() {
		if err != nil {
			c.Close(context.Background())
			os.RemoveAll(c.pkiDir())
			os.RemoveAll(c.raftDir())
		}
	}()
	if err := ca.Save(c.pkiDir()); err != nil {
		return fmt.Errorf("saving the cluster CA: %w", err)
	}
	if err := node.Save(c.pkiDir()); err != nil {
		return fmt.Errorf("saving this node's certificate: %w", err)
	}
	if err := c.start(node, ca); err != nil {
		return err
	}
	m := c.Member()
	if err := m.Bootstrap([]Server{{ID: c.cfg.NodeName, Address: c.cfg.Advertise, Voter: true}}); err != nil {
		return err
	}
	if err := c.waitLeader(ctx, 30*time.Second); err != nil {
		return err
	}
	res, err := c.Apply(ctx, &state.InitCluster{
		Info:   state.ClusterInfo{Name: clusterName, CAFingerprint: ca.Fingerprint(), CACertPEM: string(ca.CertPEM()), CreatedAt: now.UnixMilli()},
		Member: state.Member{Name: c.cfg.NodeName, PeerAddress: c.cfg.Advertise, Controller: true, JoinedAt: now.UnixMilli()},
	})
	if err == nil {
		err = res.Err
	}
	if err != nil {
		return fmt.Errorf("recording the new cluster: %w", err)
	}
	c.log.Info("cluster created", "cluster", clusterName, "ca", ca.Fingerprint())
	return nil
}

func (c *Cluster) waitLeader(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if m := c.Member(); m != nil {
			if id, _ := m.Leader(); id != "" {
				if id != c.cfg.NodeName || m.LeaderState().Leading {
					return nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return fmt.Errorf("no leader within %s", timeout)
}

// TokenRequest asks for a join token.
type TokenRequest struct {
	Node string        `json:"node"`
	TTL  time.Duration `json:"ttl"`
}

// TokenResponse carries a join token.
type TokenResponse struct {
	Token string `json:"token"`
}

// IssueToken creates a single-use join token for node, valid for ttl. It
// runs on the leader (forwarded there if needed), which signs joins.
func (c *Cluster) IssueToken(ctx context.Context, node string, ttl time.Duration) (string, error) {
	req := TokenRequest{Node: node, TTL: ttl}
	m, err := c.requireMember()
	if err != nil {
		return "", err
	}
	if m.IsLeader() {
		return c.issueTokenHere(ctx, req)
	}
	id, addr, err := c.awaitLeader(ctx, time.Now().Add(leaderWait))
	if err != nil {
		return "", err
	}
	body, _ := json.Marshal(req)
	var resp TokenResponse
	if err := c.call(ctx, addr, http.MethodPost, "/internal/v1/token", body, &resp); err != nil {
		return "", fmt.Errorf("asking leader %s for a token: %w", id, err)
	}
	return resp.Token, nil
}

func (c *Cluster) issueTokenHere(ctx context.Context, req TokenRequest) (string, error) {
	if err := pki.ValidateNodeName(req.Node); err != nil {
		return "", err
	}
	if req.TTL == 0 {
		req.TTL = pki.DefaultTokenTTL
	}
	c.mu.Lock()
	ca := c.ca
	c.mu.Unlock()
	if ca == nil {
		return "", errors.New("this node holds no cluster CA key and cannot sign joins; ask a controller member")
	}
	var addrs []string
	for _, mem := range c.state.Members() {
		addrs = append(addrs, mem.PeerAddress)
	}
	now := c.clock.Now()
	tok, rec, err := ca.IssueToken(req.Node, addrs, req.TTL, now)
	if err != nil {
		return "", err
	}
	res, err := c.Apply(ctx, &state.IssueJoinToken{Record: rec, At: now.UnixMilli()})
	if err == nil {
		err = res.Err
	}
	if err != nil {
		return "", fmt.Errorf("recording the join token: %w", err)
	}
	c.log.Info("join token issued", "for", req.Node, "expires", rec.Expires)
	return tok, nil
}

// JoinRequest is what a joining node sends.
type JoinRequest struct {
	Token       string `json:"token"`
	Node        string `json:"node"`
	CSR         string `json:"csr"`
	PeerAddress string `json:"peer_address"`
	Controller  bool   `json:"controller"`
}

// JoinResponse is what it gets back.
type JoinResponse struct {
	ClusterName string `json:"cluster_name"`
	CertPEM     string `json:"cert_pem"`
	CACertPEM   string `json:"ca_cert_pem"`
	// CAKeyPEM goes to controller-capable nodes only, which may lead and
	// so must be able to sign later joins.
	CAKeyPEM string `json:"ca_key_pem,omitempty"`
}

// handleJoin admits a node: it verifies the token against the replicated
// record, signs the node's CSR, consumes the token (the step that makes it
// single-use) and adds the node to raft as a non-voter; the membership
// reconciler promotes it once it has caught up.
func (c *Cluster) handleJoin(ctx context.Context, req JoinRequest, forwarded bool) (JoinResponse, error) {
	m, err := c.requireMember()
	if err != nil {
		return JoinResponse{}, err
	}
	if !m.IsLeader() {
		if forwarded {
			return JoinResponse{}, errors.New("leadership moved during the join; retry")
		}
		id, addr, err := c.awaitLeader(ctx, time.Now().Add(leaderWait))
		if err != nil {
			return JoinResponse{}, err
		}
		body, _ := json.Marshal(req)
		var resp JoinResponse
		if err := c.call(ctx, addr, http.MethodPost, "/internal/v1/join", body, &resp); err != nil {
			return JoinResponse{}, fmt.Errorf("forwarding the join to leader %s: %w", id, err)
		}
		return resp, nil
	}
	c.mu.Lock()
	ca := c.ca
	c.mu.Unlock()
	if ca == nil {
		return JoinResponse{}, errors.New("the leader holds no CA key; this is a bug")
	}
	if err := pki.ValidateNodeName(req.Node); err != nil {
		return JoinResponse{}, fmt.Errorf("%w: %v", errJoinRefused, err)
	}
	if _, _, err := net.SplitHostPort(req.PeerAddress); err != nil {
		return JoinResponse{}, fmt.Errorf("%w: peer address %q: %v", errJoinRefused, req.PeerAddress, err)
	}
	now := c.clock.Now()
	rec, err := pki.Verify(req.Token, c.state.JoinToken, req.Node, ca.Fingerprint(), now)
	if err != nil {
		c.log.Warn("join refused", "node", req.Node, "err", err)
		return JoinResponse{}, err
	}
	cert, err := ca.SignCSR([]byte(req.CSR), rec, now)
	if err != nil {
		return JoinResponse{}, err
	}
	res, err := c.Apply(ctx, &state.ConsumeJoinToken{
		ID:     rec.ID,
		Member: state.Member{Name: req.Node, PeerAddress: req.PeerAddress, Controller: req.Controller, JoinedAt: now.UnixMilli()},
		At:     now.UnixMilli(),
	})
	if err == nil && res.Err != nil {
		err = fmt.Errorf("%w: %v", errJoinRefused, res.Err)
	}
	if err != nil {
		return JoinResponse{}, err
	}
	if err := m.AddNonvoter(req.Node, req.PeerAddress); err != nil {
		// The reconciler retries from the member record.
		c.log.Warn("adding the new member to raft failed; the membership reconciler will retry", "node", req.Node, "err", err)
	}
	resp := JoinResponse{ClusterName: ca.ClusterName(), CertPEM: string(pki.EncodeCertPEM(cert)), CACertPEM: string(ca.CertPEM())}
	if req.Controller {
		_, keyPEM, err := ca.MarshalPEM()
		if err != nil {
			return JoinResponse{}, err
		}
		resp.CAKeyPEM = string(keyPEM)
	}
	c.log.Info("node joined", "node", req.Node, "peer", req.PeerAddress, "controller", req.Controller)
	return resp, nil
}

// Join makes this node a member of the cluster the token belongs to. The
// private key is made here and never leaves the node.
func (c *Cluster) Join(ctx context.Context, token string) (err error) {
	if c.Member() != nil {
		return errors.New("this node is already a cluster member; see `pvehci cluster status`")
	}
	tok, err := pki.Decode(token)
	if err != nil {
		return err
	}
	if !pki.SameNodeName(tok.NodeName, c.cfg.NodeName) {
		return fmt.Errorf("this token is for node %s, but this node is %s; create one for %s with `pvehci cluster token %s` on a member",
			tok.NodeName, c.cfg.NodeName, c.cfg.NodeName, c.cfg.NodeName)
	}
	if tok.Expired(c.clock.Now()) {
		return fmt.Errorf("this token expired at %s; create a new one with `pvehci cluster token %s` on a member", tok.Expires.Format(time.RFC3339), c.cfg.NodeName)
	}
	ips, err := c.advertiseIPs()
	if err != nil {
		return err
	}
	key, err := pki.NewNodeKey()
	if err != nil {
		return err
	}
	csr, err := key.CSR(c.cfg.NodeName, ips)
	if err != nil {
		return err
	}
	body, _ := json.Marshal(JoinRequest{Token: token, Node: c.cfg.NodeName, CSR: string(csr), PeerAddress: c.cfg.Advertise, Controller: c.cfg.Controller})
	tlsCfg := tok.ClientTLSConfig()
	tlsCfg.NextProtos = []string{ALPNJoin}
	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsCfg}}
	var (
		resp     JoinResponse
		attempts []string
	)
	for _, addr := range tok.Addrs {
		err := postJoin(ctx, client, addr, body, &resp)
		if err == nil {
			attempts = nil
			break
		}
		attempts = append(attempts, fmt.Sprintf("%s: %v", addr, err))
		var refused *joinRefusedError
		if errors.As(err, &refused) {
			// The cluster said no; asking another member gives the same answer.
			return fmt.Errorf("the cluster refused the join: %s", refused.msg)
		}
	}
	if attempts != nil {
		return fmt.Errorf("no member of the cluster answered on its peer port (TCP %d); check that they run and that the port is open between the nodes:\n  %s",
			DefaultPeerPort, joinLines(attempts))
	}
	node, err := key.Assemble([]byte(resp.CertPEM), []byte(resp.CACertPEM), tok.CAFingerprint)
	if err != nil {
		return fmt.Errorf("checking the certificate the cluster issued: %w", err)
	}
	var ca *pki.CA
	if resp.CAKeyPEM != "" {
		if ca, err = pki.ParseCA([]byte(resp.CACertPEM), []byte(resp.CAKeyPEM)); err != nil {
			return fmt.Errorf("reading the cluster CA: %w", err)
		}
	}
	defer func() {
		if err != nil {
			c.Close(context.Background())
			os.RemoveAll(c.pkiDir())
			os.RemoveAll(c.raftDir())
		}
	}()
	if ca != nil {
		if err := ca.Save(c.pkiDir()); err != nil {
			return err
		}
	}
	if err := node.Save(c.pkiDir()); err != nil {
		return err
	}
	if err := c.start(node, ca); err != nil {
		return err
	}
	// Wait until the cluster's log has reached this node: then it is a
	// working member.
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if _, ok := c.state.Member(c.cfg.NodeName); ok {
			c.log.Info("joined the cluster", "cluster", resp.ClusterName)
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return errors.New("joined, but the cluster's state did not reach this node within 60s; check `pvehci cluster status` and the peer port between the nodes")
}

type joinRefusedError struct{ msg string }

func (e *joinRefusedError) Error() string { return e.msg }

func postJoin(ctx context.Context, client *http.Client, addr string, body []byte, out *JoinResponse) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+addr+"/join/v1", bytes.NewReader(body))
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var e rpcError
		json.Unmarshal(data, &e)
		if resp.StatusCode == http.StatusForbidden {
			return &joinRefusedError{msg: e.Message}
		}
		return fmt.Errorf("%s: %s", resp.Status, e.Message)
	}
	return json.Unmarshal(data, out)
}

func joinLines(lines []string) string {
	var b bytes.Buffer
	for i, l := range lines {
		if i > 0 {
			b.WriteString("\n  ")
		}
		b.WriteString(l)
	}
	return b.String()
}

// Remove takes a node out of the cluster: its member record and its seat
// in raft. Its certificate stops being accepted on the peer port.
func (c *Cluster) Remove(ctx context.Context, node string) error {
	m, err := c.requireMember()
	if err != nil {
		return err
	}
	res, err := c.Apply(ctx, &state.RemoveMember{Name: node})
	if err == nil {
		err = res.Err
	}
	if err != nil {
		return err
	}
	if m.IsLeader() {
		if err := m.RemoveServer(node); err != nil {
			c.log.Warn("removing the member from raft failed; the membership reconciler will retry", "node", node, "err", err)
		}
	}
	c.log.Info("node removed from the cluster", "node", node)
	return nil
}
