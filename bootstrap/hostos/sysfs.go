package hostos

import (
	"cmp"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/pvehci/pvehci/bootstrap"
)

// arphrdInfiniband is ARPHRD_INFINIBAND, the /sys/class/net/<if>/type of
// an IPoIB interface.
const arphrdInfiniband = 32

// Sysfs reads RDMA ports from /sys/class/infiniband.
//
// It does not use the RDMA netlink family: that needs the ib_core module
// loaded to answer at all, while sysfs simply has no infiniband class on a
// host without RDMA hardware, and a directory tree is easy to fake in tests.
type Sysfs struct {
	// Root is prepended to every /sys path; "" means "/". Tests point it
	// at a fake tree.
	Root string
}

var _ bootstrap.RDMA = Sysfs{}

func (s Sysfs) path(elem ...string) string {
	root := s.Root
	if root == "" {
		root = "/"
	}
	return filepath.Join(append([]string{root, "sys"}, elem...)...)
}

// Ports lists every port of every RDMA device, sorted by device then port.
// A host without /sys/class/infiniband has no RDMA devices: empty list, no
// error.
func (s Sysfs) Ports(ctx context.Context) ([]bootstrap.IBPort, error) {
	classDir := s.path("class", "infiniband")
	// Real sysfs entries are symlinks into /sys/devices; ReadDir does not
	// follow them, and neither does this code care about the entry type.
	devs, err := os.ReadDir(classDir)
	if errors.Is(err, fs.ErrNotExist) {
		return []bootstrap.IBPort{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", classDir, err)
	}
	out := []bootstrap.IBPort{}
	for _, d := range devs {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("reading %s: %w", classDir, err)
		}
		ports, err := s.devicePorts(d.Name())
		if err != nil {
			return nil, err
		}
		out = append(out, ports...)
	}
	slices.SortFunc(out, func(a, b bootstrap.IBPort) int {
		return cmp.Or(cmp.Compare(a.Device, b.Device), cmp.Compare(a.Port, b.Port))
	})
	return out, nil
}

func (s Sysfs) devicePorts(dev string) ([]bootstrap.IBPort, error) {
	devDir := s.path("class", "infiniband", dev)
	pci, err := s.pciAddress(devDir)
	if err != nil {
		return nil, err
	}
	portsDir := filepath.Join(devDir, "ports")
	entries, err := os.ReadDir(portsDir)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", portsDir, err)
	}
	var ports []bootstrap.IBPort
	for _, e := range entries {
		n, err := strconv.Atoi(e.Name())
		if err != nil || n < 1 {
			continue // not a port directory
		}
		p := bootstrap.IBPort{Device: dev, Port: n, PCI: pci}
		dir := filepath.Join(portsDir, e.Name())
		state, err := readAttr(filepath.Join(dir, "state"))
		if err != nil {
			return nil, err
		}
		// "4: ACTIVE": the number is the IB spec's encoding of the name.
		if _, name, ok := strings.Cut(state, ":"); ok {
			state = strings.TrimSpace(name)
		}
		p.State = state
		if p.LinkLayer, err = readAttr(filepath.Join(dir, "link_layer")); err != nil {
			return nil, err
		}
		gidPath := filepath.Join(dir, "gids", "0")
		gid, err := readAttr(gidPath)
		if err != nil {
			return nil, err
		}
		if p.GUID, err = guidFromGID(gid); err != nil {
			return nil, fmt.Errorf("reading %s: %w", gidPath, err)
		}
		ports = append(ports, p)
	}
	if err := s.attachNetDevs(devDir, ports); err != nil {
		return nil, err
	}
	return ports, nil
}

// pciAddress is the basename of where the device symlink points, e.g.
// ../../../0000:81:00.0. Software devices (rxe, siw) have no device link
// and no PCI address: "".
func (s Sysfs) pciAddress(devDir string) (string, error) {
	link := filepath.Join(devDir, "device")
	// Resolve rather than Readlink: the class entry itself is a symlink,
	// and only the fully resolved path is the PCI device. Sysfs links are
	// relative, so resolution stays inside a fake Root.
	target, err := filepath.EvalSymlinks(link)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("resolving %s: %w", link, err)
	}
	return filepath.Base(target), nil
}

// attachNetDevs fills in each port's IPoIB interface from the netdevs of
// the device's parent (devDir/device/net).
//
// The port is taken from the netdev's dev_port, which IPoIB sets to the
// 0-based port number (port = dev_port+1). That is the kernel stating the
// relation outright, and it needs no GID: GID 0 can change when a subnet
// manager assigns alias GUIDs, and mlx4 puts both ports' netdevs under one
// PCI function, so the parent alone does not tell the ports apart. Only
// when dev_port is missing (kernels before 3.15; every Proxmox kernel has
// it) is the port found by
// matching the last 8 bytes of the netdev's hardware address, which for
// IPoIB is QPN + GID, against the port GUID.
//
// Netdevs that are not IPoIB (the Ethernet netdev of a RoCE port shares
// the parent) are skipped, and so are IPoIB child interfaces (pkey
// interfaces such as ib0.8001), which report their parent's ifindex as
// iflink; a port's NetDev is the parent interface.
func (s Sysfs) attachNetDevs(devDir string, ports []bootstrap.IBPort) error {
	netDir := filepath.Join(devDir, "device", "net")
	entries, err := os.ReadDir(netDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading %s: %w", netDir, err)
	}
	for _, e := range entries {
		name := e.Name()
		dir := filepath.Join(netDir, name)
		typ, err := readAttr(filepath.Join(dir, "type"))
		if err != nil {
			return err
		}
		if typ != strconv.Itoa(arphrdInfiniband) {
			continue
		}
		child, err := isChild(dir)
		if err != nil {
			return err
		}
		if child {
			continue
		}
		port, err := netDevPort(dir, ports)
		if err != nil {
			return err
		}
		for i := range ports {
			// ReadDir sorts, so when two parents claim one port (which the
			// kernel does not do) the first name wins, deterministically.
			if ports[i].Port == port && ports[i].NetDev == "" {
				ports[i].NetDev = name
			}
		}
	}
	return nil
}

// isChild reports whether the netdev in dir is a child interface: its
// iflink names another interface.
func isChild(dir string) (bool, error) {
	iflink, err := readAttr(filepath.Join(dir, "iflink"))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	ifindex, err := readAttr(filepath.Join(dir, "ifindex"))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return iflink != ifindex, nil
}

// netDevPort is the 1-based port of the IPoIB netdev in dir, 0 when it
// matches none of ports.
func netDevPort(dir string, ports []bootstrap.IBPort) (int, error) {
	devPortPath := filepath.Join(dir, "dev_port")
	devPort, err := readAttr(devPortPath)
	if err == nil {
		n, err := strconv.Atoi(devPort)
		if err != nil {
			return 0, fmt.Errorf("reading %s: %w", devPortPath, err)
		}
		return n + 1, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return 0, err
	}
	addrPath := filepath.Join(dir, "address")
	addr, err := readAttr(addrPath)
	if err != nil {
		return 0, err
	}
	hw := strings.ReplaceAll(addr, ":", "")
	if len(hw) < 16 {
		return 0, fmt.Errorf("reading %s: hardware address %q is too short for IPoIB", addrPath, addr)
	}
	guid := strings.ToLower(hw[len(hw)-16:])
	for _, p := range ports {
		if p.GUID == guid {
			return p.Port, nil
		}
	}
	return 0, nil
}

// guidFromGID takes the interface ID, the lower 64 bits, of a GID as sysfs
// prints it: eight colon-separated groups of four hex digits.
func guidFromGID(gid string) (string, error) {
	h := strings.ReplaceAll(gid, ":", "")
	if len(h) != 32 {
		return "", fmt.Errorf("GID %q is not 128 bits", gid)
	}
	if _, err := hex.DecodeString(h); err != nil {
		return "", fmt.Errorf("GID %q: %w", gid, err)
	}
	return strings.ToLower(h[16:]), nil
}

func readAttr(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", path, err)
	}
	return strings.TrimSpace(string(b)), nil
}
