package ifupdown

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Stanza is one "iface" stanza, with the "auto" line in front of it when
// Auto is set.
type Stanza struct {
	Name string
	// Auto brings the interface up at boot and with ifreload -a.
	Auto bool
	// Family is "inet" (the default when empty) or "inet6".
	Family string
	// Method is manual, static, loopback or dhcp.
	Method string
	// Options are written in order, one "key value" line each.
	Options []Option
}

// Option is one line of a stanza.
type Option struct {
	Key, Value string
}

func (s Stanza) family() string {
	if s.Family == "" {
		return "inet"
	}
	return s.Family
}

// lines renders the stanza the way Proxmox's writer does: "auto NAME",
// "iface NAME FAMILY METHOD", then the options indented by one tab.
func (s Stanza) lines() []string {
	var out []string
	if s.Auto {
		out = append(out, "auto "+s.Name)
	}
	out = append(out, s.ifaceLines()...)
	return out
}

func (s Stanza) ifaceLines() []string {
	out := []string{"iface " + s.Name + " " + s.family() + " " + s.Method}
	for _, o := range s.Options {
		out = append(out, "\t"+o.Key+" "+o.Value)
	}
	return out
}

// Render writes the stanzas, each followed by a blank line as Proxmox
// writes them.
func Render(stanzas ...Stanza) []byte {
	var b strings.Builder
	for _, s := range stanzas {
		for _, l := range s.lines() {
			b.WriteString(l + "\n")
		}
		b.WriteString("\n")
	}
	return []byte(b.String())
}

// Bond is an Ethernet bond. The defaults are Proxmox's guidance for a
// bond that carries corosync (pve-network.adoc, pvecm.adoc "Corosync Over
// Bonds"): LACP (802.3ad) with hashing on layer 3+4, and the fast LACP
// rate, because the slow default takes about 90 s to fail over while HA
// fences a node after about 60 s without quorum. The switch must use the
// fast rate too.
type Bond struct {
	// Name must be bondN: Proxmox recognises bonds by that name only.
	Name string
	// Slaves are the physical NICs. Proxmox 8 refuses (and its GUI can
	// no longer save the network) when a slave's name does not look like
	// a NIC to it: ethN, enX, ibX, nicN or ifN.
	Slaves []string
	// AnyNICName allows other slave names. Proxmox 9 recognises any
	// physical Ethernet NIC whatever its name; set it only for such
	// NICs on Proxmox 9.
	AnyNICName bool
	// Mode is bond-mode; "" means 802.3ad. Write it always: Proxmox's
	// writer falls back to balance-rr when it is missing.
	Mode string
	// Miimon is bond-miimon in ms; 0 means 100.
	Miimon int
	// XmitHashPolicy is bond-xmit-hash-policy; "" means layer3+4. Only
	// written for 802.3ad and balance-xor, as Proxmox does.
	XmitHashPolicy string
	// LACPRate is bond-lacp-rate; "" means fast. Only written for
	// 802.3ad.
	LACPRate string
	// MTU is mtu; 0 leaves it out.
	MTU int
}

// Bridge is a Linux bridge for VM networking and, here, the node's
// management address.
type Bridge struct {
	// Name is the bridge's name, vmbrN by Proxmox's convention (at most
	// 10 characters, a letter first).
	Name string
	// Ports are bridge-ports, e.g. bond0.
	Ports []string
	// Address is the node's address on the bridge; the zero value
	// makes the stanza "manual" without an address.
	Address netip.Prefix
	// Gateway is the default gateway; the zero value leaves it out.
	Gateway netip.Addr
	// VLANAware adds bridge-vlan-aware yes and bridge-vids.
	VLANAware bool
	// VIDs is bridge-vids; "" means 2-4094, Proxmox's default.
	VIDs string
	// There is no MTU: a bridge takes its ports' mtu (set it on the
	// bond), and ifupdown2 warns about an mtu on a bridge.
}

// IPoIB is an IP-over-InfiniBand port with an address, for the storage
// network and corosync's second link.
type IPoIB struct {
	// Name is the port's name. It must start with "ib", or Proxmox does
	// not treat it as a NIC (link type infiniband is not ether), and must
	// not contain a dot: ifupdown2 and Proxmox take "ib0.8001" for a
	// VLAN, and Proxmox's writer then dies on the VLAN id.
	Name string
	// Address is the port's address and prefix.
	Address netip.Prefix
	// Datagram selects datagram mode; the default is connected mode
	// with mtu 65520, which IPoIB needs for its throughput. (ConnectX-4
	// and later run "enhanced IPoIB", which supports datagram mode
	// only, unless the mlx5 driver is told otherwise.)
	Datagram bool
	// MTU is mtu; 0 means 65520 in connected mode and 2044 in datagram
	// mode (an IB MTU of 2048 less the 4-byte IPoIB header).
	MTU int
}

// Names and values Proxmox and ifupdown2 accept.
var (
	bondNameRE   = regexp.MustCompile(`^bond\d+$`)
	bridgeNameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]{0,9}$`)
	// physicalNICRE is Proxmox 9's $PHYSICAL_NIC_RE; Proxmox 8's is the
	// same without nicN/ifN.
	physicalNICRE = regexp.MustCompile(`^(?:eth\d+|en[^:.]+|ib[^:.]+|(?:nic|if)\d+)$`)
	ifnameRE      = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}$`)
)

func bondModes() []string {
	return []string{"balance-rr", "active-backup", "balance-xor", "broadcast", "802.3ad", "balance-tlb", "balance-alb"}
}

func hashPolicies() []string {
	return []string{"layer2", "layer2+3", "layer3+4", "encap2+3", "encap3+4", "vlan+srcmac"}
}

// Stanza renders the bond.
func (b Bond) Stanza() (Stanza, error) {
	s, err := b.stanza()
	if err != nil {
		return Stanza{}, fmt.Errorf("rendering bond %s: %w", b.Name, err)
	}
	return s, nil
}

func (b Bond) stanza() (Stanza, error) {
	if !bondNameRE.MatchString(b.Name) {
		return Stanza{}, fmt.Errorf("name %q is not bondN; Proxmox only treats interfaces named bondN as bonds", b.Name)
	}
	if len(b.Slaves) == 0 {
		return Stanza{}, errors.New("no slaves; name the NICs to bond")
	}
	for _, sl := range b.Slaves {
		if !ifnameRE.MatchString(sl) || strings.Contains(sl, ".") {
			return Stanza{}, fmt.Errorf("slave %q is not a valid NIC name", sl)
		}
		if !b.AnyNICName && !physicalNICRE.MatchString(sl) {
			return Stanza{}, fmt.Errorf("slave %q does not look like a NIC to Proxmox (ethN, enX, ibX, nicN, ifN), so its network writer would refuse the file; pin the NIC to such a name first (Proxmox 9 only: set AnyNICName)", sl)
		}
	}
	if dup := firstDuplicate(b.Slaves); dup != "" {
		return Stanza{}, fmt.Errorf("slave %s is listed twice", dup)
	}
	mode := def(b.Mode, "802.3ad")
	if !slices.Contains(bondModes(), mode) {
		return Stanza{}, fmt.Errorf("bond-mode %q is not one of %s", mode, strings.Join(bondModes(), ", "))
	}
	miimon := b.Miimon
	if miimon == 0 {
		miimon = 100
	}
	if miimon < 0 {
		return Stanza{}, fmt.Errorf("bond-miimon %d is negative", miimon)
	}
	slaves := slices.Clone(b.Slaves)
	slices.Sort(slaves) // Proxmox writes them sorted
	opts := []Option{
		{"bond-slaves", strings.Join(slaves, " ")},
		{"bond-miimon", strconv.Itoa(miimon)},
		{"bond-mode", mode},
	}
	if mode == "802.3ad" || mode == "balance-xor" {
		p := def(b.XmitHashPolicy, "layer3+4")
		if !slices.Contains(hashPolicies(), p) {
			return Stanza{}, fmt.Errorf("bond-xmit-hash-policy %q is not one of %s", p, strings.Join(hashPolicies(), ", "))
		}
		opts = append(opts, Option{"bond-xmit-hash-policy", p})
	}
	if b.MTU != 0 {
		if err := checkMTU(b.MTU, 9216); err != nil {
			return Stanza{}, err
		}
		opts = append(opts, Option{"mtu", strconv.Itoa(b.MTU)})
	}
	if mode == "802.3ad" {
		r := def(b.LACPRate, "fast")
		if r != "fast" && r != "slow" {
			return Stanza{}, fmt.Errorf("bond-lacp-rate %q is not fast or slow", r)
		}
		// After the options Proxmox knows, where its writer keeps the
		// ones it does not.
		opts = append(opts, Option{"bond-lacp-rate", r})
	}
	return Stanza{Name: b.Name, Auto: true, Method: "manual", Options: opts}, nil
}

// SlaveStanzas are the "iface NIC inet manual" stanzas Proxmox writes for
// every physical NIC, without auto (the bond brings them up).
func (b Bond) SlaveStanzas() []Stanza {
	slaves := slices.Clone(b.Slaves)
	slices.Sort(slaves)
	var out []Stanza
	for _, sl := range slaves {
		out = append(out, Stanza{Name: sl, Method: "manual"})
	}
	return out
}

// Stanza renders the bridge.
func (b Bridge) Stanza() (Stanza, error) {
	s, err := b.stanza()
	if err != nil {
		return Stanza{}, fmt.Errorf("rendering bridge %s: %w", b.Name, err)
	}
	return s, nil
}

func (b Bridge) stanza() (Stanza, error) {
	if !bridgeNameRE.MatchString(b.Name) {
		return Stanza{}, fmt.Errorf("name %q is not valid for a Proxmox bridge (a letter, then letters or digits, at most 10 characters, e.g. vmbr0)", b.Name)
	}
	if len(b.Ports) == 0 {
		// Proxmox writes "bridge-ports none", which ifup -s rejects.
		return Stanza{}, errors.New("no ports; name the bond or NIC the bridge connects to")
	}
	for _, p := range b.Ports {
		if !ifnameRE.MatchString(p) {
			return Stanza{}, fmt.Errorf("port %q is not a valid interface name", p)
		}
	}
	if dup := firstDuplicate(b.Ports); dup != "" {
		return Stanza{}, fmt.Errorf("port %s is listed twice", dup)
	}
	s := Stanza{Name: b.Name, Auto: true, Method: "manual"}
	if b.Address.IsValid() {
		if b.Address.Addr().Is6() {
			s.Family = "inet6"
		}
		s.Method = "static"
		s.Options = append(s.Options, Option{"address", b.Address.String()})
	}
	if b.Gateway.IsValid() {
		if !b.Address.IsValid() {
			return Stanza{}, errors.New("a gateway needs an address on the bridge")
		}
		if b.Gateway.Is4() != b.Address.Addr().Is4() {
			return Stanza{}, fmt.Errorf("gateway %s and address %s are of different IP families", b.Gateway, b.Address)
		}
		s.Options = append(s.Options, Option{"gateway", b.Gateway.String()})
	}
	ports := slices.Clone(b.Ports)
	slices.Sort(ports)
	s.Options = append(s.Options,
		Option{"bridge-ports", strings.Join(ports, " ")},
		Option{"bridge-stp", "off"},
		Option{"bridge-fd", "0"},
	)
	if b.VLANAware {
		vids := def(b.VIDs, "2-4094")
		if err := checkVIDs(vids); err != nil {
			return Stanza{}, err
		}
		s.Options = append(s.Options, Option{"bridge-vlan-aware", "yes"}, Option{"bridge-vids", vids})
	}
	return s, nil
}

// Stanza renders the IPoIB port.
func (p IPoIB) Stanza() (Stanza, error) {
	s, err := p.stanza()
	if err != nil {
		return Stanza{}, fmt.Errorf("rendering IPoIB interface %s: %w", p.Name, err)
	}
	return s, nil
}

func (p IPoIB) stanza() (Stanza, error) {
	if !strings.HasPrefix(p.Name, "ib") || !ifnameRE.MatchString(p.Name) || strings.Contains(p.Name, ".") {
		return Stanza{}, fmt.Errorf("name %q must start with \"ib\" (Proxmox only treats ib* as a NIC) and contain no dot (ib0.8001 would be taken for a VLAN); pin the port to a name such as ib0 or ibs1f0", p.Name)
	}
	if !p.Address.IsValid() {
		return Stanza{}, errors.New("no address")
	}
	mode, mtu, limit := "connected", 65520, 65520
	if p.Datagram {
		mode, mtu, limit = "datagram", 2044, 4092
	}
	if p.MTU != 0 {
		if err := checkMTU(p.MTU, limit); err != nil {
			return Stanza{}, fmt.Errorf("%w in %s mode", err, mode)
		}
		mtu = p.MTU
	}
	fam := ""
	if p.Address.Addr().Is6() {
		fam = "inet6"
	}
	return Stanza{Name: p.Name, Auto: true, Family: fam, Method: "static", Options: []Option{
		{"address", p.Address.String()},
		{"mtu", strconv.Itoa(mtu)},
		// ifupdown2 runs pre-up commands before it brings the port up
		// and sets the mtu, and 65520 is only valid in connected mode.
		// $IFACE is replaced by the name when the file is read.
		{"pre-up", "echo " + mode + " > /sys/class/net/$IFACE/mode"},
	}}, nil
}

func checkMTU(mtu, limit int) error {
	if mtu < 576 || mtu > limit {
		return fmt.Errorf("mtu %d is out of range 576-%d", mtu, limit)
	}
	return nil
}

// checkVIDs checks a bridge-vids list ("2-4094", "10 20-30"). ifup -s
// lets 2-5000 through.
func checkVIDs(vids string) error {
	for _, f := range strings.Fields(vids) {
		lo, hi, isRange := strings.Cut(f, "-")
		a, err1 := strconv.Atoi(lo)
		b := a
		var err2 error
		if isRange {
			b, err2 = strconv.Atoi(hi)
		}
		if err1 != nil || err2 != nil || a < 1 || b > 4094 || a > b {
			return fmt.Errorf("bridge-vids %q: %q is not a VLAN id or range within 1-4094", vids, f)
		}
	}
	if strings.TrimSpace(vids) == "" {
		return errors.New("bridge-vids is empty")
	}
	return nil
}

func def(v, d string) string {
	if v == "" {
		return d
	}
	return v
}

func firstDuplicate(s []string) string {
	seen := map[string]bool{}
	for _, x := range s {
		if seen[x] {
			return x
		}
		seen[x] = true
	}
	return ""
}
