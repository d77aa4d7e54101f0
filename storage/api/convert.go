package api

import (
	"strconv"
	"strings"

	linstor "github.com/LINBIT/golinstor"
	"github.com/pvehci/pvehci/ha/state"
	"github.com/pvehci/pvehci/storage/model"
)

// Conversions from the model (plus observations) to the wire structs.

// strMap gives a property map for the wire: p itself (the state's read
// accessors return deep copies, so it is the caller's), or a new empty
// map so that it encodes as {} and may be added to.
func strMap(p model.Props) map[string]string {
	if p == nil {
		return map[string]string{}
	}
	return p
}

func strList(ss []string) []string {
	if ss == nil {
		return []string{}
	}
	return append([]string{}, ss...)
}

// defaultLayerStack is what LINSTOR builds when nobody names a stack.
func defaultLayerStack() []string { return []string{"DRBD", "STORAGE"} }

func (h *Handler) nodeOut(n model.Node) nodeOut {
	status := "ONLINE"
	if h.node != nil {
		switch o, ok := h.node.ObservedNode(n.Name); {
		case !ok:
			status = "UNKNOWN"
		case !o.Online:
			status = "OFFLINE"
		}
	}
	out := nodeOut{
		Name: n.Name, Type: string(n.Type), Flags: strList(n.Flags), Props: strMap(n.Props),
		NetInterfaces: make([]netIfOut, 0, len(n.NetInterfaces)), ConnectionStatus: status, UUID: n.UUID,
		StorageProviders: []string{}, ResourceLayers: []string{},
		UnsupportedProviders: map[string][]string{}, UnsupportedLayers: map[string][]string{},
	}
	if n.Type.HostsResources() {
		for _, k := range model.SupportedProviderKinds() {
			out.StorageProviders = append(out.StorageProviders, string(k))
		}
		out.ResourceLayers = defaultLayerStack()
	}
	active := activeNetIf(n)
	for _, ni := range n.NetInterfaces {
		out.NetInterfaces = append(out.NetInterfaces, netIfToOut(ni, model.SameName(ni.Name, active)))
	}
	return out
}

// activeNetIf is the interface LINSTOR would use for the satellite
// connection: "default" if present, else the first.
func activeNetIf(n model.Node) string {
	if _, ok := n.NetInterface(model.DefaultNetInterface); ok {
		return model.DefaultNetInterface
	}
	if len(n.NetInterfaces) > 0 {
		return n.NetInterfaces[0].Name
	}
	return ""
}

func netIfToOut(ni model.NetInterface, active bool) netIfOut {
	port := ni.SatellitePort
	if port == 0 {
		port = linstor.DfltStltPortPlain
	}
	enc := ni.SatelliteEncryptionType
	if enc == "" {
		enc = "PLAIN"
	}
	return netIfOut{Name: ni.Name, Address: ni.Address, SatellitePort: port, SatelliteEncryptionType: enc, IsActive: active, UUID: ni.UUID}
}

// storPoolName is LINSTOR's combined StorDriver/StorPoolName for a pool
// (vg/thinpool, or the zfs dataset), which the python client shows.
func storPoolName(p model.StoragePool) string {
	switch p.ProviderKind {
	case model.ProviderLVMThin:
		return p.Props[model.KeyStorDriverLvmVg] + "/" + p.Props[model.KeyStorDriverThinPool]
	case model.ProviderZFSThin:
		return p.Props[model.KeyStorDriverZPoolThin]
	}
	return ""
}

const keyStorDriverStorPoolName = model.NamespaceStorDriver + "/" + linstor.KeyStorPoolName

func (h *Handler) poolOut(p model.StoragePool) poolOut {
	out := poolOut{
		StoragePoolName: p.Name, NodeName: p.Node, ProviderKind: string(p.ProviderKind), Props: strMap(p.Props),
		StaticTraits: map[string]string{}, FreeSpaceMgrName: p.Node + ";" + p.Name, UUID: p.UUID,
		Reports: []ApiCallRc{}, SharedSpace: p.SharedSpace,
	}
	if name := storPoolName(p); name != "" {
		if _, ok := out.Props[keyStorDriverStorPoolName]; !ok {
			out.Props[keyStorDriverStorPoolName] = name
		}
	}
	if p.ProviderKind.Diskless() {
		out.StaticTraits["SupportsSnapshots"] = "false"
		return out
	}
	out.SupportsSnapshots = true
	out.StaticTraits["Provisioning"] = "Thin"
	out.StaticTraits["SupportsSnapshots"] = "true"
	if obs, ok := h.observedPool(p.Node, p.Name); ok {
		out.FreeCapacity, out.TotalCapacity = obs.FreeKiB, obs.TotalKiB
	} else {
		e := rc(linstor.WarnNotConnected|linstor.MaskStorPool, "no capacity report for storage pool %s on %s yet", p.Name, p.Node)
		e.Correction = "check that the pvehci daemon runs on " + p.Node
		out.Reports = append(out.Reports, e)
	}
	return out
}

func (h *Handler) observedPool(node, pool string) (ObservedPool, bool) {
	if h.pool == nil {
		return ObservedPool{}, false
	}
	return h.pool.ObservedPool(node, pool)
}

func filterToOut(f model.SelectFilter) filterOut {
	out := filterOut{
		PlaceCount: f.PlaceCount, AdditionalPlaceCount: f.AdditionalPlaceCount,
		NodeNameList: strList(f.NodeNameList), StoragePool: f.StoragePool, StoragePoolList: strList(f.StoragePoolList),
		StoragePoolDisklessList: strList(f.StoragePoolDisklessList), NotPlaceWithRsc: strList(f.NotPlaceWithRsc),
		NotPlaceWithRscRegex: f.NotPlaceWithRscRegex, ReplicasOnSame: strList(f.ReplicasOnSame),
		ReplicasOnDifferent: strList(f.ReplicasOnDifferent), XReplicasOnDifferentMap: map[string]int{},
		LayerStack: strList(f.LayerStack), ProviderList: strList(f.ProviderList),
		DisklessOnRemaining: f.DisklessOnRemaining, DisklessType: f.DisklessType,
	}
	for k, v := range f.XReplicasOnDifferentMap {
		out.XReplicasOnDifferentMap[k] = v
	}
	if len(out.LayerStack) == 0 {
		// The Proxmox plugin iterates over layer_stack to look for NVME;
		// show the stack that will be built rather than nothing.
		out.LayerStack = defaultLayerStack()
	}
	return out
}

func groupToOut(g model.ResourceGroup) groupOut {
	return groupOut{Name: g.Name, Description: g.Description, Props: strMap(g.Props), SelectFilter: filterToOut(g.SelectFilter),
		UUID: g.UUID, PeerSlots: g.PeerSlots}
}

func volumeGroupToOut(vg model.VolumeGroup) volumeGroupOut {
	return volumeGroupOut{VolumeNumber: vg.VolumeNumber, Props: strMap(vg.Props), UUID: vg.UUID, Flags: strList(vg.Flags)}
}

func drbdDefinitionToOut(rd model.ResourceDefinition) drbdDefinitionOut {
	slots := rd.Drbd.PeerSlots
	if slots == 0 {
		slots = model.DefaultPeerSlots
	}
	transport := string(rd.Drbd.Transport)
	if transport == "" {
		transport = string(model.TransportIP)
	}
	return drbdDefinitionOut{PeerSlots: slots, AlStripes: 1, AlStripeSizeKiB: 32, Port: rd.Drbd.Port,
		TransportType: transport, Secret: rd.Drbd.Secret}
}

func definitionToOut(rd model.ResourceDefinition, withVolumes bool) definitionOut {
	out := definitionOut{
		Name: rd.Name, ExternalName: rd.ExternalName, Props: strMap(rd.Props), Flags: strList(rd.Flags),
		LayerData: []layerData{{Type: "DRBD", Data: drbdDefinitionToOut(rd)}, {Type: "STORAGE"}},
		UUID:      rd.UUID, ResourceGroupName: rd.ResourceGroup,
	}
	if withVolumes {
		out.VolumeDefinitions = make([]volumeDefinitionOut, 0, len(rd.VolumeDefinitions))
		for _, vd := range rd.VolumeDefinitions {
			out.VolumeDefinitions = append(out.VolumeDefinitions, volumeDefinitionToOut(vd))
		}
	}
	return out
}

func volumeDefinitionToOut(vd model.VolumeDefinition) volumeDefinitionOut {
	return volumeDefinitionOut{VolumeNumber: vd.VolumeNumber, SizeKiB: vd.SizeKiB, Props: strMap(vd.Props), Flags: strList(vd.Flags),
		LayerData: []layerData{{Type: "DRBD", Data: drbdVolumeDefinitionOut{VolumeNumber: vd.VolumeNumber, MinorNumber: vd.Minor}}, {Type: "STORAGE"}},
		UUID:      vd.UUID}
}

// poolKinds maps "node key/pool key" to the pool's provider.
type poolKinds map[string]model.ProviderKind

func newPoolKinds(pools []model.StoragePool) poolKinds {
	m := make(poolKinds, len(pools))
	for _, p := range pools {
		m[model.Key(p.Node)+"/"+model.Key(p.Name)] = p.ProviderKind
	}
	return m
}

func (m poolKinds) kind(node, pool string, diskless bool) model.ProviderKind {
	if diskless {
		return model.ProviderDiskless
	}
	if k, ok := m[model.Key(node)+"/"+model.Key(pool)]; ok {
		return k
	}
	return model.ProviderDiskless
}

func observedVolume(obs ObservedResource, vnr int) (ObservedVolume, bool) {
	for _, v := range obs.Volumes {
		if v.VolumeNumber == vnr {
			return v, true
		}
	}
	return ObservedVolume{}, false
}

// deviceOf is a volume's DRBD device: as observed, else what the
// satellite will create (/dev/drbd<minor>).
func deviceOf(ov ObservedVolume, ok bool, vd model.VolumeDefinition) string {
	if ok && ov.DevicePath != "" {
		return ov.DevicePath
	}
	return "/dev/drbd" + strconv.Itoa(vd.Minor)
}

// volumeParts computes the per-volume figures shared by the DRBD layer
// and the volume list: device, disk state, sizes.
type volumeParts struct {
	vnr       int
	pool      string
	kind      model.ProviderKind
	device    string
	backing   string
	diskState string
	allocated int64
	usable    int64
	props     model.Props
	flags     model.Flags
	uuid      string
	minor     int
}

func resourceVolumes(rd model.ResourceDefinition, r model.Resource, obs ObservedResource, observed bool, kinds poolKinds) []volumeParts {
	out := make([]volumeParts, 0, len(r.Volumes))
	diskless := r.Diskless()
	for _, v := range r.Volumes {
		vd, _ := rd.VolumeDefinition(v.VolumeNumber)
		ov, ok := ObservedVolume{}, false
		if observed {
			ov, ok = observedVolume(obs, v.VolumeNumber)
		}
		p := volumeParts{vnr: v.VolumeNumber, pool: v.StoragePool, kind: kinds.kind(r.Node, v.StoragePool, diskless),
			device: deviceOf(ov, ok, vd), props: v.Props, flags: v.Flags, uuid: v.UUID, minor: vd.Minor,
			diskState: "Unknown", usable: vd.SizeKiB}
		if ok {
			p.diskState, p.backing, p.allocated = ov.DiskState, ov.BackingDevice, ov.AllocatedSizeKiB
			if ov.UsableSizeKiB > 0 {
				p.usable = ov.UsableSizeKiB
			}
		}
		if diskless {
			p.allocated = 0
		}
		out = append(out, p)
	}
	return out
}

func (h *Handler) resourceToOut(rd model.ResourceDefinition, r model.Resource, obs ObservedResource, observed bool, vols []volumeParts) resourceOut {
	drbd := &drbdResourceOut{
		DrbdResourceDefinition: drbdDefinitionToOut(rd), NodeID: r.NodeID, PeerSlots: r.PeerSlots, AlStripes: 1, AlSize: 32,
		Flags: []string{}, DrbdVolumes: make([]drbdVolumeOut, 0, len(vols)), Connections: map[string]drbdConnectionOut{},
		TCPPorts: append([]int{}, r.TCPPorts...),
	}
	storage := &storageOut{StorageVolumes: make([]storageVolumeOut, 0, len(vols))}
	for _, v := range vols {
		drbd.DrbdVolumes = append(drbd.DrbdVolumes, drbdVolumeOut{
			DrbdVolumeDefinition: drbdVolumeDefinitionOut{VolumeNumber: v.vnr, MinorNumber: v.minor},
			DevicePath:           v.device, BackingDevice: v.backing, MetaDisk: metaDisk(r), AllocatedSizeKiB: v.allocated,
			UsableSizeKiB: v.usable, DiskState: v.diskState,
		})
		storage.StorageVolumes = append(storage.StorageVolumes, storageVolumeOut{VolumeNumber: v.vnr, DevicePath: v.backing,
			AllocatedSizeKiB: v.allocated, UsableSizeKiB: v.usable})
	}
	if observed {
		for peer, c := range obs.Connections {
			//lint:ignore S1016 the wire type is deliberately its own; a conversion would couple it to ObservedConnection
			drbd.Connections[peer] = drbdConnectionOut{Connected: c.Connected, Message: c.Message}
		}
		drbd.PromotionScore, drbd.MayPromote = obs.PromotionScore, obs.MayPromote
	}
	return resourceOut{
		Name: r.Name, NodeName: r.Node, Props: strMap(r.Props), Flags: strList(r.Flags),
		LayerObject: layerObjectOut{Type: "DRBD", Drbd: drbd,
			Children: []layerObjectOut{{Type: "STORAGE", Storage: storage, Children: []layerObjectOut{}}}},
		State: resourceStateOut{InUse: observed && obs.InUse}, UUID: r.UUID, CreateTimestamp: r.CreateTimestamp,
	}
}

func metaDisk(r model.Resource) string {
	if r.Diskless() {
		return ""
	}
	return "internal"
}

func volumesToOut(vols []volumeParts) []volumeOut {
	out := make([]volumeOut, 0, len(vols))
	for _, v := range vols {
		drbd := drbdVolumeOut{DrbdVolumeDefinition: drbdVolumeDefinitionOut{VolumeNumber: v.vnr, MinorNumber: v.minor},
			DevicePath: v.device, BackingDevice: v.backing, AllocatedSizeKiB: v.allocated, UsableSizeKiB: v.usable, DiskState: v.diskState}
		out = append(out, volumeOut{
			VolumeNumber: v.vnr, StoragePoolName: v.pool, ProviderKind: string(v.kind), DevicePath: v.device,
			AllocatedSizeKiB: v.allocated, UsableSizeKiB: v.usable, Props: strMap(v.props), Flags: strList(v.flags),
			State: volumeStateOut{DiskState: v.diskState},
			LayerDataList: []layerData{{Type: "DRBD", Data: drbd},
				{Type: "STORAGE", Data: storageVolumeOut{VolumeNumber: v.vnr, DevicePath: v.backing, AllocatedSizeKiB: v.allocated, UsableSizeKiB: v.usable}}},
			UUID: v.uuid, Reports: []ApiCallRc{},
		})
	}
	return out
}

func snapshotToOut(sd model.SnapshotDefinition) snapshotOut {
	out := snapshotOut{
		Name: sd.Name, ResourceName: sd.ResourceName, Nodes: make([]string, 0, len(sd.Snapshots)),
		Props: strMap(sd.Props), SnapshotDefinitionProps: strMap(sd.Props), ResourceDefinitionProps: strMap(sd.ResourceDefinitionProps),
		Flags: strList(sd.Flags), VolumeDefinitions: make([]snapshotVolumeDefinitionOut, 0, len(sd.VolumeDefinitions)),
		UUID: sd.UUID, Snapshots: make([]snapshotNodeOut, 0, len(sd.Snapshots)),
	}
	for _, vd := range sd.VolumeDefinitions {
		out.VolumeDefinitions = append(out.VolumeDefinitions, snapshotVolumeDefinitionOut{VolumeNumber: vd.VolumeNumber, SizeKiB: vd.SizeKiB})
	}
	for _, sn := range sd.Snapshots {
		out.Nodes = append(out.Nodes, sn.Node)
		n := snapshotNodeOut{SnapshotName: sd.Name, NodeName: sn.Node, CreateTimestamp: sn.CreateTimestamp, Flags: strList(sn.Flags),
			SnapshotVolumes: make([]snapshotVolumeOut, 0, len(sn.Volumes))}
		for _, v := range sn.Volumes {
			n.SnapshotVolumes = append(n.SnapshotVolumes, snapshotVolumeOut{VlmNr: v.VolumeNumber, Props: strMap(v.Props)})
		}
		out.Snapshots = append(out.Snapshots, n)
	}
	return out
}

// rdIndex maps resource definition keys to definitions, for views that
// join resources with their definitions.
func rdIndex(st *state.State) map[string]model.ResourceDefinition {
	rds := st.ResourceDefinitions()
	m := make(map[string]model.ResourceDefinition, len(rds))
	for _, rd := range rds {
		m[model.Key(rd.Name)] = rd
	}
	return m
}

// hasFold reports whether list holds s, ignoring case.
func hasFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}
