package hostos

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pvehci/pvehci/bootstrap"
)

// needSystemd skips unless this machine runs systemd with a system bus;
// CI containers and the sandbox usually do not.
func needSystemd(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/run/dbus/system_bus_socket"); err != nil {
		t.Skipf("no D-Bus system bus here: %v", err)
	}
	comm, err := os.ReadFile("/proc/1/comm")
	if err != nil {
		t.Skipf("cannot tell what PID 1 is: %v", err)
	}
	if c := strings.TrimSpace(string(comm)); c != "systemd" {
		t.Skipf("PID 1 is %s, not systemd", c)
	}
}

// TestDBusSystemdState only reads: tests must not start, stop or enable
// anything on the machine they run on.
func TestDBusSystemdState(t *testing.T) {
	needSystemd(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := NewDBusSystemd(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	var st bootstrap.UnitState
	for _, unit := range []string{"dbus.service", "systemd-journald.service"} {
		st, err = s.State(ctx, unit)
		if err != nil {
			t.Fatal(err)
		}
		if st.LoadState == "loaded" && st.ActiveState == "active" {
			break
		}
	}
	if st.LoadState != "loaded" || st.ActiveState != "active" {
		t.Errorf("neither dbus.service nor systemd-journald.service is loaded and active: last %+v", st)
	}

	missing, err := s.State(ctx, "pvehci-no-such-unit.service")
	if err != nil {
		t.Fatal(err)
	}
	if missing.LoadState != "not-found" || missing.ActiveState != "inactive" {
		t.Errorf("unknown unit: %+v, want not-found and inactive", missing)
	}
}

func TestWaitJob(t *testing.T) {
	ch := make(chan string, 1)
	ch <- "done"
	if err := waitJob(context.Background(), "pvehci.service", ch); err != nil {
		t.Errorf("done: %v", err)
	}

	ch <- "failed"
	err := waitJob(context.Background(), "pvehci.service", ch)
	if want := "restarting pvehci.service: job result failed; see journalctl -u pvehci.service"; err == nil || err.Error() != want {
		t.Errorf("failed: %v, want %q", err, want)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := waitJob(ctx, "pvehci.service", make(chan string)); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("timeout: %v, want DeadlineExceeded", err)
	}
}

func TestUnitState(t *testing.T) {
	got := unitState(map[string]any{
		"LoadState": "loaded", "ActiveState": "failed", "UnitFileState": "enabled", "MainPID": uint32(7),
	})
	want := bootstrap.UnitState{LoadState: "loaded", ActiveState: "failed", UnitFileState: "enabled"}
	if got != want {
		t.Errorf("unitState = %+v, want %+v", got, want)
	}
	// A unit without a file has UnitFileState "".
	if got := unitState(map[string]any{"LoadState": "not-found", "ActiveState": "inactive", "UnitFileState": ""}); got.UnitFileState != "" {
		t.Errorf("UnitFileState = %q", got.UnitFileState)
	}
}

func TestNewDBusSystemdWithoutBus(t *testing.T) {
	if _, err := os.Stat("/run/dbus/system_bus_socket"); err == nil {
		t.Skip("this machine has a system bus")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := NewDBusSystemd(ctx)
	if err == nil {
		s.Close()
		t.Fatal("connected without a system bus socket")
	}
	if !strings.HasPrefix(err.Error(), "connecting to systemd over D-Bus: ") {
		t.Errorf("error = %q", err)
	}
}
