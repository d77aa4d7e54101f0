//go:build vm

// The VM tier: bootstrap steps and hostos against a real Linux kernel
// (bonding, device-mapper thin pools) and a real systemd over D-Bus. These
// tests change the host they run on, so they only run inside the throwaway
// VM that scripts/vm/vmexec boots (it sets PVEHCI_IN_VM=1):
//
//	make test-vm
//
// See docs/development.md, "The VM tier".
package bootstrap_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pvehci/pvehci/bootstrap"
	"github.com/pvehci/pvehci/bootstrap/cluster"
	"github.com/pvehci/pvehci/bootstrap/hostos"
	"github.com/pvehci/pvehci/internal/clock"
	"github.com/pvehci/pvehci/internal/hostfs"
	"github.com/pvehci/pvehci/internal/run"
	"github.com/pvehci/pvehci/network/ifupdown"
)

// The VM's hardware, as scripts/vm/vmexec gives it: two NICs for the bond
// and one empty disk for the volume group.
const (
	vmSlave0 = "eth0"
	vmSlave1 = "eth1"
	vmDisk   = "/dev/vdb"
	vmMgmt   = "192.168.77.11/24"
	vmMgmtIP = "192.168.77.11"
)

// vmBondMode is the bond mode of the VM's cluster file: 802.3ad, the
// default of the cluster file and what production runs. The NICs have no
// LACP partner (each is alone on a qemu hub), but Linux still brings an
// 802.3ad bond up: each port forms an aggregator of its own ("Number of
// ports: 1", partner 00:00:00:00:00:00) and one of them is active, so the
// bond, its slaves and the bridge are up. PVEHCI_VM_BOND_MODE picks
// another mode (active-backup was measured to work too).
var vmBondMode = envOr("PVEHCI_VM_BOND_MODE", "802.3ad")

func envOr(k, d string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return d
}

func inVM(t *testing.T) {
	t.Helper()
	if os.Getenv("PVEHCI_IN_VM") != "1" {
		t.Skip("changes the host's network, disks and systemd units: runs only in the test VM (make test-vm)")
	}
}

func vmClusterFile(t *testing.T, slaves ...string) (*cluster.Cluster, cluster.Node) {
	t.Helper()
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	host, _, _ = strings.Cut(host, ".")
	yaml := fmt.Sprintf(`cluster: vmtest
networks:
  management: 192.168.77.0/24
bond:
  mode: %s
  miimon: 100
nodes:
  - name: %s
    management: %s
    bond:
      slaves: [%s]
    disks: [%s]
`, vmBondMode, host, vmMgmt, strings.Join(slaves, ", "), vmDisk)
	c, err := cluster.Parse([]byte(yaml))
	if err != nil {
		t.Fatalf("cluster file:\n%s\n%v", yaml, err)
	}
	n, err := c.Node(host)
	if err != nil {
		t.Fatal(err)
	}
	return c, n
}

// vmHost is the real host: the root file system, real commands, netlink,
// sysfs and systemd over D-Bus.
// The D-Bus connection lives as long as ctx does (go-systemd ties the
// connection to the context it was made with), so ctx is the test's.
func vmHost(ctx context.Context, t *testing.T) *bootstrap.Host {
	t.Helper()
	sd, err := hostos.NewDBusSystemd(ctx)
	if err != nil {
		t.Fatalf("systemd over D-Bus: %v", err)
	}
	t.Cleanup(sd.Close)
	return &bootstrap.Host{
		FS:          hostfs.Root("/"),
		Run:         run.Exec{},
		Clock:       clock.Real{},
		Log:         slog.New(slog.NewTextHandler(t.Output(), nil)),
		Net:         hostos.Netlink{},
		RDMA:        hostos.Sysfs{},
		Systemd:     sd,
		NetworkLock: ifupdown.Flock{Root: "/"},
	}
}

func onlySteps(o bootstrap.Options, names ...string) []bootstrap.Step {
	var out []bootstrap.Step
	for _, s := range bootstrap.Steps(o) {
		if slices.Contains(names, s.Name()) {
			out = append(out, s)
		}
	}
	if len(out) != len(names) {
		panic(fmt.Sprintf("steps %v: found only %d", names, len(out)))
	}
	return out
}

func sh(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// shLog runs a diagnostic command and logs what it says, failing or not.
func shLog(t *testing.T, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	t.Logf("$ %s %s (err=%v)\n%s", name, strings.Join(args, " "), err, out)
}

func applyPlan(ctx context.Context, t *testing.T, e *bootstrap.Engine) (*bootstrap.Record, error) {
	t.Helper()
	p, err := e.Plan(ctx)
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	t.Logf("plan:\n%s", p)
	rec, err := e.Apply(ctx, p, func(ev bootstrap.Event) { t.Logf("step %s: %s", ev.Step, ev.Result) })
	return rec, err
}

// snapshotTree reads every regular file under dir.
func snapshotTree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		data, err := os.ReadFile(p)
		files[p] = data
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestVMNetlinkBond reads a real bond of two dummy links through
// hostos.Netlink: its kind, the slaves' master, up state and addresses.
func TestVMNetlinkBond(t *testing.T) {
	inVM(t)
	ctx := context.Background()
	sh(t, "modprobe", "-a", "bonding", "dummy")
	sh(t, "ip", "link", "add", "bond7", "type", "bond", "mode", "active-backup", "miimon", "100")
	t.Cleanup(func() { exec.Command("ip", "link", "del", "bond7").Run() })
	for _, d := range []string{"dummy70", "dummy71"} {
		sh(t, "ip", "link", "add", d, "type", "dummy")
		t.Cleanup(func() { exec.Command("ip", "link", "del", d).Run() })
		sh(t, "ip", "link", "set", d, "master", "bond7")
		sh(t, "ip", "link", "set", d, "up")
	}
	sh(t, "ip", "addr", "add", "192.168.70.1/24", "dev", "bond7")
	sh(t, "ip", "link", "set", "bond7", "up")

	n := hostos.Netlink{}
	var b bootstrap.Link
	deadline := time.Now().Add(10 * time.Second)
	for {
		var err error
		b, err = n.Link(ctx, "bond7")
		if err != nil {
			t.Fatal(err)
		}
		if b.Up || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("bond7: %+v", b)
	if b.Kind != "bond" || !b.Up || b.Master != "" || b.LinkLayer != "ether" {
		t.Errorf("bond7 = %+v, want an up bond without master, link layer ether", b)
	}
	if !slices.Contains(b.Addrs, netip.MustParsePrefix("192.168.70.1/24")) {
		t.Errorf("bond7 addresses %v, want 192.168.70.1/24", b.Addrs)
	}
	for _, d := range []string{"dummy70", "dummy71"} {
		l, err := n.Link(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %+v", d, l)
		if l.Kind != "dummy" || l.Master != "bond7" || !l.Up {
			t.Errorf("%s = %+v, want an up dummy with master bond7", d, l)
		}
	}
	if _, err := n.Link(ctx, "nosuch0"); !errors.Is(err, bootstrap.ErrNoLink) {
		t.Errorf("Link(nosuch0) = %v, want ErrNoLink", err)
	}
	all, err := n.Links(ctx)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]string{}
	masters := map[string]string{}
	for _, l := range all {
		kinds[l.Name], masters[l.Name] = l.Kind, l.Master
	}
	t.Logf("links: %v", kinds)
	if kinds["bond7"] != "bond" || masters["dummy70"] != "bond7" || masters["dummy71"] != "bond7" {
		t.Errorf("Links: kinds %v masters %v", kinds, masters)
	}
	if kinds[vmSlave0] != "device" || kinds["lo"] == "" {
		t.Errorf("Links: %s is %q, want device; lo %q", vmSlave0, kinds[vmSlave0], kinds["lo"])
	}
}

// TestVMSystemdState asks the real systemd over D-Bus about known units.
func TestVMSystemdState(t *testing.T) {
	inVM(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sd, err := hostos.NewDBusSystemd(ctx)
	if err != nil {
		shLog(t, "systemctl", "status", "dbus.socket", "dbus.service", "--no-pager")
		t.Fatal(err)
	}
	defer sd.Close()
	st, err := sd.State(ctx, "systemd-journald.service")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("systemd-journald.service: %+v", st)
	if st.LoadState != "loaded" || st.ActiveState != "active" || st.UnitFileState != "static" {
		t.Errorf("systemd-journald.service = %+v, want loaded/active/static", st)
	}
	st, err = sd.State(ctx, "vmtest.service") // the oneshot running this test
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("vmtest.service: %+v", st)
	if st.LoadState != "loaded" || st.ActiveState != "activating" || st.UnitFileState != "enabled" {
		t.Errorf("vmtest.service = %+v, want loaded/activating/enabled", st)
	}
	st, err = sd.State(ctx, "no-such-unit.service")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("no-such-unit.service: %+v", st)
	if st.LoadState != "not-found" || st.ActiveState != "inactive" {
		t.Errorf("no-such-unit.service = %+v, want not-found/inactive", st)
	}

	// A unit of our own through Reload, Enable, Restart.
	unit := "[Unit]\nDescription=pvehci vm test\n[Service]\nType=notify\nNotifyAccess=all\nExecStart=/bin/sh -c 'sleep 1; systemd-notify --ready; exec sleep infinity'\n[Install]\nWantedBy=multi-user.target\n"
	if err := os.WriteFile("/etc/systemd/system/pvehci-vmtest.service", []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := sd.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if err := sd.Enable(ctx, "pvehci-vmtest.service"); err != nil {
		t.Fatal(err)
	}
	if err := sd.Restart(ctx, "pvehci-vmtest.service"); err != nil {
		t.Fatal(err)
	}
	// Restart waits for READY=1: the unit is active (not activating) as
	// soon as it returns.
	st, err = sd.State(ctx, "pvehci-vmtest.service")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("pvehci-vmtest.service: %+v", st)
	if st != (bootstrap.UnitState{LoadState: "loaded", ActiveState: "active", UnitFileState: "enabled"}) {
		t.Errorf("pvehci-vmtest.service = %+v, want loaded/active/enabled", st)
	}
	// A unit that fails to start: the job result says so.
	bad := "[Unit]\nDescription=pvehci vm test, failing\n[Service]\nType=notify\nExecStart=/bin/false\n"
	if err := os.WriteFile("/etc/systemd/system/pvehci-vmtest-bad.service", []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := sd.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	err = sd.Restart(ctx, "pvehci-vmtest-bad.service")
	t.Logf("restarting a failing unit: %v", err)
	if err == nil || !strings.Contains(err.Error(), "job result failed") {
		t.Errorf("Restart(failing unit) = %v, want job result failed", err)
	}
	// Enable refuses a unit without [Install].
	if err := sd.Enable(ctx, "pvehci-vmtest-bad.service"); err == nil {
		t.Errorf("Enable(unit without [Install]) succeeded")
	}
}

// TestVMBootstrap runs bootstrap's network, storage and service steps for
// real, in that order: each part builds on the one before.
func TestVMBootstrap(t *testing.T) {
	inVM(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	h := vmHost(ctx, t)
	c, node := vmClusterFile(t, vmSlave0, vmSlave1)
	opts := bootstrap.Options{Cluster: c, Node: node, Daemon: bootstrap.NewLocalDaemon("/run/pvehci/pvehci.sock")}
	sh(t, "modprobe", "-a", "bonding", "dm_thin_pool")

	applied := false // the network and storage are up: the next parts build on them
	t.Run("NetworkAndStorage", func(t *testing.T) {
		e := &bootstrap.Engine{Host: h, Steps: onlySteps(opts, "network", "storage")}
		start := time.Now()
		rec, err := applyPlan(ctx, t, e)
		t.Logf("network+storage applied in %s", time.Since(start).Round(time.Millisecond))
		if err != nil && strings.Contains(err.Error(), " is down") {
			// The network step verifies right after ifreload -a returns,
			// without waiting for the links to come up; under TCG the
			// bridge is sometimes not up yet. Report it, and try once
			// more so that the rest of the test still runs.
			t.Errorf("RACE: the network step verified before the links were up: %v", err)
			hw := *h
			hw.Net = &settlingNet{Network: h.Net, t: t}
			e = &bootstrap.Engine{Host: &hw, Steps: e.Steps}
			rec, err = applyPlan(ctx, t, e)
		}
		if err != nil {
			shLog(t, "cat", "/etc/network/interfaces")
			shLog(t, "ip", "-d", "link")
			shLog(t, "cat", "/proc/net/bonding/bond0")
			shLog(t, "lvs", "-a")
			t.Fatalf("apply: %v (record %+v)", err, rec)
		}
		for _, s := range rec.Steps {
			if s.Result != bootstrap.Applied {
				t.Errorf("step %s: %s, want applied", s.Step, s.Result)
			}
		}
		t.Logf("/etc/network/interfaces:\n%s", sh(t, "cat", "/etc/network/interfaces"))
		t.Logf("/proc/net/bonding/bond0:\n%s", sh(t, "cat", "/proc/net/bonding/bond0"))

		bond, err := h.Net.Link(ctx, "bond0")
		if err != nil {
			t.Fatal(err)
		}
		if bond.Kind != "bond" || !bond.Up || bond.Master != "vmbr0" {
			t.Errorf("bond0 = %+v, want an up bond in vmbr0", bond)
		}
		for _, s := range []string{vmSlave0, vmSlave1} {
			l, err := h.Net.Link(ctx, s)
			if err != nil {
				t.Fatal(err)
			}
			if l.Master != "bond0" || !l.Up {
				t.Errorf("%s = %+v, want up, slave of bond0", s, l)
			}
		}
		br, err := h.Net.Link(ctx, "vmbr0")
		if err != nil {
			t.Fatal(err)
		}
		if br.Kind != "bridge" || !br.Up || !slices.Contains(br.Addrs, node.Management) {
			t.Errorf("vmbr0 = %+v, want an up bridge with %s", br, node.Management)
		}
		attr := strings.TrimSpace(sh(t, "lvs", "--noheadings", "-o", "lv_attr", node.VolumeGroup+"/"+node.ThinPool))
		t.Logf("lvs:\n%s", sh(t, "lvs", "-a", node.VolumeGroup))
		if !strings.HasPrefix(attr, "t") {
			t.Errorf("%s/%s lv_attr %q, want a thin pool (t...)", node.VolumeGroup, node.ThinPool, attr)
		}

		applied = true
		// Converged: planning again changes nothing. Each step alone, so
		// that one step's failure to plan does not hide the other's.
		p, err := (&bootstrap.Engine{Host: h, Steps: onlySteps(opts, "network")}).Plan(ctx)
		if err != nil {
			t.Errorf("planning the network again after apply: %v", err)
		} else if !p.Empty() {
			t.Errorf("the network step planned again after apply, want converged:\n%s", p)
		}
		p, err = (&bootstrap.Engine{Host: h, Steps: onlySteps(opts, "storage")}).Plan(ctx)
		if err != nil {
			shLog(t, "lsblk", "--version")
			shLog(t, "lsblk", "--json", "--bytes", "--output", "PATH,TYPE,FSTYPE,PTTYPE,MOUNTPOINTS", vmDisk)
			shLog(t, "lsblk", "--bytes", "--output", "PATH,TYPE,FSTYPE,PTTYPE,MOUNTPOINTS", vmDisk)
			shLog(t, "lsblk", "--json", "--list", "--bytes", "--output", "PATH,TYPE,FSTYPE,PTTYPE,MOUNTPOINTS", vmDisk)
			shLog(t, "lsblk", "--json", "--bytes", "--output", "NAME,PATH,TYPE,FSTYPE,PTTYPE,MOUNTPOINTS", vmDisk)
			t.Errorf("planning the storage again after apply: %v", err)
		} else if !p.Empty() {
			t.Errorf("the storage step planned again after apply, want converged:\n%s", p)
		}
	})
	if !applied {
		return
	}

	t.Run("FailedIfreloadRestoresFiles", func(t *testing.T) {
		// A bond slave that does not exist: the network step writes the
		// files, ifreload or the verification fails, and the engine must
		// put the files back byte for byte and reload the old network.
		// (Preflight would refuse the file; it is not run here on purpose.)
		_, bad := vmClusterFile(t, vmSlave0, "eth9")
		badOpts := opts
		badOpts.Node = bad
		before := snapshotTree(t, "/etc/network")
		e := &bootstrap.Engine{Host: h, Steps: onlySteps(badOpts, "network")}
		rec, err := applyPlan(ctx, t, e)
		if err == nil {
			t.Fatalf("apply with slave eth9 succeeded: %+v", rec)
		}
		t.Logf("apply with slave eth9: %v", err)
		var se *bootstrap.StepError
		if !errors.As(err, &se) || se.Step != "network" || se.RestoreErr != nil {
			t.Errorf("error %v, want a network StepError with nothing left broken", err)
		} else if !slices.Contains(se.Restored, "/etc/network/interfaces") {
			t.Errorf("restored %v, want /etc/network/interfaces among them", se.Restored)
		}
		if rec != nil && (len(rec.Steps) != 1 || rec.Steps[0].Result != bootstrap.Restored) {
			t.Errorf("record %+v, want network restored", rec.Steps)
		}
		after := snapshotTree(t, "/etc/network")
		for p, old := range before {
			if cur, ok := after[p]; !ok {
				t.Errorf("%s is gone after the failed step", p)
			} else if !bytes.Equal(cur, old) {
				t.Errorf("%s is not restored byte for byte:\n--- before\n%s\n--- after\n%s", p, old, cur)
			}
		}
		for p := range after {
			if _, ok := before[p]; !ok && !strings.HasSuffix(p, ".pve-interfaces.lock") {
				t.Errorf("%s was left behind by the failed step", p)
			}
		}
		// The running network follows the restored files again.
		for _, s := range []string{vmSlave0, vmSlave1} {
			l, err := h.Net.Link(ctx, s)
			if err != nil || l.Master != "bond0" || !l.Up {
				t.Errorf("%s after the revert: %+v %v, want up in bond0", s, l, err)
			}
		}
		p, err := (&bootstrap.Engine{Host: h, Steps: onlySteps(opts, "network")}).Plan(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !p.Empty() {
			t.Errorf("the good cluster file plans changes after the revert:\n%s", p)
		}
	})

	t.Run("Service", func(t *testing.T) {
		if _, err := os.Stat(bootstrap.DefaultBinary); err != nil {
			t.Skipf("%s is not installed (vmexec installs it when PVEHCI_VM_PVEHCI names a binary)", bootstrap.DefaultBinary)
		}
		e := &bootstrap.Engine{Host: h, Steps: onlySteps(opts, "service")}
		start := time.Now()
		rec, err := applyPlan(ctx, t, e)
		t.Logf("service step took %s", time.Since(start).Round(time.Millisecond))
		if err != nil || t.Failed() {
			defer func() {
				shLog(t, "systemctl", "status", "pvehci", "--no-pager", "-l")
				shLog(t, "journalctl", "-u", "pvehci", "--no-pager", "-o", "cat", "-n", "200")
			}()
		}
		if err != nil {
			t.Fatalf("service step: %v (record %+v)", err, rec)
		}
		if out, err := exec.Command("systemctl", "is-active", "pvehci").CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "active" {
			t.Errorf("systemctl is-active pvehci: %s %v", out, err)
		}
		st, err := h.Systemd.State(ctx, bootstrap.UnitName)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %+v", bootstrap.UnitName, st)
		if st != (bootstrap.UnitState{LoadState: "loaded", ActiveState: "active", UnitFileState: "enabled"}) {
			t.Errorf("%s = %+v, want loaded/active/enabled", bootstrap.UnitName, st)
		}
		shLog(t, "journalctl", "-u", "pvehci", "--no-pager", "-o", "cat", "-n", "15")
		t.Logf("GET /health: %s", sh(t, "bash", "-c", "exec 3<>/dev/tcp/"+vmMgmtIP+"/3370; printf 'GET /health HTTP/1.0\\r\\n\\r\\n' >&3; head -1 <&3"))
		p, err := e.Plan(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !p.Empty() {
			t.Errorf("service planned again after apply, want converged:\n%s", p)
		}
	})
}

// settlingNet waits for a link that is down to come up (up to 20 s) and
// logs how long that took: it measures how late after ifreload -a the
// links come up, which the network step's verification does not wait for.
type settlingNet struct {
	bootstrap.Network
	t *testing.T
}

func (n *settlingNet) Link(ctx context.Context, name string) (bootstrap.Link, error) {
	start := time.Now()
	for {
		l, err := n.Network.Link(ctx, name)
		if err != nil || l.Up || time.Since(start) > 20*time.Second {
			if waited := time.Since(start); waited > 10*time.Millisecond {
				n.t.Logf("settlingNet: %s up=%v after %s", name, l.Up, waited.Round(time.Millisecond))
			}
			return l, err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestVMSysfsSoftRoCE reads a real kernel's /sys/class/infiniband: a
// soft-RoCE device (rdma_rxe) on a veth is a port whose link layer is
// Ethernet, ACTIVE while the veth has carrier, and without an IPoIB
// netdev. (A veth, not eth0: the bootstrap test may have enslaved eth0.)
func TestVMSysfsSoftRoCE(t *testing.T) {
	inVM(t)
	ctx := context.Background()
	sh(t, "modprobe", "rdma_rxe")
	sh(t, "ip", "link", "add", "vrxe0", "type", "veth", "peer", "name", "vrxe1")
	t.Cleanup(func() { exec.Command("ip", "link", "del", "vrxe0").Run() })
	sh(t, "ip", "link", "set", "vrxe0", "up")
	sh(t, "ip", "link", "set", "vrxe1", "up")
	sh(t, "rdma", "link", "add", "rxe0", "type", "rxe", "netdev", "vrxe0")
	t.Cleanup(func() { exec.Command("rdma", "link", "delete", "rxe0").Run() })
	shLog(t, "rdma", "link", "show")
	var ports []bootstrap.IBPort
	deadline := time.Now().Add(30 * time.Second)
	for {
		var err error
		ports, err = hostos.Sysfs{}.Ports(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(ports) == 1 && ports[0].State == "ACTIVE" || time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if len(ports) != 1 {
		t.Fatalf("ports = %+v, want rxe0 port 1", ports)
	}
	p := ports[0]
	t.Logf("rxe0: %+v", p)
	if p.Device != "rxe0" || p.Port != 1 || p.LinkLayer != "Ethernet" || p.State != "ACTIVE" || p.NetDev != "" || len(p.GUID) != 16 {
		t.Errorf("rxe0 port = %+v, want port 1, Ethernet, ACTIVE, no IPoIB netdev, a 16-digit GUID", p)
	}
}
