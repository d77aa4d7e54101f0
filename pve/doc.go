// Package pve is the Proxmox VE side of pvehci: the PVE API client wrapper,
// storage.cfg (section config) reading and writing, corosync.conf rendering
// and safe editing under the pmxcfs lock, and the watcher that tells which
// node runs each VM and when a migration has finished.
package pve
