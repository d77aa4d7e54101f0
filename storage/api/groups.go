package api

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	linstor "github.com/LINBIT/golinstor"
	"github.com/pvehci/pvehci/ha/state"
	"github.com/pvehci/pvehci/storage/model"
	"github.com/pvehci/pvehci/storage/placement"
)

func (h *Handler) createGroup(w http.ResponseWriter, r *http.Request) {
	var req groupCreateRequest
	h.mutate(w, r, change{obj: model.ObjResourceGroup, op: linstor.MaskCrt, status: http.StatusCreated, body: &req,
		plan: func(ctx context.Context, c *call) (func(context.Context) error, error) {
			c.refs = refs("RscGrp", req.Name)
			if aerr := req.SelectFilter.check(); aerr != nil {
				return nil, aerr
			}
			id, err := h.newUUID()
			if err != nil {
				return nil, err
			}
			cmd := &state.CreateResourceGroup{Name: req.Name, Description: req.Description, Props: req.Props.props(),
				SelectFilter: req.SelectFilter.apply(model.SelectFilter{}), UUID: id}
			if req.PeerSlots != nil {
				cmd.PeerSlots = int(*req.PeerSlots)
			}
			if _, err := h.apply(ctx, c, cmd); err != nil {
				return nil, err
			}
			c.add(created(model.ObjResourceGroup), "resource group %s created", req.Name)
			return nil, nil
		}})
}

func (h *Handler) modifyGroup(w http.ResponseWriter, r *http.Request) {
	var req groupModifyRequest
	name := r.PathValue("rg")
	h.simple(w, r, change{obj: model.ObjResourceGroup, op: linstor.MaskMod, status: http.StatusOK, body: &req, refs: refs("RscGrp", name)},
		func(st *state.State) (state.Command, *apiError) {
			if aerr := req.SelectFilter.check(); aerr != nil {
				return nil, aerr
			}
			cmd := &state.ModifyResourceGroup{Name: name, Description: req.Description, Props: req.change()}
			if g, ok := st.ResourceGroup(name); ok && req.SelectFilter != nil {
				f := req.SelectFilter.apply(g.SelectFilter)
				cmd.SelectFilter = &f
			}
			if req.PeerSlots != nil {
				n := int(*req.PeerSlots)
				cmd.PeerSlots = &n
			}
			return cmd, nil
		}, modified(model.ObjResourceGroup), "resource group "+name+" modified")
}

func (h *Handler) deleteGroup(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("rg")
	h.simple(w, r, change{obj: model.ObjResourceGroup, op: linstor.MaskDel, status: http.StatusOK, refs: refs("RscGrp", name)},
		func(*state.State) (state.Command, *apiError) { return &state.DeleteResourceGroup{Name: name}, nil },
		deleted(model.ObjResourceGroup), "resource group "+name+" deleted")
}

func (h *Handler) createVolumeGroup(w http.ResponseWriter, r *http.Request) {
	var req volumeGroupCreateRequest
	name := r.PathValue("rg")
	h.mutate(w, r, change{obj: model.ObjVolumeGroup, op: linstor.MaskCrt, status: http.StatusCreated, body: &req, refs: refs("RscGrp", name),
		plan: func(ctx context.Context, c *call) (func(context.Context) error, error) {
			id, err := h.newUUID()
			if err != nil {
				return nil, err
			}
			cmd := &state.CreateVolumeGroup{ResourceGroup: name, Props: req.Props.props(), Flags: upper(req.Flags), UUID: id}
			if req.VolumeNumber != nil {
				n := int(*req.VolumeNumber)
				cmd.VolumeNumber = &n
			}
			res, err := h.apply(ctx, c, cmd)
			if err != nil {
				return nil, err
			}
			_ = res
			c.add(created(model.ObjVolumeGroup), "volume group of resource group %s created", name)
			return nil, nil
		}})
}

// splitFlags reads LINSTOR's flag modify syntax: "FLAG" sets, "-FLAG"
// clears.
func splitFlags(flags []string) (set, clear []string) {
	for _, f := range flags {
		if rest, ok := strings.CutPrefix(f, "-"); ok {
			clear = append(clear, strings.ToUpper(rest))
		} else {
			set = append(set, strings.ToUpper(f))
		}
	}
	return set, clear
}

func (h *Handler) modifyVolumeGroup(w http.ResponseWriter, r *http.Request) {
	var req volumeGroupModifyRequest
	name := r.PathValue("rg")
	h.mutate(w, r, change{obj: model.ObjVolumeGroup, op: linstor.MaskMod, status: http.StatusOK, body: &req, refs: refs("RscGrp", name),
		plan: func(ctx context.Context, c *call) (func(context.Context) error, error) {
			vnr, aerr := volumeNumber(r.PathValue("vnr"))
			if aerr != nil {
				return nil, aerr
			}
			t := state.Target{Kind: model.ObjVolumeGroup, ResourceGroup: name, VolumeNumber: vnr}
			if set, clear := splitFlags(req.Flags); len(set)+len(clear) > 0 {
				if _, err := h.apply(ctx, c, &state.SetFlags{Target: t, Set: set, Clear: clear}); err != nil {
					return nil, err
				}
			}
			if ch := req.change(); !ch.IsEmpty() {
				if _, err := h.apply(ctx, c, &state.SetProps{Target: t, Change: ch}); err != nil {
					return nil, err
				}
			}
			c.add(modified(model.ObjVolumeGroup), "volume group %d of %s modified", vnr, name)
			return nil, nil
		}})
}

func (h *Handler) deleteVolumeGroup(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("rg")
	h.simple(w, r, change{obj: model.ObjVolumeGroup, op: linstor.MaskDel, status: http.StatusOK, refs: refs("RscGrp", name)},
		func(*state.State) (state.Command, *apiError) {
			vnr, aerr := volumeNumber(r.PathValue("vnr"))
			if aerr != nil {
				return nil, aerr
			}
			return &state.DeleteVolumeGroup{ResourceGroup: name, VolumeNumber: vnr}, nil
		}, deleted(model.ObjVolumeGroup), "volume group of "+name+" deleted")
}

// spawn creates a resource definition from a group and, unless
// definitions_only, places it (linstor-proxmox's alloc_image).
func (h *Handler) spawn(w http.ResponseWriter, r *http.Request) {
	var req spawnRequest
	group := r.PathValue("rg")
	var p placed
	h.mutate(w, r, change{obj: model.ObjResourceDefinition, op: linstor.MaskCrt, status: http.StatusCreated, body: &req,
		plan: func(ctx context.Context, c *call) (func(context.Context) error, error) {
			c.refs = refs("RscGrp", group, "RscDfn", req.ResourceDefinitionName)
			if aerr := req.SelectFilter.check(); aerr != nil {
				return nil, aerr
			}
			if aerr := checkLayers(req.LayerList); aerr != nil {
				return nil, aerr
			}
			if len(req.VolumePassphrases) > 0 {
				return nil, badRequest(linstor.FailInvldRequest, "leave volume_passphrases out", "pvehci has no LUKS layer, so volume passphrases cannot be used")
			}
			if aerr := checkName(model.NameResourceDefinition, req.ResourceDefinitionName); aerr != nil {
				return nil, aerr
			}
			st, err := h.readState(ctx)
			if err != nil {
				return nil, err
			}
			g, ok := st.ResourceGroup(group)
			if !ok {
				return nil, notFound(linstor.FailNotFoundRscGrp, "create the resource group first or check storage.cfg's resourcegroup",
					"resource group %s does not exist", group)
			}
			if _, exists := st.ResourceDefinition(req.ResourceDefinitionName); exists {
				return nil, errorf(http.StatusConflict, linstor.FailExistsRscDfn, "choose another name",
					"resource definition %s already exists", req.ResourceDefinitionName)
			}
			vds, aerr := spawnVolumes(g, req)
			if aerr != nil {
				return nil, aerr
			}
			secret, err := h.newSecret()
			if err != nil {
				return nil, err
			}
			cmd := &state.CreateResourceDefinition{Name: req.ResourceDefinitionName, ExternalName: req.ResourceDefinitionExternalName,
				ResourceGroup: g.Name, Props: req.ResourceDefinitionProps.props(), DrbdSecret: secret, VolumeDefinitions: vds}
			if req.PeerSlots != nil {
				cmd.DrbdPeerSlots = int(*req.PeerSlots)
			}
			if cmd.UUID, err = h.newUUID(); err != nil {
				return nil, err
			}
			for i := range cmd.VolumeDefinitions {
				if cmd.VolumeDefinitions[i].UUID, err = h.newUUID(); err != nil {
					return nil, err
				}
			}
			f := req.SelectFilter.apply(g.SelectFilter)
			if !req.DefinitionsOnly && (f.PlaceCount > 0 || f.AdditionalPlaceCount > 0) {
				// Place before creating anything, so that a spawn that
				// cannot be placed leaves no orphan definition behind.
				prospect := model.ResourceDefinition{Name: cmd.Name, ResourceGroup: g.Name}
				for _, vd := range vds {
					prospect.VolumeDefinitions = append(prospect.VolumeDefinitions, model.VolumeDefinition{SizeKiB: vd.SizeKiB})
				}
				if _, err := placement.Place(h.placementRequest(st, prospect, f, placement.Additional(f, 0))); err != nil {
					return nil, err
				}
			}
			if _, err := h.apply(ctx, c, cmd); err != nil {
				return nil, err
			}
			c.add(created(model.ObjResourceDefinition), "resource definition %s created from resource group %s", cmd.Name, g.Name)
			for i := range vds {
				c.add(created(model.ObjVolumeDefinition), "volume definition %d of %s created with %d KiB", i, cmd.Name, vds[i].SizeKiB)
			}
			if req.DefinitionsOnly {
				return nil, nil
			}
			if err := h.placeReplicas(ctx, c, cmd.Name, autoplaceOpts{filter: f}, &p); err != nil {
				h.undoSpawn(ctx, cmd.Name)
				c.out = nil
				c.add(linstor.InfoNoRscSpawned, "resource definition %s was removed again because it could not be placed", cmd.Name)
				return nil, err
			}
			return func(ctx context.Context) error {
				h.waitDevicesOrWarn(ctx, c, cmd.Name, p.nodes)
				return nil
			}, nil
		}})
}

// undoSpawn removes a definition whose placement failed halfway (another
// request took the space between planning and applying), so that a
// refused spawn leaves nothing behind. The state has no multi-command
// transaction; this is the compensation.
func (h *Handler) undoSpawn(ctx context.Context, rd string) {
	if _, err := h.apply(ctx, nil, &state.DeleteResourceDefinition{Name: rd}); err != nil {
		h.log.Error("removing half-spawned resource definition failed; delete it by hand", "resource", rd, "err", err)
	}
}

// spawnVolumes maps volume_sizes onto the group's volume groups: size i
// goes to the i-th volume group's number. Without partial, the counts
// must match when the group has volume groups (LINSTOR's rule); a group
// without volume groups takes any number of sizes, numbered from 0.
func spawnVolumes(g model.ResourceGroup, req spawnRequest) ([]state.NewVolumeDefinition, *apiError) {
	vgs := g.VolumeGroups
	if !req.Partial && len(vgs) > 0 && len(req.VolumeSizes) != len(vgs) {
		return nil, badRequest(linstor.FailInvldVlmSizes,
			fmt.Sprintf("give %d volume size(s), or set partial=true", len(vgs)),
			"resource group %s has %d volume group(s), but %d volume size(s) were given", g.Name, len(vgs), len(req.VolumeSizes))
	}
	used := map[int]bool{}
	var out []state.NewVolumeDefinition
	next := 0
	for i, size := range req.VolumeSizes {
		if size <= 0 {
			return nil, badRequest(linstor.FailInvldVlmSize, "give sizes in KiB, at least 1 (1048576 is 1 GiB)",
				"volume size %d KiB (volume_sizes[%d]) is not positive", size, i)
		}
		var vnr int
		if i < len(vgs) {
			vnr = vgs[i].VolumeNumber
		} else {
			for used[next] || slices.ContainsFunc(vgs, func(vg model.VolumeGroup) bool { return vg.VolumeNumber == next }) {
				next++
			}
			vnr = next
		}
		used[vnr] = true
		out = append(out, state.NewVolumeDefinition{VolumeNumber: &vnr, SizeKiB: int64(size)})
	}
	return out, nil
}

// sizeInfo answers query-size-info for one group: the pools the group
// could use, their capacity divided by the replica count (what one more
// volume can hold), and where the next spawn would go.
func (h *Handler) sizeInfo(st *state.State, g model.ResourceGroup, f model.SelectFilter) sizeInfoOut {
	copies := max(f.PlaceCount, 1)
	prospect := model.ResourceDefinition{Name: "", ResourceGroup: g.Name}
	req := h.placementRequest(st, prospect, f, copies)
	out := sizeInfoOut{Reports: []ApiCallRc{}, SpaceInfo: spaceInfoOut{NextSpawnResult: []spawnResultOut{},
		DefaultMaxOversubscriptionRatio: placement.DefaultOversubscriptionRatio}}
	ratio := placement.DefaultOversubscriptionRatio
	if v, err := strconv.ParseFloat(req.ControllerProps[linstor.KeyStorPoolMaxOversubscriptionRatio], 64); err == nil && v > 0 {
		ratio = v
	}
	out.SpaceInfo.MaxOversubscriptionRatio = ratio
	out.SpaceInfo.MaxFreeCapacityOversubscriptionRatio = ratio
	out.SpaceInfo.MaxTotalCapacityOversubscriptionRatio = ratio
	cands, err := placement.Candidates(req)
	if err != nil {
		out.Reports = append(out.Reports, rc(linstor.FailInvldRequest|linstor.MaskRscGrp, "%v", err))
		return out
	}
	var free, total int64
	for _, c := range cands {
		free += c.ReportedFreeKiB
		total += c.TotalKiB
	}
	out.SpaceInfo.AvailableSizeInKiB = free / int64(copies)
	out.SpaceInfo.CapacityInKiB = total / int64(copies)
	choices, err := placement.Place(req)
	if err != nil {
		// A warning, not an error: the query itself worked, the group
		// just cannot place a volume right now.
		out.Reports = append(out.Reports, rc(linstor.MaskWarn|linstor.MaskRscGrp|(linstor.FailNotEnoughNodes&linstor.MaskBitsCode), "%v", err))
		return out
	}
	freeOf := map[string]int64{}
	for _, c := range cands {
		freeOf[model.Key(c.Node)+"/"+model.Key(c.Pool)] = c.FreeKiB
	}
	maxSize := int64(-1)
	for _, ch := range choices {
		out.SpaceInfo.NextSpawnResult = append(out.SpaceInfo.NextSpawnResult, spawnResultOut{NodeName: ch.Node, StorPoolName: ch.Pool})
		if f := freeOf[model.Key(ch.Node)+"/"+model.Key(ch.Pool)]; maxSize < 0 || f < maxSize {
			maxSize = f
		}
	}
	out.SpaceInfo.MaxVlmSizeInKiB = max(min(maxSize, model.MaxVolumeSizeKiB), 0)
	return out
}

func (h *Handler) querySizeInfo(w http.ResponseWriter, r *http.Request) {
	var req sizeInfoRequest
	c := h.newCall(w, r, model.ObjResourceGroup, 0, refs("RscGrp", r.PathValue("rg")))
	if aerr := h.decodeBody(w, r, &req, true); aerr != nil {
		c.fail(aerr)
		return
	}
	if aerr := req.SelectFilter.check(); aerr != nil {
		c.fail(aerr)
		return
	}
	st, err := h.readState(r.Context())
	if err != nil {
		c.fail(err)
		return
	}
	g, ok := st.ResourceGroup(r.PathValue("rg"))
	if !ok {
		c.fail(notFound(linstor.FailNotFoundRscGrp, "list the resource groups with GET /v1/resource-groups", "resource group %s does not exist", r.PathValue("rg")))
		return
	}
	writeJSON(w, http.StatusOK, h.sizeInfo(st, g, req.SelectFilter.apply(g.SelectFilter)))
}

// queryAllSizeInfo answers for every group: the Proxmox plugin's status
// marks the storage inactive when its group is missing from the result.
func (h *Handler) queryAllSizeInfo(w http.ResponseWriter, r *http.Request) {
	var req sizeInfoRequest
	c := h.newCall(w, r, model.ObjResourceGroup, 0, nil)
	if aerr := h.decodeBody(w, r, &req, true); aerr != nil {
		c.fail(aerr)
		return
	}
	if aerr := req.SelectFilter.check(); aerr != nil {
		c.fail(aerr)
		return
	}
	st, err := h.readState(r.Context())
	if err != nil {
		c.fail(err)
		return
	}
	out := allSizeInfoOut{Result: map[string]sizeInfoOut{}, Reports: []ApiCallRc{}}
	for _, g := range st.ResourceGroups() {
		out.Result[g.Name] = h.sizeInfo(st, g, req.SelectFilter.apply(g.SelectFilter))
	}
	writeJSON(w, http.StatusOK, out)
}
