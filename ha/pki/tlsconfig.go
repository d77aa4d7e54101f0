package pki

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"time"
)

// Errors of the peer checks in the TLS configs. Each is wrapped with the
// details (node names, fingerprints, times) and what to do.
var (
	// ErrForeignCA: the peer's certificate is not signed by this
	// cluster's CA.
	ErrForeignCA = errors.New("pki: peer certificate is not from this cluster's CA")
	// ErrCertExpired: the peer's certificate (or the CA) is expired or
	// not yet valid.
	ErrCertExpired = errors.New("pki: peer certificate is expired or not yet valid")
	// ErrWrongPeer: the peer is a member, but not the node that was
	// dialled.
	ErrWrongPeer = errors.New("pki: peer is not the node that was dialled")
	// ErrPeerUntrusted: any other reason to refuse the peer's certificate.
	ErrPeerUntrusted = errors.New("pki: peer certificate not trusted")
)

// AnyMember, passed to [NodeCert.ClientTLSConfig], accepts any node of the
// cluster instead of one named node.
const AnyMember = ""

// PeerCheck decides, after the certificate has been verified, whether the
// node name may connect: for example, whether it is still a member.
type PeerCheck func(nodeName string, cert *x509.Certificate) error

// tlsCertificate is the chain this node presents: its certificate and the
// CA certificate, so that a joining node can pin the CA by fingerprint.
func (n *NodeCert) tlsCertificate() tls.Certificate {
	return tls.Certificate{
		Certificate: [][]byte{n.cert.Raw, n.ca.Raw},
		PrivateKey:  n.key.v,
		Leaf:        n.cert,
	}
}

func (n *NodeCert) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(n.ca)
	return p
}

// ServerTLSConfig returns the config for the peer port: TLS 1.3 only, and a
// client must present a certificate that the standard library verifies
// against the cluster CA (tls.RequireAndVerifyClientCert) for client
// authentication. After that the common name must be a valid node name, and
// check, if not nil, must accept it. Use [PeerNodeName] on the connection to
// learn who connected.
func (n *NodeCert) ServerTLSConfig(check PeerCheck) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{n.tlsCertificate()},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    n.pool(),
		VerifyConnection: func(cs tls.ConnectionState) error {
			name, err := PeerNodeName(cs)
			if err != nil {
				return err
			}
			if check != nil {
				if err := check(name, cs.PeerCertificates[0]); err != nil {
					return fmt.Errorf("pki: refusing node %q: %w", name, err)
				}
			}
			return nil
		},
	}
}

// JoinServerTLSConfig is [NodeCert.ServerTLSConfig] for the listener that
// answers joining nodes, which have no certificate yet: a client certificate
// is verified if one is given but not required, so the handler must
// authenticate a join by its token, and anything else by [PeerNodeName]
// (which fails without a client certificate).
func (n *NodeCert) JoinServerTLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{n.tlsCertificate()},
		ClientAuth:   tls.VerifyClientCertIfGiven,
		ClientCAs:    n.pool(),
	}
}

// ClientTLSConfig returns the config for dialling node peerName (or any
// member, with [AnyMember]): TLS 1.3 only, this node's certificate as the
// client certificate, and a server certificate that must be signed by the
// cluster CA, be valid now (the returned config's Time if set before any
// Clone, else the wall clock),
// allow server authentication, and carry peerName as its common name. The
// errors wrap [ErrForeignCA], [ErrCertExpired], [ErrWrongPeer] or
// [ErrPeerUntrusted] and name both sides.
//
// The check is done in VerifyConnection rather than by the standard
// library's host-name check, so that a wrong peer or a foreign CA gets a
// message that says what happened; InsecureSkipVerify only turns off the
// standard check that this one replaces. Keep VerifyConnection when
// cloning the config.
func (n *NodeCert) ClientTLSConfig(peerName string) *tls.Config {
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS13,
		Certificates:       []tls.Certificate{n.tlsCertificate()},
		RootCAs:            n.pool(),
		ServerName:         peerName,
		InsecureSkipVerify: true, // verified in VerifyConnection below
	}
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		now := time.Now()
		if cfg.Time != nil {
			now = cfg.Time()
		}
		return verifyPeer(cs.PeerCertificates, n.ca, x509.ExtKeyUsageServerAuth, peerName, now)
	}
	return cfg
}

// PeerNodeName returns the node name (common name) of the certificate the
// peer presented. It is meaningful only on a connection made with this
// package's configs, which have verified that certificate.
func PeerNodeName(cs tls.ConnectionState) (string, error) {
	if len(cs.PeerCertificates) == 0 {
		return "", errNoPeerCert
	}
	cn := cs.PeerCertificates[0].Subject.CommonName
	if err := validateNodeName(cn); err != nil {
		return "", fmt.Errorf("pki: the peer's certificate does not name a node: %w", err)
	}
	return cn, nil
}

// verifyPeer checks a peer's chain against ca for usage at now, and, if
// want is not empty, that it is the certificate of node want.
func verifyPeer(certs []*x509.Certificate, ca *x509.Certificate, usage x509.ExtKeyUsage, want string, now time.Time) error {
	if len(certs) == 0 {
		return errNoPeerCert
	}
	leaf := certs[0]
	if err := leaf.CheckSignatureFrom(ca); err != nil {
		issuer := fmt.Sprintf("%q", leaf.Issuer.CommonName)
		for _, c := range certs[1:] {
			if bytes.Equal(c.RawSubject, leaf.RawIssuer) {
				issuer = fmt.Sprintf("%q (%s)", c.Subject.CommonName, Fingerprint(c))
				break
			}
		}
		return fmt.Errorf("%w: the peer presented %q (%s), issued by %s, but this cluster's CA is %q (%s); the peer belongs to another cluster, or its certificate predates this cluster's CA — join it again with a token from this cluster",
			ErrForeignCA, leaf.Subject.CommonName, Fingerprint(leaf), issuer, ca.Subject.CommonName, Fingerprint(ca))
	}
	for _, c := range []*x509.Certificate{leaf, ca} {
		what := fmt.Sprintf("the certificate of node %q (%s)", c.Subject.CommonName, Fingerprint(c))
		fix := "that node needs a new certificate (`pvehci health` warns ahead of expiry)"
		if c == ca {
			what = fmt.Sprintf("the cluster CA %q (%s)", c.Subject.CommonName, Fingerprint(c))
			fix = "the cluster needs a new CA (`pvehci health` warns ahead of expiry)"
		}
		if now.After(c.NotAfter) {
			return fmt.Errorf("%w: %s expired at %s (this host's clock reads %s); if the clock is right, %s",
				ErrCertExpired, what, c.NotAfter.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339), fix)
		}
		if now.Before(c.NotBefore) {
			return fmt.Errorf("%w: %s is valid only from %s, but this host's clock reads %s; check time synchronisation (`chronyc tracking`) on both hosts",
				ErrCertExpired, what, c.NotBefore.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
		}
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
		return fmt.Errorf("%w: the certificate of %q (%s): %w", ErrPeerUntrusted, leaf.Subject.CommonName, Fingerprint(leaf), err)
	}
	name := leaf.Subject.CommonName
	if err := validateNodeName(name); err != nil {
		return fmt.Errorf("%w: the peer's certificate (%s) does not name a node: %w", ErrPeerUntrusted, Fingerprint(leaf), err)
	}
	if want != AnyMember && !SameNodeName(name, want) {
		return fmt.Errorf("%w: dialled node %q, but the peer presented the certificate of node %q (%s); the address used for %q reaches %q — check %q's address in the cluster's node list",
			ErrWrongPeer, want, name, Fingerprint(leaf), want, name, want)
	}
	return nil
}
