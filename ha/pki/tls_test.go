package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"strings"
	"testing"
	"time"
)

// craftLeaf signs a node certificate with the given extended key usages,
// which IssueNode never produces, to test that the checks look at them.
func craftLeaf(t *testing.T, ca *CA, name string, eku ...x509.ExtKeyUsage) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          newSerial(),
		Subject:               pkix.Name{CommonName: name},
		DNSNames:              []string{name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           eku,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key.v)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der, ca.cert.Raw}, PrivateKey: key}
}

func TestMutualTLS(t *testing.T) {
	t.Parallel()
	a := newTestCluster(t, "alpha", "n1", "n2", "n3")
	b := newTestCluster(t, "beta", "n1", "n2")

	// Certificates issued two years ago for one year: expired now.
	past := time.Now().Add(-2 * 365 * 24 * time.Hour)
	expired := func(name string) *NodeCert {
		n, err := a.ca.IssueNode(name, nil, nil, past, 365*24*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	expiredN1, expiredN2 := expired("n1"), expired("n2")

	// A client that presents b's n2 certificate to a's server regardless
	// of the CAs the server asks for, and does not check the server.
	foreignClient := b.nodes["n2"].ClientTLSConfig("n1")
	foreignCert := b.nodes["n2"].tlsCertificate()
	foreignClient.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &foreignCert, nil }
	foreignClient.VerifyConnection = nil

	noCertClient := a.nodes["n2"].ClientTLSConfig("n1")
	noCertClient.Certificates = nil

	tls12Client := a.nodes["n2"].ClientTLSConfig("n1")
	tls12Client.MinVersion, tls12Client.MaxVersion = tls.VersionTLS12, tls.VersionTLS12

	futureClient := a.nodes["n2"].ClientTLSConfig("n1")
	futureClient.Time = func() time.Time { return time.Now().Add(2 * time.Hour) }

	clientOnlyServer := a.nodes["n1"].ServerTLSConfig(nil)
	clientOnlyServer.Certificates = []tls.Certificate{craftLeaf(t, a.ca, "n1", x509.ExtKeyUsageClientAuth)}

	serverOnlyClient := a.nodes["n2"].ClientTLSConfig("n1")
	serverOnlyClient.Certificates = []tls.Certificate{craftLeaf(t, a.ca, "n2", x509.ExtKeyUsageServerAuth)}

	refuseN2 := func(name string, _ *x509.Certificate) error {
		if name == "n2" {
			return errors.New("n2 was removed from the cluster")
		}
		return nil
	}

	tests := []struct {
		name           string
		server, client *tls.Config
		// nil and empty: the handshake must succeed.
		clientMatch func(error) bool
		clientMsg   []string
		serverMsg   []string
	}{
		{name: "same CA, named peer", server: a.nodes["n1"].ServerTLSConfig(nil), client: a.nodes["n2"].ClientTLSConfig("n1")},
		{name: "same CA, name in other case", server: a.nodes["n1"].ServerTLSConfig(nil), client: a.nodes["n2"].ClientTLSConfig("N1")},
		{name: "same CA, any member", server: a.nodes["n1"].ServerTLSConfig(nil), client: a.nodes["n2"].ClientTLSConfig(AnyMember)},
		{name: "peer check accepts", server: a.nodes["n1"].ServerTLSConfig(refuseN2), client: a.nodes["n3"].ClientTLSConfig("n1")},
		{
			name: "server from another CA", server: b.nodes["n1"].ServerTLSConfig(nil), client: a.nodes["n2"].ClientTLSConfig("n1"),
			clientMatch: is(ErrForeignCA), clientMsg: []string{`"pvehci cluster beta CA"`, `"pvehci cluster alpha CA"`, b.ca.Fingerprint(), a.ca.Fingerprint(), "another cluster"},
			serverMsg: []string{"bad certificate"},
		},
		{
			name: "client from another CA", server: a.nodes["n1"].ServerTLSConfig(nil), client: foreignClient,
			clientMatch: func(err error) bool { return err != nil }, serverMsg: []string{"unknown authority"},
		},
		{
			name: "dialling n2 reaches n3", server: a.nodes["n3"].ServerTLSConfig(nil), client: a.nodes["n1"].ClientTLSConfig("n2"),
			clientMatch: is(ErrWrongPeer), clientMsg: []string{`dialled node "n2"`, `certificate of node "n3"`, a.nodes["n3"].Fingerprint()},
		},
		{
			name: "server certificate expired", server: expiredN1.ServerTLSConfig(nil), client: a.nodes["n2"].ClientTLSConfig("n1"),
			clientMatch: is(ErrCertExpired), clientMsg: []string{`node "n1"`, "expired at " + expiredN1.NotAfter().UTC().Format(time.RFC3339)},
		},
		{
			name: "client certificate expired", server: a.nodes["n1"].ServerTLSConfig(nil), client: expiredN2.ClientTLSConfig("n1"),
			clientMatch: func(err error) bool { return err != nil }, serverMsg: []string{"expired"},
		},
		{
			name: "config time after expiry", server: a.nodes["n1"].ServerTLSConfig(nil), client: futureClient,
			clientMatch: is(ErrCertExpired), clientMsg: []string{"expired at"},
		},
		{
			name: "client without certificate", server: a.nodes["n1"].ServerTLSConfig(nil), client: noCertClient,
			clientMatch: func(err error) bool { return err != nil }, serverMsg: []string{"certificate"},
		},
		{
			name: "TLS 1.2 refused", server: a.nodes["n1"].ServerTLSConfig(nil), client: tls12Client,
			clientMatch: func(err error) bool { return err != nil }, serverMsg: []string{"version"},
		},
		{
			name: "peer check refuses", server: a.nodes["n1"].ServerTLSConfig(refuseN2), client: a.nodes["n2"].ClientTLSConfig("n1"),
			clientMatch: func(err error) bool { return err != nil }, serverMsg: []string{`refusing node "n2"`, "removed"},
		},
		{
			name: "server certificate without server usage", server: clientOnlyServer, client: a.nodes["n2"].ClientTLSConfig("n1"),
			clientMatch: is(ErrPeerUntrusted), clientMsg: []string{"usage"},
		},
		{
			name: "client certificate without client usage", server: a.nodes["n1"].ServerTLSConfig(nil), client: serverOnlyClient,
			clientMatch: func(err error) bool { return err != nil }, serverMsg: []string{"usage"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := handshake(t, tt.server, tt.client)
			t.Logf("client: %v\nserver: %v", r.clientErr, r.serverErr)
			if tt.clientMatch == nil {
				if r.clientErr != nil || r.serverErr != nil {
					t.Fatalf("handshake failed: client: %v; server: %v", r.clientErr, r.serverErr)
				}
				if !strings.EqualFold(r.clientPeer, "n1") {
					t.Errorf("client sees peer %q, want n1", r.clientPeer)
				}
				if r.serverPeer == "" {
					t.Errorf("server sees no peer name")
				}
				return
			}
			wantErr(t, "client", r.clientErr, tt.clientMatch, tt.clientMsg...)
			if r.serverErr == nil {
				t.Errorf("server accepted the connection")
			}
			wantErr(t, "server", r.serverErr, func(err error) bool { return err != nil }, tt.serverMsg...)
		})
	}
}

func TestServerSeesClientName(t *testing.T) {
	t.Parallel()
	a := newTestCluster(t, "alpha", "n1", "n2")
	r := handshake(t, a.nodes["n1"].ServerTLSConfig(nil), a.nodes["n2"].ClientTLSConfig("n1"))
	if r.serverErr != nil || r.clientErr != nil {
		t.Fatal(r.serverErr, r.clientErr)
	}
	if r.serverPeer != "n2" || r.clientPeer != "n1" {
		t.Errorf("server sees %q (want n2), client sees %q (want n1)", r.serverPeer, r.clientPeer)
	}
}

func TestServerConfigIsMutual(t *testing.T) {
	t.Parallel()
	a := newTestCluster(t, "alpha", "n1")
	for name, cfg := range map[string]*tls.Config{
		"server": a.nodes["n1"].ServerTLSConfig(nil),
		"client": a.nodes["n1"].ClientTLSConfig("n2"),
		"join":   a.nodes["n1"].JoinServerTLSConfig(),
	} {
		if cfg.MinVersion != tls.VersionTLS13 {
			t.Errorf("%s config allows TLS below 1.3", name)
		}
		if len(cfg.Certificates) != 1 || len(cfg.Certificates[0].Certificate) != 2 {
			t.Errorf("%s config does not present the node certificate and the CA", name)
		}
	}
	// ha.NewMux insists on this.
	if got := a.nodes["n1"].ServerTLSConfig(nil).ClientAuth; got != tls.RequireAndVerifyClientCert {
		t.Errorf("server ClientAuth = %v, want RequireAndVerifyClientCert", got)
	}
}

func TestPeerNodeName(t *testing.T) {
	t.Parallel()
	a := newTestCluster(t, "alpha", "n1")
	if _, err := PeerNodeName(tls.ConnectionState{}); err == nil || !strings.Contains(err.Error(), "no certificate") {
		t.Errorf("no peer certificate: err = %v", err)
	}
	got, err := PeerNodeName(tls.ConnectionState{PeerCertificates: []*x509.Certificate{a.nodes["n1"].Certificate()}})
	if err != nil || got != "n1" {
		t.Errorf("PeerNodeName = %q, %v; want n1", got, err)
	}
	bad := &x509.Certificate{Subject: pkix.Name{CommonName: "not a node"}}
	if _, err := PeerNodeName(tls.ConnectionState{PeerCertificates: []*x509.Certificate{bad}}); err == nil {
		t.Error("a common name that is no node name was accepted")
	}
}
