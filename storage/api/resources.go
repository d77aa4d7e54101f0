package api

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"

	linstor "github.com/LINBIT/golinstor"
	"github.com/pvehci/pvehci/ha/state"
	"github.com/pvehci/pvehci/storage/model"
	"github.com/pvehci/pvehci/storage/placement"
)

// createResources is POST .../resources with an array body (the python
// client's resource create).
func (h *Handler) createResources(w http.ResponseWriter, r *http.Request) {
	var req []resourceCreateRequest
	h.createResourcesFrom(w, r, &req, func() []resourceCreateRequest { return req }, "")
}

// createResource is POST .../resources/{node} with one object (golinstor;
// the Proxmox plugin's NVMe path).
func (h *Handler) createResource(w http.ResponseWriter, r *http.Request) {
	var req resourceCreateRequest
	h.createResourcesFrom(w, r, &req, func() []resourceCreateRequest { return []resourceCreateRequest{req} }, r.PathValue("node"))
}

func (h *Handler) createResourcesFrom(w http.ResponseWriter, r *http.Request, body any, items func() []resourceCreateRequest, pathNode string) {
	rd := r.PathValue("rd")
	var p placed
	h.mutate(w, r, change{obj: model.ObjResource, op: linstor.MaskCrt, status: http.StatusCreated, body: body, refs: refs("RscDfn", rd),
		plan: func(ctx context.Context, c *call) (func(context.Context) error, error) {
			list := items()
			if len(list) == 0 {
				return nil, badRequest(linstor.FailInvldRequest, "send at least one resource", "no resources in the request")
			}
			st, err := h.readState(ctx)
			if err != nil {
				return nil, err
			}
			d, ok := st.ResourceDefinition(rd)
			if !ok {
				return nil, notFound(linstor.FailNotFoundRscDfn, "create the resource definition first", "resource definition %s does not exist", rd)
			}
			var cmds []*state.CreateResource
			for _, item := range list {
				cmd, aerr := h.resourceCommand(st, d, item, pathNode)
				if aerr != nil {
					return nil, aerr
				}
				cmds = append(cmds, cmd)
			}
			for _, cmd := range cmds {
				if err := h.newResource(ctx, c, cmd); err != nil {
					return nil, err
				}
				c.add(created(model.ObjResource), "resource %s created on %s", rd, cmd.Node)
				p.nodes = append(p.nodes, cmd.Node)
			}
			if err := h.reconcileTieBreaker(ctx, c, rd); err != nil {
				return nil, err
			}
			return func(ctx context.Context) error {
				h.waitDevicesOrWarn(ctx, c, rd, p.nodes)
				return nil
			}, nil
		}})
}

// resourceCommand turns one ResourceCreate into a CreateResource command.
func (h *Handler) resourceCommand(st *state.State, rd model.ResourceDefinition, item resourceCreateRequest, pathNode string) (*state.CreateResource, *apiError) {
	node := item.Resource.NodeName
	if pathNode != "" {
		if node != "" && !model.SameName(node, pathNode) {
			return nil, badRequest(linstor.FailInvldNodeName, "leave resource.node_name out or make it match the path",
				"resource.node_name %q does not match node %q in the path", node, pathNode)
		}
		node = pathNode
	}
	if node == "" {
		return nil, badRequest(linstor.FailInvldNodeName, "give resource.node_name", "resource without a node")
	}
	if item.Resource.Name != "" && !model.SameName(item.Resource.Name, rd.Name) {
		return nil, badRequest(linstor.FailInvldRscName, "leave resource.name out or make it match the path",
			"resource.name %q does not match resource definition %q in the path", item.Resource.Name, rd.Name)
	}
	if aerr := checkLayers(item.LayerList); aerr != nil {
		return nil, aerr
	}
	cmd := &state.CreateResource{ResourceDefinition: rd.Name, Node: node, Kind: state.Diskful, Props: item.Resource.Props.props()}
	var extra []string
	for _, f := range upper(item.Resource.Flags) {
		switch f {
		case model.RscFlagDiskless, model.RscFlagDrbdDiskless:
			if cmd.Kind == state.Diskful {
				cmd.Kind = state.Diskless
			}
		case model.RscFlagTieBreaker:
			cmd.Kind = state.TieBreaker
		case model.RscFlagNvmeInitiator, model.RscFlagEbsInitiator:
			return nil, badRequest(linstor.FailStltDoesNotSupportLayer, "use DRBD diskless resources (flag DRBD_DISKLESS)",
				"flag %s needs a layer pvehci does not have", f)
		default:
			extra = append(extra, f)
		}
	}
	if item.DrbdClient != nil && *item.DrbdClient {
		cmd.Kind = state.Diskless
	}
	cmd.Flags = extra
	if item.DrbdNodeID != nil {
		n := int(*item.DrbdNodeID)
		cmd.NodeID = &n
	}
	for _, p := range item.DrbdTCPPorts {
		cmd.TCPPorts = append(cmd.TCPPorts, int(p))
	}
	switch {
	case item.DrbdTCPPortCount != nil:
		cmd.TCPPortCount = int(*item.DrbdTCPPortCount)
	case item.PortCount != nil:
		cmd.TCPPortCount = int(*item.PortCount)
	}
	if cmd.Kind == state.Diskful && cmd.Props[model.KeyStorPoolName] == "" {
		// No pool named: LINSTOR resolves StorPoolName through the
		// definition, group, node and controller. Where none of them
		// sets one, pick the node's best-fitting pool the way the
		// autoplacer would, rather than insisting on DfltStorPool.
		scope, err := st.ResourceScope(rd.Name, node)
		if err == nil && scope.Get(model.KeyStorPoolName) == "" {
			f := groupFilter(st, rd)
			f.NodeNameList = []string{node}
			if ch, err := placement.Place(h.placementRequest(st, rd, f, 1)); err == nil && len(ch) == 1 && !ch[0].Toggle {
				cmd.StoragePool = ch[0].Pool
			}
		}
	}
	return cmd, nil
}

func (h *Handler) modifyResource(w http.ResponseWriter, r *http.Request) {
	var req resourceModifyRequest
	rd, node := r.PathValue("rd"), r.PathValue("node")
	h.mutate(w, r, change{obj: model.ObjResource, op: linstor.MaskMod, status: http.StatusOK, body: &req, refs: refs("RscDfn", rd, "Node", node),
		plan: func(ctx context.Context, c *call) (func(context.Context) error, error) {
			if req.DrbdClient != nil {
				return nil, badRequest(linstor.FailInvldRequest, "leave drbd_client out; pvehci's diskless resources are always DRBD clients",
					"drbd_client cannot be changed")
			}
			if ch := req.change(); !ch.IsEmpty() {
				if _, err := h.apply(ctx, c, &state.SetProps{Target: rscTarget(rd, node), Change: ch}); err != nil {
					return nil, err
				}
			}
			if req.DrbdTiebreaker != nil {
				f := state.SetFlags{Target: rscTarget(rd, node)}
				if *req.DrbdTiebreaker {
					f.Set = []string{model.RscFlagTieBreaker}
				} else {
					f.Clear = []string{model.RscFlagTieBreaker}
				}
				if _, err := h.apply(ctx, c, &f); err != nil {
					return nil, err
				}
			}
			c.add(modified(model.ObjResource), "resource %s on %s modified", rd, node)
			return nil, nil
		}})
}

// deleteResource deletes one resource, with LINSTOR's tie-breaker rules:
// a diskless resource that the definition now needs as its tie-breaker is
// kept as one; a tie-breaker is kept with keep_tiebreaker=true, and
// deleting it without that turns the automatic tie-breaker off for the
// definition. A missing resource is a warning, not an error, so that the
// Proxmox plugin's double deactivate succeeds.
func (h *Handler) deleteResource(w http.ResponseWriter, r *http.Request) {
	rdName, node := r.PathValue("rd"), r.PathValue("node")
	h.mutate(w, r, change{obj: model.ObjResource, op: linstor.MaskDel, status: http.StatusOK, refs: refs("RscDfn", rdName, "Node", node),
		plan: func(ctx context.Context, c *call) (func(context.Context) error, error) {
			keep := false
			if s := r.URL.Query().Get("keep_tiebreaker"); s != "" {
				b, err := strconv.ParseBool(s)
				if err != nil {
					return nil, badRequest(linstor.FailInvldRequest, "use keep_tiebreaker=true or false", "keep_tiebreaker=%q is not a boolean", s)
				}
				keep = b
			}
			st, err := h.readState(ctx)
			if err != nil {
				return nil, err
			}
			res, ok := st.Resource(rdName, node)
			if !ok {
				c.add(linstor.WarnNotFound, "resource %s on node %s does not exist; nothing to delete", rdName, node)
				return nil, nil
			}
			if res.Flags.Has(model.RscFlagDelete) {
				return func(ctx context.Context) error {
					_, err := h.awaitResourceGone(ctx, c, rdName, node)
					return err
				}, nil
			}
			if aerr := h.checkNotInUse(ctx, rdName, node, "delete"); aerr != nil {
				return nil, aerr
			}
			rdTarget := state.Target{Kind: model.ObjResourceDefinition, ResourceDefinition: rdName}
			if res.TieBreaker() {
				if keep {
					// Keeping it also re-enables the automatic tie-breaker
					// a previous plain delete switched off.
					if d, ok := st.ResourceDefinition(rdName); ok && d.Props[model.KeyAutoAddQuorumTiebreaker] != "" &&
						!strings.EqualFold(d.Props[model.KeyAutoAddQuorumTiebreaker], "true") {
						if _, err := h.apply(ctx, c, &state.SetProps{Target: rdTarget,
							Change: model.PropsChange{Delete: []string{model.KeyAutoAddQuorumTiebreaker}}}); err != nil {
							return nil, err
						}
					}
					c.add(linstor.InfoTieBreakerTakeover, "resource %s on %s is kept as the tie-breaker", rdName, node)
					return nil, nil
				}
				if _, err := h.apply(ctx, c, &state.SetProps{Target: rdTarget,
					Change: model.PropsChange{Set: model.Props{model.KeyAutoAddQuorumTiebreaker: "False"}}}); err != nil {
					return nil, err
				}
				c.add(linstor.InfoPropSet, "automatic tie-breaker disabled for %s, since its tie-breaker was deleted by request", rdName)
			} else if res.Diskless() && h.takeOverAsTieBreaker(st, res) {
				if _, err := h.apply(ctx, c, &state.SetFlags{Target: rscTarget(rdName, node), Set: []string{model.RscFlagTieBreaker}}); err != nil {
					return nil, err
				}
				c.add(linstor.InfoTieBreakerTakeover, "resource %s on %s is kept as the tie-breaker %s needs for quorum", rdName, node, rdName)
				return nil, nil
			}
			if aerr := h.checkNotLastUpToDate(st, res, "delete"); aerr != nil {
				return nil, aerr
			}
			if _, err := h.apply(ctx, c, &state.SetFlags{Target: rscTarget(rdName, node), Set: []string{model.RscFlagDelete}}); err != nil {
				return nil, err
			}
			if err := h.reconcileTieBreaker(ctx, c, rdName); err != nil {
				return nil, err
			}
			return func(ctx context.Context) error {
				if done, err := h.awaitResourceGone(ctx, c, rdName, node); err != nil || !done {
					return err
				}
				c.add(deleted(model.ObjResource), "resource %s on %s deleted", rdName, node)
				return nil
			}, nil
		}})
}

// takeOverAsTieBreaker reports whether deleting diskless resource res
// would leave its definition wanting a tie-breaker it does not have.
func (h *Handler) takeOverAsTieBreaker(st *state.State, res model.Resource) bool {
	var after []model.Resource
	for _, o := range st.Resources(res.Name) {
		if model.SameName(o.Node, res.Node) {
			continue
		}
		if o.TieBreaker() && !o.Flags.Has(model.RscFlagDelete) {
			return false
		}
		after = append(after, o)
	}
	return placement.WantTieBreaker(members(after), tieBreakerEnabled(st, res.Name))
}

// makeAvailable is LINSTOR's make-available (research linstor-proxmox.md
// §3.11): keep what exists, turn a tie-breaker into a wanted diskless
// resource, give a diskless resource a disk when asked, cancel a pending
// delete; create a diskless resource when a diskful peer exists, else the
// first diskful one. It answers once the device exists on the node.
func (h *Handler) makeAvailable(w http.ResponseWriter, r *http.Request) {
	var req makeAvailableRequest
	rdName, node := r.PathValue("rd"), r.PathValue("node")
	h.mutate(w, r, change{obj: model.ObjResource, op: linstor.MaskCrt, status: http.StatusOK, body: &req, allowEmpty: true,
		refs: refs("RscDfn", rdName, "Node", node),
		plan: func(ctx context.Context, c *call) (func(context.Context) error, error) {
			if aerr := checkLayers(req.LayerList); aerr != nil {
				return nil, aerr
			}
			st, err := h.readState(ctx)
			if err != nil {
				return nil, err
			}
			rd, ok := st.ResourceDefinition(rdName)
			if !ok {
				return nil, notFound(linstor.FailNotFoundRscDfn, "create the resource definition first", "resource definition %s does not exist", rdName)
			}
			if _, ok := st.Node(node); !ok {
				return nil, notFound(linstor.FailNotFoundNode, "register the node first (its name must be the PVE node name)", "node %s does not exist", node)
			}
			if err := h.makeAvailablePlan(ctx, c, st, rd, node, bool(req.Diskful)); err != nil {
				return nil, err
			}
			if err := h.reconcileTieBreaker(ctx, c, rdName); err != nil {
				return nil, err
			}
			return func(ctx context.Context) error {
				if errs := h.waitDevices(ctx, rdName, []string{node}); errs[node] != nil {
					return errorf(http.StatusInternalServerError, linstor.FailNotConnected,
						"check the pvehci daemon on "+node+"; the resource is recorded, and repeating the call is safe",
						"device of %s on %s did not appear within %s: %v", rdName, node, h.opts.DeviceWaitTimeout, errs[node])
				}
				return nil
			}, nil
		}})
}

func (h *Handler) makeAvailablePlan(ctx context.Context, c *call, st *state.State, rd model.ResourceDefinition, node string, diskful bool) error {
	target := rscTarget(rd.Name, node)
	if res, ok := st.Resource(rd.Name, node); ok {
		if res.Flags.Has(model.RscFlagDelete) {
			if _, err := h.apply(ctx, c, &state.SetFlags{Target: target, Clear: []string{model.RscFlagDelete}}); err != nil {
				return err
			}
			c.add(modified(model.ObjResource), "pending deletion of %s on %s cancelled", rd.Name, node)
		}
		if res.TieBreaker() {
			if _, err := h.apply(ctx, c, &state.SetFlags{Target: target, Clear: []string{model.RscFlagTieBreaker}}); err != nil {
				return err
			}
			c.add(modified(model.ObjResource), "tie-breaker %s on %s is now a diskless resource in use", rd.Name, node)
		}
		if !res.Diskless() || !diskful {
			c.add(linstor.WarnRscAlreadyDeployed, "resource %s is already available on %s", rd.Name, node)
			return nil
		}
		pool, err := h.poolOnNode(st, rd, node)
		if err != nil {
			return err
		}
		if _, err := h.apply(ctx, c, &state.ToggleDisk{ResourceDefinition: rd.Name, Node: node, Diskful: true, StoragePool: pool,
			DiskfulBy: model.DiskfulByMakeAvailable}); err != nil {
			return err
		}
		c.add(modified(model.ObjResource), "resource %s on %s gets a disk in storage pool %s", rd.Name, node, pool)
		return nil
	}
	peer := false
	for _, o := range st.Resources(rd.Name) {
		if !o.Diskless() && !o.Flags.Has(model.RscFlagDelete) {
			peer = true
		}
	}
	if peer && !diskful {
		pool := ""
		req := h.placementRequest(st, rd, model.SelectFilter{NodeNameList: []string{node}}, 0)
		req.Filter.StoragePoolDisklessList = groupFilter(st, rd).StoragePoolDisklessList
		if chs := placement.DisklessOnRemaining(req); len(chs) == 1 {
			pool = chs[0].Pool
		}
		if err := h.newResource(ctx, c, &state.CreateResource{ResourceDefinition: rd.Name, Node: node, Kind: state.Diskless, StoragePool: pool}); err != nil {
			return err
		}
		c.add(created(model.ObjResource), "diskless resource %s created on %s", rd.Name, node)
		return nil
	}
	pool, err := h.poolOnNode(st, rd, node)
	if err != nil {
		return err
	}
	if err := h.newResource(ctx, c, &state.CreateResource{ResourceDefinition: rd.Name, Node: node, Kind: state.Diskful, StoragePool: pool,
		Props: model.Props{model.KeyDiskfulBy: model.DiskfulByMakeAvailable}}); err != nil {
		return err
	}
	c.add(created(model.ObjResource), "resource %s created on %s in storage pool %s", rd.Name, node, pool)
	return nil
}

// poolOnNode picks a diskful pool for rd on node with the autoplacer
// restricted to that node and the group's filter.
func (h *Handler) poolOnNode(st *state.State, rd model.ResourceDefinition, node string) (string, error) {
	f := groupFilter(st, rd)
	f.NodeNameList = []string{node}
	// replicas_on_same/different relate replicas to each other; for one
	// named node the operator has already decided.
	f.ReplicasOnSame, f.ReplicasOnDifferent, f.XReplicasOnDifferentMap = nil, nil, nil
	chs, err := placement.Place(h.placementRequest(st, rd, f, 1))
	if err != nil {
		return "", err
	}
	return chs[0].Pool, nil
}

func (h *Handler) toggleDisk(w http.ResponseWriter, r *http.Request) {
	var req toggleDiskRequest
	h.toggle(w, r, &req, func() (bool, string, *apiError) {
		if req.MigrateFrom != "" {
			return false, "", badRequest(linstor.FailInvldRequest, "toggle the disk on, wait for UpToDate, then delete the old replica",
				"migrate_from is not supported by pvehci")
		}
		if aerr := checkLayers(req.LayerList); aerr != nil {
			return false, "", aerr
		}
		switch strings.ToUpper(req.Operation) {
		case "INTO_DRBD_DISKFUL":
			return true, req.StoragePool, nil
		case "INTO_DRBD_DISKLESS", "INTO_DRBD_CLIENT":
			return false, req.StoragePool, nil
		}
		return false, "", badRequest(linstor.FailInvldRequest, "use INTO_DRBD_DISKFUL, INTO_DRBD_DISKLESS or INTO_DRBD_CLIENT",
			"toggle-disk operation %q is unknown", req.Operation)
	})
}

func (h *Handler) toggleDiskful(w http.ResponseWriter, r *http.Request) {
	var req struct {
		LayerList []string `json:"layer_list"`
	}
	h.toggle(w, r, &req, func() (bool, string, *apiError) { return true, r.PathValue("pool"), checkLayers(req.LayerList) })
}

func (h *Handler) toggleDiskless(w http.ResponseWriter, r *http.Request) {
	h.toggle(w, r, nil, func() (bool, string, *apiError) { return false, r.PathValue("pool"), nil })
}

// toggle gives a resource a disk or takes it away and waits until the
// satellite has done it.
func (h *Handler) toggle(w http.ResponseWriter, r *http.Request, body any, parse func() (diskful bool, pool string, aerr *apiError)) {
	rdName, node := r.PathValue("rd"), r.PathValue("node")
	h.mutate(w, r, change{obj: model.ObjResource, op: linstor.MaskMod, status: http.StatusOK, body: body, allowEmpty: true,
		refs: refs("RscDfn", rdName, "Node", node),
		plan: func(ctx context.Context, c *call) (func(context.Context) error, error) {
			diskful, pool, aerr := parse()
			if aerr != nil {
				return nil, aerr
			}
			st, err := h.readState(ctx)
			if err != nil {
				return nil, err
			}
			res, ok := st.Resource(rdName, node)
			if !ok {
				return nil, notFound(linstor.FailNotFoundRsc, "create the resource first", "resource %s on node %s does not exist", rdName, node)
			}
			rd, _ := st.ResourceDefinition(rdName)
			if diskful && res.Diskless() && pool == "" {
				if pool, err = h.poolOnNode(st, rd, node); err != nil {
					return nil, err
				}
			}
			if !diskful && !res.Diskless() {
				if aerr := h.checkNotLastUpToDate(st, res, "remove the disk of"); aerr != nil {
					return nil, aerr
				}
			}
			if _, err := h.apply(ctx, c, &state.ToggleDisk{ResourceDefinition: rdName, Node: node, Diskful: diskful, StoragePool: pool}); err != nil {
				return nil, err
			}
			c.add(modified(model.ObjResource), "disk of resource %s on %s toggled", rdName, node)
			if err := h.reconcileTieBreaker(ctx, c, rdName); err != nil {
				return nil, err
			}
			return func(ctx context.Context) error {
				_, err := h.awaitOrWarn(ctx, c, "toggle-disk of "+rdName+" on "+node, func(st *state.State) (bool, error) {
					res, ok := st.Resource(rdName, node)
					return !ok || (!res.Flags.Has(model.RscFlagDiskAddRequested) && !res.Flags.Has(model.RscFlagDiskRemoveRequested) &&
						!res.Flags.Has(model.RscFlagDiskAdding) && !res.Flags.Has(model.RscFlagDiskRemoving)), nil
				})
				return err
			}, nil
		}})
}

// autoplace places rd by its group's filter merged with the request's.
// The Proxmox plugin sends {} after a local make-available and requires
// 201 even when nothing is left to place.
func (h *Handler) autoplace(w http.ResponseWriter, r *http.Request) {
	var req autoplaceRequest
	rdName := r.PathValue("rd")
	var p placed
	h.mutate(w, r, change{obj: model.ObjResource, op: linstor.MaskCrt, status: http.StatusCreated, body: &req, allowEmpty: true,
		refs: refs("RscDfn", rdName),
		plan: func(ctx context.Context, c *call) (func(context.Context) error, error) {
			if aerr := req.SelectFilter.check(); aerr != nil {
				return nil, aerr
			}
			if aerr := checkLayers(req.LayerList); aerr != nil {
				return nil, aerr
			}
			st, err := h.readState(ctx)
			if err != nil {
				return nil, err
			}
			rd, ok := st.ResourceDefinition(rdName)
			if !ok {
				return nil, notFound(linstor.FailNotFoundRscDfn, "create the resource definition first", "resource definition %s does not exist", rdName)
			}
			f := req.SelectFilter.apply(groupFilter(st, rd))
			if req.DisklessOnRemaining != nil && bool(*req.DisklessOnRemaining) {
				f.DisklessOnRemaining = true
			}
			if err := h.placeReplicas(ctx, c, rdName, autoplaceOpts{filter: f, requirePlaceCount: true}, &p); err != nil {
				return nil, err
			}
			return func(ctx context.Context) error {
				h.waitDevicesOrWarn(ctx, c, rdName, slices.Compact(p.nodes))
				return nil
			}, nil
		}})
}
