package state

import (
	"sync"

	"github.com/pvehci/pvehci/ha/pki"
	"github.com/pvehci/pvehci/storage/model"
)

// State is the replicated controller state. Apply, Snapshot and Restore
// are what the raft FSM calls; the read methods serve the REST layer. All
// methods are safe for concurrent use: writers take an exclusive lock,
// readers a shared one, and readers get deep copies.
//
// Objects are keyed by model.Key (LINSTOR names are case-insensitive). The
// indexes below the object maps are derived and rebuilt on Restore; they are
// never part of a snapshot.
type State struct {
	mu sync.RWMutex

	ctrl      model.Props
	nodes     map[string]*model.Node
	spDefs    map[string]*model.StoragePoolDefinition
	pools     map[poolKey]*model.StoragePool
	rgs       map[string]*model.ResourceGroup
	rds       map[string]*model.ResourceDefinition
	rscs      map[string]map[string]*model.Resource           // rd key → node key → resource
	snaps     map[string]map[string]*model.SnapshotDefinition // rd key → snapshot key → snapshot
	schedules map[string]*model.JobSchedule
	runs      map[string]*model.JobRun // run ID key → run
	relocs    map[string]*model.Relocation
	// events are the newest model.MaxEvents events, oldest first.
	events  []model.Event
	cluster *ClusterInfo
	members map[string]*Member
	tokens  map[string]*pki.TokenRecord // token ID → record

	idx indexes
}

// poolKey identifies one node's storage pool.
type poolKey struct{ node, pool string }

// indexes are derived from the objects, for lookups Apply does often.
type indexes struct {
	rscOnNode    map[string]map[string]bool // node key → rd keys of its resources
	minors       numberSet                  // minors held by volume definitions
	minorHolder  map[int]string             // minor → "rd/vnr", for error messages
	ports        map[string]*numberSet      // node key → TCP ports held by its resources
	poolUse      map[poolKey]int            // volumes and snapshot volumes per pool
	runsBySched  map[string]map[string]bool // schedule key ("" for manual runs) → run ID keys
	extNames     map[string]string          // external name → rd key
	snapsOnNode  map[string]int             // node key → snapshots held there
	rdsOfGroup   map[string]map[string]bool // rg key → rd keys
	poolsOfDefin map[string]int             // storage pool definition key → pools
}

// New returns the state of a new cluster: what a fresh LINSTOR database
// holds (the controller defaults, resource group DfltRscGrp with place count
// 2, storage pool definitions DfltStorPool and DfltDisklessStorPool), so that
// clients see what they would see on LINSTOR.
func New() *State {
	s := empty()
	s.ctrl = model.DefaultControllerProps()
	s.rgs[model.Key(model.DefaultResourceGroup)] = &model.ResourceGroup{
		Name:         model.DefaultResourceGroup,
		SelectFilter: model.SelectFilter{PlaceCount: model.DefaultPlaceCount},
	}
	for _, n := range []string{model.DefaultStoragePool, model.DefaultDisklessStoragePool} {
		s.spDefs[model.Key(n)] = &model.StoragePoolDefinition{Name: n}
	}
	s.reindex()
	return s
}

func empty() *State {
	return &State{
		nodes:     map[string]*model.Node{},
		spDefs:    map[string]*model.StoragePoolDefinition{},
		pools:     map[poolKey]*model.StoragePool{},
		rgs:       map[string]*model.ResourceGroup{},
		rds:       map[string]*model.ResourceDefinition{},
		rscs:      map[string]map[string]*model.Resource{},
		snaps:     map[string]map[string]*model.SnapshotDefinition{},
		schedules: map[string]*model.JobSchedule{},
		runs:      map[string]*model.JobRun{},
		relocs:    map[string]*model.Relocation{},
		members:   map[string]*Member{},
		tokens:    map[string]*pki.TokenRecord{},
	}
}

// reindex rebuilds every derived index from the objects.
func (s *State) reindex() {
	s.idx = indexes{
		rscOnNode:    map[string]map[string]bool{},
		minorHolder:  map[int]string{},
		ports:        map[string]*numberSet{},
		poolUse:      map[poolKey]int{},
		runsBySched:  map[string]map[string]bool{},
		extNames:     map[string]string{},
		snapsOnNode:  map[string]int{},
		rdsOfGroup:   map[string]map[string]bool{},
		poolsOfDefin: map[string]int{},
	}
	for k := range s.pools {
		s.idx.poolsOfDefin[k.pool]++
	}
	for rk, rd := range s.rds {
		s.indexRD(rk, rd)
		for _, r := range s.rscs[rk] {
			s.indexResource(r, +1)
		}
		for _, sd := range s.snaps[rk] {
			s.indexSnapshot(sd, +1)
		}
	}
	for id, run := range s.runs {
		s.indexRun(id, run)
	}
}

func (s *State) indexRD(rk string, rd *model.ResourceDefinition) {
	for _, vd := range rd.VolumeDefinitions {
		s.idx.minors.add(vd.Minor)
		s.idx.minorHolder[vd.Minor] = volName(rd.Name, vd.VolumeNumber)
	}
	if rd.ExternalName != "" {
		s.idx.extNames[rd.ExternalName] = rk
	}
	gk := model.Key(rd.ResourceGroup)
	if s.idx.rdsOfGroup[gk] == nil {
		s.idx.rdsOfGroup[gk] = map[string]bool{}
	}
	s.idx.rdsOfGroup[gk][rk] = true
}

func (s *State) unindexRD(rk string, rd *model.ResourceDefinition) {
	for _, vd := range rd.VolumeDefinitions {
		s.idx.minors.remove(vd.Minor)
		delete(s.idx.minorHolder, vd.Minor)
	}
	if rd.ExternalName != "" {
		delete(s.idx.extNames, rd.ExternalName)
	}
	delete(s.idx.rdsOfGroup[model.Key(rd.ResourceGroup)], rk)
}

// indexResource adds (dir +1) or removes (dir -1) a resource's index entries.
func (s *State) indexResource(r *model.Resource, dir int) {
	nk, rk := model.Key(r.Node), model.Key(r.Name)
	ports := s.portSet(nk)
	if dir > 0 {
		if s.idx.rscOnNode[nk] == nil {
			s.idx.rscOnNode[nk] = map[string]bool{}
		}
		s.idx.rscOnNode[nk][rk] = true
		for _, p := range r.TCPPorts {
			ports.add(p)
		}
	} else {
		delete(s.idx.rscOnNode[nk], rk)
		for _, p := range r.TCPPorts {
			ports.remove(p)
		}
	}
	for _, v := range r.Volumes {
		s.idx.poolUse[poolKey{nk, model.Key(v.StoragePool)}] += dir
	}
}

func (s *State) indexSnapshot(sd *model.SnapshotDefinition, dir int) {
	for _, sn := range sd.Snapshots {
		nk := model.Key(sn.Node)
		s.idx.snapsOnNode[nk] += dir
		for _, v := range sn.Volumes {
			s.idx.poolUse[poolKey{nk, model.Key(v.StoragePool)}] += dir
		}
	}
}

func (s *State) indexRun(id string, run *model.JobRun) {
	sk := model.Key(run.Schedule)
	if s.idx.runsBySched[sk] == nil {
		s.idx.runsBySched[sk] = map[string]bool{}
	}
	s.idx.runsBySched[sk][id] = true
}

func (s *State) portSet(nodeKey string) *numberSet {
	p := s.idx.ports[nodeKey]
	if p == nil {
		p = &numberSet{}
		s.idx.ports[nodeKey] = p
	}
	return p
}

func volName(rd string, vnr int) string { return rd + "/" + itoa(vnr) }

func rscName(rd, node string) string { return rd + " on " + node }
