package ha

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// ALPN protocol names on the peer port. One mutual-TLS port carries both
// raft and the internal API, so a node needs one firewall rule and one
// certificate check, and the protocol is chosen before any byte of it flows.
const (
	ALPNRaft = "pvehci-raft/1"
	ALPNRPC  = "pvehci-rpc/1"
	// ALPNJoin is spoken by a node that has no certificate yet. Its
	// connections reach only the join handler, which authenticates the
	// caller by its join token.
	ALPNJoin = "pvehci-join/1"
)

// DefaultPeerPort is the TCP port of the node-to-node channel (raft and the
// internal API); 3370 and 3371 are the LINSTOR REST ports.
const DefaultPeerPort = 3372

const handshakeTimeout = 10 * time.Second

// Mux accepts mutual-TLS connections on the peer port and hands each to raft
// or to the internal API by its negotiated ALPN protocol.
type Mux struct {
	ln        net.Listener
	serverTLS *tls.Config
	clientTLS *tls.Config
	advertise net.Addr
	log       *slog.Logger

	raftConns *connQueue
	rpcConns  *connQueue
	joinConns *connQueue

	closeOnce sync.Once
	done      chan struct{}
	wg        sync.WaitGroup
}

// MuxConfig configures the peer port.
type MuxConfig struct {
	// ServerTLS must require and verify client certificates from the
	// cluster CA.
	ServerTLS *tls.Config
	// ClientTLS is what this node presents when it dials other members.
	ClientTLS *tls.Config
	// JoinTLS, when set, answers ALPNJoin connections without requiring a
	// client certificate (see JoinListener).
	JoinTLS *tls.Config
	// Advertise is the address other members reach this node at; the
	// listener may be bound to a wildcard.
	Advertise string
	Logger    *slog.Logger
}

// NewMux serves the peer port on ln.
func NewMux(ln net.Listener, cfg MuxConfig) (*Mux, error) {
	if cfg.ServerTLS == nil || cfg.ServerTLS.ClientAuth != tls.RequireAndVerifyClientCert {
		return nil, errors.New("peer port: the server TLS config must require and verify client certificates")
	}
	adv, err := net.ResolveTCPAddr("tcp", cfg.Advertise)
	if err != nil {
		return nil, fmt.Errorf("peer port: advertise address %q: %w", cfg.Advertise, err)
	}
	if adv.IP == nil || adv.IP.IsUnspecified() {
		return nil, fmt.Errorf("peer port: advertise address %q must be an address other nodes can dial, not a wildcard", cfg.Advertise)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	member := cfg.ServerTLS.Clone()
	member.NextProtos = []string{ALPNRaft, ALPNRPC}
	serverTLS := member
	if cfg.JoinTLS != nil {
		join := cfg.JoinTLS.Clone()
		join.NextProtos = []string{ALPNJoin}
		// The protocol is chosen in the ClientHello, before any certificate
		// is asked for, so a joining node never meets the member config.
		serverTLS = &tls.Config{
			MinVersion: tls.VersionTLS13,
			GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
				if slices.Contains(hello.SupportedProtos, ALPNJoin) {
					return join, nil
				}
				return member, nil
			},
		}
	}
	m := &Mux{
		ln:        ln,
		serverTLS: serverTLS,
		clientTLS: cfg.ClientTLS,
		advertise: adv,
		log:       log,
		raftConns: newConnQueue(ln.Addr()),
		rpcConns:  newConnQueue(ln.Addr()),
		joinConns: newConnQueue(ln.Addr()),
		done:      make(chan struct{}),
	}
	m.wg.Add(1)
	go m.serve()
	return m, nil
}

func (m *Mux) serve() {
	defer m.wg.Done()
	for {
		conn, err := m.ln.Accept()
		if err != nil {
			select {
			case <-m.done:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(50 * time.Millisecond)
				continue
			}
			m.log.Error("peer port accept failed; stopping", "err", err)
			return
		}
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			m.route(conn)
		}()
	}
}

func (m *Mux) route(raw net.Conn) {
	conn := tls.Server(raw, m.serverTLS)
	ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout)
	defer cancel()
	if err := conn.HandshakeContext(ctx); err != nil {
		m.log.Warn("peer connection refused: TLS handshake failed", "remote", raw.RemoteAddr().String(), "err", err)
		raw.Close()
		return
	}
	var (
		q   *connQueue
		out net.Conn = conn
	)
	switch proto := conn.ConnectionState().NegotiatedProtocol; proto {
	case ALPNRaft:
		q = m.raftConns
	case ALPNRPC, ALPNJoin:
		q = m.rpcConns
		if proto == ALPNJoin {
			q = m.joinConns
		}
		// net/http closes a *tls.Conn whose ALPN protocol has no
		// TLSNextProto handler; a wrapper that still offers
		// ConnectionState keeps HTTP/1.1 and Request.TLS.
		out = rpcConn{conn}
	default:
		m.log.Warn("peer connection refused: unknown protocol", "remote", raw.RemoteAddr().String(), "alpn", proto)
		conn.Close()
		return
	}
	if !q.put(out, m.done) {
		conn.Close()
	}
}

// rpcConn hides the *tls.Conn type from net/http (see route).
type rpcConn struct{ *tls.Conn }

// RaftTransport returns raft's network transport over this port.
func (m *Mux) RaftTransport(log *slog.Logger) raft.Transport {
	if log == nil {
		log = m.log
	}
	return raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  &raftStream{m: m},
		MaxPool: 3,
		Timeout: 10 * time.Second,
		Logger:  newHCLog(log, "raft-net"),
	})
}

// RPCListener is the listener an http.Server serves the internal API on.
func (m *Mux) RPCListener() net.Listener { return m.rpcConns }

// JoinListener is the listener for joining nodes (ALPNJoin); only the join
// handler may be served on it.
func (m *Mux) JoinListener() net.Listener { return m.joinConns }

// RPCClient returns an HTTP client that talks to other nodes' internal API
// over mutual TLS. URLs take the form https://<peer address>/....
func (m *Mux) RPCClient(timeout time.Duration) *http.Client {
	ct := m.clientTLS.Clone()
	ct.NextProtos = []string{ALPNRPC}
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			TLSClientConfig:     ct,
			ForceAttemptHTTP2:   false,
			MaxIdleConnsPerHost: 4,
			IdleConnTimeout:     90 * time.Second,
			TLSHandshakeTimeout: handshakeTimeout,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		},
	}
}

// Addr is the address other members reach this node at.
func (m *Mux) Addr() net.Addr { return m.advertise }

// Close stops accepting and closes the listener.
func (m *Mux) Close() error {
	var err error
	m.closeOnce.Do(func() {
		close(m.done)
		err = m.ln.Close()
		m.raftConns.Close()
		m.rpcConns.Close()
		m.joinConns.Close()
		m.wg.Wait()
	})
	return err
}

// raftStream is raft's StreamLayer over the mux.
type raftStream struct{ m *Mux }

func (s *raftStream) Accept() (net.Conn, error) { return s.m.raftConns.Accept() }
func (s *raftStream) Close() error              { return s.m.Close() }
func (s *raftStream) Addr() net.Addr            { return s.m.advertise }

func (s *raftStream) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ct := s.m.clientTLS.Clone()
	ct.NextProtos = []string{ALPNRaft}
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: timeout}, Config: ct}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	conn, err := d.DialContext(ctx, "tcp", string(address))
	if err != nil {
		return nil, fmt.Errorf("dialing raft peer %s: %w", address, err)
	}
	if p := conn.(*tls.Conn).ConnectionState().NegotiatedProtocol; p != ALPNRaft {
		conn.Close()
		return nil, fmt.Errorf("dialing raft peer %s: it does not speak %s (got %q); is it a pvehci node of the same version?", address, ALPNRaft, p)
	}
	return conn, nil
}

// connQueue is a net.Listener fed by the mux.
type connQueue struct {
	addr   net.Addr
	ch     chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newConnQueue(addr net.Addr) *connQueue {
	return &connQueue{addr: addr, ch: make(chan net.Conn), closed: make(chan struct{})}
}

func (q *connQueue) put(c net.Conn, done <-chan struct{}) bool {
	select {
	case q.ch <- c:
		return true
	case <-q.closed:
		return false
	case <-done:
		return false
	}
}

func (q *connQueue) Accept() (net.Conn, error) {
	select {
	case c := <-q.ch:
		return c, nil
	case <-q.closed:
		return nil, net.ErrClosed
	}
}

func (q *connQueue) Close() error {
	q.once.Do(func() { close(q.closed) })
	return nil
}

func (q *connQueue) Addr() net.Addr { return q.addr }
