package model

import (
	"fmt"
	"slices"
	"strings"
)

// NodeType is LINSTOR's node type. It is stored in LINSTOR's internal
// upper-case spelling; LinstorName gives the REST spelling.
type NodeType string

// Node types (research §1.3 Node.type).
const (
	NodeTypeController NodeType = "CONTROLLER"
	NodeTypeSatellite  NodeType = "SATELLITE"
	NodeTypeCombined   NodeType = "COMBINED"
	NodeTypeAuxiliary  NodeType = "AUXILIARY"
)

func nodeTypes() []NodeType {
	return []NodeType{NodeTypeController, NodeTypeSatellite, NodeTypeCombined, NodeTypeAuxiliary}
}

// ParseNodeType accepts either spelling in any case ("Satellite", "SATELLITE").
func ParseNodeType(s string) (NodeType, error) {
	for _, t := range nodeTypes() {
		if strings.EqualFold(s, string(t)) {
			return t, nil
		}
	}
	return "", fmt.Errorf("unknown node type %q; use one of Controller, Satellite, Combined, Auxiliary", s)
}

// LinstorName is the REST spelling, e.g. "Satellite".
func (t NodeType) LinstorName() string {
	if t == "" {
		return ""
	}
	return string(t[0]) + strings.ToLower(string(t[1:]))
}

// HostsResources reports whether a node of this type runs a satellite and
// can therefore hold resources and storage pools.
func (t NodeType) HostsResources() bool { return t == NodeTypeSatellite || t == NodeTypeCombined }

// ProviderKind is the storage driver of a pool (research §1.3 StoragePool.provider_kind).
type ProviderKind string

// Provider kinds that pvehci's satellite drives. LINSTOR knows more (LVM,
// ZFS, FILE, FILE_THIN, SPDK, EBS_*); pvehci refuses them up front instead of
// accepting a pool no satellite can serve.
const (
	ProviderDiskless ProviderKind = "DISKLESS"
	ProviderLVMThin  ProviderKind = "LVM_THIN"
	ProviderZFSThin  ProviderKind = "ZFS_THIN"
)

// SupportedProviderKinds lists what ParseProviderKind accepts.
func SupportedProviderKinds() []ProviderKind {
	return []ProviderKind{ProviderDiskless, ProviderLVMThin, ProviderZFSThin}
}

// linstorProviderKinds are the kinds LINSTOR has, for a better error.
func linstorProviderKinds() []string {
	return []string{"LVM", "ZFS", "FILE", "FILE_THIN", "SPDK", "REMOTE_SPDK", "EBS_TARGET", "EBS_INIT", "STORAGE_SPACES", "STORAGE_SPACES_THIN", "EXOS"}
}

// ParseProviderKind accepts a supported kind in any case.
func ParseProviderKind(s string) (ProviderKind, error) {
	for _, k := range SupportedProviderKinds() {
		if strings.EqualFold(s, string(k)) {
			return k, nil
		}
	}
	if slices.ContainsFunc(linstorProviderKinds(), func(k string) bool { return strings.EqualFold(k, s) }) {
		return "", fmt.Errorf("storage provider %s is not supported by pvehci; use LVM_THIN, ZFS_THIN or DISKLESS", strings.ToUpper(s))
	}
	return "", fmt.Errorf("unknown storage provider %q; use LVM_THIN, ZFS_THIN or DISKLESS", s)
}

// Diskless reports whether pools of this kind hold no data.
func (k ProviderKind) Diskless() bool { return k == ProviderDiskless }

// RequiredProps are the pool properties that name the backing storage.
func (k ProviderKind) RequiredProps() []string {
	switch k {
	case ProviderLVMThin:
		return []string{KeyStorDriverLvmVg, KeyStorDriverThinPool}
	case ProviderZFSThin:
		return []string{KeyStorDriverZPoolThin}
	}
	return nil
}

// Layer kinds of a layer stack (research §1.3 layer_object.type).
func layerKinds() []string {
	return []string{"DRBD", "STORAGE", "LUKS", "NVME", "WRITECACHE", "CACHE", "BCACHE"}
}

// ValidateLayerStack checks a layer list such as ["DRBD","STORAGE"]. The
// bottom layer must be STORAGE, and each kind may appear once.
func ValidateLayerStack(stack []string) error {
	if len(stack) == 0 {
		return nil
	}
	seen := map[string]bool{}
	for _, l := range stack {
		u := strings.ToUpper(l)
		if !slices.Contains(layerKinds(), u) {
			return fmt.Errorf("unknown layer %q; use layers from %s", l, strings.Join(layerKinds(), ", "))
		}
		if seen[u] {
			return fmt.Errorf("layer %s appears twice in %v; list each layer once", u, stack)
		}
		seen[u] = true
	}
	if !strings.EqualFold(stack[len(stack)-1], "STORAGE") {
		return fmt.Errorf("layer stack %v does not end with STORAGE; the lowest layer must be STORAGE, e.g. DRBD,STORAGE", stack)
	}
	return nil
}

// DrbdTransport is the RD-level transport type (research §2 "Transport":
// stored, not rendered; the .res file takes DrbdOptions/Net/transport).
type DrbdTransport string

// Transport types LINSTOR accepts in drbd_transport_type.
const (
	TransportIP   DrbdTransport = "IP"
	TransportRDMA DrbdTransport = "RDMA"
	TransportRoCE DrbdTransport = "RoCE"
)

// ParseDrbdTransport accepts a transport in any case; empty means IP.
func ParseDrbdTransport(s string) (DrbdTransport, error) {
	if s == "" {
		return TransportIP, nil
	}
	for _, t := range []DrbdTransport{TransportIP, TransportRDMA, TransportRoCE} {
		if strings.EqualFold(s, string(t)) {
			return t, nil
		}
	}
	return "", fmt.Errorf("unknown DRBD transport %q; use IP, RDMA or RoCE", s)
}

// ObjectKind names a kind of object, for property and flag targets and for
// errors (the REST layer maps it to an ApiCallRc object mask).
type ObjectKind string

// Object kinds.
const (
	ObjController            ObjectKind = "controller"
	ObjNode                  ObjectKind = "node"
	ObjNetInterface          ObjectKind = "net-interface"
	ObjStoragePoolDefinition ObjectKind = "storage-pool-definition"
	ObjStoragePool           ObjectKind = "storage-pool"
	ObjResourceGroup         ObjectKind = "resource-group"
	ObjVolumeGroup           ObjectKind = "volume-group"
	ObjResourceDefinition    ObjectKind = "resource-definition"
	ObjVolumeDefinition      ObjectKind = "volume-definition"
	ObjResource              ObjectKind = "resource"
	ObjVolume                ObjectKind = "volume"
	ObjSnapshotDefinition    ObjectKind = "snapshot-definition"
	ObjJobSchedule           ObjectKind = "job-schedule"
	ObjJobRun                ObjectKind = "job-run"
	ObjRelocation            ObjectKind = "relocation"
)

// JobKind is what a scheduled job does.
type JobKind string

// Job kinds.
const (
	JobSnapshot JobKind = "snapshot" // take snapshots, apply retention
	JobVerify   JobKind = "verify"   // run DRBD online verify
)

// TargetKind says what a job schedule works on.
type TargetKind string

// Job targets.
const (
	TargetAll                TargetKind = "all"
	TargetResourceGroup      TargetKind = "resource-group"
	TargetResourceDefinition TargetKind = "resource-definition"
	// TargetResourceDefinitions names a list: "a,b,c".
	TargetResourceDefinitions TargetKind = "resource-definitions"
	// TargetSelector selects the definitions whose property KEY has
	// VALUE: "KEY=VALUE", for example "Aux/backup=nightly".
	TargetSelector TargetKind = "selector"
)

// JobRunState is where a job run is.
type JobRunState string

// Job run states; all but running are final.
const (
	RunRunning   JobRunState = "running"
	RunSucceeded JobRunState = "succeeded"
	RunFailed    JobRunState = "failed"
	RunSkipped   JobRunState = "skipped"
)

// Final reports whether the run has ended.
func (s JobRunState) Final() bool { return s != RunRunning }

// Valid reports whether s is a known state.
func (s JobRunState) Valid() bool {
	return s == RunRunning || s == RunSucceeded || s == RunFailed || s == RunSkipped
}

// RelocationState is where an automatic diskful relocation is. The leader
// drives it in this order: pending (timer running) → adding (toggle-disk or
// create on the target) → syncing (waiting for UpToDate) → removing (one
// excess replica) → done; any state can end in failed or cancelled.
type RelocationState string

// Relocation states.
const (
	RelocPending   RelocationState = "pending"
	RelocAdding    RelocationState = "adding"
	RelocSyncing   RelocationState = "syncing"
	RelocRemoving  RelocationState = "removing"
	RelocDone      RelocationState = "done"
	RelocFailed    RelocationState = "failed"
	RelocCancelled RelocationState = "cancelled"
)

// Final reports whether the relocation has ended.
func (s RelocationState) Final() bool {
	return s == RelocDone || s == RelocFailed || s == RelocCancelled
}

func (s RelocationState) rank() int {
	return slices.Index([]RelocationState{RelocPending, RelocAdding, RelocSyncing, RelocRemoving, RelocDone}, s)
}

// CanMoveTo reports whether a relocation in s may move to next: forward
// along the path, to failed or cancelled, never out of a final state.
func (s RelocationState) CanMoveTo(next RelocationState) bool {
	if s.Final() {
		return false
	}
	if next == RelocFailed || next == RelocCancelled {
		return true
	}
	return next.rank() >= s.rank() && next.rank() >= 0
}

// Valid reports whether s is a known state.
func (s RelocationState) Valid() bool {
	return s.rank() >= 0 || s == RelocFailed || s == RelocCancelled
}
