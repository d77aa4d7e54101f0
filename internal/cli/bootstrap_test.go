package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBootstrapRefusesBeforeTouchingTheHost covers what the command checks
// before it connects to systemd or reads the host.
func TestBootstrapRefusesBeforeTouchingTheHost(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "cluster.yaml")
	if err := os.WriteFile(file, []byte("cluster: hci1\nnetworks:\n  management: 10.0.0.0/24\nnodes:\n  - name: pve1\n    management: 10.0.0.1/24\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	broken := filepath.Join(dir, "broken.yaml")
	if err := os.WriteFile(broken, []byte("cluster: hci1\nnetworks:\n  management: 10.0.0.0/24\nnodes:\n  - name: pve1\n    management: 10.9.0.1/24\n    disk: [/dev/sdb]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name     string
		args     []string
		wantCode int
		want     []string
	}{
		{"plan with yes", []string{"bootstrap", "--plan", "--yes", "--config", file}, ExitUsage, []string{"--plan changes nothing"}},
		{"missing file", []string{"bootstrap", "--config", filepath.Join(dir, "none.yaml"), "--node", "pve1"}, ExitError, []string{"none.yaml", "docs/bootstrap-cluster-file.md"}},
		{"unknown node", []string{"bootstrap", "--config", file, "--node", "pve9"}, ExitUsage, []string{"has no node pve9 (it has pve1)", "--node"}},
		{"broken file", []string{"bootstrap", "--config", broken, "--node", "pve1"}, ExitError, []string{"disk", "line 7"}},
		{"stray argument", []string{"bootstrap", "now"}, ExitUsage, []string{"takes no arguments"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, tt.args...)
			if code != tt.wantCode {
				t.Errorf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.wantCode, stdout, stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
		})
	}
}
