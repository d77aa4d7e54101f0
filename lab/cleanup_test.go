package lab

import (
	"context"
	"testing"

	"github.com/pvehci/pvehci/internal/daemon"
	"github.com/pvehci/pvehci/internal/localapi"
	"github.com/pvehci/pvehci/internal/run"
	"github.com/pvehci/pvehci/storage/satellite"
)

// TestLabCleanupOrphans goes through a lab node's daemon: an LV tagged
// pvehci that no resource owns is listed by GET /v1/node/orphans with the
// command that removes it, and removed by POST /v1/node/orphans/remove.
func TestLabCleanupOrphans(t *testing.T) {
	l := startLab(t, 3, randomBase().String())
	ctx := context.Background()
	n2 := l.Nodes[1]
	if _, err := n2.host.Runner().Run(ctx, run.Command("lvcreate", "-V", "4M", "-T", "pvehci/thinpool", "-n", "left_00000", "--addtag", "pvehci")); err != nil {
		t.Fatal(err)
	}
	c := localapi.NewClient(n2.Socket)
	var items []satellite.CleanupItem
	if err := c.Do(ctx, "GET", "/v1/node/orphans", nil, &items); err != nil {
		t.Fatal(err)
	}
	if len(items) != 1 || items[0].Key != "lv:pvehci/left_00000" || items[0].Command != "lvremove -f pvehci/left_00000" {
		t.Fatalf("orphans %+v", items)
	}
	if err := c.Do(ctx, "POST", "/v1/node/orphans/remove", daemon.OrphanRemoveRequest{Keys: []string{items[0].Key}}, &items); err != nil {
		t.Fatal(err)
	}
	if len(items) != 1 || !items[0].Removed {
		t.Fatalf("after the removal %+v", items)
	}
	if err := c.Do(ctx, "GET", "/v1/node/orphans", nil, &items); err != nil || len(items) != 0 {
		t.Fatalf("orphans after the cleanup: %+v %v", items, err)
	}
}
