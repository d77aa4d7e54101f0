package state

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/pvehci/pvehci/storage/model"
)

// sim drives random create/delete sequences against two states, one fed
// with Apply and one with encoded log entries, and checks after every step
// that both agree and that no DRBD number is held twice. Before each
// allocating step it computes, from the public read API alone, what the
// lowest-free rules say must be handed out.
type sim struct {
	t                                            *testing.T
	rng                                          *rand.Rand // drives the commands
	rrng                                         *rand.Rand // drives when to snapshot and restore, apart from rng
	a, b                                         *State
	last                                         []byte // snapshot of a after the previous step
	nodes                                        []string
	names                                        []string
	steps, allocs, refusals, exhausted, restores int
}

func newSim(t *testing.T, seed uint64) *sim {
	sm := &sim{t: t, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), rrng: rand.New(rand.NewPCG(seed, 1))}
	for i := 1; i <= 5; i++ {
		sm.nodes = append(sm.nodes, fmt.Sprintf("n%d", i))
	}
	for i := 0; i < 30; i++ {
		sm.names = append(sm.names, fmt.Sprintf("r%02d", i))
	}
	sm.a = cluster(t, 5)
	// Small ranges, so that exhaustion and reuse happen often.
	for _, c := range []Command{
		&SetProps{Target: Target{Kind: model.ObjController}, Change: model.PropsChange{Set: model.Props{
			model.KeyMinorNrAutoRange: "1000-1063", model.KeyTcpPortAutoRange: "7000-7015"}}},
		&ModifyNode{Name: "n5", Props: model.PropsChange{Set: model.Props{model.KeyTcpPortAutoRange: "8000-8003"}}},
	} {
		apply(t, sm.a, c)
	}
	sm.b = New()
	if err := sm.b.Restore(snapshotOf(t, sm.a)); err != nil {
		t.Fatal(err)
	}
	return sm
}

func (sm *sim) pick(list []string) string { return list[sm.rng.IntN(len(list))] }

// pickRD names an existing definition most of the time, so that most
// commands do something rather than fail on a missing parent.
func (sm *sim) pickRD() string {
	if rds := sm.a.ResourceDefinitions(); len(rds) > 0 && sm.rng.IntN(5) > 0 {
		return rds[sm.rng.IntN(len(rds))].Name
	}
	return sm.pick(sm.names)
}

// pickResource names an existing resource most of the time.
func (sm *sim) pickResource() (string, string) {
	if rs := sm.a.Resources(""); len(rs) > 0 && sm.rng.IntN(5) > 0 {
		r := rs[sm.rng.IntN(len(rs))]
		return r.Name, r.Node
	}
	return sm.pick(sm.names), sm.pick(sm.nodes)
}

// randomCommand returns the next command and, for allocating commands, a
// check of the allocations against the rules.
func (sm *sim) randomCommand() (Command, func(Result)) {
	r := sm.rng
	switch op := r.IntN(100); {
	case op < 15:
		c := &CreateResourceDefinition{Name: sm.pick(sm.names), DrbdSecret: testSecret}
		if r.IntN(4) == 0 {
			c.DrbdPort = 7000 + r.IntN(20)
		}
		for i := r.IntN(4); i > 0; i-- {
			vd := NewVolumeDefinition{SizeKiB: 1 + r.Int64N(1<<30)}
			if r.IntN(8) == 0 {
				vd.Minor = ptr(1000 + r.IntN(100))
			}
			c.VolumeDefinitions = append(c.VolumeDefinitions, vd)
		}
		return c, sm.expectMinors(c.VolumeDefinitions)
	case op < 22:
		return &DeleteResourceDefinition{Name: sm.pickRD()}, nil
	case op < 32:
		vd := NewVolumeDefinition{SizeKiB: 1 + r.Int64N(1<<20)}
		if r.IntN(8) == 0 {
			vd.Minor = ptr(1000 + r.IntN(100))
		}
		return &CreateVolumeDefinition{ResourceDefinition: sm.pickRD(), NewVolumeDefinition: vd}, sm.expectMinors([]NewVolumeDefinition{vd})
	case op < 38:
		return &DeleteVolumeDefinition{ResourceDefinition: sm.pickRD(), VolumeNumber: r.IntN(3)}, nil
	case op < 70:
		c := &CreateResource{ResourceDefinition: sm.pickRD(), Node: sm.pick(sm.nodes),
			Kind: []ResourceKind{Diskful, Diskful, Diskless, TieBreaker}[r.IntN(4)]}
		if r.IntN(10) == 0 {
			c.NodeID = ptr(r.IntN(32))
		}
		if r.IntN(10) == 0 {
			c.TCPPorts = []int{7000 + r.IntN(20)}
		} else if r.IntN(10) == 0 {
			c.TCPPortCount = 2
		}
		return c, sm.expectResource(c)
	case op < 90:
		rd, node := sm.pickResource()
		return &DeleteResource{ResourceDefinition: rd, Node: node}, nil
	default:
		rd, node := sm.pickResource()
		return &ToggleDisk{ResourceDefinition: rd, Node: node, Diskful: r.IntN(2) == 0}, nil
	}
}

// expectMinors predicts the minors of new volume definitions: explicit
// ones as asked, the others lowest free in 1000-1063 in order.
func (sm *sim) expectMinors(specs []NewVolumeDefinition) func(Result) {
	held := map[int]bool{}
	for _, rd := range sm.a.ResourceDefinitions() {
		for _, vd := range rd.VolumeDefinitions {
			held[vd.Minor] = true
		}
	}
	for _, sp := range specs {
		if sp.Minor != nil {
			held[*sp.Minor] = true
		}
	}
	var want []int
	next := 1000
	for _, sp := range specs {
		if sp.Minor != nil {
			want = append(want, *sp.Minor)
			continue
		}
		for next <= 1063 && held[next] {
			next++
		}
		if next > 1063 {
			want = append(want, -1) // exhausted
			continue
		}
		want = append(want, next)
		held[next] = true
	}
	return func(res Result) {
		if slices.Contains(want, -1) {
			if res.Err != nil && !errors.Is(res.Err, Exhausted) && !errors.Is(res.Err, Invalid) && !errors.Is(res.Err, NotFound) && !errors.Is(res.Err, Exists) {
				sm.t.Fatalf("step %d: exhausted minors gave %v", sm.steps, res.Err)
			}
			if res.Err == nil {
				sm.t.Fatalf("step %d: allocated a minor past the range: %v", sm.steps, res.Allocated)
			}
			return
		}
		if res.Err != nil {
			return
		}
		var got []int
		for _, a := range res.Allocated {
			got = append(got, a.Number)
		}
		if !slices.Equal(got, want) {
			sm.t.Fatalf("step %d: minors %v, lowest free says %v", sm.steps, got, want)
		}
	}
}

// expectResource predicts node id and ports of a new resource.
func (sm *sim) expectResource(c *CreateResource) func(Result) {
	rd, ok := sm.a.ResourceDefinition(c.ResourceDefinition)
	if !ok {
		return nil
	}
	ids := map[int]bool{}
	var peerPorts []int
	for _, r := range sm.a.Resources(rd.Name) {
		ids[r.NodeID] = true
		peerPorts = append(peerPorts, r.TCPPorts...)
	}
	wantID := 0
	for wantID < 32 && ids[wantID] {
		wantID++
	}
	if c.NodeID != nil {
		wantID = *c.NodeID
	}
	held := map[int]bool{}
	for _, r := range sm.a.ResourcesOnNode(c.Node) {
		for _, p := range r.TCPPorts {
			held[p] = true
		}
	}
	lo, hi := 7000, 7015
	if c.Node == "n5" {
		lo, hi = 8000, 8003
	}
	count := max(c.TCPPortCount, 1)
	var wantPorts []int
	if len(c.TCPPorts) > 0 {
		wantPorts = slices.Clone(c.TCPPorts)
	} else {
		prefs := peerPorts
		slices.Sort(prefs)
		if rd.Drbd.Port != 0 {
			prefs = append([]int{rd.Drbd.Port}, prefs...)
		}
		taken := map[int]bool{}
		for _, p := range prefs {
			if len(wantPorts) < count && p >= lo && p <= hi && !held[p] && !taken[p] {
				taken[p] = true
				wantPorts = append(wantPorts, p)
			}
		}
		for p := lo; p <= hi && len(wantPorts) < count; p++ {
			if !held[p] && !taken[p] {
				taken[p] = true
				wantPorts = append(wantPorts, p)
			}
		}
	}
	slices.Sort(wantPorts)
	portsExhausted := len(wantPorts) < count
	return func(res Result) {
		if res.Err != nil {
			if errors.Is(res.Err, Exhausted) && !portsExhausted && wantID < 32 {
				sm.t.Fatalf("step %d: exhausted although id %d and ports %v are free: %v", sm.steps, wantID, wantPorts, res.Err)
			}
			return
		}
		if portsExhausted || wantID == 32 {
			sm.t.Fatalf("step %d: allocated %v past exhaustion", sm.steps, res.Allocated)
		}
		gotID, gotPorts := -1, []int(nil)
		for _, a := range res.Allocated {
			switch a.Kind {
			case AllocNodeID:
				gotID = a.Number
			case AllocTCPPort:
				gotPorts = append(gotPorts, a.Number)
			}
		}
		if gotID != wantID || !slices.Equal(gotPorts, wantPorts) {
			sm.t.Fatalf("step %d: %s on %s got id %d ports %v, rules say id %d ports %v", sm.steps, c.ResourceDefinition, c.Node, gotID, gotPorts, wantID, wantPorts)
		}
	}
}

// checkInvariants verifies that no number is held twice.
func (sm *sim) checkInvariants() {
	t := sm.t
	minors := map[int]string{}
	for _, rd := range sm.a.ResourceDefinitions() {
		for _, vd := range rd.VolumeDefinitions {
			if other, dup := minors[vd.Minor]; dup {
				t.Fatalf("step %d: minor %d held by %s and %s/%d", sm.steps, vd.Minor, other, rd.Name, vd.VolumeNumber)
			}
			minors[vd.Minor] = rd.Name
		}
		ids := map[int]bool{}
		for _, r := range sm.a.Resources(rd.Name) {
			if ids[r.NodeID] || r.NodeID < 0 || r.NodeID > 31 {
				t.Fatalf("step %d: node id %d of %s on %s held twice or out of range", sm.steps, r.NodeID, r.Name, r.Node)
			}
			ids[r.NodeID] = true
			if len(r.Volumes) != len(rd.VolumeDefinitions) {
				t.Fatalf("step %d: %s on %s has %d volumes for %d definitions", sm.steps, r.Name, r.Node, len(r.Volumes), len(rd.VolumeDefinitions))
			}
		}
	}
	for _, n := range sm.nodes {
		ports := map[int]bool{}
		for _, r := range sm.a.ResourcesOnNode(n) {
			for _, p := range r.TCPPorts {
				if ports[p] {
					t.Fatalf("step %d: port %d held twice on %s", sm.steps, p, n)
				}
				ports[p] = true
			}
		}
	}
	checkIndexes(t, sm.a)
}

func (sm *sim) step() {
	sm.steps++
	cmd, expect := sm.randomCommand()
	if sm.last == nil {
		sm.last = snapshotOf(sm.t, sm.a)
	}
	before := sm.last
	ra := sm.a.Apply(cmd)
	entry, err := Encode(cmd)
	if err != nil {
		sm.t.Fatal(err)
	}
	rb := sm.b.ApplyEncoded(entry)
	if fmt.Sprint(ra.Err) != fmt.Sprint(rb.Err) || !reflect.DeepEqual(ra.Allocated, rb.Allocated) {
		sm.t.Fatalf("step %d %s: replicas disagree: %v %v / %v %v", sm.steps, cmd.Type(), ra.Err, ra.Allocated, rb.Err, rb.Allocated)
	}
	if expect != nil {
		expect(ra)
	}
	sm.last = snapshotOf(sm.t, sm.a)
	if ra.Err != nil {
		sm.refusals++
		if errors.Is(ra.Err, Exhausted) {
			sm.exhausted++
		}
		if !sameBytes(before, sm.last) {
			sm.t.Fatalf("step %d: refused %s changed the state", sm.steps, cmd.Type())
		}
	}
	sm.allocs += len(ra.Allocated)
	sm.checkInvariants()
	if sm.rrng.IntN(50) == 0 {
		// Snapshot, restore into a fresh state, and carry on with that one
		// as replica b: a restored replica must behave exactly the same.
		snap := snapshotOf(sm.t, sm.b)
		c := New()
		if err := c.Restore(snap); err != nil {
			sm.t.Fatalf("step %d: restore: %v", sm.steps, err)
		}
		if !sameBytes(snap, snapshotOf(sm.t, c)) {
			sm.t.Fatalf("step %d: snapshot changed across restore", sm.steps)
		}
		sm.b = c
		sm.restores++
	}
}

// drain deletes everything and checks that every number is free again.
func (sm *sim) drain() {
	for _, rd := range sm.a.ResourceDefinitions() {
		for _, st := range []*State{sm.a, sm.b} {
			apply(sm.t, st, &DeleteResourceDefinition{Name: rd.Name})
		}
	}
	sm.a.mu.RLock()
	defer sm.a.mu.RUnlock()
	if sm.a.idx.minors.n != 0 || len(sm.a.idx.minorHolder) != 0 {
		sm.t.Fatalf("minors still held after deleting everything: %d", sm.a.idx.minors.n)
	}
	for n, p := range sm.a.idx.ports {
		if p.n != 0 {
			sm.t.Fatalf("node %s still holds %d ports", n, p.n)
		}
	}
	for k, u := range sm.a.idx.poolUse {
		if u != 0 {
			sm.t.Fatalf("pool %v still used %d times", k, u)
		}
	}
}

func TestRandomSequences(t *testing.T) {
	steps := 2000
	if raceEnabled {
		steps = 1000
	}
	for _, seed := range []uint64{1, 7, 42, 2026, 0xdecafbad} {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Parallel()
			sm := newSim(t, seed)
			for range steps {
				sm.step()
			}
			final := snapshotOf(t, sm.a)
			if !sameBytes(final, snapshotOf(t, sm.b)) {
				t.Fatal("replicas fed the same commands differ")
			}
			// A third run of the same seed gives the same bytes: nothing
			// depends on map order or anything outside the commands.
			again := newSim(t, seed)
			for range steps {
				cmd, _ := again.randomCommand()
				again.a.Apply(cmd)
			}
			if !sameBytes(final, snapshotOf(t, again.a)) {
				t.Fatal("same seed, different state")
			}
			if sm.allocs < steps/4 || sm.exhausted == 0 || sm.restores == 0 {
				t.Fatalf("sequence too tame: %d allocations, %d exhaustions, %d restores", sm.allocs, sm.exhausted, sm.restores)
			}
			sm.drain()
			t.Logf("%d steps, %d numbers allocated, %d refusals (%d exhausted), %d restores", steps, sm.allocs, sm.refusals, sm.exhausted, sm.restores)
		})
	}
}
