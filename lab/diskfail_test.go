package lab

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pvehci/pvehci/health"
	"github.com/pvehci/pvehci/internal/localapi"
)

// TestLabDiskFail: the disk under one diskful replica of a running VM dies.
// DRBD detaches it, the VM keeps running from the other replica, and
// `pvehci health` names the node and resource.
func TestLabDiskFail(t *testing.T) {
	l := startLab(t, 3, randomBase().String())
	ctx := context.Background()
	vm, err := l.CreateVM(ctx, 100, "n1", 64<<10)
	if err != nil {
		t.Fatal(err)
	}
	rd := strings.SplitN(vm.Volname, "_", 2)[0]
	var victim string
	deadline := time.Now().Add(60 * time.Second)
	for victim == "" && time.Now().Before(deadline) {
		nodes, _ := l.diskfulReplicas(ctx, t, rd)
		for _, n := range nodes {
			if n != "n1" {
				victim = n
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	if victim == "" {
		t.Fatal("no second diskful replica")
	}
	if err := l.FailDisk(victim); err != nil {
		t.Fatal(err)
	}
	src := health.Sources{Cluster: labView{localapi.NewClient(l.Nodes[0].Socket)}}
	var found *health.Item
	for deadline := time.Now().Add(60 * time.Second); found == nil && time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		rep, err := health.Default().Run(ctx, src, health.DRBDDiskNotUpToDate)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range rep.Items {
			if it.Severity == health.Critical && strings.Contains(it.Message, rd) && objectNamed(it.Objects, "node", victim) {
				found = &it
			}
		}
	}
	if found == nil {
		t.Fatalf("health never reported %s's lost disk on %s", rd, victim)
	}
	t.Logf("%s %s: %s", found.Severity, found.Code, found.Message)
	// The VM still reads and writes through n1.
	n1, _ := l.Node("n1")
	dev, err := n1.Host().OpenDRBD(vm.Device, true)
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	buf := []byte("still writable after a peer's disk died")
	if _, err := dev.WriteAt(buf, 1<<20); err != nil {
		t.Errorf("write on n1 after %s's disk failed: %v", victim, err)
	}
}

func objectNamed(objs []health.Object, kind, name string) bool {
	for _, o := range objs {
		if o.Kind == kind && o.Name == name {
			return true
		}
	}
	return false
}
