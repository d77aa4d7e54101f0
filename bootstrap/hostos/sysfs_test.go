package hostos

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/pvehci/pvehci/bootstrap"
)

// fakeSysfs builds sysfs trees the way the kernel lays them out: the
// class entries and the device link are relative symlinks into
// sys/devices, so the reader sees the same indirections as on a node.
type fakeSysfs struct {
	t    *testing.T
	root string
}

func newFakeSysfs(t *testing.T) *fakeSysfs {
	return &fakeSysfs{t: t, root: t.TempDir()}
}

func (f *fakeSysfs) write(path, content string) {
	f.t.Helper()
	p := filepath.Join(f.root, path)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content+"\n"), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fakeSysfs) symlink(target, path string) {
	f.t.Helper()
	p := filepath.Join(f.root, path)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.Symlink(target, p); err != nil {
		f.t.Fatal(err)
	}
}

// pciDev is the sysfs directory of a PCI function behind one root port.
func pciDev(pci string) string { return "sys/devices/pci0000:80/0000:80:01.0/" + pci }

// device adds an RDMA device whose parent is the PCI function pci ("" for a
// software device without one).
func (f *fakeSysfs) device(name, pci string) {
	f.t.Helper()
	dir := "sys/devices/virtual/infiniband/" + name
	if pci != "" {
		dir = pciDev(pci) + "/infiniband/" + name
		f.symlink("../../../"+pci, dir+"/device")
	}
	if err := os.MkdirAll(filepath.Join(f.root, dir, "ports"), 0o755); err != nil {
		f.t.Fatal(err)
	}
	f.symlink("../../"+strings.TrimPrefix(dir, "sys/"), "sys/class/infiniband/"+name)
}

func (f *fakeSysfs) port(dev string, port, state, linkLayer, gid0 string) {
	f.t.Helper()
	base := "sys/class/infiniband/" + dev + "/ports/" + port + "/"
	f.write(base+"state", state)
	f.write(base+"link_layer", linkLayer)
	f.write(base+"gids/0", gid0)
	f.write(base+"gids/1", "0000:0000:0000:0000:0000:0000:0000:0000")
}

// netdev adds a network interface under the PCI function pci; attrs are
// its sysfs attributes (type, dev_port, address, ifindex, iflink).
func (f *fakeSysfs) netdev(pci, name string, attrs map[string]string) {
	f.t.Helper()
	dir := pciDev(pci) + "/net/" + name
	for k, v := range attrs {
		f.write(dir+"/"+k, v)
	}
	f.symlink("../../"+strings.TrimPrefix(dir, "sys/"), "sys/class/net/"+name)
}

func TestSysfsPorts(t *testing.T) {
	f := newFakeSysfs(t)

	// mlx5: one IB port per PCI function, with its IPoIB interface and a
	// pkey child interface that must not be taken for the port's netdev.
	f.device("mlx5_0", "0000:81:00.0")
	f.port("mlx5_0", "1", "4: ACTIVE", "InfiniBand", "fe80:0000:0000:0000:0002:C903:00A1:B2C1")
	f.netdev("0000:81:00.0", "ibp129s0", map[string]string{
		"type": "32", "dev_port": "0", "ifindex": "5", "iflink": "5",
		"address": "00:00:10:87:fe:80:00:00:00:00:00:00:00:02:c9:03:00:a1:b2:c1",
	})
	f.netdev("0000:81:00.0", "ibp129s0.8001", map[string]string{
		"type": "32", "dev_port": "0", "ifindex": "9", "iflink": "5",
		"address": "00:00:10:89:fe:80:00:00:00:00:00:00:00:02:c9:03:00:a1:b2:c1",
	})

	// A dual-port card: an IB port that is down and has no interface, and
	// a RoCE port whose Ethernet interface is not IPoIB.
	f.device("mlx4_0", "0000:82:00.0")
	f.port("mlx4_0", "1", "1: DOWN", "InfiniBand", "fe80:0000:0000:0000:0002:c903:00a1:c001")
	f.port("mlx4_0", "2", "4: ACTIVE", "Ethernet", "fe80:0000:0000:0000:0202:c9ff:fea1:c002")
	f.netdev("0000:82:00.0", "enp130s0d1", map[string]string{
		"type": "1", "dev_port": "1", "ifindex": "6", "iflink": "6", "address": "02:02:c9:a1:c0:02",
	})

	got, err := Sysfs{Root: f.root}.Ports(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []bootstrap.IBPort{
		{Device: "mlx4_0", Port: 1, GUID: "0002c90300a1c001", PCI: "0000:82:00.0", State: "DOWN", LinkLayer: "InfiniBand"},
		{Device: "mlx4_0", Port: 2, GUID: "0202c9fffea1c002", PCI: "0000:82:00.0", State: "ACTIVE", LinkLayer: "Ethernet"},
		{Device: "mlx5_0", Port: 1, GUID: "0002c90300a1b2c1", PCI: "0000:81:00.0", NetDev: "ibp129s0", State: "ACTIVE", LinkLayer: "InfiniBand"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Ports:\n got  %+v\n want %+v", got, want)
	}
}

// TestSysfsPortsByGUID covers interfaces without dev_port (kernels before
// 3.15): the port is the one whose GUID ends the hardware address. The
// ports are numbered so that sorting by name would put 10 before 2.
func TestSysfsPortsByGUID(t *testing.T) {
	f := newFakeSysfs(t)
	f.device("mlx4_1", "0000:83:00.0")
	f.port("mlx4_1", "2", "4: ACTIVE", "InfiniBand", "fe80:0000:0000:0000:0002:c903:0000:0002")
	f.port("mlx4_1", "10", "2: INIT", "InfiniBand", "fe80:0000:0000:0000:0002:c903:0000:000a")
	f.netdev("0000:83:00.0", "ib0", map[string]string{
		"type": "32", "address": "80:00:02:08:fe:80:00:00:00:00:00:00:00:02:c9:03:00:00:00:0a",
	})
	f.netdev("0000:83:00.0", "ib1", map[string]string{
		"type": "32", "address": "80:00:02:09:fe:80:00:00:00:00:00:00:00:02:c9:03:00:00:00:02",
	})
	// A software RoCE device: no PCI parent, no device link.
	f.device("rxe0", "")
	f.port("rxe0", "1", "4: ACTIVE", "Ethernet", "fe80:0000:0000:0000:5054:00ff:fe12:3456")

	got, err := Sysfs{Root: f.root}.Ports(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []bootstrap.IBPort{
		{Device: "mlx4_1", Port: 2, GUID: "0002c90300000002", PCI: "0000:83:00.0", NetDev: "ib1", State: "ACTIVE", LinkLayer: "InfiniBand"},
		{Device: "mlx4_1", Port: 10, GUID: "0002c9030000000a", PCI: "0000:83:00.0", NetDev: "ib0", State: "INIT", LinkLayer: "InfiniBand"},
		{Device: "rxe0", Port: 1, GUID: "505400fffe123456", State: "ACTIVE", LinkLayer: "Ethernet"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Ports:\n got  %+v\n want %+v", got, want)
	}
}

func TestSysfsNoInfiniband(t *testing.T) {
	got, err := Sysfs{Root: t.TempDir()}.Ports(context.Background())
	if err != nil || got == nil || len(got) != 0 {
		t.Errorf("Ports without /sys/class/infiniband = %#v, %v; want empty, nil", got, err)
	}
}

func TestSysfsErrors(t *testing.T) {
	t.Run("missing state", func(t *testing.T) {
		f := newFakeSysfs(t)
		f.device("mlx5_0", "0000:81:00.0")
		f.write("sys/class/infiniband/mlx5_0/ports/1/link_layer", "InfiniBand")
		_, err := Sysfs{Root: f.root}.Ports(context.Background())
		want := "reading " + filepath.Join(f.root, "sys/class/infiniband/mlx5_0/ports/1/state") + ": "
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("error = %v, want it to start with %q", err, want)
		}
	})
	t.Run("bad GID", func(t *testing.T) {
		f := newFakeSysfs(t)
		f.device("mlx5_0", "0000:81:00.0")
		f.port("mlx5_0", "1", "4: ACTIVE", "InfiniBand", "fe80::2:c903:a1:b2c1")
		_, err := Sysfs{Root: f.root}.Ports(context.Background())
		if err == nil || !strings.Contains(err.Error(), "gids/0: GID") {
			t.Errorf("error = %v, want one naming gids/0", err)
		}
	})
}

// TestSysfsRealHost reads this machine's /sys; whatever is there (usually
// nothing) must read without error.
func TestSysfsRealHost(t *testing.T) {
	ports, err := Sysfs{}.Ports(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ports {
		if p.Device == "" || p.Port < 1 || len(p.GUID) != 16 || p.State == "" || p.LinkLayer == "" {
			t.Errorf("implausible port %+v", p)
		}
	}
	t.Logf("%d RDMA ports on this host: %+v", len(ports), ports)
}

func TestGUIDFromGID(t *testing.T) {
	for gid, want := range map[string]string{
		"fe80:0000:0000:0000:0002:c903:00a1:b2c1": "0002c90300a1b2c1",
		"FE80:0000:0000:0000:0002:C903:00A1:B2C1": "0002c90300a1b2c1",
	} {
		if got, err := guidFromGID(gid); err != nil || got != want {
			t.Errorf("guidFromGID(%q) = %q, %v; want %q", gid, got, err, want)
		}
	}
	for _, bad := range []string{"", "fe80::1", "fe80:0000:0000:0000:0002:c903:00a1:b2cz"} {
		if got, err := guidFromGID(bad); err == nil {
			t.Errorf("guidFromGID(%q) = %q, want an error", bad, got)
		}
	}
}
