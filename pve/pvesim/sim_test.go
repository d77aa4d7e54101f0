package pvesim_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pvehci/pvehci/internal/clock"
	"github.com/pvehci/pvehci/pve/pvesim"
)

const token = "root@pam!lab=5ecr3t"

// fakeStorage names volumes pm-0000000N_<vmid> and fails where told.
type fakeStorage struct {
	mu   sync.Mutex
	n    int
	fail map[string]error // "activate <vol> <node>" etc.
}

func (f *fakeStorage) err(call string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fail[call]
}

func (f *fakeStorage) Alloc(_ context.Context, vmid int, _ int64, _ string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	return fmt.Sprintf("pm-%08d_%d", f.n, vmid), nil
}

func (f *fakeStorage) Activate(_ context.Context, vol, node string) error {
	return f.err("activate " + vol + " " + node)
}

func (f *fakeStorage) Deactivate(_ context.Context, vol, node string) error {
	return f.err("deactivate " + vol + " " + node)
}
func (f *fakeStorage) Free(_ context.Context, vol string) error { return f.err("free " + vol) }
func (f *fakeStorage) Snapshot(_ context.Context, vol, snap string) error {
	return f.err("snapshot " + vol + " " + snap)
}
func (f *fakeStorage) Rollback(_ context.Context, vol, snap string) error {
	return f.err("rollback " + vol + " " + snap)
}
func (f *fakeStorage) DeleteSnapshot(_ context.Context, vol, snap string) error {
	return f.err("delsnapshot " + vol + " " + snap)
}

type env struct {
	t   *testing.T
	sim *pvesim.Sim
	st  *fakeStorage
	url string
	clk *clock.Fake
}

func newEnv(t *testing.T, hook func(ctx context.Context, vmid int, source, target string, vols []string) error) *env {
	t.Helper()
	st := &fakeStorage{fail: map[string]error{}}
	clk := clock.NewFake(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC))
	sim := pvesim.New(pvesim.Options{Nodes: []string{"pve1", "pve2", "pve3"}, Storage: st, Clock: clk, Token: token,
		BothActive: hook})
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	return &env{t: t, sim: sim, st: st, url: srv.URL, clk: clk}
}

// do sends a request with the given Authorization and returns the status
// and the decoded body.
func (e *env) do(method, path, auth string, form url.Values) (int, map[string]any) {
	e.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, e.url+"/api2/json"+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		e.t.Fatalf("%s %s: body is not JSON: %v", method, path, err)
	}
	if _, ok := out["data"]; !ok {
		e.t.Fatalf("%s %s: answer %v is not wrapped in data", method, path, out)
	}
	return resp.StatusCode, out
}

// get is an authenticated GET that must answer 200; it returns data.
func (e *env) get(path string) any {
	e.t.Helper()
	code, out := e.do("GET", path, "PVEAPIToken="+token, nil)
	if code != 200 {
		e.t.Fatalf("GET %s: %d %v", path, code, out)
	}
	return out["data"]
}

func find(t *testing.T, list any, key string, val any) map[string]any {
	t.Helper()
	for _, x := range list.([]any) {
		if m := x.(map[string]any); m[key] == val {
			return m
		}
	}
	t.Fatalf("no element with %s=%v in %v", key, val, list)
	return nil
}

func TestMigrationPhasesAndTask(t *testing.T) {
	var e *env
	var during map[string]any
	var duringCfg map[string]any
	e = newEnv(t, func(_ context.Context, vmid int, source, target string, vols []string) error {
		// Both sides have the disks: the VM is still on the source and
		// locked, as a watcher polling the API would see it.
		during = find(t, e.get("/cluster/resources?type=vm"), "vmid", float64(vmid))
		duringCfg = e.get("/nodes/" + source + "/qemu/100/config").(map[string]any)
		if len(vols) != 2 || target != "pve2" {
			t.Errorf("hook got vols %v target %s", vols, target)
		}
		return nil
	})
	ctx := context.Background()
	if _, err := e.sim.CreateVM(ctx, 100, "pve1", "web", pvesim.Disk{Key: "scsi0", SizeKiB: 1 << 20},
		pvesim.Disk{Key: "virtio1", SizeKiB: 1536 << 10}); err != nil {
		t.Fatal(err)
	}
	cfg := e.get("/nodes/pve1/qemu/100/config").(map[string]any)
	if cfg["scsi0"] != "drbdstorage:pm-00000001_100,size=1G" || cfg["virtio1"] != "drbdstorage:pm-00000002_100,size=1536M" ||
		len(cfg["digest"].(string)) != 40 || cfg["name"] != "web" {
		t.Fatalf("config %v", cfg)
	}
	e.clk.Advance(90 * time.Second)

	code, out := e.do("POST", "/nodes/pve1/qemu/100/migrate", "PVEAPIToken="+token,
		url.Values{"target": {"pve2"}, "online": {"1"}})
	if code != 200 {
		t.Fatalf("migrate: %d %v", code, out)
	}
	upid := out["data"].(string)
	e.sim.Wait()

	if !slices.Equal(e.sim.Transcript(), []string{
		"alloc 100 1048576 pve1 -> pm-00000001_100",
		"activate pm-00000001_100 pve1",
		"alloc 100 1572864 pve1 -> pm-00000002_100",
		"activate pm-00000002_100 pve1",
		"lock 100 migrate",
		"activate pm-00000001_100 pve2",
		"activate pm-00000002_100 pve2",
		"both-active 100 pve1 pve2",
		"move 100 pve1 pve2",
		"deactivate pm-00000001_100 pve1",
		"deactivate pm-00000002_100 pve1",
		"unlock 100",
	}) {
		t.Fatalf("transcript:\n%s", strings.Join(e.sim.Transcript(), "\n"))
	}
	if during["lock"] != "migrate" || during["node"] != "pve1" || during["status"] != "running" || during["id"] != "qemu/100" ||
		during["type"] != "qemu" || during["name"] != "web" {
		t.Fatalf("resource during migration %v", during)
	}
	if duringCfg["lock"] != "migrate" || duringCfg["digest"] == cfg["digest"] {
		t.Fatalf("config during migration %v (before %v)", duringCfg, cfg)
	}

	// The qmigrate task ran on the source node as the token's user.
	u, err := pvesim.ParseUPID(upid)
	if err != nil || u.Node != "pve1" || u.Type != "qmigrate" || u.ID != "100" || u.User != "root@pam!lab" ||
		!u.StartTime.Equal(time.Date(2026, 11, 22, 10, 1, 30, 0, time.UTC)) || u.String() != upid {
		t.Fatalf("upid %s = %+v, %v", upid, u, err)
	}
	st := e.get("/nodes/pve1/tasks/" + upid + "/status").(map[string]any)
	if st["status"] != "stopped" || st["exitstatus"] != "OK" || st["type"] != "qmigrate" || st["upid"] != upid ||
		st["user"] != "root@pam" || st["node"] != "pve1" || st["id"] != "100" {
		t.Fatalf("task status %v", st)
	}
	for _, list := range []any{e.get("/nodes/pve1/tasks?typefilter=qmigrate"), e.get("/cluster/tasks")} {
		tk := find(t, list, "upid", upid)
		if tk["type"] != "qmigrate" || tk["status"] != "OK" || tk["tokenid"] != "lab" || tk["user"] != "root@pam" ||
			tk["starttime"] != float64(u.StartTime.Unix()) || tk["endtime"] == nil || tk["pid"] != float64(u.PID) {
			t.Fatalf("task entry %v", tk)
		}
	}
	if l := e.get("/nodes/pve2/tasks").([]any); len(l) != 0 {
		t.Fatalf("target node lists tasks %v", l)
	}
	if l := e.get("/nodes/pve1/tasks?source=active").([]any); len(l) != 0 {
		t.Fatalf("active tasks after the migration %v", l)
	}

	// The config moved: pve2 has it, pve1 answers as PVE does.
	after := find(t, e.get("/cluster/resources?type=vm"), "vmid", float64(100))
	if after["node"] != "pve2" || after["lock"] != nil || after["status"] != "running" {
		t.Fatalf("resource after migration %v", after)
	}
	if c := e.get("/nodes/pve2/qemu/100/config").(map[string]any); c["scsi0"] != cfg["scsi0"] || c["digest"] != cfg["digest"] {
		t.Fatalf("config on pve2 %v", c)
	}
	code, out = e.do("GET", "/nodes/pve1/qemu/100/config", "PVEAPIToken="+token, nil)
	if code != 500 || !strings.Contains(out["message"].(string), "nodes/pve1/qemu-server/100.conf' does not exist") {
		t.Fatalf("config on the old node: %d %v", code, out)
	}
	s := e.get("/nodes/pve2/qemu/100/status/current").(map[string]any)
	if s["status"] != "running" || s["vmid"] != float64(100) || s["uptime"] != float64(90) {
		t.Fatalf("status/current %v", s)
	}
}

func TestMigrationFailures(t *testing.T) {
	for _, tc := range []struct {
		name     string
		fail     string
		hookErr  error
		wantNode string
		wantTail []string
	}{
		{
			name: "activate on target", fail: "activate pm-00000002_100 pve2", wantNode: "pve1",
			wantTail: []string{
				"lock 100 migrate",
				"activate pm-00000001_100 pve2",
				"activate pm-00000002_100 pve2 error: boom",
				"deactivate pm-00000001_100 pve2",
				"unlock 100",
			},
		},
		{
			name: "hook", hookErr: errors.New("boom"), wantNode: "pve1",
			wantTail: []string{
				"lock 100 migrate",
				"activate pm-00000001_100 pve2",
				"activate pm-00000002_100 pve2",
				"both-active 100 pve1 pve2 error: boom",
				"deactivate pm-00000001_100 pve2",
				"deactivate pm-00000002_100 pve2",
				"unlock 100",
			},
		},
		{
			name: "deactivate on source", fail: "deactivate pm-00000001_100 pve1", wantNode: "pve2",
			wantTail: []string{
				"lock 100 migrate",
				"activate pm-00000001_100 pve2",
				"activate pm-00000002_100 pve2",
				"both-active 100 pve1 pve2",
				"move 100 pve1 pve2",
				"deactivate pm-00000001_100 pve1 error: boom",
				"deactivate pm-00000002_100 pve1",
				"unlock 100",
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(context.Context, int, string, string, []string) error { return tc.hookErr })
			ctx := context.Background()
			if _, err := e.sim.CreateVM(ctx, 100, "pve1", "db", pvesim.Disk{Key: "scsi0", SizeKiB: 1 << 20},
				pvesim.Disk{Key: "scsi1", SizeKiB: 1 << 20}); err != nil {
				t.Fatal(err)
			}
			if tc.fail != "" {
				e.st.fail[tc.fail] = errors.New("boom")
			}
			upid, err := e.sim.Migrate(ctx, 100, "pve2")
			if err == nil || !strings.Contains(err.Error(), "boom") {
				t.Fatalf("migrate error %v", err)
			}
			tr := e.sim.Transcript()
			if got := tr[4:]; !slices.Equal(got, tc.wantTail) {
				t.Fatalf("transcript tail:\n%s", strings.Join(got, "\n"))
			}
			v, _ := e.sim.VM(100)
			if v.Node != tc.wantNode || v.Lock != "" {
				t.Fatalf("vm after failed migration %+v", v)
			}
			st := e.get("/nodes/pve1/tasks/" + upid + "/status").(map[string]any)
			if st["status"] != "stopped" || !strings.Contains(st["exitstatus"].(string), "boom") {
				t.Fatalf("task status %v", st)
			}
			if l := e.get("/nodes/pve1/tasks?errors=1").([]any); len(l) != 1 {
				t.Fatalf("errors=1 lists %v", l)
			}
		})
	}
}

func TestMigrateRefusals(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	if _, err := e.sim.CreateVM(ctx, 100, "pve1", "a", pvesim.Disk{Key: "scsi0", SizeKiB: 1024}); err != nil {
		t.Fatal(err)
	}
	if err := e.sim.SetNodeOnline("pve3", false); err != nil {
		t.Fatal(err)
	}
	auth := "PVEAPIToken=" + token
	for _, tc := range []struct {
		path string
		form url.Values
		code int
		msg  string
	}{
		{"/nodes/pve1/qemu/100/migrate", url.Values{"target": {"pve1"}, "online": {"1"}}, 500, "target is local node"},
		{"/nodes/pve1/qemu/100/migrate", url.Values{"target": {"pve3"}, "online": {"1"}}, 500, "not online"},
		{"/nodes/pve1/qemu/100/migrate", url.Values{"target": {"pve9"}, "online": {"1"}}, 500, "no such cluster node"},
		{"/nodes/pve1/qemu/100/migrate", url.Values{"target": {"pve2"}}, 500, "without --online"},
		{"/nodes/pve1/qemu/100/migrate", url.Values{"online": {"1"}}, 400, "Parameter verification failed"},
		{"/nodes/pve1/qemu/100/migrate", url.Values{"target": {"pve2"}, "online": {"maybe"}}, 400, "Parameter verification failed"},
		{"/nodes/pve2/qemu/100/migrate", url.Values{"target": {"pve1"}, "online": {"1"}}, 500, "does not exist"},
		{"/nodes/pve1/qemu/999/migrate", url.Values{"target": {"pve2"}, "online": {"1"}}, 500, "does not exist"},
		{"/nodes/pve3/qemu/100/migrate", url.Values{"target": {"pve2"}, "online": {"1"}}, 595, "No route to host"},
	} {
		code, out := e.do("POST", tc.path, auth, tc.form)
		if code != tc.code || out["data"] != nil || !strings.Contains(out["message"].(string), tc.msg) {
			t.Errorf("POST %s %v: %d %v, want %d %q", tc.path, tc.form, code, out, tc.code, tc.msg)
		}
	}
	if tr := e.sim.Transcript(); len(tr) != 2 {
		t.Fatalf("refused migrations touched storage: %q", tr)
	}
	if v, _ := e.sim.VM(100); v.Lock != "" || v.Node != "pve1" {
		t.Fatalf("vm %+v", v)
	}
}

func TestAPIAnswersLikePVE(t *testing.T) {
	e := newEnv(t, nil)
	if _, err := e.sim.CreateVM(context.Background(), 101, "pve2", "b", pvesim.Disk{Key: "scsi0", SizeKiB: 1024}); err != nil {
		t.Fatal(err)
	}
	status := e.get("/cluster/status")
	c := find(t, status, "type", "cluster")
	if c["quorate"] != float64(1) || c["nodes"] != float64(3) || c["id"] != "cluster" {
		t.Fatalf("cluster entry %v", c)
	}
	n := find(t, status, "id", "node/pve1")
	// Booleans are numbers, as Perl sends them.
	if n["online"] != float64(1) || n["local"] != float64(1) || n["nodeid"] != float64(1) || n["ip"] != "127.0.0.11" {
		t.Fatalf("node entry %v", n)
	}
	if err := e.sim.SetNodeOnline("pve2", false); err != nil {
		t.Fatal(err)
	}
	if err := e.sim.SetNodeOnline("pve3", false); err != nil {
		t.Fatal(err)
	}
	status = e.get("/cluster/status")
	if find(t, status, "id", "node/pve2")["online"] != float64(0) || find(t, status, "id", "node/pve2")["local"] != float64(0) ||
		find(t, status, "type", "cluster")["quorate"] != float64(0) {
		t.Fatalf("status with two nodes down %v", status)
	}
	if v := find(t, e.get("/cluster/resources?type=vm"), "id", "qemu/101"); v["status"] != "unknown" {
		t.Fatalf("vm on an offline node %v", v)
	}
	if err := e.sim.SetNodeOnline("pve9", true); err == nil {
		t.Fatal("SetNodeOnline accepted an unknown node")
	}

	for _, tc := range []struct {
		path, auth string
		code       int
		msg        string
	}{
		{"/cluster/status", "", 401, "No ticket"},
		{"/cluster/status", "PVEAPIToken=root@pam!lab=wrong", 401, "invalid token"},
		{"/cluster/status", "Bearer " + token, 401, "No ticket"},
		{"/nodes/pve1/qemu/999/config", "PVEAPIToken=" + token, 500, "Configuration file 'nodes/pve1/qemu-server/999.conf' does not exist"},
		{"/nodes/pve1/qemu/999/status/current", "PVEAPIToken=" + token, 500, "does not exist"},
		{"/nodes/pve1/qemu/abc/config", "PVEAPIToken=" + token, 400, "Parameter verification failed"},
		{"/nodes/pve2/qemu/101/config", "PVEAPIToken=" + token, 595, "No route to host"},
		{"/nodes/nope/tasks", "PVEAPIToken=" + token, 500, "hostname lookup 'nope' failed"},
		{"/nodes/pve1/tasks/UPID:bad/status", "PVEAPIToken=" + token, 400, "Parameter verification failed"},
		{"/nodes/pve1/tasks/UPID:pve1:00001234:00123456:6740A1B2:qmigrate:100:root@pam:/status", "PVEAPIToken=" + token, 500, "unable to open file"},
		{"/cluster/resources?type=bogus", "PVEAPIToken=" + token, 400, "Parameter verification failed"},
		{"/cluster/ha/status/current", "PVEAPIToken=" + token, 501, "not implemented"},
	} {
		code, out := e.do("GET", tc.path, tc.auth, nil)
		if code != tc.code || out["data"] != nil || !strings.Contains(out["message"].(string), tc.msg) {
			t.Errorf("GET %s: %d %v, want %d %q", tc.path, code, out, tc.code, tc.msg)
		}
	}
}

func TestCreateAndDeleteVM(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	e.st.fail["activate pm-00000002_100 pve1"] = errors.New("no device")
	if _, err := e.sim.CreateVM(ctx, 100, "pve1", "x", pvesim.Disk{Key: "scsi0", SizeKiB: 1024},
		pvesim.Disk{Key: "scsi1", SizeKiB: 1024}); err == nil {
		t.Fatal("create succeeded with a failing activation")
	}
	if _, ok := e.sim.VM(100); ok {
		t.Fatal("a failed create left the VM")
	}
	if _, err := e.sim.CreateVM(ctx, 100, "pve1", "x", pvesim.Disk{Key: "bogus", SizeKiB: 1024}); err == nil {
		t.Fatal("create accepted disk key bogus")
	}
	delete(e.st.fail, "activate pm-00000002_100 pve1")
	if _, err := e.sim.CreateVM(ctx, 100, "pve1", "x", pvesim.Disk{Key: "scsi0", SizeKiB: 1024}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sim.CreateVM(ctx, 100, "pve2", "y"); err == nil {
		t.Fatal("duplicate vmid accepted")
	}
	if _, err := e.sim.DeleteVM(ctx, 100); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"alloc 100 1024 pve1 -> pm-00000001_100",
		"activate pm-00000001_100 pve1",
		"alloc 100 1024 pve1 -> pm-00000002_100",
		"activate pm-00000002_100 pve1 error: no device",
		"deactivate pm-00000001_100 pve1",
		"free pm-00000001_100",
		"deactivate pm-00000002_100 pve1",
		"free pm-00000002_100",
		"alloc 100 1024 pve1 -> pm-00000003_100",
		"activate pm-00000003_100 pve1",
		"deactivate pm-00000003_100 pve1",
		"free pm-00000003_100",
	}
	if got := e.sim.Transcript(); !slices.Equal(got, want) {
		t.Fatalf("transcript:\n%s", strings.Join(got, "\n"))
	}
	if l := e.get("/cluster/resources?type=vm").([]any); len(l) != 0 {
		t.Fatalf("resources after delete %v", l)
	}
	types := []string{}
	for _, x := range e.get("/cluster/tasks").([]any) {
		types = append(types, x.(map[string]any)["type"].(string)+" "+x.(map[string]any)["status"].(string))
	}
	if len(types) != 4 || types[0] != "qmdestroy OK" || types[1] != "qmcreate OK" || !strings.HasPrefix(types[3], "qmcreate ") ||
		types[3] == "qmcreate OK" {
		t.Fatalf("cluster tasks newest first: %q", types)
	}
}

func TestParseUPID(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"UPID:pve1:00001234:00123456:6740A1B2:qmigrate:100:root@pam:", true},
		{"UPID:pve1:00001234:112345678:6740A1B2:vzdump::root@pam!tok:", true},
		{"UPID:pve1:00001234:00123456:6740A1B2:qmigrate:100:root@pam", false},
		{"UPID:pve1:1234:00123456:6740A1B2:qmigrate:100:root@pam:", false},
		{"UPID::00001234:00123456:6740A1B2:qmigrate:100:root@pam:", false},
		{"XPID:pve1:00001234:00123456:6740A1B2:qmigrate:100:root@pam:", false},
		{"UPID:pve1:0000123G:00123456:6740A1B2:qmigrate:100:root@pam:", false},
	} {
		u, err := pvesim.ParseUPID(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("ParseUPID(%q) = %+v, %v", tc.in, u, err)
			continue
		}
		if tc.ok && u.String() != tc.in {
			t.Errorf("ParseUPID(%q).String() = %q", tc.in, u.String())
		}
	}
}

// TestSnapshotRollback follows qm snapshot, qm rollback (which stops a
// running VM first and leaves it stopped), qm start and qm delsnapshot,
// with PVE's refusals: a bad or reused name, an unknown snapshot, and a
// snapshot whose second disk fails is undone on the first.
func TestSnapshotRollback(t *testing.T) {
	e := newEnv(t, nil)
	ctx := t.Context()
	if _, err := e.sim.CreateVM(ctx, 100, "pve2", "web", pvesim.Disk{Key: "scsi0", SizeKiB: 1 << 20}, pvesim.Disk{Key: "scsi1", SizeKiB: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	vm, _ := e.sim.VM(100)
	d0, d1 := vm.Volnames["scsi0"], vm.Volnames["scsi1"]
	mark := len(e.sim.Transcript())
	if _, err := e.sim.Snapshot(ctx, 100, "s1"); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"1st", "a", "has space", strings.Repeat("x", 41)} {
		if _, err := e.sim.Snapshot(ctx, 100, bad); err == nil || !strings.Contains(err.Error(), "invalid snapshot name") {
			t.Errorf("snapshot name %q: %v", bad, err)
		}
	}
	if _, err := e.sim.Snapshot(ctx, 100, "s1"); err == nil || !strings.Contains(err.Error(), "already used") {
		t.Errorf("second s1: %v", err)
	}
	e.st.fail["snapshot "+d1+" s2"] = errors.New("pool full")
	if _, err := e.sim.Snapshot(ctx, 100, "s2"); err == nil {
		t.Error("snapshot with a failing disk succeeded")
	}
	delete(e.st.fail, "snapshot "+d1+" s2")
	if _, err := e.sim.Rollback(ctx, 100, "s2"); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("rollback to the failed s2: %v", err)
	}
	if _, err := e.sim.Rollback(ctx, 100, "s1"); err != nil {
		t.Fatal(err)
	}
	if vm, _ := e.sim.VM(100); vm.Running || vm.Lock != "" {
		t.Errorf("after rollback: running %v lock %q, want stopped and unlocked", vm.Running, vm.Lock)
	}
	if _, err := e.sim.Start(ctx, 100); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sim.Start(ctx, 100); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Errorf("second start: %v", err)
	}
	if _, err := e.sim.DeleteSnapshot(ctx, 100, "s1"); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"lock 100 snapshot", "snapshot " + d0 + " s1", "snapshot " + d1 + " s1", "unlock 100",
		"lock 100 snapshot", "unlock 100",
		"lock 100 snapshot", "snapshot " + d0 + " s2", "snapshot " + d1 + " s2 error: pool full", "delsnapshot " + d0 + " s2", "unlock 100",
		"lock 100 rollback", "unlock 100",
		"lock 100 rollback", "deactivate " + d0 + " pve2", "deactivate " + d1 + " pve2", "rollback " + d0 + " s1", "rollback " + d1 + " s1", "unlock 100",
		"activate " + d0 + " pve2", "activate " + d1 + " pve2",
		"lock 100 snapshot-delete", "delsnapshot " + d0 + " s1", "delsnapshot " + d1 + " s1", "unlock 100",
	}
	if got := e.sim.Transcript()[mark:]; !slices.Equal(got, want) {
		t.Errorf("transcript\n got %q\nwant %q", got, want)
	}
}
