package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	linstor "github.com/LINBIT/golinstor"
	"github.com/pvehci/pvehci/storage/model"
)

// Request bodies. Each lists every field LINSTOR's schema, golinstor v0.63
// and the python client send for the call, so that a known field never
// trips the unknown-field check; read-only fields that clients echo back
// (uuid, reports, capacities) are accepted and ignored.

type netIfRequest struct {
	Name                    string  `json:"name"`
	Address                 string  `json:"address"`
	SatellitePort           flexInt `json:"satellite_port"`
	SatelliteEncryptionType string  `json:"satellite_encryption_type"`
	IsActive                *bool   `json:"is_active"`
	UUID                    string  `json:"uuid"`
}

func (n netIfRequest) model() model.NetInterface {
	return model.NetInterface{Name: n.Name, Address: n.Address, SatellitePort: int(n.SatellitePort),
		SatelliteEncryptionType: strings.ToUpper(n.SatelliteEncryptionType)}
}

type nodeCreateRequest struct {
	Name                 string              `json:"name"`
	Type                 string              `json:"type"`
	Flags                []string            `json:"flags"`
	Props                propMap             `json:"props"`
	NetInterfaces        []netIfRequest      `json:"net_interfaces"`
	ConnectionStatus     string              `json:"connection_status"`
	UUID                 string              `json:"uuid"`
	StorageProviders     []string            `json:"storage_providers"`
	ResourceLayers       []string            `json:"resource_layers"`
	UnsupportedProviders map[string][]string `json:"unsupported_providers"`
	UnsupportedLayers    map[string][]string `json:"unsupported_layers"`
	EvictionTimestamp    json.RawMessage     `json:"eviction_timestamp"`
	Platform             string              `json:"platform"`
	OSVariant            string              `json:"os_variant"`
}

type nodeModifyRequest struct {
	NodeType string `json:"node_type"`
	propsModify
}

type poolCreateRequest struct {
	StoragePoolName   string          `json:"storage_pool_name"`
	NodeName          string          `json:"node_name"`
	ProviderKind      string          `json:"provider_kind"`
	Props             propMap         `json:"props"`
	StaticTraits      propMap         `json:"static_traits"`
	FreeCapacity      flexInt         `json:"free_capacity"`
	TotalCapacity     flexInt         `json:"total_capacity"`
	FreeSpaceMgrName  string          `json:"free_space_mgr_name"`
	UUID              string          `json:"uuid"`
	Reports           json.RawMessage `json:"reports"`
	SupportsSnapshots bool            `json:"supports_snapshots"`
	SharedSpace       string          `json:"shared_space"`
	ExternalLocking   bool            `json:"external_locking"`
}

type poolDefCreateRequest struct {
	StoragePoolName string  `json:"storage_pool_name"`
	Props           propMap `json:"props"`
	UUID            string  `json:"uuid"`
}

// filterRequest is an AutoSelectFilter as clients send it. Pointers tell
// "absent" from "zero", which a modify needs: golinstor always sends a
// select_filter object, mostly empty.
type filterRequest struct {
	PlaceCount              *flexInt           `json:"place_count"`
	AdditionalPlaceCount    *flexInt           `json:"additional_place_count"`
	NodeNameList            []string           `json:"node_name_list"`
	StoragePool             *string            `json:"storage_pool"`
	StoragePoolList         []string           `json:"storage_pool_list"`
	StoragePoolDisklessList []string           `json:"storage_pool_diskless_list"`
	NotPlaceWithRsc         []string           `json:"not_place_with_rsc"`
	NotPlaceWithRscRegex    *string            `json:"not_place_with_rsc_regex"`
	ReplicasOnSame          []string           `json:"replicas_on_same"`
	ReplicasOnDifferent     []string           `json:"replicas_on_different"`
	XReplicasOnDifferentMap map[string]flexInt `json:"x_replicas_on_different_map"`
	LayerStack              []string           `json:"layer_stack"`
	ProviderList            []string           `json:"provider_list"`
	DisklessOnRemaining     *flexBool          `json:"diskless_on_remaining"`
	DisklessType            *string            `json:"diskless_type"`
	Overprovision           *float64           `json:"overprovision"`
	PortCount               *flexInt           `json:"port_count"`
}

// apply overlays the fields present in f on base, as LINSTOR's modify
// and its request-over-group merge do.
func (f *filterRequest) apply(base model.SelectFilter) model.SelectFilter {
	out := base.Clone()
	if f == nil {
		return out
	}
	if f.PlaceCount != nil {
		out.PlaceCount = int(*f.PlaceCount)
	}
	if f.AdditionalPlaceCount != nil {
		out.AdditionalPlaceCount = int(*f.AdditionalPlaceCount)
	}
	if f.NodeNameList != nil {
		out.NodeNameList = f.NodeNameList
	}
	if f.StoragePool != nil {
		out.StoragePool = *f.StoragePool
	}
	if f.StoragePoolList != nil {
		out.StoragePoolList = f.StoragePoolList
	}
	if f.StoragePoolDisklessList != nil {
		out.StoragePoolDisklessList = f.StoragePoolDisklessList
	}
	if f.NotPlaceWithRsc != nil {
		out.NotPlaceWithRsc = f.NotPlaceWithRsc
	}
	if f.NotPlaceWithRscRegex != nil {
		out.NotPlaceWithRscRegex = *f.NotPlaceWithRscRegex
	}
	if f.ReplicasOnSame != nil {
		out.ReplicasOnSame = f.ReplicasOnSame
	}
	if f.ReplicasOnDifferent != nil {
		out.ReplicasOnDifferent = f.ReplicasOnDifferent
	}
	if f.XReplicasOnDifferentMap != nil {
		out.XReplicasOnDifferentMap = map[string]int{}
		for k, v := range f.XReplicasOnDifferentMap {
			out.XReplicasOnDifferentMap[k] = int(v)
		}
	}
	if f.LayerStack != nil {
		out.LayerStack = upper(f.LayerStack)
	}
	if f.ProviderList != nil {
		out.ProviderList = upper(f.ProviderList)
	}
	if f.DisklessOnRemaining != nil {
		out.DisklessOnRemaining = bool(*f.DisklessOnRemaining)
	}
	if f.DisklessType != nil {
		out.DisklessType = strings.ToUpper(*f.DisklessType)
	}
	return out.Clone()
}

// check refuses what pvehci cannot honour rather than ignoring it.
func (f *filterRequest) check() *apiError {
	if f == nil {
		return nil
	}
	if f.PlaceCount != nil && (*f.PlaceCount < 0 || *f.PlaceCount > 32) {
		return errorf(http.StatusBadRequest, linstor.FailInvldPlaceCount, "use 1 to 32 replicas",
			"place_count %d is out of range", *f.PlaceCount)
	}
	if f.AdditionalPlaceCount != nil && (*f.AdditionalPlaceCount < 0 || *f.AdditionalPlaceCount > 32) {
		return errorf(http.StatusBadRequest, linstor.FailInvldPlaceCount, "use 0 to 32 replicas",
			"additional_place_count %d is out of range", *f.AdditionalPlaceCount)
	}
	return checkLayers(f.LayerStack)
}

// checkLayers accepts the DRBD-on-storage stack (or any part of it) that
// pvehci's satellite builds; LUKS, NVMe and caches are LINSTOR layers it
// does not have.
func checkLayers(layers []string) *apiError {
	for _, l := range layers {
		switch strings.ToUpper(l) {
		case "DRBD", "STORAGE":
		default:
			return errorf(http.StatusBadRequest, linstor.FailInvldLayerStack, "use the layer stack DRBD,STORAGE (the only one pvehci builds)",
				"layer %q is not supported by pvehci", l)
		}
	}
	return nil
}

func upper(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strings.ToUpper(s)
	}
	return out
}

type groupCreateRequest struct {
	Name         string         `json:"name"`
	Description  string         `json:"description"`
	Props        propMap        `json:"props"`
	SelectFilter *filterRequest `json:"select_filter"`
	UUID         string         `json:"uuid"`
	PeerSlots    *flexInt       `json:"peer_slots"`
}

type groupModifyRequest struct {
	Description  *string        `json:"description"`
	SelectFilter *filterRequest `json:"select_filter"`
	PeerSlots    *flexInt       `json:"peer_slots"`
	SnapNames    []string       `json:"snap_names"`
	CopyAllSnaps bool           `json:"copy_all_snaps"`
	propsModify
}

type volumeGroupCreateRequest struct {
	VolumeNumber *flexInt `json:"volume_number"`
	Props        propMap  `json:"props"`
	UUID         string   `json:"uuid"`
	Flags        []string `json:"flags"`
}

type volumeGroupModifyRequest struct {
	Flags []string `json:"flags"`
	propsModify
}

type spawnRequest struct {
	ResourceDefinitionName         string         `json:"resource_definition_name"`
	ResourceDefinitionExternalName string         `json:"resource_definition_external_name"`
	VolumeSizes                    []flexSize     `json:"volume_sizes"`
	SelectFilter                   *filterRequest `json:"select_filter"`
	Partial                        flexBool       `json:"partial"`
	DefinitionsOnly                flexBool       `json:"definitions_only"`
	PeerSlots                      *flexInt       `json:"peer_slots"`
	VolumePassphrases              []string       `json:"volume_passphrases"`
	ResourceDefinitionProps        propMap        `json:"resource_definition_props"`
	LayerList                      []string       `json:"layer_list"`
}

type sizeInfoRequest struct {
	SelectFilter            *filterRequest `json:"select_filter"`
	IgnoreCacheOlderThanSec *flexInt       `json:"ignore_cache_older_than_sec"`
}

type definitionBody struct {
	Name              string                 `json:"name"`
	ExternalName      string                 `json:"external_name"`
	Props             propMap                `json:"props"`
	Flags             []string               `json:"flags"`
	LayerData         []json.RawMessage      `json:"layer_data"`
	UUID              string                 `json:"uuid"`
	ResourceGroupName string                 `json:"resource_group_name"`
	VolumeDefinitions []volumeDefinitionBody `json:"volume_definitions"`
}

type definitionCreateRequest struct {
	ResourceDefinition definitionBody `json:"resource_definition"`
	DrbdPort           *flexInt       `json:"drbd_port"`
	DrbdSecret         string         `json:"drbd_secret"`
	DrbdTransportType  string         `json:"drbd_transport_type"`
	DrbdPeerSlots      *flexInt       `json:"drbd_peer_slots"`
	LayerList          []string       `json:"layer_list"`
}

type definitionModifyRequest struct {
	DrbdPort      *flexInt `json:"drbd_port"`
	DrbdPeerSlots *flexInt `json:"drbd_peer_slots"`
	LayerStack    []string `json:"layer_stack"`
	ResourceGroup string   `json:"resource_group"`
	propsModify
}

type volumeDefinitionBody struct {
	VolumeNumber *flexInt          `json:"volume_number"`
	SizeKiB      flexSize          `json:"size_kib"`
	Props        propMap           `json:"props"`
	Flags        []string          `json:"flags"`
	LayerData    []json.RawMessage `json:"layer_data"`
	UUID         string            `json:"uuid"`
}

type volumeDefinitionCreateRequest struct {
	VolumeDefinition volumeDefinitionBody `json:"volume_definition"`
	DrbdMinorNumber  *flexInt             `json:"drbd_minor_number"`
	Passphrase       string               `json:"passphrase"`
}

type volumeDefinitionModifyRequest struct {
	SizeKiB flexSize `json:"size_kib"`
	Flags   []string `json:"flags"`
	propsModify
}

type resourceBody struct {
	Name            string          `json:"name"`
	NodeName        string          `json:"node_name"`
	Props           propMap         `json:"props"`
	Flags           []string        `json:"flags"`
	LayerObject     json.RawMessage `json:"layer_object"`
	State           json.RawMessage `json:"state"`
	UUID            string          `json:"uuid"`
	CreateTimestamp json.RawMessage `json:"create_timestamp"`
	EffectiveProps  json.RawMessage `json:"effective_props"`
}

type resourceCreateRequest struct {
	Resource          resourceBody `json:"resource"`
	LayerList         []string     `json:"layer_list"`
	DrbdNodeID        *flexInt     `json:"drbd_node_id"`
	DrbdTCPPortCount  *flexInt     `json:"drbd_tcp_port_count"`
	DrbdTCPPorts      []flexInt    `json:"drbd_tcp_ports"`
	SnapNames         []string     `json:"snap_names"`
	CopyAllSnaps      bool         `json:"copy_all_snaps"`
	DrbdClient        *flexBool    `json:"drbd_client"`
	PortCount         *flexInt     `json:"port_count"`
	DrbdDisklessFlags []string     `json:"drbd_diskless_flags"`
}

type resourceModifyRequest struct {
	DrbdTiebreaker *flexBool `json:"drbd_tiebreaker"`
	DrbdClient     *flexBool `json:"drbd_client"`
	propsModify
}

type makeAvailableRequest struct {
	LayerList    []string  `json:"layer_list"`
	Diskful      flexBool  `json:"diskful"`
	DrbdTCPPorts []flexInt `json:"drbd_tcp_ports"`
	SnapNames    []string  `json:"snap_names"`
	CopyAllSnaps bool      `json:"copy_all_snaps"`
}

type autoplaceRequest struct {
	SelectFilter        *filterRequest `json:"select_filter"`
	DisklessOnRemaining *flexBool      `json:"diskless_on_remaining"`
	LayerList           []string       `json:"layer_list"`
	SnapNames           []string       `json:"snap_names"`
	CopyAllSnaps        bool           `json:"copy_all_snaps"`
}

type toggleDiskRequest struct {
	Operation   string   `json:"operation"`
	StoragePool string   `json:"storage_pool"`
	MigrateFrom string   `json:"migrate_from"`
	LayerList   []string `json:"layer_list"`
}

type snapshotCreateRequest struct {
	Name                    string            `json:"name"`
	ResourceName            string            `json:"resource_name"`
	Nodes                   []string          `json:"nodes"`
	Props                   propMap           `json:"props"`
	SnapshotDefinitionProps propMap           `json:"snapshot_definition_props"`
	ResourceDefinitionProps propMap           `json:"resource_definition_props"`
	Flags                   []string          `json:"flags"`
	VolumeDefinitions       []json.RawMessage `json:"volume_definitions"`
	UUID                    string            `json:"uuid"`
	Snapshots               []json.RawMessage `json:"snapshots"`
}

type snapshotRestoreRequest struct {
	ToResource     string            `json:"to_resource"`
	Nodes          []string          `json:"nodes"`
	StorPoolRename map[string]string `json:"stor_pool_rename"`
}

type rollbackRequest struct {
	ZfsRollbackStrategy string `json:"zfs_rollback_strategy"`
}

// badRequest is a 400 for a request that decoded but makes no sense.
func badRequest(code uint64, fix, format string, args ...any) *apiError {
	return errorf(http.StatusBadRequest, code, fix, format, args...)
}

// checkName validates a name from a path or body with the state's rules,
// so that a bad name is a 400 before anything happens.
func checkName(kind model.NameKind, name string) *apiError {
	if err := model.ValidateName(kind, name); err != nil {
		var code uint64 = linstor.FailInvldRequest
		switch kind {
		case model.NameNode:
			code = linstor.FailInvldNodeName
		case model.NameStoragePool:
			code = linstor.FailInvldStorPoolName
		case model.NameResourceGroup:
			code = linstor.FailInvldRscGrpName
		case model.NameResourceDefinition:
			code = linstor.FailInvldRscName
		case model.NameSnapshot:
			code = linstor.FailInvldSnapshotName
		case model.NameNetInterface:
			code = linstor.FailInvldNetName
		}
		if ne, ok := err.(*model.NameError); ok {
			return badRequest(code, ne.Fix, "invalid %s name %q: %s", ne.Kind, ne.Name, ne.Problem)
		}
		return badRequest(code, "", "%v", err)
	}
	return nil
}

// volumeNumber parses a volume number from a path.
func volumeNumber(s string) (int, *apiError) {
	var n int
	if _, err := fmt.Sscanf(s, "%d", &n); err != nil || fmt.Sprint(n) != s || n < 0 || n > model.MaxVolumeNumber {
		return 0, badRequest(linstor.FailInvldVlmNr, "use a volume number from 0 to 65535", "volume number %q is invalid", s)
	}
	return n, nil
}
