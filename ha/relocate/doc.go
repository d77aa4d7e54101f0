// Package relocate decides, step by step, how a VM's DRBD replica follows
// the VM: after a live migration to a node that holds no replica, the VM
// runs diskless over the network (research linstor-proxmox.md §8: the
// Proxmox plugin only ever makes a diskless client there and never fixes
// it). pvehci makes the replica local again and then drops one surplus
// replica, never lowering redundancy on the way. This is LINSTOR's
// auto-diskful and auto-diskful-allow-cleanup (research linstor-server.md
// §5) with the gates the peers lack (research peers.md: blockstor promotes
// any InUse diskless replica at once, with no timer and no health check;
// "auto-diskful must be gated and must do a real sync").
//
// # The function
//
// [Decide] is pure: it reads the replicated state (ha/state), what the
// satellites observe (DRBD role, disk state, connections, pool free space),
// where the VMs run, the clock and the limits, and returns typed
// [Decision] values. It changes nothing. The leader applies each decision
// with the state commands [Decision.Commands] returns, and performs the
// DRBD work those commands ask for as it does for any toggle-disk or
// delete. Every decision carries a reason for events and `resource show`.
//
// # Progress lives in the replicated state
//
// LINSTOR keeps its auto-diskful timers in controller memory and rebuilds
// them from events after a restart (research linstor-server.md §5, last
// note), so a controller failover restarts every timer and forgets a
// cleanup that was waiting for UpToDate. pvehci keeps each step in a
// model.Relocation (pending → adding → syncing → removing → done, or
// cancelled). The next step is derived from the resources themselves, and
// the Relocation only records where we are, so a new leader computes the
// same next step and a step already applied is never repeated: MakeDiskful
// is only issued while the target is still diskless, RemoveSurplus only
// while there are more diskful replicas than the place count. Each
// decision's commands update the Relocation first and change the resource
// second; a failover between the two leaves a Relocation one step ahead of
// the resources, which the next Decide completes.
//
// # Rules
//
// StartTimer: a diskless resource (DRBD client or tie-breaker) is Primary
// on the node its VM runs on, no migration is running (neither a
// qmigrate/hamigrate task nor a second Primary: allow-two-primaries is only
// used during a live migration, research linstor-proxmox.md §8), and the
// policy is on. The timer is due auto-diskful minutes after the VM arrived
// on the node (VM.Since), so it does not depend on when the leader first
// noticed, and a changed auto-diskful only moves the due time (as LINSTOR
// does, research §5 "on a later prop change, only the timeout is updated").
//
// CancelTimer: while the timer runs, the VM moved away, a migration started,
// the resource stopped being Primary or got a disk by other means, or the
// policy was turned off. A quick back-and-forth migration therefore never
// starts a copy. Once the disk is being added the relocation is finished
// rather than abandoned: stopping a sync half-way saves nothing, and the
// removal step never removes a replica in use.
//
// MakeDiskful: the timer is due, the VM stayed, every current diskful
// replica is UpToDate and connected to the target (a sync from a degraded
// set would lower redundancy while it runs), a storage pool on the target
// has room for the whole volume set (the resource group's storage_pool or
// storage_pool_list, else StorPoolName, else DfltStorPool; free space must
// cover the full size, because a sync writes all of it), and the
// per-cluster and per-node limits of concurrent relocations allow it.
// Otherwise Skip, with the reason recorded in the Relocation's message
// (only when it changes, so a waiting relocation does not flood events).
// Due relocations are admitted oldest first.
//
// Progress: the new disk exists but is not UpToDate yet; the Relocation
// moves to syncing.
//
// Unknown is not a change: a new leader starts with no observations, so a
// pending timer whose target has not been reported yet is left alone, and
// a replica whose state is not reported is never removed.
//
// RemoveSurplus: once the new replica is UpToDate and there are more
// diskful replicas than the resource group's place count, remove one:
// preferably the node the VM left, otherwise a replica that is not
// UpToDate, then by name. Never a Primary, never an UpToDate replica if
// that leaves fewer UpToDate replicas than the place count (so never the
// only UpToDate copy), and only replicas auto-diskful may clean up
// (DiskfulBy auto-diskful or make-available, or
// DrbdOptions/auto-diskful-allow-cleanup true for that replica, LINSTOR's
// rule in research §5; the controller default is True). If the diskful
// count left is even and at least two and no other diskless resource gives
// quorum a third vote, the removed replica is kept as a tie-breaker
// (ToggleDisk to diskless plus TIE_BREAKER) instead of deleted: LINSTOR's
// auto-tiebreaker rule and its preference for taking over a resource being
// deleted (research §4). Removing a tie-breaker that became unnecessary is
// the auto-tiebreaker's job, not this package's.
//
// Done: the new replica is UpToDate and the diskful count is at most the
// place count, or the only surplus replicas are ones the policy keeps.
//
// # Policy
//
// DrbdOptions/auto-diskful (minutes) is resolved with the model's
// inheritance, R > N > RD > RG > C (research §5). A value of 0 or less, or
// one that is not a number, turns relocation off. When no level sets it,
// pvehci relocates after [DefaultDelay] (30 minutes), unlike LINSTOR where
// unset means off: making the replica local again is what pvehci is for,
// a VM left diskless reads and writes every block over the network and
// loses its data if that link fails, and nothing else ever repairs it
// (research linstor-proxmox.md §8, point 4). Thirty minutes is what
// cozystack chose for the same property (same section) and is long enough
// that a migrate-away-and-back around a node reboot does not copy a disk.
// Limits.DefaultDelay changes the default; a negative value restores
// LINSTOR's "unset means off".
//
// [KeyAutoRelocate] ("Aux/pvehci/auto-relocate") is the per-VM off switch:
// set it to false on the VM's resource definition. It lives under Aux/
// because LINSTOR clients accept any Aux/ key (`linstor rd set-property
// vm-100-disk-1 Aux/pvehci/auto-relocate false`), and like every Aux key it
// also inherits from the resource group and the controller.
//
// VMs are matched to resource definitions by Aux/pm/vmid, the property the
// Proxmox plugin sets (research linstor-proxmox.md §3.7). A definition
// without one is handled from its DRBD roles alone.
package relocate
