package state

import (
	"fmt"
	"slices"
	"strconv"

	linstor "github.com/LINBIT/golinstor"
	"github.com/pvehci/pvehci/storage/model"
)

// Target names the object a SetProps or SetFlags command changes. Kind
// says which fields matter:
//
//	controller               -
//	node                     Node
//	storage-pool-definition  StoragePool
//	storage-pool             Node, StoragePool
//	resource-group           ResourceGroup
//	volume-group             ResourceGroup, VolumeNumber
//	resource-definition      ResourceDefinition
//	volume-definition        ResourceDefinition, VolumeNumber
//	resource                 ResourceDefinition, Node
//	volume                   ResourceDefinition, Node, VolumeNumber
//	snapshot-definition      ResourceDefinition, Snapshot
type Target struct {
	Kind               model.ObjectKind `json:"kind"`
	Node               string           `json:"node,omitempty"`
	StoragePool        string           `json:"storage_pool,omitempty"`
	ResourceGroup      string           `json:"resource_group,omitempty"`
	ResourceDefinition string           `json:"resource_definition,omitempty"`
	VolumeNumber       int              `json:"volume_number,omitempty"`
	Snapshot           string           `json:"snapshot,omitempty"`
}

// located points into the state at the props and flags of one object.
type located struct {
	name  string
	props *model.Props
	flags *model.Flags // nil when the object has no flags
	rsc   *model.Resource
}

func (s *State) locate(t Target) (located, *Error) {
	switch t.Kind {
	case model.ObjController:
		return located{name: "controller", props: &s.ctrl}, nil
	case model.ObjNode:
		n, err := s.node(t.Node)
		if err != nil {
			return located{}, err
		}
		return located{name: n.Name, props: &n.Props, flags: &n.Flags}, nil
	case model.ObjStoragePoolDefinition:
		d, ok := s.spDefs[model.Key(t.StoragePool)]
		if !ok {
			return located{}, errNotFound(model.ObjStoragePoolDefinition, t.StoragePool)
		}
		return located{name: d.Name, props: &d.Props}, nil
	case model.ObjStoragePool:
		p, err := s.pool(t.Node, t.StoragePool)
		if err != nil {
			return located{}, err
		}
		return located{name: p.Name + " on " + p.Node, props: &p.Props}, nil
	case model.ObjResourceGroup:
		g, err := s.group(t.ResourceGroup)
		if err != nil {
			return located{}, err
		}
		return located{name: g.Name, props: &g.Props}, nil
	case model.ObjVolumeGroup:
		g, err := s.group(t.ResourceGroup)
		if err != nil {
			return located{}, err
		}
		i := slices.IndexFunc(g.VolumeGroups, func(vg model.VolumeGroup) bool { return vg.VolumeNumber == t.VolumeNumber })
		if i < 0 {
			return located{}, errNotFound(model.ObjVolumeGroup, volName(g.Name, t.VolumeNumber))
		}
		vg := &g.VolumeGroups[i]
		return located{name: volName(g.Name, t.VolumeNumber), props: &vg.Props, flags: &vg.Flags}, nil
	case model.ObjResourceDefinition:
		d, err := s.definition(t.ResourceDefinition)
		if err != nil {
			return located{}, err
		}
		return located{name: d.Name, props: &d.Props, flags: &d.Flags}, nil
	case model.ObjVolumeDefinition:
		d, err := s.definition(t.ResourceDefinition)
		if err != nil {
			return located{}, err
		}
		i := vdIndex(d, t.VolumeNumber)
		if i < 0 {
			return located{}, errNotFound(model.ObjVolumeDefinition, volName(d.Name, t.VolumeNumber))
		}
		vd := &d.VolumeDefinitions[i]
		return located{name: volName(d.Name, t.VolumeNumber), props: &vd.Props, flags: &vd.Flags}, nil
	case model.ObjResource:
		r, err := s.resource(t.ResourceDefinition, t.Node)
		if err != nil {
			return located{}, err
		}
		return located{name: rscName(r.Name, r.Node), props: &r.Props, flags: &r.Flags, rsc: r}, nil
	case model.ObjVolume:
		r, err := s.resource(t.ResourceDefinition, t.Node)
		if err != nil {
			return located{}, err
		}
		i := slices.IndexFunc(r.Volumes, func(v model.Volume) bool { return v.VolumeNumber == t.VolumeNumber })
		if i < 0 {
			return located{}, errNotFound(model.ObjVolume, volName(r.Name, t.VolumeNumber)+" on "+r.Node)
		}
		v := &r.Volumes[i]
		return located{name: volName(r.Name, t.VolumeNumber) + " on " + r.Node, props: &v.Props, flags: &v.Flags}, nil
	case model.ObjSnapshotDefinition:
		sd, err := s.snapshot(t.ResourceDefinition, t.Snapshot)
		if err != nil {
			return located{}, err
		}
		return located{name: sd.ResourceName + "/" + sd.Name, props: &sd.Props, flags: &sd.Flags}, nil
	}
	return located{}, newErr(Invalid, t.Kind, "", linstor.FailInvldRequest,
		"use one of controller, node, storage-pool-definition, storage-pool, resource-group, volume-group, resource-definition, volume-definition, resource, volume, snapshot-definition",
		"object kind %q has no properties", t.Kind)
}

// SetProps changes the properties of any object, in LINSTOR's
// override/delete/delete-namespace terms.
type SetProps struct {
	Target Target            `json:"target"`
	Change model.PropsChange `json:"change"`
}

// Type implements Command.
func (*SetProps) Type() string { return "SetProps" }

func (c *SetProps) prepare(s *State) (func(), Result, *Error) {
	loc, err := s.locate(c.Target)
	if err != nil {
		return nil, Result{}, err
	}
	next, res, err := changeProps(c.Target.Kind, loc.name, *loc.props, c.Change)
	if err != nil {
		return nil, Result{}, err
	}
	return func() { *loc.props = next }, res, nil
}

// changeProps validates and computes a props change, with LINSTOR's
// warning for deleting keys that were not set.
func changeProps(kind model.ObjectKind, name string, cur model.Props, ch model.PropsChange) (model.Props, Result, *Error) {
	if err := ch.Validate(); err != nil {
		return nil, Result{}, errInvalid(kind, name, linstor.FailInvldProp, err)
	}
	next, unset := ch.Apply(cur)
	var res Result
	for _, k := range unset {
		res.Warnings = append(res.Warnings, Warning{Code: linstor.WarnDelUnsetProp,
			Message: fmt.Sprintf("property %q of %s %s was not set", k, kind, name)})
	}
	return next, res, nil
}

// SetFlags sets and clears state flags of a node, resource definition,
// volume definition, resource, volume, volume group or snapshot. The flags
// that make a resource diskless are not set this way: use ToggleDisk, which
// also moves the volumes to fitting storage pools.
type SetFlags struct {
	Target Target   `json:"target"`
	Set    []string `json:"set,omitempty"`
	Clear  []string `json:"clear,omitempty"`
}

// Type implements Command.
func (*SetFlags) Type() string { return "SetFlags" }

func (c *SetFlags) prepare(s *State) (func(), Result, *Error) {
	loc, err := s.locate(c.Target)
	if err != nil {
		return nil, Result{}, err
	}
	if loc.flags == nil {
		return nil, Result{}, newErr(Invalid, c.Target.Kind, loc.name, linstor.FailInvldRequest, "", "a %s has no flags", c.Target.Kind)
	}
	for _, list := range [][]string{c.Set, c.Clear} {
		if e := model.ValidateFlags(c.Target.Kind, list); e != nil {
			return nil, Result{}, errInvalid(c.Target.Kind, loc.name, linstor.FailInvldRequest, e)
		}
	}
	for _, f := range c.Set {
		if slices.Contains(c.Clear, f) {
			return nil, Result{}, newErr(Invalid, c.Target.Kind, loc.name, linstor.FailInvldRequest,
				"do one or the other", "flag %s is both set and cleared", f)
		}
	}
	if r := loc.rsc; r != nil {
		for _, f := range append(slices.Clone(c.Set), c.Clear...) {
			if f == model.RscFlagDiskless || f == model.RscFlagDrbdDiskless {
				return nil, Result{}, newErr(Invalid, model.ObjResource, loc.name, linstor.FailInvldRequest,
					"use toggle-disk, which also moves the volumes to a fitting storage pool",
					"flag %s cannot be changed directly", f)
			}
		}
		if slices.Contains(c.Set, model.RscFlagDelete) {
			// The first phase of a delete is where the last-diskful guard
			// belongs; DeleteResource later trusts the flag.
			if err := s.checkNotLastDiskful(r, "delete"); err != nil {
				return nil, Result{}, err
			}
		}
		if slices.Contains(c.Set, model.RscFlagTieBreaker) && !r.Diskless() {
			return nil, Result{}, newErr(Invalid, model.ObjResource, loc.name, linstor.FailInvldRequest,
				"only a diskless resource can be a tie-breaker; toggle its disk off first",
				"resource %s has a disk", loc.name)
		}
	}
	next := loc.flags.With(c.Set...).Without(c.Clear...)
	return func() { *loc.flags = next }, Result{}, nil
}

func itoa(n int) string { return strconv.Itoa(n) }

func vdIndex(d *model.ResourceDefinition, vnr int) int {
	return slices.IndexFunc(d.VolumeDefinitions, func(vd model.VolumeDefinition) bool { return vd.VolumeNumber == vnr })
}
