package drbd

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pvehci/pvehci/internal/validate"
	"github.com/pvehci/pvehci/internal/validate/validatetest"
)

// TestValidateRejects covers what drbdadm 9.22 lets through
// (testbed-local.md §2) and the rest of the package's own checks. Each
// case changes a valid config in one place.
func TestValidateRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		change func(c *ResourceConfig)
		want   string
	}{
		{"bad IPv4", func(c *ResourceConfig) { c.Nodes[1].Interfaces[0].Address = "10.0.0.256" }, `address "10.0.0.256" is not an IPv4 or IPv6 address`},
		{"host name as address", func(c *ResourceConfig) { c.Nodes[1].Interfaces[0].Address = "pve1.example" }, "is not an IPv4 or IPv6 address"},
		{"bad CIDR", func(c *ResourceConfig) { c.Nodes[1].Interfaces[0].Address = "10.0.0.1/33" }, "with a prefix length"},
		{"zone", func(c *ResourceConfig) { c.Nodes[1].Interfaces[0].Address = "fe80::1%eth0" }, "has a zone"},
		{"unspecified", func(c *ResourceConfig) { c.Nodes[1].Interfaces[0].Address = "0.0.0.0" }, "cannot be connected to"},
		{"mapped", func(c *ResourceConfig) { c.Nodes[1].Interfaces[0].Address = "::ffff:10.0.0.1" }, "write it as 10.0.0.1"},
		{"port 0", func(c *ResourceConfig) { c.Nodes[0].Port = 0 }, "port 0 is not a TCP port (1-65535)"},
		{"port 77890", func(c *ResourceConfig) { c.Nodes[0].Port = 77890 }, "port 77890 is not a TCP port"},
		{"minor too big", func(c *ResourceConfig) {
			for i := range c.Nodes {
				c.Nodes[i].Volumes[0].Minor = 2000000
			}
		}, "minor 2000000 is outside 0-1048575"},
		{"minor negative", func(c *ResourceConfig) { c.Nodes[0].Volumes[0].Minor = -1 }, "minor -1 is outside"},
		{"node-id 32", func(c *ResourceConfig) { c.Nodes[0].NodeID = 32 }, "node-id 32 is outside 0-31"},
		{"node-id twice", func(c *ResourceConfig) { c.Nodes[2].NodeID = 0 }, "node-id 0 is also used by"},
		{"unknown transport", func(c *ResourceConfig) { c.Transport = "carrier-pigeon" }, `transport "carrier-pigeon" is not a DRBD transport`},
		{"upper-case transport", func(c *ResourceConfig) { c.Transport = "RDMA" }, "set DrbdOptions/Net/transport to tcp or rdma"},
		{"meta-disk on diskless", func(c *ResourceConfig) { c.Nodes[0].Volumes[0].MetaDisk = MetaDiskInt }, "a diskless volume has no meta-data"},
		{"disk on diskless node", func(c *ResourceConfig) { c.Nodes[0].Volumes[0].Disk = "/dev/pve/x" }, "the node is diskless but the volume has disk"},
		{"diskful without disk", func(c *ResourceConfig) { c.Nodes[1].Volumes[0].Disk = "" }, "the node is diskful but the volume has no disk"},
		{"diskful without meta-disk", func(c *ResourceConfig) { c.Nodes[1].Volumes[0].MetaDisk = "" }, "meta-disk is missing"},
		{"disk path with space", func(c *ResourceConfig) { c.Nodes[1].Volumes[0].Disk = "/dev/my disk" }, "is not an absolute device path"},
		{"resource name keyword", func(c *ResourceConfig) { c.Name = "all" }, "reserved by DRBD"},
		{"resource name with space", func(c *ResourceConfig) { c.Name = "vm 100" }, "invalid resource definition name"},
		{"host name with underscore", func(c *ResourceConfig) { c.Nodes[1].Name = "pve_1" }, "invalid node name"},
		{"host twice", func(c *ResourceConfig) { c.Nodes[2].Name = "PVE3" }, "is listed twice"},
		{"no nodes", func(c *ResourceConfig) { c.Nodes = nil }, "it has no nodes"},
		{"no interfaces", func(c *ResourceConfig) { c.Nodes[1].Interfaces = nil }, "has no network interfaces"},
		{"volume mismatch", func(c *ResourceConfig) { c.Nodes[1].Volumes[0].Number = 1 }, "every node needs the same volume numbers"},
		{"protocol D", func(c *ResourceConfig) { c.Protocol = "D" }, `protocol "D" is not a DRBD protocol`},
		{"quorum lots", func(c *ResourceConfig) { c.Quorum = "lots" }, `quorum "lots" is unknown`},
		{"on-no-quorum explode", func(c *ResourceConfig) { c.OnNoQuorum = "explode" }, `on-no-quorum "explode" is unknown`},
		{"verify-alg injection", func(c *ResourceConfig) { c.VerifyAlg = "crc32c; }" }, "is not a kernel hash name"},
		{"secret with quote", func(c *ResourceConfig) { c.SharedSecret = `ab"c` }, "the shared secret must be"},
		{"unknown net option", func(c *ResourceConfig) { c.Net = []Option{{"max-bufers", "8000"}} }, `net option "max-bufers" is not one DRBD 9 knows`},
		{"typed option in list", func(c *ResourceConfig) { c.Net = []Option{{"protocol", "A"}} }, "net option protocol has a field of its own (Protocol)"},
		{"option twice", func(c *ResourceConfig) { c.Disk = append(c.Disk, Option{"rs-discard-granularity", "4096"}) }, "disk option rs-discard-granularity is given twice"},
		{"option value injection", func(c *ResourceConfig) { c.Disk[0].Value = "yes; }" }, "has characters a DRBD value cannot carry"},
		{"max-buffers range", func(c *ResourceConfig) { c.MaxBuffers = 10 }, "max-buffers 10 is outside DRBD's range"},
		{"rcvbuf range", func(c *ResourceConfig) { c.RcvbufSize = 11 << 20 }, "rcvbuf-size 11534336 is outside"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := goldenConfigs()["tiebreaker"]
			tt.change(&cfg)
			err := cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, tt.want)
			}
			if _, rerr := Render(cfg); rerr == nil {
				t.Error("Render accepted what Validate refuses")
			}
		})
	}
}

// TestDrbdadmMissesWhatValidateCatches proves that the own checks are
// needed: drbdadm 9.22 accepts each of these files. If a future drbdadm
// starts refusing one, this test says so and the own check may go.
func TestDrbdadmMissesWhatValidateCatches(t *testing.T) {
	t.Parallel()
	golden, err := os.ReadFile(filepath.Join("testdata", "tiebreaker.res"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, old, new string
	}{
		{"bad IPv4", "10.0.0.2:7000", "10.0.0.256:7000"},
		{"minor too big", "minor 1000;", "minor 2000000;"},
		{"unknown transport", `transport "tcp";`, `transport "carrier-pigeon";`},
		{"meta-disk on diskless", "disk none;", "disk none;\n            meta-disk internal;"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := string(golden)
			if !strings.Contains(s, tt.old) {
				t.Fatalf("golden lacks %q", tt.old)
			}
			path := filepath.Join(t.TempDir(), "r.res")
			if err := os.WriteFile(path, []byte(strings.ReplaceAll(s, tt.old, tt.new)), 0o644); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, err := validate.DRBD(ctx, "pve3", path)
			validatetest.Environment(t, err)
			if err != nil {
				t.Errorf("drbdadm now rejects this file; Validate's own check still stands, but update this test and the package doc: %v", err)
			}
		})
	}
}

func TestValidateAcceptsGoldens(t *testing.T) {
	t.Parallel()
	for name, cfg := range goldenConfigs() {
		if err := cfg.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}
