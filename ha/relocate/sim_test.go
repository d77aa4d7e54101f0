package relocate

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/pvehci/pvehci/ha/state"
	"github.com/pvehci/pvehci/storage/model"
)

const testSecret = "Zm9vYmFyYmF6cXV4MTIzNDU2"

// sizeKiB is every test VM's disk size.
const sizeKiB = 10 << 20

// sim is a fake cluster: the replicated state, what the satellites would
// report, where the VMs run, and a clock. It applies decisions with their
// state commands and plays the satellites' part.
type sim struct {
	t   *testing.T
	st  *state.State
	obs Observed
	vms VMLocations
	now time.Time
	lim Limits
	log []Decision // every decision applied, in order
}

// newSim returns a cluster of satellites n1..nN, each with an LVM thin
// DfltStorPool of 100 GiB free, and a resource group "pve" with the given
// place count.
func newSim(t *testing.T, nodes, place int) *sim {
	t.Helper()
	s := &sim{t: t, st: state.New(), vms: VMLocations{}, now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC),
		obs: Observed{Replicas: map[ResourceKey]Replica{}, PoolFreeKiB: map[PoolKey]int64{}}}
	for i := 1; i <= nodes; i++ {
		n := fmt.Sprintf("n%d", i)
		s.apply(&state.CreateNode{Name: n, NodeType: model.NodeTypeSatellite,
			NetInterfaces: []model.NetInterface{{Name: "default", Address: fmt.Sprintf("10.0.0.%d", i)}}})
		s.apply(&state.CreateStoragePool{Node: n, Name: model.DefaultStoragePool, ProviderKind: model.ProviderLVMThin,
			Props: model.Props{model.KeyStorDriverLvmVg: "pve", model.KeyStorDriverThinPool: "data"}})
		s.obs.PoolFreeKiB[PK(n, model.DefaultStoragePool)] = 100 << 20
	}
	s.apply(&state.CreateResourceGroup{Name: "pve", SelectFilter: model.SelectFilter{PlaceCount: place}})
	return s
}

func (s *sim) apply(cmd state.Command) {
	s.t.Helper()
	if res := s.st.Apply(cmd); res.Err != nil {
		s.t.Fatalf("%s: %v", cmd.Type(), res.Err)
	}
}

// addVM creates the disk of VM vmid, diskful and UpToDate on the given
// nodes, running (Primary) on the first.
func (s *sim) addVM(rd, vmid string, nodes ...string) {
	s.t.Helper()
	s.apply(&state.CreateResourceDefinition{Name: rd, ResourceGroup: "pve", DrbdSecret: testSecret,
		Props:             model.Props{model.KeyAuxVMID: vmid},
		VolumeDefinitions: []state.NewVolumeDefinition{{SizeKiB: sizeKiB}}})
	for _, n := range nodes {
		s.apply(&state.CreateResource{ResourceDefinition: rd, Node: n, Kind: state.Diskful})
		s.obs.Replicas[RK(rd, n)] = Replica{Disk: DiskUpToDate}
	}
	s.setPrimary(rd, nodes[0], true)
	s.vms[vmid] = VM{Node: nodes[0], Since: s.now.Add(-24 * time.Hour)}
	s.connectAll(rd)
}

func (s *sim) setPrimary(rd, node string, p bool) {
	r := s.obs.Replicas[RK(rd, node)]
	r.Primary = p
	s.obs.Replicas[RK(rd, node)] = r
}

func (s *sim) setDisk(rd, node string, d DiskState) {
	r := s.obs.Replicas[RK(rd, node)]
	r.Disk = d
	s.obs.Replicas[RK(rd, node)] = r
}

// connectAll connects every replica of rd to every other.
func (s *sim) connectAll(rd string) {
	rscs := s.st.Resources(rd)
	for _, r := range rscs {
		o := s.obs.Replicas[RK(rd, r.Node)]
		o.Connected = nil
		for _, p := range rscs {
			if p.Node != r.Node {
				o.Connected = append(o.Connected, p.Node)
			}
		}
		s.obs.Replicas[RK(rd, r.Node)] = o
	}
}

// startMigration is phase 1 of a live migration: the target activates the
// volume (a diskless client if it has no replica) and both are Primary.
func (s *sim) startMigration(rd, vmid, to string) {
	s.t.Helper()
	if _, ok := s.st.Resource(rd, to); !ok {
		s.apply(&state.CreateResource{ResourceDefinition: rd, Node: to, Kind: state.Diskless})
		s.obs.Replicas[RK(rd, to)] = Replica{Disk: DiskDiskless}
		s.connectAll(rd)
	}
	s.setPrimary(rd, to, true)
	vm := s.vms[vmid]
	vm.Migrating = true
	s.vms[vmid] = vm
}

// finishMigration stops the source and deactivates its volume, which
// deletes a diskless source resource (research linstor-proxmox.md §8 step 3).
func (s *sim) finishMigration(rd, vmid, to string) {
	s.t.Helper()
	vm := s.vms[vmid]
	from := vm.Node
	s.setPrimary(rd, from, false)
	if r, _ := s.st.Resource(rd, from); r.Diskless() && !r.TieBreaker() {
		s.apply(&state.DeleteResource{ResourceDefinition: rd, Node: from})
		delete(s.obs.Replicas, RK(rd, from))
		s.connectAll(rd)
	}
	s.vms[vmid] = VM{Node: to, PreviousNode: from, Since: s.now}
}

func (s *sim) migrate(rd, vmid, to string) {
	s.startMigration(rd, vmid, to)
	s.finishMigration(rd, vmid, to)
}

// decide runs Decide without applying anything.
func (s *sim) decide() []Decision { return Decide(s.st, s.obs, s.vms, s.now, s.lim) }

// step runs Decide, applies every decision and plays the satellites.
func (s *sim) step() []Decision {
	s.t.Helper()
	ds := s.decide()
	for _, d := range ds {
		s.applyDecision(d, -1)
	}
	return ds
}

// applyDecision applies the first n commands of d (all when n < 0) and
// plays the satellites: a new disk starts syncing (Inconsistent), a
// resource flagged DELETE is deleted.
func (s *sim) applyDecision(d Decision, n int) {
	s.t.Helper()
	cmds := d.Commands(s.now)
	if len(cmds) == 0 {
		s.t.Fatalf("decision %+v has no commands", d)
	}
	if n >= 0 {
		cmds = cmds[:n]
	} else {
		s.log = append(s.log, d)
	}
	for _, c := range cmds {
		s.apply(c)
	}
	for _, r := range s.st.Resources(d.Resource) {
		o := s.obs.Replicas[RK(r.Name, r.Node)]
		switch {
		case r.Flags.Has(model.RscFlagDelete):
			s.apply(&state.DeleteResource{ResourceDefinition: r.Name, Node: r.Node})
			delete(s.obs.Replicas, RK(r.Name, r.Node))
			s.connectAll(r.Name)
		case !r.Diskless() && o.Disk == DiskDiskless:
			s.setDisk(r.Name, r.Node, DiskInconsistent)
		case r.Diskless() && o.Disk != DiskDiskless:
			s.setDisk(r.Name, r.Node, DiskDiskless)
		}
	}
}

// failover throws away everything but the replicated state, as a new
// leader sees it: the state from a snapshot, observations reported afresh.
func (s *sim) failover() {
	s.t.Helper()
	snap, err := s.st.Snapshot()
	if err != nil {
		s.t.Fatal(err)
	}
	next := state.New()
	if err := next.Restore(snap); err != nil {
		s.t.Fatal(err)
	}
	s.st = next
}

func (s *sim) diskful(rd string) []string {
	var out []string
	for _, r := range s.st.Resources(rd) {
		if !r.Diskless() {
			out = append(out, r.Node)
		}
	}
	return out
}

func kinds(ds []Decision) []Kind {
	out := []Kind{}
	for _, d := range ds {
		out = append(out, d.Kind)
	}
	return out
}

// want checks the kinds of ds.
func want(t *testing.T, ds []Decision, ks ...Kind) {
	t.Helper()
	if ks == nil {
		ks = []Kind{}
	}
	if got := kinds(ds); !slices.Equal(got, ks) {
		t.Fatalf("decisions %v, want %v:\n%s", got, ks, describe(ds))
	}
	for _, d := range ds {
		if d.Reason == "" {
			t.Fatalf("decision without reason: %+v", d)
		}
	}
}

func describe(ds []Decision) string {
	out := ""
	for _, d := range ds {
		out += fmt.Sprintf("  %s %s %s: %s\n", d.Kind, d.Resource, d.Node, d.Reason)
	}
	return out
}

func (s *sim) relocation(rd string) model.Relocation {
	s.t.Helper()
	rel, ok := s.st.Relocation(rd)
	if !ok {
		s.t.Fatalf("no relocation of %s", rd)
	}
	return rel
}
