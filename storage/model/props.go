package model

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	linstor "github.com/LINBIT/golinstor"
)

// Props is a LINSTOR property container: flat keys with '/'-separated
// namespaces ("DrbdOptions/Net/transport") mapping to string values. A nil
// Props is empty. encoding/json writes map keys sorted, so Props marshals
// deterministically.
type Props map[string]string

// Property keys pvehci reads or sets, spelled as LINSTOR spells them. They
// are built from golinstor's generated constants where those exist, so a
// typo fails to compile rather than silently missing.
const (
	// KeyPrefNic names the net interface DRBD connections use (research §2).
	KeyPrefNic = linstor.KeyPrefNic
	// KeyNodeUname is the node's `uname -n` when it differs from its LINSTOR name.
	KeyNodeUname = "NodeUname"
	// KeyAuxVMID is the only Aux property the Proxmox plugin sets: the owning VM.
	KeyAuxVMID = linstor.NamespcAuxiliary + "/pm/vmid"
	// KeyDrbdTransport selects a non-TCP DRBD transport ("rdma").
	KeyDrbdTransport = linstor.NamespcDrbdNetOptions + "/transport"
	// KeyAllowTwoPrimaries is set by the Proxmox plugin for live migration.
	KeyAllowTwoPrimaries = linstor.NamespcDrbdNetOptions + "/allow-two-primaries"
	// KeyQuorum and KeyOnNoQuorum are DRBD resource options; auto-quorum writes KeyQuorum.
	KeyQuorum     = linstor.NamespcDrbdResourceOptions + "/quorum"
	KeyOnNoQuorum = linstor.NamespcDrbdResourceOptions + "/on-no-quorum"
	// KeyAutoQuorum is the pre-2025 auto-quorum switch, still honoured by clients.
	KeyAutoQuorum = linstor.NamespcDrbdOptions + "/" + linstor.KeyDrbdAutoQuorum
	// KeyAutoAddQuorumTiebreaker enables the automatic tie-breaker (research §4).
	KeyAutoAddQuorumTiebreaker = linstor.NamespcDrbdOptions + "/" + linstor.KeyDrbdAutoAddQuorumTiebreaker
	// KeyAutoDiskful is minutes a diskless Primary waits before it gets a disk (research §5).
	KeyAutoDiskful = linstor.NamespcDrbdOptions + "/" + linstor.KeyDrbdAutoDiskful
	// KeyAutoDiskfulAllowCleanup lets auto-diskful remove user-made replicas afterwards.
	KeyAutoDiskfulAllowCleanup = linstor.NamespcDrbdOptions + "/" + linstor.KeyDrbdAutoDiskfulAllowCleanup
	// KeyAutoEvictAllowEviction is a first-start controller default of LINSTOR.
	KeyAutoEvictAllowEviction = linstor.NamespcDrbdOptions + "/" + linstor.KeyAutoEvictAllowEviction
	// KeyExactSize makes DRBD exactly the volume definition's size.
	KeyExactSize = linstor.NamespcDrbdOptions + "/" + linstor.KeyDrbdExactSize
	// KeyForceInitialSync disables the thin skip of the initial sync (research §3).
	KeyForceInitialSync = linstor.NamespcDrbdOptions + "/" + linstor.KeyForceInitialSync
	// KeyTcpPortAutoRange is the DRBD port range, "min-max", on a node or the controller.
	KeyTcpPortAutoRange = linstor.KeyTcpPortAutoRange
	// KeyMinorNrAutoRange is the DRBD minor range, "min-max", on the controller.
	KeyMinorNrAutoRange = linstor.KeyMinorNrAutoRange
	// KeyPeerSlotsNewResource overrides the default 7 DRBD peer slots.
	KeyPeerSlotsNewResource = linstor.KeyPeerSlotsNewResource
	// KeyStorPoolName selects the storage pool of a new volume.
	KeyStorPoolName = linstor.KeyStorPoolName
	// KeyDiskfulBy records who gave a resource its disk: user, auto-placer,
	// auto-diskful or make-available (research §5).
	KeyDiskfulBy = linstor.KeyRscDiskfulBy
	// KeyDrbdCurrentGi is the day0 generation identifier of a volume definition (research §3).
	KeyDrbdCurrentGi = linstor.KeyDrbdCurrentGi
	// KeyAutoplaceTarget=false keeps the autoplacer away from a node or pool.
	KeyAutoplaceTarget = linstor.KeyAutoplaceAllowTarget
	// Backing storage of a pool.
	KeyStorDriverLvmVg     = linstor.NamespcStorageDriver + "/" + linstor.KeyStorPoolVolumeGroup
	KeyStorDriverThinPool  = linstor.NamespcStorageDriver + "/" + linstor.KeyStorPoolThinPool
	KeyStorDriverZPool     = linstor.NamespcStorageDriver + "/" + linstor.KeyStorPoolZpool
	KeyStorDriverZPoolThin = linstor.NamespcStorageDriver + "/" + linstor.KeyStorPoolZpoolthin
)

// Namespaces that the lookup order distinguishes.
const (
	NamespaceDrbdOptions  = linstor.NamespcDrbdOptions
	NamespaceAux          = linstor.NamespcAuxiliary
	NamespaceStorDriver   = linstor.NamespcStorageDriver
	namespaceDrbdDisk     = linstor.NamespcDrbdDiskOptions
	namespaceDrbdResource = linstor.NamespcDrbdResourceOptions
)

// Values of KeyDiskfulBy.
const (
	DiskfulByUser          = "user"
	DiskfulByAutoPlacer    = "auto-placer"
	DiskfulByAutoDiskful   = "auto-diskful"
	DiskfulByMakeAvailable = "make-available"
)

// Limits of keys and values: LINSTOR's property table columns
// (PROP_KEY VARCHAR(512), PROP_VALUE VARCHAR(4096)).
const (
	MaxPropKeyLen   = 512
	MaxPropValueLen = 4096
)

// DefaultControllerProps returns the controller properties a fresh LINSTOR
// database starts with (research §2 "Defaults that end up in the file": the
// consolidated init SQL plus Migration_2025_02_19_AutoQuorumInheritRework,
// which turned auto-quorum=io-error into on-no-quorum=io-error). Clients and
// operators expect these; for example auto-diskful cleanup is on unless
// someone turns it off.
func DefaultControllerProps() Props {
	return Props{
		KeyOnNoQuorum:              "io-error",
		KeyAutoAddQuorumTiebreaker: "True",
		KeyAutoDiskfulAllowCleanup: "True",
		KeyAutoEvictAllowEviction:  "True",
	}
}

// Clone returns a copy that shares nothing with p. The copy of an empty
// container is nil so that snapshots do not depend on how it became empty.
func (p Props) Clone() Props {
	if len(p) == 0 {
		return nil
	}
	return maps.Clone(p)
}

// Keys returns the keys in sorted order.
func (p Props) Keys() []string { return slices.Sorted(maps.Keys(p)) }

// ValidatePropKey checks the shape of a key: 1 to 512 printable ASCII bytes
// without spaces, namespaces separated by single '/', no '/' at either end.
func ValidatePropKey(key string) error {
	fix := `write keys like "DrbdOptions/Net/transport"`
	switch {
	case key == "":
		return fmt.Errorf("property key is empty; %s", fix)
	case len(key) > MaxPropKeyLen:
		return fmt.Errorf("property key %.40q... is %d bytes long, at most %d are allowed", key, len(key), MaxPropKeyLen)
	case strings.HasPrefix(key, "/") || strings.HasSuffix(key, "/") || strings.Contains(key, "//"):
		return fmt.Errorf("property key %q has an empty namespace; %s", key, fix)
	}
	for i := 0; i < len(key); i++ {
		if c := key[i]; c <= ' ' || c >= 0x7f {
			return fmt.Errorf("property key %q contains byte 0x%02x at position %d; use printable ASCII without spaces", key, c, i+1)
		}
	}
	return nil
}

// ValidateNamespace checks a namespace given to delete_namespaces: a key
// prefix without the trailing '/'.
func ValidateNamespace(ns string) error {
	if err := ValidatePropKey(ns); err != nil {
		return fmt.Errorf("namespace: %w", err)
	}
	return nil
}

// ValidatePropValue checks a value's length and, for the keys pvehci itself
// parses, its syntax: a bad range set now would otherwise break allocation
// later, far from the mistake.
func ValidatePropValue(key, value string) error {
	if len(value) > MaxPropValueLen {
		return fmt.Errorf("value of property %q is %d bytes long, at most %d are allowed", key, len(value), MaxPropValueLen)
	}
	switch key {
	case KeyTcpPortAutoRange:
		_, err := ParseRange(value, TCPPortLimits())
		return err
	case KeyMinorNrAutoRange:
		_, err := ParseRange(value, MinorLimits())
		return err
	case KeyPeerSlotsNewResource:
		n, err := strconv.Atoi(value)
		if err != nil || n < 1 || n > MaxPeerSlots {
			return fmt.Errorf("%s=%q is not a number from 1 to %d", key, value, MaxPeerSlots)
		}
	case KeyAutoDiskful:
		// Minutes; LINSTOR accepts any whole number.
		if _, err := strconv.ParseInt(value, 10, 64); err != nil {
			return fmt.Errorf("%s=%q is not a whole number of minutes", key, value)
		}
	}
	return nil
}

// PropsChange is one modification of a property container, in LINSTOR's
// modify-body terms: delete whole namespaces, delete keys, then set keys.
type PropsChange struct {
	Set              Props    `json:"override_props,omitempty"`
	Delete           []string `json:"delete_props,omitempty"`
	DeleteNamespaces []string `json:"delete_namespaces,omitempty"`
}

// IsEmpty reports whether the change does nothing.
func (c PropsChange) IsEmpty() bool {
	return len(c.Set) == 0 && len(c.Delete) == 0 && len(c.DeleteNamespaces) == 0
}

// Validate checks every key and value. A key both set and deleted is
// refused: the caller's intent is unclear.
func (c PropsChange) Validate() error {
	for _, k := range c.Set.Keys() {
		if err := ValidatePropKey(k); err != nil {
			return err
		}
		if err := ValidatePropValue(k, c.Set[k]); err != nil {
			return err
		}
	}
	for _, k := range c.Delete {
		if err := ValidatePropKey(k); err != nil {
			return err
		}
		if _, ok := c.Set[k]; ok {
			return fmt.Errorf("property %q is both set and deleted in one request; do one or the other", k)
		}
	}
	for _, ns := range c.DeleteNamespaces {
		if err := ValidateNamespace(ns); err != nil {
			return err
		}
	}
	return nil
}

// Apply returns p with the change applied, leaving p untouched, and the keys
// it was asked to delete that were not set (LINSTOR warns about those).
func (c PropsChange) Apply(p Props) (Props, []string) {
	out := maps.Clone(p)
	if out == nil {
		out = Props{}
	}
	for _, ns := range c.DeleteNamespaces {
		prefix := ns + "/"
		for k := range out {
			if strings.HasPrefix(k, prefix) {
				delete(out, k)
			}
		}
	}
	var unset []string
	for _, k := range c.Delete {
		if _, ok := out[k]; !ok {
			unset = append(unset, k)
		}
		delete(out, k)
	}
	for k, v := range c.Set {
		out[k] = v
	}
	return out.Clone(), unset
}
