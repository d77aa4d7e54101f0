// Package state is the replicated controller state of pvehci: every object
// of the LINSTOR model (storage/model) plus pvehci's job schedules, job
// history and relocations, changed only by typed, versioned commands. It is
// what the raft FSM in the ha layer applies log entries to, snapshots and
// restores; it knows nothing of raft, the network or the clock.
//
// Apply is deterministic: the same sequence of commands gives the same
// results and a byte-identical Snapshot on every replica. Nothing in it
// reads the time, draws random numbers or depends on map iteration order;
// timestamps, UUIDs and DRBD secrets arrive inside the commands, filled in
// by the leader before it proposes them.
//
// Every command validates completely before it changes anything (prepare,
// then an infallible commit), so a refused command leaves the state exactly
// as it was. Refusals are *Error values whose Kind (Invalid, NotFound,
// Exists, InUse, Exhausted, Unsupported) and LINSTOR ret code the REST layer
// maps to an ApiCallRc.
//
// # Allocation
//
// Apply hands out DRBD numbers itself, from ranges that controller (and
// node) properties can change, so that no number is ever given twice while
// held and every number is free again once its holder is deleted:
//
//   - minors: per volume definition, cluster-wide, lowest free in
//     MinorNrAutoRange (controller, default 1000-49999); an explicit minor
//     may be anywhere in 0..2^20-1 if free.
//   - node ids: per resource, lowest free 0..31 within its resource
//     definition (diskless and tie-breaker resources take one too).
//   - TCP ports: per resource, unique on its node, from TcpPortAutoRange
//     (node, else controller, default 7000-7999). LINSTOR moved ports from
//     resource definitions to resources in 1.31.2 (research §2); pvehci
//     follows, with LINSTOR's preference order: the definition's preferred
//     port, then ports the definition's other resources use, then the
//     lowest free. Replicas therefore usually share one port number, while
//     a node can hold as many resources as its range has ports.
//
// # Snapshots
//
// Snapshot writes {"format":2,...}; Restore reads that and every older
// format through upgradeSnapshot, refuses newer formats and checks the
// input's consistency (unique keys, references, no DRBD number held twice)
// before it replaces anything.
package state
