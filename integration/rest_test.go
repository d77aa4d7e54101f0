package integration

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	lc "github.com/LINBIT/golinstor/client"
)

func restClient(t *testing.T, nodes ...*daemonProc) *lc.Client {
	t.Helper()
	var urls []*url.URL
	for _, d := range nodes {
		u, _ := url.Parse("http://" + d.restAddr)
		urls = append(urls, u)
	}
	c, err := lc.NewClient(lc.BaseURL(urls...), lc.HTTPClient(&http.Client{Timeout: 30 * time.Second}), lc.Log(nil))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// golinstor drives the REST API of real daemons through any node: writes on
// a follower reach the leader, every node reads them, /health tells a client
// which nodes can serve, and a client with the whole controller list rides
// out the death of the leader.
func TestRESTThroughAnyNode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real daemons; skipped with -short")
	}
	nodes := formCluster(t, 3)
	ctx := context.Background()
	leader := leaderOf(t, nodes)
	var followers []*daemonProc
	for _, d := range nodes {
		if d != leader {
			followers = append(followers, d)
		}
	}
	for _, d := range nodes {
		resp, err := http.Get("http://" + d.restAddr + "/health")
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("/health on %s: %v %v", d.name, err, resp)
		}
		resp.Body.Close()
	}

	// Write through one follower, read through the other.
	viaFollower := restClient(t, followers[0])
	if err := viaFollower.Nodes.Create(ctx, lc.Node{Name: "pve1", Type: "SATELLITE",
		NetInterfaces: []lc.NetInterface{{Name: "default", Address: net.ParseIP("10.0.0.1"), SatellitePort: 3366, SatelliteEncryptionType: "PLAIN"}}}); err != nil {
		t.Fatalf("node create through a follower: %v", err)
	}
	if err := viaFollower.ResourceDefinitions.Create(ctx, lc.ResourceDefinitionCreate{ResourceDefinition: lc.ResourceDefinition{Name: "vm-100-disk-1"}}); err != nil {
		t.Fatalf("resource definition create through a follower: %v", err)
	}
	other := restClient(t, followers[1])
	got, err := other.Nodes.Get(ctx, "pve1")
	if err != nil || got.Name != "pve1" {
		t.Fatalf("node read through the other follower = %+v, %v", got, err)
	}
	if _, err := other.ResourceDefinitions.Get(ctx, "vm-100-disk-1"); err != nil {
		t.Fatalf("resource definition read: %v", err)
	}
	// /metrics, through a follower, speaks LINSTOR's metric names.
	resp, err := http.Get("http://" + followers[1].restAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"linstor_resource_definition_count 1", `linstor_node_state{`, "pvehci_build_info"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	// LINSTOR's errors come back as errors golinstor understands.
	if _, err := other.Nodes.Get(ctx, "nope"); !errors.Is(err, lc.NotFoundError) {
		t.Errorf("get of a missing node = %v, want golinstor's NotFoundError", err)
	}

	// The leader dies; a client that knows every node goes on.
	all := restClient(t, append([]*daemonProc{leader}, followers...)...)
	leader.kill()
	var werr error
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		werr = all.ResourceDefinitions.Create(ctx, lc.ResourceDefinitionCreate{ResourceDefinition: lc.ResourceDefinition{Name: "vm-101-disk-1"}})
		if werr == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if werr != nil {
		t.Fatalf("no write through the controller list after the leader died: %v", werr)
	}
	// With a second node gone, the survivor says it cannot serve.
	followers[1].kill()
	time.Sleep(2 * time.Second)
	resp, err = http.Get("http://" + followers[0].restAddr + "/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/health without quorum = %d, want 503", resp.StatusCode)
	}
	err = restClient(t, followers[0]).ResourceDefinitions.Create(ctx, lc.ResourceDefinitionCreate{ResourceDefinition: lc.ResourceDefinition{Name: "vm-102-disk-1"}})
	if err == nil || !strings.Contains(err.Error(), "quorum") {
		t.Errorf("write without quorum = %v, want an error that says quorum is lost", err)
	}
}
