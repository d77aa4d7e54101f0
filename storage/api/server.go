package api

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/pvehci/pvehci/internal/clock"
)

// LINSTOR's REST ports (linstor-common consts.json DFLT_CTRL_PORT_PLAIN
// and DFLT_CTRL_PORT_SSL), which the Proxmox plugin and the linstor
// client assume when the controller is given without a port.
const (
	DefaultHTTPPort  = 3370
	DefaultHTTPSPort = 3371
	// PortDisabled turns a listener off.
	PortDisabled = -1
)

// ServerConfig says where and how the REST API listens.
type ServerConfig struct {
	Logger *slog.Logger
	// Clock stamps the answers to refused requests; default real time.
	Clock clock.Clock
	// Address is the host or IP to bind, normally the node's management
	// address; "" binds every interface (LINSTOR's default "::").
	Address string
	// HTTPPort is the plain HTTP port: 0 selects 3370, PortDisabled none.
	HTTPPort int
	// HTTPSPort is the HTTPS port: 0 selects 3371, PortDisabled none.
	// HTTPS is served only when CertFile and KeyFile are set, as LINSTOR
	// serves it only with a keystore.
	HTTPSPort int
	// CertFile and KeyFile are the server's PEM certificate (chain) and
	// key.
	CertFile, KeyFile string
	// ClientCAFile, when set, is a PEM bundle of the CAs whose client
	// certificates are accepted, and a verified client certificate is
	// then required on HTTPS for everything but /health, as LINSTOR does
	// for the plugin's apicrt/apikey/apica. Plain HTTP then serves only
	// /health, so that port 3370 is no way around the certificate.
	ClientCAFile string
	// BearerToken, when set, must be sent as "Authorization: Bearer
	// <token>" on both listeners for everything but /health.
	BearerToken string
	// HTTPListener and HTTPSListener are already-bound TCP sockets to
	// serve instead of binding Address and the ports (systemd socket
	// activation, tests). TLS is added to HTTPSListener here.
	HTTPListener, HTTPSListener net.Listener
	// ShutdownTimeout bounds the graceful shutdown when Serve's context
	// ends; default 10 s. Requests still running then are cut off.
	ShutdownTimeout time.Duration
}

// Server is the REST API's plain and TLS listeners.
type Server struct {
	log             *slog.Logger
	shutdownTimeout time.Duration
	plain, tls      *http.Server
	plainLn, tlsLn  net.Listener
	closeOnce       sync.Once
}

// Listen checks cfg, loads the certificates and binds the listeners, so
// that a bad configuration fails the daemon's start with an error that
// names the setting, rather than the first client. Serve then serves h.
func Listen(h http.Handler, cfg ServerConfig) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 10 * time.Second
	}
	log := cfg.Logger.With("component", "linstor-api")
	tlsConf, err := serverTLS(cfg)
	if err != nil {
		return nil, err
	}
	if err := checkToken(cfg.BearerToken); err != nil {
		return nil, err
	}
	wantPlain := cfg.HTTPListener != nil || cfg.HTTPPort != PortDisabled
	wantTLS := tlsConf != nil && (cfg.HTTPSListener != nil || cfg.HTTPSPort != PortDisabled)
	if !wantPlain && !wantTLS {
		return nil, errors.New("starting the REST API: no listener is enabled; enable the HTTP port, or the HTTPS port with a certificate and key")
	}

	policy := newAuthPolicy(cfg.ClientCAFile != "", cfg.BearerToken)
	ah := &authHandler{next: h, policy: policy, clk: cfg.Clock, log: log}
	// TLS handshake failures (a client without a certificate from the
	// client CA) end up here; they are the client's problem, not ours.
	errLog := slog.NewLogLogger(log.Handler(), slog.LevelInfo)
	s := &Server{log: log, shutdownTimeout: cfg.ShutdownTimeout}
	if wantPlain {
		s.plainLn = cfg.HTTPListener
		if s.plainLn == nil {
			if s.plainLn, err = bind(cfg.Address, cfg.HTTPPort, DefaultHTTPPort, "HTTP"); err != nil {
				return nil, err
			}
		}
		s.plain = NewServer(s.plainLn.Addr().String(), ah)
		s.plain.ErrorLog = errLog
	}
	if wantTLS {
		s.tlsLn = cfg.HTTPSListener
		if s.tlsLn == nil {
			if s.tlsLn, err = bind(cfg.Address, cfg.HTTPSPort, DefaultHTTPSPort, "HTTPS"); err != nil {
				s.Close()
				return nil, err
			}
		}
		s.tls = NewServer(s.tlsLn.Addr().String(), ah)
		s.tls.TLSConfig = tlsConf
		s.tls.ErrorLog = errLog
	}
	return s, nil
}

func bind(host string, port, dflt int, what string) (net.Listener, error) {
	if port == 0 {
		port = dflt
	}
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("starting the REST API: binding the %s port %s: %w (is a LINSTOR controller or another pvehci still running?)", what, addr, err)
	}
	return ln, nil
}

// serverTLS builds the HTTPS configuration, or nil when no certificate
// is configured.
func serverTLS(cfg ServerConfig) (*tls.Config, error) {
	switch {
	case cfg.CertFile == "" && cfg.KeyFile == "":
		if cfg.ClientCAFile != "" {
			return nil, errors.New("starting the REST API: a client CA is configured but no server certificate; client certificates need HTTPS, so set the certificate and key files too")
		}
		if cfg.HTTPSListener != nil {
			return nil, errors.New("starting the REST API: an HTTPS listener was passed but no server certificate; set the certificate and key files")
		}
		return nil, nil
	case cfg.CertFile == "" || cfg.KeyFile == "":
		return nil, errors.New("starting the REST API: HTTPS needs both a certificate file and a key file; set the missing one")
	}
	cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("starting the REST API: loading the HTTPS certificate %s and key %s: %w (both must be PEM and belong together)", cfg.CertFile, cfg.KeyFile, err)
	}
	conf := &tls.Config{
		// TLS 1.2 is the floor: the Proxmox plugin's IO::Socket::SSL on
		// current Debian speaks 1.2 and 1.3; nothing older is safe.
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
	}
	if cfg.ClientCAFile != "" {
		pem, err := os.ReadFile(cfg.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("starting the REST API: reading the client CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("starting the REST API: the client CA file %s holds no PEM certificate; give the CA that signed the clients' certificates", cfg.ClientCAFile)
		}
		conf.ClientCAs = pool
		// A certificate that is presented must verify, or the handshake
		// fails; a missing one is refused by authHandler with a 401 that
		// says what to configure (a handshake failure says nothing),
		// and leaves /health open as LINSTOR does.
		conf.ClientAuth = tls.VerifyClientCertIfGiven
	}
	return conf, nil
}

// checkToken refuses tokens that cannot travel in a header unchanged.
func checkToken(t string) error {
	for _, c := range t {
		if c <= ' ' || c == 0x7f {
			return errors.New("starting the REST API: the bearer token contains spaces or control characters (a trailing newline from the token file?); use a token of printable characters only")
		}
	}
	return nil
}

// HTTPAddr is the plain listener's address, nil when there is none.
func (s *Server) HTTPAddr() net.Addr {
	if s.plainLn == nil {
		return nil
	}
	return s.plainLn.Addr()
}

// HTTPSAddr is the TLS listener's address, nil when there is none.
func (s *Server) HTTPSAddr() net.Addr {
	if s.tlsLn == nil {
		return nil
	}
	return s.tlsLn.Addr()
}

// Serve serves until ctx ends, then shuts down gracefully within
// ShutdownTimeout. It returns nil after a shutdown by ctx, or the error
// that stopped a listener (which also stops the other).
func (s *Server) Serve(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, 2)
	n := 0
	if s.plain != nil {
		n++
		go func() { errs <- s.plain.Serve(s.plainLn) }()
		s.log.Info("REST API listening", "proto", "http", "addr", s.plainLn.Addr().String())
	}
	if s.tls != nil {
		n++
		go func() { errs <- s.tls.ServeTLS(s.tlsLn, "", "") }()
		s.log.Info("REST API listening", "proto", "https", "addr", s.tlsLn.Addr().String(),
			"client_certs", s.tls.TLSConfig.ClientCAs != nil)
	}
	var first error
	select {
	case <-ctx.Done():
	case err := <-errs:
		n--
		if !errors.Is(err, http.ErrServerClosed) {
			first = fmt.Errorf("serving the REST API: %w", err)
		}
	}
	sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), s.shutdownTimeout)
	defer scancel()
	for _, srv := range []*http.Server{s.plain, s.tls} {
		if srv == nil {
			continue
		}
		if err := srv.Shutdown(sctx); err != nil {
			// Requests that outlive the grace period (a long device
			// wait) are cut off rather than holding up the daemon.
			s.log.Warn("REST API shutdown timed out; closing remaining connections", "err", err)
			_ = srv.Close()
		}
	}
	for ; n > 0; n-- {
		if err := <-errs; first == nil && err != nil && !errors.Is(err, http.ErrServerClosed) {
			first = fmt.Errorf("serving the REST API: %w", err)
		}
	}
	return first
}

// Close releases the listeners of a Server that is not serving (Serve
// closes them itself).
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		for _, ln := range []net.Listener{s.plainLn, s.tlsLn} {
			if ln != nil {
				_ = ln.Close()
			}
		}
	})
}
