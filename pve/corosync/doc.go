// Package corosync reads, checks, changes and safely rewrites the Proxmox
// cluster's corosync.conf, above all to add the IP-over-InfiniBand network
// as a second knet link (link 1) to every node in one edit.
//
// # Model
//
// [Parse] reads the file with corosync's own line grammar into a generic
// tree ([ParseTree], [Section], [Item]) and then into a typed [Config]: the
// totem settings Proxmox writes (cluster_name, config_version, ip_version,
// link_mode, secauth, version, one [Interface] per link), the nodelist
// ([Node] with name, nodeid, quorum_votes and ring0_addr…ring7_addr), the
// quorum provider and the logging switches. Every key pvehci does not model
// stays in the Extra items of its section, with the comments in front of
// it, so an admin's own options (token, crypto_cipher, a qdevice, a
// logger_subsys…) survive a round trip untouched.
//
// [Render] writes the layout of PVE::Corosync::write_conf: keys sorted at
// every level, nodes by name, interfaces by link number, two spaces of
// indentation, a blank line after each top-level section. A file Proxmox
// generated therefore renders byte for byte as it was (the goldens in
// testdata prove it). Any other file is normalised to exactly what the next
// Proxmox write (pvecm add, for one) would make of it; the documented
// differences are: order as above, whitespace around ':' and indentation
// made canonical, blank lines inside sections dropped, CRLF line ends
// become LF. Unlike Proxmox, which drops every comment, comments are kept
// in front of the item they preceded.
//
// # Checks corosync does not make
//
// corosync -t accepts an unknown key (a typo such as knet_link_priorty
// simply does nothing) and the same ring address on two nodes, and
// reports "Not all nodes have the same number of links" without naming the
// node. [Validate] reports those with the node, key and line, and also what
// Proxmox needs: a positive config_version (pmxcfs does not copy a file
// without one), an interface section for every link that has addresses
// (PVE::Corosync::verify_conf), at most 8 links (0–7), unique nodeids and
// names, no repeated sections (Proxmox's parser dies on them). The known
// keys are those of corosync 3.1 (corosync.conf(5), votequorum(5),
// corosync-qdevice(8)). Note that Proxmox's parser also accepts linkN_addr,
// but corosync reads only ringN_addr; linkN_addr is reported as unknown.
//
// # Adding a link
//
// [AddLink] is the documented procedure (pvecm.adoc, "Adding Redundant
// Links To An Existing Cluster") as a pure function: ringN_addr for every
// node, an interface { linknumber: N } section, config_version + 1. It has
// to be one edit that covers all nodes: corosync refuses a configuration in
// which nodes have different links, so a node cannot add "its own" address
// during its bootstrap. The new link gets a knet_link_priority below link
// 0's unless told otherwise ([Priority]); in passive mode the highest
// priority wins (corosync.conf(5) and knet's host.c agree; the description
// in Proxmox's API schema that says "lower value means higher priority" is
// wrong), and among equal priorities the lowest link number.
//
// # Safe edit procedure
//
// /etc/pve/corosync.conf lives on pmxcfs. Every write, create or rename
// onto it is applied on every node at once: pmxcfs reads config_version
// with the regex config_version\s*:\s*(\d+), refuses to copy a file whose
// version is lower than the node's /etc/corosync/corosync.conf (an equal
// version with other content is copied), and on the writing node runs
// corosync-cfgtool -R a second later. pmxcfs's O_TRUNC is not atomic, so
// the live file must never be written in place. [Editor] therefore follows
// pvecm.adoc "Edit corosync.conf" and PVE::Corosync::atomic_write_conf:
// write corosync.conf.new, check it (own checks, then corosync -t as every
// node through [ToolChecker] where corosync and root are available), keep
// corosync.conf.bak, rename the new file over the live one. [Editor.Plan]
// computes the change and [Plan.Steps] / [Plan.String] describe it for
// --plan; [Editor.Apply] carries it out. Both refuse while corosync.conf.new
// exists: Proxmox's writer and the manual procedure use that name, so it is
// someone else's edit in progress (or one abandoned half way that an admin
// must look at). The check cannot be atomic against an admin who does not
// take the lock, which is why the lock is also taken.
//
// # The pmxcfs lock
//
// Proxmox serialises corosync.conf writers with cfs_lock_file("corosync.conf")
// (PVE::Cluster): mkdir /etc/pve/priv/lock/file-corosync_conf, retried every
// 100 ms to 1 s until a timeout (10 s by default), and rmdir when done. On
// pmxcfs that mkdir is atomic across the cluster. Between attempts the waiter
// sets the lock directory's times to 0 (utime(0, 0)), which pmxcfs reads as an
// unlock request and honours only when the lock is older than 120 s
// (CFS_LOCK_TIMEOUT in memdb.c), so a dead holder cannot block the cluster.
// Proxmox aborts its own locked work after 60 s to stay clear of that expiry;
// [HoldLimit] does the same. /etc/pve, and so the lock, is read-only while the
// node is not quorate. [Lock] is the interface, [PmxcfsLock] the same
// on-disk protocol (not yet run against a real pmxcfs, which cannot run
// here), [FakeLock] the recording fake for tests.
//
// # Traps
//
// The manual procedure goes wrong in a few known ways, each of which this
// package refuses or avoids: forgetting to raise config_version (a blog
// walk-through of exactly this edit shows the "after" file with the same
// version as before; pmxcfs still copies it, but nothing orders it against
// a concurrent edit and Proxmox warns against it), editing
// /etc/corosync/corosync.conf instead of /etc/pve/corosync.conf (pmxcfs
// overwrites it), giving only some nodes the new link, and host names in
// ringN_addr (resolved differently per node; Proxmox stores IPs). After a
// change, a node that was offline gets the file on resync but is never told
// to reload: compare corosync-cmapctl totem.config_version with the file.
// On an HA cluster a corosync reconfiguration can cost quorum briefly and
// nodes with HA resources fence after about 60 s without it.
package corosync
