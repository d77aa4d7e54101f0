package drbd

// State names as drbdsetup prints them (drbd_strings.c). The types are
// strings so that a state a newer DRBD adds is kept, not lost.

// Role is a resource's or peer's role.
type Role string

// Roles.
const (
	RoleUnknown   Role = "Unknown"
	RolePrimary   Role = "Primary"
	RoleSecondary Role = "Secondary"
)

// DiskState is the state of a local or peer disk.
type DiskState string

// Disk states.
const (
	DiskDiskless     DiskState = "Diskless"
	DiskAttaching    DiskState = "Attaching"
	DiskDetaching    DiskState = "Detaching"
	DiskFailed       DiskState = "Failed"
	DiskNegotiating  DiskState = "Negotiating"
	DiskInconsistent DiskState = "Inconsistent"
	DiskOutdated     DiskState = "Outdated"
	DiskUnknown      DiskState = "DUnknown"
	DiskConsistent   DiskState = "Consistent"
	DiskUpToDate     DiskState = "UpToDate"
)

// ConnState is the state of a connection to a peer.
type ConnState string

// Connection states.
const (
	ConnStandAlone     ConnState = "StandAlone"
	ConnDisconnecting  ConnState = "Disconnecting"
	ConnUnconnected    ConnState = "Unconnected"
	ConnTimeout        ConnState = "Timeout"
	ConnBrokenPipe     ConnState = "BrokenPipe"
	ConnNetworkFailure ConnState = "NetworkFailure"
	ConnProtocolError  ConnState = "ProtocolError"
	ConnTearDown       ConnState = "TearDown"
	ConnConnecting     ConnState = "Connecting"
	ConnConnected      ConnState = "Connected"
)

// ReplState is the replication state of a volume toward a peer.
type ReplState string

// Replication states.
const (
	ReplOff           ReplState = "Off"
	ReplEstablished   ReplState = "Established"
	ReplStartingSyncS ReplState = "StartingSyncS"
	ReplStartingSyncT ReplState = "StartingSyncT"
	ReplWFBitMapS     ReplState = "WFBitMapS"
	ReplWFBitMapT     ReplState = "WFBitMapT"
	ReplWFSyncUUID    ReplState = "WFSyncUUID"
	ReplSyncSource    ReplState = "SyncSource"
	ReplSyncTarget    ReplState = "SyncTarget"
	ReplVerifyS       ReplState = "VerifyS"
	ReplVerifyT       ReplState = "VerifyT"
	ReplPausedSyncS   ReplState = "PausedSyncS"
	ReplPausedSyncT   ReplState = "PausedSyncT"
	ReplAhead         ReplState = "Ahead"
	ReplBehind        ReplState = "Behind"
)

// HasProgress reports whether drbdsetup reports a done percentage in this
// state: a resync (running or paused) or an online verify.
func (s ReplState) HasProgress() bool {
	switch s {
	case ReplSyncSource, ReplSyncTarget, ReplPausedSyncS, ReplPausedSyncT, ReplVerifyS, ReplVerifyT:
		return true
	}
	return false
}
