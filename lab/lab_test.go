package lab

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"log/slog"

	"github.com/pvehci/pvehci/health"
	"github.com/pvehci/pvehci/internal/localapi"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pvehci-lab-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "pvehci")
	if out, err := exec.Command("go", "build", "-o", binary, "../cmd/pvehci").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// startLab starts a lab on addresses of its own (127.0.<base>.11…), so
// tests do not meet a lab someone runs on the default addresses.
func startLab(t *testing.T, nodes int, base string) *Lab {
	t.Helper()
	return startLabWith(t, Config{Nodes: nodes, AddrBase: netip.MustParseAddr(base)})
}

// startLabWith starts a lab from cfg (a fresh directory, the test binary,
// logs to the test) and stops it when the test ends, printing the
// daemons' last log lines when it failed.
func startLabWith(t *testing.T, cfg Config) *Lab {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg.Dir, cfg.Binary, cfg.Log = t.TempDir(), binary, slog.New(slog.NewTextHandler(testWriter{t}, nil))
	l, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range l.Nodes {
				if b, err := os.ReadFile(filepath.Join(n.Dir, "daemon.log")); err == nil {
					lines := strings.Split(string(b), "\n")
					t.Logf("log of %s:\n%s", n.Name, strings.Join(lines[max(0, len(lines)-60):], "\n"))
				}
			}
		}
		l.Close()
	})
	return l
}

// randomBase picks loopback addresses no other run is likely to use, so
// that a test run beside a running lab (or another test run) does not
// collide on the fixed ports.
func randomBase() netip.Addr {
	var b [2]byte
	rand.Read(b[:])
	return netip.AddrFrom4([4]byte{127, 1 + b[0]%250, b[1], 10})
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func TestLabVMLifecycle(t *testing.T) {
	start := time.Now()
	base := randomBase()
	l := startLab(t, 3, base.String())
	ctx := context.Background()
	t.Logf("lab ready after %s", time.Since(start).Round(time.Millisecond))
	env, err := os.ReadFile(filepath.Join(l.Dir(), EnvFile))
	if err != nil {
		t.Fatal(err)
	}
	n1, n2, n3 := base.Next(), base.Next().Next(), base.Next().Next().Next()
	if want := fmt.Sprintf("LS_CONTROLLERS=http://%s:3370,http://%s:3370,http://%s:3370\n", n1, n2, n3); !strings.Contains(string(env), want) {
		t.Errorf("env file:\n%s", env)
	}
	// Every node came up through bootstrap: a second run plans nothing
	// and verifies every step; the last node added the storage entry.
	for _, n := range []string{"n1", "n3"} {
		res, err := l.Bootstrap(ctx, n, n == "n3")
		if err != nil || !res.Empty {
			t.Errorf("bootstrap again on %s: %v\n%s", n, err, res.Plan)
		}
	}
	cfg, err := os.ReadFile(filepath.Join(l.Dir(), "pve/pmxcfs/storage.cfg"))
	if err != nil || !strings.Contains(string(cfg), "drbd: drbdstorage\n\tcontent images,rootdir\n\tcontroller "+n1.String()+","+n2.String()+","+n3.String()+"\n\tresourcegroup drbdgrp\n") {
		t.Errorf("storage.cfg (%v):\n%s", err, cfg)
	}
	vm, err := l.CreateVM(ctx, 100, "n1", 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("created %+v at %s", vm, time.Since(start).Round(time.Millisecond))
	// The .res file is at its real path below the node's root.
	rd := strings.SplitN(vm.Volname, "_", 2)[0]
	if _, err := os.Stat(filepath.Join(l.Nodes[0].Root, "var/lib/pvehci/drbd.d", rd+".res")); err != nil {
		t.Errorf("no .res on n1: %v", err)
	}
	// pvehci health on n2 judges every node from the leader's view.
	rep, err := health.Default().Run(ctx, health.Sources{Cluster: labView{localapi.NewClient(l.Nodes[1].Socket)}},
		health.ClusterViewCode, health.SatelliteOffline, health.ReplicasBelowPlace, health.DRBDSplitBrain, health.PoolDataFull, health.DisklessPrimary)
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range rep.Items {
		if it.Severity != health.OK {
			t.Errorf("health on a healthy lab: %s %s %s", it.Severity, it.Code, it.Message)
		}
		if it.Code == health.SatelliteOffline && it.Message != "3 satellite(s) reporting" {
			t.Errorf("SATELLITE_OFFLINE: %s", it.Message)
		}
	}
	// The same checks as gauges on /metrics of any node (answered by the
	// leader).
	resp, err := http.Get(l.Nodes[1].APIURL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`pvehci_health_status{code="SATELLITE_OFFLINE"} 0`, `pvehci_health_status{code="CLUSTER_VIEW"} 0`, `pvehci_relocations{state="pending"} 0`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	moved, err := l.MigrateVM(ctx, 100, "n3")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("migrated %+v at %s", moved, time.Since(start).Round(time.Millisecond))
	// The replica follows the VM: n3 gets a disk after the lab's 5 s
	// delay, syncs, and the surplus replica goes, back to place count 2.
	c, err := l.Client()
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		diskful, n3UpToDate := l.diskfulReplicas(ctx, t, rd)
		if n3UpToDate && len(diskful) == 2 {
			t.Logf("relocated at %s: diskful on %v", time.Since(start).Round(time.Millisecond), diskful)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the replica did not follow VM 100 to n3: diskful on %v, n3 UpToDate %t", diskful, n3UpToDate)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The relocation read the VMs' places from the simulated Proxmox API
	// without an error.
	for _, n := range l.Nodes {
		if b, _ := os.ReadFile(filepath.Join(n.Dir, "daemon.log")); strings.Contains(string(b), "PVE API") {
			t.Errorf("%s logged a PVE API error:\n%s", n.Name, b)
		}
	}
	if err := l.DeleteVM(ctx, 100); err != nil {
		t.Fatal(err)
	}
	t.Logf("deleted at %s", time.Since(start).Round(time.Millisecond))
	rsc, err := c.Resources.GetResourceView(ctx)
	if err != nil || len(rsc) != 0 {
		t.Errorf("resources after delete: %v %v", rsc, err)
	}
	for _, n := range l.Nodes {
		if entries, _ := os.ReadDir(filepath.Join(n.Root, "var/lib/pvehci/drbd.d")); len(entries) != 0 {
			t.Errorf("%s still has .res files: %v", n.Name, entries)
		}
	}
	st := l.Status(ctx)
	if st.Leader == "" || len(st.Nodes) != 3 {
		t.Errorf("status: %+v", st)
	}
}

// diskfulReplicas lists the nodes with a disk for rd, and whether n3's
// disk is UpToDate.
func (l *Lab) diskfulReplicas(ctx context.Context, t *testing.T, rd string) (nodes []string, n3UpToDate bool) {
	t.Helper()
	c, err := l.Client()
	if err != nil {
		t.Fatal(err)
	}
	view, err := c.Resources.GetResourceView(ctx)
	if err != nil {
		return nil, false
	}
	for _, r := range view {
		if r.Name != rd || slices.Contains(r.Flags, "DISKLESS") || slices.Contains(r.Flags, "DELETE") {
			continue
		}
		nodes = append(nodes, r.NodeName)
		if r.NodeName == "n3" && len(r.Volumes) > 0 && r.Volumes[0].State.DiskState == "UpToDate" {
			n3UpToDate = true
		}
	}
	return nodes, n3UpToDate
}

type labView struct{ c *localapi.Client }

func (v labView) View(ctx context.Context) (health.ClusterView, error) {
	var out health.ClusterView
	err := v.c.Do(ctx, "GET", "/v1/cluster-view", nil, &out)
	return out, err
}
