package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/pvehci/pvehci/ha/state"
)

// snapshotNumbers is the part of a state snapshot that holds DRBD numbers.
type snapshotNumbers struct {
	ResourceDefinitions []struct {
		Name              string `json:"name"`
		VolumeDefinitions []struct {
			Minor int `json:"minor"`
		} `json:"volume_definitions"`
	} `json:"resource_definitions"`
	Resources []struct {
		Name     string `json:"name"`
		Node     string `json:"node"`
		NodeID   int    `json:"node_id"`
		TCPPorts []int  `json:"tcp_ports"`
	} `json:"resources"`
}

// checkNumbersUnique fails when any minor, per-node port or per-resource
// node-id is held twice, and returns the resource definitions it saw.
func checkNumbersUnique(t *testing.T, snap []byte) map[string]bool {
	t.Helper()
	var s snapshotNumbers
	if err := json.Unmarshal(snap, &s); err != nil {
		t.Fatal(err)
	}
	rds := map[string]bool{}
	minors := map[int]string{}
	for _, rd := range s.ResourceDefinitions {
		rds[rd.Name] = true
		for _, vd := range rd.VolumeDefinitions {
			if other, dup := minors[vd.Minor]; dup {
				t.Errorf("minor %d held by %s and %s", vd.Minor, other, rd.Name)
			}
			minors[vd.Minor] = rd.Name
		}
	}
	ports := map[string]string{}
	nodeIDs := map[string]string{}
	for _, r := range s.Resources {
		for _, p := range r.TCPPorts {
			k := fmt.Sprintf("%s/%d", r.Node, p)
			if other, dup := ports[k]; dup {
				t.Errorf("port %d on %s held by %s and %s", p, r.Node, other, r.Name)
			}
			ports[k] = r.Name
		}
		k := fmt.Sprintf("%s/%d", r.Name, r.NodeID)
		if other, dup := nodeIDs[k]; dup {
			t.Errorf("node-id %d of %s held on %s and %s", r.NodeID, r.Name, other, r.Node)
		}
		nodeIDs[k] = r.Node
	}
	return rds
}

// Real daemons in separate processes: a continuous write load, the leader
// killed with SIGKILL in the middle of it, the node restarted. Every write
// that was acknowledged is on every member afterwards, all members hold the
// same state, and no DRBD number is handed out twice.
func TestKillLeaderUnderWriteLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real daemons; skipped with -short")
	}
	for _, voters := range []int{3, 5} {
		t.Run(fmt.Sprintf("%d voters", voters), func(t *testing.T) { killLeaderUnderLoad(t, voters) })
	}
}

func killLeaderUnderLoad(t *testing.T, voters int) {
	nodes := formCluster(t, voters)
	storageObjects(t, nodes[0])

	var (
		mu     sync.Mutex
		acked  []string
		failed int
	)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := 0; w < 3; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				name := fmt.Sprintf("w%d-r%d", w, i)
				target := nodes[(w+i)%len(nodes)]
				cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
				err := target.apply(cctx, &state.CreateResourceDefinition{
					Name: name, DrbdSecret: "s3cret",
					VolumeDefinitions: []state.NewVolumeDefinition{{SizeKiB: 1 << 20}},
				})
				if err == nil {
					for _, node := range []string{"pve1", "pve2", "pve3"} {
						if err = target.apply(cctx, &state.CreateResource{ResourceDefinition: name, Node: node, Kind: state.Diskful, StoragePool: "thin"}); err != nil {
							break
						}
					}
				}
				ccancel()
				mu.Lock()
				if err == nil {
					acked = append(acked, name)
				} else {
					failed++
				}
				mu.Unlock()
			}
		}(w)
	}

	time.Sleep(1500 * time.Millisecond)
	leader := leaderOf(t, nodes)
	mu.Lock()
	before := len(acked)
	mu.Unlock()
	killedAt := time.Now()
	leader.kill()
	t.Logf("killed leader %s after %d acknowledged definitions", leader.name, before)

	// Measure how long until the survivors acknowledge writes again.
	waitUntil(t, 15*time.Second, "writes acknowledged after the kill", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) > before+3
	})
	t.Logf("writes acknowledged again %s after the kill", time.Since(killedAt).Round(time.Millisecond))
	time.Sleep(time.Second)
	leader.start()
	time.Sleep(1500 * time.Millisecond)
	cancel()
	wg.Wait()
	t.Logf("%d definitions acknowledged, %d writes failed during the failover", len(acked), failed)

	// Converged: every member holds byte-identical state containing every
	// acknowledged write.
	var snaps [][]byte
	waitUntil(t, 20*time.Second, "all members to converge", func() bool {
		snaps = snaps[:0]
		for _, d := range nodes {
			s, err := d.snapshot()
			if err != nil {
				return false
			}
			snaps = append(snaps, s)
		}
		for _, s := range snaps[1:] {
			if !bytes.Equal(snaps[0], s) {
				return false
			}
		}
		return true
	})
	rds := checkNumbersUnique(t, snaps[0])
	for _, name := range acked {
		if !rds[name] {
			t.Errorf("acknowledged resource definition %s is missing after the failover", name)
		}
	}
	if len(acked) < 10 {
		t.Errorf("only %d writes acknowledged; the load did not run", len(acked))
	}
}

// The command line against real daemons: status, a reused token, backup,
// and a planned restart of the leader (SIGTERM hands leadership over).
func TestClusterCommandLine(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real daemons; skipped with -short")
	}
	nodes := formCluster(t, 3)
	out, err := nodes[1].cli("cluster", "status")
	if err != nil {
		t.Fatalf("status: %v\n%s", err, out)
	}
	for _, want := range []string{"Cluster:   lab", "n1", "n2", "n3", "voter"} {
		if !bytes.Contains([]byte(out), []byte(want)) {
			t.Errorf("cluster status lacks %q:\n%s", want, out)
		}
	}
	n4 := newDaemon(t, "n4")
	tok, err := nodes[0].cli("cluster", "token", "n4")
	if err != nil {
		t.Fatal(err)
	}
	token := string(bytes.TrimSpace(bytes.SplitN([]byte(tok), []byte("\n"), 2)[0]))
	if out, err := n4.cli("cluster", "join", token); err != nil {
		t.Fatalf("join n4: %v\n%s", err, out)
	}
	n5 := newDaemon(t, "n5")
	out, err = n5.cli("cluster", "join", token)
	if err == nil || !bytes.Contains([]byte(out), []byte("for node n4")) {
		t.Errorf("n5 joining with n4's token: err=%v\n%s", err, out)
	}

	backup := t.TempDir() + "/state.json"
	if out, err := nodes[2].cli("cluster", "backup", backup); err != nil {
		t.Fatalf("backup: %v\n%s", err, out)
	}
	if out, err := nodes[2].cli("cluster", "restore", backup); err == nil {
		t.Errorf("restore without --yes and without a terminal succeeded:\n%s", out)
	}

	leader := leaderOf(t, nodes)
	leader.stop()
	others := []*daemonProc{}
	for _, d := range nodes {
		if d != leader {
			others = append(others, d)
		}
	}
	newLeader := leaderOf(t, others)
	if newLeader == leader {
		t.Fatal("the stopped node still leads")
	}
	if out, err := others[0].cli("cluster", "remove", leader.name); err != nil {
		t.Fatalf("remove %s: %v\n%s", leader.name, err, out)
	}
	st, _ := others[0].status()
	for _, m := range st.Members {
		if m.Name == leader.name {
			t.Errorf("%s still listed after remove", leader.name)
		}
	}
}
