package satellite

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/pvehci/pvehci/ha/state"
	"github.com/pvehci/pvehci/storage/drbd"
	"github.com/pvehci/pvehci/storage/model"
)

func TestPlanDropPeers(t *testing.T) {
	d := DesiredResource{Name: rsc, NodeID: 0, Peers: []int{1}}
	res := func(ids ...string) []byte {
		var b strings.Builder
		for _, id := range ids {
			b.WriteString("    on pve" + id + " {\n        node-id " + id + ";\n    }\n")
		}
		return []byte(b.String())
	}
	conns := func(ids ...int) drbd.ObservedResource {
		var k drbd.ObservedResource
		for _, id := range ids {
			k.Connections = append(k.Connections, drbd.ObservedConnection{PeerNodeID: id})
		}
		return k
	}
	tests := []struct {
		name string
		old  []byte
		k    drbd.ObservedResource
		want []string
	}{
		{"nobody left", res("0", "1"), conns(1), nil},
		{"a peer left, still connected", res("0", "1", "2"), conns(1, 2), []string{"DropPeer " + rsc + " node id 2 del-peer"}},
		{"del-peer done, forget-peer not (a crash)", res("0", "1", "2"), conns(1), []string{"DropPeer " + rsc + " node id 2"}},
		{"the .res rewritten, adjust not yet run", res("0", "1"), conns(1, 3), []string{"DropPeer " + rsc + " node id 3 del-peer"}},
		{"two left", res("0", "1", "4", "2"), conns(1), []string{"DropPeer " + rsc + " node id 2", "DropPeer " + rsc + " node id 4"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, a := range planDropPeers(d, tt.old, tt.k) {
				s := a.String()
				if a.DelPeer {
					s += " del-peer"
				}
				got = append(got, s)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// A replica deleted from a three-way resource: the two nodes that keep it
// take the connection down and free its bitmap slot before they rewrite
// the .res, and a pass after that plans nothing.
func TestDropPeerOnSim(t *testing.T) {
	t.Parallel()
	s := kindCluster(t, 8<<10, state.Diskful, state.Diskful, state.Diskful)
	c := newSimCluster(t, s, "pve1", "pve2", "pve3")
	c.converge()
	c.net.Settle()
	for _, n := range c.order {
		c.nodes[n].takeCmds()
	}
	setResourceFlag(t, s, rsc, "pve3", model.RscFlagDrbdDelete)
	for _, n := range []string{"pve1", "pve2"} {
		rep, err := c.reconciler(n).Pass(context.Background(), s)
		if err != nil {
			t.Fatal(err)
		}
		var kinds []Kind
		for _, o := range rep.Outcomes {
			if o.Err != nil {
				t.Fatalf("%s: %s: %v", n, o.Action, o.Err)
			}
			kinds = append(kinds, o.Action.Kind)
		}
		if !slices.Equal(kinds, []Kind{DropPeer, WriteRes, Adjust}) {
			t.Errorf("%s ran %v, want DropPeer, WriteRes, Adjust", n, kinds)
		}
		var ran []string
		for _, cmd := range c.nodes[n].takeCmds() {
			if cmd.Name == "drbdsetup" && (cmd.Args[0] == "del-peer" || cmd.Args[0] == "forget-peer") {
				ran = append(ran, strings.Join(cmd.Argv(), " "))
			}
		}
		if want := []string{"drbdsetup del-peer " + rsc + " 2", "drbdsetup forget-peer " + rsc + " 2"}; !slices.Equal(ran, want) {
			t.Errorf("%s ran %q, want %q", n, ran, want)
		}
		again, err := c.reconciler(n).Pass(context.Background(), s)
		if err != nil || len(again.Plan.Actions) != 0 {
			t.Errorf("%s: the next pass plans %v (err %v), want nothing", n, again.Plan.Actions, err)
		}
	}
}
