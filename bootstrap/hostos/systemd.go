package hostos

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	sddbus "github.com/coreos/go-systemd/v22/dbus"

	"github.com/pvehci/pvehci/bootstrap"
)

// DBusSystemd manages units through systemd's D-Bus API rather than by
// running systemctl: a restart then reports the job's own result, and
// waiting for it honours the context.
type DBusSystemd struct {
	conn *sddbus.Conn
}

var _ bootstrap.Systemd = (*DBusSystemd)(nil)

// NewDBusSystemd connects to systemd on the system bus. Close it when done.
// The connection lives as long as ctx: give it the command's context, not a
// short dial timeout, or later calls fail with "connection closed by user".
func NewDBusSystemd(ctx context.Context) (*DBusSystemd, error) {
	conn, err := sddbus.NewSystemConnectionContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("connecting to systemd over D-Bus: %w", err)
	}
	return &DBusSystemd{conn: conn}, nil
}

// Close closes the D-Bus connection.
func (s *DBusSystemd) Close() { s.conn.Close() }

// Reload makes systemd read unit files again (systemctl daemon-reload).
func (s *DBusSystemd) Reload(ctx context.Context) error {
	if err := s.conn.ReloadContext(ctx); err != nil {
		return fmt.Errorf("reloading systemd unit files: %w", err)
	}
	return nil
}

// Enable enables unit files persistently (in /etc, like systemctl enable).
// Units are names of unit files in systemd's unit path ("pvehci.service"),
// or absolute paths to unit files outside it, as EnableUnitFiles takes.
func (s *DBusSystemd) Enable(ctx context.Context, units ...string) error {
	if len(units) == 0 {
		return nil
	}
	what := strings.Join(units, ", ")
	for _, u := range units {
		// systemd answers a relative path with a bare "Invalid argument";
		// say which unit and why.
		if strings.Contains(u, "/") && !filepath.IsAbs(u) {
			return fmt.Errorf("enabling %s: %q is neither a unit name nor an absolute path", what, u)
		}
	}
	hasInstall, _, err := s.conn.EnableUnitFilesContext(ctx, units, false, false)
	if err != nil {
		return fmt.Errorf("enabling %s: %w", what, err)
	}
	// systemctl only warns here, but a unit without an [Install] section
	// is not enabled at all and would not start at boot; for bootstrap
	// that is a broken unit file, not success.
	if !hasInstall {
		return fmt.Errorf("enabling %s: no [Install] section, so nothing was enabled", what)
	}
	return nil
}

// Restart restarts unit, or starts it when it is not running, and waits
// for the job to finish.
func (s *DBusSystemd) Restart(ctx context.Context, unit string) error {
	// Buffered: go-systemd delivers the result from its signal loop and
	// blocks every other job of the connection until it is received,
	// which would happen forever if ctx ends first.
	ch := make(chan string, 1)
	if _, err := s.conn.RestartUnitContext(ctx, unit, "replace", ch); err != nil {
		return fmt.Errorf("restarting %s: %w", unit, err)
	}
	return waitJob(ctx, unit, ch)
}

// waitJob waits for the result of unit's restart job.
func waitJob(ctx context.Context, unit string, ch <-chan string) error {
	select {
	case <-ctx.Done():
		return fmt.Errorf("restarting %s: waiting for the job: %w", unit, ctx.Err())
	case result := <-ch:
		if result == "done" {
			return nil
		}
		return fmt.Errorf("restarting %s: job result %s; see journalctl -u %s", unit, result, unit)
	}
}

// State reports a unit's load, active and unit file state. A unit systemd
// does not know is not an error: its LoadState is not-found.
func (s *DBusSystemd) State(ctx context.Context, unit string) (bootstrap.UnitState, error) {
	props, err := s.conn.GetUnitPropertiesContext(ctx, unit)
	if err != nil {
		return bootstrap.UnitState{}, fmt.Errorf("reading the state of %s: %w", unit, err)
	}
	return unitState(props), nil
}

func unitState(props map[string]any) bootstrap.UnitState {
	str := func(k string) string {
		v, _ := props[k].(string)
		return v
	}
	return bootstrap.UnitState{
		LoadState:     str("LoadState"),
		ActiveState:   str("ActiveState"),
		UnitFileState: str("UnitFileState"),
	}
}
