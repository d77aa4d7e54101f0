package bootstrap

import (
	"context"
	"errors"
	"net/netip"
)

// ErrNoLink is returned by [Network.Link] for an interface that does not
// exist.
var ErrNoLink = errors.New("no such network interface")

// Link is what the kernel says about one network interface.
type Link struct {
	Name string
	// Kind is the link's type as netlink names it: "bond", "bridge",
	// "ipoib", "veth", "dummy"; "device" for a physical NIC.
	Kind string
	// Up is true when the link is administratively up and its
	// operational state is up (or unknown, as for dummy links).
	Up bool
	// Master is the bond or bridge this link is enslaved to.
	Master string
	// Addrs are the link's IPv4 and IPv6 addresses with prefix length.
	Addrs []netip.Prefix
	MTU   int
	// LinkLayer is "ether" or "infiniband".
	LinkLayer string
}

// Network reads the host's network interfaces (netlink on a node). Steps
// use it to verify what ifreload did, never to change anything: Proxmox
// owns the network through /etc/network/interfaces.
type Network interface {
	// Link describes one interface; errors.Is(err, ErrNoLink) when it
	// does not exist.
	Link(ctx context.Context, name string) (Link, error)
	// Links lists every interface.
	Links(ctx context.Context) ([]Link, error)
}

// IBPort is one InfiniBand port as sysfs shows it under
// /sys/class/infiniband.
type IBPort struct {
	Device string // e.g. mlx5_0
	Port   int    // 1-based
	// GUID is the port GUID, the lower 64 bits of GID 0, written as
	// 16 hex digits without separators, e.g. 0002c90300a1b2c1.
	GUID string
	// PCI is the PCI address of the device, e.g. 0000:81:00.0.
	PCI string
	// NetDev is the IPoIB interface on this port, "" when none.
	NetDev string
	// State is the port state without its number: ACTIVE, INIT, DOWN.
	State string
	// LinkLayer is InfiniBand or Ethernet (RoCE).
	LinkLayer string
}

// RDMA lists the host's RDMA ports.
type RDMA interface {
	Ports(ctx context.Context) ([]IBPort, error)
}

// UnitState is what systemd says about one unit.
type UnitState struct {
	// LoadState is loaded, not-found, masked, ...
	LoadState string
	// ActiveState is active, inactive, failed, activating, ...
	ActiveState string
	// UnitFileState is enabled, disabled, static, masked, "" when the
	// unit has no file.
	UnitFileState string
}

// Systemd manages units (over D-Bus on a node).
type Systemd interface {
	// Reload makes systemd read unit files again (daemon-reload).
	Reload(ctx context.Context) error
	// Enable enables unit files (like systemctl enable).
	Enable(ctx context.Context, units ...string) error
	// Restart restarts a unit, or starts it when it is not running, and
	// waits for the job to finish; for a Type=notify unit that is after
	// READY=1.
	Restart(ctx context.Context, unit string) error
	// State reports a unit's state.
	State(ctx context.Context, unit string) (UnitState, error)
}
