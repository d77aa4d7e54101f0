// Package controller is the active controller's view of the nodes and the
// loops that finish what the REST API starts.
//
// [Store] keeps the latest report of every node's satellite
// (storage/satellite.NodeReport) in memory on the leader. Observed state is
// deliberately not replicated (design §3): a new leader starts empty and
// each satellite re-sends its full report as soon as it sees the new
// leader. The Store answers the REST API's questions about the kernel's
// view (api.Backend's Observed and WaitDevice, api.PoolObserver,
// api.NodeObserver).
//
// [Completer] runs only on the leader and completes the intents of
// storage/api's contract once the satellites have acted:
//
//   - a resource flagged DELETE is removed from the state once its node
//     reports, from a pass that saw the flag, neither its DRBD resource
//     nor any of its volumes (never on a guess: a node that does not
//     report keeps the resource flagged, as LINSTOR keeps it DELETING);
//   - a resource definition flagged DELETE is removed once it has no
//     resources and no snapshots;
//   - a toggle-disk request (DISK_ADD_REQUESTED, DISK_REMOVE_REQUESTED) is
//     cleared once the node's DRBD shows every volume attached, or every
//     volume a diskless client;
//   - a volume definition flagged RESIZE (a grow) gets
//     satellite.PropResizeRequest naming the diskful replica with the
//     lowest node id once every diskful replica reports its LV grown, its
//     disk UpToDate and its diskful peers connected; that node runs
//     `drbdadm resize`. The request and the flag go once every replica
//     reports the DRBD device at the new size (resize.go);
//   - a volume definition gets DRBD_INITIALIZED once any replica reports
//     the volume UpToDate, after which no satellite skips the initial
//     sync for it again (research/linstor-server.md §3);
//   - a new snapshot definition runs a round through the property
//     satellite.KeySnapshotPhase (with its start in KeySnapshotPhaseSince):
//     suspend until every node with the resource (diskless too) reports
//     I/O suspended by user, take until every node of the snapshot
//     reports its snapshot LVs, resume until every node reports I/O
//     resumed; then the flag SUCCESSFUL and the properties go. A suspend
//     or take phase older than SnapshotPhaseTimeout moves to resume with
//     KeySnapshotFailed set, and the round ends FAILED_DEPLOYMENT; a
//     resume phase that old ends the round anyway, since satellites
//     resume on their own. A snapshot definition flagged DELETE is
//     removed once every node of the snapshot reports none of its LVs
//     (one deleted mid-round is first moved to resume).
package controller
