// Package satellite is the node side of pvehci's storage: the reconciler that
// turns the desired state of one node (from the replicated controller state,
// ha/state) into LVM-thin volumes, DRBD .res files and running DRBD
// resources, the job LINSTOR's satellite does.
//
// A pass has four steps, each usable on its own:
//
//   - [Desired] computes what the node should hold: every resource placed on
//     it, with its rendered .res file (storage/drbd Build and Render) and its
//     diskful volumes (volume group, thin pool, LV name, DRBD gross size).
//   - [Reconciler.Observe] reads what the node holds: lvs and vgs reports,
//     the .res files, and `drbdsetup events2 --now --statistics`. It runs
//     only read commands. Between passes the [Loop] follows the live
//     `drbdsetup events2` stream and starts a pass when a role, disk or
//     connection state changes (events.go).
//   - [Plan] compares the two and lists the smallest set of typed actions
//     ([Action]) in a safe order. A converged node gives an empty plan, so a
//     pass over it runs no mutating command at all.
//   - [Reconciler.Apply] executes the actions through run.Runner and
//     hostfs.FS.
//
// # Safety rules
//
// They follow the shared design (§4) and the failure modes collected in
// research/linstor-server.md §8 and research/peers.md:
//
//   - Idempotent: an action is planned only when the
//     observed state lacks its effect, so a pass after a crash at any point
//     plans exactly what is left.
//   - Owned objects only: an LV is ours when it carries the tag lvm.Tag.
//     An untagged LV where a resource's volume should be is reported as an
//     [Orphan] and the resource is not touched (no .res that points at a
//     foreign LV, no create-md on it, never lvremove). Tagged LVs, .res files
//     and DRBD resources that no desired resource owns are reported as
//     orphans too and left alone: removing them takes an explicit operator
//     command, because "not in the state" may as well mean "the state lost
//     it" (linstor-server.md §8 #1, #11).
//   - Deletes only for a resource this node holds with flag DELETE (all
//     steps) or DRBD_DELETE (down and .res only; LINSTOR's two phases,
//     linstor-server.md §3 "Delete one replica"), and never for the last
//     UpToDate copy: a resource that is up with good local data is only
//     taken down while a connected peer has every volume UpToDate (§8 #3),
//     and never while it is Primary or open. The nodes that keep the
//     resource drop the departed peer before they rewrite their .res:
//     `drbdsetup del-peer`, then `forget-peer`, which frees its bitmap
//     slot so that no stale bitmap outlives it ([DropPeer], droppeer.go).
//   - Metadata is created only on a volume shown to have none: an LV made in
//     the same pass, or one whose `drbdmeta get-gi` says there is no valid
//     metadata (exit code 1 or 255, as LINSTOR's DrbdLayer reads it) and
//     whose last-known size names no smaller size, where the metadata of
//     a grown LV would be (see Online grow). create-md on live metadata
//     would throw away the generation identifiers.
//   - Initial sync only at birth, and only by one node: a volume whose
//     volume definition lacks DRBD_INITIALIZED is new. Its winner is the
//     diskful resource with the lowest DRBD node id among the
//     definition's diskful resources not being deleted; [Desired] derives
//     it from the replicated state, so every node agrees on it. Only the
//     winner acts, only in a pass that does not adjust the resource (the
//     kernel then runs exactly the .res), and only while its own disk is
//     Inconsistent, every diskful peer the .res names is Connected with
//     its volume Established and Inconsistent, no peer at all reports
//     UpToDate, Outdated or Consistent data, no resync runs and nobody is
//     Primary. Until then it plans nothing and a later pass looks again.
//     A thin volume then gets [SkipInitialSync] (`drbdadm
//     new-current-uuid --clear-bitmap RES/VNR`): all replicas are zeroed
//     thin LVs with just-created metadata, so one new generation shared
//     by all of them makes them UpToDate without claiming sync for a byte
//     that differs (research/peers.md "Skip-initial-sync, the birth flow",
//     DRBD guide "Skipping initial device synchronization"). With
//     DrbdOptions/ForceInitialSync true (RD > RG > C), a volume that is
//     not thin, or a winner without diskful peers, it gets [ForcePrimary]
//     (`drbdadm primary --force RES`, then `drbdadm secondary RES`): the
//     winner's disk becomes the data and every peer copies it in full
//     (guide §4.6). Every other case copies: a replica added to an
//     initialized volume keeps its just-created metadata and DRBD makes
//     it a full SyncTarget of an UpToDate peer (shared design §4, "never
//     claim sync for bytes never copied"). Either action leaves the
//     winner UpToDate, so it is never planned twice.
//   - The contract with the controller: it sets DRBD_INITIALIZED on a
//     volume definition as soon as any replica of it reports UpToDate,
//     and clears it only when no resource of the definition is left.
//     The flag is what keeps a later winner (the lowest node id changes
//     when replicas come and go) from starting the data again on a volume
//     whose replicas all happen to look fresh, for example after every
//     UpToDate replica was lost; the disk-state checks alone cannot tell
//     that case from a birth.
//   - .res files are written atomically with a backup; when `drbdadm adjust`
//     fails after a write, the previous file is put back byte for byte, the
//     resource's remaining actions are skipped (so none of its LVs is
//     removed), and the outcome carries the command and its stderr tail.
//   - A failure of one resource never stops the others (§8 #2): actions are
//     grouped per resource and a failed action skips only the rest of its
//     group.
//
// # Snapshots
//
// The active controller runs each snapshot round through the phase
// properties of the snapshot definition (KeySnapshotPhase: suspend, take,
// resume; see snapshot.go and storage/controller); a satellite only acts on
// the phase it reads (design §4, research/linstor-server.md §3 "Snapshot
// create"):
//
//   - suspend: every node with the resource, diskless ones too (a diskless
//     Primary writes over the network), runs [SuspendIO] (`drbdadm
//     suspend-io RES`) and reports "suspended:user";
//   - take: each node the snapshot lists, while its I/O is suspended, runs
//     [TakeSnapshot] for every volume: `lvcreate --snapshot
//     --setactivationskip y --ignoreactivationskip --activate y --name
//     <lv>_<snap> -pr --addtag pvehci VG/<lv>`, planned only while the LV
//     is missing, and reports the LV in NodeReport.Snapshots;
//   - I/O resumes whatever happens: [ResumeIO] (`drbdadm resume-io RES`)
//     is planned whenever the resource is suspended by user and no round
//     holds the barrier: no phase suspend or take, or one that started
//     more than SnapshotLocalDeadline ago by this node's clock (the
//     controller may be dead). It is never skipped after a failed action
//     of the resource, and comes before a Down;
//   - a snapshot definition flagged DELETE gets [RemoveSnapshot]
//     (`lvremove -f VG/<lv>_<snap>`) for each of its LVs on the node, even
//     when the node no longer has the resource. Snapshot LVs are never
//     orphans and never removed otherwise.
//
// # Online grow
//
// A volume definition's size only grows (state.ModifyVolumeDefinition sets
// it with the flag RESIZE). A diskful volume whose LV is smaller than
// GrossKiB of the new size gets [GrowLV] (`lvextend --size <N>k VG/LV`,
// rounded to the extent size as at creation) whenever DRBD holds the disk
// or the LV has no metadata yet; that is safe with or without the flag,
// since DRBD does not use the new space before `drbdadm resize`. An LV
// with metadata that DRBD does not hold is attached at its old size first:
// its internal metadata sits at the old end. Nothing is ever shrunk. Each
// report lists every volume's LV and DRBD device size (NodeReport.Sizes).
// The controller then names one node in PropResizeRequest on the volume
// definition, and that node plans [ResizeDRBD] (`drbdadm -vvv --
// --assume-clean resize RES/VNR` for a thin volume, as LINSTOR does: the
// grown area reads as zeros on every replica) once per request, only in a
// pass that plans nothing else for the resource, while its disk is
// UpToDate, its LV grown, its device still smaller and every diskful peer
// connected with no resync; again after ResizeRetryInterval if the device
// has not grown (resize.go).
//
// A node that goes down between its lvextend and the resize, or an LV
// extended while its resource is down, keeps the metadata at the end of
// the LV's old size, where `drbdmeta get-gi` and the attach do not look:
// the probe answers "no metadata" as for a new LV, and the create-md it
// would call for throws the generation identifiers away. So a probed LV
// without metadata at its end whose minor's last-known size
// ([LastKnownPath], written by drbd-utils at create-md, every attach and
// resize) is smaller than the LV gets [CheckResize] (`drbdadm -vvv
// check-resize RES/VNR`, which moves the metadata to the new end) instead
// of create-md, then Adjust attaches it and the grow completes with the
// resize. It is planned only while DRBD does not hold the disk (on an
// attached one drbdadm would run an online resize), and when the
// metadata is not at that size either the action fails with what to do
// rather than create metadata (checkresize.go).
//
// # Sizes
//
// A diskful volume's LV holds the data and DRBD's internal metadata for
// every peer slot (create-md --max-peers). [GrossKiB] computes that size with
// the exact formula of the DRBD 9 user's guide (§23.1.3 "Estimating meta data
// size"), see [MetaDataKiB]; [Plan] rounds it up to the volume group's extent
// size, as LINSTOR's StorageLayerSizeCalculator does.
package satellite
