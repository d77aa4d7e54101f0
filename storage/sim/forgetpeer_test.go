package sim

import (
	"context"
	"strings"
	"testing"

	"github.com/pvehci/pvehci/internal/run"
	"github.com/pvehci/pvehci/storage/drbd"
)

// del-peer takes a connection down for good and forget-peer then frees
// the peer's bitmap slot: the blocks marked for it and its bitmap UUID go,
// so a node that comes back under that id syncs in full.
func TestDelPeerAndForgetPeer(t *testing.T) {
	t.Parallel()
	cl := newCluster(t, drbd.ResourceConfig{Nodes: []drbd.Node{diskfulNode("pve1", 0), diskfulNode("pve2", 1)}})
	cl.upAndSkipSync("pve1", "pve2")
	cl.net.Cut("pve1", "pve2")
	cl.writeBlocks("pve1", 8, 1) // marked for pve2
	meta := cl.hosts["pve1"].drbd.res[resName].vols[0].meta
	if len(meta.oos[1]) == 0 || meta.bitmapUUID[1] == 0 {
		t.Fatalf("before: oos %d blocks, bitmap UUID %x for pve2", len(meta.oos[1]), meta.bitmapUUID[1])
	}
	setup := func(args ...string) (run.Result, error) {
		return cl.hosts["pve1"].Runner().Run(context.Background(), run.Command("drbdsetup", args...))
	}
	steps := []struct {
		args     []string
		wantCode int
		wantErr  string
	}{
		{[]string{"forget-peer", resName, "1"}, 10, "(125) Device has a net-config (use disconnect first)"},
		{[]string{"forget-peer", resName, "0"}, 10, "is this node's"},
		{[]string{"del-peer", resName, "1"}, 0, ""},
		{[]string{"del-peer", resName, "1"}, 10, "unknown connection"},
		{[]string{"forget-peer", resName, "1"}, 0, ""},
		{[]string{"forget-peer", resName, "1"}, 0, ""}, // no slot left: no error
		{[]string{"forget-peer", "nosuch", "1"}, 10, "No such resource"},
		{[]string{"del-peer", resName}, 20, "USAGE"},
	}
	for _, s := range steps {
		res, err := setup(s.args...)
		if run.ExitCode(err) != s.wantCode || !strings.Contains(string(res.Stderr), s.wantErr) {
			t.Fatalf("drbdsetup %v: %v\n%s\nwant exit code %d with %q", s.args, err, res.Stderr, s.wantCode, s.wantErr)
		}
	}
	if len(meta.oos[1]) != 0 || meta.bitmapUUID[1] != 0 {
		t.Fatalf("after forget-peer: oos %d blocks, bitmap UUID %x for pve2", len(meta.oos[1]), meta.bitmapUUID[1])
	}
	if r := cl.observe("pve1"); len(r.Connections) != 0 {
		t.Fatalf("connections after del-peer: %+v", r.Connections)
	}
}
