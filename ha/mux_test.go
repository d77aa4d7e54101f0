package ha

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// testCA is a throwaway certificate authority for transport tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

func (ca *testCA) tlsConfigs(t *testing.T, name string) (server, client *tls.Config) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{name}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		KeyUsage:    x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	pair := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	server = &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{pair}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: ca.pool}
	client = &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{pair}, RootCAs: ca.pool, ServerName: "127.0.0.1"}
	return server, client
}

func listenLoopback(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// A three-node cluster whose raft runs over the mutual-TLS peer port, with
// the internal API sharing the port.
func TestRaftAndRPCShareTheMutualTLSPort(t *testing.T) {
	ca := newTestCA(t)
	type node struct {
		mux *Mux
		fsm *listFSM
		m   *Member
	}
	var nodes []*node
	var servers []Server
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("n%d", i)
		st, ct := ca.tlsConfigs(t, name)
		ln := listenLoopback(t)
		mux, err := NewMux(ln, MuxConfig{ServerTLS: st, ClientTLS: ct, Advertise: ln.Addr().String()})
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "%s sees %s", name, r.TLS.PeerCertificates[0].Subject.CommonName)
		})}
		go srv.Serve(mux.RPCListener())
		t.Cleanup(func() { srv.Close() })
		fsm := &listFSM{}
		m, err := Open(Config{NodeID: name, DataDir: t.TempDir(), Transport: mux.RaftTransport(nil), FSM: fsm, Timing: fastTiming()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Shutdown(context.Background()) })
		nodes = append(nodes, &node{mux: mux, fsm: fsm, m: m})
		servers = append(servers, Server{ID: name, Address: mux.Addr().String(), Voter: true})
	}
	if err := nodes[0].m.Bootstrap(servers); err != nil {
		t.Fatal(err)
	}
	var leader *node
	waitFor(t, "a leader over TLS", func() bool {
		for _, n := range nodes {
			if n.m.IsLeader() {
				leader = n
				return true
			}
		}
		return false
	})
	if _, _, err := leader.m.Apply(context.Background(), []byte("over-tls")); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		waitFor(t, "replication over TLS", func() bool { return strings.Join(n.fsm.list(), ",") == "over-tls" })
	}

	// The internal API answers on the same port and sees the caller's node name.
	resp, err := nodes[0].mux.RPCClient(5 * time.Second).Get("https://" + nodes[1].mux.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "n2 sees n1" {
		t.Errorf("internal API said %q, want %q", body, "n2 sees n1")
	}

	// A client with a certificate from another CA is refused at the handshake.
	stranger := newTestCA(t)
	_, foreignClient := stranger.tlsConfigs(t, "intruder")
	foreignClient.RootCAs = ca.pool // it trusts us; we must not trust it
	foreignClient.NextProtos = []string{ALPNRPC}
	conn, err := tls.Dial("tcp", nodes[0].mux.Addr().String(), foreignClient)
	if err == nil {
		// TLS 1.3 reports a rejected client certificate on the first read.
		_, err = conn.Read(make([]byte, 1))
		conn.Close()
	}
	if err == nil {
		t.Fatal("a certificate from a foreign CA was accepted on the peer port")
	}
	// And a client without any certificate as well.
	_, err = nodes[0].mux.RPCClient(time.Second).Get("https://" + nodes[0].mux.Addr().String() + "/")
	if err != nil {
		t.Fatalf("own client must be accepted: %v", err)
	}
	noCert := &tls.Config{RootCAs: ca.pool, ServerName: "127.0.0.1", NextProtos: []string{ALPNRPC}, MinVersion: tls.VersionTLS13}
	if conn, err := tls.Dial("tcp", nodes[0].mux.Addr().String(), noCert); err == nil {
		_, err = conn.Read(make([]byte, 1))
		conn.Close()
		if err == nil {
			t.Fatal("a client without a certificate was accepted")
		}
	}
}

func TestMuxRefusesWildcardAdvertiseAndLaxTLS(t *testing.T) {
	ca := newTestCA(t)
	st, ct := ca.tlsConfigs(t, "n1")
	ln := listenLoopback(t)
	defer ln.Close()
	if _, err := NewMux(ln, MuxConfig{ServerTLS: st, ClientTLS: ct, Advertise: "0.0.0.0:3372"}); err == nil || !strings.Contains(err.Error(), "wildcard") {
		t.Errorf("wildcard advertise: err = %v", err)
	}
	lax := st.Clone()
	lax.ClientAuth = tls.VerifyClientCertIfGiven
	if _, err := NewMux(ln, MuxConfig{ServerTLS: lax, ClientTLS: ct, Advertise: ln.Addr().String()}); err == nil || !strings.Contains(err.Error(), "require and verify client certificates") {
		t.Errorf("lax TLS: err = %v", err)
	}
}
