package state

import (
	"cmp"
	"slices"

	"github.com/pvehci/pvehci/storage/model"
)

// Read methods return deep copies, in a stable order (by object key), so
// that callers can neither change the state nor observe map order.

// ControllerProps returns the controller's properties.
func (s *State) ControllerProps() model.Props {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.ctrl.Clone()
}

// Node returns the named node.
func (s *State) Node(name string) (model.Node, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if n, ok := s.nodes[model.Key(name)]; ok {
		return n.Clone(), true
	}
	return model.Node{}, false
}

// Nodes returns every node.
func (s *State) Nodes() []model.Node {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]model.Node, 0, len(s.nodes))
	for _, k := range sortedKeys(s.nodes) {
		out = append(out, s.nodes[k].Clone())
	}
	return out
}

// StoragePoolDefinitions returns every storage pool definition.
func (s *State) StoragePoolDefinitions() []model.StoragePoolDefinition {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]model.StoragePoolDefinition, 0, len(s.spDefs))
	for _, k := range sortedKeys(s.spDefs) {
		out = append(out, s.spDefs[k].Clone())
	}
	return out
}

// StoragePool returns a node's pool.
func (s *State) StoragePool(node, name string) (model.StoragePool, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if p, ok := s.pools[poolKey{model.Key(node), model.Key(name)}]; ok {
		return p.Clone(), true
	}
	return model.StoragePool{}, false
}

// StoragePools returns every pool, by node then name.
func (s *State) StoragePools() []model.StoragePool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]model.StoragePool, 0, len(s.pools))
	for _, k := range sortedPoolKeys(s.pools) {
		out = append(out, s.pools[k].Clone())
	}
	return out
}

// ResourceGroup returns the named group.
func (s *State) ResourceGroup(name string) (model.ResourceGroup, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if g, ok := s.rgs[model.Key(name)]; ok {
		return g.Clone(), true
	}
	return model.ResourceGroup{}, false
}

// ResourceGroups returns every group.
func (s *State) ResourceGroups() []model.ResourceGroup {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]model.ResourceGroup, 0, len(s.rgs))
	for _, k := range sortedKeys(s.rgs) {
		out = append(out, s.rgs[k].Clone())
	}
	return out
}

// ResourceDefinition returns the named definition with its volume definitions.
func (s *State) ResourceDefinition(name string) (model.ResourceDefinition, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if d, ok := s.rds[model.Key(name)]; ok {
		return d.Clone(), true
	}
	return model.ResourceDefinition{}, false
}

// ResourceDefinitions returns every definition.
func (s *State) ResourceDefinitions() []model.ResourceDefinition {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]model.ResourceDefinition, 0, len(s.rds))
	for _, k := range sortedKeys(s.rds) {
		out = append(out, s.rds[k].Clone())
	}
	return out
}

// Resource returns a definition's resource on a node.
func (s *State) Resource(rd, node string) (model.Resource, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if r, ok := s.rscs[model.Key(rd)][model.Key(node)]; ok {
		return r.Clone(), true
	}
	return model.Resource{}, false
}

// Resources returns a definition's resources by node; with rd empty, every
// resource by definition then node.
func (s *State) Resources(rd string) []model.Resource {
	s.mu.RLock()
	defer s.mu.RUnlock()
	keys := []string{model.Key(rd)}
	if rd == "" {
		keys = sortedKeys(s.rscs)
	}
	var out []model.Resource
	for _, k := range keys {
		for _, r := range s.sortedResources(k) {
			out = append(out, r.Clone())
		}
	}
	return out
}

// ResourcesOnNode returns the resources a node holds, by definition.
func (s *State) ResourcesOnNode(node string) []model.Resource {
	s.mu.RLock()
	defer s.mu.RUnlock()
	nk := model.Key(node)
	var out []model.Resource
	for _, rk := range sortedKeys(s.idx.rscOnNode[nk]) {
		out = append(out, s.rscs[rk][nk].Clone())
	}
	return out
}

// SnapshotDefinition returns a definition's snapshot.
func (s *State) SnapshotDefinition(rd, name string) (model.SnapshotDefinition, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if sd, ok := s.snaps[model.Key(rd)][model.Key(name)]; ok {
		return sd.Clone(), true
	}
	return model.SnapshotDefinition{}, false
}

// SnapshotDefinitions returns a definition's snapshots; with rd empty,
// every snapshot by definition then name.
func (s *State) SnapshotDefinitions(rd string) []model.SnapshotDefinition {
	s.mu.RLock()
	defer s.mu.RUnlock()
	keys := []string{model.Key(rd)}
	if rd == "" {
		keys = sortedKeys(s.snaps)
	}
	var out []model.SnapshotDefinition
	for _, k := range keys {
		for _, sk := range sortedKeys(s.snaps[k]) {
			out = append(out, s.snaps[k][sk].Clone())
		}
	}
	return out
}

// JobSchedule returns the named schedule.
func (s *State) JobSchedule(name string) (model.JobSchedule, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if js, ok := s.schedules[model.Key(name)]; ok {
		return js.Clone(), true
	}
	return model.JobSchedule{}, false
}

// JobSchedules returns every schedule.
func (s *State) JobSchedules() []model.JobSchedule {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]model.JobSchedule, 0, len(s.schedules))
	for _, k := range sortedKeys(s.schedules) {
		out = append(out, s.schedules[k].Clone())
	}
	return out
}

// JobRuns returns a schedule's run history ("" for manual runs), oldest
// first.
func (s *State) JobRuns(schedule string) []model.JobRun {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []model.JobRun
	for _, id := range sortedKeys(s.idx.runsBySched[model.Key(schedule)]) {
		out = append(out, s.runs[id].Clone())
	}
	sortRuns(out)
	return out
}

// AllJobRuns returns every run: each schedule's (schedules by name, runs
// oldest first), then the manual runs.
func (s *State) AllJobRuns() []model.JobRun {
	var out []model.JobRun
	for _, js := range s.JobSchedules() {
		out = append(out, s.JobRuns(js.Name)...)
	}
	return append(out, s.JobRuns("")...)
}

func sortRuns(runs []model.JobRun) {
	slices.SortStableFunc(runs, func(a, b model.JobRun) int { return cmp.Compare(a.StartedAt, b.StartedAt) })
}

// Relocation returns the relocation of a definition.
func (s *State) Relocation(rd string) (model.Relocation, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if r, ok := s.relocs[model.Key(rd)]; ok {
		return *r, true
	}
	return model.Relocation{}, false
}

// Relocations returns every relocation.
func (s *State) Relocations() []model.Relocation {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]model.Relocation, 0, len(s.relocs))
	for _, k := range sortedKeys(s.relocs) {
		out = append(out, *s.relocs[k])
	}
	return out
}

// ResourceScope returns the property inheritance scope of a resource
// (controller, group, definition, node, resource, and the storage pool of
// its first volume). The node need not hold the resource: the scope then
// lacks the resource and pool levels, which is what placement asks about.
func (s *State) ResourceScope(rd, node string) (model.Scope, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	d, err := s.definition(rd)
	if err != nil {
		return model.Scope{}, err
	}
	r := s.rscs[model.Key(rd)][model.Key(node)]
	return s.scopeFor(d, r, node, -1).Clone(), nil
}

// VolumeScope is ResourceScope plus the volume group, volume definition and
// volume of volume number vnr.
func (s *State) VolumeScope(rd, node string, vnr int) (model.Scope, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	d, err := s.definition(rd)
	if err != nil {
		return model.Scope{}, err
	}
	if _, ok := d.VolumeDefinition(vnr); !ok {
		return model.Scope{}, errNotFound(model.ObjVolumeDefinition, volName(d.Name, vnr))
	}
	r := s.rscs[model.Key(rd)][model.Key(node)]
	return s.scopeFor(d, r, node, vnr).Clone(), nil
}

// Events returns the recorded events at or after since (ms since the
// epoch), in the order they were recorded. The times are the leader's
// clock, which may step back, so the filter looks at every event (there
// are at most model.MaxEvents).
func (s *State) Events(since int64) []model.Event {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []model.Event
	for _, e := range s.events {
		if e.At >= since {
			out = append(out, e)
		}
	}
	return out
}
