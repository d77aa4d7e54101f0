package integration

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The daemon speaks systemd's notify protocol as a Type=notify service with
// WatchdogSec= expects: READY=1 once it serves, WATCHDOG=1 at half the
// interval, STOPPING=1 on SIGTERM.
func TestDaemonNotifiesSystemd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real daemon; skipped with -short")
	}
	dir := t.TempDir()
	sockPath := filepath.Join(dir, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sockPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	addr := freeAddr(t)
	cmd := exec.Command(pvehciBinary(t), "daemon", "--node", "n1", "--data-dir", filepath.Join(dir, "data"),
		"--peer-listen", addr, "--advertise", addr, "--socket", filepath.Join(dir, "api.sock"))
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sockPath, "WATCHDOG_USEC=400000", "WATCHDOG_PID=")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer cmd.Process.Kill()

	got := map[string]bool{}
	buf := make([]byte, 4096)
	read := func(want string, within time.Duration) {
		t.Helper()
		deadline := time.Now().Add(within)
		for !got[want] {
			conn.SetReadDeadline(deadline)
			n, err := conn.Read(buf)
			if err != nil {
				t.Fatalf("waiting for %s from the daemon: %v (got %v)", want, err, got)
			}
			for _, line := range strings.Split(string(buf[:n]), "\n") {
				key, _, _ := strings.Cut(line, "=")
				got[line] = true
				got[key] = true
			}
		}
	}
	read("READY=1", 20*time.Second)
	if !got["STATUS"] {
		read("STATUS", 5*time.Second)
	}
	read("WATCHDOG=1", 2*time.Second)
	cmd.Process.Signal(syscall.SIGTERM)
	read("STOPPING=1", 10*time.Second)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("daemon exit after SIGTERM: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("daemon did not exit within 20s of SIGTERM")
	}
}
