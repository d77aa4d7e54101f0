package placement

import (
	"cmp"
	"regexp"
	"slices"
	"strings"

	"github.com/pvehci/pvehci/storage/model"
)

// disklessPool picks the pool a diskless resource uses on node: the first
// of storage_pool_diskless_list the node has, else DfltDisklessStorPool,
// else the node's first diskless pool by name.
func disklessPool(pools []Pool, node string, f model.SelectFilter) (string, bool) {
	on := poolsOn(pools, node)
	has := func(name string) bool {
		return slices.ContainsFunc(on, func(p *Pool) bool { return p.Kind.Diskless() && model.SameName(p.Name, name) })
	}
	for _, name := range f.StoragePoolDisklessList {
		if has(name) {
			return name, true
		}
	}
	if len(f.StoragePoolDisklessList) > 0 {
		return "", false
	}
	if has(model.DefaultDisklessStoragePool) {
		return model.DefaultDisklessStoragePool, true
	}
	for _, p := range on {
		if p.Kind.Diskless() {
			return p.Name, true
		}
	}
	return "", false
}

// DisklessOnRemaining returns a diskless pool on every satellite node that
// does not hold req.Resource yet (diskless_on_remaining), in node order.
// Nodes without a diskless pool, and those the node filters exclude, are
// skipped: LINSTOR does the same and the resource is usable without them.
func DisklessOnRemaining(req Request) []Choice {
	holds := holders(req)
	var out []Choice
	for _, n := range sortedNodes(req.Nodes) {
		if holds[model.Key(n.Name)] || disklessNodeRejected(n, req, nil) {
			continue
		}
		if pool, ok := disklessPool(req.Pools, n.Name, req.Filter); ok {
			out = append(out, Choice{Node: n.Name, Pool: pool})
		}
	}
	return out
}

// TieBreaker picks the node and diskless pool for a new tie-breaker of
// req.Resource: a node without the resource that passes the group's node
// filters, preferring the node with the fewest resources, then by name.
// LINSTOR forces the x-replicas-on-different counts to 1 for a
// tie-breaker so that it lands in a new failure domain; the relative
// replicas_on_different rule is applied the same way here.
func TieBreaker(req Request) (Choice, bool) {
	holds := holders(req)
	load := map[string]int{}
	for _, r := range req.Replicas {
		load[model.Key(r.Node)]++
	}
	var existing []*Node
	for _, r := range req.Replicas {
		if model.SameName(r.Resource, req.Resource) && !r.Diskless && !r.Deleting {
			for i := range req.Nodes {
				if model.SameName(req.Nodes[i].Name, r.Node) {
					existing = append(existing, &req.Nodes[i])
				}
			}
		}
	}
	var notWith *regexp.Regexp
	if req.Filter.NotPlaceWithRscRegex != "" {
		notWith, _ = regexp.Compile(req.Filter.NotPlaceWithRscRegex)
	}
	var cands []Choice
	for _, n := range sortedNodes(req.Nodes) {
		if holds[model.Key(n.Name)] || disklessNodeRejected(n, req, notWith) {
			continue
		}
		if !differentFromAll(n, req.Filter, existing) {
			continue
		}
		if pool, ok := disklessPool(req.Pools, n.Name, req.Filter); ok {
			cands = append(cands, Choice{Node: n.Name, Pool: pool})
		}
	}
	if len(cands) == 0 {
		return Choice{}, false
	}
	slices.SortStableFunc(cands, func(a, b Choice) int {
		return cmp.Compare(load[model.Key(a.Node)], load[model.Key(b.Node)])
	})
	return cands[0], true
}

// differentFromAll applies replicas_on_different (and the x map's keys)
// with a limit of one, against the definition's diskful replicas.
func differentFromAll(n *Node, f model.SelectFilter, existing []*Node) bool {
	r := rules{filter: f}
	for _, k := range r.differentKeys() {
		v, ok := n.Props[k]
		if !ok {
			continue
		}
		for _, e := range existing {
			if e.Props[k] == v {
				return false
			}
		}
	}
	return true
}

// disklessNodeRejected applies the node filters that also bind diskless
// resources: flags, online, AutoplaceTarget, node_name_list,
// not_place_with_rsc and fixed replicas_on_same values.
func disklessNodeRejected(n *Node, req Request, notWith *regexp.Regexp) bool {
	if nodeRejected(n, req.Filter, req.Replicas, notWith, req.Resource) != "" {
		return true
	}
	for _, e := range req.Filter.ReplicasOnSame {
		if k, v, ok := strings.Cut(e, "="); ok && n.Props[k] != v {
			return true
		}
	}
	return false
}

// holders are the node keys that hold any resource of req.Resource.
func holders(req Request) map[string]bool {
	out := map[string]bool{}
	for _, r := range req.Replicas {
		if model.SameName(r.Resource, req.Resource) {
			out[model.Key(r.Node)] = true
		}
	}
	return out
}

// Member is a resource of one definition, as the tie-breaker rule sees it.
type Member struct {
	Node       string
	Diskless   bool
	TieBreaker bool
	Deleting   bool
}

// WantTieBreaker is LINSTOR's rule (CtrlRscAutoTieBreakerHelper, research
// linstor-server.md §4): with auto-add-quorum-tiebreaker and quorum both
// enabled, a definition needs a tie-breaker when it has an even number, at
// least two, of diskful replicas and no diskless resource that already
// votes. Resources being deleted count for nothing; a tie-breaker is not a
// voter for this purpose, since it is what the rule decides about.
func WantTieBreaker(members []Member, enabled bool) bool {
	if !enabled {
		return false
	}
	diskful, voters := 0, 0
	for _, m := range members {
		switch {
		case m.Deleting:
		case !m.Diskless:
			diskful++
		case !m.TieBreaker:
			voters++
		}
	}
	return diskful >= 2 && diskful%2 == 0 && voters == 0
}

// TieBreakerEnabled resolves the two properties that switch the automatic
// tie-breaker on: DrbdOptions/auto-add-quorum-tiebreaker (true unless set
// to something else; LINSTOR's controller default is True) and quorum
// (on unless DrbdOptions/Resource/quorum is off or auto-quorum is
// disabled). get resolves a key in the definition's scope.
func TieBreakerEnabled(get func(key string) string) bool {
	if v := get(model.KeyAutoAddQuorumTiebreaker); v != "" && !strings.EqualFold(v, "true") {
		return false
	}
	if strings.EqualFold(get(model.KeyQuorum), "off") {
		return false
	}
	if strings.EqualFold(get(model.KeyAutoQuorum), "disabled") {
		return false
	}
	return true
}
