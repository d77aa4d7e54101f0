// Package pvesim is a simulated Proxmox VE cluster API: what `pvehci lab`
// serves as its cluster's PVE, and what tests point PVE-facing code at.
// It answers like pveproxy (research proxmox.md §4): paths under
// /api2/json, responses wrapped as {"data": …}, booleans as the numbers
// 0 and 1, API-token authentication (PVEAPIToken=USER@REALM!TOKENID=SECRET,
// 401 otherwise), tasks with real-format UPIDs (§4.3), VM configs whose
// disks are drbd volids with a digest (§4.4), and cluster status and
// resources (§4.1, §4.2).
//
// The lab drives it through the Go API: [Sim.CreateVM] allocates and
// activates disks through a [Storage] (pve/plugin's Storage adapter turns
// that into the LINSTOR plugin's own REST calls), and [Sim.Migrate] runs
// a live migration's phases in qemu-server's order (§4.3, and
// linstor-proxmox.md §8): lock migrate; activate every disk on the
// target; the BothActive hook, while both sides would have the device
// open (DRBD dual-primary is the caller's business); move the config to
// the target; deactivate every disk on the source; clear the lock. The
// qmigrate task on the source node ends "OK" or with the error text.
// Every storage and hook call is recorded in a transcript for tests.
//
// Nothing runs QEMU: a VM is its config, a node, a status and a lock.
package pvesim
