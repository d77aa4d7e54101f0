// Package bootstrap is the per-node plan, apply and verify engine behind
// `pvehci bootstrap`, and the steps it runs: preflight, packages, network,
// corosync, storage, DRBD, the pvehci service, registration and the Proxmox
// storage entry.
package bootstrap
