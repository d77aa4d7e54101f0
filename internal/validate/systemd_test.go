package validate_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pvehci/pvehci/internal/validate"
	"github.com/pvehci/pvehci/internal/validate/validatetest"
)

// pvehciUnitDeps is what pvehci.service may rely on: its own binary and the
// units other packages install.
var pvehciUnitDeps = validate.SystemdOptions{
	Executables: []string{"/usr/bin/pvehci"},
	Units:       []string{"network-online.target", "corosync.service"},
}

func TestSystemdVerifyAccepts(t *testing.T) {
	t.Parallel()
	t.Run("daemon", func(t *testing.T) {
		t.Parallel()
		validatetest.Check(t, validate.SystemdVerify(testContext(t), pvehciUnitDeps, fixture(t, "pvehci.service")))
	})
	t.Run("timer with its service and sibling", func(t *testing.T) {
		t.Parallel()
		// pvehci-scrub.service requires pvehci.service, which it finds
		// because the siblings are verified together.
		units := []string{fixture(t, "pvehci.service"), fixture(t, "pvehci-scrub.service"), fixture(t, "pvehci-scrub.timer")}
		validatetest.Check(t, validate.SystemdVerify(testContext(t), pvehciUnitDeps, units...))
	})
}

func TestSystemdVerifyRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		replace []string
		opts    validate.SystemdOptions
		exit    int
		want    []string
	}{
		{
			// Exit 0 for this and the next two: only stderr tells.
			name:    "unknown key",
			replace: []string{"Restart=on-failure", "Restart=on-failure\nFrobnicate=yes"},
			exit:    0,
			want:    []string{"pvehci.service:12: Unknown key 'Frobnicate' in section [Service], ignoring."},
		},
		{
			name:    "Type=oneshoot",
			replace: []string{"Type=notify", "Type=oneshoot"},
			exit:    0,
			want:    []string{"Failed to parse service type, ignoring: oneshoot"},
		},
		{
			name:    "bad TimeoutStartSec",
			replace: []string{"TimeoutStartSec=90s", "TimeoutStartSec=5 parsecs"},
			exit:    0,
			want:    []string{"Failed to parse TimeoutStartSec= parameter, ignoring: 5 parsecs"},
		},
		{
			name:    "ExecStart binary missing",
			replace: []string{"ExecStart=/usr/bin/pvehci daemon", "ExecStart=/usr/bin/pvehcid daemon"},
			exit:    1,
			want:    []string{"Command /usr/bin/pvehcid is not executable"},
		},
		{
			name:    "undeclared executable",
			replace: []string{"ExecStart=/usr/bin/pvehci daemon", "ExecStartPre=/usr/sbin/drbdadm adjust all\nExecStart=/usr/bin/pvehci daemon"},
			exit:    1,
			want:    []string{"Command /usr/sbin/drbdadm is not executable"},
		},
		{
			name: "required unit not declared",
			opts: validate.SystemdOptions{Executables: []string{"/usr/bin/pvehci"}},
			exit: 1,
			want: []string{"Unit corosync.service not found."},
		},
		{
			name:    "no ExecStart",
			replace: []string{"ExecStart=/usr/bin/pvehci daemon\n", ""},
			exit:    1,
			want:    []string{"Service has no ExecStart=, ExecStop=, or SuccessAction=. Refusing."},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			opts := tt.opts
			if opts.Executables == nil {
				opts = pvehciUnitDeps
			}
			unit := fixture(t, "pvehci.service", tt.replace...)
			err := validate.SystemdVerify(testContext(t), opts, unit)
			rej := validatetest.Rejected(t, err, tt.want...)
			if rej.Check != "systemd-analyze verify" || rej.ExitCode != tt.exit {
				t.Errorf("rejected by %q with exit %d, want systemd-analyze verify with exit %d", rej.Check, rej.ExitCode, tt.exit)
			}
			// Messages name the caller's file, not the copy in the tree.
			if out := rej.Output(); strings.Contains(out, "pvehci-validate-") {
				t.Errorf("message names the temporary tree:\n%s", out)
			}
		})
	}
}

func TestSystemdVerifyMessageNamesFile(t *testing.T) {
	t.Parallel()
	unit := fixture(t, "pvehci.service", "Type=notify", "Type=oneshoot")
	err := validate.SystemdVerify(testContext(t), pvehciUnitDeps, unit)
	validatetest.Rejected(t, err, unit+":9: Failed to parse service type")
}

// The package's tools are found on PATH or in sbin; systemd-analyze lives
// in /usr/bin, so an empty PATH makes it missing. Not parallel: it changes
// the environment.
func TestToolMissing(t *testing.T) {
	unit := filepath.Join("testdata", "pvehci.service")
	if _, err := os.Stat("/sbin/systemd-analyze"); err == nil {
		t.Skip("systemd-analyze is in /sbin here, so it cannot be hidden by PATH")
	}
	t.Setenv("PATH", t.TempDir())
	err := validate.SystemdVerify(testContext(t), pvehciUnitDeps, unit)
	var missing *validate.ToolMissingError
	if !errors.As(err, &missing) {
		t.Fatalf("err = %v, want a *ToolMissingError", err)
	}
	if missing.Tool != "systemd-analyze" || missing.AptLine() != "apt-get install --no-install-recommends systemd" {
		t.Errorf("ToolMissingError = %+v with apt line %q", missing, missing.AptLine())
	}
	if want := "systemd-analyze is not installed (install it with: apt-get install --no-install-recommends systemd)"; err.Error() != want {
		t.Errorf("message = %q, want %q", err, want)
	}
}
