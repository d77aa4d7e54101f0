package state

import (
	linstor "github.com/LINBIT/golinstor"
	"github.com/pvehci/pvehci/storage/model"
)

// CreateStoragePoolDefinition adds a cluster-wide storage pool name.
// CreateStoragePool adds the definition on the fly, as LINSTOR does, so
// this is needed only to set properties before any node has the pool.
type CreateStoragePoolDefinition struct {
	Name  string      `json:"name"`
	Props model.Props `json:"props,omitempty"`
	UUID  string      `json:"uuid,omitempty"`
}

// Type implements Command.
func (*CreateStoragePoolDefinition) Type() string { return "CreateStoragePoolDefinition" }

func (c *CreateStoragePoolDefinition) prepare(s *State) (func(), Result, *Error) {
	if err := model.ValidateName(model.NameStoragePool, c.Name); err != nil {
		return nil, Result{}, errName(model.ObjStoragePoolDefinition, err)
	}
	k := model.Key(c.Name)
	if _, ok := s.spDefs[k]; ok {
		return nil, Result{}, errExists(model.ObjStoragePoolDefinition, c.Name)
	}
	if err := checkProps(model.ObjStoragePoolDefinition, c.Name, c.Props); err != nil {
		return nil, Result{}, err
	}
	if err := checkUUID(model.ObjStoragePoolDefinition, c.Name, c.UUID); err != nil {
		return nil, Result{}, err
	}
	d := &model.StoragePoolDefinition{Name: c.Name, Props: c.Props.Clone(), UUID: c.UUID}
	return func() { s.spDefs[k] = d }, Result{}, nil
}

// DeleteStoragePoolDefinition removes a storage pool name no node uses.
type DeleteStoragePoolDefinition struct {
	Name string `json:"name"`
}

// Type implements Command.
func (*DeleteStoragePoolDefinition) Type() string { return "DeleteStoragePoolDefinition" }

func (c *DeleteStoragePoolDefinition) prepare(s *State) (func(), Result, *Error) {
	k := model.Key(c.Name)
	d, ok := s.spDefs[k]
	if !ok {
		return nil, Result{}, errNotFound(model.ObjStoragePoolDefinition, c.Name)
	}
	if n := s.idx.poolsOfDefin[k]; n > 0 {
		return nil, Result{}, errInUse(model.ObjStoragePoolDefinition, d.Name, "delete the nodes' pools of that name first",
			"%d node(s) still have a storage pool %s", n, d.Name)
	}
	return func() { delete(s.spDefs, k) }, Result{}, nil
}

// CreateStoragePool adds a pool on a node. LVM_THIN pools need the props
// StorDriver/LvmVg and StorDriver/ThinPool, ZFS_THIN pools
// StorDriver/ZPoolThin, as LINSTOR stores them.
type CreateStoragePool struct {
	Node         string             `json:"node"`
	Name         string             `json:"name"`
	ProviderKind model.ProviderKind `json:"provider_kind"`
	Props        model.Props        `json:"props,omitempty"`
	SharedSpace  string             `json:"shared_space,omitempty"`
	UUID         string             `json:"uuid,omitempty"`
	// DefinitionUUID is used when the definition has to be created.
	DefinitionUUID string `json:"definition_uuid,omitempty"`
}

// Type implements Command.
func (*CreateStoragePool) Type() string { return "CreateStoragePool" }

func (c *CreateStoragePool) prepare(s *State) (func(), Result, *Error) {
	name := c.Name + " on " + c.Node
	if err := model.ValidateName(model.NameStoragePool, c.Name); err != nil {
		return nil, Result{}, errName(model.ObjStoragePool, err)
	}
	n, err := s.node(c.Node)
	if err != nil {
		return nil, Result{}, err
	}
	if !n.Type.HostsResources() {
		return nil, Result{}, newErr(Invalid, model.ObjStoragePool, name, linstor.FailInvldNodeType,
			"create storage pools on satellite or combined nodes", "node %s is a %s node and runs no satellite", n.Name, n.Type.LinstorName())
	}
	nk, pk := model.Key(c.Node), model.Key(c.Name)
	if _, ok := s.pools[poolKey{nk, pk}]; ok {
		return nil, Result{}, errExists(model.ObjStoragePool, name)
	}
	kind, e := model.ParseProviderKind(string(c.ProviderKind))
	if e != nil {
		return nil, Result{}, errInvalid(model.ObjStoragePool, name, linstor.FailInvldStorDriver, e)
	}
	for _, k := range kind.RequiredProps() {
		if c.Props[k] == "" {
			return nil, Result{}, newErr(Invalid, model.ObjStoragePool, name, linstor.FailStorPoolConfigurationError,
				"set it to the backing storage, e.g. StorDriver/LvmVg=pve and StorDriver/ThinPool=data for LVM thin pool pve/data",
				"a %s pool needs the property %s", kind, k)
		}
	}
	if err := checkProps(model.ObjStoragePool, name, c.Props); err != nil {
		return nil, Result{}, err
	}
	for _, u := range []string{c.UUID, c.DefinitionUUID} {
		if err := checkUUID(model.ObjStoragePool, name, u); err != nil {
			return nil, Result{}, err
		}
	}
	p := &model.StoragePool{Node: n.Name, Name: c.Name, ProviderKind: kind, Props: c.Props.Clone(), SharedSpace: c.SharedSpace, UUID: c.UUID}
	return func() {
		if _, ok := s.spDefs[pk]; !ok {
			s.spDefs[pk] = &model.StoragePoolDefinition{Name: c.Name, UUID: c.DefinitionUUID}
		}
		s.pools[poolKey{nk, pk}] = p
		s.idx.poolsOfDefin[pk]++
	}, Result{}, nil
}

// DeleteStoragePool removes a pool that no volume or snapshot uses.
type DeleteStoragePool struct {
	Node string `json:"node"`
	Name string `json:"name"`
}

// Type implements Command.
func (*DeleteStoragePool) Type() string { return "DeleteStoragePool" }

func (c *DeleteStoragePool) prepare(s *State) (func(), Result, *Error) {
	p, err := s.pool(c.Node, c.Name)
	if err != nil {
		return nil, Result{}, err
	}
	k := poolKey{model.Key(c.Node), model.Key(c.Name)}
	if n := s.idx.poolUse[k]; n > 0 {
		return nil, Result{}, errInUse(model.ObjStoragePool, p.Name+" on "+p.Node,
			"delete or move the resources and snapshots in it first", "%d volume(s) or snapshot volume(s) are in storage pool %s on %s", n, p.Name, p.Node)
	}
	return func() {
		delete(s.pools, k)
		delete(s.idx.poolUse, k)
		s.idx.poolsOfDefin[k.pool]--
	}, Result{}, nil
}
