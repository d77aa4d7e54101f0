package state

import (
	"slices"

	linstor "github.com/LINBIT/golinstor"
	"github.com/pvehci/pvehci/storage/model"
)

// CreateNode adds a node. Satellite and combined nodes also get the
// diskless storage pool DfltDisklessStorPool, as in LINSTOR, so that
// diskless resources can be placed on them at once.
type CreateNode struct {
	Name          string               `json:"name"`
	NodeType      model.NodeType       `json:"node_type"`
	NetInterfaces []model.NetInterface `json:"net_interfaces"`
	Props         model.Props          `json:"props,omitempty"`
	UUID          string               `json:"uuid,omitempty"`
	// DisklessPoolUUID is the UUID of the automatic diskless pool.
	DisklessPoolUUID string `json:"diskless_pool_uuid,omitempty"`
}

// Type implements Command.
func (*CreateNode) Type() string { return "CreateNode" }

func (c *CreateNode) prepare(s *State) (func(), Result, *Error) {
	if err := model.ValidateName(model.NameNode, c.Name); err != nil {
		return nil, Result{}, errName(model.ObjNode, err)
	}
	if _, ok := s.nodes[model.Key(c.Name)]; ok {
		return nil, Result{}, errExists(model.ObjNode, c.Name)
	}
	typ, e := model.ParseNodeType(string(c.NodeType))
	if e != nil {
		return nil, Result{}, errInvalid(model.ObjNode, c.Name, linstor.FailInvldNodeType, e)
	}
	if len(c.NetInterfaces) == 0 {
		return nil, Result{}, newErr(Invalid, model.ObjNode, c.Name, linstor.FailInvldNetAddr,
			"give at least one net interface, conventionally named \"default\", with the address DRBD should use",
			"node %s has no net interface", c.Name)
	}
	netifs, err := checkNetInterfaces(c.Name, c.NetInterfaces)
	if err != nil {
		return nil, Result{}, err
	}
	if err := checkProps(model.ObjNode, c.Name, c.Props); err != nil {
		return nil, Result{}, err
	}
	for _, u := range []string{c.UUID, c.DisklessPoolUUID} {
		if err := checkUUID(model.ObjNode, c.Name, u); err != nil {
			return nil, Result{}, err
		}
	}
	n := &model.Node{Name: c.Name, Type: typ, NetInterfaces: netifs, Props: c.Props.Clone(), UUID: c.UUID}
	nk := model.Key(c.Name)
	return func() {
		s.nodes[nk] = n
		if typ.HostsResources() {
			dk := model.Key(model.DefaultDisklessStoragePool)
			if _, ok := s.spDefs[dk]; !ok {
				s.spDefs[dk] = &model.StoragePoolDefinition{Name: model.DefaultDisklessStoragePool}
			}
			s.pools[poolKey{nk, dk}] = &model.StoragePool{Node: c.Name, Name: model.DefaultDisklessStoragePool,
				ProviderKind: model.ProviderDiskless, UUID: c.DisklessPoolUUID}
			s.idx.poolsOfDefin[dk]++
		}
	}, Result{}, nil
}

// checkNetInterfaces validates a node's interfaces and returns them sorted.
func checkNetInterfaces(node string, in []model.NetInterface) ([]model.NetInterface, *Error) {
	out := slices.Clone(in)
	for _, ni := range out {
		if err := model.ValidateName(model.NameNetInterface, ni.Name); err != nil {
			return nil, errName(model.ObjNetInterface, err)
		}
		if err := ni.Validate(); err != nil {
			return nil, errInvalid(model.ObjNetInterface, ni.Name+" on "+node, linstor.FailInvldNetAddr, err)
		}
		if err := checkUUID(model.ObjNetInterface, ni.Name, ni.UUID); err != nil {
			return nil, err
		}
	}
	sortNetifs(out)
	for i := 1; i < len(out); i++ {
		if model.SameName(out[i-1].Name, out[i].Name) {
			return nil, errExists(model.ObjNetInterface, out[i].Name+" on "+node)
		}
	}
	return out, nil
}

func sortNetifs(n []model.NetInterface) {
	slices.SortFunc(n, func(a, b model.NetInterface) int { return cmpStr(model.Key(a.Name), model.Key(b.Name)) })
}

func cmpStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// ModifyNode changes a node's type and properties.
type ModifyNode struct {
	Name     string            `json:"name"`
	NodeType model.NodeType    `json:"node_type,omitempty"` // empty: unchanged
	Props    model.PropsChange `json:"props"`
}

// Type implements Command.
func (*ModifyNode) Type() string { return "ModifyNode" }

func (c *ModifyNode) prepare(s *State) (func(), Result, *Error) {
	n, err := s.node(c.Name)
	if err != nil {
		return nil, Result{}, err
	}
	typ := n.Type
	if c.NodeType != "" {
		t, e := model.ParseNodeType(string(c.NodeType))
		if e != nil {
			return nil, Result{}, errInvalid(model.ObjNode, c.Name, linstor.FailInvldNodeType, e)
		}
		if !t.HostsResources() && (len(s.idx.rscOnNode[model.Key(n.Name)]) > 0 || s.nodeHasPools(n.Name)) {
			return nil, Result{}, errInUse(model.ObjNode, n.Name, "delete its resources and storage pools first",
				"node %s holds storage pools or resources, which a %s node cannot", n.Name, t.LinstorName())
		}
		typ = t
	}
	props, res, err := changeProps(model.ObjNode, n.Name, n.Props, c.Props)
	if err != nil {
		return nil, Result{}, err
	}
	return func() { n.Type, n.Props = typ, props }, res, nil
}

func (s *State) nodeHasPools(node string) bool {
	nk := model.Key(node)
	for k, p := range s.pools {
		if k.node == nk && !p.ProviderKind.Diskless() {
			return true
		}
	}
	return false
}

// DeleteNode removes a node with its storage pools and net interfaces. A
// node that still holds resources or snapshots is refused: deleting them is
// a per-resource decision with its own safety checks. Relocations targeting
// the node are dropped, since they can no longer complete.
type DeleteNode struct {
	Name string `json:"name"`
}

// Type implements Command.
func (*DeleteNode) Type() string { return "DeleteNode" }

func (c *DeleteNode) prepare(s *State) (func(), Result, *Error) {
	n, err := s.node(c.Name)
	if err != nil {
		return nil, Result{}, err
	}
	nk := model.Key(n.Name)
	if rk := sortedKeys(s.idx.rscOnNode[nk]); len(rk) > 0 {
		return nil, Result{}, errInUse(model.ObjNode, n.Name, "delete or move those resources first",
			"node %s still holds %d resource(s), e.g. %s", n.Name, len(rk), s.rds[rk[0]].Name)
	}
	if s.idx.snapsOnNode[nk] > 0 {
		return nil, Result{}, errInUse(model.ObjNode, n.Name, "delete those snapshots first",
			"node %s still holds %d snapshot(s)", n.Name, s.idx.snapsOnNode[nk])
	}
	return func() {
		delete(s.nodes, nk)
		for k := range s.pools {
			if k.node == nk {
				delete(s.pools, k)
				s.idx.poolsOfDefin[k.pool]--
				delete(s.idx.poolUse, k)
			}
		}
		delete(s.idx.ports, nk)
		delete(s.idx.rscOnNode, nk)
		delete(s.idx.snapsOnNode, nk)
		for rk, rel := range s.relocs {
			if model.SameName(rel.TargetNode, n.Name) {
				delete(s.relocs, rk)
			}
		}
	}, Result{}, nil
}

// CreateNetInterface adds a net interface to a node.
type CreateNetInterface struct {
	Node         string             `json:"node"`
	NetInterface model.NetInterface `json:"net_interface"`
}

// Type implements Command.
func (*CreateNetInterface) Type() string { return "CreateNetInterface" }

func (c *CreateNetInterface) prepare(s *State) (func(), Result, *Error) {
	n, err := s.node(c.Node)
	if err != nil {
		return nil, Result{}, err
	}
	if _, ok := n.NetInterface(c.NetInterface.Name); ok {
		return nil, Result{}, errExists(model.ObjNetInterface, c.NetInterface.Name+" on "+n.Name)
	}
	netifs, err := checkNetInterfaces(n.Name, append(slices.Clone(n.NetInterfaces), c.NetInterface))
	if err != nil {
		return nil, Result{}, err
	}
	return func() { n.NetInterfaces = netifs }, Result{}, nil
}

// ModifyNetInterface changes an interface's address or satellite settings.
// Empty or zero fields are left as they are.
type ModifyNetInterface struct {
	Node                    string `json:"node"`
	Name                    string `json:"name"`
	Address                 string `json:"address,omitempty"`
	SatellitePort           int    `json:"satellite_port,omitempty"`
	SatelliteEncryptionType string `json:"satellite_encryption_type,omitempty"`
}

// Type implements Command.
func (*ModifyNetInterface) Type() string { return "ModifyNetInterface" }

func (c *ModifyNetInterface) prepare(s *State) (func(), Result, *Error) {
	n, err := s.node(c.Node)
	if err != nil {
		return nil, Result{}, err
	}
	i := slices.IndexFunc(n.NetInterfaces, func(ni model.NetInterface) bool { return model.SameName(ni.Name, c.Name) })
	if i < 0 {
		return nil, Result{}, errNotFound(model.ObjNetInterface, c.Name+" on "+n.Name)
	}
	ni := n.NetInterfaces[i]
	if c.Address != "" {
		ni.Address = c.Address
	}
	if c.SatellitePort != 0 {
		ni.SatellitePort = c.SatellitePort
	}
	if c.SatelliteEncryptionType != "" {
		ni.SatelliteEncryptionType = c.SatelliteEncryptionType
	}
	if e := ni.Validate(); e != nil {
		return nil, Result{}, errInvalid(model.ObjNetInterface, c.Name+" on "+n.Name, linstor.FailInvldNetAddr, e)
	}
	return func() { n.NetInterfaces[i] = ni }, Result{}, nil
}

// DeleteNetInterface removes an interface. The last one stays: a node
// without an address cannot take part in DRBD.
type DeleteNetInterface struct {
	Node string `json:"node"`
	Name string `json:"name"`
}

// Type implements Command.
func (*DeleteNetInterface) Type() string { return "DeleteNetInterface" }

func (c *DeleteNetInterface) prepare(s *State) (func(), Result, *Error) {
	n, err := s.node(c.Node)
	if err != nil {
		return nil, Result{}, err
	}
	i := slices.IndexFunc(n.NetInterfaces, func(ni model.NetInterface) bool { return model.SameName(ni.Name, c.Name) })
	if i < 0 {
		return nil, Result{}, errNotFound(model.ObjNetInterface, c.Name+" on "+n.Name)
	}
	if len(n.NetInterfaces) == 1 {
		return nil, Result{}, errInUse(model.ObjNetInterface, c.Name+" on "+n.Name,
			"add another net interface first, or delete the node", "%s is the last net interface of node %s", c.Name, n.Name)
	}
	netifs := slices.Delete(slices.Clone(n.NetInterfaces), i, i+1)
	return func() { n.NetInterfaces = netifs }, Result{}, nil
}
