package pki

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// testCluster is a CA and node certificates issued by it, valid now.
type testCluster struct {
	ca    *CA
	nodes map[string]*NodeCert
}

func newTestCluster(t *testing.T, name string, nodes ...string) *testCluster {
	t.Helper()
	now := time.Now()
	ca, err := NewCA(name, now)
	if err != nil {
		t.Fatal(err)
	}
	c := &testCluster{ca: ca, nodes: map[string]*NodeCert{}}
	for i, n := range nodes {
		ip := net.IPv4(10, 0, 0, byte(i+1))
		nc, err := ca.IssueNode(n, []net.IP{ip}, nil, now, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		c.nodes[n] = nc
	}
	return c
}

// handshakeResult is what each side of a loopback handshake saw.
type handshakeResult struct {
	serverErr, clientErr   error
	serverPeer, clientPeer string // PeerNodeName on each side, if it worked
}

// handshake connects a client to a server over 127.0.0.1 and completes the
// handshake. The server then writes one byte, which the client reads: with
// TLS 1.3 the client's Handshake returns before the server has checked the
// client certificate, so a refusal by the server shows on that read.
func handshake(t *testing.T, server, client *tls.Config) handshakeResult {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type srv struct {
		err  error
		peer string
	}
	done := make(chan srv, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- srv{err: err}
			return
		}
		defer c.Close()
		tc := tls.Server(c, server)
		tc.SetDeadline(time.Now().Add(5 * time.Second))
		if err := tc.Handshake(); err != nil {
			done <- srv{err: err}
			return
		}
		peer, _ := PeerNodeName(tc.ConnectionState())
		_, err = tc.Write([]byte{1})
		done <- srv{err: err, peer: peer}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	tc := tls.Client(c, client)
	tc.SetDeadline(time.Now().Add(5 * time.Second))
	var r handshakeResult
	r.clientErr = tc.Handshake()
	if r.clientErr == nil {
		r.clientPeer, _ = PeerNodeName(tc.ConnectionState())
		var b [1]byte
		_, r.clientErr = io.ReadFull(tc, b[:])
	}
	tc.Close()
	s := <-done
	r.serverErr, r.serverPeer = s.err, s.peer
	return r
}

// wantErr checks err against an expected sentinel or type (via match) and
// substrings of its message; a nil match and no substrings want no error.
func wantErr(t *testing.T, what string, err error, match func(error) bool, substrs ...string) {
	t.Helper()
	if match == nil && len(substrs) == 0 {
		if err != nil {
			t.Errorf("%s: unexpected error: %v", what, err)
		}
		return
	}
	if err == nil {
		t.Errorf("%s: no error, want one containing %q", what, substrs)
		return
	}
	if match != nil && !match(err) {
		t.Errorf("%s: error %T %q is not of the expected kind", what, err, err)
	}
	for _, s := range substrs {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("%s: error %q does not contain %q", what, err, s)
		}
	}
}

func is(target error) func(error) bool { return func(err error) bool { return errors.Is(err, target) } }

func as[T error]() func(error) bool {
	return func(err error) bool {
		var e T
		return errors.As(err, &e)
	}
}
