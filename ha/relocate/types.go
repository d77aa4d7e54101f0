package relocate

import (
	"slices"
	"time"

	"github.com/pvehci/pvehci/storage/model"
)

// KeyAutoRelocate is pvehci's per-VM off switch: "false" (or "no", "off",
// "0") on a resource definition stops automatic relocation of it. See the
// package documentation for why it lives under Aux/.
const KeyAutoRelocate = model.NamespaceAux + "/pvehci/auto-relocate"

// Defaults used for zero fields of Limits.
const (
	// DefaultDelay applies when no level sets DrbdOptions/auto-diskful
	// (see the package documentation for why it is on).
	DefaultDelay = 30 * time.Minute
	// DefaultPerNode allows one relocation at a time per node: a full
	// sync saturates the target's disk and the link it arrives on.
	DefaultPerNode = 1
	// DefaultPerCluster allows two relocations at a time in the cluster.
	DefaultPerCluster = 2
)

// DiskState is a DRBD disk state as drbdsetup reports it.
type DiskState string

// Disk states Decide distinguishes; any other value counts as not
// UpToDate.
const (
	DiskUpToDate     DiskState = "UpToDate"
	DiskInconsistent DiskState = "Inconsistent"
	DiskOutdated     DiskState = "Outdated"
	DiskDiskless     DiskState = "Diskless"
	DiskUnknown      DiskState = "DUnknown"
)

// ResourceKey names a resource (definition on a node) in Observed. Build it
// with RK so that names compare as LINSTOR compares them.
type ResourceKey struct{ Resource, Node string }

// RK returns the key of resource rd on node.
func RK(rd, node string) ResourceKey { return ResourceKey{model.Key(rd), model.Key(node)} }

// PoolKey names a node's storage pool in Observed. Build it with PK.
type PoolKey struct{ Node, Pool string }

// PK returns the key of pool on node.
func PK(node, pool string) PoolKey { return PoolKey{model.Key(node), model.Key(pool)} }

// Replica is what a satellite observes of one resource. For several
// volumes, Disk is the worst of their disk states.
type Replica struct {
	Primary   bool
	Disk      DiskState
	Connected []string // peer nodes the connection to is Connected
}

// ConnectedTo reports whether the replica is connected to node.
func (r Replica) ConnectedTo(node string) bool {
	return slices.ContainsFunc(r.Connected, func(n string) bool { return model.SameName(n, node) })
}

// Observed is the DRBD and storage state the satellites report. It is never
// replicated; a new leader gets it afresh from the satellites.
type Observed struct {
	Replicas    map[ResourceKey]Replica
	PoolFreeKiB map[PoolKey]int64
}

// Replica returns what is observed of rd on node.
func (o Observed) Replica(rd, node string) (Replica, bool) {
	r, ok := o.Replicas[RK(rd, node)]
	return r, ok
}

// VM is where a VM runs.
type VM struct {
	Node string
	// PreviousNode is the node it ran on before, when known (the source of
	// the last migration task); its replica is the one to remove first.
	PreviousNode string
	// Migrating is true while a qmigrate or hamigrate task runs for it.
	Migrating bool
	// Since is when the VM started running on Node.
	Since time.Time
}

// VMLocations maps a VM id (the Aux/pm/vmid of its disks' resource
// definitions) to where it runs.
type VMLocations map[string]VM

// Limits bounds the relocations that copy data at the same time, and sets
// the delay used when auto-diskful is unset. Zero fields take the package
// defaults.
type Limits struct {
	PerNode    int // relocations a node may be target or source of at once
	PerCluster int // relocations in the whole cluster at once
	// DefaultDelay applies when no level sets DrbdOptions/auto-diskful;
	// zero means DefaultDelay, negative means off (LINSTOR's behaviour).
	DefaultDelay time.Duration
	// MaxRate caps the new disk's resync, as DRBD's c-max-rate (for
	// example "100M", in bytes per second with DRBD's suffixes): set on
	// the target resource while it syncs, removed once it is UpToDate or
	// the relocation ends. Empty: no cap. A c-max-rate the operator set on
	// that resource is left as it is.
	MaxRate string
}

// KeyCMaxRate is the property DRBD's resync controller reads on the
// target resource.
const KeyCMaxRate = "DrbdOptions/PeerDevice/c-max-rate"

// KeyRelocationRate marks a c-max-rate that a relocation set (with the
// same value), so that only that one is removed again.
const KeyRelocationRate = model.NamespaceAux + "/pvehci/relocation-max-rate"

func (l Limits) withDefaults() Limits {
	if l.PerNode <= 0 {
		l.PerNode = DefaultPerNode
	}
	if l.PerCluster <= 0 {
		l.PerCluster = DefaultPerCluster
	}
	if l.DefaultDelay == 0 {
		l.DefaultDelay = DefaultDelay
	}
	return l
}

// Kind is what a decision does.
type Kind string

// Decision kinds.
const (
	// StartTimer starts (or re-times) the relocation's timer.
	StartTimer Kind = "start-timer"
	// CancelTimer ends a relocation before it copies anything, or one whose
	// target went away.
	CancelTimer Kind = "cancel-timer"
	// MakeDiskful gives the target resource a disk in Pool.
	MakeDiskful Kind = "make-diskful"
	// Progress records that the new disk is syncing.
	Progress Kind = "progress"
	// Skip records why a due step cannot be taken now.
	Skip Kind = "skip"
	// RemoveSurplus removes the disk on Node (delete, or keep as a
	// tie-breaker when KeepTieBreaker).
	RemoveSurplus Kind = "remove-surplus"
	// Done ends the relocation.
	Done Kind = "done"
)

// Decision is one step for one resource definition.
type Decision struct {
	Kind     Kind
	Resource string // resource definition
	// Node is the relocation target, except for RemoveSurplus, where it is
	// the node whose disk goes.
	Node   string
	Source string // StartTimer: the node the VM left, if known
	Pool   string // MakeDiskful: the storage pool for the new disk
	// KeepTieBreaker (RemoveSurplus): turn the replica into a diskless
	// tie-breaker instead of deleting it.
	KeepTieBreaker bool
	// State is the relocation's state after this decision.
	State model.RelocationState
	Since time.Time // StartTimer: when the resource became diskless Primary
	DueAt time.Time // StartTimer: when the disk is to be added
	// Reason explains the decision, for events and `resource show`.
	Reason string
	// Target is the relocation's target node, for the rate cap (Node is
	// another node for RemoveSurplus).
	Target string
	// Rate (MakeDiskful) caps the target's resync (Limits.MaxRate);
	// ClearRate removes the cap a relocation set on the target.
	Rate      string
	ClearRate bool
}
