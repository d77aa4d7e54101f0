// Package placement decides where the replicas of a resource definition go:
// LINSTOR's autoplacer (research linstor-server.md §4) reduced to the parts
// pvehci serves, as pure functions over a snapshot of nodes, storage pools
// and existing resources that the caller assembles.
//
// [Place] picks storage pools for new diskful replicas. It filters the
// candidates the way LINSTOR's StorPoolFilter does (node flags and
// AutoplaceTarget, node_name_list, storage_pool(_list), provider_list,
// not_place_with_rsc(_regex), replicas_on_same/different, free capacity with
// thin over-provisioning), scores the survivors by free space (LINSTOR's
// default MaxFreeSpace strategy, with the resource count as the tie-breaker
// LINSTOR's MinRscCount weight 0.00001 amounts to), and searches for the
// combination with the most free space in total that keeps one replica per
// node, one storage provider per definition, and the same/different rules. Ties go to the candidate whose node
// and pool names sort first, so that the same inputs always give the same
// answer on every controller.
//
// [DisklessOnRemaining] and [TieBreaker] pick diskless pools, and
// [WantTieBreaker] is LINSTOR's rule for when a resource definition needs a
// quorum tie-breaker: auto-add-quorum-tiebreaker on, quorum on, an even
// number (at least 2) of diskful replicas and no other diskless voter.
//
// Nothing here reads the replicated state, the clock or the network: the
// REST layer (storage/api) gathers the inputs, including the pool
// capacities the satellites report, and applies the result as state
// commands. A refusal is an [*Error] that lists every rejected candidate
// with its reason, so that an operator can see why a replica did not fit.
package placement
