package api

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"

	linstor "github.com/LINBIT/golinstor"
	"github.com/pvehci/pvehci/ha/state"
	"github.com/pvehci/pvehci/storage/model"
	"github.com/pvehci/pvehci/storage/placement"
)

// apply replicates cmd and reports its warnings on c. A refusal comes
// back as the *state.Error; a replication failure as a wrapped error.
func (h *Handler) apply(ctx context.Context, c *call, cmd state.Command) (state.Result, error) {
	res, err := h.b.Apply(ctx, cmd)
	if err != nil {
		return res, fmt.Errorf("replicating %s: %w", cmd.Type(), err)
	}
	if res.Err != nil {
		return res, res.Err
	}
	if c != nil {
		c.warnings(res)
	}
	return res, nil
}

// readState returns the current state for a changing request.
func (h *Handler) readState(ctx context.Context) (*state.State, error) {
	st, err := h.b.Read(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading controller state: %w", err)
	}
	return st, nil
}

// newUUID draws a random (version 4) UUID from the injected source.
func (h *Handler) newUUID() (string, error) {
	var b [16]byte
	if err := h.random(b[:]); err != nil {
		return "", err
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	s := hex.EncodeToString(b[:])
	return s[0:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:32], nil
}

// newSecret draws a DRBD shared secret: 20 random bytes, base64 without
// padding (27 printable characters, none that a .res file must escape).
func (h *Handler) newSecret() (string, error) {
	var b [20]byte
	if err := h.random(b[:]); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

func (h *Handler) random(b []byte) error {
	h.randMu.Lock()
	defer h.randMu.Unlock()
	if _, err := io.ReadFull(h.opts.Rand, b); err != nil {
		return fmt.Errorf("drawing random bytes: %w", err)
	}
	return nil
}

// nowMs is the create timestamp for new objects.
func (h *Handler) nowMs() int64 { return h.opts.Clock.Now().UnixMilli() }

// await polls the state until done reports true, or CompletionTimeout
// passes (errTimeout), or ctx ends. done may also fail the wait.
func (h *Handler) await(ctx context.Context, done func(*state.State) (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, h.opts.CompletionTimeout)
	defer cancel()
	for {
		st, err := h.readState(ctx)
		if err != nil {
			return err
		}
		ok, err := done(st)
		if err != nil || ok {
			return err
		}
		if err := h.opts.Clock.Sleep(ctx, h.opts.PollInterval); err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				return errTimeout
			}
			return err
		}
	}
}

// awaitOrWarn waits like await and turns a timeout into a warning on c
// (finished false, no error): the request did its part, the satellites
// are slow, and LINSTOR answers the same way.
func (h *Handler) awaitOrWarn(ctx context.Context, c *call, what string, done func(*state.State) (bool, error)) (finished bool, err error) {
	err = h.await(ctx, done)
	if errors.Is(err, errTimeout) {
		c.addFix(linstor.WarnNotConnected, "check the satellites with GET /v1/view/resources; the change completes when they respond",
			"%s is recorded but not finished after %s", what, h.opts.CompletionTimeout)
		return false, nil
	}
	return err == nil, err
}

// waitDevices waits, in parallel, until rd's device exists on each node.
func (h *Handler) waitDevices(ctx context.Context, rd string, nodes []string) map[string]error {
	ctx, cancel := context.WithTimeout(ctx, h.opts.DeviceWaitTimeout)
	defer cancel()
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := map[string]error{}
	for _, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := h.b.WaitDevice(ctx, rd, n); err != nil {
				mu.Lock()
				errs[n] = err
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errs
}

// waitDevicesOrWarn waits for devices and reports late ones as warnings.
func (h *Handler) waitDevicesOrWarn(ctx context.Context, c *call, rd string, nodes []string) {
	errs := h.waitDevices(ctx, rd, nodes)
	for _, n := range slices.Sorted(mapKeys(errs)) {
		c.addFix(linstor.WarnNotConnected, "check the pvehci daemon on "+n+"; the resource is recorded and will be created when it responds",
			"device of %s on %s did not appear within %s: %v", rd, n, h.opts.DeviceWaitTimeout, errs[n])
	}
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// placementRequest gathers what placement needs about the cluster.
func (h *Handler) placementRequest(st *state.State, rd model.ResourceDefinition, f model.SelectFilter, count int) placement.Request {
	req := placement.Request{Resource: rd.Name, Filter: f, Count: count, ControllerProps: st.ControllerProps()}
	for _, vd := range rd.VolumeDefinitions {
		req.SizeKiB += vd.SizeKiB
	}
	for _, n := range st.Nodes() {
		online := true
		if h.node != nil {
			o, ok := h.node.ObservedNode(n.Name)
			online = ok && o.Online
		}
		req.Nodes = append(req.Nodes, placement.Node{Name: n.Name, Props: n.Props, Flags: n.Flags,
			Satellite: n.Type.HostsResources(), Online: online})
	}
	sizes := map[string]int64{} // "rd key/vnr" → size
	for _, d := range st.ResourceDefinitions() {
		for _, vd := range d.VolumeDefinitions {
			sizes[fmt.Sprintf("%s/%d", model.Key(d.Name), vd.VolumeNumber)] = vd.SizeKiB
		}
	}
	type use struct {
		reserved int64
		count    int
	}
	uses := map[string]*use{}
	for _, r := range st.Resources("") {
		pool := ""
		for i, v := range r.Volumes {
			if i == 0 {
				pool = v.StoragePool
			}
			k := model.Key(r.Node) + "/" + model.Key(v.StoragePool)
			u := uses[k]
			if u == nil {
				u = &use{}
				uses[k] = u
			}
			u.reserved += sizes[fmt.Sprintf("%s/%d", model.Key(r.Name), v.VolumeNumber)]
			u.count++
		}
		req.Replicas = append(req.Replicas, placement.Replica{Resource: r.Name, Node: r.Node, Pool: pool,
			Diskless: r.Diskless(), TieBreaker: r.TieBreaker(), Deleting: r.Flags.Has(model.RscFlagDelete)})
	}
	for _, p := range st.StoragePools() {
		pp := placement.Pool{Node: p.Node, Name: p.Name, Kind: p.ProviderKind, Props: p.Props}
		if obs, ok := h.observedPool(p.Node, p.Name); ok {
			pp.Known, pp.FreeKiB, pp.TotalKiB = true, obs.FreeKiB, obs.TotalKiB
		}
		if u := uses[model.Key(p.Node)+"/"+model.Key(p.Name)]; u != nil {
			pp.ReservedKiB, pp.Resources = u.reserved, u.count
		}
		req.Pools = append(req.Pools, pp)
	}
	return req
}

// groupFilter is the select filter of rd's resource group.
func groupFilter(st *state.State, rd model.ResourceDefinition) model.SelectFilter {
	g, _ := st.ResourceGroup(rd.ResourceGroup)
	return g.SelectFilter
}

func members(rscs []model.Resource) []placement.Member {
	out := make([]placement.Member, 0, len(rscs))
	for _, r := range rscs {
		out = append(out, placement.Member{Node: r.Node, Diskless: r.Diskless(), TieBreaker: r.TieBreaker(),
			Deleting: r.Flags.Has(model.RscFlagDelete)})
	}
	return out
}

// tieBreakerEnabled resolves the automatic tie-breaker switches for rd.
func tieBreakerEnabled(st *state.State, rd string) bool {
	scope, err := st.ResourceScope(rd, "")
	if err != nil {
		return false
	}
	return placement.TieBreakerEnabled(scope.Get)
}

// placeOn is how the API places resources: the commands it applies and
// the nodes whose devices to wait for.
type placed struct {
	nodes []string // resources created or given a disk, whose devices matter
}

// applyChoices creates (or toggles to diskful) the chosen resources.
func (h *Handler) applyChoices(ctx context.Context, c *call, rd string, choices []placement.Choice, by string, p *placed) error {
	for _, ch := range choices {
		if ch.Toggle {
			if _, err := h.apply(ctx, c, &state.ToggleDisk{ResourceDefinition: rd, Node: ch.Node, Diskful: true,
				StoragePool: ch.Pool, DiskfulBy: by}); err != nil {
				return err
			}
			c.add(linstor.Modified|linstor.MaskRsc|linstor.MaskMod, "resource %s on %s gets a disk in storage pool %s", rd, ch.Node, ch.Pool)
		} else {
			if err := h.newResource(ctx, c, &state.CreateResource{ResourceDefinition: rd, Node: ch.Node, Kind: state.Diskful,
				StoragePool: ch.Pool, Props: model.Props{model.KeyDiskfulBy: by}}); err != nil {
				return err
			}
			c.add(linstor.Created|linstor.MaskRsc|linstor.MaskCrt, "resource %s created on %s in storage pool %s", rd, ch.Node, ch.Pool)
		}
		p.nodes = append(p.nodes, ch.Node)
	}
	return nil
}

// newResource fills in UUID and timestamp and applies.
func (h *Handler) newResource(ctx context.Context, c *call, cmd *state.CreateResource) error {
	id, err := h.newUUID()
	if err != nil {
		return err
	}
	cmd.UUID, cmd.CreateTimestamp = id, h.nowMs()
	_, err = h.apply(ctx, c, cmd)
	return err
}

// autoplaceOpts tune placeReplicas for its callers.
type autoplaceOpts struct {
	// filter is the request's filter merged over the group's.
	filter model.SelectFilter
	// requirePlaceCount makes a missing place count an error (autoplace)
	// rather than "nothing to spawn" (spawn).
	requirePlaceCount bool
}

// placeReplicas is autoplace: diskful replicas up to the place count,
// diskless ones on the remaining nodes if asked, then the tie-breaker. It
// runs under h.mu.
func (h *Handler) placeReplicas(ctx context.Context, c *call, rdName string, o autoplaceOpts, p *placed) error {
	st, err := h.readState(ctx)
	if err != nil {
		return err
	}
	rd, ok := st.ResourceDefinition(rdName)
	if !ok {
		return errorf(http.StatusNotFound, linstor.FailNotFoundRscDfn, "create it first", "resource definition %s does not exist", rdName)
	}
	f := o.filter
	if f.PlaceCount == 0 && f.AdditionalPlaceCount == 0 {
		if o.requirePlaceCount {
			return badRequest(linstor.FailInvldPlaceCount,
				fmt.Sprintf("give select_filter.place_count, or set a place count on resource group %s", rd.ResourceGroup),
				"no place count for %s: neither the request nor resource group %s sets one", rd.Name, rd.ResourceGroup)
		}
		c.add(linstor.InfoNoRscSpawned, "no resources placed: resource group %s has no place count", rd.ResourceGroup)
		return nil
	}
	if err := checkLayers(f.LayerStack); err != nil {
		return err
	}
	rscs := st.Resources(rd.Name)
	diskful := 0
	for _, m := range members(rscs) {
		if !m.Diskless && !m.Deleting {
			diskful++
		}
	}
	count := placement.Additional(f, diskful)
	if count == 0 {
		c.add(linstor.WarnRscAlreadyDeployed, "resource %s already has %d diskful replica(s), as many as the place count %d asks for",
			rd.Name, diskful, f.PlaceCount)
	} else {
		choices, err := placement.Place(h.placementRequest(st, rd, f, count))
		if err != nil {
			return err
		}
		if err := h.applyChoices(ctx, c, rd.Name, choices, model.DiskfulByAutoPlacer, p); err != nil {
			return err
		}
	}
	if f.DisklessOnRemaining {
		if err := h.disklessOnRemaining(ctx, c, rd.Name, f, p); err != nil {
			return err
		}
	}
	return h.reconcileTieBreaker(ctx, c, rd.Name)
}

// disklessOnRemaining puts a diskless resource on every other node and
// makes existing tie-breakers ordinary diskless resources.
func (h *Handler) disklessOnRemaining(ctx context.Context, c *call, rdName string, f model.SelectFilter, p *placed) error {
	st, err := h.readState(ctx)
	if err != nil {
		return err
	}
	rd, _ := st.ResourceDefinition(rdName)
	for _, r := range st.Resources(rdName) {
		if r.TieBreaker() && !r.Flags.Has(model.RscFlagDelete) {
			if _, err := h.apply(ctx, c, &state.SetFlags{Target: rscTarget(rdName, r.Node), Clear: []string{model.RscFlagTieBreaker}}); err != nil {
				return err
			}
			c.add(linstor.Modified|linstor.MaskRsc|linstor.MaskMod, "tie-breaker %s on %s is now an ordinary diskless resource", rdName, r.Node)
		}
	}
	for _, ch := range placement.DisklessOnRemaining(h.placementRequest(st, rd, f, 0)) {
		if err := h.newResource(ctx, c, &state.CreateResource{ResourceDefinition: rdName, Node: ch.Node, Kind: state.Diskless,
			StoragePool: ch.Pool}); err != nil {
			return err
		}
		c.add(linstor.Created|linstor.MaskRsc|linstor.MaskCrt, "diskless resource %s created on %s", rdName, ch.Node)
		p.nodes = append(p.nodes, ch.Node)
	}
	return nil
}

func rscTarget(rd, node string) state.Target {
	return state.Target{Kind: model.ObjResource, ResourceDefinition: rd, Node: node}
}

// reconcileTieBreaker adds or removes rd's tie-breaker by LINSTOR's rule
// (placement.WantTieBreaker). A missing fitting node is a warning: the
// definition works without one, with weaker quorum.
func (h *Handler) reconcileTieBreaker(ctx context.Context, c *call, rdName string) error {
	st, err := h.readState(ctx)
	if err != nil {
		return err
	}
	rd, ok := st.ResourceDefinition(rdName)
	if !ok {
		return nil
	}
	rscs := st.Resources(rdName)
	want := placement.WantTieBreaker(members(rscs), tieBreakerEnabled(st, rdName))
	var have []model.Resource
	for _, r := range rscs {
		if r.TieBreaker() && !r.Flags.Has(model.RscFlagDelete) {
			have = append(have, r)
		}
	}
	switch {
	case want && len(have) == 0:
		ch, ok := placement.TieBreaker(h.placementRequest(st, rd, groupFilter(st, rd), 0))
		if !ok {
			c.addFix(linstor.WarnNotEnoughNodesForTieBreaker, "add a node with a diskless storage pool, or accept weaker quorum",
				"no node can take a tie-breaker for %s", rdName)
			return nil
		}
		if err := h.newResource(ctx, c, &state.CreateResource{ResourceDefinition: rdName, Node: ch.Node, Kind: state.TieBreaker,
			StoragePool: ch.Pool}); err != nil {
			return err
		}
		c.add(linstor.InfoTieBreakerCreated, "tie-breaker for %s created on %s", rdName, ch.Node)
	case !want && len(have) > 0:
		for _, tb := range have {
			if _, err := h.apply(ctx, c, &state.SetFlags{Target: rscTarget(rdName, tb.Node), Set: []string{model.RscFlagDelete}}); err != nil {
				return err
			}
			c.add(linstor.InfoTieBreakerDeleting, "tie-breaker of %s on %s is no longer needed and is being deleted", rdName, tb.Node)
		}
	}
	return nil
}

// awaitResourceGone waits until rd has no resource on node.
func (h *Handler) awaitResourceGone(ctx context.Context, c *call, rd, node string) (bool, error) {
	return h.awaitOrWarn(ctx, c, fmt.Sprintf("deletion of %s on %s", rd, node), func(st *state.State) (bool, error) {
		_, exists := st.Resource(rd, node)
		return !exists, nil
	})
}

// offline reports whether node's satellite is known to have stopped
// reporting (a backend without node observations knows of none).
func (h *Handler) offline(node string) bool {
	if h.node == nil {
		return false
	}
	o, ok := h.node.ObservedNode(node)
	return ok && !o.Online
}

// checkNotInUse refuses to touch a resource a VM has open. A report that
// says "in use" may predate the VM's stop (Proxmox deactivates volumes
// right after QEMU exits), so a Refresher backend first waits for fresher
// ones: up to refreshRounds reports within refreshTimeout, because the
// first report to arrive may come from a pass that looked just before the
// device was closed.
func (h *Handler) checkNotInUse(ctx context.Context, rd, node, verb string) *apiError {
	obs, ok := h.b.Observed(rd, node)
	if ok && obs.InUse {
		if r, can := h.b.(Refresher); can {
			rctx, cancel := context.WithTimeout(ctx, refreshTimeout)
			for range refreshRounds {
				r.Refresh(rctx, node)
				if obs, ok = h.b.Observed(rd, node); !ok || !obs.InUse || rctx.Err() != nil {
					break
				}
			}
			cancel()
		}
	}
	if ok && obs.InUse {
		return errorf(http.StatusConflict, linstor.FailInUse, "stop or migrate the VM or container using it first",
			"cannot %s resource %s on %s: it is in use (DRBD Primary)", verb, rd, node)
	}
	return nil
}

// checkNotLastUpToDate refuses to remove the only UpToDate copy of the
// data while other resources remain that would be left without it. Only
// an observed UpToDate target counts: without a report there is nothing
// to protect that pvehci knows of, and the state's own last-diskful
// guard still applies.
func (h *Handler) checkNotLastUpToDate(st *state.State, r model.Resource, verb string) *apiError {
	if r.Diskless() || !upToDate(h.b.Observed(r.Name, r.Node)) {
		return nil
	}
	var others []string
	for _, o := range st.Resources(r.Name) {
		if model.SameName(o.Node, r.Node) || o.Flags.Has(model.RscFlagDelete) {
			continue
		}
		if !o.Diskless() && upToDate(h.b.Observed(o.Name, o.Node)) {
			return nil
		}
		others = append(others, o.Node)
	}
	if len(others) == 0 {
		return nil
	}
	return errorf(http.StatusConflict, linstor.FailNotAllUptodate,
		"wait until another replica is UpToDate (GET /v1/view/resources), or delete the whole resource definition",
		"cannot %s resource %s on %s: it holds the only UpToDate copy of the data, and %s would be left without it",
		verb, r.Name, r.Node, strings.Join(others, ", "))
}

func upToDate(obs ObservedResource, ok bool) bool {
	if !ok || len(obs.Volumes) == 0 {
		return false
	}
	for _, v := range obs.Volumes {
		if v.DiskState != DiskUpToDate {
			return false
		}
	}
	return true
}
