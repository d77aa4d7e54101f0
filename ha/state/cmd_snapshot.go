package state

import (
	"slices"

	linstor "github.com/LINBIT/golinstor"
	"github.com/pvehci/pvehci/storage/model"
)

// CreateSnapshotDefinition records a snapshot of a resource definition on
// the given nodes, or on every node with a diskful resource that is not
// being deleted or inactive (LINSTOR snapshots diskful replicas only,
// research §3). It copies the sizes and properties a restore needs. The
// satellites take the snapshot afterwards; the controller marks it
// SUCCESSFUL with SetFlags.
type CreateSnapshotDefinition struct {
	ResourceDefinition string      `json:"resource_definition"`
	Name               string      `json:"name"`
	Nodes              []string    `json:"nodes,omitempty"`
	Props              model.Props `json:"props,omitempty"`
	Flags              []string    `json:"flags,omitempty"`
	UUID               string      `json:"uuid,omitempty"`
	CreateTimestamp    int64       `json:"create_timestamp,omitempty"`
}

// Type implements Command.
func (*CreateSnapshotDefinition) Type() string { return "CreateSnapshotDefinition" }

func (c *CreateSnapshotDefinition) prepare(s *State) (func(), Result, *Error) {
	rd, err := s.definition(c.ResourceDefinition)
	if err != nil {
		return nil, Result{}, err
	}
	if e := model.ValidateName(model.NameSnapshot, c.Name); e != nil {
		return nil, Result{}, errName(model.ObjSnapshotDefinition, e)
	}
	name := rd.Name + "/" + c.Name
	rk, sk := model.Key(rd.Name), model.Key(c.Name)
	if _, ok := s.snaps[rk][sk]; ok {
		return nil, Result{}, errExists(model.ObjSnapshotDefinition, name)
	}
	if len(rd.VolumeDefinitions) == 0 {
		return nil, Result{}, newErr(Invalid, model.ObjSnapshotDefinition, name, linstor.FailInvldRequest,
			"create a volume definition first", "resource definition %s has no volumes to snapshot", rd.Name)
	}
	if e := model.ValidateFlags(model.ObjSnapshotDefinition, c.Flags); e != nil {
		return nil, Result{}, errInvalid(model.ObjSnapshotDefinition, name, linstor.FailInvldRequest, e)
	}
	if err := checkProps(model.ObjSnapshotDefinition, name, c.Props); err != nil {
		return nil, Result{}, err
	}
	if err := checkUUID(model.ObjSnapshotDefinition, name, c.UUID); err != nil {
		return nil, Result{}, err
	}
	eligible := func(r *model.Resource) bool {
		return !r.Diskless() && !r.Flags.Has(model.RscFlagDelete) && !r.Flags.Has(model.RscFlagInactive)
	}
	var rscs []*model.Resource
	if len(c.Nodes) == 0 {
		for _, r := range s.sortedResources(rk) {
			if eligible(r) {
				rscs = append(rscs, r)
			}
		}
	} else {
		seen := map[string]bool{}
		for _, n := range c.Nodes {
			r, err := s.resource(rd.Name, n)
			if err != nil {
				return nil, Result{}, err
			}
			if !eligible(r) {
				return nil, Result{}, newErr(Invalid, model.ObjSnapshotDefinition, name, linstor.FailInvldRequest,
					"snapshot only nodes with a diskful, active resource", "resource %s is diskless, inactive or being deleted", rscName(r.Name, r.Node))
			}
			if seen[model.Key(r.Node)] {
				continue
			}
			seen[model.Key(r.Node)] = true
			rscs = append(rscs, r)
		}
	}
	if len(rscs) == 0 {
		return nil, Result{}, newErr(Invalid, model.ObjSnapshotDefinition, name, linstor.FailInvldRequest,
			"place a diskful replica first", "resource definition %s has no diskful resource to snapshot", rd.Name)
	}
	sd := &model.SnapshotDefinition{ResourceName: rd.Name, Name: c.Name, Props: c.Props.Clone(),
		Flags: model.Flags(nil).With(c.Flags...), ResourceDefinitionProps: rd.Props.Clone(), UUID: c.UUID, CreateTimestamp: c.CreateTimestamp}
	for _, vd := range rd.VolumeDefinitions {
		sd.VolumeDefinitions = append(sd.VolumeDefinitions, model.SnapshotVolumeDefinition{
			VolumeNumber: vd.VolumeNumber, SizeKiB: vd.SizeKiB, VolumeDefinitionProps: vd.Props.Clone()})
	}
	// Sorted by node key: rscs is sorted when taken from the state, and
	// requested nodes are sorted here.
	for _, r := range rscs {
		sn := model.Snapshot{Node: r.Node, NodeID: r.NodeID, ResourceProps: r.Props.Clone(), CreateTimestamp: c.CreateTimestamp}
		for _, v := range r.Volumes {
			sn.Volumes = append(sn.Volumes, model.SnapshotVolume{VolumeNumber: v.VolumeNumber, StoragePool: v.StoragePool, VolumeProps: v.Props.Clone()})
		}
		sd.Snapshots = append(sd.Snapshots, sn)
	}
	sortSnapshots(sd.Snapshots)
	return func() {
		if s.snaps[rk] == nil {
			s.snaps[rk] = map[string]*model.SnapshotDefinition{}
		}
		s.snaps[rk][sk] = sd
		s.indexSnapshot(sd, +1)
	}, Result{}, nil
}

func sortSnapshots(sn []model.Snapshot) {
	slices.SortFunc(sn, func(a, b model.Snapshot) int { return cmpStr(model.Key(a.Node), model.Key(b.Node)) })
}

// DeleteSnapshotDefinition removes a snapshot record after the satellites
// removed the snapshot volumes.
type DeleteSnapshotDefinition struct {
	ResourceDefinition string `json:"resource_definition"`
	Name               string `json:"name"`
}

// Type implements Command.
func (*DeleteSnapshotDefinition) Type() string { return "DeleteSnapshotDefinition" }

func (c *DeleteSnapshotDefinition) prepare(s *State) (func(), Result, *Error) {
	sd, err := s.snapshot(c.ResourceDefinition, c.Name)
	if err != nil {
		return nil, Result{}, err
	}
	rk, sk := model.Key(sd.ResourceName), model.Key(sd.Name)
	return func() {
		s.indexSnapshot(sd, -1)
		delete(s.snaps[rk], sk)
		if len(s.snaps[rk]) == 0 {
			delete(s.snaps, rk)
		}
	}, Result{}, nil
}
