package cli

import (
	"context"
	"encoding/json"
	"net"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	lc "github.com/LINBIT/golinstor/client"

	"github.com/pvehci/pvehci/storage/api"
	"github.com/pvehci/pvehci/storage/api/apitest"
)

// newAPIServer serves the real REST API over an in-memory backend.
func newAPIServer(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(api.New(apitest.New(), api.Options{CompletionTimeout: 2 * time.Second, DeviceWaitTimeout: 2 * time.Second}))
	t.Cleanup(srv.Close)
	return srv
}

// downAddress is a loopback address nothing listens on.
func downAddress(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// tableRows splits a tabwriter table into cells: columns are separated by
// at least two spaces, and no cell holds two spaces in a row.
func tableRows(out string) [][]string {
	var rows [][]string
	sep := regexp.MustCompile(`\s{2,}`)
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		rows = append(rows, sep.Split(strings.TrimSpace(line), -1))
	}
	return rows
}

// TestViewsLifecycle runs the command tree in-process against the real
// API, one step after the other on the same server: create, list in text
// and JSON, refuse and do deletes, and the errors on the way.
func TestViewsLifecycle(t *testing.T) {
	srv := newAPIServer(t)
	ctl := "--controllers=" + srv.URL

	// rowsWith checks the header and the rows whose first cells match,
	// ignoring columns past the last wanted cell (timestamps).
	rowsWith := func(header []string, want ...[]string) func(t *testing.T, out string) {
		return func(t *testing.T, out string) {
			t.Helper()
			got := tableRows(out)
			if !slices.Equal(got[0], header) {
				t.Fatalf("header = %q, want %q", got[0], header)
			}
			if len(got)-1 != len(want) {
				t.Fatalf("%d rows, want %d:\n%s", len(got)-1, len(want), out)
			}
			for i, w := range want {
				if g := got[i+1]; len(g) < len(w) || !slices.Equal(g[:len(w)], w) {
					t.Errorf("row %d = %q, want %q", i, g, w)
				}
			}
		}
	}
	jsonNames := func(key string, want ...string) func(t *testing.T, out string) {
		return func(t *testing.T, out string) {
			t.Helper()
			var objs []map[string]any
			if err := json.Unmarshal([]byte(out), &objs); err != nil {
				t.Fatalf("not a JSON list: %v\n%s", err, out)
			}
			var got []string
			for _, o := range objs {
				s, _ := o[key].(string)
				got = append(got, s)
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s = %q, want %q", key, got, want)
			}
		}
	}

	steps := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout []string
		wantStderr []string
		check      func(t *testing.T, stdout string)
	}{
		{name: "create node pve2", args: []string{"node", "create", ctl, "pve2", "10.0.0.2"}, wantStdout: []string{"SUCCESS: ", "pve2"}},
		{name: "create node pve1", args: []string{"node", "create", ctl, "pve1", "10.0.0.1"}},
		{name: "create node pve3", args: []string{"n", "c", ctl, "pve3", "10.0.0.3", "--node-type", "Satellite"}},
		{name: "duplicate node is the server's error", args: []string{"node", "create", ctl, "pve1", "10.0.0.9"}, wantCode: ExitError,
			wantStderr: []string{"pvehci: node pve1 already exists", "Correction: "}},
		{name: "bad IP", args: []string{"node", "create", ctl, "pve4", "10.0.0"}, wantCode: ExitUsage, wantStderr: []string{`"10.0.0" is not an IP address`}},
		{name: "missing argument", args: []string{"node", "create", ctl, "pve4"}, wantCode: ExitUsage, wantStderr: []string{"NAME IP"}},
		{name: "pool pve1", args: []string{"storage-pool", "create", ctl, "pve1", "thin", "--lvmthin", "pve/data"}, wantStdout: []string{"SUCCESS: "}},
		{name: "pool pve2", args: []string{"storage-pool", "create", ctl, "pve2", "thin", "--lvmthin", "pve/data"}},
		{name: "pool pve3", args: []string{"sp", "c", ctl, "pve3", "thin", "--lvmthin", "pve/data"}},
		{name: "pool without --lvmthin", args: []string{"storage-pool", "create", ctl, "pve1", "other"}, wantCode: ExitUsage, wantStderr: []string{"--lvmthin VG/THINPOOL"}},
		{name: "group", args: []string{"resource-group", "create", ctl, "drbdgrp", "--place-count", "2", "--storage-pool", "thin"},
			wantStdout: []string{"resource group drbdgrp", "volume group"}},
		{name: "group without place count", args: []string{"rg", "create", ctl, "other"}, wantCode: ExitUsage, wantStderr: []string{"--place-count N is required"}},
		{name: "spawn", args: []string{"resource-group", "spawn", ctl, "drbdgrp", "vm-100-disk-1", "10GiB"},
			wantStdout: []string{"SUCCESS: ", "vm-100-disk-1", "INFO: tie-breaker"}},
		{name: "spawn with a bad size", args: []string{"rg", "spawn", ctl, "drbdgrp", "vm-101-disk-1", "10XB"}, wantCode: ExitUsage,
			wantStderr: []string{`SIZE: "10XB" has an unknown unit`}},
		{name: "spawn into a missing group", args: []string{"rg", "spawn", ctl, "nope", "vm-101-disk-1", "1G"}, wantCode: ExitError,
			wantStderr: []string{"pvehci: ", "nope"}},

		{name: "node list", args: []string{"node", "list", ctl}, check: rowsWith([]string{"NODE", "NODE TYPE", "ADDRESSES", "STATE"},
			[]string{"pve1", "Satellite", "10.0.0.1:3366 (PLAIN)", "Online"},
			[]string{"pve2", "Satellite", "10.0.0.2:3366 (PLAIN)", "Online"},
			[]string{"pve3", "Satellite", "10.0.0.3:3366 (PLAIN)", "Online"})},
		{name: "node list json", args: []string{"node", "list", ctl, "-o", "json"}, check: jsonNames("name", "pve1", "pve2", "pve3")},
		{name: "storage-pool list", args: []string{"storage-pool", "list", ctl},
			check: rowsWith([]string{"STORAGE POOL", "NODE", "DRIVER", "POOL NAME", "FREE", "TOTAL", "SNAPSHOTS", "STATE"},
				[]string{"DfltDisklessStorPool", "pve1", "DISKLESS"},
				[]string{"DfltDisklessStorPool", "pve2", "DISKLESS"},
				[]string{"DfltDisklessStorPool", "pve3", "DISKLESS"},
				[]string{"thin", "pve1", "LVM_THIN", "pve/data", "1.00 TiB", "1.00 TiB", "yes", "Ok"},
				[]string{"thin", "pve2", "LVM_THIN", "pve/data", "1.00 TiB", "1.00 TiB", "yes", "Ok"},
				[]string{"thin", "pve3", "LVM_THIN", "pve/data", "1.00 TiB", "1.00 TiB", "yes", "Ok"})},
		{name: "storage-pool list json keeps zero values", args: []string{"sp", "l", ctl, "-o", "json"}, check: func(t *testing.T, out string) {
			// golinstor's structs would drop free_capacity 0 of the
			// diskless pools; the server's objects keep it.
			if !strings.Contains(out, `"free_capacity": 0`) {
				t.Errorf("the diskless pools' free_capacity 0 is missing:\n%s", out)
			}
			jsonNames("storage_pool_name", "DfltDisklessStorPool", "DfltDisklessStorPool", "DfltDisklessStorPool", "thin", "thin", "thin")(t, out)
		}},
		{name: "resource-group list", args: []string{"resource-group", "list", ctl},
			check: rowsWith([]string{"RESOURCE GROUP", "SELECT FILTER", "VLMNRS", "DESCRIPTION"},
				[]string{"DfltRscGrp"},
				[]string{"drbdgrp", "PlaceCount: 2; StoragePool(s): thin; LayerStack: DRBD, STORAGE", "0"})},
		{name: "resource-group list json", args: []string{"rg", "list", ctl, "-o", "json"}, check: jsonNames("name", "DfltRscGrp", "drbdgrp")},
		{name: "resource-definition list", args: []string{"resource-definition", "list", ctl},
			check: rowsWith([]string{"RESOURCE NAME", "RESOURCE GROUP", "LAYERS", "SIZE", "STATE"},
				[]string{"vm-100-disk-1", "drbdgrp", "DRBD,STORAGE", "10.00 GiB", "ok"})},
		{name: "resource-definition list json", args: []string{"rd", "list", ctl, "-o", "json"}, check: func(t *testing.T, out string) {
			var rds []struct {
				Name              string `json:"name"`
				ResourceGroupName string `json:"resource_group_name"`
				VolumeDefinitions []struct {
					SizeKib int64 `json:"size_kib"`
				} `json:"volume_definitions"`
			}
			if err := json.Unmarshal([]byte(out), &rds); err != nil {
				t.Fatal(err)
			}
			if len(rds) != 1 || rds[0].Name != "vm-100-disk-1" || rds[0].ResourceGroupName != "drbdgrp" ||
				len(rds[0].VolumeDefinitions) != 1 || rds[0].VolumeDefinitions[0].SizeKib != 10<<20 {
				t.Errorf("resource definitions = %+v", rds)
			}
		}},
		{name: "resource list", args: []string{"resource", "list", ctl},
			check: rowsWith([]string{"RESOURCE NAME", "NODE", "LAYERS", "USAGE", "CONNS", "STATE", "DEVICE PATH", "CREATED ON"},
				[]string{"vm-100-disk-1", "pve1", "DRBD,STORAGE", "Unused", "Ok", "UpToDate", "/dev/drbd1000"},
				[]string{"vm-100-disk-1", "pve2", "DRBD,STORAGE", "Unused", "Ok", "UpToDate", "/dev/drbd1000"},
				[]string{"vm-100-disk-1", "pve3", "DRBD,STORAGE", "Unused", "Ok", "TieBreaker", "/dev/drbd1000"})},
		{name: "resource list json", args: []string{"r", "l", ctl, "-o", "json"}, check: func(t *testing.T, out string) {
			var rs []struct {
				Name     string `json:"name"`
				NodeName string `json:"node_name"`
				State    struct {
					InUse *bool `json:"in_use"`
				} `json:"state"`
				Volumes []map[string]any `json:"volumes"`
			}
			if err := json.Unmarshal([]byte(out), &rs); err != nil {
				t.Fatal(err)
			}
			if len(rs) != 3 || rs[0].NodeName != "pve1" || rs[2].NodeName != "pve3" || rs[0].State.InUse == nil || *rs[0].State.InUse {
				t.Fatalf("resources = %+v", rs)
			}
			// volume_number 0 is there, as the server sent it.
			if v, ok := rs[0].Volumes[0]["volume_number"]; !ok || v != 0.0 {
				t.Errorf("volume_number = %v (present %v), want 0", v, ok)
			}
		}},
		{name: "volume list", args: []string{"volume", "list", ctl},
			check: rowsWith([]string{"NODE", "RESOURCE", "STORAGE POOL", "VOLNR", "MINORNR", "DEVICE NAME", "ALLOCATED", "INUSE", "STATE"},
				[]string{"pve1", "vm-100-disk-1", "thin", "0", "1000", "/dev/drbd1000"},
				[]string{"pve2", "vm-100-disk-1", "thin", "0", "1000", "/dev/drbd1000"},
				[]string{"pve3", "vm-100-disk-1", "DfltDisklessStorPool", "0", "1000", "/dev/drbd1000"})},
		{name: "snapshot list is empty", args: []string{"snapshot", "list", ctl},
			check: rowsWith([]string{"RESOURCE NAME", "SNAPSHOT NAME", "NODE NAMES", "VOLUMES", "CREATED ON", "STATE"})},
		{name: "snapshot list json is empty", args: []string{"s", "l", ctl, "-o", "json"}, check: jsonNames("name")},
		{name: "bad output format", args: []string{"node", "list", ctl, "-o", "yaml"}, wantCode: ExitUsage, wantStderr: []string{`--output "yaml"`}},

		{name: "delete without --yes and without a terminal", args: []string{"resource-definition", "delete", ctl, "vm-100-disk-1"},
			wantCode: ExitUsage, wantStderr: []string{"no terminal", "add --yes"}},
		{name: "resource delete without --yes", args: []string{"resource", "delete", ctl, "vm-100-disk-1", "pve1"},
			wantCode: ExitUsage, wantStderr: []string{"add --yes"}},
		{name: "nothing was deleted", args: []string{"r", "l", ctl}, check: func(t *testing.T, out string) {
			if n := len(tableRows(out)) - 1; n != 3 {
				t.Errorf("%d resources after refused deletes, want 3", n)
			}
		}},
		{name: "resource delete", args: []string{"resource", "delete", ctl, "vm-100-disk-1", "pve3", "--yes"}, wantStdout: []string{"SUCCESS: "}},
		{name: "resource definition delete json", args: []string{"rd", "d", ctl, "vm-100-disk-1", "-y", "-o", "json"}, check: func(t *testing.T, out string) {
			var rcs []lc.ApiCallRc
			if err := json.Unmarshal([]byte(out), &rcs); err != nil || len(rcs) == 0 || rcs[0].RetCode < 0 {
				t.Errorf("want the server's success list, got %v:\n%s", err, out)
			}
		}},
		{name: "gone", args: []string{"resource-definition", "list", ctl}, check: rowsWith([]string{"RESOURCE NAME", "RESOURCE GROUP", "LAYERS", "SIZE", "STATE"})},
	}
	for _, s := range steps {
		// Steps build on each other; stop at the first failure.
		ok := t.Run(s.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, s.args...)
			if code != s.wantCode {
				t.Fatalf("exit code = %d, want %d\nstdout:\n%s\nstderr:\n%s", code, s.wantCode, stdout, stderr)
			}
			for _, w := range s.wantStdout {
				if !strings.Contains(stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, stdout)
				}
			}
			for _, w := range s.wantStderr {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			if s.check != nil {
				s.check(t, stdout)
			}
		})
		if !ok {
			t.FailNow()
		}
	}
}

func TestViewsSnapshotList(t *testing.T) {
	srv := newAPIServer(t)
	ctl := "--controllers=" + srv.URL
	for _, args := range [][]string{
		{"node", "create", ctl, "pve1", "10.0.0.1"},
		{"node", "create", ctl, "pve2", "10.0.0.2"},
		{"storage-pool", "create", ctl, "pve1", "thin", "--lvmthin", "pve/data"},
		{"storage-pool", "create", ctl, "pve2", "thin", "--lvmthin", "pve/data"},
		{"resource-group", "create", ctl, "grp", "--place-count", "2"},
		{"resource-group", "spawn", ctl, "grp", "vm-100-disk-1", "1GiB"},
	} {
		if code, _, stderr := runCLI(t, args...); code != ExitOK {
			t.Fatalf("%v: exit %d: %s", args, code, stderr)
		}
	}
	// pvehci has no snapshot command yet; take one the way the Proxmox
	// plugin does.
	u, _ := url.Parse(srv.URL)
	c, err := lc.NewClient(lc.BaseURL(u), lc.HTTPClient(srv.Client()), lc.Log(nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Resources.CreateSnapshot(context.Background(), lc.Snapshot{Name: "snap1", ResourceName: "vm-100-disk-1"}); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCLI(t, "snapshot", "list", ctl)
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	rows := tableRows(stdout)
	if len(rows) != 2 {
		t.Fatalf("want one snapshot row:\n%s", stdout)
	}
	r := rows[1]
	if r[0] != "vm-100-disk-1" || r[1] != "snap1" || r[2] != "pve1, pve2" || r[3] != "0: 1.00 GiB" || r[len(r)-1] != "Successful" {
		t.Errorf("snapshot row = %q", r)
	}
}

func TestViewsControllers(t *testing.T) {
	srv := newAPIServer(t)
	down := downAddress(t)
	tests := []struct {
		name       string
		args       []string
		env        string // LS_CONTROLLERS
		wantCode   int
		wantStderr []string
	}{
		{name: "controller down", args: []string{"node", "list", "--controllers", down}, wantCode: ExitError,
			wantStderr: []string{"no controller answered (tried http://" + down + ")", "--controllers", "LS_CONTROLLERS"}},
		{name: "all controllers down lists them", args: []string{"node", "list", "--controllers", down + ",http://" + down}, wantCode: ExitError,
			wantStderr: []string{"tried http://" + down + ", http://" + down + ")"}},
		{name: "failover to the second controller", args: []string{"node", "list", "--controllers", down + "," + srv.URL}},
		{name: "LS_CONTROLLERS", args: []string{"node", "list"}, env: srv.URL},
		{name: "the flag beats LS_CONTROLLERS", args: []string{"node", "list", "--controllers", srv.URL}, env: down},
		{name: "bad scheme", args: []string{"node", "list", "--controllers", "ftp://x"}, wantCode: ExitUsage, wantStderr: []string{"--controllers", "http or https"}},
		{name: "empty", args: []string{"node", "list", "--controllers", " , "}, wantCode: ExitUsage, wantStderr: []string{"no controller given"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("LS_CONTROLLERS", tt.env)
			code, stdout, stderr := runCLI(t, tt.args...)
			if code != tt.wantCode {
				t.Fatalf("exit code = %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.wantCode, stdout, stderr)
			}
			for _, w := range tt.wantStderr {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
		})
	}
}

func TestParseControllers(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"pve1", []string{"http://pve1:3370"}},
		{"pve1:4000, 10.0.0.2", []string{"http://pve1:4000", "http://10.0.0.2:3370"}},
		{"https://pve1", []string{"https://pve1:3371"}},
		{"http://[fd00::1]:3370/", []string{"http://[fd00::1]:3370"}},
	}
	for _, tt := range tests {
		urls, err := parseControllers(tt.in)
		if err != nil {
			t.Errorf("%q: %v", tt.in, err)
			continue
		}
		var got []string
		for _, u := range urls {
			got = append(got, u.String())
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("%q = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseSizeKiB(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr string
	}{
		{in: "10GiB", want: 10 << 20},
		{in: "10G", want: 10 << 20},
		{in: "10", want: 10 << 20}, // GiB, as in the linstor client
		{in: "512MiB", want: 512 << 10},
		{in: "1.5TiB", want: 3 << 29},
		{in: "1KiB", want: 1},
		{in: "1b", want: 1}, // rounded up
		{in: "1GB", want: 976563},
		{in: "10 gib", want: 10 << 20},
		{in: "10XB", wantErr: "unknown unit"},
		{in: "GiB", wantErr: "not a size"},
		{in: "1.2.3G", wantErr: "not a size"},
		{in: "0", wantErr: "at least 1 KiB"},
		{in: "99999999999PiB", wantErr: "too large"},
	}
	for _, tt := range tests {
		got, err := parseSizeKiB(tt.in)
		switch {
		case tt.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%q: err = %v, want %q", tt.in, err, tt.wantErr)
			}
		case err != nil || got != tt.want:
			t.Errorf("%q = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}
