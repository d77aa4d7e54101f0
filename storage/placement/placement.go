package placement

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	linstor "github.com/LINBIT/golinstor"
	"github.com/pvehci/pvehci/storage/model"
)

// Node is a node as placement sees it.
type Node struct {
	Name  string
	Props model.Props
	Flags model.Flags
	// Satellite is true for node types that hold resources (satellite,
	// combined); others never get a replica.
	Satellite bool
	// Online is false when the node's satellite is known to be
	// disconnected. LINSTOR only places on online nodes; a caller that
	// cannot tell passes true.
	Online bool
}

// Pool is one node's storage pool with the capacity its satellite last
// reported.
type Pool struct {
	Node  string
	Name  string
	Kind  model.ProviderKind
	Props model.Props
	// Known is false when no capacity report exists; such a pool cannot
	// take a diskful replica, since nobody knows whether it fits.
	Known    bool
	FreeKiB  int64
	TotalKiB int64
	// ReservedKiB is the sum of the sizes of the volumes already in the
	// pool, which thin over-provisioning counts against the total.
	ReservedKiB int64
	// Resources is the number of volumes in the pool; fewer wins a tie.
	Resources int
}

// Replica is an existing resource of any resource definition.
type Replica struct {
	Resource   string
	Node       string
	Pool       string // storage pool of its first volume; "" if none
	Diskless   bool
	TieBreaker bool
	Deleting   bool // DELETE-flagged: on its way out, counts for nothing
}

// Request asks for Count new diskful replicas of Resource.
type Request struct {
	Resource string
	// SizeKiB is the space one replica needs: the sum of the resource
	// definition's volume sizes.
	SizeKiB int64
	Filter  model.SelectFilter
	Count   int
	Nodes   []Node
	Pools   []Pool
	// Replicas are all resources of the cluster: those of Resource tell
	// where it already is, the others serve not_place_with_rsc.
	Replicas []Replica
	// ControllerProps supply the over-provisioning ratios where a pool
	// does not set its own.
	ControllerProps model.Props
}

// Choice is a storage pool picked for a replica.
type Choice struct {
	Node string
	Pool string
	// Toggle is true when the node already holds a diskless resource of
	// the definition, which then gets a disk instead of a new resource.
	Toggle bool
}

// Rejection says why a node or pool was not used.
type Rejection struct {
	Node   string
	Pool   string // empty when the whole node was rejected
	Reason string
}

// Error is a placement that could not be satisfied.
type Error struct {
	Resource string
	Wanted   int
	// Fitting are the candidates that passed every filter; fewer than
	// Wanted of them could be combined under the group's rules.
	Fitting  []Choice
	Rejected []Rejection
	// Reason overrides the generic explanation (e.g. a bad regex).
	Reason string
}

// Code is LINSTOR's ret code for this failure.
func (e *Error) Code() uint64 { return linstor.FailNotEnoughNodes }

func (e *Error) Error() string {
	if e.Reason != "" {
		return e.Reason
	}
	var b strings.Builder
	fmt.Fprintf(&b, "cannot place %d more diskful replica(s) of %s: ", e.Wanted, e.Resource)
	if len(e.Fitting) == 0 {
		b.WriteString("no storage pool fits")
	} else {
		names := make([]string, len(e.Fitting))
		for i, c := range e.Fitting {
			names[i] = c.Node + "/" + c.Pool
		}
		fmt.Fprintf(&b, "only %s fit(s) the group's rules", strings.Join(names, ", "))
	}
	if len(e.Rejected) > 0 {
		parts := make([]string, len(e.Rejected))
		for i, r := range e.Rejected {
			if r.Pool == "" {
				parts[i] = r.Node + ": " + r.Reason
			} else {
				parts[i] = r.Node + "/" + r.Pool + ": " + r.Reason
			}
		}
		b.WriteString("; not used: ")
		b.WriteString(strings.Join(parts, "; "))
	}
	return b.String()
}

// Correction says what an operator can do about it.
func (e *Error) Correction() string {
	return "add storage pools or free space on more nodes, lower the group's place_count, or relax its filter (storage_pool, node_name_list, replicas_on_same/different)"
}

// Additional is how many diskful replicas a filter asks for beyond those a
// definition has: additional_place_count when given (it adds regardless),
// else place_count minus the diskful replicas that are not being deleted.
func Additional(f model.SelectFilter, diskful int) int {
	if f.AdditionalPlaceCount > 0 {
		return f.AdditionalPlaceCount
	}
	return max(f.PlaceCount-diskful, 0)
}

// Merge overlays the non-empty fields of over on base, which is how LINSTOR
// combines a request's select filter with the resource group's.
func Merge(base, over model.SelectFilter) model.SelectFilter {
	out := base.Clone()
	if over.PlaceCount != 0 {
		out.PlaceCount = over.PlaceCount
	}
	if over.AdditionalPlaceCount != 0 {
		out.AdditionalPlaceCount = over.AdditionalPlaceCount
	}
	if len(over.NodeNameList) > 0 {
		out.NodeNameList = slices.Clone(over.NodeNameList)
	}
	if over.StoragePool != "" {
		out.StoragePool = over.StoragePool
	}
	if len(over.StoragePoolList) > 0 {
		out.StoragePoolList = slices.Clone(over.StoragePoolList)
	}
	if len(over.StoragePoolDisklessList) > 0 {
		out.StoragePoolDisklessList = slices.Clone(over.StoragePoolDisklessList)
	}
	if len(over.NotPlaceWithRsc) > 0 {
		out.NotPlaceWithRsc = slices.Clone(over.NotPlaceWithRsc)
	}
	if over.NotPlaceWithRscRegex != "" {
		out.NotPlaceWithRscRegex = over.NotPlaceWithRscRegex
	}
	if len(over.ReplicasOnSame) > 0 {
		out.ReplicasOnSame = slices.Clone(over.ReplicasOnSame)
	}
	if len(over.ReplicasOnDifferent) > 0 {
		out.ReplicasOnDifferent = slices.Clone(over.ReplicasOnDifferent)
	}
	if len(over.XReplicasOnDifferentMap) > 0 {
		out.XReplicasOnDifferentMap = over.Clone().XReplicasOnDifferentMap
	}
	if len(over.LayerStack) > 0 {
		out.LayerStack = slices.Clone(over.LayerStack)
	}
	if len(over.ProviderList) > 0 {
		out.ProviderList = slices.Clone(over.ProviderList)
	}
	if over.DisklessOnRemaining {
		out.DisklessOnRemaining = true
	}
	if over.DisklessType != "" {
		out.DisklessType = over.DisklessType
	}
	return out
}

// candidate is a pool that passed the filters, with its score.
type candidate struct {
	node   *Node
	pool   *Pool
	free   int64 // effective free space, the score
	toggle bool
}

// Candidate is a storage pool that can take a diskful replica of the
// requested size under the filter's per-node and per-pool rules.
type Candidate struct {
	Node, Pool string
	// FreeKiB is the pool's effective free space (thin over-provisioning
	// included), the placement score.
	FreeKiB int64
	// ReportedFreeKiB and TotalKiB are the satellite's raw figures.
	ReportedFreeKiB, TotalKiB int64
}

// Candidates lists the pools that pass every filter that does not depend
// on the other replicas, best first; size-info queries sum them up.
func Candidates(req Request) ([]Candidate, error) {
	cands, _, err := filter(req)
	if err != nil {
		return nil, err
	}
	out := make([]Candidate, len(cands))
	for i, c := range cands {
		out[i] = Candidate{Node: c.node.Name, Pool: c.pool.Name, FreeKiB: c.free, ReportedFreeKiB: c.pool.FreeKiB, TotalKiB: c.pool.TotalKiB}
	}
	return out, nil
}

// Place picks req.Count storage pools for new diskful replicas of
// req.Resource, one per node, or explains why it cannot.
func Place(req Request) ([]Choice, error) {
	if req.Count <= 0 {
		return nil, nil
	}
	cands, rejected, err := filter(req)
	if err != nil {
		return nil, err
	}
	best := search(cands, req.Count, rules{filter: req.Filter}, existingDiskful(req))
	if best == nil {
		e := &Error{Resource: req.Resource, Wanted: req.Count, Rejected: rejected}
		seen := map[string]bool{}
		for _, c := range cands {
			if !seen[model.Key(c.node.Name)] {
				seen[model.Key(c.node.Name)] = true
				e.Fitting = append(e.Fitting, Choice{Node: c.node.Name, Pool: c.pool.Name})
			}
		}
		return nil, e
	}
	out := make([]Choice, len(best))
	for i, c := range best {
		out[i] = Choice{Node: c.node.Name, Pool: c.pool.Name, Toggle: c.toggle}
	}
	return out, nil
}

// mine maps node keys to the requested definition's replicas.
func mine(req Request) map[string]Replica {
	m := map[string]Replica{}
	for _, r := range req.Replicas {
		if model.SameName(r.Resource, req.Resource) {
			m[model.Key(r.Node)] = r
		}
	}
	return m
}

// existingKind is the provider of the definition's diskful replicas, ""
// when it has none.
func existingKind(req Request) model.ProviderKind {
	for _, r := range req.Replicas {
		if !model.SameName(r.Resource, req.Resource) || r.Diskless || r.Deleting {
			continue
		}
		for _, p := range req.Pools {
			if model.SameName(p.Node, r.Node) && model.SameName(p.Name, r.Pool) {
				return p.Kind
			}
		}
	}
	return ""
}

// existingDiskful are the nodes holding a diskful replica already, in
// name order.
func existingDiskful(req Request) []*Node {
	m := mine(req)
	nodes := map[string]*Node{}
	for i := range req.Nodes {
		nodes[model.Key(req.Nodes[i].Name)] = &req.Nodes[i]
	}
	var out []*Node
	for _, k := range slices.Sorted(mapKeys(m)) {
		if r := m[k]; !r.Diskless && !r.Deleting {
			if n := nodes[k]; n != nil {
				out = append(out, n)
			}
		}
	}
	return out
}

// filter applies every rule that can be checked per node and pool, and
// returns the survivors sorted by score, with the reasons for the rest.
func filter(req Request) ([]candidate, []Rejection, error) {
	var notWith *regexp.Regexp
	if req.Filter.NotPlaceWithRscRegex != "" {
		re, err := regexp.Compile(req.Filter.NotPlaceWithRscRegex)
		if err != nil {
			return nil, nil, &Error{Resource: req.Resource, Wanted: req.Count,
				Reason: fmt.Sprintf("not_place_with_rsc_regex %q does not compile: %v", req.Filter.NotPlaceWithRscRegex, err)}
		}
		notWith = re
	}
	here := mine(req)
	existing := existingDiskful(req)
	kind := existingKind(req)
	rc := rules{filter: req.Filter}
	var rejected []Rejection
	var cands []candidate
	for _, n := range sortedNodes(req.Nodes) {
		nk := model.Key(n.Name)
		if r, ok := here[nk]; ok && (!r.Diskless || r.Deleting) {
			// A diskful replica is already here (or one is leaving, and
			// its node must not get a new one under its feet).
			continue
		}
		if why := nodeRejected(n, req.Filter, req.Replicas, notWith, req.Resource); why != "" {
			rejected = append(rejected, Rejection{Node: n.Name, Reason: why})
			continue
		}
		if why := rc.fixedRejects(n); why != "" {
			rejected = append(rejected, Rejection{Node: n.Name, Reason: why})
			continue
		}
		if why := rc.existingRejects(n, existing); why != "" {
			rejected = append(rejected, Rejection{Node: n.Name, Reason: why})
			continue
		}
		diskful := 0
		for _, p := range poolsOn(req.Pools, n.Name) {
			if p.Kind.Diskless() {
				continue
			}
			diskful++
			if why := poolRejected(p, req.Filter); why != "" {
				rejected = append(rejected, Rejection{Node: n.Name, Pool: p.Name, Reason: why})
				continue
			}
			if kind != "" && p.Kind != kind {
				// LINSTOR mixes providers within one definition only when
				// storage-pool mixing is enabled; pvehci never does, since
				// LVM and ZFS replicas differ in size rounding.
				rejected = append(rejected, Rejection{Node: n.Name, Pool: p.Name,
					Reason: fmt.Sprintf("provider %s differs from the existing replicas' %s", p.Kind, kind)})
				continue
			}
			if !p.Known {
				rejected = append(rejected, Rejection{Node: n.Name, Pool: p.Name, Reason: "no capacity report from its satellite yet"})
				continue
			}
			free := EffectiveFreeKiB(*p, req.ControllerProps)
			if free < req.SizeKiB {
				rejected = append(rejected, Rejection{Node: n.Name, Pool: p.Name,
					Reason: fmt.Sprintf("%s free (thin over-provisioning included), %s needed", KiB(free), KiB(req.SizeKiB))})
				continue
			}
			_, toggle := here[nk]
			cands = append(cands, candidate{node: n, pool: p, free: free, toggle: toggle})
		}
		if diskful == 0 {
			rejected = append(rejected, Rejection{Node: n.Name, Reason: "has no diskful storage pool"})
		}
	}
	slices.SortStableFunc(cands, func(a, b candidate) int {
		if c := cmp.Compare(b.free, a.free); c != 0 {
			return c
		}
		if c := cmp.Compare(a.pool.Resources, b.pool.Resources); c != 0 {
			return c
		}
		if c := cmp.Compare(model.Key(a.node.Name), model.Key(b.node.Name)); c != 0 {
			return c
		}
		return cmp.Compare(model.Key(a.pool.Name), model.Key(b.pool.Name))
	})
	return cands, rejected, nil
}

// search finds count candidates on distinct nodes that satisfy the
// relative rules (replicas_on_same with a bare key, replicas_on_different,
// x_replicas_on_different_map) together with the existing replicas, with
// the largest total free space; fewer resources in the chosen pools, then
// the order of cands, break ties. cands are sorted by free space, so the
// free space of the next candidates bounds what a branch can still reach.
func search(cands []candidate, count int, rc rules, existing []*Node) []candidate {
	var best []candidate
	var bestFree int64
	bestRsc := 0
	cur := make([]candidate, 0, count)
	used := map[string]bool{}
	var walk func(start int, free int64, rsc int)
	walk = func(start int, free int64, rsc int) {
		if len(cur) == count {
			if best == nil || free > bestFree || (free == bestFree && rsc < bestRsc) {
				best = slices.Clone(cur)
				bestFree, bestRsc = free, rsc
			}
			return
		}
		need := count - len(cur)
		for i := start; i <= len(cands)-need; i++ {
			if best != nil {
				// The next need candidates are the best this branch can
				// add; if even they cannot beat the best, stop.
				var bound int64
				for j := i; j < i+need; j++ {
					bound += cands[j].free
				}
				if free+bound < bestFree {
					return
				}
			}
			c := cands[i]
			nk := model.Key(c.node.Name)
			if used[nk] || !rc.compatible(c.node, cur, existing) || (len(cur) > 0 && cur[0].pool.Kind != c.pool.Kind) {
				continue
			}
			used[nk] = true
			cur = append(cur, c)
			walk(i+1, free+c.free, rsc+c.pool.Resources)
			cur = cur[:len(cur)-1]
			delete(used, nk)
		}
	}
	walk(0, 0, 0)
	return best
}

// nodeRejected applies the filters that depend on the node alone.
func nodeRejected(n *Node, f model.SelectFilter, all []Replica, notWith *regexp.Regexp, self string) string {
	switch {
	case !n.Satellite:
		return "is not a satellite node"
	case n.Flags.Has(model.NodeFlagDelete):
		return "is being deleted"
	case n.Flags.Has(model.NodeFlagEvicted):
		return "is evicted"
	case n.Flags.Has(model.NodeFlagEvacuate):
		return "is being evacuated"
	case !n.Online:
		return "is offline"
	case strings.EqualFold(n.Props[model.KeyAutoplaceTarget], "false"):
		return model.KeyAutoplaceTarget + "=false"
	}
	if len(f.NodeNameList) > 0 && !slices.ContainsFunc(f.NodeNameList, func(s string) bool { return model.SameName(s, n.Name) }) {
		return "not in node_name_list"
	}
	for _, r := range all {
		if !model.SameName(r.Node, n.Name) || model.SameName(r.Resource, self) || r.Deleting {
			continue
		}
		if slices.ContainsFunc(f.NotPlaceWithRsc, func(s string) bool { return model.SameName(s, r.Resource) }) {
			return "holds " + r.Resource + " (not_place_with_rsc)"
		}
		if notWith != nil && notWith.MatchString(r.Resource) {
			return "holds " + r.Resource + " (not_place_with_rsc_regex)"
		}
	}
	return ""
}

// poolRejected applies the filters that depend on the pool alone.
func poolRejected(p *Pool, f model.SelectFilter) string {
	switch {
	case strings.EqualFold(p.Props[model.KeyAutoplaceTarget], "false"):
		return model.KeyAutoplaceTarget + "=false"
	case f.StoragePool != "" && !model.SameName(f.StoragePool, p.Name):
		return "not storage_pool " + f.StoragePool
	case len(f.StoragePoolList) > 0 && !slices.ContainsFunc(f.StoragePoolList, func(s string) bool { return model.SameName(s, p.Name) }):
		return "not in storage_pool_list"
	case len(f.ProviderList) > 0 && !slices.ContainsFunc(f.ProviderList, func(s string) bool { return strings.EqualFold(s, string(p.Kind)) }):
		return "provider " + string(p.Kind) + " not in provider_list"
	}
	return ""
}

// rules are the node-property constraints of a filter.
type rules struct{ filter model.SelectFilter }

// fixedRejects checks replicas_on_same entries of the form key=value.
func (r rules) fixedRejects(n *Node) string {
	for _, e := range r.filter.ReplicasOnSame {
		if k, v, ok := strings.Cut(e, "="); ok {
			if got, has := n.Props[k]; !has || got != v {
				return fmt.Sprintf("property %s is %q, replicas_on_same wants %q", k, got, v)
			}
		} else if _, has := n.Props[e]; !has {
			return "lacks property " + e + " (replicas_on_same)"
		}
	}
	for _, k := range r.differentKeys() {
		if _, has := n.Props[k]; !has {
			return "lacks property " + k + " (replicas_on_different)"
		}
	}
	return ""
}

// existingRejects checks the relative rules against the replicas already
// placed, so that the reason can be reported per node.
func (r rules) existingRejects(n *Node, existing []*Node) string {
	for _, k := range r.sameKeys() {
		for _, e := range existing {
			if e.Props[k] != n.Props[k] {
				return fmt.Sprintf("property %s is %q but the existing replica on %s has %q (replicas_on_same)", k, n.Props[k], e.Name, e.Props[k])
			}
		}
	}
	for _, k := range r.differentKeys() {
		limit := r.xLimit(k)
		same := 0
		for _, e := range existing {
			if e.Props[k] == n.Props[k] {
				same++
			}
		}
		if same >= limit {
			return fmt.Sprintf("property %s=%q is already used by %d replica(s) (replicas_on_different)", k, n.Props[k], same)
		}
	}
	return ""
}

// compatible reports whether n can join the chosen candidates.
func (r rules) compatible(n *Node, chosen []candidate, existing []*Node) bool {
	for _, k := range r.sameKeys() {
		for _, c := range chosen {
			if c.node.Props[k] != n.Props[k] {
				return false
			}
		}
	}
	for _, k := range r.differentKeys() {
		limit := r.xLimit(k)
		same := 0
		for _, c := range chosen {
			if c.node.Props[k] == n.Props[k] {
				same++
			}
		}
		for _, e := range existing {
			if e.Props[k] == n.Props[k] {
				same++
			}
		}
		if same >= limit {
			return false
		}
	}
	return true
}

// sameKeys are the bare keys of replicas_on_same (all replicas share
// whatever value the first one has).
func (r rules) sameKeys() []string {
	var out []string
	for _, e := range r.filter.ReplicasOnSame {
		if !strings.Contains(e, "=") {
			out = append(out, e)
		}
	}
	return out
}

// differentKeys are the keys whose values must differ between replicas:
// replicas_on_different plus the keys of x_replicas_on_different_map.
func (r rules) differentKeys() []string {
	var out []string
	for _, e := range r.filter.ReplicasOnDifferent {
		k, _, _ := strings.Cut(e, "=")
		if !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	for _, k := range slices.Sorted(mapKeys(r.filter.XReplicasOnDifferentMap)) {
		if !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out
}

// xLimit is how many replicas may share one value of key k: the
// x_replicas_on_different_map entry, else 1.
func (r rules) xLimit(k string) int {
	if x, ok := r.filter.XReplicasOnDifferentMap[k]; ok && x > 0 {
		return x
	}
	return 1
}

// Thin reports whether a provider over-provisions.
func Thin(k model.ProviderKind) bool {
	return k == model.ProviderLVMThin || k == model.ProviderZFSThin
}

// DefaultOversubscriptionRatio is LINSTOR's MaxOversubscriptionRatio
// default (LinStor.OVERSUBSCRIPTION_RATIO_DEFAULT).
const DefaultOversubscriptionRatio = 20.0

// EffectiveFreeKiB is the space a new volume may take from p. For thin
// pools it is LINSTOR's over-provisioned capacity:
// min(free × MaxFreeCapacityOversubscriptionRatio,
// total × MaxTotalCapacityOversubscriptionRatio − reserved), with both
// ratios defaulting to MaxOversubscriptionRatio (pool, then controller,
// then 20).
func EffectiveFreeKiB(p Pool, ctrl model.Props) int64 {
	if !Thin(p.Kind) {
		return p.FreeKiB
	}
	base := ratio(p.Props, ctrl, linstor.KeyStorPoolMaxOversubscriptionRatio, DefaultOversubscriptionRatio)
	rf := ratio(p.Props, ctrl, linstor.KeyStorPoolMaxFreeCapacityOversubscriptionRatio, base)
	rt := ratio(p.Props, ctrl, linstor.KeyStorPoolMaxTotalCapacityOversubscriptionRatio, base)
	byFree := mulKiB(p.FreeKiB, rf)
	byTotal := mulKiB(p.TotalKiB, rt) - p.ReservedKiB
	return max(min(byFree, byTotal), 0)
}

func ratio(pool, ctrl model.Props, key string, dflt float64) float64 {
	for _, p := range []model.Props{pool, ctrl} {
		if v, ok := p[key]; ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil && f > 0 {
				return f
			}
		}
	}
	return dflt
}

func mulKiB(kib int64, r float64) int64 {
	f := float64(kib) * r
	if f >= float64(1<<62) {
		return 1 << 62
	}
	return int64(f)
}

// KiB formats a size in KiB for messages.
func KiB(k int64) string {
	units := []string{"KiB", "MiB", "GiB", "TiB", "PiB"}
	f := float64(k)
	i := 0
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	if f == float64(int64(f)) {
		return fmt.Sprintf("%d %s", int64(f), units[i])
	}
	return fmt.Sprintf("%.1f %s", f, units[i])
}

func sortedNodes(ns []Node) []*Node {
	out := make([]*Node, len(ns))
	for i := range ns {
		out[i] = &ns[i]
	}
	slices.SortFunc(out, func(a, b *Node) int { return cmp.Compare(model.Key(a.Name), model.Key(b.Name)) })
	return out
}

func poolsOn(ps []Pool, node string) []*Pool {
	var out []*Pool
	for i := range ps {
		if model.SameName(ps[i].Node, node) {
			out = append(out, &ps[i])
		}
	}
	slices.SortFunc(out, func(a, b *Pool) int { return cmp.Compare(model.Key(a.Name), model.Key(b.Name)) })
	return out
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
