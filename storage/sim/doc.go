// Package sim is a simulated storage kernel for tests and `pvehci lab`: it
// answers the command lines the satellite runs (lvs, lvcreate, …) the way the
// real tools answer them, through the one interface the satellite uses to run
// programs, [run.Runner]. The satellite's code path is then the same as on a
// real host; only the Runner differs.
//
// This machine (and CI) has neither device-mapper nor DRBD 9 in its kernel
// (shared research testbed-local.md §2 and §5), so the real tools can only
// be used for metadata. The simulation fills that gap. Fidelity matters more
// than breadth: a command line the model does not cover fails with a
// non-zero exit and a message saying so, never with a silent success.
//
// # LVM thin
//
// A [Host] is one node. It has whole disks ([Host.AddDisk], given a GPT
// label with one partition by [Host.PartitionDisk] or a mounted file
// system by [Host.MountDisk]), volume groups (set up with [Host.AddVG] or
// through pvcreate/vgcreate/vgextend, one or more PVs each) and LVM thin
// pools ([Host.AddThinPool] or lvcreate --type thin-pool); through
// [Host.Runner] it answers:
//
//	lsblk --json --bytes [--nodeps] --output COL,… [DISK…]   (COL: PATH TYPE FSTYPE PTTYPE MOUNTPOINTS SIZE)
//	wipefs --all DISK…
//	pvcreate DISK…
//	vgcreate VG DISK…
//	vgextend VG DISK…
//	lvcreate --type thin-pool -l|--extents N|N%VG|N%FREE|-L|--size SIZE [--poolmetadatasize SIZE] -n|--name POOL VG
//	lvs|vgs|pvs --reportformat json --units b --nosuffix -o FIELD,… [VG|VG/LV|@TAG …]
//	lvcreate -V|--virtualsize SIZE -T|--thin VG/POOL -n|--name NAME [--addtag TAG]…
//	lvcreate --virtualsize SIZE VG --thinpool POOL --name NAME   (LINSTOR's form)
//	lvcreate -s|--snapshot [-n|--name NAME] [-k|--setactivationskip y|n] [-K] [-a|--activate y|n] [-p|--permission r|rw] [--addtag TAG]… VG/LV
//	lvremove [-f|--force] [-y|--yes] VG/LV…
//	lvextend -L|--size [+]SIZE VG/LV
//	lvrename VG/LV [VG/]NEW | lvrename VG LV NEW
//	lvchange [--addtag TAG]… [--deltag TAG]… [-a|--activate y|n] [-K] [-k|--setactivationskip y|n] VG/LV
//
// plus -y/--yes, -q/--quiet and --config STRING (accepted and ignored, since
// the simulation has no devices to filter) on each of them. Sizes take
// lvm's input units (lvs(8) "Size[UNIT]": always powers of two, default MiB).
// Messages and exit codes are the ones lvm2 2.03 prints (verified on this
// machine with metadata-only operations, see the tests): 0 on success, 3 for
// a command-line error, 5 for a failed operation.
//
// The disk commands follow util-linux 2.38 and lvm2 2.03.16 as they answer
// on this machine for a loop device (TestDiskCommandsMatchReal): lsblk's
// JSON byte for byte, and without a NAME column a flat list (the disk,
// then its partition, every device once) rather than a tree with
// "children"; lsblk exits 32 with "lsblk: DEV: not a block device" for a
// missing device. wipefs erases a GPT label with its partition, an LVM2
// label or a file system signature and refuses a disk in use (mounted, or
// a PV under active LVs) with EBUSY. pvcreate refuses a partitioned or
// busy disk and a PV of a VG; vgcreate and vgextend initialize a device
// that is not a PV yet, as lvm 2.03 does. A thin pool sized in %VG is
// not made smaller for its metadata, but lvm allocates a percentage
// approximately: when data, metadata and the spare metadata LV do not
// fit, the data gets what is left (TestThinPoolPercentVGMatchesRealLVM
// explains how far that is verified here).
//
// Each thin LV holds real data: a sparse map of pool chunks (64 KiB, the
// lvm default thin_pool_chunk_size) that snapshots share copy-on-write as
// dm-thin does. [Host.Device] opens an active LV as a block device with
// ReadAt and WriteAt. Unprovisioned chunks read as zeros (pools zero new
// chunks, the 'z' attribute). A write that needs a new chunk when the pool
// has none left fails with ENOSPC and puts the pool into the out-of-data-
// space state (lv_attr health 'D', data_percent 100.00): this is dm-thin's
// behaviour with `errorwhenfull y` (lvmthin(7) "errorwhenfull y: Writes to
// thin LVs immediately return an error"). The default `errorwhenfull n`
// queues writes for up to 60 s first; the simulation does not queue, because
// a test cannot wait for that and the outcome after the timeout is the same
// error. Extending the pool (lvextend) leaves the out-of-space state.
//
// # DRBD 9
//
// A [Network] connects hosts ([Network.Attach]); tests cut and heal links
// ([Network.Cut], [Network.Heal], [Network.Isolate]) and drive resyncs
// ([Network.Resync] block by block, [Network.Settle] to the end). One
// Resync call stands for [Network.SetResyncTick] of time (100 ms), and a
// SyncTarget whose configuration has c-max-rate takes no more than that
// rate over one tick (guide 5.11.3, variable sync rate); Settle ignores
// the cap. A host
// that is not attached has no DRBD module: drbdadm and drbdsetup fail with
// exit code 20 as on this machine (testbed-local.md §2). On an attached
// host the Runner answers:
//
//	drbdadm [-c FILE] [-v…] [--max-peers N] [--] [--force] create-md RES[/VOL]
//	drbdadm [-c FILE] adjust|up|down|primary [--force]|secondary RES
//	drbdadm [-c FILE] new-current-uuid --clear-bitmap RES[/VOL]
//	drbdadm [-c FILE] suspend-io|resume-io|disconnect|verify RES[/VOL]
//	drbdadm [-c FILE] [-- --assume-clean|--assume-peer-has-space] resize RES[/VOL]
//	drbdadm [-c FILE] [-v…] check-resize RES[/VOL]
//	drbdadm [-c FILE] connect [--discard-my-data] RES
//	drbdsetup events2 --now [--statistics] [RES|all]
//	drbdsetup events2 [--statistics] [all]   (the live stream, through run.Streamer; events2stream.go)
//	drbdsetup status --json [RES]
//	drbdsetup down RES
//	drbdsetup del-peer RES PEER_ID
//	drbdsetup forget-peer RES PEER_ID
//	drbdsetup invalidate-remote RES PEER_ID VOL [--reset-bitmap=no]
//	drbdmeta [--force] MINOR v09 DEVICE internal get-gi --node-id N
//	drbdmeta --force MINOR v09 DEVICE internal wipe-md
//	drbdmeta [--force] MINOR v09 DEVICE internal forget-peer --node-id N
//	drbdmeta [--force] MINOR v09 DEVICE internal check-resize
//
// FILE is read from the real file system. Without -c, drbdadm reads
// /etc/drbd.conf under the directory given to [Host.SetConfigRoot] (the
// host's file system root in `pvehci lab`), as the real drbdadm reads
// /etc/drbd.conf; without a root it refuses. Either file is parsed for
// the subset that storage/drbd renders (node-id, volume/device
// minor/disk, options, net, connection/path); `include` patterns are
// followed, relative ones from the including file's directory, absolute
// ones under the root, and a glob matching nothing is no error, as in
// drbdadm. The RES argument picks one of all the resources so found.
// __DRBD_NODE__ in the command's environment names the host drbdadm acts
// as (testbed-local.md §2). Every events2 line parses with
// [drbd.ParseEvent] and applies to [drbd.Observed]. drbdmeta needs no
// module and answers on any host: get-gi exits 0 with the generation
// identifiers when the LV holds metadata (made by create-md), 1 with no
// output when it does not, 20 when the device does not exist, as the real
// drbdmeta does on this machine; wipe-md removes the metadata; forget-peer
// frees one peer's bitmap slot (its bitmap UUID and out-of-sync blocks).
// Since the metadata is in the LV's last blocks, a thin snapshot of the LV
// carries a copy of it as it was at that instant, and lvrename keeps it.
//
// The model, each part with the DRBD User's Guide section it follows:
//
//   - metadata per backing LV that outlives down/up (not lvremove), with the generation
//     identifiers (current UUID, bitmap UUID per peer) and a 4 KiB bitmap
//     per peer (23.1, 23.2); the device is the LV less the internal
//     metadata (23.1.3 exact formula);
//   - connections: Connecting, Connected, StandAlone; per volume Off,
//     Established, SyncSource/SyncTarget with done%; the handshake compares
//     generation identifiers (23.2.3, 23.2.4): no resync, a bitmap-based
//     resync either way, a full sync toward just-created metadata (all
//     bits set; an interrupted one resumes with the bits left, while bits
//     set only by writes to a disk not yet attached do not shorten it), or
//     split brain (2.11) when both sides started a generation while apart;
//     the sync target adopts the source's UUIDs (23.2.3);
//   - a Primary writes to its disk and, block for block, to every connected
//     peer's disk; blocks for unreachable peers are marked out of sync, and
//     a Primary that loses a peer starts a new data generation (23.2.1);
//   - auto-promote on opening [DRBDDevice] for writing, demote on the last
//     close (2.5); one Primary at a time among connected nodes, or two
//     with `allow-two-primaries yes` in both sides' net section
//     (dual-primary mode for live migration, 2.2 and 11.8: "limited to
//     exactly 2 Primaries"), each replicating its writes to the other;
//   - quorum majority/all/N, diskful voters, diskless tiebreakers, outdating
//     of the Secondary that loses its Primary while both reach the
//     tiebreaker (11.21.1–11.21.3); on-no-quorum io-error gives EIO,
//     suspend-io suspends (suspended:quorum);
//   - `new-current-uuid --clear-bitmap` on fresh connected replicas makes
//     them UpToDate without a sync ("Skipping initial device
//     synchronization"); `primary --force` starts a full sync (4.6);
//   - adjust attaches a backing disk newly configured for a running
//     diskless volume (LINSTOR's toggle-disk, 5.10): the LV must exist
//     and hold metadata from create-md (which works on it while the
//     resource is up diskless), else adjust fails as drbdsetup attach
//     does (exit 10); the disk negotiates with connected peers as at
//     connect time, so just-created metadata becomes a full SyncTarget of
//     an UpToDate peer (13.1.3) and client:no; reads are served by the
//     peer until the sync ends; writes go to the attached disk too;
//   - adjust with `disk none` for a diskful volume detaches it: Diskless,
//     client:yes, I/O through UpToDate peers, metadata left on the LV
//     (13.1.1, 2.14); refused with (-2) when a Primary would be left
//     without UpToDate data;
//   - online verify (2.9, 11.9) compares peers' blocks and marks the
//     differing ones, resynchronized at the next connect;
//   - `drbdsetup invalidate-remote --reset-bitmap=no` (drbdsetup(8)) makes
//     the peer the SyncTarget of the blocks already marked (verify's
//     findings), from this node; without the option every block;
//   - online grow (`drbdadm resize`, drbdadm(8)): the device grows on
//     every connected node to the smallest backing size of the connected
//     diskful replicas less their metadata; a diskful peer that is not
//     connected keeps the last agreed size (unless
//     --assume-peer-has-space); only the new area is synchronized, from
//     the node that ran the command, or not at all with --assume-clean;
//     refused during a resync and on a diskless node (resize.go);
//   - internal metadata sits at the end of the LV's size when it was
//     written: an LV extended while DRBD was down, or held but not yet
//     resized, keeps it at the old end, where get-gi and attach do not
//     find it; /var/lib/drbd/drbd-minor-N.lkbd under the host's root
//     records the last-known size, and `drbdadm check-resize` (drbdadm(8),
//     drbdmeta(8) "check-resize"), or the apply-al that drbdadm runs before
//     attach, moves the metadata from there to the new end; resize re-lays
//     it out for the grown LV (checkresize.go, compared with real drbdmeta
//     9.22 on a loop device).
//
// Exit codes and messages follow drbd-utils where known (10 kernel
// failure, 11 state change failed, 17 failed promotion, 20 no module);
// some wording is from memory of drbd-utils 9 and marked so in the code.
//
// # What is not modelled
//
// LVM: linear (thick) LVs, pvremove, vgremove, vgreduce, pvmove, which PV
// an extent lies on (pv_free counts the VG's used extents as filling its
// PVs in order), wipefs of a PV whose VG has no active LV (real wipefs
// erases its label; the simulation refuses), lsblk of a partition or an LV
// path and lsblk's other columns, file systems other than MountDisk's
// ext4, lvconvert, lvrename, text (non-JSON)
// reports, report sorting options, --select, metadata space exhaustion
// (metadata_percent is an estimate), discards.
//
// DRBD: protocols A and B (every write is synchronous), timing and
// bandwidth (a resync moves when the test says so), blocked I/O (a write
// that the kernel would block until resume-io returns EAGAIN instead), the
// live events2 stream's --timestamps and per-resource selection,
// drbdadm's fallback config files
// (/etc/drbd-90.conf and the like), -c FILE resolved under the root, dry
// runs, resize --size (shrinking) and resize's activity-log options,
// the device UUID of the last-known-size file, metadata re-layouts at
// connect time and the last agreed size kept in the metadata (a disk
// attached after an offline grow comes up at its LV's full size, and
// diskful peers do not negotiate sizes at connect), the drbdadm attach
// and detach commands (adjust does
// both), drbdadm's forget-peer and del-peer, set-gi and the other
// drbdmeta commands (create-md goes through drbdadm), the history UUIDs
// and most flag columns of get-gi, fencing handlers and automatic
// split-brain recovery policies, the temporary dual-primary mode
// (`drbdadm net-options --allow-two-primaries`, 11.8.2),
// quorum-minimum-redundancy, resync between two Secondaries over a
// connection that stayed up (it waits for the next connect), the metadata
// bytes inside the LV, and the timing of any of it.
package sim

import "github.com/pvehci/pvehci/internal/run"

var _ run.Runner = hostRunner{}
