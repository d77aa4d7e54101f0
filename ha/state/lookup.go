package state

import (
	"slices"

	linstor "github.com/LINBIT/golinstor"
	"github.com/pvehci/pvehci/storage/model"
)

// Internal lookups return the live objects (callers must not change them
// outside a commit function) or a NotFound error naming what is missing.

func (s *State) node(name string) (*model.Node, *Error) {
	if n, ok := s.nodes[model.Key(name)]; ok {
		return n, nil
	}
	return nil, errNotFound(model.ObjNode, name)
}

func (s *State) pool(node, name string) (*model.StoragePool, *Error) {
	if _, err := s.node(node); err != nil {
		return nil, err
	}
	if p, ok := s.pools[poolKey{model.Key(node), model.Key(name)}]; ok {
		return p, nil
	}
	return nil, errNotFound(model.ObjStoragePool, name+" on "+node)
}

func (s *State) group(name string) (*model.ResourceGroup, *Error) {
	if g, ok := s.rgs[model.Key(name)]; ok {
		return g, nil
	}
	return nil, errNotFound(model.ObjResourceGroup, name)
}

func (s *State) definition(name string) (*model.ResourceDefinition, *Error) {
	if d, ok := s.rds[model.Key(name)]; ok {
		return d, nil
	}
	return nil, errNotFound(model.ObjResourceDefinition, name)
}

func (s *State) resource(rd, node string) (*model.Resource, *Error) {
	if _, err := s.definition(rd); err != nil {
		return nil, err
	}
	if r, ok := s.rscs[model.Key(rd)][model.Key(node)]; ok {
		return r, nil
	}
	return nil, errNotFound(model.ObjResource, rscName(rd, node))
}

func (s *State) snapshot(rd, name string) (*model.SnapshotDefinition, *Error) {
	if _, err := s.definition(rd); err != nil {
		return nil, err
	}
	if sd, ok := s.snaps[model.Key(rd)][model.Key(name)]; ok {
		return sd, nil
	}
	return nil, errNotFound(model.ObjSnapshotDefinition, rd+"/"+name)
}

// sortedResources returns an RD's resources ordered by node key, for
// anything whose outcome could depend on iteration order.
func (s *State) sortedResources(rdKey string) []*model.Resource {
	m := s.rscs[rdKey]
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]*model.Resource, len(keys))
	for i, k := range keys {
		out[i] = m[k]
	}
	return out
}

// sortedKeys returns a map's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// checkUUID validates an optional UUID carried by a command.
func checkUUID(obj model.ObjectKind, name, uuid string) *Error {
	if err := model.ValidateUUID(uuid); err != nil {
		return errInvalid(obj, name, linstor.FailInvldRequest, err)
	}
	return nil
}

// checkProps validates a complete property set given at creation.
func checkProps(obj model.ObjectKind, name string, p model.Props) *Error {
	if err := (model.PropsChange{Set: p}).Validate(); err != nil {
		return errInvalid(obj, name, linstor.FailInvldProp, err)
	}
	return nil
}

// scopeFor builds the inheritance scope of a resource (and, with vnr >= 0,
// of one of its volumes). Any of rd's resource, node and pool may be
// missing; the scope then simply lacks that level.
func (s *State) scopeFor(rd *model.ResourceDefinition, r *model.Resource, nodeName string, vnr int) model.Scope {
	layers := []model.Layer{{Level: model.LevelController, Object: "controller", Props: s.ctrl}}
	g := s.rgs[model.Key(rd.ResourceGroup)]
	if g != nil {
		layers = append(layers, model.Layer{Level: model.LevelResourceGroup, Object: g.Name, Props: g.Props})
	}
	layers = append(layers, model.Layer{Level: model.LevelResourceDefinition, Object: rd.Name, Props: rd.Props})
	if n := s.nodes[model.Key(nodeName)]; n != nil {
		layers = append(layers, model.Layer{Level: model.LevelNode, Object: n.Name, Props: n.Props})
	}
	if r != nil {
		layers = append(layers, model.Layer{Level: model.LevelResource, Object: rscName(r.Name, r.Node), Props: r.Props})
		// The SP level is the pool of the resource's first volume, as for
		// PrefNic in LINSTOR (research §2), whichever volume is asked about.
		if len(r.Volumes) > 0 {
			v := r.Volumes[0]
			if p := s.pools[poolKey{model.Key(r.Node), model.Key(v.StoragePool)}]; p != nil {
				layers = append(layers, model.Layer{Level: model.LevelStoragePool, Object: p.Name + " on " + p.Node, Props: p.Props})
			}
		}
	}
	if vnr >= 0 {
		if g != nil {
			if vg, ok := g.VolumeGroup(vnr); ok {
				layers = append(layers, model.Layer{Level: model.LevelVolumeGroup, Object: volName(g.Name, vnr), Props: vg.Props})
			}
		}
		if vd, ok := rd.VolumeDefinition(vnr); ok {
			layers = append(layers, model.Layer{Level: model.LevelVolumeDefinition, Object: volName(rd.Name, vnr), Props: vd.Props})
		}
		if r != nil {
			if v, ok := r.Volume(vnr); ok {
				layers = append(layers, model.Layer{Level: model.LevelVolume, Object: volName(r.Name, vnr) + " on " + r.Node, Props: v.Props})
			}
		}
	}
	return model.NewScope(layers...)
}
