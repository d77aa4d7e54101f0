// Package bootstrap is the per-node plan, apply and verify engine behind
// `pvehci bootstrap`, and the steps it runs: preflight, packages, network,
// corosync, storage, DRBD, the pvehci service, registration and the Proxmox
// storage entry.
//
// Every step is idempotent: it plans by comparing the host with what it
// wants, applies only that difference, and verifies the result. The engine
// applies steps in order; every file a step writes, removes or renames goes
// through a journal, so that when the step or its verification fails the
// engine puts back exactly the bytes, mode and owner each file had before,
// and stops with the reason. What it did is recorded in
// /var/lib/pvehci/bootstrap.json.
package bootstrap
