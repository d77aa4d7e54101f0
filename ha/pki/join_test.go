package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"net"
	"strings"
	"testing"
	"time"
)

// TestJoinFlow walks the whole join: token on a member, CSR on the joining
// node, verification and signing on the member, assembly on the joining
// node, then mutual TLS between the two, and refusal of the token's reuse.
func TestJoinFlow(t *testing.T) {
	t.Parallel()
	now := time.Now()
	a := newTestCluster(t, "alpha", "n1")
	n1 := a.nodes["n1"]

	// On n1: pvehci cluster token n2.
	tok, rec, err := a.ca.IssueToken("n2", []string{"127.0.0.1:3372"}, 0, now)
	if err != nil {
		t.Fatal(err)
	}
	state := map[string]TokenRecord{rec.ID: rec} // the replicated state
	lookup := func(id string) (TokenRecord, bool) { r, ok := state[id]; return r, ok }

	// On n2: pvehci cluster join TOKEN. It reaches n1 over TLS pinned by
	// the token, and trusts it.
	jt, err := Decode(tok)
	if err != nil {
		t.Fatal(err)
	}
	r := handshake(t, n1.JoinServerTLSConfig(), jt.ClientTLSConfig())
	if r.clientErr != nil || r.serverErr != nil {
		t.Fatalf("joining node cannot reach the member: client %v; server %v", r.clientErr, r.serverErr)
	}
	if r.serverPeer != "" {
		t.Errorf("server sees a node name %q for a joining node without a certificate", r.serverPeer)
	}
	key, err := NewNodeKey()
	if err != nil {
		t.Fatal(err)
	}
	csr, err := key.CSR("n2", []net.IP{net.ParseIP("127.0.0.2")}, "n2.example.com")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(csr), "PRIVATE KEY") {
		t.Fatal("the CSR carries a private key")
	}

	// On n1: check the token, sign, mark used (raft), answer.
	got, err := Verify(tok, lookup, "n2", n1.CAFingerprint(), now)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := a.ca.SignCSR(csr, got, now)
	if err != nil {
		t.Fatal(err)
	}
	got.MarkUsed(now)
	state[got.ID] = got
	if cert.Subject.CommonName != "n2" || !cert.IPAddresses[0].Equal(net.ParseIP("127.0.0.2")) || cert.DNSNames[1] != "n2.example.com" {
		t.Errorf("signed certificate: CN %q, IPs %v, DNS %v", cert.Subject.CommonName, cert.IPAddresses, cert.DNSNames)
	}
	if want := now.Add(DefaultNodeValidity); !cert.NotAfter.Equal(want.UTC().Truncate(time.Second)) {
		t.Errorf("NotAfter = %v, want %v", cert.NotAfter, want)
	}

	// On n2: assemble, save, and talk to n1 as a member.
	n2, err := key.Assemble(EncodeCertPEM(cert), a.ca.CertPEM(), jt.CAFingerprint)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := n2.Save(dir); err != nil {
		t.Fatal(err)
	}
	if n2, err = LoadNodeCert(dir); err != nil {
		t.Fatal(err)
	}
	r = handshake(t, n1.ServerTLSConfig(nil), n2.ClientTLSConfig("n1"))
	if r.clientErr != nil || r.serverErr != nil || r.serverPeer != "n2" {
		t.Fatalf("mutual TLS after the join: client %v; server %v; server sees %q", r.clientErr, r.serverErr, r.serverPeer)
	}
	r = handshake(t, n2.ServerTLSConfig(nil), n1.ClientTLSConfig("n2"))
	if r.clientErr != nil || r.serverErr != nil {
		t.Fatalf("mutual TLS the other way: client %v; server %v", r.clientErr, r.serverErr)
	}

	// The token works once.
	_, err = Verify(tok, lookup, "n2", n1.CAFingerprint(), now)
	wantErr(t, "second Verify", err, as[*TokenUsedError](), "already used")
	_, err = a.ca.SignCSR(csr, state[rec.ID], now)
	wantErr(t, "second SignCSR", err, as[*TokenUsedError]())
}

func TestSignCSRRefusals(t *testing.T) {
	t.Parallel()
	now := time.Now()
	a := newTestCluster(t, "alpha")
	_, rec, err := a.ca.IssueToken("n2", []string{"10.0.0.1:3372"}, 0, now)
	if err != nil {
		t.Fatal(err)
	}
	key, err := NewNodeKey()
	if err != nil {
		t.Fatal(err)
	}
	csrFor := func(name string, dns ...string) []byte {
		t.Helper()
		// Built by hand, as a misbehaving joiner could.
		tmpl := &x509.CertificateRequest{Subject: pkix.Name{CommonName: name}, DNSNames: dns}
		der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key.key.v)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: pemCSR, Bytes: der})
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "n2"}}, p384)
	if err != nil {
		t.Fatal(err)
	}
	p384CSR := pem.EncodeToMemory(&pem.Block{Type: pemCSR, Bytes: der})
	tampered := csrFor("n2")
	blk, _ := pem.Decode(tampered)
	blk.Bytes[len(blk.Bytes)-3] ^= 0xff // break the signature
	tampered = pem.EncodeToMemory(blk)
	used := rec
	used.MarkUsed(now)

	tests := []struct {
		name  string
		csr   []byte
		rec   TokenRecord
		now   time.Time
		match func(error) bool
		msg   []string
	}{
		{"ok", csrFor("n2"), rec, now, nil, nil},
		{"CN is another node", csrFor("n3"), rec, now, as[*TokenWrongNameError](), []string{`bound to node "n2"`, `presented by node "n3"`}},
		{"DNS name of another node", csrFor("n2", "n1"), rec, now, nil, []string{`DNS name "n1" is not allowed in the certificate of node "n2"`}},
		{"used record", csrFor("n2"), used, now, as[*TokenUsedError](), []string{"already used"}},
		{"expired record", csrFor("n2"), rec, now.Add(2 * time.Hour), as[*TokenExpiredError](), []string{"expired"}},
		{"P-384 key", p384CSR, rec, now, nil, []string{"P-384", "ECDSA P-256"}},
		{"bad signature", tampered, rec, now, nil, []string{"not signed by its own key"}},
		{"not PEM", []byte("hello"), rec, now, nil, []string{"no PEM block"}},
		{"a certificate instead", a.ca.CertPEM(), rec, now, nil, []string{`"CERTIFICATE", not a "CERTIFICATE REQUEST"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cert, err := a.ca.SignCSR(tt.csr, tt.rec, tt.now)
			wantErr(t, "SignCSR", err, tt.match, tt.msg...)
			if err != nil && cert != nil {
				t.Error("SignCSR returned a certificate with an error")
			}
		})
	}
}

func TestAssembleRefusals(t *testing.T) {
	t.Parallel()
	now := time.Now()
	a := newTestCluster(t, "alpha")
	b := newTestCluster(t, "beta")
	_, rec, err := a.ca.IssueToken("n2", []string{"10.0.0.1:3372"}, 0, now)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := NewNodeKey()
	other, _ := NewNodeKey()
	csr, err := key.CSR("n2", nil)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := a.ca.SignCSR(csr, rec, now)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := EncodeCertPEM(cert)

	_, err = key.Assemble(certPEM, b.ca.CertPEM(), a.ca.Fingerprint())
	wantErr(t, "CA other than the pinned one", err, as[*TokenWrongCAError](), a.ca.Fingerprint(), b.ca.Fingerprint(), `"beta"`)
	_, err = key.Assemble(certPEM, b.ca.CertPEM(), b.ca.Fingerprint())
	wantErr(t, "certificate not signed by the CA", err, nil, "not signed by the CA")
	_, err = other.Assemble(certPEM, a.ca.CertPEM(), a.ca.Fingerprint())
	wantErr(t, "certificate for another key", err, nil, "does not belong")
	if _, err := key.Assemble(certPEM, a.ca.CertPEM(), a.ca.Fingerprint()); err != nil {
		t.Errorf("Assemble of the right material: %v", err)
	}
}

// The joining node trusts a member only through the CA its token pins.
func TestJoinPinning(t *testing.T) {
	t.Parallel()
	a := newTestCluster(t, "alpha", "n1")
	b := newTestCluster(t, "beta", "n1")
	tok, _, err := a.ca.IssueToken("n2", []string{"127.0.0.1:3372"}, 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	jt, err := Decode(tok)
	if err != nil {
		t.Fatal(err)
	}

	// An impostor that sends cluster alpha's (public) CA certificate with
	// its own leaf, signed by beta's CA.
	impostor := b.nodes["n1"].JoinServerTLSConfig()
	impostor.Certificates[0].Certificate = [][]byte{b.nodes["n1"].cert.Raw, a.ca.cert.Raw}
	// A server that sends only its leaf.
	leafOnly := a.nodes["n1"].JoinServerTLSConfig()
	leafOnly.Certificates[0].Certificate = leafOnly.Certificates[0].Certificate[:1]

	tests := []struct {
		name   string
		server *tls.Config
		match  func(error) bool
		msg    []string
	}{
		{"the token's cluster", a.nodes["n1"].JoinServerTLSConfig(), nil, nil},
		{"the token's cluster, peer port", a.nodes["n1"].ServerTLSConfig(nil), nil, nil},
		{"another cluster", b.nodes["n1"].JoinServerTLSConfig(), as[*TokenWrongCAError](), []string{`cluster "alpha"`, a.ca.Fingerprint(), `"beta"`, b.ca.Fingerprint(), "man in the middle"}},
		{"impostor with the pinned CA", impostor, is(ErrForeignCA), []string{"pvehci cluster beta CA", a.ca.Fingerprint()}},
		{"no CA sent", leafOnly, as[*TokenWrongCAError](), []string{"sent no CA certificate"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := handshake(t, tt.server, jt.ClientTLSConfig())
			t.Logf("client: %v", r.clientErr)
			if tt.match == nil {
				// Through the peer port the member refuses a client
				// without a certificate, after the client trusted it.
				if strings.HasSuffix(tt.name, "peer port") {
					wantErr(t, "server", r.serverErr, nil, "didn't provide a certificate")
					return
				}
				if r.clientErr != nil || r.serverErr != nil {
					t.Fatalf("client %v; server %v", r.clientErr, r.serverErr)
				}
				return
			}
			wantErr(t, "client", r.clientErr, tt.match, tt.msg...)
		})
	}

	// VerifyServerChain on its own, with an expired member certificate.
	past := time.Now().Add(-2 * 365 * 24 * time.Hour)
	old, err := a.ca.IssueNode("n1", nil, nil, past, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	_, err = jt.VerifyServerChain([]*x509.Certificate{old.cert, a.ca.cert}, time.Now())
	wantErr(t, "expired member", err, is(ErrCertExpired), "expired at")
	ca, err := jt.VerifyServerChain([]*x509.Certificate{a.nodes["n1"].cert, a.ca.cert}, time.Now())
	if err != nil || Fingerprint(ca) != jt.CAFingerprint {
		t.Errorf("VerifyServerChain = %v, %v; want the pinned CA", ca, err)
	}
}
