package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"slices"
	"time"
)

// Validity periods and the backdating applied to every new certificate.
const (
	// CAValidity is how long a new cluster CA is valid.
	CAValidity = 10 * 365 * 24 * time.Hour
	// DefaultNodeValidity is how long [CA.SignCSR] makes a node
	// certificate valid (capped at the CA's own expiry). The expiry is
	// exposed through [NodeCert.NotAfter] for the health checks.
	DefaultNodeValidity = 5 * 365 * 24 * time.Hour
	// backdate is subtracted from now for NotBefore, so that a node whose
	// clock lags a little can use a certificate signed a moment ago.
	backdate = 10 * time.Minute
)

const organization = "pvehci"

// CA is the cluster certificate authority: its certificate and private key.
// The key is never part of any formatted output.
type CA struct {
	cert *x509.Certificate
	key  *sealed[ecdsa.PrivateKey]
}

// sealed keeps a secret two pointers away from the struct that holds it.
// When fmt prints a value whose Format it cannot call (a copy of the struct,
// or one in an unexported field of another struct), it follows at most one
// pointer and prints addresses beyond that, so the secret is never printed.
type sealed[T any] struct{ v *T }

func seal[T any](v *T) *sealed[T] { return &sealed[T]{v: v} }

// NewCA creates the self-signed CA of the cluster named clusterName, valid
// from now for [CAValidity].
func NewCA(clusterName string, now time.Time) (*CA, error) {
	ca, err := newCA(clusterName, now)
	if err != nil {
		return nil, fmt.Errorf("pki: creating the CA of cluster %q: %w", clusterName, err)
	}
	return ca, nil
}

func newCA(clusterName string, now time.Time) (*CA, error) {
	if err := validateClusterName(clusterName); err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("creating key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: newSerial(),
		Subject: pkix.Name{
			CommonName:         "pvehci cluster " + clusterName + " CA",
			Organization:       []string{organization},
			OrganizationalUnit: []string{clusterName},
		},
		NotBefore:             now.Add(-backdate).UTC(),
		NotAfter:              now.Add(CAValidity).UTC(),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("creating certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parsing the new certificate: %w", err)
	}
	return &CA{cert: cert, key: seal(key)}, nil
}

// ParseCA builds a CA from its PEM certificate and PEM PKCS #8 key, checking
// that they belong together.
func ParseCA(certPEM, keyPEM []byte) (*CA, error) {
	ca, err := parseCA(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	return ca, nil
}

func parseCA(certPEM, keyPEM []byte) (*CA, error) {
	cert, err := parseCertPEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	key, err := parseKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("CA key: %w", err)
	}
	if err := checkCACert(cert); err != nil {
		return nil, err
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("the CA key does not belong to the CA certificate %q (%s); were %s and %s taken from different clusters or from an interrupted save?", cert.Subject.CommonName, Fingerprint(cert), CACertFile, CAKeyFile)
	}
	return &CA{cert: cert, key: seal(key)}, nil
}

func checkCACert(cert *x509.Certificate) error {
	if !cert.BasicConstraintsValid || !cert.IsCA {
		return fmt.Errorf("certificate %q (%s) is not a CA certificate", cert.Subject.CommonName, Fingerprint(cert))
	}
	if len(cert.Subject.OrganizationalUnit) != 1 || validateClusterName(cert.Subject.OrganizationalUnit[0]) != nil {
		return fmt.Errorf("certificate %q (%s) is not a pvehci cluster CA: its subject does not name a cluster", cert.Subject.CommonName, Fingerprint(cert))
	}
	if err := cert.CheckSignatureFrom(cert); err != nil {
		return fmt.Errorf("CA certificate %q (%s) is not self-signed: %w", cert.Subject.CommonName, Fingerprint(cert), err)
	}
	return nil
}

// Certificate returns the CA certificate. Do not modify it.
func (ca *CA) Certificate() *x509.Certificate { return ca.cert }

// CertPEM returns the CA certificate as PEM.
func (ca *CA) CertPEM() []byte { return EncodeCertPEM(ca.cert) }

// ClusterName returns the name of the cluster the CA was created for.
func (ca *CA) ClusterName() string { return ca.cert.Subject.OrganizationalUnit[0] }

// Fingerprint returns the CA certificate's [Fingerprint], which join tokens
// pin.
func (ca *CA) Fingerprint() string { return Fingerprint(ca.cert) }

// NotAfter returns when the CA certificate expires. After that no node
// certificate verifies.
func (ca *CA) NotAfter() time.Time { return ca.cert.NotAfter }

// MarshalPEM returns the CA certificate and its private key (PKCS #8) as PEM,
// for replication to the other controller-capable nodes. keyPEM is a
// secret: store it mode 0600 or encrypted, never log it.
func (ca *CA) MarshalPEM() (certPEM, keyPEM []byte, err error) {
	keyPEM, err = encodeKeyPEM(ca.key.v)
	if err != nil {
		return nil, nil, err
	}
	return ca.CertPEM(), keyPEM, nil
}

// String describes the CA without its key.
func (ca *CA) String() string {
	if ca == nil || ca.cert == nil {
		return "pki.CA(<nil>)"
	}
	return fmt.Sprintf("pki.CA(cluster %q, %s, expires %s)", ca.ClusterName(), ca.Fingerprint(), ca.cert.NotAfter.Format(time.RFC3339))
}

// Format writes [CA.String] for every verb, so that no verb (%+v, %#v,
// %x...) can reach the private key.
func (ca *CA) Format(f fmt.State, _ rune) { io.WriteString(f, ca.String()) }

// IssueNode creates a key and a certificate for the node nodeName with the
// given IP addresses and extra DNS names (each nodeName or nodeName.domain;
// nodeName itself is always included), valid from now for validity (capped at
// the CA's expiry). It is for the node holding the CA, at bootstrap; a
// joining node makes its own key and uses [NodeKey.CSR] and [CA.SignCSR].
func (ca *CA) IssueNode(nodeName string, ips []net.IP, dnsNames []string, now time.Time, validity time.Duration) (*NodeCert, error) {
	n, err := ca.issueNode(nodeName, ips, dnsNames, now, validity)
	if err != nil {
		return nil, fmt.Errorf("pki: issuing the certificate of node %q: %w", nodeName, err)
	}
	return n, nil
}

func (ca *CA) issueNode(nodeName string, ips []net.IP, dnsNames []string, now time.Time, validity time.Duration) (*NodeCert, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("creating key: %w", err)
	}
	cert, err := ca.sign(&key.PublicKey, nodeName, ips, dnsNames, now, validity)
	if err != nil {
		return nil, err
	}
	return newNodeCert(cert, key, ca.cert)
}

// SignCSR signs csrPEM (from [NodeKey.CSR]) for the node rec is bound to,
// valid from now for [DefaultNodeValidity]. rec must be the record [Verify]
// returned for the token that came with the CSR. SignCSR refuses a record
// that is used or expired, and a CSR whose common name is not the record's
// node name ([TokenWrongNameError]), whose key is not ECDSA P-256, or which
// names another node.
//
// Sign first, then mark the record used through raft, and return the
// certificate only if that succeeded: a CSR that cannot be signed then does
// not burn the token, and two racing joins cannot both get a certificate.
func (ca *CA) SignCSR(csrPEM []byte, rec TokenRecord, now time.Time) (*x509.Certificate, error) {
	if rec.Used {
		return nil, &TokenUsedError{ID: rec.ID, NodeName: rec.NodeName, UsedAt: rec.UsedAt}
	}
	if !now.Before(rec.Expires) {
		return nil, &TokenExpiredError{ID: rec.ID, NodeName: rec.NodeName, Expired: rec.Expires, Now: now}
	}
	csr, err := parseCSRPEM(csrPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: signing the certificate of node %q: %w", rec.NodeName, err)
	}
	if !SameNodeName(csr.Subject.CommonName, rec.NodeName) {
		return nil, &TokenWrongNameError{ID: rec.ID, Bound: rec.NodeName, Presented: csr.Subject.CommonName}
	}
	if len(csr.URIs) > 0 || len(csr.EmailAddresses) > 0 {
		return nil, fmt.Errorf("pki: signing the certificate of node %q: the request asks for URI or e-mail names; node certificates carry only DNS and IP names", rec.NodeName)
	}
	pub, err := p256Public(csr.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("pki: signing the certificate of node %q: %w", rec.NodeName, err)
	}
	cert, err := ca.sign(pub, rec.NodeName, csr.IPAddresses, csr.DNSNames, now, DefaultNodeValidity)
	if err != nil {
		return nil, fmt.Errorf("pki: signing the certificate of node %q: %w", rec.NodeName, err)
	}
	return cert, nil
}

// sign issues a node certificate for pub.
func (ca *CA) sign(pub *ecdsa.PublicKey, nodeName string, ips []net.IP, dnsNames []string, now time.Time, validity time.Duration) (*x509.Certificate, error) {
	if err := validateNodeName(nodeName); err != nil {
		return nil, err
	}
	if validity <= 0 {
		return nil, fmt.Errorf("validity %v is not positive", validity)
	}
	if !now.Before(ca.cert.NotAfter) {
		return nil, fmt.Errorf("the cluster CA %s expired at %s and can sign no more certificates; the cluster needs a new CA", ca.Fingerprint(), ca.cert.NotAfter.Format(time.RFC3339))
	}
	dns, err := sanNames(nodeName, dnsNames)
	if err != nil {
		return nil, err
	}
	addrs, err := sanIPs(nodeName, ips)
	if err != nil {
		return nil, err
	}
	notAfter := now.Add(validity)
	if notAfter.After(ca.cert.NotAfter) {
		notAfter = ca.cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: newSerial(),
		Subject: pkix.Name{
			CommonName:         nodeName,
			Organization:       []string{organization},
			OrganizationalUnit: []string{ca.ClusterName()},
		},
		DNSNames:              dns,
		IPAddresses:           addrs,
		NotBefore:             now.Add(-backdate).UTC(),
		NotAfter:              notAfter.UTC(),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, pub, ca.key.v)
	if err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parsing the new certificate: %w", err)
	}
	return cert, nil
}

// sanNames returns the DNS SANs: nodeName first, then the other names,
// without duplicates.
func sanNames(nodeName string, dnsNames []string) ([]string, error) {
	out := []string{nodeName}
	for _, d := range dnsNames {
		if err := validateSANName(nodeName, d); err != nil {
			return nil, err
		}
		if !slices.ContainsFunc(out, func(o string) bool { return SameNodeName(o, d) }) {
			out = append(out, d)
		}
	}
	return out, nil
}

// sanIPs returns copies of ips without duplicates, refusing wildcard and
// malformed addresses.
func sanIPs(nodeName string, ips []net.IP) ([]net.IP, error) {
	var out []net.IP
	for _, ip := range ips {
		if len(ip) != net.IPv4len && len(ip) != net.IPv6len {
			return nil, fmt.Errorf("an IP address is malformed (%d bytes)", len(ip))
		}
		if ip.IsUnspecified() {
			return nil, fmt.Errorf("%s is a wildcard address; list the addresses other nodes reach node %q at", ip, nodeName)
		}
		if v4 := ip.To4(); v4 != nil {
			ip = v4
		}
		if !slices.ContainsFunc(out, ip.Equal) {
			out = append(out, slices.Clone(ip))
		}
	}
	return out, nil
}

// newSerial returns a random positive 127-bit serial number.
func newSerial() *big.Int {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand, Go ≥ 1.24)
	b[0] &= 0x7f
	b[0] |= 0x40 // keep it 16 bytes long and positive
	return new(big.Int).SetBytes(b[:])
}

// NodeCert is a node's certificate, its private key and the CA certificate
// it chains to: everything the node needs for mutual TLS. The key is never
// part of any formatted output.
type NodeCert struct {
	cert *x509.Certificate
	key  *sealed[ecdsa.PrivateKey]
	ca   *x509.Certificate
}

// newNodeCert checks that cert is a node certificate for key signed by ca.
// It does not check the validity period, so that an expired certificate can
// still be loaded and reported by the health checks.
func newNodeCert(cert *x509.Certificate, key *ecdsa.PrivateKey, ca *x509.Certificate) (*NodeCert, error) {
	if err := checkCACert(ca); err != nil {
		return nil, err
	}
	if err := validateNodeName(cert.Subject.CommonName); err != nil {
		return nil, fmt.Errorf("certificate %s is not a node certificate: %w", Fingerprint(cert), err)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("the node key does not belong to the certificate of node %q (%s); were %s and %s taken from different nodes or from an interrupted save?", cert.Subject.CommonName, Fingerprint(cert), NodeCertFile, NodeKeyFile)
	}
	if err := cert.CheckSignatureFrom(ca); err != nil {
		return nil, fmt.Errorf("the certificate of node %q (%s) is not signed by the CA %q (%s); the node certificate and %s come from different clusters", cert.Subject.CommonName, Fingerprint(cert), ca.Subject.CommonName, Fingerprint(ca), CACertFile)
	}
	if !slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageServerAuth) || !slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageClientAuth) {
		return nil, fmt.Errorf("the certificate of node %q (%s) is not valid for both TLS server and client authentication", cert.Subject.CommonName, Fingerprint(cert))
	}
	return &NodeCert{cert: cert, key: seal(key), ca: ca}, nil
}

// ParseNodeCert builds a NodeCert from PEM, checking that the three belong
// together.
func ParseNodeCert(certPEM, keyPEM, caPEM []byte) (*NodeCert, error) {
	n, err := parseNodeCert(certPEM, keyPEM, caPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	return n, nil
}

func parseNodeCert(certPEM, keyPEM, caPEM []byte) (*NodeCert, error) {
	cert, err := parseCertPEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("node certificate: %w", err)
	}
	key, err := parseKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("node key: %w", err)
	}
	ca, err := parseCertPEM(caPEM)
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	return newNodeCert(cert, key, ca)
}

// MarshalPEM returns the node certificate, its private key (PKCS #8) and
// the CA certificate as PEM. keyPEM is a secret.
func (n *NodeCert) MarshalPEM() (certPEM, keyPEM, caPEM []byte, err error) {
	keyPEM, err = encodeKeyPEM(n.key.v)
	if err != nil {
		return nil, nil, nil, err
	}
	return EncodeCertPEM(n.cert), keyPEM, EncodeCertPEM(n.ca), nil
}

// Name returns the node name, the certificate's common name.
func (n *NodeCert) Name() string { return n.cert.Subject.CommonName }

// Certificate returns the node certificate. Do not modify it.
func (n *NodeCert) Certificate() *x509.Certificate { return n.cert }

// CACertificate returns the CA certificate. Do not modify it.
func (n *NodeCert) CACertificate() *x509.Certificate { return n.ca }

// Fingerprint returns the node certificate's [Fingerprint].
func (n *NodeCert) Fingerprint() string { return Fingerprint(n.cert) }

// CAFingerprint returns the CA certificate's [Fingerprint].
func (n *NodeCert) CAFingerprint() string { return Fingerprint(n.ca) }

// NotAfter returns when the node certificate expires.
func (n *NodeCert) NotAfter() time.Time { return n.cert.NotAfter }

// CANotAfter returns when the CA certificate expires.
func (n *NodeCert) CANotAfter() time.Time { return n.ca.NotAfter }

// String describes the node certificate without its key.
func (n *NodeCert) String() string {
	if n == nil || n.cert == nil {
		return "pki.NodeCert(<nil>)"
	}
	return fmt.Sprintf("pki.NodeCert(node %q, %s, expires %s, CA %s)", n.Name(), n.Fingerprint(), n.cert.NotAfter.Format(time.RFC3339), n.CAFingerprint())
}

// Format writes [NodeCert.String] for every verb.
func (n *NodeCert) Format(f fmt.State, _ rune) { io.WriteString(f, n.String()) }

// NodeKey is a joining node's private key, made on that node and never sent
// anywhere.
type NodeKey struct {
	key *sealed[ecdsa.PrivateKey]
}

// NewNodeKey creates an ECDSA P-256 node key.
func NewNodeKey() (*NodeKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pki: creating node key: %w", err)
	}
	return &NodeKey{key: seal(key)}, nil
}

// CSR returns a PEM certificate signing request for nodeName with the given
// IP addresses and extra DNS names, signed by k. It is what a joining node
// sends, with its token, to a member.
func (k *NodeKey) CSR(nodeName string, ips []net.IP, dnsNames ...string) ([]byte, error) {
	csr, err := k.csr(nodeName, ips, dnsNames)
	if err != nil {
		return nil, fmt.Errorf("pki: creating the certificate signing request of node %q: %w", nodeName, err)
	}
	return csr, nil
}

func (k *NodeKey) csr(nodeName string, ips []net.IP, dnsNames []string) ([]byte, error) {
	if err := validateNodeName(nodeName); err != nil {
		return nil, err
	}
	dns, err := sanNames(nodeName, dnsNames)
	if err != nil {
		return nil, err
	}
	addrs, err := sanIPs(nodeName, ips)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.CertificateRequest{
		Subject:     pkix.Name{CommonName: nodeName},
		DNSNames:    dns,
		IPAddresses: addrs,
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, k.key.v)
	if err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemCSR, Bytes: der}), nil
}

// Assemble combines k with the certificate and CA certificate a member
// returned for its CSR. The CA certificate must have the fingerprint the
// join token pinned ([JoinToken.CAFingerprint]); otherwise the error is a
// [*TokenWrongCAError]. The certificate must be signed by that CA and be for
// k.
func (k *NodeKey) Assemble(certPEM, caPEM []byte, pinnedCAFingerprint string) (*NodeCert, error) {
	ca, err := parseCertPEM(caPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: the CA certificate the cluster returned: %w", err)
	}
	if got := Fingerprint(ca); got != pinnedCAFingerprint {
		return nil, &TokenWrongCAError{TokenCA: pinnedCAFingerprint, ReachedCA: got, ReachedCluster: clusterOf(ca)}
	}
	cert, err := parseCertPEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: the node certificate the cluster returned: %w", err)
	}
	n, err := newNodeCert(cert, k.key.v, ca)
	if err != nil {
		return nil, fmt.Errorf("pki: the node certificate the cluster returned: %w", err)
	}
	return n, nil
}

// String describes the key without revealing it.
func (k *NodeKey) String() string {
	if k == nil || k.key == nil {
		return "pki.NodeKey(<nil>)"
	}
	return "pki.NodeKey(ECDSA P-256, private)"
}

// Format writes [NodeKey.String] for every verb.
func (k *NodeKey) Format(f fmt.State, _ rune) { io.WriteString(f, k.String()) }

// clusterOf returns the cluster name in a pvehci certificate's subject, or
// its common name for a foreign certificate.
func clusterOf(cert *x509.Certificate) string {
	if len(cert.Subject.OrganizationalUnit) == 1 {
		return cert.Subject.OrganizationalUnit[0]
	}
	return cert.Subject.CommonName
}

var errNoPeerCert = errors.New("pki: the peer presented no certificate; node-to-node connections use mutual TLS, so both sides need a node certificate from the cluster CA")
