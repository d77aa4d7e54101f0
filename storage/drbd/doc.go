// Package drbd is the satellite's DRBD 9 vocabulary: it renders the .res
// file of a resource from a typed [ResourceConfig], builds that config from
// the replicated state ([Build]), and reads what the kernel reports through
// `drbdsetup events2` ([ParseEvent], [EventReader]) into an observed-state
// snapshot ([Observed]). It runs no programs and writes no files; the
// satellite does that with what this package returns.
//
// # The .res file
//
// One file per resource definition, the same layout LINSTOR's satellite
// writes (shared research linstor-server.md §2) with two deliberate
// differences:
//
//   - One explicit `connection` block per pair of nodes and no
//     connection-mesh. drbdadm 9.22 emits every peer twice when a mesh and an
//     explicit connection name the same pair (testbed-local.md §2), and a
//     mesh cannot say which addresses a pair uses.
//   - Addresses are chosen per pair, not per node. LINSTOR picks each side's
//     PrefNic on its own and falls back to "default" for the side that lacks
//     it, so a witness reachable only on the management network gets a
//     connection from a storage-network address to a management address,
//     which never connects.
//
// [SelectPaths] chooses both ends of a pair together, by the first rule that
// applies:
//
//  1. the preferred interface (PrefNic of either node) when both nodes have
//     an interface of that name in the same address family;
//  2. a pair of interfaces whose addresses share a subnet, when prefix
//     lengths are known (an [Interface] address may be given as CIDR); the
//     same interface name on both sides wins, then the longest prefix, then
//     the names;
//  3. each node's "default" interface (LINSTOR's fallback; a node without
//     one uses its first interface by name).
//
// It reports per pair which rule chose the addresses and why the earlier
// ones did not apply ([PathChoice]), for `resource show`, and the reason is
// also a comment in the file. A pair whose default interfaces are of
// different address families has no usable path, which is an error naming
// both nodes and their interfaces.
//
// A pair of diskless nodes gets no connection, as in LINSTOR: clients and
// tie-breakers replicate nothing to each other.
//
// drbdadm checks syntax, keywords and most ranges, and tests run it on every
// golden file. [ResourceConfig.Validate] checks what drbdadm 9.22 accepts
// although the kernel would refuse it or the cluster would misbehave
// (testbed-local.md §2): addresses that are not IPv4/IPv6 literals, ports
// outside 1-65535, minors above 2^20-1, node ids outside 0-31 or used twice,
// transports other than tcp and rdma, a meta-disk on a diskless volume, and
// names DRBD or LINSTOR would reject. Option names are checked against what
// drbdsetup 9.22 knows: Build leaves out a property DRBD has no option for and
// returns a warning naming it and where it is set (LINSTOR filters through the
// same lists), and Validate refuses an unknown name in a hand-made config, so
// that a typo fails here and not in `drbdadm adjust` on every node.
//
// # RDMA buffer sizing
//
// The RDMA transport receives into preposted buffers (zero-copy), so the DRBD
// guide (§"Multiple replication transports") requires max-buffers, counted in
// 4 KiB pages, to hold all of rcvbuf-size plus what may be in flight to the
// backing device. With transport rdma the file therefore always carries
// rcvbuf-size (default [RDMARcvbufSize], twice the transport's own default
// of about 2 MiB, so that one 1 MiB request can be received while another
// is handed to the disk) and max-buffers of at least rcvbuf-size/4 KiB plus
// [InFlightPages]
// (DRBD's own default max-buffers, the in-flight allowance it gives TCP). A
// max-buffers property below that minimum is an error naming the minimum,
// not something silently raised.
//
// # events2
//
// `drbdsetup events2 [--now] [--statistics] [--timestamps]` prints one event
// per line: `[TIMESTAMP] ACTION OBJECT key:value...`, where ACTION is exists,
// create, change, destroy (and call, response for helpers, rename for
// resources), OBJECT is resource, connection, device, peer-device, path or
// helper, and the initial dump ends with the line `exists -`. A change line
// carries only what changed, so [Observed] merges fields into what it knows
// instead of replacing objects. Sizes and counters (size, received, sent,
// out-of-sync) are KiB, as drbdsetup prints them.
package drbd
