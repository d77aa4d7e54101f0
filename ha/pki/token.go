package pki

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// Join token format and lifetimes.
const (
	// TokenPrefix starts every join token of this format. A later format
	// gets a new version number, so an old pvehci recognises a newer token
	// instead of calling it garbage.
	TokenPrefix = "pvehci-join-v1:"
	// DefaultTokenTTL is a token's lifetime unless the request says
	// otherwise: long enough for slow disk setup between creating the token
	// and joining (MicroCloud raised its 5 minutes to 1 hour for that).
	DefaultTokenTTL = time.Hour
	// MaxTokenTTL bounds a token's lifetime.
	MaxTokenTTL = 24 * time.Hour
)

const (
	tokenPrefixFamily = "pvehci-join-v"
	secretLen         = 32 // bytes from crypto/rand
	idLen             = 8  // bytes from crypto/rand, shown as 16 hex digits
	checksumLen       = 4  // bytes of SHA-256 over the JSON
	secretHashDomain  = "pvehci join token secret v1\x00"
)

// A join token is TokenPrefix followed by the unpadded URL-safe base64 of
// the JSON below and the first checksumLen bytes of its SHA-256. The
// checksum tells a token cut short or mistyped in transit from one the
// cluster never issued.
type tokenPayload struct {
	ID      string    `json:"id"`
	Secret  []byte    `json:"secret"`
	Node    string    `json:"node"`
	Cluster string    `json:"cluster"`
	CA      string    `json:"ca"`
	Addrs   []string  `json:"addrs"`
	Expires time.Time `json:"expires"`
}

// TokenRequest is what [Issue] needs to make a token.
type TokenRequest struct {
	// NodeName is the node the token is for; only it can join with it.
	NodeName string
	// ClusterName and CAFingerprint identify the cluster; the joining
	// node trusts a member only if it presents this CA.
	ClusterName   string
	CAFingerprint string
	// Addrs are the members' peer addresses (host:port) the joining node
	// tries, in order.
	Addrs []string
	// TTL is the token's lifetime; 0 means DefaultTokenTTL.
	TTL time.Duration
}

// TokenRecord is what the cluster keeps (in its replicated state) about an
// issued token. It holds a hash of the secret, never the secret, so a copy of
// the raft log or a snapshot cannot be used to join.
type TokenRecord struct {
	ID         string    `json:"id"`
	NodeName   string    `json:"node_name"`
	SecretHash string    `json:"secret_hash"` // "sha256:<hex>" of the domain-separated ID and secret
	Created    time.Time `json:"created"`
	Expires    time.Time `json:"expires"`
	Used       bool      `json:"used"`
	UsedAt     time.Time `json:"used_at,omitzero"`
}

// Expired reports whether the token's lifetime is over at now. A state
// machine may drop records that are used or expired some time ago.
func (r TokenRecord) Expired(now time.Time) bool { return !now.Before(r.Expires) }

// MarkUsed records that the token was used at now. Do it in the raft FSM as
// a compare-and-set (refuse if already Used), so that only one join wins.
func (r *TokenRecord) MarkUsed(now time.Time) {
	r.Used = true
	r.UsedAt = now.UTC()
}

// TokenLookup returns the record with the given token ID, if the cluster
// has one.
type TokenLookup func(id string) (TokenRecord, bool)

// Issue creates a join token for req.NodeName, valid from now for req.TTL.
// It returns the token to show the operator and the record to store in the
// cluster state.
func Issue(req TokenRequest, now time.Time) (token string, rec TokenRecord, err error) {
	token, rec, err = issue(req, now)
	if err != nil {
		return "", TokenRecord{}, fmt.Errorf("pki: creating a join token for node %q: %w", req.NodeName, err)
	}
	return token, rec, nil
}

// IssueToken is [Issue] for this CA's cluster.
func (ca *CA) IssueToken(nodeName string, addrs []string, ttl time.Duration, now time.Time) (string, TokenRecord, error) {
	return Issue(TokenRequest{
		NodeName:      nodeName,
		ClusterName:   ca.ClusterName(),
		CAFingerprint: ca.Fingerprint(),
		Addrs:         addrs,
		TTL:           ttl,
	}, now)
}

func issue(req TokenRequest, now time.Time) (string, TokenRecord, error) {
	ttl := req.TTL
	switch {
	case ttl == 0:
		ttl = DefaultTokenTTL
	case ttl < 0:
		return "", TokenRecord{}, fmt.Errorf("lifetime %v is negative", ttl)
	case ttl > MaxTokenTTL:
		return "", TokenRecord{}, fmt.Errorf("lifetime %v is longer than the maximum %v; create the token closer to the time of the join", ttl, MaxTokenTTL)
	}
	p := &tokenPayload{
		ID:      hex.EncodeToString(randBytes(idLen)),
		Secret:  randBytes(secretLen),
		Node:    req.NodeName,
		Cluster: req.ClusterName,
		CA:      req.CAFingerprint,
		Addrs:   append([]string(nil), req.Addrs...),
		Expires: now.Add(ttl).UTC().Truncate(time.Second),
	}
	if err := p.validate(); err != nil {
		return "", TokenRecord{}, err
	}
	j, err := json.Marshal(p)
	if err != nil {
		return "", TokenRecord{}, err
	}
	sum := sha256.Sum256(j)
	token := TokenPrefix + base64.RawURLEncoding.EncodeToString(append(j, sum[:checksumLen]...))
	rec := TokenRecord{
		ID:         p.ID,
		NodeName:   p.Node,
		SecretHash: secretHash(p.ID, p.Secret),
		Created:    now.UTC(),
		Expires:    p.Expires,
	}
	return token, rec, nil
}

// randBytes returns n bytes from crypto/rand, which never fails (Go ≥ 1.24
// crashes the program rather than return an error).
func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// secretHash binds the secret to its token ID. The secret has 256 bits of
// entropy, so a fast hash is enough; no password hashing is needed.
func secretHash(id string, secret []byte) string {
	h := sha256.New()
	io.WriteString(h, secretHashDomain)
	io.WriteString(h, id)
	h.Write([]byte{0})
	h.Write(secret)
	return fingerprintPrefix + hex.EncodeToString(h.Sum(nil))
}

// validate checks a payload, for Issue and for Decode.
func (p *tokenPayload) validate() error {
	if len(p.ID) != 2*idLen {
		return fmt.Errorf("token ID %q is not %d hex digits", p.ID, 2*idLen)
	}
	if _, err := hex.DecodeString(p.ID); err != nil {
		return fmt.Errorf("token ID %q is not %d hex digits", p.ID, 2*idLen)
	}
	if len(p.Secret) != secretLen {
		return fmt.Errorf("the secret is %d bytes, not %d", len(p.Secret), secretLen)
	}
	if err := validateNodeName(p.Node); err != nil {
		return err
	}
	if err := validateClusterName(p.Cluster); err != nil {
		return err
	}
	if err := checkFingerprint(p.CA); err != nil {
		return err
	}
	if len(p.Addrs) == 0 {
		return errors.New("no member address to contact; give at least one host:port")
	}
	for _, a := range p.Addrs {
		if err := checkHostPort(a); err != nil {
			return err
		}
	}
	if p.Expires.IsZero() {
		return errors.New("no expiry time")
	}
	return nil
}

func checkHostPort(a string) error {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return fmt.Errorf("member address %q is not host:port (an IPv6 address goes in brackets: [fd00::1]:3372): %w", a, err)
	}
	if host == "" {
		return fmt.Errorf("member address %q has no host", a)
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return fmt.Errorf("member address %q is a wildcard; give an address the joining node can reach", a)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return fmt.Errorf("member address %q: port %q is not a number from 1 to 65535", a, port)
	}
	return nil
}

// JoinToken is a decoded join token, as the joining node sees it. The secret
// is never part of any formatted output.
type JoinToken struct {
	ID            string
	NodeName      string    // the node the token is bound to
	ClusterName   string    // the cluster that issued it
	CAFingerprint string    // the cluster CA's Fingerprint, to pin
	Addrs         []string  // members' peer addresses (host:port)
	Expires       time.Time // by the issuing member's clock
	secret        *sealed[[secretLen]byte]
}

// Decode parses a token. Surrounding and embedded white space (line breaks
// from a terminal or an e-mail) is ignored. Every error is a
// [*TokenMalformedError] that says what is wrong.
func Decode(token string) (*JoinToken, error) {
	p, err := decode(token)
	if err != nil {
		return nil, err
	}
	t := &JoinToken{
		ID:            p.ID,
		NodeName:      p.Node,
		ClusterName:   p.Cluster,
		CAFingerprint: p.CA,
		Addrs:         p.Addrs,
		Expires:       p.Expires,
		secret:        seal(new([secretLen]byte)),
	}
	copy(t.secret.v[:], p.Secret)
	return t, nil
}

func decode(token string) (*tokenPayload, error) {
	s := strings.Join(strings.Fields(token), "")
	body, ok := strings.CutPrefix(s, TokenPrefix)
	if !ok {
		switch {
		case s == "":
			return nil, &TokenMalformedError{Reason: "it is empty"}
		case strings.HasPrefix(TokenPrefix, s):
			return nil, &TokenMalformedError{Reason: fmt.Sprintf("it ends after %d characters, inside the prefix — it was cut off", len(s))}
		case strings.HasPrefix(s, tokenPrefixFamily):
			v, _, _ := strings.Cut(s, ":")
			return nil, &TokenMalformedError{Reason: fmt.Sprintf("it is a %q token, but this pvehci reads only %q tokens; create the token and join with the same pvehci version", v+":", TokenPrefix)}
		default:
			return nil, &TokenMalformedError{Reason: fmt.Sprintf("it does not start with %q, so it is not a pvehci join token", TokenPrefix)}
		}
	}
	body = strings.TrimRight(body, "=")
	if body == "" {
		return nil, &TokenMalformedError{Reason: "nothing follows the prefix — it was cut off"}
	}
	if len(body)%4 == 1 {
		return nil, &TokenMalformedError{Reason: fmt.Sprintf("its length (%d characters) is impossible — it was cut off or characters were lost in copying", len(s))}
	}
	blob, err := base64.RawURLEncoding.Strict().DecodeString(body)
	if err != nil {
		var ce base64.CorruptInputError
		if errors.As(err, &ce) && int(ce) < len(body) && !isTokenChar(body[ce]) {
			return nil, &TokenMalformedError{Reason: fmt.Sprintf("character %q at position %d cannot occur in a token (only letters, digits, '-' and '_' follow the prefix) — it was changed in copying", body[ce], len(TokenPrefix)+int(ce)+1)}
		}
		return nil, &TokenMalformedError{Reason: fmt.Sprintf("its last character is not one a token can end with — it was cut off (it is %d characters long) or changed in copying", len(s))}
	}
	if len(blob) <= checksumLen {
		return nil, &TokenMalformedError{Reason: fmt.Sprintf("it is only %d characters long — it was cut off", len(s))}
	}
	j, sum := blob[:len(blob)-checksumLen], blob[len(blob)-checksumLen:]
	if want := sha256.Sum256(j); !bytes.Equal(sum, want[:checksumLen]) {
		return nil, &TokenMalformedError{Reason: fmt.Sprintf("its checksum does not match — it was cut off (it is %d characters long) or characters were changed in copying", len(s))}
	}
	var p tokenPayload
	if err := json.Unmarshal(j, &p); err != nil {
		return nil, &TokenMalformedError{Reason: "its content cannot be read although its checksum matches; was it made by a different pvehci version?"}
	}
	if err := p.validate(); err != nil {
		return nil, &TokenMalformedError{Reason: err.Error()}
	}
	return &p, nil
}

func isTokenChar(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

// Expired reports whether the token has expired at now by the issuing
// member's clock. Only the member's check ([Verify]) is authoritative; this
// is for an early, friendly message on the joining node.
func (t *JoinToken) Expired(now time.Time) bool { return !now.Before(t.Expires) }

// String describes the token without its secret.
func (t *JoinToken) String() string {
	if t == nil {
		return "pki.JoinToken(<nil>)"
	}
	return fmt.Sprintf("pki.JoinToken(%s for node %q of cluster %q, CA %s, members %v, expires %s)", t.ID, t.NodeName, t.ClusterName, t.CAFingerprint, t.Addrs, stamp(t.Expires))
}

// Format writes [JoinToken.String] for every verb, so that no verb can
// reach the secret.
func (t *JoinToken) Format(f fmt.State, _ rune) { io.WriteString(f, t.String()) }

// Verify checks token, presented by the node joiningName to a member of the
// cluster whose CA has the fingerprint clusterCAFingerprint, against the
// record lookup returns, at now. It returns the record on success; the
// caller then signs the CSR ([CA.SignCSR]) and marks the record used.
//
// The checks run in this order, each with its own error type: the text is a
// token ([*TokenMalformedError]); it pins this cluster's CA
// ([*TokenWrongCAError]); the cluster has a record of it
// ([*TokenUnknownError]); the secret matches the record, compared in
// constant time ([*TokenSecretError]); it is bound to joiningName
// ([*TokenWrongNameError]); it is unused ([*TokenUsedError]); it has not
// expired ([*TokenExpiredError]). All of them match [ErrTokenRefused].
func Verify(token string, lookup TokenLookup, joiningName, clusterCAFingerprint string, now time.Time) (TokenRecord, error) {
	t, err := Decode(token)
	if err != nil {
		return TokenRecord{}, err
	}
	if t.CAFingerprint != clusterCAFingerprint {
		return TokenRecord{}, &TokenWrongCAError{TokenCluster: t.ClusterName, TokenCA: t.CAFingerprint, ReachedCA: clusterCAFingerprint}
	}
	rec, ok := lookup(t.ID)
	if !ok || rec.ID != t.ID {
		return TokenRecord{}, &TokenUnknownError{ID: t.ID, NodeName: t.NodeName}
	}
	got := secretHash(t.ID, t.secret.v[:])
	if subtle.ConstantTimeCompare([]byte(got), []byte(rec.SecretHash)) != 1 {
		return TokenRecord{}, &TokenSecretError{ID: t.ID, NodeName: rec.NodeName}
	}
	if !SameNodeName(rec.NodeName, joiningName) {
		return TokenRecord{}, &TokenWrongNameError{ID: t.ID, Bound: rec.NodeName, Presented: joiningName}
	}
	if rec.Used {
		return TokenRecord{}, &TokenUsedError{ID: t.ID, NodeName: rec.NodeName, UsedAt: rec.UsedAt}
	}
	if rec.Expired(now) {
		return TokenRecord{}, &TokenExpiredError{ID: t.ID, NodeName: rec.NodeName, Expired: rec.Expires, Now: now}
	}
	return rec, nil
}

// VerifyServerChain is the joining node's check of the chain a member
// presented (leaf first), before it trusts anything the member says: one of
// the certificates after the leaf must be the CA the token pins (else
// [*TokenWrongCAError]), and the leaf must be a valid server certificate
// signed by it at now. It returns the pinned CA certificate.
func (t *JoinToken) VerifyServerChain(certs []*x509.Certificate, now time.Time) (*x509.Certificate, error) {
	if len(certs) == 0 {
		return nil, errNoPeerCert
	}
	var ca *x509.Certificate
	for _, c := range certs[1:] {
		if Fingerprint(c) == t.CAFingerprint {
			ca = c
			break
		}
	}
	if ca == nil {
		e := &TokenWrongCAError{TokenCluster: t.ClusterName, TokenCA: t.CAFingerprint}
		if len(certs) > 1 {
			last := certs[len(certs)-1]
			e.ReachedCA, e.ReachedCluster = Fingerprint(last), clusterOf(last)
		}
		return nil, e
	}
	if err := checkCACert(ca); err != nil {
		return nil, fmt.Errorf("%w: the pinned CA: %w", ErrPeerUntrusted, err)
	}
	if err := verifyPeer(certs, ca, x509.ExtKeyUsageServerAuth, AnyMember, now); err != nil {
		return nil, err
	}
	return ca, nil
}

// ClientTLSConfig returns the config a joining node dials a member with:
// TLS 1.3 only, no client certificate, and the server trusted only through
// [JoinToken.VerifyServerChain] (the returned config's Time if set before
// any Clone, else the wall clock). InsecureSkipVerify only turns off the standard verification,
// which cannot know the pinned CA; keep VerifyConnection when cloning.
func (t *JoinToken) ClientTLSConfig() *tls.Config {
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS13,
		InsecureSkipVerify: true, // verified in VerifyConnection below
	}
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		now := time.Now()
		if cfg.Time != nil {
			now = cfg.Time()
		}
		_, err := t.VerifyServerChain(cs.PeerCertificates, now)
		return err
	}
	return cfg
}
