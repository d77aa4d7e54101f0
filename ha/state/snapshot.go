package state

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"

	"github.com/pvehci/pvehci/ha/pki"
	"github.com/pvehci/pvehci/storage/model"
)

// SnapshotFormat is the format this binary writes. Restore reads it and
// every older format (through upgradeSnapshot); it refuses newer ones.
const SnapshotFormat = 2

// snapshotV1 is format 1 of the FSM snapshot: every object, each list
// sorted by the objects' keys, so that equal states give equal bytes.
type snapshotV1 struct {
	Format                 int                           `json:"format"`
	ControllerProps        model.Props                   `json:"controller_props,omitempty"`
	Nodes                  []model.Node                  `json:"nodes,omitempty"`
	StoragePoolDefinitions []model.StoragePoolDefinition `json:"storage_pool_definitions,omitempty"`
	StoragePools           []model.StoragePool           `json:"storage_pools,omitempty"`
	ResourceGroups         []model.ResourceGroup         `json:"resource_groups,omitempty"`
	ResourceDefinitions    []model.ResourceDefinition    `json:"resource_definitions,omitempty"`
	Resources              []model.Resource              `json:"resources,omitempty"`
	SnapshotDefinitions    []model.SnapshotDefinition    `json:"snapshot_definitions,omitempty"`
	JobSchedules           []model.JobSchedule           `json:"job_schedules,omitempty"`
	JobRuns                []model.JobRun                `json:"job_runs,omitempty"`
	Relocations            []model.Relocation            `json:"relocations,omitempty"`
	Events                 []model.Event                 `json:"events,omitempty"`
	Cluster                *ClusterInfo                  `json:"cluster,omitempty"`
	Members                []Member                      `json:"members,omitempty"`
	JoinTokens             []pki.TokenRecord             `json:"join_tokens,omitempty"`
}

// Snapshot writes the whole state as versioned JSON ({"format":1,...}).
// The same state always gives the same bytes.
func (s *State) Snapshot() ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	snap := snapshotV1{Format: SnapshotFormat, ControllerProps: s.ctrl}
	for _, k := range sortedKeys(s.nodes) {
		snap.Nodes = append(snap.Nodes, *s.nodes[k])
	}
	for _, k := range sortedKeys(s.spDefs) {
		snap.StoragePoolDefinitions = append(snap.StoragePoolDefinitions, *s.spDefs[k])
	}
	for _, k := range sortedPoolKeys(s.pools) {
		snap.StoragePools = append(snap.StoragePools, *s.pools[k])
	}
	for _, k := range sortedKeys(s.rgs) {
		snap.ResourceGroups = append(snap.ResourceGroups, *s.rgs[k])
	}
	for _, k := range sortedKeys(s.rds) {
		snap.ResourceDefinitions = append(snap.ResourceDefinitions, *s.rds[k])
		for _, r := range s.sortedResources(k) {
			snap.Resources = append(snap.Resources, *r)
		}
		for _, sk := range sortedKeys(s.snaps[k]) {
			snap.SnapshotDefinitions = append(snap.SnapshotDefinitions, *s.snaps[k][sk])
		}
	}
	for _, k := range sortedKeys(s.schedules) {
		snap.JobSchedules = append(snap.JobSchedules, *s.schedules[k])
	}
	for _, k := range sortedKeys(s.runs) {
		snap.JobRuns = append(snap.JobRuns, *s.runs[k])
	}
	for _, k := range sortedKeys(s.relocs) {
		snap.Relocations = append(snap.Relocations, *s.relocs[k])
	}
	snap.Events = slices.Clone(s.events)
	if s.cluster != nil {
		c := *s.cluster
		snap.Cluster = &c
	}
	for _, k := range sortedKeys(s.members) {
		snap.Members = append(snap.Members, *s.members[k])
	}
	for _, k := range sortedKeys(s.tokens) {
		snap.JoinTokens = append(snap.JoinTokens, *s.tokens[k])
	}
	b, err := json.Marshal(&snap)
	if err != nil {
		return nil, fmt.Errorf("writing state snapshot: %w", err)
	}
	return b, nil
}

func sortedPoolKeys(m map[poolKey]*model.StoragePool) []poolKey {
	keys := make([]poolKey, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b poolKey) int {
		if c := cmpStr(a.node, b.node); c != 0 {
			return c
		}
		return cmpStr(a.pool, b.pool)
	})
	return keys
}

// Restore replaces the state with a snapshot. It refuses a format newer
// than this binary knows (Unsupported: upgrade this node), and corrupt or
// inconsistent input (Invalid, naming the first problem). On error the
// state is unchanged.
func (s *State) Restore(data []byte) error {
	next, err := decodeSnapshot(data)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ctrl, s.nodes, s.spDefs, s.pools = next.ctrl, next.nodes, next.spDefs, next.pools
	s.rgs, s.rds, s.rscs, s.snaps = next.rgs, next.rds, next.rscs, next.snaps
	s.schedules, s.runs, s.relocs, s.idx = next.schedules, next.runs, next.relocs, next.idx
	s.cluster, s.members, s.tokens, s.events = next.cluster, next.members, next.tokens, next.events
	return nil
}

func restoreErr(kind ErrorKind, format string, args ...any) *Error {
	return &Error{Kind: kind, Message: "restoring state snapshot: " + fmt.Sprintf(format, args...),
		Correction: "the snapshot is damaged or from another program; restore from another node or an older snapshot"}
}

func decodeSnapshot(data []byte) (*State, error) {
	var head struct {
		Format *int `json:"format"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, restoreErr(Invalid, "not a JSON object: %v", err)
	}
	if head.Format == nil {
		return nil, restoreErr(Invalid, "no \"format\" member; this is not a pvehci state snapshot")
	}
	f := *head.Format
	if f > SnapshotFormat {
		e := restoreErr(Unsupported, "format %d is newer than this binary reads (1 to %d)", f, SnapshotFormat)
		e.Correction = "upgrade pvehci on this node first"
		return nil, e
	}
	if f < 1 {
		return nil, restoreErr(Invalid, "format %d does not exist", f)
	}
	data, err := upgradeSnapshot(f, data)
	if err != nil {
		return nil, restoreErr(Invalid, "upgrading from format %d: %v", f, err)
	}
	var snap snapshotV1
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&snap); err != nil {
		return nil, restoreErr(Invalid, "decoding format %d: %v", SnapshotFormat, err)
	}
	if dec.More() {
		return nil, restoreErr(Invalid, "trailing data after the snapshot object")
	}
	return build(&snap)
}

// upgradeSnapshot rewrites an older format to the current one, one format
// at a time. Each step stays in the table for good.
//
// Format 2 added "events" (the relocation event log). A format-1 snapshot
// has none and is otherwise format 2; only the number changes. The number
// had to change: an older binary reads snapshots strictly, and a clear
// "format 2 is newer than this binary reads" beats a decode error.
func upgradeSnapshot(from int, data []byte) ([]byte, error) {
	upgrades := map[int]func([]byte) ([]byte, error){
		1: func(b []byte) ([]byte, error) { return setFormat(b, 2) },
	}
	for f := from; f < SnapshotFormat; f++ {
		up, ok := upgrades[f]
		if !ok {
			return nil, fmt.Errorf("no upgrade from format %d", f)
		}
		var err error
		if data, err = up(data); err != nil {
			return nil, fmt.Errorf("format %d to %d: %w", f, f+1, err)
		}
	}
	return data, nil
}

// build makes a State from a decoded snapshot and checks that it is
// consistent: unique keys, references that resolve, and no DRBD number held
// twice. A snapshot that fails these checks would make Apply misbehave
// later, far from the cause.
func build(snap *snapshotV1) (*State, error) {
	s := empty()
	s.ctrl = snap.ControllerProps.Clone()
	for i := range snap.Nodes {
		n := snap.Nodes[i].Clone()
		k := model.Key(n.Name)
		if _, dup := s.nodes[k]; dup || n.Name == "" {
			return nil, restoreErr(Invalid, "node %q is missing a name or listed twice", n.Name)
		}
		s.nodes[k] = &n
	}
	for i := range snap.StoragePoolDefinitions {
		d := snap.StoragePoolDefinitions[i].Clone()
		k := model.Key(d.Name)
		if _, dup := s.spDefs[k]; dup || d.Name == "" {
			return nil, restoreErr(Invalid, "storage pool definition %q is missing a name or listed twice", d.Name)
		}
		s.spDefs[k] = &d
	}
	for i := range snap.StoragePools {
		p := snap.StoragePools[i].Clone()
		k := poolKey{model.Key(p.Node), model.Key(p.Name)}
		if _, ok := s.nodes[k.node]; !ok {
			return nil, restoreErr(Invalid, "storage pool %s is on node %s, which does not exist", p.Name, p.Node)
		}
		if _, ok := s.spDefs[k.pool]; !ok {
			return nil, restoreErr(Invalid, "storage pool %s on %s has no storage pool definition", p.Name, p.Node)
		}
		if _, dup := s.pools[k]; dup {
			return nil, restoreErr(Invalid, "storage pool %s on %s is listed twice", p.Name, p.Node)
		}
		s.pools[k] = &p
	}
	for i := range snap.ResourceGroups {
		g := snap.ResourceGroups[i].Clone()
		k := model.Key(g.Name)
		if _, dup := s.rgs[k]; dup || g.Name == "" {
			return nil, restoreErr(Invalid, "resource group %q is missing a name or listed twice", g.Name)
		}
		s.rgs[k] = &g
	}
	minors := map[int]string{}
	for i := range snap.ResourceDefinitions {
		d := snap.ResourceDefinitions[i].Clone()
		k := model.Key(d.Name)
		if _, dup := s.rds[k]; dup || d.Name == "" {
			return nil, restoreErr(Invalid, "resource definition %q is missing a name or listed twice", d.Name)
		}
		if _, ok := s.rgs[model.Key(d.ResourceGroup)]; !ok {
			return nil, restoreErr(Invalid, "resource definition %s is in resource group %s, which does not exist", d.Name, d.ResourceGroup)
		}
		for _, vd := range d.VolumeDefinitions {
			if other, dup := minors[vd.Minor]; dup {
				return nil, restoreErr(Invalid, "minor %d is held by both %s and %s", vd.Minor, other, volName(d.Name, vd.VolumeNumber))
			}
			minors[vd.Minor] = volName(d.Name, vd.VolumeNumber)
		}
		s.rds[k] = &d
	}
	ports := map[string]map[int]string{}
	for i := range snap.Resources {
		r := snap.Resources[i].Clone()
		rk, nk := model.Key(r.Name), model.Key(r.Node)
		name := rscName(r.Name, r.Node)
		rd, ok := s.rds[rk]
		if !ok {
			return nil, restoreErr(Invalid, "resource %s belongs to no resource definition", name)
		}
		if _, ok := s.nodes[nk]; !ok {
			return nil, restoreErr(Invalid, "resource %s is on a node that does not exist", name)
		}
		if s.rscs[rk] == nil {
			s.rscs[rk] = map[string]*model.Resource{}
		}
		if _, dup := s.rscs[rk][nk]; dup {
			return nil, restoreErr(Invalid, "resource %s is listed twice", name)
		}
		for _, o := range s.rscs[rk] {
			if o.NodeID == r.NodeID {
				return nil, restoreErr(Invalid, "DRBD node id %d is held by both %s and %s", r.NodeID, rscName(o.Name, o.Node), name)
			}
		}
		if !model.NodeIDLimits().Contains(r.NodeID) {
			return nil, restoreErr(Invalid, "resource %s has DRBD node id %d", name, r.NodeID)
		}
		if ports[nk] == nil {
			ports[nk] = map[int]string{}
		}
		for _, p := range r.TCPPorts {
			if other, dup := ports[nk][p]; dup {
				return nil, restoreErr(Invalid, "TCP port %d on %s is held by both %s and %s", p, r.Node, other, name)
			}
			ports[nk][p] = name
		}
		for _, v := range r.Volumes {
			if _, ok := rd.VolumeDefinition(v.VolumeNumber); !ok {
				return nil, restoreErr(Invalid, "resource %s has volume %d, which its definition lacks", name, v.VolumeNumber)
			}
			if _, ok := s.pools[poolKey{nk, model.Key(v.StoragePool)}]; !ok {
				return nil, restoreErr(Invalid, "resource %s uses storage pool %s, which its node lacks", name, v.StoragePool)
			}
		}
		s.rscs[rk][nk] = &r
	}
	for i := range snap.SnapshotDefinitions {
		sd := snap.SnapshotDefinitions[i].Clone()
		rk, sk := model.Key(sd.ResourceName), model.Key(sd.Name)
		if _, ok := s.rds[rk]; !ok {
			return nil, restoreErr(Invalid, "snapshot %s belongs to no resource definition %s", sd.Name, sd.ResourceName)
		}
		if s.snaps[rk] == nil {
			s.snaps[rk] = map[string]*model.SnapshotDefinition{}
		}
		if _, dup := s.snaps[rk][sk]; dup {
			return nil, restoreErr(Invalid, "snapshot %s/%s is listed twice", sd.ResourceName, sd.Name)
		}
		for _, sn := range sd.Snapshots {
			for _, v := range sn.Volumes {
				if _, ok := s.pools[poolKey{model.Key(sn.Node), model.Key(v.StoragePool)}]; !ok {
					return nil, restoreErr(Invalid, "snapshot %s/%s on %s uses storage pool %s, which does not exist there", sd.ResourceName, sd.Name, sn.Node, v.StoragePool)
				}
			}
		}
		s.snaps[rk][sk] = &sd
	}
	for i := range snap.JobSchedules {
		js := snap.JobSchedules[i].Clone()
		k := model.Key(js.Name)
		if _, dup := s.schedules[k]; dup || js.Name == "" {
			return nil, restoreErr(Invalid, "job schedule %q is missing a name or listed twice", js.Name)
		}
		s.schedules[k] = &js
	}
	for i := range snap.JobRuns {
		run := snap.JobRuns[i].Clone()
		k := model.Key(run.ID)
		if _, dup := s.runs[k]; dup || run.ID == "" {
			return nil, restoreErr(Invalid, "job run %q is missing an ID or listed twice", run.ID)
		}
		if run.Schedule != "" {
			if _, ok := s.schedules[model.Key(run.Schedule)]; !ok {
				return nil, restoreErr(Invalid, "job run %s belongs to schedule %s, which does not exist", run.ID, run.Schedule)
			}
		}
		s.runs[k] = &run
	}
	for i := range snap.Relocations {
		rel := snap.Relocations[i]
		k := model.Key(rel.ResourceName)
		if _, ok := s.rds[k]; !ok {
			return nil, restoreErr(Invalid, "relocation of %s refers to a resource definition that does not exist", rel.ResourceName)
		}
		if _, dup := s.relocs[k]; dup {
			return nil, restoreErr(Invalid, "relocation of %s is listed twice", rel.ResourceName)
		}
		s.relocs[k] = &rel
	}
	if len(snap.Events) > model.MaxEvents {
		return nil, restoreErr(Invalid, "%d events, more than the %d kept", len(snap.Events), model.MaxEvents)
	}
	s.events = slices.Clone(snap.Events)
	if snap.Cluster != nil {
		c := *snap.Cluster
		s.cluster = &c
	}
	for i := range snap.Members {
		m := snap.Members[i]
		k := model.Key(m.Name)
		if _, dup := s.members[k]; dup || m.Name == "" {
			return nil, restoreErr(Invalid, "cluster member %q is missing a name or listed twice", m.Name)
		}
		s.members[k] = &m
	}
	for i := range snap.JoinTokens {
		t := snap.JoinTokens[i]
		if _, dup := s.tokens[t.ID]; dup || t.ID == "" {
			return nil, restoreErr(Invalid, "join token %q is missing an ID or listed twice", t.ID)
		}
		s.tokens[t.ID] = &t
	}
	s.reindex()
	return s, nil
}

// setFormat rewrites a snapshot's "format" member.
func setFormat(data []byte, format int) ([]byte, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	m["format"] = json.RawMessage(strconv.Itoa(format))
	return json.Marshal(m)
}
