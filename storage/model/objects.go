package model

import (
	"fmt"
	"maps"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Names of the objects a fresh LINSTOR database has (consolidated init SQL,
// research §4 "Counts": DfltRscGrp has place count 2).
const (
	DefaultResourceGroup       = "DfltRscGrp"
	DefaultStoragePool         = "DfltStorPool"
	DefaultDisklessStoragePool = "DfltDisklessStorPool"
	DefaultNetInterface        = "default" // the netif PrefNic falls back to (research §2)
	DefaultPlaceCount          = 2
)

// Node is a LINSTOR node: a host that runs a satellite, a controller or both.
type Node struct {
	Name          string         `json:"name"`
	Type          NodeType       `json:"type"`
	NetInterfaces []NetInterface `json:"net_interfaces,omitempty"` // sorted by Key(Name)
	Props         Props          `json:"props,omitempty"`
	Flags         Flags          `json:"flags,omitempty"`
	UUID          string         `json:"uuid,omitempty"`
}

// NetInterface is an address of a node. The one named "default" is what DRBD
// uses when no PrefNic says otherwise.
type NetInterface struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	// SatellitePort and SatelliteEncryptionType exist so that the REST layer
	// can show LINSTOR's satellite connection fields; pvehci's own
	// node-to-node traffic does not use them.
	SatellitePort           int    `json:"satellite_port,omitempty"`
	SatelliteEncryptionType string `json:"satellite_encryption_type,omitempty"`
	UUID                    string `json:"uuid,omitempty"`
}

// Validate checks the interface on its own.
func (n NetInterface) Validate() error {
	if err := ValidateName(NameNetInterface, n.Name); err != nil {
		return err
	}
	if _, err := netip.ParseAddr(n.Address); err != nil {
		return fmt.Errorf("net interface %s: address %q is not an IPv4 or IPv6 address; give the address DRBD should use, e.g. 10.0.0.1", n.Name, n.Address)
	}
	if n.SatellitePort != 0 && !TCPPortLimits().Contains(n.SatellitePort) {
		return fmt.Errorf("net interface %s: satellite port %d is not a TCP port (1-65535)", n.Name, n.SatellitePort)
	}
	switch strings.ToUpper(n.SatelliteEncryptionType) {
	case "", "PLAIN", "SSL":
	default:
		return fmt.Errorf("net interface %s: encryption type %q is unknown; use PLAIN or SSL", n.Name, n.SatelliteEncryptionType)
	}
	return nil
}

// NetInterface returns the node's interface with that name.
func (n Node) NetInterface(name string) (NetInterface, bool) {
	for _, ni := range n.NetInterfaces {
		if SameName(ni.Name, name) {
			return ni, true
		}
	}
	return NetInterface{}, false
}

// StoragePoolDefinition is the cluster-wide name of a storage pool; each
// node's pool of that name refers to it.
type StoragePoolDefinition struct {
	Name  string `json:"name"`
	Props Props  `json:"props,omitempty"`
	UUID  string `json:"uuid,omitempty"`
}

// StoragePool is one node's pool. Its backing VG and thin pool (or zpool)
// are properties, as in LINSTOR. Free and total capacity are observed state
// reported by the satellite and are not kept here.
type StoragePool struct {
	Node         string       `json:"node"`
	Name         string       `json:"name"`
	ProviderKind ProviderKind `json:"provider_kind"`
	Props        Props        `json:"props,omitempty"`
	// SharedSpace names storage shared by several nodes' pools; empty
	// means the pool's space is its own.
	SharedSpace string `json:"shared_space,omitempty"`
	UUID        string `json:"uuid,omitempty"`
}

// SelectFilter is LINSTOR's AutoSelectFilter: the placement rules of a
// resource group (research §1.3, §4). The placer reads it; the state only
// stores and validates it.
type SelectFilter struct {
	PlaceCount              int            `json:"place_count,omitempty"`
	AdditionalPlaceCount    int            `json:"additional_place_count,omitempty"`
	NodeNameList            []string       `json:"node_name_list,omitempty"`
	StoragePool             string         `json:"storage_pool,omitempty"`
	StoragePoolList         []string       `json:"storage_pool_list,omitempty"`
	StoragePoolDisklessList []string       `json:"storage_pool_diskless_list,omitempty"`
	NotPlaceWithRsc         []string       `json:"not_place_with_rsc,omitempty"`
	NotPlaceWithRscRegex    string         `json:"not_place_with_rsc_regex,omitempty"`
	ReplicasOnSame          []string       `json:"replicas_on_same,omitempty"`
	ReplicasOnDifferent     []string       `json:"replicas_on_different,omitempty"`
	XReplicasOnDifferentMap map[string]int `json:"x_replicas_on_different_map,omitempty"`
	LayerStack              []string       `json:"layer_stack,omitempty"`
	ProviderList            []string       `json:"provider_list,omitempty"`
	DisklessOnRemaining     bool           `json:"diskless_on_remaining,omitempty"`
	DisklessType            string         `json:"diskless_type,omitempty"`
}

// Validate checks the filter's values. Names are checked for shape only:
// LINSTOR accepts filters naming pools and nodes that do not exist yet.
func (f SelectFilter) Validate() error {
	if f.PlaceCount < 0 || f.PlaceCount > NodeIDLimits().Size() {
		return fmt.Errorf("place_count %d is out of range; use 1 to %d replicas", f.PlaceCount, NodeIDLimits().Size())
	}
	if f.AdditionalPlaceCount < 0 || f.AdditionalPlaceCount > NodeIDLimits().Size() {
		return fmt.Errorf("additional_place_count %d is out of range 0 to %d", f.AdditionalPlaceCount, NodeIDLimits().Size())
	}
	for _, n := range f.NodeNameList {
		if err := ValidateName(NameNode, n); err != nil {
			return fmt.Errorf("node_name_list: %w", err)
		}
	}
	for _, p := range append(append([]string{}, f.StoragePoolList...), f.StoragePoolDisklessList...) {
		if err := ValidateName(NameStoragePool, p); err != nil {
			return fmt.Errorf("storage pool list: %w", err)
		}
	}
	if f.StoragePool != "" {
		if err := ValidateName(NameStoragePool, f.StoragePool); err != nil {
			return fmt.Errorf("storage_pool: %w", err)
		}
	}
	for _, r := range f.NotPlaceWithRsc {
		if err := ValidateName(NameResourceDefinition, r); err != nil {
			return fmt.Errorf("not_place_with_rsc: %w", err)
		}
	}
	if f.NotPlaceWithRscRegex != "" {
		// LINSTOR uses Java regular expressions; RE2 accepts their common
		// subset, and rejecting what RE2 cannot run is better than
		// misplacing later.
		if _, err := regexp.Compile(f.NotPlaceWithRscRegex); err != nil {
			return fmt.Errorf("not_place_with_rsc_regex %q does not compile: %v", f.NotPlaceWithRscRegex, err)
		}
	}
	for k, n := range f.XReplicasOnDifferentMap {
		if n < 1 {
			return fmt.Errorf("x_replicas_on_different_map[%q] = %d; counts must be at least 1", k, n)
		}
	}
	if err := ValidateLayerStack(f.LayerStack); err != nil {
		return fmt.Errorf("layer_stack: %w", err)
	}
	for _, p := range f.ProviderList {
		if _, err := ParseProviderKind(p); err != nil {
			return fmt.Errorf("provider_list: %w", err)
		}
	}
	switch strings.ToUpper(f.DisklessType) {
	case "", "DRBD_DISKLESS", "NVME_INITIATOR", "EBS_INITIATOR":
	default:
		return fmt.Errorf("diskless_type %q is unknown; use DRBD_DISKLESS", f.DisklessType)
	}
	return nil
}

// Clone returns a deep copy.
func (f SelectFilter) Clone() SelectFilter {
	f.NodeNameList = slices.Clone(f.NodeNameList)
	f.StoragePoolList = slices.Clone(f.StoragePoolList)
	f.StoragePoolDisklessList = slices.Clone(f.StoragePoolDisklessList)
	f.NotPlaceWithRsc = slices.Clone(f.NotPlaceWithRsc)
	f.ReplicasOnSame = slices.Clone(f.ReplicasOnSame)
	f.ReplicasOnDifferent = slices.Clone(f.ReplicasOnDifferent)
	f.XReplicasOnDifferentMap = maps.Clone(f.XReplicasOnDifferentMap)
	f.LayerStack = slices.Clone(f.LayerStack)
	f.ProviderList = slices.Clone(f.ProviderList)
	return f
}

// ResourceGroup is a template for resource definitions: properties they
// inherit and the rules for placing their replicas.
type ResourceGroup struct {
	Name         string        `json:"name"`
	Description  string        `json:"description,omitempty"`
	Props        Props         `json:"props,omitempty"`
	SelectFilter SelectFilter  `json:"select_filter"`
	PeerSlots    int           `json:"peer_slots,omitempty"`
	VolumeGroups []VolumeGroup `json:"volume_groups,omitempty"` // sorted by number
	UUID         string        `json:"uuid,omitempty"`
}

// VolumeGroup is a resource group's template for one volume number.
type VolumeGroup struct {
	VolumeNumber int    `json:"volume_number"`
	Props        Props  `json:"props,omitempty"`
	Flags        Flags  `json:"flags,omitempty"`
	UUID         string `json:"uuid,omitempty"`
}

// VolumeGroup returns the group's volume group with that number.
func (g ResourceGroup) VolumeGroup(vnr int) (VolumeGroup, bool) {
	for _, vg := range g.VolumeGroups {
		if vg.VolumeNumber == vnr {
			return vg, true
		}
	}
	return VolumeGroup{}, false
}

// DrbdResourceDefinition is the DRBD layer data of a resource definition.
type DrbdResourceDefinition struct {
	// Port is the preferred TCP port given at creation (LINSTOR's
	// drbd_port, "preferred TCP port if available on node level"). Since
	// LINSTOR 1.31.2 ports are held per resource; 0 means no preference.
	Port      int           `json:"port,omitempty"`
	Secret    string        `json:"secret"`
	Transport DrbdTransport `json:"transport_type"`
	// PeerSlots for new resources; 0 means "look up PeerSlotsNewResource,
	// else 7".
	PeerSlots int `json:"peer_slots,omitempty"`
}

// ResourceDefinition is a replicated volume set: what LINSTOR calls a
// resource, before it is placed on any node.
type ResourceDefinition struct {
	Name              string                 `json:"name"`
	ExternalName      string                 `json:"external_name,omitempty"`
	ResourceGroup     string                 `json:"resource_group"`
	Props             Props                  `json:"props,omitempty"`
	Flags             Flags                  `json:"flags,omitempty"`
	LayerStack        []string               `json:"layer_stack,omitempty"`
	Drbd              DrbdResourceDefinition `json:"drbd"`
	VolumeDefinitions []VolumeDefinition     `json:"volume_definitions,omitempty"` // sorted by number
	UUID              string                 `json:"uuid,omitempty"`
}

// VolumeDefinition returns the definition's volume with that number.
func (d ResourceDefinition) VolumeDefinition(vnr int) (VolumeDefinition, bool) {
	for _, vd := range d.VolumeDefinitions {
		if vd.VolumeNumber == vnr {
			return vd, true
		}
	}
	return VolumeDefinition{}, false
}

// VolumeDefinition is one volume of a resource definition. Its DRBD minor
// is the same on every node (cluster-wide, research §2).
type VolumeDefinition struct {
	VolumeNumber int    `json:"volume_number"`
	SizeKiB      int64  `json:"size_kib"`
	Minor        int    `json:"minor"`
	Props        Props  `json:"props,omitempty"`
	Flags        Flags  `json:"flags,omitempty"`
	UUID         string `json:"uuid,omitempty"`
}

// MaxVolumeSizeKiB is the largest volume DRBD metadata can describe
// (research §2: maximum gross size 2^40 KiB).
const MaxVolumeSizeKiB = int64(1) << 40

// MaxVolumeNumber bounds volume numbers (LINSTOR VolumeNumber: 0..65535).
const MaxVolumeNumber = 65535

// Resource is a resource definition placed on one node. Its DRBD node id is
// unique within the definition; its TCP ports are unique on its node.
type Resource struct {
	// Name is the resource definition's name, as LINSTOR names resources.
	Name      string   `json:"name"`
	Node      string   `json:"node"`
	NodeID    int      `json:"node_id"`
	TCPPorts  []int    `json:"tcp_ports"`
	PeerSlots int      `json:"peer_slots"`
	Props     Props    `json:"props,omitempty"`
	Flags     Flags    `json:"flags,omitempty"`
	Volumes   []Volume `json:"volumes,omitempty"` // sorted by number
	UUID      string   `json:"uuid,omitempty"`
	// CreateTimestamp is milliseconds since the epoch, from the command.
	CreateTimestamp int64 `json:"create_timestamp,omitempty"`
}

// Volume is a volume definition placed on the resource's node.
type Volume struct {
	VolumeNumber int    `json:"volume_number"`
	StoragePool  string `json:"storage_pool"`
	Props        Props  `json:"props,omitempty"`
	Flags        Flags  `json:"flags,omitempty"`
	UUID         string `json:"uuid,omitempty"`
}

// Diskless reports whether the resource holds no data for DRBD (a DRBD
// client or a tie-breaker).
func (r Resource) Diskless() bool {
	return r.Flags.Has(RscFlagDrbdDiskless) || r.Flags.Has(RscFlagDiskless)
}

// TieBreaker reports whether the resource exists only to give quorum a vote.
func (r Resource) TieBreaker() bool { return r.Flags.Has(RscFlagTieBreaker) }

// Volume returns the resource's volume with that number.
func (r Resource) Volume(vnr int) (Volume, bool) {
	for _, v := range r.Volumes {
		if v.VolumeNumber == vnr {
			return v, true
		}
	}
	return Volume{}, false
}

// SnapshotDefinition is a named snapshot of a resource definition, taken on
// some of its nodes. It copies the definition's properties and sizes at the
// time it was taken, because a restore must not depend on the live objects.
type SnapshotDefinition struct {
	ResourceName            string                     `json:"resource_name"`
	Name                    string                     `json:"name"`
	Props                   Props                      `json:"props,omitempty"`
	Flags                   Flags                      `json:"flags,omitempty"`
	ResourceDefinitionProps Props                      `json:"resource_definition_props,omitempty"`
	VolumeDefinitions       []SnapshotVolumeDefinition `json:"volume_definitions,omitempty"` // sorted by number
	Snapshots               []Snapshot                 `json:"snapshots,omitempty"`          // sorted by Key(Node)
	UUID                    string                     `json:"uuid,omitempty"`
	CreateTimestamp         int64                      `json:"create_timestamp,omitempty"`
}

// SnapshotVolumeDefinition is a volume definition as it was at snapshot time.
type SnapshotVolumeDefinition struct {
	VolumeNumber          int   `json:"volume_number"`
	SizeKiB               int64 `json:"size_kib"`
	Props                 Props `json:"props,omitempty"`
	VolumeDefinitionProps Props `json:"volume_definition_props,omitempty"`
}

// Snapshot is one node's part of a snapshot definition. A restore reuses its
// DRBD node id (research §3 "Restore into a new RD").
type Snapshot struct {
	Node            string           `json:"node"`
	NodeID          int              `json:"node_id"`
	Flags           Flags            `json:"flags,omitempty"`
	Props           Props            `json:"props,omitempty"`
	ResourceProps   Props            `json:"resource_props,omitempty"`
	Volumes         []SnapshotVolume `json:"volumes,omitempty"` // sorted by number
	CreateTimestamp int64            `json:"create_timestamp,omitempty"`
}

// SnapshotVolume is one volume of a node's snapshot.
type SnapshotVolume struct {
	VolumeNumber int    `json:"volume_number"`
	StoragePool  string `json:"storage_pool"`
	Props        Props  `json:"props,omitempty"`
	VolumeProps  Props  `json:"volume_props,omitempty"`
}

// JobTarget says what a job works on: everything, a resource group's
// definitions, or one resource definition.
type JobTarget struct {
	Kind TargetKind `json:"kind"`
	Name string     `json:"name,omitempty"`
}

func (t JobTarget) String() string {
	if t.Kind == TargetAll {
		return string(TargetAll)
	}
	return string(t.Kind) + " " + t.Name
}

// Validate checks the target's shape; whether the named object exists is
// the state's concern.
func (t JobTarget) Validate() error {
	switch t.Kind {
	case TargetAll:
		if t.Name != "" {
			return fmt.Errorf("job target %q names %q; a target of kind all takes no name", t.Kind, t.Name)
		}
	case TargetResourceGroup:
		return ValidateName(NameResourceGroup, t.Name)
	case TargetResourceDefinition:
		return ValidateName(NameResourceDefinition, t.Name)
	case TargetResourceDefinitions:
		names := t.Names()
		if len(names) == 0 {
			return fmt.Errorf("job target %s names no resource definition; give them separated by commas, e.g. resource-definitions:vm-100-disk-0,vm-101-disk-0", t.Kind)
		}
		for _, n := range names {
			if err := ValidateName(NameResourceDefinition, n); err != nil {
				return err
			}
		}
	case TargetSelector:
		key, value, ok := t.Selector()
		if !ok || key == "" || value == "" {
			return fmt.Errorf("job target selector %q: use KEY=VALUE with a resource definition property, e.g. selector:Aux/backup=nightly", t.Name)
		}
		if err := ValidatePropKey(key); err != nil {
			return fmt.Errorf("job target selector %q: %w", t.Name, err)
		}
	default:
		return fmt.Errorf("job target kind %q is unknown; use all, resource-group, resource-definition, resource-definitions or selector", t.Kind)
	}
	return nil
}

// Names are the definitions a resource-definitions target lists.
func (t JobTarget) Names() []string {
	var out []string
	for n := range strings.SplitSeq(t.Name, ",") {
		if n = strings.TrimSpace(n); n != "" {
			out = append(out, n)
		}
	}
	return out
}

// Selector splits a selector target into its property key and value.
func (t JobTarget) Selector() (key, value string, ok bool) {
	return strings.Cut(t.Name, "=")
}

// Selects reports whether the target selects resource definition rd.
func (t JobTarget) Selects(rd ResourceDefinition) bool {
	switch t.Kind {
	case TargetAll:
		return true
	case TargetResourceGroup:
		return SameName(rd.ResourceGroup, t.Name)
	case TargetResourceDefinition:
		return SameName(rd.Name, t.Name)
	case TargetResourceDefinitions:
		return slices.ContainsFunc(t.Names(), func(n string) bool { return SameName(n, rd.Name) })
	case TargetSelector:
		key, value, _ := t.Selector()
		v, ok := rd.Props[key]
		return ok && v == value
	}
	return false
}

// JobSchedule is a recurring pvehci job: snapshots with retention, or DRBD
// online verify. Options carry kind-specific settings (for example
// "retain", "prefix", "max-failures") that the scheduler interprets.
type JobSchedule struct {
	Name    string            `json:"name"`
	Cron    string            `json:"cron"`
	Kind    JobKind           `json:"kind"`
	Target  JobTarget         `json:"target"`
	Options map[string]string `json:"options,omitempty"`
	Paused  bool              `json:"paused,omitempty"`
	// RunRequestedAt is the latest `schedule run-now` request (ms since
	// the epoch); a run started at or after it answers it.
	RunRequestedAt int64 `json:"run_requested_at,omitempty"`
	CreatedAt      int64 `json:"created_at"` // ms since the epoch
	UpdatedAt      int64 `json:"updated_at"` // ms since the epoch
}

// ValidateCron checks a cron spec's shape: an optional time zone prefix
// (CRON_TZ=Europe/Berlin or TZ=...), then five fields of cron characters
// or six with seconds first, or a descriptor such as "@daily" or
// "@every 6h". The scheduler (snapshots/cronspec) parses it fully before the
// leader proposes it; the state only keeps garbage out, with a check that
// must not change between released versions (a stricter check in a newer
// binary would make replicas disagree on old log entries). It was widened to
// zones and seconds before the first release, to match what the scheduler
// runs.
func ValidateCron(spec string) error {
	s := strings.TrimSpace(spec)
	fix := `use five fields "minute hour day-of-month month day-of-week" such as "0 3 * * *" (six with seconds first), ` +
		`optionally after CRON_TZ=Zone/Name, or @hourly, @daily, @weekly, @every 6h`
	if s == "" {
		return fmt.Errorf("cron spec is empty; %s", fix)
	}
	if strings.HasPrefix(s, "CRON_TZ=") || strings.HasPrefix(s, "TZ=") {
		zone, rest, ok := strings.Cut(s, " ")
		_, name, _ := strings.Cut(zone, "=")
		if !ok || name == "" {
			return fmt.Errorf("cron spec %q has a time zone but no schedule after it; %s", s, fix)
		}
		for _, c := range name {
			if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || strings.ContainsRune("/_+-", c)) {
				return fmt.Errorf("time zone %q contains %q; use a name such as Europe/Berlin or UTC", name, c)
			}
		}
		s = strings.TrimSpace(rest)
	}
	if strings.HasPrefix(s, "@") {
		switch f := strings.Fields(s); {
		case len(f) == 1 && slices.Contains([]string{"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}, f[0]):
			return nil
		case len(f) == 2 && f[0] == "@every" && len(f[1]) > 0:
			return nil
		}
		return fmt.Errorf("cron descriptor %q is unknown; %s", s, fix)
	}
	fields := strings.Fields(s)
	if len(fields) != 5 && len(fields) != 6 {
		return fmt.Errorf("cron spec %q has %d fields, not 5 (or 6 with seconds); %s", s, len(fields), fix)
	}
	for _, f := range fields {
		for _, c := range f {
			if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || strings.ContainsRune("*/,-?", c)) {
				return fmt.Errorf("cron field %q contains %q; %s", f, c, fix)
			}
		}
	}
	return nil
}

// JobRun is one execution of a job, scheduled or started by hand (Schedule
// empty). The runner records it when it starts and again when it ends.
type JobRun struct {
	ID         string            `json:"id"`
	Schedule   string            `json:"schedule,omitempty"`
	Kind       JobKind           `json:"kind"`
	Target     JobTarget         `json:"target"`
	State      JobRunState       `json:"state"`
	StartedAt  int64             `json:"started_at"`            // ms since the epoch
	FinishedAt int64             `json:"finished_at,omitempty"` // ms since the epoch
	Message    string            `json:"message,omitempty"`
	Details    map[string]string `json:"details,omitempty"`
}

// JobDetailOutOfSyncKiB prefixes a verify run's details, one per resource
// definition ("oos-kib.<definition in lower case>"): the KiB the verify found
// out of sync, or "unknown" when that verify did not finish. The job runner
// writes them and the metrics read them, so the key is shared here.
const JobDetailOutOfSyncKiB = "oos-kib"

// More details of a verify run, per resource definition (lower case, as
// JobDetailOutOfSyncKiB):
//
//	verified-from.<definition>      the node that ran the verify (its
//	                                replica is the one the others were
//	                                compared with; the Primary when the
//	                                VM ran on a diskful node)
//	oos-peer.<definition>.<node>    the KiB in which that node's replica
//	                                differs from verified-from's
//	resync.<definition>             "done" when the differing blocks were
//	                                resynchronized from verified-from's
//	                                replica (schedule option resync), else
//	                                why not
const (
	JobDetailVerifiedFrom  = "verified-from"
	JobDetailOutOfSyncPeer = "oos-peer"
	JobDetailResync        = "resync"
	// ResyncDone is the JobDetailResync value of a completed repair.
	ResyncDone = "done"
)

// Relocation is an automatic diskful relocation of a resource definition to
// the node its VM now runs on, with the timer that delays it. There is at
// most one per resource definition.
type Relocation struct {
	ResourceName string          `json:"resource_name"`
	TargetNode   string          `json:"target_node"`
	SourceNode   string          `json:"source_node,omitempty"`
	State        RelocationState `json:"state"`
	Reason       string          `json:"reason,omitempty"`
	Message      string          `json:"message,omitempty"`
	CreatedAt    int64           `json:"created_at"` // ms since the epoch
	DueAt        int64           `json:"due_at"`     // ms since the epoch: act no earlier
	UpdatedAt    int64           `json:"updated_at"` // ms since the epoch
}

// ValidateUUID accepts an empty string (the object has none) or the 36-byte
// textual form LINSTOR uses.
func ValidateUUID(s string) error {
	if s == "" {
		return nil
	}
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return fmt.Errorf("uuid %q is not of the form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", s)
	}
	for i := 0; i < len(s); i++ {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			continue
		}
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return fmt.Errorf("uuid %q contains %q; use hexadecimal digits", s, c)
		}
	}
	return nil
}

// PropVerifyAck is the resource definition property `pvehci schedule ack`
// sets to the ID of the verify run whose out-of-sync finding the operator
// has dealt with; the health alarm for that run then stays quiet.
const PropVerifyAck = "Aux/pvehci/verify-ack"

// VerifyResult is the newest finished verify of one resource definition.
type VerifyResult struct {
	Resource     string `json:"resource"`
	RunID        string `json:"run_id"`
	Schedule     string `json:"schedule,omitempty"`
	FinishedAt   int64  `json:"finished_at"` // ms since the epoch
	OutOfSyncKiB uint64 `json:"out_of_sync_kib"`
	// VerifiedFrom is the node whose replica the others were compared
	// with, and Peers the KiB each other node's replica differs from it
	// (runs recorded before the split have neither).
	VerifiedFrom string            `json:"verified_from,omitempty"`
	Peers        map[string]uint64 `json:"peers,omitempty"`
	// Resync is ResyncDone when the run repaired what it found, else why
	// it did not; empty when no repair was asked for.
	Resync string `json:"resync,omitempty"`
}

// Repaired reports whether the verify's findings were resynchronized.
func (v VerifyResult) Repaired() bool { return v.Resync == ResyncDone }

// LatestVerifies returns, per resource definition (by Key), the newest
// finished run among runs whose details give a number for it: a verify
// that did not finish ("unknown") neither raises nor clears a finding.
func LatestVerifies(runs []JobRun) map[string]VerifyResult {
	out := map[string]VerifyResult{}
	for _, r := range runs {
		if r.Kind != JobVerify || !r.State.Final() {
			continue
		}
		for k, v := range r.Details {
			rd, ok := strings.CutPrefix(k, JobDetailOutOfSyncKiB+".")
			if !ok {
				continue
			}
			kib, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				continue
			}
			if prev, seen := out[Key(rd)]; seen && prev.FinishedAt > r.FinishedAt {
				continue
			}
			res := VerifyResult{Resource: rd, RunID: r.ID, Schedule: r.Schedule, FinishedAt: r.FinishedAt, OutOfSyncKiB: kib,
				VerifiedFrom: r.Details[JobDetailVerifiedFrom+"."+rd], Resync: r.Details[JobDetailResync+"."+rd]}
			for pk, pv := range r.Details {
				rest, ok := strings.CutPrefix(pk, JobDetailOutOfSyncPeer+"."+rd+".")
				if !ok {
					continue
				}
				if n, err := strconv.ParseUint(pv, 10, 64); err == nil {
					if res.Peers == nil {
						res.Peers = map[string]uint64{}
					}
					res.Peers[rest] = n
				}
			}
			out[Key(rd)] = res
		}
	}
	return out
}

// Event is one decision of the cluster's automation, with its reason, as
// `pvehci events` lists it. The state records one for every change of a
// relocation (its timer set, each step, a skip with a new reason, its end),
// so the history survives leader changes; it keeps the newest MaxEvents.
type Event struct {
	At       int64  `json:"at"` // ms since the epoch
	Kind     string `json:"kind"`
	Resource string `json:"resource,omitempty"`
	Node     string `json:"node,omitempty"`
	State    string `json:"state,omitempty"`
	Message  string `json:"message,omitempty"`
}

// EventRelocation is the kind of the relocation events.
const EventRelocation = "relocation"

// MaxEvents is how many events the state keeps.
const MaxEvents = 1000
