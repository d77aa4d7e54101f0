// Package model is the LINSTOR domain object model as pvehci keeps it in its
// replicated controller state: nodes and their network interfaces, storage
// pool definitions and pools, resource groups with their volume groups and
// auto-select filters, resource definitions with their volume definitions,
// resources with their volumes, snapshots, and pvehci's own job schedules,
// job runs and relocations.
//
// Names, flags and property keys are spelled as LINSTOR spells them, because
// the REST layer serves them unchanged to LINBIT's Proxmox plugin, golinstor
// and the linstor client. The JSON tags here are the format of the raft FSM
// snapshot, not the REST wire format: the REST layer maps separately, so
// these tags may only change together with a snapshot format upgrade in
// ha/state.
//
// Everything in this package is pure: validation, property inheritance and
// range parsing read only their arguments. Observed state (DRBD roles, disk
// states, pool free space) is not part of this model; satellites report it
// and it is never replicated.
//
// # Property inheritance
//
// LINSTOR does not copy inherited properties; it resolves a key at the time
// it is used by walking a fixed list of objects, first hit wins. The list
// depends on the key. [LookupOrder] implements these lists and [Scope.Resolve]
// returns the value together with the object it came from and the values it
// shadowed, which is what `resource show` needs to explain a setting.
//
//	key                                          order (first wins)
//	PrefNic                                      SP > R > RD > RG > N > C
//	DrbdOptions/Disk/*, and keys not listed      V > R > VD > VG > RD > RG > N > C
//	DrbdOptions/{Resource,Net,PeerDevice,
//	  Handlers,Proxy,ProxyCompression}/*         R > RD > RG > N > C
//	DrbdOptions/auto-diskful,
//	  DrbdOptions/auto-diskful-allow-cleanup     R > N > RD > RG > C
//	DrbdOptions/ForceInitialSync,
//	  PeerSlotsNewResource                       RD > RG > C
//	TcpPortAutoRange                             N > C
//	MinorNrAutoRange                             C
//	StorDriver/*                                 SP (not inherited)
//
// V volume, R resource, VD volume definition, VG volume group, RD resource
// definition, RG resource group, SP the storage pool of the resource's first
// volume, N node, C controller. Sources: shared research linstor-server.md
// §2 (PrefNic lookup in ConfFileBuilder.getPreferredNetIf; per-volume disk
// options "V > R > VD > VG > RD > RG > N > C"), §5 (auto-diskful and
// auto-diskful-allow-cleanup priorities from AutoDiskfulTask), §2 table
// (PeerSlotsNewResource RD > RG > ctrl; TcpPortAutoRange on node or
// controller), §3 (ForceInitialSync RD > RG > controller). The resource-level
// order R > RD > RG > N > C is the PriorityProps that ConfFileBuilder.build
// uses for the handlers, options, net and disk sections of a .res file
// (linstor-server read at 2b911026, behaviour only). LINSTOR's separate
// satellite property container ("stlt" in §5) does not exist in pvehci; it is
// folded into the controller level.
package model
