package sim

import (
	"bytes"
	"errors"
	"strings"
	"syscall"
	"testing"

	"github.com/pvehci/pvehci/internal/run"
	"github.com/pvehci/pvehci/storage/drbd"
)

// TestDRBDDualPrimary is live migration (guide 2.2, 11.8): with
// allow-two-primaries, which the Proxmox plugin sets on every resource,
// the target opens the device for writing while the source is still
// Primary; both are Primary and writes from either reach the other.
func TestDRBDDualPrimary(t *testing.T) {
	t.Parallel()
	twoNodes := func(net []drbd.Option, names ...string) drbd.ResourceConfig {
		cfg := drbd.ResourceConfig{Quorum: "off", Net: net}
		for i, n := range names {
			cfg.Nodes = append(cfg.Nodes, diskfulNode(n, i))
		}
		return cfg
	}
	allow := []drbd.Option{{Name: "allow-two-primaries", Value: "yes"}}

	t.Run("allowed", func(t *testing.T) {
		cl := newCluster(t, twoNodes(allow, "pve1", "pve2"))
		cl.upAndSkipSync("pve1", "pve2")
		src, err := cl.hosts["pve1"].OpenDRBD("/dev/drbd1000", true)
		if err != nil {
			t.Fatal(err)
		}
		dst, err := cl.hosts["pve2"].OpenDRBD("/dev/drbd1000", true) // the migration target
		if err != nil {
			t.Fatalf("open for writing on the second node: %v", err)
		}
		for _, h := range []string{"pve1", "pve2"} {
			r := cl.observe(h)
			if r.Role != drbd.RolePrimary || r.Connections[0].PeerRole != drbd.RolePrimary {
				t.Errorf("%s: role %s, peer %s; want both Primary", h, r.Role, r.Connections[0].PeerRole)
			}
		}
		a, b := bytes.Repeat([]byte("A"), bmBlock), bytes.Repeat([]byte("B"), bmBlock)
		if _, err := dst.WriteAt(b, 0); err != nil {
			t.Fatal(err)
		}
		if _, err := src.WriteAt(a, bmBlock); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 2*bmBlock)
		for name, d := range map[string]*DRBDDevice{"pve1": src, "pve2": dst} {
			if _, err := d.ReadAt(got, 0); err != nil || !bytes.Equal(got, append(b, a...)) {
				t.Errorf("%s reads %q… (%v), want B then A", name, got[:8], err)
			}
		}
		// The source closes (migration done), then the target: each
		// last close demotes its own node.
		src.Close()
		if r := cl.observe("pve1"); r.Role != drbd.RoleSecondary {
			t.Errorf("pve1 after close: %s", r.Role)
		}
		if r := cl.observe("pve2"); r.Role != drbd.RolePrimary {
			t.Errorf("pve2 before its close: %s", r.Role)
		}
		dst.Close()
		if r := cl.observe("pve2"); r.Role != drbd.RoleSecondary {
			t.Errorf("pve2 after close: %s", r.Role)
		}
		// drbdadm primary on both, then secondary.
		cl.mustAdm("pve1", "primary")
		cl.mustAdm("pve2", "primary")
		cl.mustAdm("pve1", "secondary")
		cl.mustAdm("pve2", "secondary")
	})

	t.Run("at most two", func(t *testing.T) {
		cl := newCluster(t, twoNodes(allow, "pve1", "pve2", "pve3"))
		cl.upAndSkipSync("pve1", "pve2", "pve3")
		cl.mustAdm("pve1", "primary")
		cl.mustAdm("pve2", "primary")
		// Guide 11.8: "limited to exactly 2 Primaries".
		if res, err := cl.adm("pve3", "primary"); run.ExitCode(err) != drbdPromoteFail ||
			!strings.Contains(string(res.Stderr), "(-1) Multiple primaries not allowed by config") {
			t.Errorf("third primary: %v %s", err, res.Stderr)
		}
		if _, err := cl.hosts["pve3"].OpenDRBD("/dev/drbd1000", true); !errors.Is(err, syscall.EROFS) {
			t.Errorf("third open for writing: %v, want EROFS", err)
		}
	})

	t.Run("refused without the option", func(t *testing.T) {
		cl := newCluster(t, twoNodes(nil, "pve1", "pve2"))
		cl.upAndSkipSync("pve1", "pve2")
		src, err := cl.hosts["pve1"].OpenDRBD("/dev/drbd1000", true)
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		if _, err := cl.hosts["pve2"].OpenDRBD("/dev/drbd1000", true); !errors.Is(err, syscall.EROFS) {
			t.Errorf("second open for writing: %v, want EROFS", err)
		}
		if res, err := cl.adm("pve2", "primary"); run.ExitCode(err) != drbdPromoteFail ||
			!strings.Contains(string(res.Stderr), "(-1) Multiple primaries not allowed by config") {
			t.Errorf("drbdadm primary: %v %s", err, res.Stderr)
		}
		if r := cl.observe("pve2"); r.Role != drbd.RoleSecondary || r.MayPromote {
			t.Errorf("pve2: role %s, may_promote %v", r.Role, r.MayPromote)
		}
	})
}
