package bootstrap_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pvehci/pvehci/internal/validate"
	"github.com/pvehci/pvehci/internal/validate/validatetest"
)

// TestBootstrappedFilesPassTheirTools takes the files a full bootstrap
// left on the simulated nodes and gives each to the real program that
// reads it on a Proxmox node.
func TestBootstrappedFilesPassTheirTools(t *testing.T) {
	tc := newTestCluster(t)
	for _, n := range []string{"pve1", "pve2", "pve3"} {
		tc.bootstrapNode(n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	root := tc.nodes["pve2"].Root

	t.Run("ifupdown2", func(t *testing.T) {
		validatetest.Check(t, validate.Ifupdown2(ctx, filepath.Join(root, "etc/network/interfaces"), validate.IfupdownOptions{}))
		validatetest.Check(t, validate.Ifupdown2(ctx, filepath.Join(root, "etc/network/interfaces.d/pvehci"), validate.IfupdownOptions{ConnectedModeMTU: []string{"ib0"}}))
	})
	t.Run("systemd", func(t *testing.T) {
		validatetest.Check(t, validate.SystemdVerify(ctx, validate.SystemdOptions{Executables: []string{"/usr/bin/pvehci"},
			Units: []string{"network-online.target", "pve-guests.service"}}, filepath.Join(root, "etc/systemd/system/pvehci.service")))
	})
	t.Run("corosync on every node", func(t *testing.T) {
		// The file pvecm create and add, then bootstrap's link 1 edit,
		// left in pmxcfs: corosync -t as each of the three nodes.
		validatetest.Check(t, validate.CorosyncAllNodes(ctx, filepath.Join(tc.world.Dir(), "pmxcfs/corosync.conf")))
	})
	t.Run("apt", func(t *testing.T) {
		if _, err := exec.LookPath("apt-get"); err != nil {
			t.Skip("apt-get not installed")
		}
		out, err := exec.CommandContext(ctx, "apt-get", "--print-uris", "update",
			"-o", "Dir::Etc::SourceList="+filepath.Join(root, "etc/apt/sources.list.d/linbit.list"),
			"-o", "Dir::Etc::SourceParts=/nonexistent", "-o", "Dir::State::Lists="+t.TempDir()).CombinedOutput()
		if err != nil || strings.Contains(string(out), "E: ") {
			t.Fatalf("apt rejects linbit.list: %v\n%s", err, out)
		}
		if !strings.Contains(string(out), "'http://packages.linbit.com/public/dists/proxmox-8/drbd-9/binary-amd64/Packages.xz'") {
			t.Errorf("apt would not fetch LINBIT's proxmox-8 drbd-9 index:\n%s", out)
		}
	})
}
