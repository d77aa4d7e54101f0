package localapi

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRoundTripAndErrors(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "run", "pvehci.sock")
	ln, err := Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("socket mode = %o, want 600", perm)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /echo", func(w http.ResponseWriter, r *http.Request) {
		var in map[string]string
		if err := DecodeJSON(r, &in); err != nil {
			WriteError(w, http.StatusBadRequest, err)
			return
		}
		WriteJSON(w, http.StatusOK, map[string]string{"got": in["say"]})
	})
	mux.HandleFunc("GET /fail", func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, http.StatusConflict, errors.New("token already used; create a new one"))
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	defer srv.Close()

	c := NewClient(sock)
	var out map[string]string
	if err := c.Do(context.Background(), "POST", "/echo", map[string]string{"say": "hi"}, &out); err != nil {
		t.Fatal(err)
	}
	if out["got"] != "hi" {
		t.Errorf("echo = %v", out)
	}
	err = c.Do(context.Background(), "GET", "/fail", nil, nil)
	var apiErr *Error
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusConflict || !strings.Contains(apiErr.Message, "already used") {
		t.Errorf("error = %#v, want the daemon's 409 message", err)
	}

	// A second daemon must not steal the socket of a live one.
	if _, err := Listen(sock); err == nil || !strings.Contains(err.Error(), "already listening") {
		t.Errorf("second Listen = %v, want refusal", err)
	}
}

func TestStaleSocketIsReplacedAndDeadDaemonExplained(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "pvehci.sock")
	ln, err := Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	// Leave the socket file behind, as a killed daemon would.
	ln.(interface{ SetUnlinkOnClose(bool) }).SetUnlinkOnClose(false)
	ln.Close()
	err = NewClient(sock).Do(context.Background(), "GET", "/x", nil, nil)
	if err == nil || !strings.Contains(err.Error(), "daemon is not running") || !strings.Contains(err.Error(), "systemctl start pvehci") {
		t.Errorf("dead daemon error = %v", err)
	}
	ln2, err := Listen(sock)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	ln2.Close()

	notSock := filepath.Join(t.TempDir(), "file")
	os.WriteFile(notSock, []byte("x"), 0o600)
	if _, err := Listen(notSock); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("Listen over a regular file = %v", err)
	}
}
