package api_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	lc "github.com/LINBIT/golinstor/client"
	"github.com/pvehci/pvehci/storage/api"
	"github.com/pvehci/pvehci/storage/api/apitest"
)

// testCA is a throw-away CA that signs server and client certificates.
type testCA struct {
	t    *testing.T
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{t: t, cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns a PEM certificate and key for name, for a server (with
// 127.0.0.1 as its address) or a client.
func (ca *testCA) issue(name string, server bool) (certPEM, keyPEM []byte) {
	ca.t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		ca.t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		ca.t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		ca.t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func localListener(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// serve starts the REST API over an apitest backend on loopback
// listeners with cfg and stops it when the test ends.
func serve(t *testing.T, cfg api.ServerConfig) *api.Server {
	t.Helper()
	cfg.HTTPListener = localListener(t)
	if cfg.CertFile != "" {
		cfg.HTTPSListener = localListener(t)
	}
	h := api.New(apitest.New(), api.Options{})
	srv, err := api.Listen(h, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return srv
}

// pkiFiles writes a server certificate and a client CA to dir.
type pkiFiles struct {
	ca, rogue                *testCA
	cert, key, clientCA      string
	clientCert, clientKey    []byte
	rogueCert, rogueKey      []byte
	serverCAPEM, clientCAPEM []byte
}

func newPKI(t *testing.T) pkiFiles {
	dir := t.TempDir()
	ca, rogue := newTestCA(t, "pvehci test CA"), newTestCA(t, "somebody else's CA")
	sc, sk := ca.issue("controller", true)
	p := pkiFiles{ca: ca, rogue: rogue, serverCAPEM: ca.pem, clientCAPEM: ca.pem,
		cert: writeFile(t, dir, "server.crt", sc), key: writeFile(t, dir, "server.key", sk),
		clientCA: writeFile(t, dir, "client-ca.crt", ca.pem)}
	p.clientCert, p.clientKey = ca.issue("pve1", false)
	p.rogueCert, p.rogueKey = rogue.issue("pve1", false)
	return p
}

// golinstorClient builds a golinstor client the way a user configures
// one: through its environment variables (t.Setenv), plus options.
func golinstorClient(t *testing.T, base string, env map[string]string, opts ...lc.Option) *lc.Client {
	t.Helper()
	for _, k := range []string{lc.UserCertEnv, lc.UserKeyEnv, lc.RootCAEnv, lc.UserCertFileEnv, lc.UserKeyFileEnv,
		lc.RootCAFileEnv, lc.BearerTokenFileEnv, lc.ControllerUrlEnv, lc.UsernameEnv, lc.PasswordEnv} {
		t.Setenv(k, "")
		os.Unsetenv(k) // golinstor tests presence, not emptiness
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	c, err := lc.NewClient(append([]lc.Option{lc.BaseURL(u), lc.Log(nil)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestServeClientCertificates(t *testing.T) {
	p := newPKI(t)
	srv := serve(t, api.ServerConfig{CertFile: p.cert, KeyFile: p.key, ClientCAFile: p.clientCA})
	httpsURL := "https://" + srv.HTTPSAddr().String()
	httpURL := "http://" + srv.HTTPAddr().String()

	for _, tc := range []struct {
		name    string
		base    string
		env     map[string]string
		wantErr string // "" = success
	}{
		{"client certificate from the client CA", httpsURL,
			map[string]string{lc.RootCAEnv: string(p.serverCAPEM), lc.UserCertEnv: string(p.clientCert), lc.UserKeyEnv: string(p.clientKey)}, ""},
		{"no client certificate", httpsURL,
			map[string]string{lc.RootCAEnv: string(p.serverCAPEM)}, "no client certificate was presented"},
		{"certificate from another CA", httpsURL,
			map[string]string{lc.RootCAEnv: string(p.serverCAPEM), lc.UserCertEnv: string(p.rogueCert), lc.UserKeyEnv: string(p.rogueKey)}, "certificate"},
		{"plain HTTP bypassing the certificate", httpURL, nil, "requires HTTPS with a client certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := golinstorClient(t, tc.base, tc.env)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := c.Nodes.GetAll(ctx)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("list nodes: %v", err)
			case tc.wantErr != "" && err == nil:
				t.Fatal("list nodes succeeded, want refusal")
			case tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr):
				t.Fatalf("list nodes: %v, want an error mentioning %q", err, tc.wantErr)
			}
			if tc.wantErr == "" {
				v, err := c.Controller.GetVersion(ctx)
				if err != nil || v.RestApiVersion == "" {
					t.Fatalf("version = %+v, %v", v, err)
				}
			}
		})
	}

	t.Run("health needs no certificate, on either port", func(t *testing.T) {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(p.serverCAPEM)
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
		defer hc.CloseIdleConnections()
		for _, u := range []string{httpsURL + "/health", httpURL + "/health"} {
			if code, _ := get(t, hc, u, ""); code != http.StatusOK {
				t.Errorf("GET %s = %d, want 200", u, code)
			}
		}
	})

	t.Run("TLS 1.1 is refused", func(t *testing.T) {
		conn, err := tls.Dial("tcp", srv.HTTPSAddr().String(), &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS11})
		if err == nil {
			conn.Close()
			t.Fatal("TLS 1.1 handshake succeeded")
		}
	})
}

func get(t *testing.T, hc *http.Client, u, auth string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("WWW-Authenticate") + "\n" + string(body)
}

func TestServeBearerToken(t *testing.T) {
	const token = "pvehci-token-0123456789abcdef"
	p := newPKI(t)
	srv := serve(t, api.ServerConfig{CertFile: p.cert, KeyFile: p.key, BearerToken: token})
	httpsURL := "https://" + srv.HTTPSAddr().String()
	httpURL := "http://" + srv.HTTPAddr().String()
	tlsEnv := map[string]string{lc.RootCAEnv: string(p.serverCAPEM)}

	for _, tc := range []struct {
		name    string
		base    string
		env     map[string]string
		token   string // "" = none
		wantErr string
	}{
		{"right token over HTTP", httpURL, nil, token, ""},
		{"right token over HTTPS", httpsURL, tlsEnv, token, ""},
		{"wrong token", httpURL, nil, "pvehci-token-0123456789abcdeX", "the bearer token is not valid"},
		{"wrong token over HTTPS", httpsURL, tlsEnv, "nope", "the bearer token is not valid"},
		{"no token", httpURL, nil, "", "requires a bearer token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var opts []lc.Option
			if tc.token != "" {
				opts = append(opts, lc.BearerToken(tc.token))
			}
			c := golinstorClient(t, tc.base, tc.env, opts...)
			_, err := c.ResourceDefinitions.GetAll(context.Background(), lc.RDGetAllRequest{})
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("list resource definitions: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("list resource definitions: %v, want an error mentioning %q", err, tc.wantErr)
			}
		})
	}

	hc := &http.Client{}
	defer hc.CloseIdleConnections()
	for _, tc := range []struct {
		name, path, auth string
		want             int
		wantBody         []string
		notBody          []string
	}{
		{"health is open", "/health", "", http.StatusOK, nil, nil},
		{"missing token", "/v1/nodes", "", http.StatusUnauthorized,
			[]string{`Bearer realm="pvehci"`, `"ret_code":-`, "Authorization: Bearer"}, []string{token}},
		{"wrong token is not echoed", "/v1/nodes", "Bearer wrong-secret-value", http.StatusUnauthorized,
			[]string{"invalid_token"}, []string{"wrong-secret-value", token}},
		{"other scheme", "/v1/nodes", "Basic dXNlcjpwYXNz", http.StatusUnauthorized, []string{"requires a bearer token"}, nil},
		{"scheme is case-insensitive", "/v1/nodes", "bearer " + token, http.StatusOK, nil, nil},
		{"unknown paths need the token too", "/v1/nope", "", http.StatusUnauthorized, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := get(t, hc, httpURL+tc.path, tc.auth)
			if code != tc.want {
				t.Fatalf("GET %s = %d, want %d\n%s", tc.path, code, tc.want, body)
			}
			for _, s := range tc.wantBody {
				if !strings.Contains(body, s) {
					t.Errorf("answer lacks %q:\n%s", s, body)
				}
			}
			for _, s := range tc.notBody {
				if strings.Contains(body, s) {
					t.Errorf("answer contains %q:\n%s", s, body)
				}
			}
		})
	}
}

func TestListenRefusesBadConfig(t *testing.T) {
	p := newPKI(t)
	dir := t.TempDir()
	notPEM := writeFile(t, dir, "garbage", []byte("not a certificate"))
	for _, tc := range []struct {
		name string
		cfg  api.ServerConfig
		want string
	}{
		{"client CA without server certificate", api.ServerConfig{ClientCAFile: p.clientCA}, "no server certificate"},
		{"certificate without key", api.ServerConfig{CertFile: p.cert}, "both a certificate file and a key file"},
		{"key that is not PEM", api.ServerConfig{CertFile: p.cert, KeyFile: notPEM}, "loading the HTTPS certificate"},
		{"client CA that is not PEM", api.ServerConfig{CertFile: p.cert, KeyFile: p.key, ClientCAFile: notPEM}, "holds no PEM certificate"},
		{"token with a newline", api.ServerConfig{BearerToken: "secret\n"}, "control characters"},
		{"nothing to listen on", api.ServerConfig{HTTPPort: api.PortDisabled}, "no listener is enabled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.HTTPSPort = api.PortDisabled
			if tc.cfg.HTTPPort == 0 {
				tc.cfg.HTTPListener = localListener(t)
				defer tc.cfg.HTTPListener.Close()
			}
			srv, err := api.Listen(api.New(apitest.New(), api.Options{}), tc.cfg)
			if err == nil {
				srv.Close()
				t.Fatalf("Listen succeeded, want an error mentioning %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Listen: %v, want an error mentioning %q", err, tc.want)
			}
		})
	}
}

func TestListenBindsAddress(t *testing.T) {
	// Port 0 is the default 3370/3371, so bind-by-address is tested
	// with an explicit free port.
	probe := localListener(t)
	port := probe.Addr().(*net.TCPAddr).Port
	probe.Close()
	srv, err := api.Listen(api.New(apitest.New(), api.Options{}),
		api.ServerConfig{Address: "127.0.0.1", HTTPPort: port, HTTPSPort: api.PortDisabled})
	if err != nil {
		t.Fatal(err)
	}
	if got := srv.HTTPAddr().String(); got != probe.Addr().String() || srv.HTTPSAddr() != nil {
		t.Fatalf("bound %v and %v, want %v and no HTTPS", got, srv.HTTPSAddr(), probe.Addr())
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	if code, _ := get(t, http.DefaultClient, "http://"+srv.HTTPAddr().String()+"/health", ""); code != http.StatusOK {
		t.Fatalf("health = %d", code)
	}
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("Serve after cancel: %v", err)
	}
	if _, err := net.Dial("tcp", srv.HTTPAddr().String()); err == nil {
		t.Fatal("listener still accepts after shutdown")
	}
}
