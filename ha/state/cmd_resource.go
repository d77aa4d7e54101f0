package state

import (
	"fmt"
	"slices"
	"strconv"

	linstor "github.com/LINBIT/golinstor"
	"github.com/pvehci/pvehci/storage/model"
)

// ResourceKind is what a new resource is for DRBD.
type ResourceKind string

// Resource kinds.
const (
	Diskful    ResourceKind = "diskful"    // holds a replica
	Diskless   ResourceKind = "diskless"   // a DRBD client: DISKLESS, DRBD_DISKLESS
	TieBreaker ResourceKind = "tiebreaker" // diskless, only a quorum vote: also TIE_BREAKER
)

// MaxTCPPortsPerResource bounds drbd_tcp_port_count; LINSTOR renders one
// port per resource today (ConfFileBuilder "currently we only consider one
// port"), more exist for future multi-path use.
const MaxTCPPortsPerResource = 8

// CreateResource places a resource definition on a node. It allocates the
// resource's DRBD node id (lowest free 0-31 within the definition, or the
// requested one) and TCP ports (per node, see pickPorts), and adds a volume
// per volume definition in the resource's storage pool.
type CreateResource struct {
	ResourceDefinition string       `json:"resource_definition"`
	Node               string       `json:"node"`
	Kind               ResourceKind `json:"kind"`
	// StoragePool for the volumes; empty means the StorPoolName property
	// (R > RD > RG > N > C), else DfltStorPool, or DfltDisklessStorPool for
	// diskless kinds. When given it is recorded as the resource's
	// StorPoolName property, as LINSTOR does.
	StoragePool string      `json:"storage_pool,omitempty"`
	Flags       []string    `json:"flags,omitempty"` // further flags, e.g. NVME_INITIATOR
	Props       model.Props `json:"props,omitempty"`
	NodeID      *int        `json:"node_id,omitempty"`
	// TCPPorts requests exact ports; otherwise TCPPortCount ports (default
	// 1) are picked.
	TCPPorts        []int  `json:"tcp_ports,omitempty"`
	TCPPortCount    int    `json:"tcp_port_count,omitempty"`
	PeerSlots       int    `json:"peer_slots,omitempty"`
	UUID            string `json:"uuid,omitempty"`
	CreateTimestamp int64  `json:"create_timestamp,omitempty"`
}

// Type implements Command.
func (*CreateResource) Type() string { return "CreateResource" }

func (c *CreateResource) prepare(s *State) (func(), Result, *Error) {
	rd, err := s.definition(c.ResourceDefinition)
	if err != nil {
		return nil, Result{}, err
	}
	n, err := s.node(c.Node)
	if err != nil {
		return nil, Result{}, err
	}
	name := rscName(rd.Name, n.Name)
	rk, nk := model.Key(rd.Name), model.Key(n.Name)
	if _, ok := s.rscs[rk][nk]; ok {
		return nil, Result{}, errExists(model.ObjResource, name)
	}
	if !n.Type.HostsResources() {
		return nil, Result{}, newErr(Invalid, model.ObjResource, name, linstor.FailInvldNodeType,
			"place resources on satellite or combined nodes", "node %s is a %s node and runs no satellite", n.Name, n.Type.LinstorName())
	}
	if n.Flags.Has(model.NodeFlagDelete) || n.Flags.Has(model.NodeFlagEvicted) {
		return nil, Result{}, newErr(Invalid, model.ObjResource, name, linstor.FailInvldRequest,
			"choose another node", "node %s is being deleted or was evicted", n.Name)
	}
	flags, err := resourceFlags(name, c.Kind, c.Flags)
	if err != nil {
		return nil, Result{}, err
	}
	if err := checkProps(model.ObjResource, name, c.Props); err != nil {
		return nil, Result{}, err
	}
	if err := checkUUID(model.ObjResource, name, c.UUID); err != nil {
		return nil, Result{}, err
	}
	props := c.Props.Clone()
	if c.StoragePool != "" {
		if props == nil {
			props = model.Props{}
		}
		props[model.KeyStorPoolName] = c.StoragePool
	}
	r := &model.Resource{Name: rd.Name, Node: n.Name, Props: props, Flags: flags, UUID: c.UUID, CreateTimestamp: c.CreateTimestamp}
	for _, vd := range rd.VolumeDefinitions {
		pool, err := s.poolForNewVolume(rd, r)
		if err != nil {
			return nil, Result{}, err
		}
		r.Volumes = append(r.Volumes, model.Volume{VolumeNumber: vd.VolumeNumber, StoragePool: pool})
	}
	if len(rd.VolumeDefinitions) == 0 {
		// Check the pool now rather than when the first volume arrives.
		if _, err := s.poolForNewVolume(rd, r); err != nil {
			return nil, Result{}, err
		}
	}
	if r.NodeID, err = s.pickNodeID(rd, name, c.NodeID); err != nil {
		return nil, Result{}, err
	}
	if r.PeerSlots, err = s.peerSlots(rd, name, c.PeerSlots); err != nil {
		return nil, Result{}, err
	}
	if r.TCPPorts, err = s.pickPorts(rd, n, name, c.TCPPorts, c.TCPPortCount); err != nil {
		return nil, Result{}, err
	}
	res := Result{Allocated: []Allocation{{Kind: AllocNodeID, Resource: rd.Name, Node: n.Name, Number: r.NodeID}}}
	for _, p := range r.TCPPorts {
		res.Allocated = append(res.Allocated, Allocation{Kind: AllocTCPPort, Resource: rd.Name, Node: n.Name, Number: p})
	}
	return func() {
		if s.rscs[rk] == nil {
			s.rscs[rk] = map[string]*model.Resource{}
		}
		s.rscs[rk][nk] = r
		s.indexResource(r, +1)
	}, res, nil
}

// resourceFlags turns a kind and extra flags into the resource's flags.
func resourceFlags(name string, kind ResourceKind, extra []string) (model.Flags, *Error) {
	if err := model.ValidateFlags(model.ObjResource, extra); err != nil {
		return nil, errInvalid(model.ObjResource, name, linstor.FailInvldRequest, err)
	}
	var base []string
	switch kind {
	case Diskful, "":
		for _, f := range extra {
			if f == model.RscFlagDiskless || f == model.RscFlagDrbdDiskless || f == model.RscFlagTieBreaker {
				return nil, newErr(Invalid, model.ObjResource, name, linstor.FailInvldRequest,
					"ask for kind diskless or tiebreaker instead of setting the flag", "a diskful resource cannot have flag %s", f)
			}
		}
	case Diskless:
		base = []string{model.RscFlagDiskless, model.RscFlagDrbdDiskless}
	case TieBreaker:
		base = []string{model.RscFlagDiskless, model.RscFlagDrbdDiskless, model.RscFlagTieBreaker}
	default:
		return nil, newErr(Invalid, model.ObjResource, name, linstor.FailInvldRequest,
			"use diskful, diskless or tiebreaker", "resource kind %q is unknown", kind)
	}
	return model.Flags(nil).With(base...).With(extra...), nil
}

// poolForNewVolume decides which storage pool a new volume of r goes to and
// checks it exists on r's node with the right kind. A resource that already
// has volumes keeps using its first volume's pool.
func (s *State) poolForNewVolume(rd *model.ResourceDefinition, r *model.Resource) (string, *Error) {
	name := rscName(r.Name, r.Node)
	diskless := r.Diskless()
	pool := ""
	switch {
	case len(r.Volumes) > 0:
		pool = r.Volumes[0].StoragePool
	case diskless:
		// An inherited StorPoolName names the group's diskful pool; a
		// diskless resource takes only its own.
		pool = r.Props[model.KeyStorPoolName]
	default:
		pool = s.resourceScope(rd, r).Get(model.KeyStorPoolName)
	}
	if pool == "" {
		pool = model.DefaultStoragePool
		if diskless {
			pool = model.DefaultDisklessStoragePool
		}
	}
	p, ok := s.pools[poolKey{model.Key(r.Node), model.Key(pool)}]
	if !ok {
		return "", newErr(NotFound, model.ObjStoragePool, pool+" on "+r.Node, linstor.FailNotFoundStorPool,
			"create the storage pool on that node, or name an existing one",
			"resource %s needs storage pool %s, which node %s does not have", name, pool, r.Node)
	}
	if p.ProviderKind.Diskless() != diskless {
		want := "a diskful"
		if diskless {
			want = "a diskless"
		}
		return "", newErr(Invalid, model.ObjResource, name, linstor.FailInvldStorDriver,
			"name a storage pool of the matching kind", "resource %s needs %s storage pool, but %s on %s is %s", name, want, p.Name, p.Node, p.ProviderKind)
	}
	return p.Name, nil
}

// resourceScope is the inheritance scope of a resource that may not be in
// the state yet.
func (s *State) resourceScope(rd *model.ResourceDefinition, r *model.Resource) model.Scope {
	return s.scopeFor(rd, r, r.Node, -1)
}

// pickNodeID checks a requested DRBD node id or picks the lowest one the
// definition's resources do not hold (research §2: RscDrbdLayerHelper.getNodeId).
func (s *State) pickNodeID(rd *model.ResourceDefinition, name string, want *int) (int, *Error) {
	var held uint64
	for _, r := range s.rscs[model.Key(rd.Name)] {
		held |= 1 << uint(r.NodeID)
	}
	limits := model.NodeIDLimits()
	if want != nil {
		id := *want
		if !limits.Contains(id) {
			return 0, newErr(Invalid, model.ObjResource, name, linstor.FailInvldNodeId,
				"use a node id from 0 to 31, or none to let pvehci choose", "DRBD node id %d is out of range", id)
		}
		if held&(1<<uint(id)) != 0 {
			return 0, newErr(Invalid, model.ObjResource, name, linstor.FailInvldNodeId,
				"choose another node id, or none to let pvehci choose", "DRBD node id %d is already used by another resource of %s", id, rd.Name)
		}
		return id, nil
	}
	for id := limits.Min; id <= limits.Max; id++ {
		if held&(1<<uint(id)) == 0 {
			return id, nil
		}
	}
	return 0, newErr(Exhausted, model.ObjResource, name, linstor.FailPoolExhaustedNodeId,
		"DRBD 9 allows 32 nodes per resource; delete a resource of it first", "all 32 DRBD node ids of %s are in use", rd.Name)
}

// peerSlots picks the DRBD peer slots of a new resource: the request, else
// the definition's, else the group's, else PeerSlotsNewResource (RD > RG >
// C), else 7.
func (s *State) peerSlots(rd *model.ResourceDefinition, name string, want int) (int, *Error) {
	if err := checkPeerSlots(model.ObjResource, name, want); err != nil {
		return 0, err
	}
	if want > 0 {
		return want, nil
	}
	if rd.Drbd.PeerSlots > 0 {
		return rd.Drbd.PeerSlots, nil
	}
	if g := s.rgs[model.Key(rd.ResourceGroup)]; g != nil && g.PeerSlots > 0 {
		return g.PeerSlots, nil
	}
	if v := s.scopeFor(rd, nil, "", -1).Get(model.KeyPeerSlotsNewResource); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n >= 1 && n <= model.MaxPeerSlots {
			return n, nil
		}
	}
	return model.DefaultPeerSlots, nil
}

// portRange is a node's TcpPortAutoRange: node > controller > 7000-7999.
func (s *State) portRange(n *model.Node) (model.Range, *Error) {
	v, where := n.Props[model.KeyTcpPortAutoRange], "node "+n.Name
	if v == "" {
		v, where = s.ctrl[model.KeyTcpPortAutoRange], "controller"
	}
	if v == "" {
		return model.DefaultTCPPortRange(), nil
	}
	r, e := model.ParseRange(v, model.TCPPortLimits())
	if e != nil {
		return r, errInvalid(model.ObjNode, n.Name, linstor.FailInvldProp, fmt.Errorf("%s of %s: %w", model.KeyTcpPortAutoRange, where, e))
	}
	return r, nil
}

// pickPorts checks requested ports or picks count of them on node n. Ports
// are held per resource and unique per node, as in LINSTOR since 1.31.2
// (research §2). Preference order, as DrbdRscData.initPorts: the
// definition's preferred port, then ports the definition's other resources
// use (lowest first, so that usually all replicas share one port number),
// then the lowest free port of the node's range. Preferred and peer ports
// are taken only when they lie in the node's range and are free there.
func (s *State) pickPorts(rd *model.ResourceDefinition, n *model.Node, name string, want []int, count int) ([]int, *Error) {
	held := s.idx.ports[model.Key(n.Name)]
	if held == nil {
		held = &numberSet{}
	}
	if len(want) > 0 {
		if len(want) > MaxTCPPortsPerResource {
			return nil, newErr(Invalid, model.ObjResource, name, linstor.FailInvldTcpPort,
				fmt.Sprintf("ask for at most %d ports", MaxTCPPortsPerResource), "%d TCP ports requested", len(want))
		}
		seen := map[int]bool{}
		for _, p := range want {
			if !model.TCPPortLimits().Contains(p) {
				return nil, newErr(Invalid, model.ObjResource, name, linstor.FailInvldTcpPort,
					"use TCP ports from 1 to 65535", "TCP port %d is out of range", p)
			}
			if held.has(p) || seen[p] {
				return nil, newErr(Invalid, model.ObjResource, name, linstor.FailInvldTcpPort,
					"choose another port, or none to let pvehci choose", "TCP port %d is already used on node %s", p, n.Name)
			}
			seen[p] = true
		}
		return slices.Sorted(slices.Values(want)), nil
	}
	if count == 0 {
		count = 1
	}
	if count < 0 || count > MaxTCPPortsPerResource {
		return nil, newErr(Invalid, model.ObjResource, name, linstor.FailInvldTcpPort,
			fmt.Sprintf("ask for 1 to %d ports", MaxTCPPortsPerResource), "TCP port count %d is out of range", count)
	}
	r, err := s.portRange(n)
	if err != nil {
		return nil, err
	}
	var prefs []int
	if rd.Drbd.Port != 0 {
		prefs = append(prefs, rd.Drbd.Port)
	}
	var peerPorts []int
	for _, peer := range s.rscs[model.Key(rd.Name)] {
		peerPorts = append(peerPorts, peer.TCPPorts...)
	}
	slices.Sort(peerPorts)
	prefs = append(prefs, peerPorts...)
	picked := map[int]bool{}
	var out []int
	for _, p := range prefs {
		if len(out) == count {
			break
		}
		if r.Contains(p) && !held.has(p) && !picked[p] {
			picked[p] = true
			out = append(out, p)
		}
	}
	for len(out) < count {
		p, ok := held.lowestFree(r, picked)
		if !ok {
			return nil, newErr(Exhausted, model.ObjResource, name, linstor.FailPoolExhaustedTcpPort,
				fmt.Sprintf("widen %s (now %s) on the node or the controller, or delete unused resources on %s", model.KeyTcpPortAutoRange, r, n.Name),
				"no TCP port is free on node %s in %s", n.Name, r)
		}
		picked[p] = true
		out = append(out, p)
	}
	slices.Sort(out)
	return out, nil
}

// DeleteResource removes a resource, freeing its node id and ports. It
// refuses to remove the last diskful resource while diskless ones remain
// (LINSTOR: "Last resource … still has diskless resources attached"): they
// would be left without data. The controller runs DRBD's two-phase delete
// first, with the DELETE flags set through SetFlags.
type DeleteResource struct {
	ResourceDefinition string `json:"resource_definition"`
	Node               string `json:"node"`
}

// Type implements Command.
func (*DeleteResource) Type() string { return "DeleteResource" }

func (c *DeleteResource) prepare(s *State) (func(), Result, *Error) {
	r, err := s.resource(c.ResourceDefinition, c.Node)
	if err != nil {
		return nil, Result{}, err
	}
	if err := s.checkNotLastDiskful(r, "delete"); err != nil {
		return nil, Result{}, err
	}
	rk, nk := model.Key(r.Name), model.Key(r.Node)
	return func() {
		s.indexResource(r, -1)
		delete(s.rscs[rk], nk)
		if len(s.rscs[rk]) == 0 {
			delete(s.rscs, rk)
		}
	}, Result{}, nil
}

// checkNotLastDiskful refuses to take the last diskful replica away from a
// definition that still has diskless resources.
func (s *State) checkNotLastDiskful(r *model.Resource, verb string) *Error {
	if r.Diskless() {
		return nil
	}
	diskful, diskless := 0, 0
	for _, o := range s.rscs[model.Key(r.Name)] {
		switch {
		case o.Flags.Has(model.RscFlagDelete):
		case o.Diskless():
			diskless++
		default:
			diskful++
		}
	}
	if diskful <= 1 && diskless > 0 && !r.Flags.Has(model.RscFlagDelete) {
		return errInUse(model.ObjResource, rscName(r.Name, r.Node), "delete the diskless resources first, or add another diskful replica",
			"cannot %s the last diskful resource of %s while %d diskless resource(s) still use it", verb, r.Name, diskless)
	}
	return nil
}

// ToggleDisk gives a diskless resource a disk or takes a diskful
// resource's disk away, keeping its node id and ports. It sets
// DISK_ADD_REQUESTED or DISK_REMOVE_REQUESTED; the controller moves the
// resource through the rest of LINSTOR's toggle-disk states with SetFlags.
type ToggleDisk struct {
	ResourceDefinition string `json:"resource_definition"`
	Node               string `json:"node"`
	Diskful            bool   `json:"diskful"`
	// StoragePool for the volumes; empty means as for CreateResource,
	// except that a StorPoolName property on the resource itself is
	// dropped, since it names a pool of the other kind.
	StoragePool string `json:"storage_pool,omitempty"`
	// DiskfulBy is recorded in the DiskfulBy property when a disk is
	// added: user (default), auto-placer, auto-diskful or make-available.
	DiskfulBy string `json:"diskful_by,omitempty"`
}

// Type implements Command.
func (*ToggleDisk) Type() string { return "ToggleDisk" }

func (c *ToggleDisk) prepare(s *State) (func(), Result, *Error) {
	r, err := s.resource(c.ResourceDefinition, c.Node)
	if err != nil {
		return nil, Result{}, err
	}
	rd := s.rds[model.Key(r.Name)]
	name := rscName(r.Name, r.Node)
	if c.Diskful == !r.Diskless() {
		code := uint64(linstor.WarnRscAlreadyHasDisk)
		state := "has a disk"
		if !c.Diskful {
			code, state = linstor.WarnRscAlreadyDiskless, "is diskless"
		}
		return func() {}, Result{Warnings: []Warning{{Code: code, Message: fmt.Sprintf("resource %s already %s", name, state)}}}, nil
	}
	next := r.Clone()
	if c.Diskful {
		by := c.DiskfulBy
		if by == "" {
			by = model.DiskfulByUser
		}
		if !slices.Contains([]string{model.DiskfulByUser, model.DiskfulByAutoPlacer, model.DiskfulByAutoDiskful, model.DiskfulByMakeAvailable}, by) {
			return nil, Result{}, newErr(Invalid, model.ObjResource, name, linstor.FailInvldRequest,
				"use user, auto-placer, auto-diskful or make-available", "diskful_by %q is unknown", by)
		}
		next.Flags = next.Flags.Without(model.RscFlagDiskless, model.RscFlagDrbdDiskless, model.RscFlagTieBreaker).With(model.RscFlagDiskAddRequested)
		if next.Props == nil {
			next.Props = model.Props{}
		}
		next.Props[model.KeyDiskfulBy] = by
	} else {
		if err := s.checkNotLastDiskful(r, "remove the disk of"); err != nil {
			return nil, Result{}, err
		}
		next.Flags = next.Flags.With(model.RscFlagDiskless, model.RscFlagDrbdDiskless, model.RscFlagDiskRemoveRequested)
		delete(next.Props, model.KeyDiskfulBy)
		next.Props = next.Props.Clone()
	}
	// Pick the pool as for a new resource: the current volumes' pool is of
	// the wrong kind now.
	if c.StoragePool != "" {
		if next.Props == nil {
			next.Props = model.Props{}
		}
		next.Props[model.KeyStorPoolName] = c.StoragePool
	} else if p := next.Props[model.KeyStorPoolName]; p != "" {
		// A pool remembered for the old kind does not fit the new one.
		delete(next.Props, model.KeyStorPoolName)
	}
	probe := next
	probe.Volumes = nil
	pool, err := s.poolForNewVolume(rd, &probe)
	if err != nil {
		return nil, Result{}, err
	}
	for i := range next.Volumes {
		next.Volumes[i].StoragePool = pool
	}
	return func() {
		s.indexResource(r, -1)
		*r = next
		s.indexResource(r, +1)
	}, Result{}, nil
}
