package drbd

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	linstor "github.com/LINBIT/golinstor"

	"github.com/pvehci/pvehci/storage/lvm"
	"github.com/pvehci/pvehci/storage/model"
)

// StateReader is the part of the replicated state Build reads;
// *state.State (ha/state) implements it.
type StateReader interface {
	ResourceDefinition(name string) (model.ResourceDefinition, bool)
	Resources(rd string) []model.Resource
	Node(name string) (model.Node, bool)
	StoragePool(node, name string) (model.StoragePool, bool)
	ResourceScope(rd, node string) (model.Scope, error)
	VolumeScope(rd, node string, vnr int) (model.Scope, error)
}

// BuildOptions says for whom Build builds.
type BuildOptions struct {
	// Local is the node that writes the file. As in LINSTOR, its
	// resource and node properties take part in the resource-level
	// options (R > RD > RG > N > C); empty resolves them from the
	// definition, group and controller only.
	Local string
	// PrefixLen, when set, reports the prefix length of a node's
	// interface address (the state keeps bare addresses). It lets
	// SelectPaths match interfaces on a common subnet.
	PrefixLen func(node, netif string) (bits int, ok bool)
}

// Property namespaces of the sections (LINSTOR's spelling).
const (
	nsResource   = linstor.NamespcDrbdResourceOptions
	nsNet        = linstor.NamespcDrbdNetOptions
	nsDisk       = linstor.NamespcDrbdDiskOptions
	nsPeerDevice = linstor.NamespcDrbdPeerDeviceOptions
)

// Build fills the configuration of resource definition rd from the state:
// every resource of it except peers being deleted (flag DELETE or
// DRBD_DELETE), with each node's PrefNic, TCP port and backing devices,
// and the DrbdOptions/{Resource,Net,Disk,PeerDevice}/* properties resolved
// by the model's inheritance. Properties that are not DRBD options, or
// that DRBD options cannot take (cram-hmac-alg and shared-secret come from
// the definition's secret), are not rendered; the returned warnings name
// each one and where it is set. Values are checked by Render.
func Build(st StateReader, rd string, opts BuildOptions) (ResourceConfig, []string, error) {
	fail := func(format string, a ...any) (ResourceConfig, []string, error) {
		return ResourceConfig{}, nil, fmt.Errorf("building DRBD config of %s: "+format, append([]any{rd}, a...)...)
	}
	def, ok := st.ResourceDefinition(rd)
	if !ok {
		return fail("no such resource definition")
	}
	var rscs []model.Resource
	localFound := opts.Local == ""
	for _, r := range st.Resources(rd) {
		local := opts.Local != "" && model.SameName(r.Node, opts.Local)
		localFound = localFound || local
		if !local && (r.Flags.Has(model.RscFlagDelete) || r.Flags.Has(model.RscFlagDrbdDelete)) {
			continue
		}
		rscs = append(rscs, r)
	}
	if !localFound {
		return fail("node %s holds no resource of it; render only on nodes that hold the resource", opts.Local)
	}
	if len(rscs) == 0 {
		return fail("it is placed on no node")
	}
	scope, err := st.ResourceScope(rd, opts.Local)
	if err != nil {
		return fail("%w", err)
	}

	cfg := ResourceConfig{Name: def.Name, SharedSecret: def.Drbd.Secret}
	var warnings []string
	skip := func(r model.Resolution, why string) {
		warnings = append(warnings, fmt.Sprintf("property %s=%s (set on %s %s) is not rendered: %s", r.Key, r.Value, r.Level, r.Object, why))
	}
	for _, r := range scope.Effective(nsResource) {
		name := strings.TrimPrefix(r.Key, nsResource+"/")
		switch {
		case name == "quorum":
			cfg.Quorum = r.Value
		case name == "on-no-quorum":
			cfg.OnNoQuorum = r.Value
		case slices.Contains(resourceOptionNames, name):
			cfg.Options = append(cfg.Options, Option{name, r.Value})
		default:
			skip(r, "DRBD has no resource option of that name")
		}
	}
	for _, r := range scope.Effective(nsNet) {
		name := strings.TrimPrefix(r.Key, nsNet+"/")
		switch name {
		case "transport":
			cfg.Transport = Transport(strings.ToLower(strings.TrimSpace(r.Value)))
		case "protocol":
			cfg.Protocol = strings.ToUpper(strings.TrimSpace(r.Value))
		case "verify-alg":
			cfg.VerifyAlg = r.Value
		case "max-buffers":
			n, err := strconv.Atoi(strings.TrimSpace(r.Value))
			if err != nil {
				return fail("property %s=%q (set on %s %s) is not a number of 4 KiB pages; set a number such as 8000", r.Key, r.Value, r.Level, r.Object)
			}
			cfg.MaxBuffers = n
		case "rcvbuf-size":
			n, err := ParseSize(r.Value)
			if err != nil {
				return fail("property %s (set on %s %s): %w; set a size such as 4M", r.Key, r.Level, r.Object, err)
			}
			cfg.RcvbufSize = n
		case "cram-hmac-alg", "shared-secret":
			skip(r, "the shared secret is the resource definition's own")
		default:
			if slices.Contains(netOptionNames, name) {
				cfg.Net = append(cfg.Net, Option{name, r.Value})
			} else {
				skip(r, "DRBD has no net option of that name")
			}
		}
	}
	diskLevel := map[string]string{}
	for _, ns := range []struct {
		prefix string
		names  []string
	}{{nsDisk, diskOptionNames}, {nsPeerDevice, peerDeviceOptionNames}} {
		for _, r := range scope.Effective(ns.prefix) {
			name := strings.TrimPrefix(r.Key, ns.prefix+"/")
			if !slices.Contains(ns.names, name) {
				skip(r, "DRBD has no option of that name in this namespace")
				continue
			}
			cfg.Disk = append(cfg.Disk, Option{name, r.Value})
			diskLevel[name] = r.Value
		}
	}

	for _, r := range rscs {
		n, err := buildNode(st, def, r, diskLevel, opts)
		if err != nil {
			return fail("%w", err)
		}
		cfg.Nodes = append(cfg.Nodes, n)
	}
	return cfg, warnings, nil
}

func buildNode(st StateReader, def model.ResourceDefinition, r model.Resource, diskLevel map[string]string, opts BuildOptions) (Node, error) {
	node, ok := st.Node(r.Node)
	if !ok {
		return Node{}, fmt.Errorf("resource on %s: the node does not exist", r.Node)
	}
	n := Node{Name: node.Name, NodeID: r.NodeID, Diskless: r.Diskless()}
	if u := node.Props[model.KeyNodeUname]; u != "" {
		// drbdadm matches `on` sections against uname -n.
		n.Name = u
	}
	if len(r.TCPPorts) == 0 {
		return Node{}, fmt.Errorf("resource on %s has no TCP port; recreate the resource so that one is allocated", r.Node)
	}
	n.Port = r.TCPPorts[0]
	scope, err := st.ResourceScope(def.Name, r.Node)
	if err != nil {
		return Node{}, err
	}
	n.PrefNic = scope.Get(model.KeyPrefNic)
	for _, ni := range node.NetInterfaces {
		addr := ni.Address
		if opts.PrefixLen != nil {
			if bits, ok := opts.PrefixLen(node.Name, ni.Name); ok {
				addr += "/" + strconv.Itoa(bits)
			}
		}
		n.Interfaces = append(n.Interfaces, Interface{Name: ni.Name, Address: addr})
	}
	for _, vd := range def.VolumeDefinitions {
		v := Volume{Number: vd.VolumeNumber, Minor: vd.Minor}
		if !n.Diskless {
			disk, err := backingDevice(st, def.Name, r, vd.VolumeNumber)
			if err != nil {
				return Node{}, err
			}
			v.Disk, v.MetaDisk = disk, MetaDiskInt
			vscope, err := st.VolumeScope(def.Name, r.Node, vd.VolumeNumber)
			if err != nil {
				return Node{}, err
			}
			// Volume-level values (V, VD, VG) and this node's own
			// R and N values that differ from the resource section.
			for _, res := range vscope.Effective(nsDisk) {
				name := strings.TrimPrefix(res.Key, nsDisk+"/")
				if slices.Contains(diskOptionNames, name) && diskLevel[name] != res.Value {
					v.DiskOptions = append(v.DiskOptions, Option{name, res.Value})
				}
			}
		}
		n.Volumes = append(n.Volumes, v)
	}
	return n, nil
}

// backingDevice is the block device under a diskful volume: the LV (or
// zvol) named as LINSTOR names it, in the pool the volume lives in.
func backingDevice(st StateReader, rd string, r model.Resource, vnr int) (string, error) {
	vol, ok := r.Volume(vnr)
	if !ok {
		return "", fmt.Errorf("resource on %s lacks volume %d; the state is inconsistent, recreate the resource", r.Node, vnr)
	}
	pool, ok := st.StoragePool(r.Node, vol.StoragePool)
	if !ok {
		return "", fmt.Errorf("volume %d on %s: storage pool %s does not exist on that node", vnr, r.Node, vol.StoragePool)
	}
	name := lvm.VolumeLVName(rd, vnr)
	switch pool.ProviderKind {
	case model.ProviderLVMThin:
		vg := pool.Props[model.KeyStorDriverLvmVg]
		if vg == "" {
			return "", fmt.Errorf("storage pool %s on %s has no %s; set the pool's volume group", pool.Name, r.Node, model.KeyStorDriverLvmVg)
		}
		return lvm.DevicePath(vg, name), nil
	case model.ProviderZFSThin:
		zp := pool.Props[model.KeyStorDriverZPoolThin]
		if zp == "" {
			return "", fmt.Errorf("storage pool %s on %s has no %s; set the pool's zpool", pool.Name, r.Node, model.KeyStorDriverZPoolThin)
		}
		return "/dev/zvol/" + zp + "/" + name, nil
	}
	return "", fmt.Errorf("volume %d on %s is in pool %s of kind %s, which holds no data, but the resource is diskful; move it to a diskful pool or make it diskless",
		vnr, r.Node, pool.Name, pool.ProviderKind)
}
