// Package lab is `pvehci lab`: a whole pvehci cluster on one machine, for
// the quick start, the demo and the integration tests.
//
// A lab is one supervisor (this package, in the `pvehci lab serve` process
// or in a test) and one real `pvehci daemon` process per node. The nodes
// are n1..nN on their own loopback addresses (127.0.0.11, 127.0.0.12, …)
// with the standard ports (REST API 3370, peer port 3372), so a client that
// cannot choose a port, such as the Proxmox plugin, works unchanged. Each
// daemon runs the real raft, REST API and satellite; only its storage
// commands differ: they go through internal/kernelrpc to the simulated
// kernel (storage/sim) that the supervisor holds, one sim.Host per node on
// one sim.Network, so DRBD replication, resync, quorum and split brain
// happen between the nodes as on real hardware. Each node's files (the
// .res files, drbd.conf) live under DIR/nodes/NAME/root at their real
// paths.
//
// The supervisor serves a control API on DIR/lab.sock, which the `pvehci
// lab` subcommands use (status, kill, start, partition, heal, corrupt, vm
// …), and writes DIR/env with LS_CONTROLLERS and PVEHCI_LAB_NODES for
// scripts.
//
// What the lab does not do (yet): the nodes are not brought up by the
// bootstrap code path; their LINSTOR objects (nodes, pools, resource
// group) are created through the REST API the way an admin would with the
// linstor client. Raft and REST traffic run over real loopback TCP, so a
// partition cuts DRBD traffic in the simulated network only.
package lab
