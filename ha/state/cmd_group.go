package state

import (
	"slices"

	linstor "github.com/LINBIT/golinstor"
	"github.com/pvehci/pvehci/storage/model"
)

// CreateResourceGroup adds a resource group.
type CreateResourceGroup struct {
	Name         string             `json:"name"`
	Description  string             `json:"description,omitempty"`
	Props        model.Props        `json:"props,omitempty"`
	SelectFilter model.SelectFilter `json:"select_filter"`
	PeerSlots    int                `json:"peer_slots,omitempty"`
	UUID         string             `json:"uuid,omitempty"`
}

// Type implements Command.
func (*CreateResourceGroup) Type() string { return "CreateResourceGroup" }

func (c *CreateResourceGroup) prepare(s *State) (func(), Result, *Error) {
	if err := model.ValidateName(model.NameResourceGroup, c.Name); err != nil {
		return nil, Result{}, errName(model.ObjResourceGroup, err)
	}
	k := model.Key(c.Name)
	if _, ok := s.rgs[k]; ok {
		return nil, Result{}, errExists(model.ObjResourceGroup, c.Name)
	}
	if err := checkGroupFields(c.Name, c.SelectFilter, c.PeerSlots, c.Description); err != nil {
		return nil, Result{}, err
	}
	if err := checkProps(model.ObjResourceGroup, c.Name, c.Props); err != nil {
		return nil, Result{}, err
	}
	if err := checkUUID(model.ObjResourceGroup, c.Name, c.UUID); err != nil {
		return nil, Result{}, err
	}
	g := &model.ResourceGroup{Name: c.Name, Description: c.Description, Props: c.Props.Clone(),
		SelectFilter: c.SelectFilter.Clone(), PeerSlots: c.PeerSlots, UUID: c.UUID}
	return func() { s.rgs[k] = g }, Result{}, nil
}

func checkGroupFields(name string, f model.SelectFilter, peerSlots int, desc string) *Error {
	if err := f.Validate(); err != nil {
		return errInvalid(model.ObjResourceGroup, name, linstor.FailInvldPlaceCount, err)
	}
	if err := checkPeerSlots(model.ObjResourceGroup, name, peerSlots); err != nil {
		return err
	}
	if len(desc) > model.MaxPropValueLen {
		return newErr(Invalid, model.ObjResourceGroup, name, linstor.FailInvldRequest, "shorten it",
			"description is %d bytes long, at most %d are allowed", len(desc), model.MaxPropValueLen)
	}
	return nil
}

func checkPeerSlots(obj model.ObjectKind, name string, n int) *Error {
	if n < 0 || n > model.MaxPeerSlots {
		return newErr(Invalid, obj, name, linstor.FailInvldRequest, "use 1 to 31 peer slots, or 0 for the default",
			"peer slots %d is out of range", n)
	}
	return nil
}

// ModifyResourceGroup changes a group. Nil fields stay as they are; a
// given SelectFilter replaces the whole filter.
type ModifyResourceGroup struct {
	Name         string              `json:"name"`
	Description  *string             `json:"description,omitempty"`
	SelectFilter *model.SelectFilter `json:"select_filter,omitempty"`
	PeerSlots    *int                `json:"peer_slots,omitempty"`
	Props        model.PropsChange   `json:"props"`
}

// Type implements Command.
func (*ModifyResourceGroup) Type() string { return "ModifyResourceGroup" }

func (c *ModifyResourceGroup) prepare(s *State) (func(), Result, *Error) {
	g, err := s.group(c.Name)
	if err != nil {
		return nil, Result{}, err
	}
	next := g.Clone()
	if c.Description != nil {
		next.Description = *c.Description
	}
	if c.SelectFilter != nil {
		next.SelectFilter = c.SelectFilter.Clone()
	}
	if c.PeerSlots != nil {
		next.PeerSlots = *c.PeerSlots
	}
	if err := checkGroupFields(g.Name, next.SelectFilter, next.PeerSlots, next.Description); err != nil {
		return nil, Result{}, err
	}
	props, res, err := changeProps(model.ObjResourceGroup, g.Name, g.Props, c.Props)
	if err != nil {
		return nil, Result{}, err
	}
	next.Props = props
	return func() { *g = next }, res, nil
}

// DeleteResourceGroup removes a group no resource definition and no job
// schedule uses. DfltRscGrp cannot be deleted: LINSTOR puts definitions
// created without a group there.
type DeleteResourceGroup struct {
	Name string `json:"name"`
}

// Type implements Command.
func (*DeleteResourceGroup) Type() string { return "DeleteResourceGroup" }

func (c *DeleteResourceGroup) prepare(s *State) (func(), Result, *Error) {
	g, err := s.group(c.Name)
	if err != nil {
		return nil, Result{}, err
	}
	k := model.Key(g.Name)
	if k == model.Key(model.DefaultResourceGroup) {
		return nil, Result{}, newErr(Invalid, model.ObjResourceGroup, g.Name, linstor.FailInvldRequest,
			"it is where definitions without a group go; leave it", "the default resource group %s cannot be deleted", g.Name)
	}
	if rds := sortedKeys(s.idx.rdsOfGroup[k]); len(rds) > 0 {
		return nil, Result{}, errInUse(model.ObjResourceGroup, g.Name, "delete them or move them to another group first",
			"%d resource definition(s) use resource group %s, e.g. %s", len(rds), g.Name, s.rds[rds[0]].Name)
	}
	for _, sk := range sortedKeys(s.schedules) {
		js := s.schedules[sk]
		if js.Target.Kind == model.TargetResourceGroup && model.SameName(js.Target.Name, g.Name) {
			return nil, Result{}, errInUse(model.ObjResourceGroup, g.Name, "remove or retarget the schedule first",
				"job schedule %s works on resource group %s", js.Name, g.Name)
		}
	}
	return func() { delete(s.rgs, k) }, Result{}, nil
}

// CreateVolumeGroup adds a volume group to a resource group. Without a
// volume number, the lowest unused one is taken.
type CreateVolumeGroup struct {
	ResourceGroup string      `json:"resource_group"`
	VolumeNumber  *int        `json:"volume_number,omitempty"`
	Props         model.Props `json:"props,omitempty"`
	Flags         []string    `json:"flags,omitempty"`
	UUID          string      `json:"uuid,omitempty"`
}

// Type implements Command.
func (*CreateVolumeGroup) Type() string { return "CreateVolumeGroup" }

func (c *CreateVolumeGroup) prepare(s *State) (func(), Result, *Error) {
	g, err := s.group(c.ResourceGroup)
	if err != nil {
		return nil, Result{}, err
	}
	used := map[int]bool{}
	for _, vg := range g.VolumeGroups {
		used[vg.VolumeNumber] = true
	}
	vnr, err := pickVolumeNumber(model.ObjVolumeGroup, g.Name, c.VolumeNumber, used)
	if err != nil {
		return nil, Result{}, err
	}
	name := volName(g.Name, vnr)
	if e := model.ValidateFlags(model.ObjVolumeGroup, c.Flags); e != nil {
		return nil, Result{}, errInvalid(model.ObjVolumeGroup, name, linstor.FailInvldRequest, e)
	}
	if err := checkProps(model.ObjVolumeGroup, name, c.Props); err != nil {
		return nil, Result{}, err
	}
	if err := checkUUID(model.ObjVolumeGroup, name, c.UUID); err != nil {
		return nil, Result{}, err
	}
	vg := model.VolumeGroup{VolumeNumber: vnr, Props: c.Props.Clone(), Flags: model.Flags(nil).With(c.Flags...), UUID: c.UUID}
	vgs := append(slices.Clone(g.VolumeGroups), vg)
	slices.SortFunc(vgs, func(a, b model.VolumeGroup) int { return a.VolumeNumber - b.VolumeNumber })
	return func() { g.VolumeGroups = vgs }, Result{}, nil
}

// pickVolumeNumber checks a requested volume number, or picks the lowest
// unused one.
func pickVolumeNumber(obj model.ObjectKind, owner string, want *int, used map[int]bool) (int, *Error) {
	if want != nil {
		v := *want
		if v < 0 || v > model.MaxVolumeNumber {
			return 0, newErr(Invalid, obj, owner, linstor.FailInvldVlmNr, "use 0 to 65535",
				"volume number %d is out of range", v)
		}
		if used[v] {
			return 0, errExists(obj, volName(owner, v))
		}
		return v, nil
	}
	for v := 0; v <= model.MaxVolumeNumber; v++ {
		if !used[v] {
			return v, nil
		}
	}
	return 0, newErr(Exhausted, obj, owner, linstor.FailPoolExhaustedVlmNr, "delete unused volumes", "all volume numbers of %s are in use", owner)
}

// DeleteVolumeGroup removes a volume group.
type DeleteVolumeGroup struct {
	ResourceGroup string `json:"resource_group"`
	VolumeNumber  int    `json:"volume_number"`
}

// Type implements Command.
func (*DeleteVolumeGroup) Type() string { return "DeleteVolumeGroup" }

func (c *DeleteVolumeGroup) prepare(s *State) (func(), Result, *Error) {
	g, err := s.group(c.ResourceGroup)
	if err != nil {
		return nil, Result{}, err
	}
	i := slices.IndexFunc(g.VolumeGroups, func(vg model.VolumeGroup) bool { return vg.VolumeNumber == c.VolumeNumber })
	if i < 0 {
		return nil, Result{}, errNotFound(model.ObjVolumeGroup, volName(g.Name, c.VolumeNumber))
	}
	vgs := slices.Delete(slices.Clone(g.VolumeGroups), i, i+1)
	if len(vgs) == 0 {
		vgs = nil
	}
	return func() { g.VolumeGroups = vgs }, Result{}, nil
}
