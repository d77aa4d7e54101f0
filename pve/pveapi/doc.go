// Package pveapi reads where the VMs of a Proxmox VE cluster run, for the
// leader's relocation decisions (ha/relocate): GET /cluster/resources
// ?type=vm for each VM's node and lock, and GET /cluster/tasks for running
// and finished migrations (research/proxmox.md §4.2, §4.3). It is a small
// read-only client over net/http with an API token (PVEAuditor on / is
// enough); booleans and numbers are decoded leniently, since PVE sends
// Perl's 0/1 and sometimes numbers as strings.
package pveapi
