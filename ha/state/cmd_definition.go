package state

import (
	"fmt"
	"slices"

	linstor "github.com/LINBIT/golinstor"
	"github.com/pvehci/pvehci/storage/model"
)

// NewVolumeDefinition describes a volume definition to create. Without a
// volume number the lowest unused one is taken; without a minor the lowest
// free one in MinorNrAutoRange.
type NewVolumeDefinition struct {
	VolumeNumber *int        `json:"volume_number,omitempty"`
	SizeKiB      int64       `json:"size_kib"`
	Minor        *int        `json:"minor,omitempty"`
	Props        model.Props `json:"props,omitempty"`
	Flags        []string    `json:"flags,omitempty"`
	UUID         string      `json:"uuid,omitempty"`
}

// CreateResourceDefinition adds a resource definition, optionally with its
// volume definitions in the same step (what spawn needs: either all of it
// exists afterwards or nothing).
type CreateResourceDefinition struct {
	Name          string      `json:"name"`
	ExternalName  string      `json:"external_name,omitempty"`
	ResourceGroup string      `json:"resource_group,omitempty"` // empty: DfltRscGrp
	Props         model.Props `json:"props,omitempty"`
	LayerStack    []string    `json:"layer_stack,omitempty"`
	// DrbdPort is only a preference (LINSTOR's drbd_port): resources use it
	// when it is free on their node.
	DrbdPort int `json:"drbd_port,omitempty"`
	// DrbdSecret is the DRBD shared secret. LINSTOR generates a random one;
	// here the leader must, because Apply may not use randomness.
	DrbdSecret        string                `json:"drbd_secret"`
	DrbdTransport     string                `json:"drbd_transport_type,omitempty"`
	DrbdPeerSlots     int                   `json:"drbd_peer_slots,omitempty"`
	VolumeDefinitions []NewVolumeDefinition `json:"volume_definitions,omitempty"`
	UUID              string                `json:"uuid,omitempty"`
}

// Type implements Command.
func (*CreateResourceDefinition) Type() string { return "CreateResourceDefinition" }

func (c *CreateResourceDefinition) prepare(s *State) (func(), Result, *Error) {
	if err := model.ValidateName(model.NameResourceDefinition, c.Name); err != nil {
		return nil, Result{}, errName(model.ObjResourceDefinition, err)
	}
	k := model.Key(c.Name)
	if _, ok := s.rds[k]; ok {
		return nil, Result{}, errExists(model.ObjResourceDefinition, c.Name)
	}
	if c.ExternalName != "" {
		if err := model.ValidateName(model.NameResourceDefinitionExt, c.ExternalName); err != nil {
			return nil, Result{}, errName(model.ObjResourceDefinition, err)
		}
		if other, ok := s.idx.extNames[c.ExternalName]; ok {
			return nil, Result{}, newErr(Exists, model.ObjResourceDefinition, c.Name, linstor.FailExistsExtName,
				"choose another external name", "external name %q is already used by %s", c.ExternalName, s.rds[other].Name)
		}
	}
	rgName := c.ResourceGroup
	if rgName == "" {
		rgName = model.DefaultResourceGroup
	}
	g, err := s.group(rgName)
	if err != nil {
		return nil, Result{}, err
	}
	if err := checkDrbdPort(c.Name, c.DrbdPort); err != nil {
		return nil, Result{}, err
	}
	if err := checkSecret(c.Name, c.DrbdSecret); err != nil {
		return nil, Result{}, err
	}
	transport, e := model.ParseDrbdTransport(c.DrbdTransport)
	if e != nil {
		return nil, Result{}, errInvalid(model.ObjResourceDefinition, c.Name, linstor.FailInvldTransportType, e)
	}
	if err := checkPeerSlots(model.ObjResourceDefinition, c.Name, c.DrbdPeerSlots); err != nil {
		return nil, Result{}, err
	}
	if e := model.ValidateLayerStack(c.LayerStack); e != nil {
		return nil, Result{}, errInvalid(model.ObjResourceDefinition, c.Name, linstor.FailInvldLayerStack, e)
	}
	if err := checkProps(model.ObjResourceDefinition, c.Name, c.Props); err != nil {
		return nil, Result{}, err
	}
	if err := checkUUID(model.ObjResourceDefinition, c.Name, c.UUID); err != nil {
		return nil, Result{}, err
	}
	rd := &model.ResourceDefinition{
		Name: c.Name, ExternalName: c.ExternalName, ResourceGroup: g.Name, Props: c.Props.Clone(),
		LayerStack: slices.Clone(c.LayerStack), UUID: c.UUID,
		Drbd: model.DrbdResourceDefinition{Port: c.DrbdPort, Secret: c.DrbdSecret, Transport: transport, PeerSlots: c.DrbdPeerSlots},
	}
	vds, allocs, err := s.planVolumeDefinitions(rd, c.VolumeDefinitions)
	if err != nil {
		return nil, Result{}, err
	}
	rd.VolumeDefinitions = vds
	return func() {
		s.rds[k] = rd
		s.indexRD(k, rd)
	}, Result{Allocated: allocs}, nil
}

func checkDrbdPort(name string, port int) *Error {
	if port != 0 && !model.TCPPortLimits().Contains(port) {
		return newErr(Invalid, model.ObjResourceDefinition, name, linstor.FailInvldRscPort,
			"use a TCP port from 1 to 65535, or none to let pvehci choose", "DRBD port %d is not a TCP port", port)
	}
	return nil
}

// checkSecret: DRBD limits shared-secret to 64 bytes, and the .res file
// writes it inside double quotes.
func checkSecret(name, secret string) *Error {
	fix := "the leader generates a random secret of printable characters when none is given; this is a bug if you see it"
	if secret == "" || len(secret) > 64 {
		return newErr(Invalid, model.ObjResourceDefinition, name, linstor.FailInvldRequest, fix,
			"DRBD secret must be 1 to 64 bytes long, not %d", len(secret))
	}
	for i := 0; i < len(secret); i++ {
		if c := secret[i]; c <= ' ' || c >= 0x7f || c == '"' || c == '\\' {
			return newErr(Invalid, model.ObjResourceDefinition, name, linstor.FailInvldRequest, fix,
				"DRBD secret contains byte 0x%02x, which cannot be written into a .res file", c)
		}
	}
	return nil
}

// planVolumeDefinitions validates new volume definitions for rd and picks
// their numbers and minors, without changing anything. It does not add
// volumes to rd's resources; callers that need that do it themselves.
func (s *State) planVolumeDefinitions(rd *model.ResourceDefinition, specs []NewVolumeDefinition) ([]model.VolumeDefinition, []Allocation, *Error) {
	used := map[int]bool{}
	for _, vd := range rd.VolumeDefinitions {
		used[vd.VolumeNumber] = true
	}
	var minorRange model.Range
	if len(specs) > 0 {
		var err *Error
		if minorRange, err = s.minorRange(); err != nil {
			return nil, nil, err
		}
	}
	pending := map[int]bool{}
	vds := slices.Clone(rd.VolumeDefinitions)
	var allocs []Allocation
	for _, spec := range specs {
		vnr, err := pickVolumeNumber(model.ObjVolumeDefinition, rd.Name, spec.VolumeNumber, used)
		if err != nil {
			return nil, nil, err
		}
		used[vnr] = true
		name := volName(rd.Name, vnr)
		if err := checkSize(name, spec.SizeKiB); err != nil {
			return nil, nil, err
		}
		if e := model.ValidateFlags(model.ObjVolumeDefinition, spec.Flags); e != nil {
			return nil, nil, errInvalid(model.ObjVolumeDefinition, name, linstor.FailInvldRequest, e)
		}
		if err := checkProps(model.ObjVolumeDefinition, name, spec.Props); err != nil {
			return nil, nil, err
		}
		if err := checkUUID(model.ObjVolumeDefinition, name, spec.UUID); err != nil {
			return nil, nil, err
		}
		minor, err := s.pickMinor(name, spec.Minor, minorRange, pending)
		if err != nil {
			return nil, nil, err
		}
		pending[minor] = true
		vds = append(vds, model.VolumeDefinition{VolumeNumber: vnr, SizeKiB: spec.SizeKiB, Minor: minor,
			Props: spec.Props.Clone(), Flags: model.Flags(nil).With(spec.Flags...), UUID: spec.UUID})
		allocs = append(allocs, Allocation{Kind: AllocMinor, Resource: rd.Name, Volume: vnr, Number: minor})
	}
	slices.SortFunc(vds, func(a, b model.VolumeDefinition) int { return a.VolumeNumber - b.VolumeNumber })
	return vds, allocs, nil
}

func checkSize(name string, size int64) *Error {
	if size <= 0 || size > model.MaxVolumeSizeKiB {
		return newErr(Invalid, model.ObjVolumeDefinition, name, linstor.FailInvldVlmSize,
			fmt.Sprintf("give the size in KiB, from 1 to %d (1 PiB)", model.MaxVolumeSizeKiB),
			"volume size %d KiB is out of range", size)
	}
	return nil
}

// minorRange is MinorNrAutoRange from the controller props, or 1000-49999.
func (s *State) minorRange() (model.Range, *Error) {
	v, ok := s.ctrl[model.KeyMinorNrAutoRange]
	if !ok {
		return model.DefaultMinorRange(), nil
	}
	r, e := model.ParseRange(v, model.MinorLimits())
	if e != nil {
		return r, errInvalid(model.ObjController, "controller", linstor.FailInvldProp, fmt.Errorf("%s: %w", model.KeyMinorNrAutoRange, e))
	}
	return r, nil
}

// pickMinor checks a requested minor (anywhere DRBD allows, held by no one)
// or picks the lowest free one in the auto range. Minors are cluster-wide:
// the same minor on every node (research §2).
func (s *State) pickMinor(name string, want *int, r model.Range, pending map[int]bool) (int, *Error) {
	if want != nil {
		m := *want
		if !model.MinorLimits().Contains(m) {
			return 0, newErr(Invalid, model.ObjVolumeDefinition, name, linstor.FailInvldMinorNr,
				"use a minor from 0 to 1048575, or none to let pvehci choose", "minor %d is out of range", m)
		}
		if s.idx.minors.has(m) || pending[m] {
			holder := s.idx.minorHolder[m]
			if holder == "" {
				holder = "another volume of this request"
			}
			return 0, newErr(Invalid, model.ObjVolumeDefinition, name, linstor.FailInvldMinorNr,
				"choose another minor, or none to let pvehci choose", "minor %d is already used by %s", m, holder)
		}
		return m, nil
	}
	m, ok := s.idx.minors.lowestFree(r, pending)
	if !ok {
		return 0, newErr(Exhausted, model.ObjVolumeDefinition, name, linstor.FailPoolExhaustedMinorNr,
			fmt.Sprintf("widen the controller property %s (now %s) or delete unused volumes", model.KeyMinorNrAutoRange, r),
			"no DRBD minor is free in %s", r)
	}
	return m, nil
}

// ModifyResourceDefinition changes a definition. Nil fields stay as they
// are.
type ModifyResourceDefinition struct {
	Name          string            `json:"name"`
	ResourceGroup *string           `json:"resource_group,omitempty"`
	DrbdPort      *int              `json:"drbd_port,omitempty"`
	DrbdPeerSlots *int              `json:"drbd_peer_slots,omitempty"`
	Props         model.PropsChange `json:"props"`
}

// Type implements Command.
func (*ModifyResourceDefinition) Type() string { return "ModifyResourceDefinition" }

func (c *ModifyResourceDefinition) prepare(s *State) (func(), Result, *Error) {
	rd, err := s.definition(c.Name)
	if err != nil {
		return nil, Result{}, err
	}
	k := model.Key(rd.Name)
	group := rd.ResourceGroup
	if c.ResourceGroup != nil {
		g, err := s.group(*c.ResourceGroup)
		if err != nil {
			return nil, Result{}, err
		}
		group = g.Name
	}
	port, slots := rd.Drbd.Port, rd.Drbd.PeerSlots
	if c.DrbdPort != nil {
		port = *c.DrbdPort
		if err := checkDrbdPort(rd.Name, port); err != nil {
			return nil, Result{}, err
		}
	}
	if c.DrbdPeerSlots != nil {
		slots = *c.DrbdPeerSlots
		if err := checkPeerSlots(model.ObjResourceDefinition, rd.Name, slots); err != nil {
			return nil, Result{}, err
		}
	}
	props, res, err := changeProps(model.ObjResourceDefinition, rd.Name, rd.Props, c.Props)
	if err != nil {
		return nil, Result{}, err
	}
	return func() {
		if !model.SameName(group, rd.ResourceGroup) {
			delete(s.idx.rdsOfGroup[model.Key(rd.ResourceGroup)], k)
			gk := model.Key(group)
			if s.idx.rdsOfGroup[gk] == nil {
				s.idx.rdsOfGroup[gk] = map[string]bool{}
			}
			s.idx.rdsOfGroup[gk][k] = true
		}
		rd.ResourceGroup, rd.Drbd.Port, rd.Drbd.PeerSlots, rd.Props = group, port, slots, props
	}, res, nil
}

// DeleteResourceDefinition removes a definition with its volume
// definitions and resources, freeing their minors, ports and node ids. The
// controller deletes the resources on the satellites first (DELETE flags
// via SetFlags); this removes what is left in one step. A definition with
// snapshots is refused, as in LINSTOR. Its relocation, if any, goes too.
// Job schedules that name it stay: the Proxmox plugin deletes definitions
// on its own and must not fail on a schedule, so the scheduler records a
// skipped run for a target that is gone.
type DeleteResourceDefinition struct {
	Name string `json:"name"`
}

// Type implements Command.
func (*DeleteResourceDefinition) Type() string { return "DeleteResourceDefinition" }

func (c *DeleteResourceDefinition) prepare(s *State) (func(), Result, *Error) {
	rd, err := s.definition(c.Name)
	if err != nil {
		return nil, Result{}, err
	}
	k := model.Key(rd.Name)
	if n := len(s.snaps[k]); n > 0 {
		return nil, Result{}, errInUse(model.ObjResourceDefinition, rd.Name, "delete its snapshots first",
			"resource definition %s has %d snapshot(s)", rd.Name, n)
	}
	return func() {
		for _, r := range s.rscs[k] {
			s.indexResource(r, -1)
		}
		delete(s.rscs, k)
		delete(s.snaps, k)
		s.unindexRD(k, rd)
		delete(s.rds, k)
		delete(s.relocs, k)
	}, Result{}, nil
}

// CreateVolumeDefinition adds a volume definition and, on every node that
// has the resource, its volume. A diskful resource's new volume goes to the
// storage pool of its first volume, or else the StorPoolName property, or
// else DfltStorPool; a diskless one's to its diskless pool.
type CreateVolumeDefinition struct {
	ResourceDefinition string `json:"resource_definition"`
	NewVolumeDefinition
}

// Type implements Command.
func (*CreateVolumeDefinition) Type() string { return "CreateVolumeDefinition" }

func (c *CreateVolumeDefinition) prepare(s *State) (func(), Result, *Error) {
	rd, err := s.definition(c.ResourceDefinition)
	if err != nil {
		return nil, Result{}, err
	}
	vds, allocs, err := s.planVolumeDefinitions(rd, []NewVolumeDefinition{c.NewVolumeDefinition})
	if err != nil {
		return nil, Result{}, err
	}
	vnr := allocs[0].Volume
	type addition struct {
		r *model.Resource
		v model.Volume
	}
	var adds []addition
	for _, r := range s.sortedResources(model.Key(rd.Name)) {
		pool, err := s.poolForNewVolume(rd, r)
		if err != nil {
			return nil, Result{}, err
		}
		adds = append(adds, addition{r, model.Volume{VolumeNumber: vnr, StoragePool: pool}})
	}
	minor := allocs[0].Number
	return func() {
		rd.VolumeDefinitions = vds
		s.idx.minors.add(minor)
		s.idx.minorHolder[minor] = volName(rd.Name, vnr)
		for _, a := range adds {
			a.r.Volumes = append(a.r.Volumes, a.v)
			slices.SortFunc(a.r.Volumes, func(x, y model.Volume) int { return x.VolumeNumber - y.VolumeNumber })
			s.idx.poolUse[poolKey{model.Key(a.r.Node), model.Key(a.v.StoragePool)}]++
		}
	}, Result{Allocated: allocs}, nil
}

// ModifyVolumeDefinition resizes a volume definition (grow only: LINSTOR
// disabled shrinking in 1.33.3, research §3) and changes its properties. A
// size change sets the RESIZE flag, which the controller clears once every
// satellite has grown its volume.
type ModifyVolumeDefinition struct {
	ResourceDefinition string            `json:"resource_definition"`
	VolumeNumber       int               `json:"volume_number"`
	SizeKiB            int64             `json:"size_kib,omitempty"` // 0: unchanged
	Props              model.PropsChange `json:"props"`
}

// Type implements Command.
func (*ModifyVolumeDefinition) Type() string { return "ModifyVolumeDefinition" }

func (c *ModifyVolumeDefinition) prepare(s *State) (func(), Result, *Error) {
	rd, err := s.definition(c.ResourceDefinition)
	if err != nil {
		return nil, Result{}, err
	}
	i := vdIndex(rd, c.VolumeNumber)
	if i < 0 {
		return nil, Result{}, errNotFound(model.ObjVolumeDefinition, volName(rd.Name, c.VolumeNumber))
	}
	vd := &rd.VolumeDefinitions[i]
	name := volName(rd.Name, vd.VolumeNumber)
	size, flags := vd.SizeKiB, vd.Flags
	var res Result
	if c.SizeKiB != 0 {
		if err := checkSize(name, c.SizeKiB); err != nil {
			return nil, Result{}, err
		}
		switch {
		case c.SizeKiB < vd.SizeKiB:
			return nil, Result{}, newErr(Invalid, model.ObjVolumeDefinition, name, linstor.FailInvldVlmSize,
				"volumes can only grow; to get a smaller disk, create a new volume and copy the data",
				"cannot shrink %s from %d KiB to %d KiB", name, vd.SizeKiB, c.SizeKiB)
		case c.SizeKiB == vd.SizeKiB:
			res.Warnings = append(res.Warnings, Warning{Code: linstor.WarnVlmdfnResizeSameSize,
				Message: fmt.Sprintf("%s already has %d KiB", name, c.SizeKiB)})
		default:
			size, flags = c.SizeKiB, flags.With(model.VdFlagResize)
		}
	}
	props, pres, err := changeProps(model.ObjVolumeDefinition, name, vd.Props, c.Props)
	if err != nil {
		return nil, Result{}, err
	}
	res.Warnings = append(res.Warnings, pres.Warnings...)
	return func() { vd.SizeKiB, vd.Flags, vd.Props = size, flags, props }, res, nil
}

// DeleteVolumeDefinition removes a volume definition and its volumes on
// every node, freeing its minor.
type DeleteVolumeDefinition struct {
	ResourceDefinition string `json:"resource_definition"`
	VolumeNumber       int    `json:"volume_number"`
}

// Type implements Command.
func (*DeleteVolumeDefinition) Type() string { return "DeleteVolumeDefinition" }

func (c *DeleteVolumeDefinition) prepare(s *State) (func(), Result, *Error) {
	rd, err := s.definition(c.ResourceDefinition)
	if err != nil {
		return nil, Result{}, err
	}
	i := vdIndex(rd, c.VolumeNumber)
	if i < 0 {
		return nil, Result{}, errNotFound(model.ObjVolumeDefinition, volName(rd.Name, c.VolumeNumber))
	}
	minor := rd.VolumeDefinitions[i].Minor
	vds := slices.Delete(slices.Clone(rd.VolumeDefinitions), i, i+1)
	if len(vds) == 0 {
		vds = nil
	}
	return func() {
		rd.VolumeDefinitions = vds
		s.idx.minors.remove(minor)
		delete(s.idx.minorHolder, minor)
		for _, r := range s.rscs[model.Key(rd.Name)] {
			j := slices.IndexFunc(r.Volumes, func(v model.Volume) bool { return v.VolumeNumber == c.VolumeNumber })
			if j < 0 {
				continue
			}
			s.idx.poolUse[poolKey{model.Key(r.Node), model.Key(r.Volumes[j].StoragePool)}]--
			r.Volumes = slices.Delete(r.Volumes, j, j+1)
			if len(r.Volumes) == 0 {
				r.Volumes = nil
			}
		}
	}, Result{}, nil
}
