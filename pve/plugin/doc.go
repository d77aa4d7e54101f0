// Package plugin drives pvehci's LINSTOR REST API the way LINBIT's Proxmox
// storage plugin (linstor-proxmox 8.3.0, storage.cfg type drbd) does, so
// that `pvehci lab vm create|migrate|delete` and tests exercise the
// controller with the plugin's own traffic rather than golinstor's.
//
// Each method of [Client] is one PVE storage-plugin hook (alloc_image,
// activate_volume, path, deactivate_volume, free_image, volume_resize,
// status) and sends exactly the requests research linstor-proxmox.md §4
// logged from the real plugin, in the same order, with the bodies of §3,
// no Content-Type, Connection: close, and the exact success status the
// plugin demands (it compares the code and ignores ret_code). As in the
// plugin (§2), every hook first picks a controller: the first of
// Client.Controllers that answers GET /health with 200; once picked, the
// rest of that hook talks only to it. The naming, property and
// diskless/diskful rules follow §6; deactivation deletes only a DISKLESS
// resource, with keep_tiebreaker=True, which is what live migration
// relies on (§8).
//
// This is a clean-room emulation written from those notes, not a port of
// the Perl code. [Storage] adapts a Client to pve/pvesim's Storage
// interface.
package plugin
