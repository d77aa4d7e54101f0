package ha

import (
	"errors"
	"net"
	"net/http"
	"testing"
)

// A forward is sent again only when it provably never left this node; a
// request cut off after it was written may have been applied.
func TestNotSent(t *testing.T) {
	closed := freePort(t)
	_, err := http.Get("http://" + closed + "/")
	if err == nil || !notSent(err) {
		t.Errorf("refused connection: notSent(%v) = false, want true", err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		buf := make([]byte, 512)
		conn.Read(buf) // the request arrived
		conn.Close()
	}()
	_, err = http.Post("http://"+ln.Addr().String()+"/", "application/octet-stream", nil)
	if err == nil || notSent(err) {
		t.Errorf("connection cut after the request: notSent(%v) = true, want false", err)
	}
	if notSent(errors.New("some other failure")) {
		t.Error("a plain error counted as not sent")
	}
}
