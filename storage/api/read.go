package api

import (
	"cmp"
	"net/http"
	"slices"
	"strconv"
	"strings"

	linstor "github.com/LINBIT/golinstor"
	"github.com/pvehci/pvehci/ha/state"
	"github.com/pvehci/pvehci/storage/model"
)

// listQuery is the filtering and paging of list GETs. golinstor always
// sends limit=0&offset=0; LINSTOR reads limit 0 as "no limit".
type listQuery struct {
	nodes, resources, pools, props []string
	offset, limit                  int
	withVolumeDefinitions          bool
}

func parseListQuery(r *http.Request) (listQuery, *apiError) {
	v := r.URL.Query()
	multi := func(names ...string) []string {
		var out []string
		for _, name := range names {
			for _, s := range v[name] {
				for _, part := range strings.Split(s, ",") {
					if p := strings.TrimSpace(part); p != "" {
						out = append(out, p)
					}
				}
			}
		}
		return out
	}
	q := listQuery{
		nodes: multi("nodes"), resources: multi("resources", "resource_definitions", "resource_groups", "snapshots"),
		pools: multi("storage_pools"), props: v["props"],
	}
	for _, p := range []struct {
		name string
		dst  *int
	}{{"offset", &q.offset}, {"limit", &q.limit}} {
		s := v.Get(p.name)
		if s == "" {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return q, badRequest(linstor.FailInvldRequest, "use a whole number of 0 or more (limit 0 means no limit)",
				"query parameter %s=%q is not a number of 0 or more", p.name, s)
		}
		*p.dst = n
	}
	if s := v.Get("with_volume_definitions"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			return q, badRequest(linstor.FailInvldRequest, "use true or false", "query parameter with_volume_definitions=%q is not a boolean", s)
		}
		q.withVolumeDefinitions = b
	}
	return q, nil
}

func (q listQuery) wantNode(n string) bool {
	return len(q.nodes) == 0 || hasFold(q.nodes, n)
}

func (q listQuery) wantResource(n string) bool {
	return len(q.resources) == 0 || hasFold(q.resources, n)
}

func (q listQuery) wantPool(n string) bool {
	return len(q.pools) == 0 || hasFold(q.pools, n)
}

// wantProps applies props filters: "key=value" must match, a bare "key"
// must be set.
func (q listQuery) wantProps(p model.Props) bool {
	for _, f := range q.props {
		k, val, hasVal := strings.Cut(f, "=")
		got, ok := p[k]
		if !ok || (hasVal && got != val) {
			return false
		}
	}
	return true
}

// page applies offset and limit.
func page[T any](items []T, q listQuery) []T {
	if q.offset >= len(items) {
		return items[:0]
	}
	items = items[q.offset:]
	if q.limit > 0 && q.limit < len(items) {
		items = items[:q.limit]
	}
	return items
}

// read returns the state for a read request, or answers the failure.
func (h *Handler) read(w http.ResponseWriter, r *http.Request) (*state.State, bool) {
	st, err := h.b.Read(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return nil, false
	}
	return st, true
}

// list answers a list GET.
func list[T any](h *Handler, w http.ResponseWriter, r *http.Request, build func(*state.State, listQuery) []T) {
	q, aerr := parseListQuery(r)
	if aerr != nil {
		h.fail(w, r, aerr)
		return
	}
	st, ok := h.read(w, r)
	if !ok {
		return
	}
	out := page(build(st, q), q)
	if out == nil {
		out = []T{}
	}
	writeJSON(w, http.StatusOK, out)
}

// notFound is the 404 of a single-object GET.
func notFound(code uint64, fix, format string, args ...any) *apiError {
	return errorf(http.StatusNotFound, code, fix, format, args...)
}

func (h *Handler) listNodes(w http.ResponseWriter, r *http.Request) {
	list(h, w, r, func(st *state.State, q listQuery) []nodeOut {
		var out []nodeOut
		for _, n := range st.Nodes() {
			if q.wantNode(n.Name) && q.wantProps(n.Props) {
				out = append(out, h.nodeOut(n))
			}
		}
		return out
	})
}

func (h *Handler) getNode(w http.ResponseWriter, r *http.Request) {
	st, ok := h.read(w, r)
	if !ok {
		return
	}
	n, found := st.Node(r.PathValue("node"))
	if !found {
		h.fail(w, r, notFound(linstor.FailNotFoundNode, "list the nodes with GET /v1/nodes", "node %s does not exist", r.PathValue("node")))
		return
	}
	writeJSON(w, http.StatusOK, h.nodeOut(n))
}

func (h *Handler) listNetIfs(w http.ResponseWriter, r *http.Request) {
	st, ok := h.read(w, r)
	if !ok {
		return
	}
	n, found := st.Node(r.PathValue("node"))
	if !found {
		h.fail(w, r, notFound(linstor.FailNotFoundNode, "list the nodes with GET /v1/nodes", "node %s does not exist", r.PathValue("node")))
		return
	}
	writeJSON(w, http.StatusOK, h.nodeOut(n).NetInterfaces)
}

func (h *Handler) getNetIf(w http.ResponseWriter, r *http.Request) {
	st, ok := h.read(w, r)
	if !ok {
		return
	}
	n, found := st.Node(r.PathValue("node"))
	if !found {
		h.fail(w, r, notFound(linstor.FailNotFoundNode, "list the nodes with GET /v1/nodes", "node %s does not exist", r.PathValue("node")))
		return
	}
	for _, ni := range h.nodeOut(n).NetInterfaces {
		if model.SameName(ni.Name, r.PathValue("netif")) {
			writeJSON(w, http.StatusOK, ni)
			return
		}
	}
	h.fail(w, r, notFound(linstor.FailNotFoundNetIf, "list the node's net interfaces", "net interface %s on node %s does not exist", r.PathValue("netif"), n.Name))
}

func (h *Handler) poolsView(st *state.State, q listQuery, node string) []poolOut {
	var out []poolOut
	for _, p := range st.StoragePools() {
		if node != "" && !model.SameName(p.Node, node) {
			continue
		}
		if q.wantNode(p.Node) && q.wantPool(p.Name) && q.wantProps(p.Props) {
			out = append(out, h.poolOut(p))
		}
	}
	return out
}

func (h *Handler) viewPools(w http.ResponseWriter, r *http.Request) {
	list(h, w, r, func(st *state.State, q listQuery) []poolOut { return h.poolsView(st, q, "") })
}

func (h *Handler) listNodePools(w http.ResponseWriter, r *http.Request) {
	node := r.PathValue("node")
	st, ok := h.read(w, r)
	if !ok {
		return
	}
	if _, found := st.Node(node); !found {
		h.fail(w, r, notFound(linstor.FailNotFoundNode, "list the nodes with GET /v1/nodes", "node %s does not exist", node))
		return
	}
	list(h, w, r, func(st *state.State, q listQuery) []poolOut { return h.poolsView(st, q, node) })
}

func (h *Handler) getPool(w http.ResponseWriter, r *http.Request) {
	st, ok := h.read(w, r)
	if !ok {
		return
	}
	p, found := st.StoragePool(r.PathValue("node"), r.PathValue("pool"))
	if !found {
		h.fail(w, r, notFound(linstor.FailNotFoundStorPool, "list the node's pools with GET /v1/nodes/{node}/storage-pools",
			"storage pool %s on node %s does not exist", r.PathValue("pool"), r.PathValue("node")))
		return
	}
	writeJSON(w, http.StatusOK, h.poolOut(p))
}

func (h *Handler) listPoolDefs(w http.ResponseWriter, r *http.Request) {
	list(h, w, r, func(st *state.State, q listQuery) []poolDefOut {
		var out []poolDefOut
		for _, d := range st.StoragePoolDefinitions() {
			if q.wantPool(d.Name) && q.wantProps(d.Props) {
				out = append(out, poolDefOut{StoragePoolName: d.Name, Props: strMap(d.Props), UUID: d.UUID})
			}
		}
		return out
	})
}

func (h *Handler) getPoolDef(w http.ResponseWriter, r *http.Request) {
	st, ok := h.read(w, r)
	if !ok {
		return
	}
	for _, d := range st.StoragePoolDefinitions() {
		if model.SameName(d.Name, r.PathValue("pool")) {
			writeJSON(w, http.StatusOK, poolDefOut{StoragePoolName: d.Name, Props: strMap(d.Props), UUID: d.UUID})
			return
		}
	}
	h.fail(w, r, notFound(linstor.FailNotFoundStorPoolDfn, "list them with GET /v1/storage-pool-definitions",
		"storage pool definition %s does not exist", r.PathValue("pool")))
}

func (h *Handler) listGroups(w http.ResponseWriter, r *http.Request) {
	list(h, w, r, func(st *state.State, q listQuery) []groupOut {
		var out []groupOut
		for _, g := range st.ResourceGroups() {
			if q.wantResource(g.Name) && q.wantProps(g.Props) {
				out = append(out, groupToOut(g))
			}
		}
		return out
	})
}

func (h *Handler) group(w http.ResponseWriter, r *http.Request) (model.ResourceGroup, bool) {
	st, ok := h.read(w, r)
	if !ok {
		return model.ResourceGroup{}, false
	}
	g, found := st.ResourceGroup(r.PathValue("rg"))
	if !found {
		h.fail(w, r, notFound(linstor.FailNotFoundRscGrp, "list the resource groups with GET /v1/resource-groups",
			"resource group %s does not exist", r.PathValue("rg")))
		return g, false
	}
	return g, true
}

func (h *Handler) getGroup(w http.ResponseWriter, r *http.Request) {
	if g, ok := h.group(w, r); ok {
		writeJSON(w, http.StatusOK, groupToOut(g))
	}
}

func (h *Handler) listVolumeGroups(w http.ResponseWriter, r *http.Request) {
	q, aerr := parseListQuery(r)
	if aerr != nil {
		h.fail(w, r, aerr)
		return
	}
	g, ok := h.group(w, r)
	if !ok {
		return
	}
	out := make([]volumeGroupOut, 0, len(g.VolumeGroups))
	for _, vg := range g.VolumeGroups {
		out = append(out, volumeGroupToOut(vg))
	}
	writeJSON(w, http.StatusOK, page(out, q))
}

func (h *Handler) getVolumeGroup(w http.ResponseWriter, r *http.Request) {
	vnr, aerr := volumeNumber(r.PathValue("vnr"))
	if aerr != nil {
		h.fail(w, r, aerr)
		return
	}
	g, ok := h.group(w, r)
	if !ok {
		return
	}
	vg, found := g.VolumeGroup(vnr)
	if !found {
		h.fail(w, r, notFound(linstor.FailNotFoundVlmGrp, "list the group's volume groups", "volume group %d of %s does not exist", vnr, g.Name))
		return
	}
	writeJSON(w, http.StatusOK, volumeGroupToOut(vg))
}

func (h *Handler) listDefinitions(w http.ResponseWriter, r *http.Request) {
	list(h, w, r, func(st *state.State, q listQuery) []definitionOut {
		var out []definitionOut
		for _, rd := range st.ResourceDefinitions() {
			if q.wantResource(rd.Name) && q.wantProps(rd.Props) {
				out = append(out, definitionToOut(rd, q.withVolumeDefinitions))
			}
		}
		return out
	})
}

func (h *Handler) definition(w http.ResponseWriter, r *http.Request) (*state.State, model.ResourceDefinition, bool) {
	st, ok := h.read(w, r)
	if !ok {
		return nil, model.ResourceDefinition{}, false
	}
	rd, found := st.ResourceDefinition(r.PathValue("rd"))
	if !found {
		h.fail(w, r, notFound(linstor.FailNotFoundRscDfn, "list the resource definitions with GET /v1/resource-definitions",
			"resource definition %s does not exist", r.PathValue("rd")))
		return nil, rd, false
	}
	return st, rd, true
}

func (h *Handler) getDefinition(w http.ResponseWriter, r *http.Request) {
	if _, rd, ok := h.definition(w, r); ok {
		writeJSON(w, http.StatusOK, definitionToOut(rd, false))
	}
}

func (h *Handler) listVolumeDefinitions(w http.ResponseWriter, r *http.Request) {
	q, aerr := parseListQuery(r)
	if aerr != nil {
		h.fail(w, r, aerr)
		return
	}
	_, rd, ok := h.definition(w, r)
	if !ok {
		return
	}
	out := make([]volumeDefinitionOut, 0, len(rd.VolumeDefinitions))
	for _, vd := range rd.VolumeDefinitions {
		out = append(out, volumeDefinitionToOut(vd))
	}
	writeJSON(w, http.StatusOK, page(out, q))
}

func (h *Handler) getVolumeDefinition(w http.ResponseWriter, r *http.Request) {
	vnr, aerr := volumeNumber(r.PathValue("vnr"))
	if aerr != nil {
		h.fail(w, r, aerr)
		return
	}
	_, rd, ok := h.definition(w, r)
	if !ok {
		return
	}
	vd, found := rd.VolumeDefinition(vnr)
	if !found {
		h.fail(w, r, notFound(linstor.FailNotFoundVlmDfn, "list the volume definitions", "volume definition %d of %s does not exist", vnr, rd.Name))
		return
	}
	writeJSON(w, http.StatusOK, volumeDefinitionToOut(vd))
}

// resourceView builds the view entries of the given resources.
func (h *Handler) resourceView(st *state.State, rscs []model.Resource, q listQuery) []resourceWithVolumesOut {
	rds := rdIndex(st)
	kinds := newPoolKinds(st.StoragePools())
	out := make([]resourceWithVolumesOut, 0, len(rscs))
	for _, r := range rscs {
		if !q.wantResource(r.Name) || !q.wantNode(r.Node) || !q.wantProps(r.Props) {
			continue
		}
		if len(q.pools) > 0 && !slices.ContainsFunc(r.Volumes, func(v model.Volume) bool { return q.wantPool(v.StoragePool) }) {
			continue
		}
		rd, ok := rds[model.Key(r.Name)]
		if !ok {
			// Deleted between the two reads (the state's accessors lock
			// one at a time); without its definition there is no minor
			// to show, so leave it out like the definition.
			continue
		}
		obs, observed := h.b.Observed(r.Name, r.Node)
		vols := resourceVolumes(rd, r, obs, observed, kinds)
		out = append(out, resourceWithVolumesOut{resourceOut: h.resourceToOut(rd, r, obs, observed, vols), Volumes: volumesToOut(vols)})
	}
	// Within a definition, in-use entries go last: the Proxmox plugin
	// keeps the in_use of the last entry per definition (research
	// linstor-proxmox.md §3.2), and free_image waits on it before
	// deleting. Otherwise the order is by definition, then node.
	slices.SortStableFunc(out, func(a, b resourceWithVolumesOut) int {
		if c := cmp.Compare(model.Key(a.Name), model.Key(b.Name)); c != 0 {
			return c
		}
		return cmp.Compare(boolInt(a.State.InUse), boolInt(b.State.InUse))
	})
	return out
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (h *Handler) viewResources(w http.ResponseWriter, r *http.Request) {
	list(h, w, r, func(st *state.State, q listQuery) []resourceWithVolumesOut {
		if len(q.resources) == 1 {
			return h.resourceView(st, st.Resources(q.resources[0]), q)
		}
		return h.resourceView(st, st.Resources(""), q)
	})
}

func (h *Handler) listResources(w http.ResponseWriter, r *http.Request) {
	q, aerr := parseListQuery(r)
	if aerr != nil {
		h.fail(w, r, aerr)
		return
	}
	st, _, ok := h.definition(w, r)
	if !ok {
		return
	}
	view := h.resourceView(st, st.Resources(r.PathValue("rd")), listQuery{nodes: q.nodes, props: q.props})
	out := make([]resourceOut, 0, len(view))
	for _, v := range view {
		out = append(out, v.resourceOut)
	}
	writeJSON(w, http.StatusOK, page(out, q))
}

func (h *Handler) getResource(w http.ResponseWriter, r *http.Request) {
	st, _, ok := h.definition(w, r)
	if !ok {
		return
	}
	res, found := st.Resource(r.PathValue("rd"), r.PathValue("node"))
	if !found {
		h.fail(w, r, notFound(linstor.FailNotFoundRsc, "list the definition's resources", "resource %s on node %s does not exist",
			r.PathValue("rd"), r.PathValue("node")))
		return
	}
	view := h.resourceView(st, []model.Resource{res}, listQuery{})
	writeJSON(w, http.StatusOK, view[0].resourceOut)
}

func (h *Handler) viewSnapshots(w http.ResponseWriter, r *http.Request) {
	list(h, w, r, func(st *state.State, q listQuery) []snapshotOut {
		var out []snapshotOut
		for _, sd := range st.SnapshotDefinitions("") {
			if !q.wantResource(sd.ResourceName) || !q.wantProps(sd.Props) {
				continue
			}
			if len(q.nodes) > 0 && !slices.ContainsFunc(sd.Snapshots, func(s model.Snapshot) bool { return q.wantNode(s.Node) }) {
				continue
			}
			out = append(out, snapshotToOut(sd))
		}
		return out
	})
}

func (h *Handler) listSnapshots(w http.ResponseWriter, r *http.Request) {
	q, aerr := parseListQuery(r)
	if aerr != nil {
		h.fail(w, r, aerr)
		return
	}
	st, rd, ok := h.definition(w, r)
	if !ok {
		return
	}
	out := []snapshotOut{}
	for _, sd := range st.SnapshotDefinitions(rd.Name) {
		out = append(out, snapshotToOut(sd))
	}
	writeJSON(w, http.StatusOK, page(out, q))
}

func (h *Handler) getSnapshot(w http.ResponseWriter, r *http.Request) {
	st, rd, ok := h.definition(w, r)
	if !ok {
		return
	}
	sd, found := st.SnapshotDefinition(rd.Name, r.PathValue("snap"))
	if !found {
		h.fail(w, r, notFound(linstor.FailNotFoundSnapshotDfn, "list the definition's snapshots", "snapshot %s of %s does not exist", r.PathValue("snap"), rd.Name))
		return
	}
	writeJSON(w, http.StatusOK, snapshotToOut(sd))
}

func (h *Handler) controllerVersion(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, h.opts.Version)
}

func (h *Handler) controllerProps(w http.ResponseWriter, r *http.Request) {
	st, ok := h.read(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, strMap(st.ControllerProps()))
}
