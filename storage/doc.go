// Package storage is the storage domain of pvehci: the LINSTOR object model,
// placement, the LINSTOR-compatible REST API, and the satellite that renders
// DRBD .res files and drives drbdadm, drbdsetup, drbdmeta and the LVM-thin
// and ZFS-thin drivers on each node.
package storage
