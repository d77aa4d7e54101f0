package relocate

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pvehci/pvehci/ha/state"
	"github.com/pvehci/pvehci/storage/model"
)

// Decide returns the next relocation steps for every resource definition,
// in a stable order. It is a pure function of its arguments; see the
// package documentation for the rules.
func Decide(st *state.State, obs Observed, vms VMLocations, now time.Time, policy Limits) []Decision {
	lim := policy.withDefaults()
	rels := map[string]model.Relocation{}
	running := newLoad()
	for _, rel := range st.Relocations() {
		rels[model.Key(rel.ResourceName)] = rel
		if active(rel.State) {
			running.add(rel.TargetNode, rel.SourceNode)
		}
	}
	var out []Decision
	var due []*view
	for _, rd := range st.ResourceDefinitions() {
		if rd.Flags.Has(model.RdFlagDelete) {
			continue
		}
		v := newView(st, obs, rd, now, lim)
		rel, has := rels[model.Key(rd.Name)]
		switch {
		case has && active(rel.State):
			out = appendSome(out, v.inProgress(rel))
		case has && rel.State == model.RelocPending:
			d, isDue := v.pending(rel, vms)
			if isDue {
				v.rel = rel
				due = append(due, v)
			} else {
				out = appendSome(out, d)
			}
		default:
			out = appendSome(out, v.idle(vms))
		}
	}
	// Admit due relocations oldest first, so that with a limit they run one
	// after another in the order the VMs arrived.
	slices.SortFunc(due, func(a, b *view) int {
		return cmp.Or(cmp.Compare(a.rel.DueAt, b.rel.DueAt), strings.Compare(model.Key(a.rd.Name), model.Key(b.rd.Name)))
	})
	reserved := map[PoolKey]int64{}
	for _, v := range due {
		pool, why := v.readyToAdd(v.rel.TargetNode, reserved)
		if why == "" {
			why = running.refuses(v.rel.TargetNode, v.rel.SourceNode, lim)
		}
		if why != "" {
			out = appendSome(out, v.skip(v.rel, why))
			continue
		}
		running.add(v.rel.TargetNode, v.rel.SourceNode)
		reserved[PK(v.rel.TargetNode, pool)] += v.sizeKiB()
		out = append(out, v.capped(Decision{Kind: MakeDiskful, Resource: v.rd.Name, Node: v.rel.TargetNode, Pool: pool,
			State: model.RelocAdding, Reason: fmt.Sprintf("timer due: adding a disk in pool %s on %s, where the VM runs", pool, v.rel.TargetNode)}))
	}
	return out
}

func appendSome(out []Decision, d *Decision) []Decision {
	if d == nil {
		return out
	}
	return append(out, *d)
}

// active reports whether a relocation is copying or removing data: it counts
// against the limits and is carried to its end.
func active(s model.RelocationState) bool {
	return s == model.RelocAdding || s == model.RelocSyncing || s == model.RelocRemoving
}

// load counts running relocations, per cluster and per node.
type load struct {
	cluster int
	node    map[string]int
}

func newLoad() *load { return &load{node: map[string]int{}} }

func (l *load) add(target, source string) {
	l.cluster++
	for _, n := range []string{target, source} {
		if n != "" {
			l.node[model.Key(n)]++
		}
	}
}

func (l *load) refuses(target, source string, lim Limits) string {
	if l.cluster >= lim.PerCluster {
		return fmt.Sprintf("waiting: %d relocation(s) running, cluster limit %d", l.cluster, lim.PerCluster)
	}
	for _, n := range []string{target, source} {
		if n != "" && l.node[model.Key(n)] >= lim.PerNode {
			return fmt.Sprintf("waiting: %d relocation(s) running on %s, node limit %d", l.node[model.Key(n)], n, lim.PerNode)
		}
	}
	return ""
}

// view is one resource definition with what Decide needs of it.
type view struct {
	st   *state.State
	obs  Observed
	rd   model.ResourceDefinition
	rscs []model.Resource
	now  time.Time
	lim  Limits
	rel  model.Relocation // the due relocation, for admission
}

func newView(st *state.State, obs Observed, rd model.ResourceDefinition, now time.Time, lim Limits) *view {
	return &view{st: st, obs: obs, rd: rd, rscs: st.Resources(rd.Name), now: now, lim: lim}
}

// counts reports whether a resource takes part: not being deleted, evicted
// or inactive (LINSTOR counts the same ones for quorum, research §4).
func counts(r model.Resource) bool {
	return !r.Flags.Has(model.RscFlagDelete) && !r.Flags.Has(model.RscFlagEvicted) && !r.Flags.Has(model.RscFlagInactive)
}

func (v *view) resource(node string) (model.Resource, bool) {
	i := slices.IndexFunc(v.rscs, func(r model.Resource) bool { return model.SameName(r.Node, node) && counts(r) })
	if i < 0 {
		return model.Resource{}, false
	}
	return v.rscs[i], true
}

func (v *view) diskful() []model.Resource {
	var out []model.Resource
	for _, r := range v.rscs {
		if counts(r) && !r.Diskless() {
			out = append(out, r)
		}
	}
	return out
}

func (v *view) upToDate(node string) bool {
	o, ok := v.obs.Replica(v.rd.Name, node)
	return ok && o.Disk == DiskUpToDate
}

func (v *view) diskState(node string) DiskState {
	if o, ok := v.obs.Replica(v.rd.Name, node); ok && o.Disk != "" {
		return o.Disk
	}
	return DiskUnknown
}

func (v *view) placeCount() int {
	name := v.rd.ResourceGroup
	if name == "" {
		name = model.DefaultResourceGroup
	}
	if g, ok := v.st.ResourceGroup(name); ok && g.SelectFilter.PlaceCount > 0 {
		return g.SelectFilter.PlaceCount
	}
	return model.DefaultPlaceCount
}

func (v *view) sizeKiB() int64 {
	var n int64
	for _, vd := range v.rd.VolumeDefinitions {
		n += vd.SizeKiB
	}
	return n
}

func (v *view) scope(node string) model.Scope {
	sc, err := v.st.ResourceScope(v.rd.Name, node)
	if err != nil {
		return model.Scope{}
	}
	return sc
}

// delay resolves the auto-diskful delay on node; off explains why not.
func (v *view) delay(node string) (d time.Duration, how, off string) {
	sc := v.scope(node)
	if val := sc.Get(KeyAutoRelocate); isFalse(val) {
		return 0, "", fmt.Sprintf("%s is %s", KeyAutoRelocate, val)
	}
	res, set := sc.Resolve(model.KeyAutoDiskful)
	if !set {
		if v.lim.DefaultDelay < 0 {
			return 0, "", model.KeyAutoDiskful + " is unset"
		}
		return v.lim.DefaultDelay, fmt.Sprintf("pvehci default %s", v.lim.DefaultDelay), ""
	}
	minutes, err := strconv.ParseInt(strings.TrimSpace(res.Value), 10, 64)
	if err != nil || minutes <= 0 || minutes > 1<<31 {
		return 0, "", fmt.Sprintf("%s is %q (set on %s %s)", model.KeyAutoDiskful, res.Value, res.Level, res.Object)
	}
	return time.Duration(minutes) * time.Minute, fmt.Sprintf("%s=%d min on %s %s", model.KeyAutoDiskful, minutes, res.Level, res.Object), ""
}

func isFalse(s string) bool {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "false", "no", "off", "0":
		return true
	}
	return false
}

func isTrue(s string) bool {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "yes", "on", "1":
		return true
	}
	return false
}

// arrival is where the VM of this definition runs diskless, if it does.
type arrival struct {
	node   string
	source string
	since  time.Time
	why    string // why there is none; empty when node is set
}

// where finds a diskless Primary on the node the VM runs on, with no
// migration running.
func (v *view) where(vms VMLocations) arrival {
	var primaries []string
	for _, r := range v.rscs {
		if o, ok := v.obs.Replica(v.rd.Name, r.Node); ok && o.Primary && counts(r) {
			primaries = append(primaries, r.Node)
		}
	}
	vm, known := VM{}, false
	if id := v.rd.Props[model.KeyAuxVMID]; id != "" {
		vm, known = vms[id]
	}
	switch {
	case known && vm.Migrating:
		return arrival{why: "a migration of the VM is running"}
	case len(primaries) > 1:
		// Two Primaries only happen during a live migration (research
		// linstor-proxmox.md §8).
		return arrival{why: "Primary on " + strings.Join(primaries, " and ") + ": a live migration is running"}
	case len(primaries) == 0:
		if known {
			return arrival{why: "not Primary anywhere (VM on " + vm.Node + ")"}
		}
		return arrival{why: "not Primary anywhere"}
	case known && !model.SameName(primaries[0], vm.Node):
		return arrival{why: "Primary on " + primaries[0] + " but the VM runs on " + vm.Node}
	}
	node := primaries[0]
	r, _ := v.resource(node)
	if !r.Diskless() {
		return arrival{why: "the VM's node " + node + " has a disk"}
	}
	a := arrival{node: r.Node}
	if known {
		a.since = vm.Since
		if vm.PreviousNode != "" && !model.SameName(vm.PreviousNode, node) {
			if n, ok := v.st.Node(vm.PreviousNode); ok {
				a.source = n.Name
			}
		}
	}
	return a
}

// idle handles a definition without a pending or running relocation.
func (v *view) idle(vms VMLocations) *Decision {
	a := v.where(vms)
	if a.node == "" {
		return nil
	}
	d, how, off := v.delay(a.node)
	if off != "" {
		return nil
	}
	since := a.since
	if since.IsZero() {
		since = v.now
	}
	return v.start(a, since, d, how)
}

func (v *view) start(a arrival, since time.Time, d time.Duration, how string) *Decision {
	due := since.Add(d)
	return &Decision{Kind: StartTimer, Resource: v.rd.Name, Node: a.node, Source: a.source, State: model.RelocPending,
		Since: since, DueAt: due,
		Reason: fmt.Sprintf("diskless Primary on %s since %s; %s: make diskful at %s", a.node,
			since.UTC().Format(time.RFC3339), how, due.UTC().Format(time.RFC3339))}
}

// pending handles a running timer: cancel, re-time, or report it due.
func (v *view) pending(rel model.Relocation, vms VMLocations) (d *Decision, due bool) {
	_, exists := v.resource(rel.TargetNode)
	if _, seen := v.obs.Replica(v.rd.Name, rel.TargetNode); exists && !seen {
		// Not reported (yet): a new leader starts with no observations,
		// and unknown is not a reason to cancel.
		return nil, false
	}
	a := v.where(vms)
	cancel := func(why string) *Decision {
		return &Decision{Kind: CancelTimer, Resource: v.rd.Name, Node: rel.TargetNode, State: model.RelocCancelled,
			Reason: "cancelled before copying: " + why}
	}
	if a.node == "" {
		return cancel(a.why), false
	}
	delay, how, off := v.delay(a.node)
	if off != "" {
		return cancel(off), false
	}
	since := a.since
	if !model.SameName(a.node, rel.TargetNode) {
		// The VM moved on to another diskless node: the new timer
		// replaces this one.
		if since.IsZero() {
			since = v.now
		}
		return v.start(a, since, delay, how), false
	}
	if since.IsZero() {
		since = time.UnixMilli(rel.CreatedAt)
	}
	if at := since.Add(delay); at.UnixMilli() != rel.DueAt {
		if a.source == "" {
			a.source = rel.SourceNode
		}
		return v.start(a, since, delay, how), false
	}
	return nil, v.now.UnixMilli() >= rel.DueAt
}

// skip records why a step waits, once per distinct reason.
func (v *view) skip(rel model.Relocation, why string) *Decision {
	if rel.Message == why {
		return nil
	}
	return &Decision{Kind: Skip, Resource: v.rd.Name, Node: rel.TargetNode, State: rel.State, Reason: why}
}

// readyToAdd checks that a disk can be added on node now: every diskful
// replica UpToDate and connected, and a pool with room. It returns the
// pool, or why not.
func (v *view) readyToAdd(node string, reserved map[PoolKey]int64) (pool, why string) {
	peers := v.diskful()
	if len(peers) == 0 {
		return "", "no diskful replica to sync from"
	}
	target, _ := v.obs.Replica(v.rd.Name, node)
	for _, p := range peers {
		if !v.upToDate(p.Node) {
			return "", fmt.Sprintf("peer %s is %s, not UpToDate", p.Node, v.diskState(p.Node))
		}
		if !target.ConnectedTo(p.Node) {
			return "", fmt.Sprintf("%s is not connected to peer %s", node, p.Node)
		}
	}
	size := v.sizeKiB()
	var whys []string
	for _, name := range v.poolCandidates(node) {
		sp, ok := v.st.StoragePool(node, name)
		if !ok {
			whys = append(whys, fmt.Sprintf("%s has no pool %s", node, name))
			continue
		}
		if sp.ProviderKind == model.ProviderDiskless {
			whys = append(whys, fmt.Sprintf("pool %s on %s is diskless", name, node))
			continue
		}
		free, ok := v.obs.PoolFreeKiB[PK(node, name)]
		if !ok {
			whys = append(whys, fmt.Sprintf("free space of pool %s on %s is unknown", name, node))
			continue
		}
		free -= reserved[PK(node, name)]
		if free < size {
			whys = append(whys, fmt.Sprintf("pool %s on %s has %d KiB free, needs %d KiB", name, node, free, size))
			continue
		}
		return sp.Name, ""
	}
	return "", strings.Join(whys, "; ")
}

// poolCandidates lists the pools a new disk on node may use, in order: the
// group's storage_pool or storage_pool_list (what LINSTOR's autoplacer is
// restricted to, research §5 step 1), else StorPoolName resolved without
// the resource's own level (it names the diskless pool), else DfltStorPool.
func (v *view) poolCandidates(node string) []string {
	name := v.rd.ResourceGroup
	if name == "" {
		name = model.DefaultResourceGroup
	}
	if g, ok := v.st.ResourceGroup(name); ok {
		if f := g.SelectFilter; f.StoragePool != "" {
			return []string{f.StoragePool}
		} else if len(f.StoragePoolList) > 0 {
			return slices.Clone(f.StoragePoolList)
		}
	}
	var layers []model.Layer
	for _, l := range v.scope(node).Layers() {
		if l.Level != model.LevelResource && l.Level != model.LevelStoragePool {
			layers = append(layers, l)
		}
	}
	if p := model.NewScope(layers...).Get(model.KeyStorPoolName); p != "" {
		return []string{p}
	}
	return []string{model.DefaultStoragePool}
}

// inProgress carries a relocation that is adding, syncing or removing to
// its end. Each branch looks at the resources, not at the recorded state
// alone, so that nothing already applied is issued again.
func (v *view) inProgress(rel model.Relocation) *Decision {
	d := v.inProgressStep(rel)
	if d != nil && (d.Kind == Done || d.Kind == RemoveSurplus || d.Kind == CancelTimer) {
		d.Target, d.ClearRate = rel.TargetNode, v.rateSet(rel.TargetNode)
	}
	return d
}

// capped gives a MakeDiskful decision the rate cap, unless there is none
// or the operator set c-max-rate on the target resource.
func (v *view) capped(d Decision) Decision {
	d.Target = d.Node
	if v.lim.MaxRate == "" {
		return d
	}
	if r, ok := v.resource(d.Node); ok && r.Props[KeyCMaxRate] != "" && r.Props[KeyRelocationRate] == "" {
		return d
	}
	d.Rate = v.lim.MaxRate
	d.Reason += fmt.Sprintf("; its resync capped at %s/s", v.lim.MaxRate)
	return d
}

// rateSet reports whether a relocation's cap is on node's resource.
func (v *view) rateSet(node string) bool {
	r, ok := v.resource(node)
	return ok && r.Props[KeyRelocationRate] != ""
}

func (v *view) inProgressStep(rel model.Relocation) *Decision {
	cancel := func(why string) *Decision {
		return &Decision{Kind: CancelTimer, Resource: v.rd.Name, Node: rel.TargetNode, State: model.RelocCancelled, Reason: why}
	}
	t, ok := v.resource(rel.TargetNode)
	if !ok {
		return cancel("the resource on " + rel.TargetNode + " is gone")
	}
	if t.Diskless() {
		if rel.State != model.RelocAdding {
			return cancel("the resource on " + rel.TargetNode + " lost its disk")
		}
		// Adding was recorded but the disk not requested (failover
		// between the two commands): request it now. It already counts
		// against the limits.
		pool, why := v.readyToAdd(rel.TargetNode, nil)
		if why != "" {
			return v.skip(rel, why)
		}
		d := v.capped(Decision{Kind: MakeDiskful, Resource: v.rd.Name, Node: rel.TargetNode, Pool: pool, State: model.RelocAdding,
			Reason: fmt.Sprintf("adding a disk in pool %s on %s (resumed)", pool, rel.TargetNode)})
		return &d
	}
	if !v.upToDate(t.Node) {
		why := fmt.Sprintf("waiting for %s to become UpToDate (now %s)", t.Node, v.diskState(t.Node))
		if rel.State == model.RelocAdding {
			return &Decision{Kind: Progress, Resource: v.rd.Name, Node: t.Node, State: model.RelocSyncing, Reason: why}
		}
		return v.skip(rel, why)
	}
	df, place := v.diskful(), v.placeCount()
	if len(df) <= place {
		return &Decision{Kind: Done, Resource: v.rd.Name, Node: t.Node, State: model.RelocDone,
			Reason: fmt.Sprintf("%s is UpToDate; %d diskful replicas, place count %d", t.Node, len(df), place)}
	}
	victim, keepTB, why, final := v.surplus(rel, t.Node, df, place)
	if victim == "" {
		if final {
			return &Decision{Kind: Done, Resource: v.rd.Name, Node: t.Node, State: model.RelocDone,
				Reason: fmt.Sprintf("%s is UpToDate; surplus kept: %s", t.Node, why)}
		}
		return v.skip(rel, "cannot remove a surplus replica yet: "+why)
	}
	reason := fmt.Sprintf("%s is UpToDate; %d diskful replicas, place count %d: removing the disk on %s", t.Node, len(df), place, victim)
	if keepTB {
		reason += ", kept as quorum tie-breaker"
	}
	return &Decision{Kind: RemoveSurplus, Resource: v.rd.Name, Node: victim, KeepTieBreaker: keepTB, State: model.RelocRemoving, Reason: reason}
}

// surplus picks the replica to remove. With none, why says what blocks
// and final whether only policy blocks (waiting would not change it).
func (v *view) surplus(rel model.Relocation, target string, df []model.Resource, place int) (victim string, keepTB bool, why string, final bool) {
	utd := 0
	for _, r := range df {
		if v.upToDate(r.Node) {
			utd++
		}
	}
	type cand struct {
		node    string
		source  bool
		current bool
	}
	var cands []cand
	var whys []string
	final = true
	for _, r := range df {
		if model.SameName(r.Node, target) {
			continue
		}
		o, seen := v.obs.Replica(v.rd.Name, r.Node)
		by := r.Props[model.KeyDiskfulBy]
		if by == "" {
			by = model.DiskfulByUser
		}
		switch {
		case by != model.DiskfulByAutoDiskful && by != model.DiskfulByMakeAvailable &&
			!isTrue(v.scope(r.Node).Get(model.KeyAutoDiskfulAllowCleanup)):
			whys = append(whys, fmt.Sprintf("%s was made diskful by %s and %s is not true", r.Node, by, model.KeyAutoDiskfulAllowCleanup))
		case !seen:
			// It may be in use: never remove what we cannot see.
			final = false
			whys = append(whys, "the state of "+r.Node+" is not reported")
		case o.Primary:
			final = false
			whys = append(whys, r.Node+" is in use (Primary)")
		case o.Disk == DiskUpToDate && utd-1 < max(place, 1):
			final = false
			whys = append(whys, fmt.Sprintf("%s is one of only %d UpToDate replicas, place count %d", r.Node, utd, place))
		default:
			cands = append(cands, cand{node: r.Node, source: model.SameName(r.Node, rel.SourceNode), current: o.Disk == DiskUpToDate})
		}
	}
	if len(cands) == 0 {
		return "", false, strings.Join(whys, "; "), final
	}
	// The node the VM left first; then replicas that are not UpToDate
	// (LINSTOR's AutoUnplacer prefers those, research §4); then by name.
	slices.SortFunc(cands, func(a, b cand) int {
		return cmp.Or(boolFirst(a.source, b.source), boolFirst(!a.current, !b.current),
			strings.Compare(model.Key(a.node), model.Key(b.node)))
	})
	victim = cands[0].node
	return victim, v.wantTieBreaker(victim, len(df)-1), "", false
}

// boolFirst orders true before false.
func boolFirst(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return -1
	}
	return 1
}

// wantTieBreaker applies LINSTOR's auto-tiebreaker rule (research §4) to
// the definition as it will be: a tie-breaker is wanted when
// auto-add-quorum-tiebreaker is on, the diskful count left is even and at
// least two, and no other diskless resource is left to give the third
// vote. Then the removed replica becomes it, keeping its node id.
func (v *view) wantTieBreaker(victim string, left int) bool {
	if left < 2 || left%2 != 0 || !isTrue(v.scope(victim).Get(model.KeyAutoAddQuorumTiebreaker)) {
		return false
	}
	for _, r := range v.rscs {
		if counts(r) && r.Diskless() && !model.SameName(r.Node, victim) {
			return false
		}
	}
	return true
}
