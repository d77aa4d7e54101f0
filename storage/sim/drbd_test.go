package sim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/pvehci/pvehci/internal/run"
	"github.com/pvehci/pvehci/storage/drbd"
	"github.com/pvehci/pvehci/storage/lvm"
)

const resName = "vm-100-disk-1"

// cluster is a simulated network of hosts with one resource rendered by
// storage/drbd, its .res file and each host's thin LV.
type cluster struct {
	t     *testing.T
	net   *Network
	hosts map[string]*Host
	file  string
}

func diskfulNode(name string, id int) drbd.Node {
	return drbd.Node{Name: name, NodeID: id, Port: 7000,
		Interfaces: []drbd.Interface{{Name: "default", Address: fmt.Sprintf("10.0.0.%d", id+1)}},
		Volumes:    []drbd.Volume{{Number: 0, Minor: 1000, Disk: lvm.DevicePath("pve", lvm.VolumeLVName(resName, 0)), MetaDisk: "internal"}}}
}

func disklessNode(name string, id int) drbd.Node {
	return drbd.Node{Name: name, NodeID: id, Port: 7000, Diskless: true,
		Interfaces: []drbd.Interface{{Name: "default", Address: fmt.Sprintf("10.0.0.%d", id+1)}},
		Volumes:    []drbd.Volume{{Number: 0, Minor: 1000}}}
}

// newCluster renders cfg, creates every host with a pool and, on diskful
// nodes, an 8 MiB thin LV through the Runner, as the satellite would.
func newCluster(t *testing.T, cfg drbd.ResourceConfig) *cluster {
	t.Helper()
	cfg.Name = resName
	text, err := drbd.Render(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cl := &cluster{t: t, net: NewNetwork(), hosts: map[string]*Host{}, file: filepath.Join(t.TempDir(), resName+".res")}
	if err := os.WriteFile(cl.file, text, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, n := range cfg.Nodes {
		h := newLVMHost(t)
		h.name = n.Name
		cl.net.Attach(h)
		cl.hosts[n.Name] = h
		if !n.Diskless {
			mustSh(t, h.Runner(), "lvcreate -V 8M -T pve/data -n "+lvm.VolumeLVName(resName, 0)+" --addtag pvehci")
		}
	}
	return cl
}

// adm runs `drbdadm -c FILE ARGS… RES` on host.
func (cl *cluster) adm(host string, args ...string) (run.Result, error) {
	argv := append([]string{"-c", cl.file}, args...)
	return cl.hosts[host].Runner().Run(context.Background(), run.Command("drbdadm", append(argv, resName)...))
}

func (cl *cluster) mustAdm(host string, args ...string) {
	cl.t.Helper()
	if res, err := cl.adm(host, args...); err != nil {
		cl.t.Fatalf("%s: drbdadm %v: %v\n%s", host, args, err, res.Stdout)
	}
}

// observe reads `drbdsetup events2 --now --statistics` on host with
// storage/drbd's parser, which must accept every line.
func (cl *cluster) observe(host string) drbd.ObservedResource {
	cl.t.Helper()
	res, err := cl.hosts[host].Runner().Run(context.Background(), run.Command("drbdsetup", "events2", "--now", "--statistics"))
	if err != nil {
		cl.t.Fatal(err)
	}
	o := drbd.NewObserved()
	r := drbd.NewEventReader(bytes.NewReader(res.Stdout))
	for {
		e, err := r.Next()
		if err != nil {
			break
		}
		if err := o.Apply(e); err != nil {
			cl.t.Fatalf("%s: applying %q: %v", host, e.String(), err)
		}
	}
	if !o.Synced() {
		cl.t.Fatalf("%s: no end of the initial dump in\n%s", host, res.Stdout)
	}
	or, _ := o.Resource(resName)
	return or
}

func (cl *cluster) lv(host string) *Device {
	cl.t.Helper()
	d, err := cl.hosts[host].Device(lvm.DevicePath("pve", lvm.VolumeLVName(resName, 0)))
	if err != nil {
		cl.t.Fatal(err)
	}
	cl.t.Cleanup(func() { d.Close() })
	return d
}

// upAndSkipSync runs the thin-volume sequence (linstor-server.md §3,
// DRBD guide "Skipping initial device synchronization"): create-md and
// adjust everywhere, then new-current-uuid --clear-bitmap on the first.
func (cl *cluster) upAndSkipSync(first string, hosts ...string) {
	cl.t.Helper()
	for _, h := range append([]string{first}, hosts...) {
		if cl.hosts[h].drbdDiskful() {
			cl.mustAdm(h, "--max-peers", "7", "--", "--force", "create-md")
		}
	}
	for _, h := range append([]string{first}, hosts...) {
		cl.mustAdm(h, "adjust")
	}
	cl.mustAdm(first, "new-current-uuid", "--clear-bitmap")
}

// drbdDiskful: the host has the resource's LV.
func (h *Host) drbdDiskful() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.vgs["pve"].lvs[lvm.VolumeLVName(resName, 0)] != nil
}

func peer(r drbd.ObservedResource, id int) drbd.ObservedConnection {
	for _, c := range r.Connections {
		if c.PeerNodeID == id {
			return c
		}
	}
	return drbd.ObservedConnection{}
}

func threeNodes(onNoQuorum string) drbd.ResourceConfig {
	return drbd.ResourceConfig{Quorum: "majority", OnNoQuorum: onNoQuorum, VerifyAlg: "crc32c",
		Nodes: []drbd.Node{diskfulNode("pve1", 0), diskfulNode("pve2", 1), disklessNode("pve3", 2)}}
}

func TestDRBDWithoutModule(t *testing.T) {
	t.Parallel()
	h := NewHost("pve1") // never attached to a network
	for _, line := range []string{"drbdsetup status --json", "drbdadm -c x.res up r0"} {
		res, err := sh(t, h.Runner(), line)
		if run.ExitCode(err) != 20 || !strings.Contains(string(res.Stderr), "Failed to modprobe drbd") {
			t.Errorf("%s: %v %q", line, err, res.Stderr)
		}
	}
}

func TestDRBDBringUpSkipsInitialSync(t *testing.T) {
	t.Parallel()
	cl := newCluster(t, threeNodes("io-error"))
	for _, h := range []string{"pve1", "pve2"} {
		cl.mustAdm(h, "--", "--force", "create-md")
	}
	for _, h := range []string{"pve1", "pve2", "pve3"} {
		cl.mustAdm(h, "adjust")
	}
	// Fresh metadata on both sides: connected, Inconsistent, no sync
	// (guide 4.6: the initial sync needs a decision).
	r := cl.observe("pve2")
	if r.Devices[0].Disk != drbd.DiskInconsistent || peer(r, 0).Connection != drbd.ConnConnected ||
		peer(r, 0).PeerDevices[0].Replication != drbd.ReplEstablished || !r.Quorum() || r.MayPromote {
		t.Fatalf("after adjust: %+v", r)
	}
	if res, err := cl.adm("pve1", "primary"); run.ExitCode(err) != 17 || !strings.Contains(string(res.Stderr), "(-2) Need access to UpToDate data") {
		t.Errorf("primary on Inconsistent: %v %s", err, res.Stderr)
	}
	cl.mustAdm("pve1", "new-current-uuid", "--clear-bitmap")
	for _, h := range []string{"pve1", "pve2", "pve3"} {
		r := cl.observe(h)
		want := drbd.DiskUpToDate
		if h == "pve3" {
			want = drbd.DiskDiskless
		}
		if r.Devices[0].Disk != want || r.Devices[0].Client != (h == "pve3") || !r.MayPromote || len(r.Connections) != 2 {
			t.Errorf("%s: %+v", h, r)
		}
		for _, c := range r.Connections {
			if c.Connection != drbd.ConnConnected || c.PeerDevices[0].Replication != drbd.ReplEstablished || c.PeerDevices[0].OutOfSyncKiB != 0 {
				t.Errorf("%s: connection %+v", h, c)
			}
		}
	}
	// No block was copied: the thin LVs stay empty (lvs data% 0).
	if lv := lvsOf(t, cl.hosts["pve2"].Runner(), "pve")[lvm.VolumeLVName(resName, 0)]; lv.DataPercent.Value != 0 {
		t.Errorf("pve2 LV data%% = %v after skipping the sync", lv.DataPercent)
	}
}

func TestDRBDReplicationOutdateAndResync(t *testing.T) {
	t.Parallel()
	cl := newCluster(t, threeNodes("io-error"))
	cl.upAndSkipSync("pve1", "pve2", "pve3")

	dev, err := cl.hosts["pve1"].OpenDRBD("/dev/drbd1000", true) // auto-promotes
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	if r := cl.observe("pve1"); r.Role != drbd.RolePrimary || !r.Devices[0].Open {
		t.Fatalf("auto-promote: %+v", r)
	}
	if _, err := cl.hosts["pve2"].OpenDRBD("/dev/drbd1000", true); !errors.Is(err, syscall.EROFS) {
		t.Errorf("second writer: %v, want EROFS (one Primary)", err)
	}
	a := bytes.Repeat([]byte{0xaa}, 3*bmBlock)
	if _, err := dev.WriteAt(a, 0); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(a))
	if _, err := cl.lv("pve2").ReadAt(got, 0); err != nil || !bytes.Equal(got, a) {
		t.Fatalf("write not replicated to pve2's LV")
	}

	// Cut the replication link: the diskless tiebreaker keeps quorum on
	// the Primary's side and pve2 outdates itself (guide 11.21.3).
	cl.net.Cut("pve1", "pve2")
	if r := cl.observe("pve1"); !r.Quorum() || peer(r, 1).Connection != drbd.ConnConnecting {
		t.Errorf("pve1 after cut: %+v", r)
	}
	if r := cl.observe("pve2"); !r.Quorum() || r.Devices[0].Disk != drbd.DiskOutdated || r.MayPromote {
		t.Errorf("pve2 after cut: %+v", r)
	}
	b := bytes.Repeat([]byte{0xbb}, bmBlock)
	for _, off := range []int64{0, 100 * bmBlock, 200 * bmBlock} {
		if _, err := dev.WriteAt(b, off); err != nil {
			t.Fatal(err)
		}
	}
	if pd := peer(cl.observe("pve1"), 1).PeerDevices[0]; pd.OutOfSyncKiB != 12 || pd.Replication != drbd.ReplOff {
		t.Errorf("out of sync toward pve2: %+v", pd)
	}

	cl.net.Heal("pve1", "pve2")
	r1, r2 := cl.observe("pve1"), cl.observe("pve2")
	if pd := peer(r1, 1).PeerDevices[0]; pd.Replication != drbd.ReplSyncSource || !pd.HasDone || pd.DonePercent != 0 {
		t.Errorf("pve1 toward pve2 after heal: %+v", pd)
	}
	if pd := peer(r2, 0).PeerDevices[0]; pd.Replication != drbd.ReplSyncTarget || r2.Devices[0].Disk != drbd.DiskInconsistent {
		t.Errorf("pve2 after heal: %+v %+v", pd, r2.Devices[0])
	}
	cl.net.Resync(1)
	if pd := peer(cl.observe("pve2"), 0).PeerDevices[0]; pd.DonePercent < 33 || pd.DonePercent > 34 {
		t.Errorf("progress after one block: %+v", pd)
	}
	cl.net.Settle()
	r2 = cl.observe("pve2")
	if r2.Devices[0].Disk != drbd.DiskUpToDate || peer(r2, 0).PeerDevices[0].Replication != drbd.ReplEstablished {
		t.Errorf("pve2 after resync: %+v", r2)
	}
	for _, off := range []int64{0, 100 * bmBlock, 200 * bmBlock} {
		got := make([]byte, bmBlock)
		if _, err := cl.lv("pve2").ReadAt(got, off); err != nil || !bytes.Equal(got, b) {
			t.Errorf("block at %d not resynchronized", off)
		}
	}
	// A diskless client reads through its peers.
	c3, err := cl.hosts["pve3"].OpenDRBD("/dev/drbd1000", false)
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	if _, err := c3.ReadAt(got[:bmBlock], 100*bmBlock); err != nil || !bytes.Equal(got[:bmBlock], b) {
		t.Errorf("diskless read: %v", err)
	}
	// 8 MiB less 8*7+72 sectors of metadata for 7 peers: 2032 blocks.
	if got := cl.observe("pve3").Devices[0].SizeKiB; got != 2032*4 {
		t.Errorf("diskless device size %d KiB", got)
	}
}

func TestDRBDQuorumLoss(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		onNoQuorum string
		errno      syscall.Errno
		suspended  string
	}{
		{"io-error", syscall.EIO, "no"},          // guide 11.21.2: IO completes with errors
		{"suspend-io", syscall.EAGAIN, "quorum"}, // freezes; the simulation does not block
	} {
		t.Run(tt.onNoQuorum, func(t *testing.T) {
			t.Parallel()
			cl := newCluster(t, threeNodes(tt.onNoQuorum))
			cl.upAndSkipSync("pve1", "pve2", "pve3")
			cl.mustAdm("pve1", "primary")
			dev, err := cl.hosts["pve1"].OpenDRBD("/dev/drbd1000", true)
			if err != nil {
				t.Fatal(err)
			}
			defer dev.Close()
			cl.net.Isolate("pve1") // at once: nobody is left to outdate pve2
			if _, err := dev.WriteAt(make([]byte, bmBlock), 0); !errors.Is(err, tt.errno) {
				t.Errorf("write without quorum: %v, want %v", err, tt.errno)
			}
			if r := cl.observe("pve1"); r.Quorum() || r.Suspended != tt.suspended {
				t.Errorf("pve1: %+v", r)
			}
			// pve2 and the tiebreaker have quorum, and pve2 stays
			// UpToDate: it can take over (guide 11.21.3).
			if r := cl.observe("pve2"); !r.Quorum() || r.Devices[0].Disk != drbd.DiskUpToDate || !r.MayPromote {
				t.Errorf("pve2: %+v", r)
			}
			cl.net.Heal("pve1", "pve3")
			if _, err := dev.WriteAt(make([]byte, bmBlock), 0); err != nil {
				t.Errorf("write with quorum back: %v", err)
			}
		})
	}
}

func TestDRBDSplitBrain(t *testing.T) {
	t.Parallel()
	cl := newCluster(t, drbd.ResourceConfig{Quorum: "off", Nodes: []drbd.Node{diskfulNode("pve1", 0), diskfulNode("pve2", 1)}})
	cl.upAndSkipSync("pve1", "pve2")
	cl.net.Cut("pve1", "pve2")
	for i, h := range []string{"pve1", "pve2"} {
		cl.mustAdm(h, "primary")
		d, err := cl.hosts[h].OpenDRBD("/dev/drbd1000", true)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.WriteAt(bytes.Repeat([]byte{byte(i + 1)}, bmBlock), int64(i)*bmBlock); err != nil {
			t.Fatal(err)
		}
		d.Close()
	}
	cl.net.Heal("pve1", "pve2")
	for _, h := range []string{"pve1", "pve2"} {
		if c := cl.observe(h).Connections[0]; c.Connection != drbd.ConnStandAlone || c.SyncState != "SplitBrain" {
			t.Errorf("%s: %+v, want StandAlone SplitBrain", h, c)
		}
	}
	// Manual recovery (guide 13.3): the victim discards its data.
	cl.mustAdm("pve2", "secondary")
	cl.mustAdm("pve2", "connect", "--discard-my-data")
	cl.mustAdm("pve1", "connect")
	if pd := cl.observe("pve2").Connections[0].PeerDevices[0]; pd.Replication != drbd.ReplSyncTarget {
		t.Errorf("victim: %+v", pd)
	}
	cl.net.Settle()
	a, b := make([]byte, 2*bmBlock), make([]byte, 2*bmBlock)
	cl.lv("pve1").ReadAt(a, 0)
	cl.lv("pve2").ReadAt(b, 0)
	if !bytes.Equal(a, b) || a[0] != 1 || a[bmBlock] != 0 {
		t.Errorf("after recovery pve2 does not match the survivor: %x %x", a[0], b[bmBlock])
	}
}

func TestDRBDVerifyAndFullSync(t *testing.T) {
	t.Parallel()
	cl := newCluster(t, drbd.ResourceConfig{Quorum: "majority", VerifyAlg: "crc32c",
		Nodes: []drbd.Node{diskfulNode("pve1", 0), diskfulNode("pve2", 1), diskfulNode("pve3", 2)}})
	for _, h := range []string{"pve1", "pve2", "pve3"} {
		cl.mustAdm(h, "--", "--force", "create-md")
		cl.mustAdm(h, "adjust")
	}
	// primary --force starts the initial full sync (guide 4.6).
	cl.mustAdm("pve1", "primary", "--force")
	r := cl.observe("pve1")
	for _, c := range r.Connections {
		// 8 MiB less 8*2+72 sectors of metadata (two peers): 2037 blocks.
		if pd := c.PeerDevices[0]; pd.Replication != drbd.ReplSyncSource || pd.OutOfSyncKiB != 2037*4 {
			t.Errorf("full sync toward %s: %+v", c.Name, pd)
		}
	}
	for _, h := range []string{"pve1", "pve2", "pve3"} {
		if got := cl.observe(h).Devices[0].SizeKiB; got != 2037*4 {
			t.Errorf("%s: DRBD device size %d KiB, want 8 MiB less metadata", h, got)
		}
	}
	cl.net.Settle()
	// Full sync writes every block of the thin LV: 100% allocated.
	if lv := lvsOf(t, cl.hosts["pve2"].Runner(), "pve")[lvm.VolumeLVName(resName, 0)]; lv.DataPercent.Value != 100 {
		t.Errorf("pve2 LV data%% = %v after a full sync", lv.DataPercent)
	}
	// Corrupt two blocks under pve3's DRBD, then verify from pve1.
	cl.lv("pve3").WriteAt([]byte("rot"), 5*bmBlock+17)
	cl.lv("pve3").WriteAt([]byte("rot"), 9*bmBlock)
	cl.mustAdm("pve1", "verify")
	r = cl.observe("pve1")
	if got := peer(r, 2).PeerDevices[0].OutOfSyncKiB; got != 8 {
		t.Errorf("verify found %d KiB out of sync toward pve3, want 8", got)
	}
	if got := peer(r, 1).PeerDevices[0].OutOfSyncKiB; got != 0 {
		t.Errorf("verify found %d KiB out of sync toward pve2", got)
	}
	// guide 11.9: disconnect and connect to resynchronize.
	cl.mustAdm("pve1", "disconnect")
	cl.mustAdm("pve1", "connect")
	cl.net.Settle()
	a, b := make([]byte, 8<<20), make([]byte, 8<<20)
	cl.lv("pve1").ReadAt(a, 0)
	cl.lv("pve3").ReadAt(b, 0)
	if !bytes.Equal(a, b) {
		t.Error("pve3 still differs after verify and resync")
	}
	if res, err := cl.adm("pve2", "verify"); err != nil {
		t.Errorf("verify: %v %s", err, res.Stderr)
	}
}

func TestDRBDCommandRefusals(t *testing.T) {
	t.Parallel()
	cl := newCluster(t, drbd.ResourceConfig{Quorum: "majority", Nodes: []drbd.Node{diskfulNode("pve1", 0), diskfulNode("pve2", 1)}})
	if res, err := cl.adm("pve1", "adjust"); run.ExitCode(err) != 10 || !strings.Contains(string(res.Stderr), "No valid meta data found") {
		t.Errorf("adjust without metadata: %v %s", err, res.Stderr)
	}
	cl.upAndSkipSync("pve1", "pve2")
	d, err := cl.hosts["pve1"].OpenDRBD("/dev/drbd1000", true)
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		host   string
		args   []string
		code   int
		stderr string
	}{
		{"pve1", []string{"up"}, 10, "(161) Minor or volume exists already"},
		{"pve1", []string{"secondary"}, 11, "(-12) Device is held open by someone"},
		{"pve1", []string{"down"}, 11, "(-12) Device is held open by someone"},
		{"pve2", []string{"primary"}, 17, "(-1) Multiple primaries not allowed by config"},
		{"pve1", []string{"verify"}, 11, "Need a verify algorithm"},
		{"pve1", []string{"-d", "up"}, 20, "not modelled"},
		{"pve1", []string{"--bogus", "up"}, 20, "unrecognized option '--bogus'"},
		{"pve1", []string{"new-current-uuid"}, 20, "not modelled"},
	}
	for _, s := range steps {
		res, err := cl.adm(s.host, s.args...)
		if run.ExitCode(err) != s.code || !strings.Contains(string(res.Stderr), s.stderr) {
			t.Errorf("%s drbdadm %v: %v %q", s.host, s.args, err, res.Stderr)
		}
	}
	// An LV under DRBD is open: lvremove refuses it.
	if _, err := sh(t, cl.hosts["pve2"].Runner(), "lvremove -f pve/"+lvm.VolumeLVName(resName, 0)); run.ExitCode(err) != 5 {
		t.Errorf("lvremove under DRBD: %v", err)
	}
	d.Close()
	if r := cl.observe("pve1"); r.Role != drbd.RoleSecondary {
		t.Errorf("last close did not demote: %+v", r)
	}
	cl.mustAdm("pve2", "down")
	if r := cl.observe("pve1"); peer(r, 1).Connection != drbd.ConnConnecting || r.Quorum() {
		t.Errorf("pve1 after pve2 down: %+v", r)
	}
	// __DRBD_NODE__ makes drbdadm act as another host (testbed-local §2).
	res, err := cl.hosts["pve1"].Runner().Run(context.Background(), run.Cmd{Name: "drbdadm", Args: []string{"-c", cl.file, "adjust", resName}, Env: []string{"__DRBD_NODE__=pve7"}})
	if run.ExitCode(err) != 1 || !strings.Contains(string(res.Stderr), "not defined in your config (for this host)") {
		t.Errorf("unknown host: %v %s", err, res.Stderr)
	}
	res, err = cl.hosts["pve1"].Runner().Run(context.Background(), run.Command("drbdsetup", "status", "--json", resName))
	if err != nil || !strings.Contains(string(res.Stdout), `"connection-state": "Connecting"`) {
		t.Errorf("status --json: %v %s", err, res.Stdout)
	}
}

func TestParseResFile(t *testing.T) {
	t.Parallel()
	matches, err := filepath.Glob(filepath.Join("..", "drbd", "testdata", "*.res"))
	if err != nil || len(matches) == 0 {
		t.Fatalf("no .res files rendered by storage/drbd: %v", err)
	}
	for _, m := range matches {
		data, err := os.ReadFile(m)
		if err != nil {
			t.Fatal(err)
		}
		cfgs, err := parseResFile(m, string(data))
		if err != nil || len(cfgs) != 1 || len(cfgs[0].nodes) < 2 || len(cfgs[0].paths) == 0 {
			t.Errorf("%s: %v %+v", m, err, cfgs)
		}
	}
	for _, tt := range []struct{ name, text, err string }{
		{"no node-id", "resource r { on a { volume 0 { device minor 1; disk none; } } }", "'node-id' keyword missing"},
		{"missing semicolon", "resource r { on a { node-id 0 } }", "';' expected"},
		{"bad volume keyword", "resource r { on a { node-id 0; volume 0 { frobnicate x; } } }", "'device | disk | meta-disk | flex-meta-disk | }' expected"},
		{"unknown path host", "resource r { on a { node-id 0; } connection { path { host a address ipv4 1.2.3.4:7000; host b address ipv4 1.2.3.5:7000; } } }", `a hostname ("b")`},
		{"one endpoint", "resource r { on a { node-id 0; } connection { path { host a address ipv4 1.2.3.4:7000; } } }", "path needs to have two endpoints"},
	} {
		if _, err := parseResFile("r.res", tt.text); err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.err)
		}
	}
}

// TestDRBDThreeReplicasResyncFromAnyPeer: a replica that missed writes
// catches up from whichever up-to-date peer it reconnects to first, since
// every node that got the writes tracks the one that did not.
func TestDRBDThreeReplicasResyncFromAnyPeer(t *testing.T) {
	t.Parallel()
	cl := newCluster(t, drbd.ResourceConfig{Quorum: "majority", OnNoQuorum: "io-error",
		Nodes: []drbd.Node{diskfulNode("pve1", 0), diskfulNode("pve2", 1), diskfulNode("pve3", 2)}})
	cl.upAndSkipSync("pve1", "pve2", "pve3")
	dev, err := cl.hosts["pve1"].OpenDRBD("/dev/drbd1000", true)
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	cl.net.Isolate("pve2")
	b := bytes.Repeat([]byte{0x5a}, 2*bmBlock)
	if _, err := dev.WriteAt(b, 10*bmBlock); err != nil {
		t.Fatal(err)
	}
	if r := cl.observe("pve2"); r.Quorum() || r.Devices[0].Disk != drbd.DiskUpToDate {
		t.Errorf("isolated pve2: %+v", r) // nobody told it; it just lost quorum
	}
	for _, h := range []string{"pve1", "pve3"} {
		if pd := peer(cl.observe(h), 1).PeerDevices[0]; pd.OutOfSyncKiB != 8 {
			t.Errorf("%s tracks %d KiB for pve2, want 8", h, pd.OutOfSyncKiB)
		}
	}
	// pve2 comes back to pve3 first: pve3 is its sync source.
	cl.net.Heal("pve2", "pve3")
	if pd := peer(cl.observe("pve3"), 1).PeerDevices[0]; pd.Replication != drbd.ReplSyncSource {
		t.Errorf("pve3 toward pve2: %+v", pd)
	}
	cl.net.Settle()
	got := make([]byte, len(b))
	if _, err := cl.lv("pve2").ReadAt(got, 10*bmBlock); err != nil || !bytes.Equal(got, b) {
		t.Error("pve2 did not get the writes from pve3")
	}
	if pd := peer(cl.observe("pve1"), 1).PeerDevices[0]; pd.OutOfSyncKiB != 0 {
		t.Errorf("pve1 still tracks %d KiB for pve2 after its resync", pd.OutOfSyncKiB)
	}
	cl.net.Heal("pve1", "pve2")
	for _, h := range []string{"pve1", "pve2", "pve3"} {
		for _, c := range cl.observe(h).Connections {
			if c.Connection != drbd.ConnConnected || c.PeerDevices[0].Replication != drbd.ReplEstablished {
				t.Errorf("%s toward %s: %+v", h, c.Name, c)
			}
		}
	}
}

func TestDRBDSuspendIO(t *testing.T) {
	t.Parallel()
	cl := newCluster(t, drbd.ResourceConfig{Quorum: "off", Nodes: []drbd.Node{diskfulNode("pve1", 0), diskfulNode("pve2", 1)}})
	cl.upAndSkipSync("pve1", "pve2")
	dev, err := cl.hosts["pve1"].OpenDRBD("/dev/drbd1000", true)
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	// LINSTOR's snapshot sequence suspends I/O around lvcreate -s
	// (linstor-server.md §3).
	cl.mustAdm("pve1", "suspend-io")
	if r := cl.observe("pve1"); r.Suspended != "user" {
		t.Errorf("suspended = %q", r.Suspended)
	}
	if _, err := dev.WriteAt(make([]byte, bmBlock), 0); !errors.Is(err, syscall.EAGAIN) {
		t.Errorf("write while suspended: %v", err)
	}
	mustSh(t, cl.hosts["pve1"].Runner(), "lvcreate --snapshot --setactivationskip y --ignoreactivationskip --activate y --name "+
		lvm.VolumeLVName(resName, 0)+"_snap1 -pr pve/"+lvm.VolumeLVName(resName, 0))
	cl.mustAdm("pve1", "resume-io")
	if _, err := dev.WriteAt(make([]byte, bmBlock), 0); err != nil {
		t.Errorf("write after resume-io: %v", err)
	}
}

func TestDRBDConfigAndMetadataCommands(t *testing.T) {
	t.Parallel()
	cl := newCluster(t, drbd.ResourceConfig{Quorum: "majority", Nodes: []drbd.Node{diskfulNode("pve1", 0), diskfulNode("pve2", 1)}})
	// A drbd.conf that includes the .res file, as /etc/drbd.conf does.
	conf := filepath.Join(filepath.Dir(cl.file), "drbd.conf")
	if err := os.WriteFile(conf, []byte("global { usage-count no; }\ncommon { }\ninclude \"*.res\";\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := cl.hosts["pve1"].Runner()
	steps := []struct {
		line, stdin string
		code        int
		out         string
	}{
		{line: "drbdadm -c " + conf + " create-md " + resName, out: "New drbd meta data block successfully created."},
		{line: "drbdadm -c " + conf + " create-md " + resName, code: 10, out: "[need to type 'yes' to confirm]"},
		{line: "drbdadm -c " + conf + " create-md " + resName, stdin: "yes\n", out: "New drbd meta data block successfully created."},
		{line: "drbdadm -c " + conf + " create-md " + resName + "/7", code: 1, out: "'" + resName + "/7' not defined in your config (for this host)."},
		{line: "drbdadm -c " + conf + " -- --force create-md " + resName + "/0", out: "New drbd meta data block successfully created."},
		{line: "drbdadm -c " + conf + " up " + resName},
		{line: "drbdadm -c " + conf + " -- --force create-md " + resName, code: 20, out: "Device '1000' is configured!"},
		{line: "drbdadm -c " + conf + " up nosuch", code: 1, out: "'nosuch' not defined in your config (for this host)."},
		{line: "drbdadm -c " + conf + " status " + resName, code: 20, out: "not modelled"},
		{line: "drbdadm up " + resName, code: 20, out: "pass -c FILE"},
		{line: "drbdadm -c " + conf + "-missing up " + resName, code: 20, out: "Can not open '" + conf + "-missing'.\n."},
		{line: "drbdsetup events2 " + resName, code: 20, out: "not modelled"},
		{line: "drbdsetup events2 --now --timestamps", code: 20, out: "not modelled"},
		{line: "drbdsetup events2 --now nosuch", code: 10, out: "nosuch: No such resource"},
		{line: "drbdsetup status", code: 20, out: "not modelled"},
		{line: "drbdsetup show", code: 20, out: "not modelled"},
		{line: "drbdsetup", code: 20, out: "USAGE"},
	}
	for _, s := range steps {
		w := strings.Fields(s.line)
		res, err := r.Run(context.Background(), run.Cmd{Name: w[0], Args: w[1:], Stdin: []byte(s.stdin)})
		if res.ExitCode != s.code || (err == nil) != (s.code == 0) {
			t.Errorf("%s: exit %d (%v), want %d\n%s%s", s.line, res.ExitCode, err, s.code, res.Stdout, res.Stderr)
		}
		if !strings.Contains(string(res.Stdout)+string(res.Stderr), s.out) {
			t.Errorf("%s: output %q%q, want %q", s.line, res.Stdout, res.Stderr, s.out)
		}
	}
	// With nothing up, events2 prints only the end-of-dump marker.
	if out := mustSh(t, cl.hosts["pve2"].Runner(), "drbdsetup events2 --now"); out != "exists -\n" {
		t.Errorf("empty events2 = %q", out)
	}
	// lvcreate without -n names the LV like lvm: lvol0, lvol1, …
	mustSh(t, r, "lvcreate -V 4M -T pve/data")
	if _, ok := lvsOf(t, r, "pve")["lvol0"]; !ok {
		t.Error("no lvol0")
	}
}

// TestPartitionHealsOneLinkAtATime: a diskful Secondary cut off from
// everything comes back link by link, first to the other diskful node,
// then to the diskless Primary. Once it is connected to both it is
// UpToDate: a link to the Primary that is not up yet is no reason to
// outdate it (guide 11.21.3 outdates a Secondary whose link to the Primary
// breaks), and nothing would ever bring it back from Outdated, since its
// connection to the diskful peer is already established.
func TestPartitionHealsOneLinkAtATime(t *testing.T) {
	t.Parallel()
	cl := newCluster(t, threeNodes("io-error"))
	cl.upAndSkipSync("pve1", "pve2", "pve3")
	dev, err := cl.hosts["pve3"].OpenDRBD("/dev/drbd1000", true) // the VM on the diskless node
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	cl.net.Cut("pve2", "pve3")
	cl.net.Cut("pve1", "pve2")
	cl.net.Heal("pve1", "pve2")
	cl.net.Resync(-1)
	if r2 := cl.observe("pve2"); r2.Devices[0].Disk != drbd.DiskUpToDate {
		t.Fatalf("pve2 connected again to pve1: %+v", r2.Devices[0])
	}
	cl.net.Heal("pve2", "pve3")
	if r2 := cl.observe("pve2"); r2.Devices[0].Disk != drbd.DiskUpToDate {
		t.Fatalf("pve2 after the heal: %+v", r2.Devices[0])
	}
}

// TestResyncHonoursCMaxRate: a SyncTarget with c-max-rate 4M takes 4 MiB
// per simulated second: 102 blocks of 4 KiB per 100 ms Resync call, where
// the call allows 8192; Settle ignores the cap.
func TestResyncHonoursCMaxRate(t *testing.T) {
	t.Parallel()
	cfg := drbd.ResourceConfig{Quorum: "off", Disk: []drbd.Option{{Name: "c-max-rate", Value: "4M"}},
		Nodes: []drbd.Node{diskfulNode("pve1", 0), diskfulNode("pve2", 1)}}
	cl := newCluster(t, cfg)
	cl.upAndSkipSync("pve1", "pve2")
	dev, err := cl.hosts["pve1"].OpenDRBD("/dev/drbd1000", true)
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	cl.net.Cut("pve1", "pve2")
	if _, err := dev.WriteAt(bytes.Repeat([]byte{0xab}, 512*bmBlock), 0); err != nil {
		t.Fatal(err)
	}
	cl.net.Heal("pve1", "pve2")
	oos := func() uint64 { return peer(cl.observe("pve1"), 1).PeerDevices[0].OutOfSyncKiB }
	if got := oos(); got != 512*4 {
		t.Fatalf("out of sync after the heal: %d KiB", got)
	}
	cl.net.Resync(8192)
	if got := oos(); got != (512-102)*4 {
		t.Fatalf("out of sync after one capped call: %d KiB, want %d", got, (512-102)*4)
	}
	cl.net.Settle()
	if got := oos(); got != 0 {
		t.Fatalf("out of sync after Settle: %d KiB", got)
	}
}
