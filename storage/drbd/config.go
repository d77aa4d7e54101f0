package drbd

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/pvehci/pvehci/storage/model"
)

// Limits that drbdadm 9.22 does not check (testbed-local.md §2) or that the
// kernel module imposes.
const (
	MaxMinor    = 1<<20 - 1 // the kernel's largest minor
	MaxNodeID   = 31        // DRBD 9 node ids are 0..31
	MaxVolume   = 65534     // DRBD_VOLUME_MAX in current drbd_limits.h
	MaxNodes    = MaxNodeID + 1
	MetaDiskInt = "internal"
)

// Transport is the DRBD transport of a resource's connections.
type Transport string

// The transports DRBD 9 ships: drbd_transport_tcp and drbd_transport_rdma.
// Any other name makes the kernel fail to load a module at connect time,
// which drbdadm does not notice.
const (
	TransportTCP  Transport = "tcp"
	TransportRDMA Transport = "rdma"
)

// ResourceConfig is everything the .res file of one resource says. Build
// fills it from the replicated state; tests and tools may fill it by hand.
// Render validates it first.
type ResourceConfig struct {
	Name string
	// Protocol is A, B or C; empty means C, the only protocol that does
	// not acknowledge a write before every replica has it.
	Protocol  string
	Transport Transport // empty means tcp
	// SharedSecret, when set, is rendered with cram-hmac-alg sha1 (as
	// LINSTOR does), so that a stray peer of another resource on a reused
	// port is refused rather than connected.
	SharedSecret string
	VerifyAlg    string // e.g. crc32c; empty leaves online verify unset
	Quorum       string // off, majority, all or a count; empty leaves it unset
	OnNoQuorum   string // io-error or suspend-io; empty leaves it unset
	// MaxBuffers (4 KiB pages) and RcvbufSize (bytes) are kept apart from
	// the other net options because RDMA needs them sized together; 0
	// means DRBD's default for tcp, and the sizing in the package doc
	// for rdma.
	MaxBuffers int
	RcvbufSize int64
	// Options, Net and Disk are further options of the resource's
	// options, net and disk sections (Disk also takes peer-device
	// options, which drbdadm applies per peer). They are rendered sorted
	// by name.
	Options []Option
	Net     []Option
	Disk    []Option
	Nodes   []Node
}

// Option is one `name value;` line of a section.
type Option struct {
	Name  string
	Value string
}

// Node is one `on` section: a host that holds the resource.
type Node struct {
	// Name is the host name as drbdadm matches it against `uname -n`
	// (LINSTOR's NodeUname property, else the node name).
	Name   string
	NodeID int
	Port   int // the node's TCP port for this resource, used on every path
	// Interfaces are the node's addresses DRBD may use. Address is an
	// IPv4 or IPv6 literal, optionally with a prefix length
	// ("10.99.0.1/24"), which lets path selection match subnets.
	Interfaces []Interface
	// PrefNic names the interface the node prefers (LINSTOR's PrefNic).
	PrefNic  string
	Diskless bool
	Volumes  []Volume
}

// Interface is a named address of a node (a LINSTOR net interface).
type Interface struct {
	Name    string
	Address string
}

// Volume is one `volume` of a node.
type Volume struct {
	Number int
	Minor  int
	// Disk is the backing block device; empty means `disk none` (a
	// diskless volume).
	Disk string
	// MetaDisk is "internal" or a device path; it must be empty for a
	// diskless volume.
	MetaDisk string
	// DiskOptions are this node's per-volume disk options, rendered in a
	// `disk {}` block inside the volume.
	DiskOptions []Option
}

// Option names drbdsetup 9.22 accepts in each section (`drbdsetup help
// resource-options|net-options|disk-options|peer-device-options`). LINSTOR
// filters properties through the same lists, generated at satellite start
// from `drbdsetup xml-help`; a static list keeps rendering pure.
var (
	resourceOptionNames = []string{"auto-promote", "auto-promote-timeout", "cpu-mask", "max-io-depth",
		"on-no-data-accessible", "on-no-quorum", "on-suspended-primary-outdated", "peer-ack-delay",
		"peer-ack-window", "quorum", "quorum-minimum-redundancy", "twopc-retry-timeout", "twopc-timeout"}
	netOptionNames = []string{"after-sb-0pri", "after-sb-1pri", "after-sb-2pri", "allow-remote-read",
		"allow-two-primaries", "always-asbp", "congestion-extents", "congestion-fill", "connect-int",
		"cram-hmac-alg", "csums-after-crash-only", "csums-alg", "data-integrity-alg", "fencing", "ko-count",
		"max-buffers", "max-epoch-size", "on-congestion", "ping-int", "ping-timeout", "protocol",
		"rcvbuf-size", "rr-conflict", "shared-secret", "sndbuf-size", "socket-check-timeout", "tcp-cork",
		"timeout", "transport", "use-rle", "verify-alg"}
	diskOptionNames = []string{"al-extents", "al-updates", "disable-write-same", "discard-zeroes-if-aligned",
		"disk-barrier", "disk-drain", "disk-flushes", "disk-timeout", "md-flushes", "on-io-error",
		"read-balancing", "resync-after", "rs-discard-granularity"}
	// peer-device options may stand in a resource's disk section; bitmap
	// is left out because drbdadm sets it per peer (no bitmap toward a
	// diskless peer).
	peerDeviceOptionNames = []string{"c-delay-target", "c-fill-target", "c-max-rate", "c-min-rate",
		"c-plan-ahead", "resync-rate"}
)

// typedField names the field that holds an option with a field of its own
// (empty for the others). The generic lists may not carry these, so that a
// value cannot be given twice.
func typedField(option string) string {
	switch option {
	case "quorum":
		return "Quorum"
	case "on-no-quorum":
		return "OnNoQuorum"
	case "protocol":
		return "Protocol"
	case "transport":
		return "Transport"
	case "verify-alg":
		return "VerifyAlg"
	case "max-buffers":
		return "MaxBuffers"
	case "rcvbuf-size":
		return "RcvbufSize"
	case "cram-hmac-alg", "shared-secret":
		return "SharedSecret"
	}
	return ""
}

var (
	// optionValue is what may stand unquoted after an option name:
	// numbers with units, yes/no, enum words, algorithm names, masks,
	// and resync-after's "resource/volume".
	optionValue = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:/+-]*$`)
	// algName is a plain kernel hash name such as crc32c or sha256;
	// templates like hmac(sha256) are no verify algorithm.
	algName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)
	// devicePath is a backing or meta-data device: an absolute path of
	// characters that need no quoting.
	devicePath = regexp.MustCompile(`^/[A-Za-z0-9._+:@/-]+$`)
)

// Validate checks the configuration for what drbdadm would accept but the
// kernel or the cluster would not (see the package doc). The error lists
// every problem, each saying what to change.
func (c ResourceConfig) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }

	if err := model.ValidateName(model.NameResourceDefinition, c.Name); err != nil {
		errs = append(errs, err)
	}
	switch c.Protocol {
	case "", "A", "B", "C":
	default:
		bad("protocol %q is not a DRBD protocol; use C (synchronous), or A or B", c.Protocol)
	}
	switch c.Transport {
	case "", TransportTCP, TransportRDMA:
	default:
		bad("transport %q is not a DRBD transport; set DrbdOptions/Net/transport to tcp or rdma", c.Transport)
	}
	if c.SharedSecret != "" && (len(c.SharedSecret) > 64 || strings.ContainsAny(c.SharedSecret, "\"\\\n\r\t ")) {
		bad("the shared secret must be at most 64 characters without quotes, backslashes or white space (DRBD's SHARED_SECRET_MAX); set a new one on the resource definition")
	}
	if c.VerifyAlg != "" && !algName.MatchString(c.VerifyAlg) {
		bad("verify-alg %q is not a kernel hash name; use one listed in /proc/crypto, e.g. crc32c or sha256", c.VerifyAlg)
	}
	if c.Quorum != "" {
		if err := checkQuorum(c.Quorum); err != nil {
			errs = append(errs, err)
		}
	}
	switch c.OnNoQuorum {
	case "", "io-error", "suspend-io":
	default:
		bad("on-no-quorum %q is unknown; use io-error or suspend-io", c.OnNoQuorum)
	}
	if c.MaxBuffers != 0 && (c.MaxBuffers < 32 || c.MaxBuffers > 131072) {
		bad("max-buffers %d is outside DRBD's range 32-131072 (4 KiB pages)", c.MaxBuffers)
	}
	if c.RcvbufSize < 0 || c.RcvbufSize > maxRcvbuf {
		bad("rcvbuf-size %d is outside DRBD's range 0-%d bytes (10 MiB)", c.RcvbufSize, maxRcvbuf)
	}
	if _, _, err := netSizing(c); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, checkOptions("options", c.Options, resourceOptionNames)...)
	errs = append(errs, checkOptions("net", c.Net, netOptionNames)...)
	errs = append(errs, checkOptions("disk", c.Disk, diskOptionNames, peerDeviceOptionNames)...)
	errs = append(errs, c.validateNodes()...)
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("DRBD resource %s: %w", c.Name, errors.Join(errs...))
}

func checkQuorum(q string) error {
	switch q {
	case "off", "majority", "all":
		return nil
	}
	if n, err := strconv.Atoi(q); err == nil && n >= 1 && n <= MaxNodes {
		return nil
	}
	return fmt.Errorf("quorum %q is unknown; use off, majority, all or a node count 1-%d", q, MaxNodes)
}

func checkOptions(section string, opts []Option, allowed ...[]string) []error {
	var errs []error
	seen := map[string]bool{}
	for _, o := range opts {
		known := false
		for _, names := range allowed {
			known = known || slices.Contains(names, o.Name)
		}
		switch {
		case typedField(o.Name) != "":
			errs = append(errs, fmt.Errorf("%s option %s has a field of its own (%s); set it there", section, o.Name, typedField(o.Name)))
		case !known:
			errs = append(errs, fmt.Errorf("%s option %q is not one DRBD 9 knows in its %s section; check the spelling (drbdsetup help %s-options)",
				section, o.Name, section, map[string]string{"options": "resource", "net": "net", "disk": "disk"}[section]))
		case seen[o.Name]:
			errs = append(errs, fmt.Errorf("%s option %s is given twice; keep one", section, o.Name))
		case !optionValue.MatchString(o.Value):
			errs = append(errs, fmt.Errorf("%s option %s has value %q, which is empty or has characters a DRBD value cannot carry; use a number, word or size such as 720M",
				section, o.Name, o.Value))
		}
		seen[o.Name] = true
	}
	return errs
}

func (c ResourceConfig) validateNodes() []error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	switch {
	case len(c.Nodes) == 0:
		bad("it has no nodes; place it on at least one node")
	case len(c.Nodes) > MaxNodes:
		bad("it has %d nodes, DRBD 9 allows %d", len(c.Nodes), MaxNodes)
	}
	names := map[string]string{}
	ids := map[int]string{}
	var volumes []int // of the first node, which every node must match
	for i, n := range c.Nodes {
		if err := model.ValidateName(model.NameNode, n.Name); err != nil {
			errs = append(errs, err)
		}
		if other, dup := names[model.Key(n.Name)]; dup {
			bad("node %s is listed twice (also as %s); list each host once", n.Name, other)
		}
		names[model.Key(n.Name)] = n.Name
		if n.NodeID < 0 || n.NodeID > MaxNodeID {
			bad("node %s: node-id %d is outside 0-%d", n.Name, n.NodeID, MaxNodeID)
		} else if other, dup := ids[n.NodeID]; dup {
			bad("node %s: node-id %d is also used by %s; every node of a resource needs its own", n.Name, n.NodeID, other)
		}
		ids[n.NodeID] = n.Name
		if n.Port < 1 || n.Port > 65535 {
			bad("node %s: port %d is not a TCP port (1-65535)", n.Name, n.Port)
		}
		errs = append(errs, validateInterfaces(n)...)
		var nums []int
		minors := map[int]int{}
		for _, v := range n.Volumes {
			nums = append(nums, v.Number)
			errs = append(errs, validateVolume(n, v)...)
			if other, dup := minors[v.Minor]; dup {
				bad("node %s: volumes %d and %d share minor %d", n.Name, other, v.Number, v.Minor)
			}
			minors[v.Minor] = v.Number
		}
		slices.Sort(nums)
		if len(nums) == 0 {
			bad("node %s has no volumes; a DRBD resource needs at least one", n.Name)
		}
		if len(slices.Compact(slices.Clone(nums))) != len(nums) {
			bad("node %s lists a volume number twice", n.Name)
		}
		if i == 0 {
			volumes = nums
		} else if !slices.Equal(nums, volumes) {
			bad("node %s has volumes %v but %s has %v; every node needs the same volume numbers", n.Name, nums, c.Nodes[0].Name, volumes)
		}
	}
	return errs
}

func validateInterfaces(n Node) []error {
	var errs []error
	if len(n.Interfaces) == 0 {
		return []error{fmt.Errorf("node %s has no network interfaces; add one (its \"default\" interface) so DRBD has an address", n.Name)}
	}
	seen := map[string]bool{}
	for _, ifc := range n.Interfaces {
		if err := model.ValidateName(model.NameNetInterface, ifc.Name); err != nil {
			errs = append(errs, fmt.Errorf("node %s: %w", n.Name, err))
		}
		if seen[model.Key(ifc.Name)] {
			errs = append(errs, fmt.Errorf("node %s: interface %s is listed twice", n.Name, ifc.Name))
		}
		seen[model.Key(ifc.Name)] = true
		if _, err := parseInterfaceAddr(ifc.Address); err != nil {
			errs = append(errs, fmt.Errorf("node %s interface %s: %w", n.Name, ifc.Name, err))
		}
	}
	return errs
}

func validateVolume(n Node, v Volume) []error {
	var errs []error
	bad := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf("node %s volume %d: "+format, append([]any{n.Name, v.Number}, a...)...))
	}
	if v.Number < 0 || v.Number > MaxVolume {
		bad("the volume number is outside 0-%d", MaxVolume)
	}
	if v.Minor < 0 || v.Minor > MaxMinor {
		bad("minor %d is outside 0-%d (the kernel's limit; drbdadm does not check it)", v.Minor, MaxMinor)
	}
	switch {
	case n.Diskless && v.Disk != "":
		bad("the node is diskless but the volume has disk %s; drop the disk or make the node diskful", v.Disk)
	case !n.Diskless && v.Disk == "":
		bad("the node is diskful but the volume has no disk; give the backing device or make the node diskless")
	case v.Disk != "" && !devicePath.MatchString(v.Disk):
		bad("disk %q is not an absolute device path without spaces or quotes", v.Disk)
	}
	switch {
	case v.Disk == "" && v.MetaDisk != "":
		bad("a diskless volume has no meta-data, but meta-disk %s is set; leave it empty", v.MetaDisk)
	case v.Disk != "" && v.MetaDisk == "":
		bad("meta-disk is missing; use %q", MetaDiskInt)
	case v.MetaDisk != "" && v.MetaDisk != MetaDiskInt && !devicePath.MatchString(v.MetaDisk):
		bad("meta-disk %q is neither %q nor an absolute device path", v.MetaDisk, MetaDiskInt)
	}
	if v.Disk == "" && len(v.DiskOptions) > 0 {
		bad("a diskless volume takes no disk options")
	}
	for _, err := range checkOptions("disk", v.DiskOptions, diskOptionNames) {
		bad("%v", err)
	}
	return errs
}

// ifAddr is a parsed interface address; bits is -1 when no prefix length
// was given.
type ifAddr struct {
	addr netip.Addr
	bits int
}

// parseInterfaceAddr accepts "10.0.0.1", "fd00::1" or either with a prefix
// length. Zones are refused (DRBD cannot take a link-local scope) and so are
// addresses no peer can connect to.
func parseInterfaceAddr(s string) (ifAddr, error) {
	a := ifAddr{bits: -1}
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return a, fmt.Errorf("address %q is not an IPv4 or IPv6 address with a prefix length, e.g. 10.99.0.1/24", s)
		}
		a.addr, a.bits = p.Addr(), p.Bits()
	} else {
		addr, err := netip.ParseAddr(s)
		if err != nil {
			return a, fmt.Errorf("address %q is not an IPv4 or IPv6 address; give the address DRBD should use, e.g. 10.99.0.1", s)
		}
		a.addr = addr
	}
	if a.addr.Zone() != "" {
		return a, fmt.Errorf("address %q has a zone; DRBD cannot use link-local scoped addresses, give a global or unique-local one", s)
	}
	if a.addr.Is4In6() {
		// DRBD would take it as IPv6 and never match the peer's IPv4
		// socket; say it the way it is meant.
		return a, fmt.Errorf("address %q is an IPv4-mapped IPv6 address; write it as %s", s, a.addr.Unmap())
	}
	if a.addr.IsUnspecified() || a.addr.IsMulticast() {
		return a, fmt.Errorf("address %q cannot be connected to; give the node's own unicast address", s)
	}
	return a, nil
}
