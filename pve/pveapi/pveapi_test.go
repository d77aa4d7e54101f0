package pveapi

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/pvehci/pvehci/pve/pvesim"
)

// memStorage makes volumes without any backend, for the simulated PVE.
type memStorage struct {
	mu sync.Mutex
	n  int
}

func (m *memStorage) Alloc(_ context.Context, vmid int, _ int64, _ string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.n++
	return fmt.Sprintf("pm-%08x_%d", m.n, vmid), nil
}
func (m *memStorage) Activate(context.Context, string, string) error       { return nil }
func (m *memStorage) Deactivate(context.Context, string, string) error     { return nil }
func (m *memStorage) Free(context.Context, string) error                   { return nil }
func (m *memStorage) Snapshot(context.Context, string, string) error       { return nil }
func (m *memStorage) Rollback(context.Context, string, string) error       { return nil }
func (m *memStorage) DeleteSnapshot(context.Context, string, string) error { return nil }

const token = "root@pam!hci=0b6a3c2e-8d1f-4a5b-9c7d-2e1f0a9b8c7d"

func TestVMsFollowAMigration(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var c *Client
	var during map[string]VM
	sim := pvesim.New(pvesim.Options{Nodes: []string{"n1", "n2", "n3"}, Storage: &memStorage{}, Token: token,
		BothActive: func(ctx context.Context, vmid int, source, target string, _ []string) error {
			var err error
			during, err = c.VMs(ctx)
			return err
		}})
	srv := httptest.NewServer(sim.Handler())
	defer srv.Close()
	c = &Client{BaseURL: srv.URL, Token: token, HTTP: srv.Client()}

	if _, err := sim.CreateVM(ctx, 100, "n1", "web", pvesim.Disk{Key: "scsi0", SizeKiB: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	sim.Wait()
	vms, err := c.VMs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := vms["100"]; got.Node != "n1" || got.Migrating || got.PreviousNode != "" {
		t.Errorf("before the migration: %+v", got)
	}
	if _, err := sim.Migrate(ctx, 100, "n2"); err != nil {
		t.Fatal(err)
	}
	sim.Wait()
	if got := during["100"]; !got.Migrating || got.Node != "n1" {
		t.Errorf("during the migration: %+v, want migrating on n1", got)
	}
	vms, err = c.VMs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := vms["100"]; got.Node != "n2" || got.Migrating || got.PreviousNode != "n1" || got.Since.IsZero() {
		t.Errorf("after the migration: %+v, want on n2, from n1, not migrating, with a time", got)
	}
}

func TestBadTokenSaysWhatToCheck(t *testing.T) {
	t.Parallel()
	sim := pvesim.New(pvesim.Options{Nodes: []string{"n1"}, Storage: &memStorage{}, Token: token})
	srv := httptest.NewServer(sim.Handler())
	defer srv.Close()
	c := &Client{BaseURL: srv.URL, Token: "root@pam!hci=wrong", HTTP: srv.Client()}
	_, err := c.VMs(context.Background())
	if err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "PVEAuditor") {
		t.Errorf("err = %v, want a 401 naming the token and its role", err)
	}
}

func TestNumbersAsStrings(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]num{`100`: 100, `"100"`: 100, `null`: 0, `""`: 0, `1.7e9`: 1700000000} {
		var n num
		if err := n.UnmarshalJSON([]byte(in)); err != nil || n != want {
			t.Errorf("%s -> %d, %v; want %d", in, n, err, want)
		}
	}
	var n num
	if err := n.UnmarshalJSON([]byte(`"abc"`)); err == nil {
		t.Error("a non-number decoded")
	}
}
