package api

// Response bodies, in LINSTOR's field names (research linstor-server.md
// §1.3). Fields that a client reads carry no omitempty: a volume number 0,
// an in_use false or an empty list must be on the wire. Maps and slices
// are always non-nil when built by this package, so they encode as {} and
// [] rather than null.

type nodeOut struct {
	Name                 string              `json:"name"`
	Type                 string              `json:"type"`
	Flags                []string            `json:"flags"`
	Props                map[string]string   `json:"props"`
	NetInterfaces        []netIfOut          `json:"net_interfaces"`
	ConnectionStatus     string              `json:"connection_status"`
	UUID                 string              `json:"uuid"`
	StorageProviders     []string            `json:"storage_providers"`
	ResourceLayers       []string            `json:"resource_layers"`
	UnsupportedProviders map[string][]string `json:"unsupported_providers"`
	UnsupportedLayers    map[string][]string `json:"unsupported_layers"`
}

type netIfOut struct {
	Name                    string `json:"name"`
	Address                 string `json:"address"`
	SatellitePort           int    `json:"satellite_port"`
	SatelliteEncryptionType string `json:"satellite_encryption_type"`
	IsActive                bool   `json:"is_active"`
	UUID                    string `json:"uuid"`
}

type poolOut struct {
	StoragePoolName   string            `json:"storage_pool_name"`
	NodeName          string            `json:"node_name"`
	ProviderKind      string            `json:"provider_kind"`
	Props             map[string]string `json:"props"`
	StaticTraits      map[string]string `json:"static_traits"`
	FreeCapacity      int64             `json:"free_capacity"`
	TotalCapacity     int64             `json:"total_capacity"`
	FreeSpaceMgrName  string            `json:"free_space_mgr_name"`
	UUID              string            `json:"uuid"`
	Reports           []ApiCallRc       `json:"reports"`
	SupportsSnapshots bool              `json:"supports_snapshots"`
	SharedSpace       string            `json:"shared_space,omitempty"`
	ExternalLocking   bool              `json:"external_locking"`
}

type poolDefOut struct {
	StoragePoolName string            `json:"storage_pool_name"`
	Props           map[string]string `json:"props"`
	UUID            string            `json:"uuid"`
}

// filterOut leaves unset lists out, as LINSTOR does: the python client
// shows the storage pool from storage_pool_list when that key exists,
// even when it is empty. layer_stack is always there, since the Proxmox
// plugin iterates over it.
type filterOut struct {
	PlaceCount              int            `json:"place_count"`
	AdditionalPlaceCount    int            `json:"additional_place_count,omitempty"`
	NodeNameList            []string       `json:"node_name_list,omitempty"`
	StoragePool             string         `json:"storage_pool,omitempty"`
	StoragePoolList         []string       `json:"storage_pool_list,omitempty"`
	StoragePoolDisklessList []string       `json:"storage_pool_diskless_list,omitempty"`
	NotPlaceWithRsc         []string       `json:"not_place_with_rsc,omitempty"`
	NotPlaceWithRscRegex    string         `json:"not_place_with_rsc_regex,omitempty"`
	ReplicasOnSame          []string       `json:"replicas_on_same,omitempty"`
	ReplicasOnDifferent     []string       `json:"replicas_on_different,omitempty"`
	XReplicasOnDifferentMap map[string]int `json:"x_replicas_on_different_map,omitempty"`
	LayerStack              []string       `json:"layer_stack"`
	ProviderList            []string       `json:"provider_list,omitempty"`
	DisklessOnRemaining     bool           `json:"diskless_on_remaining"`
	DisklessType            string         `json:"diskless_type,omitempty"`
}

type groupOut struct {
	Name         string            `json:"name"`
	Description  string            `json:"description"`
	Props        map[string]string `json:"props"`
	SelectFilter filterOut         `json:"select_filter"`
	UUID         string            `json:"uuid"`
	PeerSlots    int               `json:"peer_slots,omitempty"`
}

type volumeGroupOut struct {
	VolumeNumber int               `json:"volume_number"`
	Props        map[string]string `json:"props"`
	UUID         string            `json:"uuid"`
	Flags        []string          `json:"flags"`
}

// layerData is one entry of a layer_data / layer_data_list array.
type layerData struct {
	Type string `json:"type"`
	Data any    `json:"data,omitempty"`
}

type drbdDefinitionOut struct {
	ResourceNameSuffix string `json:"resource_name_suffix"`
	PeerSlots          int    `json:"peer_slots"`
	AlStripes          int    `json:"al_stripes"`
	AlStripeSizeKiB    int    `json:"al_stripe_size_kib"`
	// Port is the definition's preferred port (0: none; since LINSTOR
	// 1.31.2 ports belong to resources). The python client reads the key.
	Port          int    `json:"port"`
	TransportType string `json:"transport_type"`
	Secret        string `json:"secret"`
	Down          bool   `json:"down"`
}

type definitionOut struct {
	Name              string                `json:"name"`
	ExternalName      string                `json:"external_name,omitempty"`
	Props             map[string]string     `json:"props"`
	Flags             []string              `json:"flags"`
	LayerData         []layerData           `json:"layer_data"`
	UUID              string                `json:"uuid"`
	ResourceGroupName string                `json:"resource_group_name"`
	VolumeDefinitions []volumeDefinitionOut `json:"volume_definitions,omitempty"`
}

// drbdVolumeDefinitionOut carries the suffix under both spellings: the
// python client reads rsc_name_suffix in a volume definition's layer data
// and resource_name_suffix in a volume's, and golinstor the latter.
type drbdVolumeDefinitionOut struct {
	ResourceNameSuffix string `json:"resource_name_suffix"`
	RscNameSuffix      string `json:"rsc_name_suffix"`
	VolumeNumber       int    `json:"volume_number"`
	MinorNumber        int    `json:"minor_number"`
}

type volumeDefinitionOut struct {
	VolumeNumber int               `json:"volume_number"`
	SizeKiB      int64             `json:"size_kib"`
	Props        map[string]string `json:"props"`
	Flags        []string          `json:"flags"`
	LayerData    []layerData       `json:"layer_data"`
	UUID         string            `json:"uuid"`
}

type resourceStateOut struct {
	InUse bool `json:"in_use"`
}

type resourceOut struct {
	Name            string            `json:"name"`
	NodeName        string            `json:"node_name"`
	Props           map[string]string `json:"props"`
	Flags           []string          `json:"flags"`
	LayerObject     layerObjectOut    `json:"layer_object"`
	State           resourceStateOut  `json:"state"`
	UUID            string            `json:"uuid"`
	CreateTimestamp int64             `json:"create_timestamp"`
}

// resourceWithVolumesOut is an element of GET /v1/view/resources.
type resourceWithVolumesOut struct {
	resourceOut
	Volumes []volumeOut `json:"volumes"`
}

// layerObjectOut is a resource's layer tree. The suffix appears under
// both spellings: golinstor reads resource_name_suffix, the python client
// rsc_name_suffix.
type layerObjectOut struct {
	Children           []layerObjectOut `json:"children"`
	ResourceNameSuffix string           `json:"resource_name_suffix"`
	RscNameSuffix      string           `json:"rsc_name_suffix"`
	Type               string           `json:"type"`
	Drbd               *drbdResourceOut `json:"drbd,omitempty"`
	Storage            *storageOut      `json:"storage,omitempty"`
}

type drbdConnectionOut struct {
	Connected bool   `json:"connected"`
	Message   string `json:"message"`
}

type drbdResourceOut struct {
	DrbdResourceDefinition drbdDefinitionOut            `json:"drbd_resource_definition"`
	NodeID                 int                          `json:"node_id"`
	PeerSlots              int                          `json:"peer_slots"`
	AlStripes              int                          `json:"al_stripes"`
	AlSize                 int                          `json:"al_size"`
	Flags                  []string                     `json:"flags"`
	DrbdVolumes            []drbdVolumeOut              `json:"drbd_volumes"`
	Connections            map[string]drbdConnectionOut `json:"connections"`
	PromotionScore         int                          `json:"promotion_score"`
	MayPromote             bool                         `json:"may_promote"`
	TCPPorts               []int                        `json:"tcp_ports"`
}

type drbdVolumeOut struct {
	DrbdVolumeDefinition drbdVolumeDefinitionOut `json:"drbd_volume_definition"`
	DevicePath           string                  `json:"device_path"`
	BackingDevice        string                  `json:"backing_device,omitempty"`
	MetaDisk             string                  `json:"meta_disk,omitempty"`
	AllocatedSizeKiB     int64                   `json:"allocated_size_kib"`
	UsableSizeKiB        int64                   `json:"usable_size_kib"`
	DiskState            string                  `json:"disk_state"`
}

type storageOut struct {
	StorageVolumes []storageVolumeOut `json:"storage_volumes"`
}

type storageVolumeOut struct {
	VolumeNumber     int    `json:"volume_number"`
	DevicePath       string `json:"device_path,omitempty"`
	AllocatedSizeKiB int64  `json:"allocated_size_kib"`
	UsableSizeKiB    int64  `json:"usable_size_kib"`
	DiskState        string `json:"disk_state"`
}

type volumeStateOut struct {
	DiskState string `json:"disk_state"`
}

type volumeOut struct {
	VolumeNumber     int               `json:"volume_number"`
	StoragePoolName  string            `json:"storage_pool_name"`
	ProviderKind     string            `json:"provider_kind"`
	DevicePath       string            `json:"device_path"`
	AllocatedSizeKiB int64             `json:"allocated_size_kib"`
	UsableSizeKiB    int64             `json:"usable_size_kib"`
	Props            map[string]string `json:"props"`
	Flags            []string          `json:"flags"`
	State            volumeStateOut    `json:"state"`
	LayerDataList    []layerData       `json:"layer_data_list"`
	UUID             string            `json:"uuid"`
	Reports          []ApiCallRc       `json:"reports"`
}

type snapshotVolumeDefinitionOut struct {
	VolumeNumber int   `json:"volume_number"`
	SizeKiB      int64 `json:"size_kib"`
}

type snapshotVolumeOut struct {
	UUID  string            `json:"uuid"`
	VlmNr int               `json:"vlm_nr"`
	Props map[string]string `json:"props"`
	State string            `json:"state,omitempty"`
}

type snapshotNodeOut struct {
	SnapshotName    string              `json:"snapshot_name"`
	NodeName        string              `json:"node_name"`
	CreateTimestamp int64               `json:"create_timestamp"`
	Flags           []string            `json:"flags"`
	UUID            string              `json:"uuid"`
	SnapshotVolumes []snapshotVolumeOut `json:"snapshot_volumes"`
}

type snapshotOut struct {
	Name                    string                        `json:"name"`
	ResourceName            string                        `json:"resource_name"`
	Nodes                   []string                      `json:"nodes"`
	Props                   map[string]string             `json:"props"`
	SnapshotDefinitionProps map[string]string             `json:"snapshot_definition_props"`
	ResourceDefinitionProps map[string]string             `json:"resource_definition_props"`
	Flags                   []string                      `json:"flags"`
	VolumeDefinitions       []snapshotVolumeDefinitionOut `json:"volume_definitions"`
	UUID                    string                        `json:"uuid"`
	Snapshots               []snapshotNodeOut             `json:"snapshots"`
}

type spawnResultOut struct {
	NodeName     string `json:"node_name"`
	StorPoolName string `json:"stor_pool_name"`
}

type spaceInfoOut struct {
	MaxVlmSizeInKiB                       int64            `json:"max_vlm_size_in_kib"`
	AvailableSizeInKiB                    int64            `json:"available_size_in_kib"`
	CapacityInKiB                         int64            `json:"capacity_in_kib"`
	DefaultMaxOversubscriptionRatio       float64          `json:"default_max_oversubscription_ratio"`
	MaxOversubscriptionRatio              float64          `json:"max_oversubscription_ratio"`
	MaxFreeCapacityOversubscriptionRatio  float64          `json:"max_free_capacity_oversubscription_ratio"`
	MaxTotalCapacityOversubscriptionRatio float64          `json:"max_total_capacity_oversubscription_ratio"`
	NextSpawnResult                       []spawnResultOut `json:"next_spawn_result"`
}

type sizeInfoOut struct {
	SpaceInfo spaceInfoOut `json:"space_info"`
	Reports   []ApiCallRc  `json:"reports"`
}

type allSizeInfoOut struct {
	Result  map[string]sizeInfoOut `json:"result"`
	Reports []ApiCallRc            `json:"reports"`
}
