package model

import (
	"fmt"
	"slices"
	"strings"
)

// Flags is a set of LINSTOR state flags, kept sorted and without duplicates
// so that it marshals the same way whatever order flags were set in.
type Flags []string

// Has reports whether f is set.
func (fs Flags) Has(f string) bool {
	_, ok := slices.BinarySearch(fs, f)
	return ok
}

// With returns the set plus the given flags; fs is not changed.
func (fs Flags) With(add ...string) Flags {
	out := slices.Clone(fs)
	for _, f := range add {
		if i, ok := slices.BinarySearch(out, f); !ok {
			out = slices.Insert(out, i, f)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// Without returns the set minus the given flags; fs is not changed.
func (fs Flags) Without(remove ...string) Flags {
	out := slices.DeleteFunc(slices.Clone(fs), func(f string) bool { return slices.Contains(remove, f) })
	if len(out) == 0 {
		return nil
	}
	return out
}

// Resource flags (research §1.3, Resource.java Flags).
const (
	RscFlagClean                  = "CLEAN"
	RscFlagDelete                 = "DELETE"
	RscFlagDiskless               = "DISKLESS"
	RscFlagDiskAddRequested       = "DISK_ADD_REQUESTED"
	RscFlagDiskAdding             = "DISK_ADDING"
	RscFlagDiskRemoveRequested    = "DISK_REMOVE_REQUESTED"
	RscFlagDiskRemoving           = "DISK_REMOVING"
	RscFlagDrbdDiskless           = "DRBD_DISKLESS"
	RscFlagTieBreaker             = "TIE_BREAKER"
	RscFlagNvmeInitiator          = "NVME_INITIATOR"
	RscFlagInactive               = "INACTIVE"
	RscFlagReactivate             = "REACTIVATE"
	RscFlagInactivePermanently    = "INACTIVE_PERMANENTLY"
	RscFlagBackupRestore          = "BACKUP_RESTORE"
	RscFlagEvicted                = "EVICTED"
	RscFlagInactiveBeforeEviction = "INACTIVE_BEFORE_EVICTION"
	RscFlagRestoreFromSnapshot    = "RESTORE_FROM_SNAPSHOT"
	RscFlagEvacuate               = "EVACUATE"
	RscFlagDrbdDelete             = "DRBD_DELETE"
	RscFlagInactivating           = "INACTIVATING"
	RscFlagEbsInitiator           = "EBS_INITIATOR"
	RscFlagAutoDiskful            = "AUTO_DISKFUL"
)

// Flags of other objects.
const (
	NodeFlagDelete   = "DELETE"
	NodeFlagEvicted  = "EVICTED"
	NodeFlagEvacuate = "EVACUATE"
	NodeFlagQIgnore  = "QIGNORE"

	RdFlagDelete        = "DELETE"
	RdFlagRestoreTarget = "RESTORE_TARGET"
	RdFlagCloning       = "CLONING"
	RdFlagFailed        = "FAILED"

	VdFlagDelete          = "DELETE"
	VdFlagEncrypted       = "ENCRYPTED"
	VdFlagResize          = "RESIZE"
	VdFlagGrossSize       = "GROSS_SIZE"
	VdFlagResizeShrink    = "RESIZE_SHRINK"
	VdFlagDrbdInitialized = "DRBD_INITIALIZED"

	VlmFlagClean            = "CLEAN"
	VlmFlagDelete           = "DELETE"
	VlmFlagResize           = "RESIZE"
	VlmFlagDrbdResize       = "DRBD_RESIZE"
	VlmFlagResizeShrink     = "RESIZE_SHRINK"
	VlmFlagDrbdResizeShrink = "DRBD_RESIZE_SHRINK"

	VgFlagGrossSize = "GROSS_SIZE"

	SnapFlagSuccessful       = "SUCCESSFUL"
	SnapFlagFailedDeployment = "FAILED_DEPLOYMENT"
	SnapFlagFailedDisconnect = "FAILED_DISCONNECT"
	SnapFlagDelete           = "DELETE"
	SnapFlagAutoSnapshot     = "AUTO_SNAPSHOT"
)

// AllowedFlags lists the flags an object kind can carry.
func AllowedFlags(kind ObjectKind) []string {
	switch kind {
	case ObjNode:
		return []string{NodeFlagDelete, NodeFlagEvicted, NodeFlagEvacuate, NodeFlagQIgnore}
	case ObjResourceDefinition:
		return []string{RdFlagDelete, RdFlagRestoreTarget, RdFlagCloning, RdFlagFailed}
	case ObjVolumeDefinition:
		return []string{VdFlagDelete, VdFlagEncrypted, VdFlagResize, VdFlagGrossSize, VdFlagResizeShrink, VdFlagDrbdInitialized}
	case ObjResource:
		return []string{RscFlagClean, RscFlagDelete, RscFlagDiskless, RscFlagDiskAddRequested, RscFlagDiskAdding,
			RscFlagDiskRemoveRequested, RscFlagDiskRemoving, RscFlagDrbdDiskless, RscFlagTieBreaker, RscFlagNvmeInitiator,
			RscFlagInactive, RscFlagReactivate, RscFlagInactivePermanently, RscFlagBackupRestore, RscFlagEvicted,
			RscFlagInactiveBeforeEviction, RscFlagRestoreFromSnapshot, RscFlagEvacuate, RscFlagDrbdDelete,
			RscFlagInactivating, RscFlagEbsInitiator, RscFlagAutoDiskful}
	case ObjVolume:
		return []string{VlmFlagClean, VlmFlagDelete, VlmFlagResize, VlmFlagDrbdResize, VlmFlagResizeShrink, VlmFlagDrbdResizeShrink}
	case ObjVolumeGroup:
		return []string{VgFlagGrossSize}
	case ObjSnapshotDefinition:
		return []string{SnapFlagSuccessful, SnapFlagFailedDeployment, SnapFlagFailedDisconnect, SnapFlagDelete, SnapFlagAutoSnapshot}
	}
	return nil
}

// ValidateFlags checks that every flag is one kind may carry.
func ValidateFlags(kind ObjectKind, flags []string) error {
	allowed := AllowedFlags(kind)
	for _, f := range flags {
		if !slices.Contains(allowed, f) {
			if len(allowed) == 0 {
				return fmt.Errorf("a %s has no flags", kind)
			}
			return fmt.Errorf("unknown %s flag %q; known flags are %s", kind, f, strings.Join(allowed, ", "))
		}
	}
	return nil
}
