package drbd

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pvehci/pvehci/internal/validate"
	"github.com/pvehci/pvehci/internal/validate/validatetest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata from the current output")

const testSecret = "Zm9vYmFyYmF6cXV4MTIzNDU2"

func ifc(name, addr string) Interface { return Interface{Name: name, Address: addr} }

// diskful returns a diskful node with one volume per minor, numbered from 0.
func diskful(name string, id int, ifs []Interface, minors ...int) Node {
	n := Node{Name: name, NodeID: id, Port: 7000, Interfaces: ifs}
	for i, m := range minors {
		n.Volumes = append(n.Volumes, Volume{Number: i, Minor: m, Disk: fmt.Sprintf("/dev/pve/r0_%05d", i), MetaDisk: MetaDiskInt})
	}
	return n
}

func diskless(name string, id int, ifs []Interface, minors ...int) Node {
	n := Node{Name: name, NodeID: id, Port: 7000, Interfaces: ifs, Diskless: true}
	for i, m := range minors {
		n.Volumes = append(n.Volumes, Volume{Number: i, Minor: m})
	}
	return n
}

// goldenConfigs are the resources whose rendering is kept in testdata.
func goldenConfigs() map[string]ResourceConfig {
	cfgs := map[string]ResourceConfig{
		// Two replicas and a diskless tie-breaker, one network.
		"tiebreaker": {
			Name: "vm-100-disk-1", SharedSecret: testSecret, VerifyAlg: "crc32c",
			Quorum: "majority", OnNoQuorum: "io-error",
			Disk: []Option{{"discard-zeroes-if-aligned", "yes"}, {"rs-discard-granularity", "65536"}},
			Nodes: []Node{
				// Out of order on purpose: the file is sorted.
				diskless("pve3", 2, []Interface{ifc("default", "10.0.0.3")}, 1000),
				diskful("pve1", 0, []Interface{ifc("default", "10.0.0.1")}, 1000),
				diskful("pve2", 1, []Interface{ifc("default", "10.0.0.2")}, 1000),
			},
		},
		// The seed case: the storage nodes share a fast link, the witness
		// is reachable only on the management network.
		"witness": {
			Name: "vm-101-disk-1", SharedSecret: testSecret,
			Quorum: "majority", OnNoQuorum: "suspend-io",
			Nodes: []Node{
				withPref(diskful("pve1", 0, []Interface{ifc("default", "192.168.10.1/24"), ifc("fast", "10.99.0.1/24")}, 1001), "fast"),
				withPref(diskful("pve2", 1, []Interface{ifc("default", "192.168.10.2/24"), ifc("fast", "10.99.0.2/24")}, 1001), "fast"),
				withPref(diskless("witness", 2, []Interface{ifc("default", "192.168.10.3/24")}, 1001), "fast"),
			},
		},
		// RDMA with the default receive buffer: max-buffers is sized.
		"rdma": {
			Name: "vm-102-disk-1", Transport: TransportRDMA, SharedSecret: testSecret, VerifyAlg: "sha256",
			Quorum: "majority", OnNoQuorum: "io-error",
			Net: []Option{{"sndbuf-size", "4M"}},
			Nodes: []Node{
				withPref(diskful("pve1", 0, []Interface{ifc("default", "192.168.10.1"), ifc("ib0", "10.98.0.1")}, 1002), "ib0"),
				withPref(diskful("pve2", 1, []Interface{ifc("default", "192.168.10.2"), ifc("ib0", "10.98.0.2")}, 1002), "ib0"),
			},
		},
		// Two volumes over IPv6, per-volume disk options on one node.
		"two-volumes": {
			Name: "vm-103-disk-1", SharedSecret: testSecret, Protocol: "C",
			Quorum: "majority", OnNoQuorum: "io-error",
			Options: []Option{{"auto-promote", "yes"}},
			Net:     []Option{{"allow-two-primaries", "yes"}, {"after-sb-0pri", "disconnect"}},
			Disk:    []Option{{"c-max-rate", "720M"}},
			Nodes: []Node{
				withVolumeOptions(diskful("pve1", 0, []Interface{ifc("default", "fd00:10::1")}, 1003, 1004), 1, Option{"al-extents", "6007"}),
				diskful("pve2", 1, []Interface{ifc("default", "fd00:10::2")}, 1003, 1004),
				diskless("pve3", 2, []Interface{ifc("default", "fd00:10::3")}, 1003, 1004),
			},
		},
	}
	// Backing devices as the builder names them.
	for _, cfg := range cfgs {
		for _, n := range cfg.Nodes {
			for i := range n.Volumes {
				if n.Volumes[i].Disk != "" {
					n.Volumes[i].Disk = fmt.Sprintf("/dev/pve/%s_%05d", cfg.Name, n.Volumes[i].Number)
				}
			}
		}
	}
	return cfgs
}

func withPref(n Node, pref string) Node { n.PrefNic = pref; return n }

func withVolumeOptions(n Node, vol int, opts ...Option) Node {
	n.Volumes[vol].DiskOptions = opts
	return n
}

func TestRenderGolden(t *testing.T) {
	t.Parallel()
	for name, cfg := range goldenConfigs() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, err := Render(cfg)
			if err != nil {
				t.Fatal(err)
			}
			again, _ := Render(cfg)
			if !bytes.Equal(got, again) {
				t.Fatal("two renderings of the same config differ")
			}
			path := filepath.Join("testdata", name+".res")
			checkGolden(t, path, got)
			checkWithDrbdadm(t, path, cfg)
		})
	}
}

func checkGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the rendering (go test -update rewrites it):\ngot:\n%s", path, got)
	}
}

// checkWithDrbdadm runs the real drbdadm on the golden file as every host and
// checks the plan of `drbdadm -d up`: each host creates and connects every
// peer it shares a connection with exactly once, over exactly the path
// SelectPaths chose, and only diskless hosts create diskless minors.
func checkWithDrbdadm(t *testing.T, path string, cfg ResourceConfig) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	results, err := validate.DRBDAllHosts(ctx, path)
	validatetest.Check(t, err)
	if len(results) != len(cfg.Nodes) {
		t.Fatalf("drbdadm checked %d hosts, want %d", len(results), len(cfg.Nodes))
	}
	paths, err := SelectPaths(cfg)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]Node{}
	for _, n := range cfg.Nodes {
		byName[n.Name] = n
	}
	for _, self := range cfg.Nodes {
		r := results[self.Name]
		if r == nil {
			t.Fatalf("no drbdadm result for %s", self.Name)
		}
		plan := strings.Join(r.Plan, "\n")
		// Every path this host is part of, keyed by the peer's node id.
		wantPath := map[string]string{}
		for _, p := range paths {
			local, peer, la, pa := p.A, p.B, p.AddrA, p.AddrB
			if p.B == self.Name {
				local, peer, la, pa = p.B, p.A, p.AddrB, p.AddrA
			} else if p.A != self.Name {
				continue
			}
			wantPath[strconv.Itoa(byName[peer].NodeID)] = drbdsetupAddr(la.String(), la.Is4(), byName[local].Port) + " " +
				drbdsetupAddr(pa.String(), pa.Is4(), byName[peer].Port)
		}
		for _, verb := range []string{"new-peer", "connect", "new-path"} {
			got := map[string]int{}
			for _, args := range r.Setup(verb) {
				if len(args) < 2 || args[0] != cfg.Name {
					t.Fatalf("%s: unexpected %s %q", self.Name, verb, args)
				}
				got[args[1]]++
				if verb == "new-path" {
					if w := wantPath[args[1]]; strings.Join(args[2:], " ") != w {
						t.Errorf("%s: new-path to peer %s is %q, want %q", self.Name, args[1], strings.Join(args[2:], " "), w)
					}
				}
			}
			for peer := range wantPath {
				if got[peer] != 1 {
					t.Errorf("%s: %d %s lines for peer node-id %s, want 1\nplan:\n%s", self.Name, got[peer], verb, peer, plan)
				}
			}
			if len(got) != len(wantPath) {
				t.Errorf("%s: %s for peers %v, want exactly %v\nplan:\n%s", self.Name, verb, got, wantPath, plan)
			}
		}
		minors := r.Setup("new-minor")
		if len(minors) != len(self.Volumes) {
			t.Errorf("%s: %d new-minor lines, want %d", self.Name, len(minors), len(self.Volumes))
		}
		for _, m := range minors {
			if got := slices.Contains(m, "--diskless"); got != self.Diskless {
				t.Errorf("%s: new-minor %q has --diskless = %v, want %v", self.Name, m, got, self.Diskless)
			}
		}
		if attach, want := len(r.Setup("attach")), map[bool]int{true: 0, false: len(self.Volumes)}[self.Diskless]; attach != want {
			t.Errorf("%s: %d attach lines, want %d", self.Name, attach, want)
		}
		if cfg.Transport == TransportRDMA {
			for _, args := range r.Setup("new-peer") {
				if !slices.Contains(args, "--transport=rdma") || !slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--max-buffers=") }) {
					t.Errorf("%s: new-peer %q lacks the rdma transport or max-buffers", self.Name, args)
				}
			}
		}
	}
}

// drbdsetupAddr is how drbdadm passes an address to drbdsetup new-path.
func drbdsetupAddr(addr string, v4 bool, port int) string {
	if v4 {
		return fmt.Sprintf("ipv4:%s:%d", addr, port)
	}
	return fmt.Sprintf(`ipv6:\[%s\]:%d`, addr, port)
}

// The seed case, spelled out: the storage pair uses the fast link and the
// witness pairs the management network, and the file says why.
func TestRenderWitnessPaths(t *testing.T) {
	t.Parallel()
	cfg := goldenConfigs()["witness"]
	out, err := Render(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"host pve1 address ipv4 10.99.0.1:7000;\n            host pve2 address ipv4 10.99.0.2:7000;",
		"host pve1 address ipv4 192.168.10.1:7000;\n            host witness address ipv4 192.168.10.3:7000;",
		"host pve2 address ipv4 192.168.10.2:7000;\n            host witness address ipv4 192.168.10.3:7000;",
		`witness has no interface "fast"`,
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("rendering lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "connection-mesh") {
		t.Error("rendering uses connection-mesh")
	}

	// And drbdadm, as each host, connects exactly so.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for host, want := range map[string][]string{
		"pve1":    {"vm-101-disk-1 1 ipv4:10.99.0.1:7000 ipv4:10.99.0.2:7000", "vm-101-disk-1 2 ipv4:192.168.10.1:7000 ipv4:192.168.10.3:7000"},
		"witness": {"vm-101-disk-1 0 ipv4:192.168.10.3:7000 ipv4:192.168.10.1:7000", "vm-101-disk-1 1 ipv4:192.168.10.3:7000 ipv4:192.168.10.2:7000"},
	} {
		r, err := validate.DRBD(ctx, host, filepath.Join("testdata", "witness.res"))
		validatetest.Check(t, err)
		var got []string
		for _, args := range r.Setup("new-path") {
			got = append(got, strings.Join(args, " "))
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: new-path %q, want %q", host, got, want)
		}
	}
}

func TestRenderRDMASizing(t *testing.T) {
	t.Parallel()
	base := goldenConfigs()["rdma"]
	tests := []struct {
		name       string
		maxBuffers int
		rcvbuf     int64
		want       []string
		err        string
	}{
		{name: "defaults", want: []string{"max-buffers 3072;", "rcvbuf-size 4194304;"}},
		{name: "large rcvbuf raises max-buffers", rcvbuf: 10 << 20, want: []string{"max-buffers 4608;", "rcvbuf-size 10485760;"}},
		{name: "generous max-buffers kept", maxBuffers: 20000, rcvbuf: 10 << 20, want: []string{"max-buffers 20000;", "rcvbuf-size 10485760;"}},
		{name: "max-buffers too small", maxBuffers: 2048, rcvbuf: 10 << 20, err: "set DrbdOptions/Net/max-buffers to at least 4608"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := base
			cfg.MaxBuffers, cfg.RcvbufSize = tt.maxBuffers, tt.rcvbuf
			out, err := Render(cfg)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("rendering lacks %q:\n%s", w, out)
				}
			}
		})
	}
	// Over tcp nothing is added.
	tcp := base
	tcp.Transport = TransportTCP
	out, err := Render(tcp)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "max-buffers") || strings.Contains(string(out), "rcvbuf-size") {
		t.Errorf("tcp rendering sizes buffers:\n%s", out)
	}
}

func TestParseSize(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]int64{"0": 0, "4096": 4096, "512k": 512 << 10, "4M": 4 << 20, "10m": 10 << 20, "1G": 1 << 30} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "M", "-1", "4T", "1.5M", "99999999999999999999"} {
		if _, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) succeeded", in)
		}
	}
}
