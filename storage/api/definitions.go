package api

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sync"

	linstor "github.com/LINBIT/golinstor"
	"github.com/pvehci/pvehci/ha/state"
	"github.com/pvehci/pvehci/storage/model"
	"github.com/pvehci/pvehci/storage/placement"
)

func (h *Handler) createDefinition(w http.ResponseWriter, r *http.Request) {
	var req definitionCreateRequest
	h.mutate(w, r, change{obj: model.ObjResourceDefinition, op: linstor.MaskCrt, status: http.StatusCreated, body: &req,
		plan: func(ctx context.Context, c *call) (func(context.Context) error, error) {
			body := req.ResourceDefinition
			c.refs = refs("RscDfn", body.Name)
			if aerr := checkLayers(req.LayerList); aerr != nil {
				return nil, aerr
			}
			secret := req.DrbdSecret
			if secret == "" {
				var err error
				if secret, err = h.newSecret(); err != nil {
					return nil, err
				}
			}
			cmd := &state.CreateResourceDefinition{Name: body.Name, ExternalName: body.ExternalName, ResourceGroup: body.ResourceGroupName,
				Props: body.Props.props(), LayerStack: upper(req.LayerList), DrbdSecret: secret, DrbdTransport: req.DrbdTransportType}
			if len(cmd.LayerStack) == 0 {
				cmd.LayerStack = nil
			}
			if req.DrbdPort != nil {
				cmd.DrbdPort = int(*req.DrbdPort)
			}
			if req.DrbdPeerSlots != nil {
				cmd.DrbdPeerSlots = int(*req.DrbdPeerSlots)
			}
			var err error
			if cmd.UUID, err = h.newUUID(); err != nil {
				return nil, err
			}
			for _, vd := range body.VolumeDefinitions {
				nvd, err := h.newVolumeDefinition(vd, nil)
				if err != nil {
					return nil, err
				}
				cmd.VolumeDefinitions = append(cmd.VolumeDefinitions, nvd)
			}
			if _, err := h.apply(ctx, c, cmd); err != nil {
				return nil, err
			}
			c.add(created(model.ObjResourceDefinition), "resource definition %s created", body.Name)
			return nil, nil
		}})
}

// newVolumeDefinition turns a request's volume definition into a state
// one, with a fresh UUID.
func (h *Handler) newVolumeDefinition(b volumeDefinitionBody, minor *flexInt) (state.NewVolumeDefinition, error) {
	out := state.NewVolumeDefinition{SizeKiB: int64(b.SizeKiB), Props: b.Props.props(), Flags: upper(b.Flags)}
	if len(out.Flags) == 0 {
		out.Flags = nil
	}
	if b.VolumeNumber != nil {
		n := int(*b.VolumeNumber)
		out.VolumeNumber = &n
	}
	if minor != nil {
		m := int(*minor)
		out.Minor = &m
	}
	id, err := h.newUUID()
	out.UUID = id
	return out, err
}

func (h *Handler) modifyDefinition(w http.ResponseWriter, r *http.Request) {
	var req definitionModifyRequest
	name := r.PathValue("rd")
	h.simple(w, r, change{obj: model.ObjResourceDefinition, op: linstor.MaskMod, status: http.StatusOK, body: &req, refs: refs("RscDfn", name)},
		func(*state.State) (state.Command, *apiError) {
			if aerr := checkLayers(req.LayerStack); aerr != nil {
				return nil, aerr
			}
			cmd := &state.ModifyResourceDefinition{Name: name, Props: req.change()}
			if req.ResourceGroup != "" {
				g := req.ResourceGroup
				cmd.ResourceGroup = &g
			}
			if req.DrbdPort != nil {
				n := int(*req.DrbdPort)
				cmd.DrbdPort = &n
			}
			if req.DrbdPeerSlots != nil {
				n := int(*req.DrbdPeerSlots)
				cmd.DrbdPeerSlots = &n
			}
			return cmd, nil
		}, modified(model.ObjResourceDefinition), "resource definition "+name+" modified")
}

// deleteDefinition deletes a definition with all its resources: DELETE
// flags on the resources (diskless first, so that the last-diskful guard
// does not trip) and the definition, then it waits until the reconciler
// has removed it. A definition with snapshots, or with a resource in use,
// is refused, as in LINSTOR.
func (h *Handler) deleteDefinition(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("rd")
	h.mutate(w, r, change{obj: model.ObjResourceDefinition, op: linstor.MaskDel, status: http.StatusOK, refs: refs("RscDfn", name),
		plan: func(ctx context.Context, c *call) (func(context.Context) error, error) {
			st, err := h.readState(ctx)
			if err != nil {
				return nil, err
			}
			rd, ok := st.ResourceDefinition(name)
			if !ok {
				c.add(linstor.WarnNotFound, "resource definition %s does not exist; nothing to delete", name)
				return nil, nil
			}
			if snaps := st.SnapshotDefinitions(rd.Name); len(snaps) > 0 {
				return nil, errorf(http.StatusConflict, linstor.FailInUse, "delete its snapshots first",
					"resource definition %s has %d snapshot(s), e.g. %s", rd.Name, len(snaps), snaps[0].Name)
			}
			rscs := st.Resources(rd.Name)
			for _, res := range rscs {
				if aerr := h.checkNotInUse(ctx, rd.Name, res.Node, "delete"); aerr != nil {
					return nil, aerr
				}
			}
			slices.SortStableFunc(rscs, func(a, b model.Resource) int { return boolInt(!a.Diskless()) - boolInt(!b.Diskless()) })
			for _, res := range rscs {
				if res.Flags.Has(model.RscFlagDelete) {
					continue
				}
				if _, err := h.apply(ctx, c, &state.SetFlags{Target: rscTarget(rd.Name, res.Node), Set: []string{model.RscFlagDelete}}); err != nil {
					return nil, err
				}
			}
			if !rd.Flags.Has(model.RdFlagDelete) {
				if _, err := h.apply(ctx, c, &state.SetFlags{Target: state.Target{Kind: model.ObjResourceDefinition, ResourceDefinition: rd.Name},
					Set: []string{model.RdFlagDelete}}); err != nil {
					return nil, err
				}
			}
			return func(ctx context.Context) error {
				if done, err := h.awaitOrWarn(ctx, c, "deletion of "+rd.Name, func(st *state.State) (bool, error) {
					_, exists := st.ResourceDefinition(rd.Name)
					return !exists, nil
				}); err != nil || !done {
					return err
				}
				c.add(deleted(model.ObjResourceDefinition), "resource definition %s deleted", rd.Name)
				return nil
			}, nil
		}})
}

func (h *Handler) createVolumeDefinition(w http.ResponseWriter, r *http.Request) {
	var req volumeDefinitionCreateRequest
	name := r.PathValue("rd")
	h.mutate(w, r, change{obj: model.ObjVolumeDefinition, op: linstor.MaskCrt, status: http.StatusCreated, body: &req, refs: refs("RscDfn", name),
		plan: func(ctx context.Context, c *call) (func(context.Context) error, error) {
			nvd, err := h.newVolumeDefinition(req.VolumeDefinition, req.DrbdMinorNumber)
			if err != nil {
				return nil, err
			}
			st, err := h.readState(ctx)
			if err != nil {
				return nil, err
			}
			if nvd.SizeKiB > 0 && nvd.SizeKiB <= model.MaxVolumeSizeKiB {
				if aerr := h.checkGrowthFits(st, name, nvd.SizeKiB); aerr != nil {
					return nil, aerr
				}
			}
			res, err := h.apply(ctx, c, &state.CreateVolumeDefinition{ResourceDefinition: name, NewVolumeDefinition: nvd})
			if err != nil {
				return nil, err
			}
			vnr := 0
			for _, a := range res.Allocated {
				if a.Kind == state.AllocMinor {
					vnr = a.Volume
				}
			}
			c.add(created(model.ObjVolumeDefinition), "volume definition %d of %s created", vnr, name)
			return nil, nil
		}})
}

// checkGrowthFits refuses to add delta KiB to every diskful replica of rd
// when a replica's pool reports too little space for it (thin
// over-provisioning included). Pools without a report are not judged.
func (h *Handler) checkGrowthFits(st *state.State, rd string, delta int64) *apiError {
	if delta <= 0 || h.pool == nil {
		return nil
	}
	d, ok := st.ResourceDefinition(rd)
	if !ok {
		return nil // the state reports the missing definition
	}
	req := h.placementRequest(st, d, model.SelectFilter{}, 0)
	for _, res := range st.Resources(rd) {
		if res.Diskless() || len(res.Volumes) == 0 {
			continue
		}
		for _, p := range req.Pools {
			if !model.SameName(p.Node, res.Node) || !model.SameName(p.Name, res.Volumes[0].StoragePool) || !p.Known {
				continue
			}
			if free := placement.EffectiveFreeKiB(p, req.ControllerProps); free < delta {
				return errorf(http.StatusConflict, linstor.FailNotEnoughFreeSpace,
					"free space in that pool, or move the replica to a larger pool",
					"storage pool %s on %s has %s free (thin over-provisioning included), %s more are needed for %s",
					p.Name, p.Node, placement.KiB(free), placement.KiB(delta), rd)
			}
		}
	}
	return nil
}

func (h *Handler) modifyVolumeDefinition(w http.ResponseWriter, r *http.Request) {
	var req volumeDefinitionModifyRequest
	name := r.PathValue("rd")
	h.mutate(w, r, change{obj: model.ObjVolumeDefinition, op: linstor.MaskMod, status: http.StatusOK, body: &req, refs: refs("RscDfn", name),
		plan: func(ctx context.Context, c *call) (func(context.Context) error, error) {
			vnr, aerr := volumeNumber(r.PathValue("vnr"))
			if aerr != nil {
				return nil, aerr
			}
			c.refs["VlmNr"] = fmt.Sprint(vnr)
			st, err := h.readState(ctx)
			if err != nil {
				return nil, err
			}
			rd, ok := st.ResourceDefinition(name)
			if !ok {
				return nil, notFound(linstor.FailNotFoundRscDfn, "check the name", "resource definition %s does not exist", name)
			}
			vd, ok := rd.VolumeDefinition(vnr)
			if !ok {
				return nil, notFound(linstor.FailNotFoundVlmDfn, "list the volume definitions", "volume definition %d of %s does not exist", vnr, name)
			}
			size := int64(req.SizeKiB)
			if size < 0 {
				return nil, badRequest(linstor.FailInvldVlmSize, "give the new size in KiB, larger than the current one", "size %d KiB is negative", size)
			}
			if size > vd.SizeKiB && size <= model.MaxVolumeSizeKiB {
				if aerr := h.checkReplicasConnected(ctx, st, name, vnr); aerr != nil {
					return nil, aerr
				}
				if aerr := h.checkGrowthFits(st, name, size-vd.SizeKiB); aerr != nil {
					return nil, aerr
				}
			}
			target := state.Target{Kind: model.ObjVolumeDefinition, ResourceDefinition: name, VolumeNumber: vnr}
			if set, clear := splitFlags(req.Flags); len(set)+len(clear) > 0 {
				if _, err := h.apply(ctx, c, &state.SetFlags{Target: target, Set: set, Clear: clear}); err != nil {
					return nil, err
				}
			}
			if _, err := h.apply(ctx, c, &state.ModifyVolumeDefinition{ResourceDefinition: name, VolumeNumber: vnr, SizeKiB: size, Props: req.change()}); err != nil {
				return nil, err
			}
			c.add(modified(model.ObjVolumeDefinition), "volume definition %d of %s modified", vnr, name)
			if size <= vd.SizeKiB {
				return nil, nil
			}
			return func(ctx context.Context) error {
				// Answer once the satellites have grown the volumes: PVE
				// resizes the guest's disk right after this returns.
				_, err := h.awaitOrWarn(ctx, c, fmt.Sprintf("resize of %s volume %d", name, vnr), func(st *state.State) (bool, error) {
					rd, ok := st.ResourceDefinition(name)
					if !ok {
						return true, nil
					}
					vd, ok := rd.VolumeDefinition(vnr)
					return !ok || !vd.Flags.Has(model.VdFlagResize), nil
				})
				return err
			}, nil
		}})
}

func (h *Handler) deleteVolumeDefinition(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("rd")
	h.simple(w, r, change{obj: model.ObjVolumeDefinition, op: linstor.MaskDel, status: http.StatusOK, refs: refs("RscDfn", name)},
		func(st *state.State) (state.Command, *apiError) {
			vnr, aerr := volumeNumber(r.PathValue("vnr"))
			if aerr != nil {
				return nil, aerr
			}
			for _, res := range st.Resources(name) {
				if aerr := h.checkNotInUse(r.Context(), name, res.Node, "delete a volume of"); aerr != nil {
					return nil, aerr
				}
			}
			return &state.DeleteVolumeDefinition{ResourceDefinition: name, VolumeNumber: vnr}, nil
		}, deleted(model.ObjVolumeDefinition), "volume definition of "+name+" deleted")
}

// checkReplicasConnected refuses a grow, before anything is recorded,
// while a diskful replica of rd could not take part in it: its node is
// offline, or another diskful replica's report shows the connection to it
// down. DRBD grows a device only as far as every diskful replica's
// backing allows and keeps the size while one is away (storage/sim
// resize.go), so the resize would wait for that node; the Proxmox plugin
// expects the new size when the call returns. A diskless replica's
// connections do not matter: it takes the size from its peers. Only
// positive evidence refuses: a replica nobody reports on yet does not.
// A report may predate a connection that came up since (a disk grown
// right after it was made), so a Refresher backend first gets fresh
// reports from the nodes involved, as for the in-use check.
func (h *Handler) checkReplicasConnected(ctx context.Context, st *state.State, rd string, vnr int) *apiError {
	aerr, nodes := h.replicasConnected(st, rd, vnr)
	if aerr == nil {
		return nil
	}
	if r, can := h.b.(Refresher); can {
		rctx, cancel := context.WithTimeout(ctx, refreshTimeout)
		var wg sync.WaitGroup
		for _, n := range nodes {
			wg.Go(func() { r.Refresh(rctx, n) })
		}
		wg.Wait()
		cancel()
		aerr, _ = h.replicasConnected(st, rd, vnr)
	}
	return aerr
}

// replicasConnected is checkReplicasConnected's test on the reports at
// hand; nodes are the nodes whose reports a refusal rests on.
func (h *Handler) replicasConnected(st *state.State, rd string, vnr int) (*apiError, []string) {
	rscs := st.Resources(rd)
	diskful := map[string]bool{}
	for _, r := range rscs {
		if !r.Diskless() && !r.Flags.Has(model.RscFlagDelete) {
			diskful[model.Key(r.Node)] = true
		}
	}
	refuse := func(node, what string) *apiError {
		return errorf(http.StatusConflict, linstor.FailNotConnected,
			fmt.Sprintf("bring node %s back, or remove its replica of %s, then grow the volume again", node, rd),
			"cannot grow volume %d of %s: node %s's replica %s; bring it back or remove it before growing the volume", vnr, rd, node, what)
	}
	for _, r := range rscs {
		if diskful[model.Key(r.Node)] && h.offline(r.Node) {
			return refuse(r.Node, "is offline (its satellite does not report)"), []string{r.Node}
		}
	}
	for _, r := range rscs {
		if !diskful[model.Key(r.Node)] {
			continue
		}
		obs, ok := h.b.Observed(rd, r.Node)
		if !ok {
			continue
		}
		peers := slices.Sorted(maps.Keys(obs.Connections))
		for _, p := range peers {
			c := obs.Connections[p]
			if !diskful[model.Key(p)] || c.Connected {
				continue
			}
			state := c.Message
			if state == "" {
				state = "not connected"
			}
			return refuse(p, fmt.Sprintf("is %s (as seen from %s)", state, r.Node)), []string{r.Node, p}
		}
	}
	return nil, nil
}
