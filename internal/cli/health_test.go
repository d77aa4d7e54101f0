package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pvehci/pvehci/ha"
	"github.com/pvehci/pvehci/health"
	"github.com/pvehci/pvehci/internal/golden"
	"github.com/pvehci/pvehci/internal/run"
	"github.com/pvehci/pvehci/storage/drbd"
	"github.com/pvehci/pvehci/storage/model"
)

// The canned tool output and the goldens live with the health package,
// which owns the checks they exercise.
const healthTestdata = "../../health/testdata"

var healthNow = time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)

type fakeStatus struct {
	st  ha.ClusterStatus
	err error
}

func (f fakeStatus) Status(context.Context) (ha.ClusterStatus, error) { return f.st, f.err }

// healthNode is a node as canned real-format output: corosync-quorumtool
// (with its exit code), corosync-cfgtool, drbdsetup events2 and lvs.
type healthNode struct {
	quorum     string
	quorumExit int
	links      string
	events     string
	lvs        string
	status     ha.ClusterStatus
	statusErr  error
	// view builds the leader's cluster view; this node's resources and
	// pools come from the canned output above.
	view    func(local []drbd.ObservedResource) health.ClusterView
	viewErr error
	nicDown bool
}

type fakeNet struct{ nicDown bool }

func (f fakeNet) Links(context.Context) ([]health.NetLink, error) {
	return []health.NetLink{
		{Name: "bond0", Kind: "bond", Up: true, LinkLayer: "ether"},
		{Name: "enp65s0f0", Kind: "device", Up: true, Master: "bond0", LinkLayer: "ether"},
		{Name: "enp65s0f1", Kind: "device", Up: !f.nicDown, Master: "bond0", LinkLayer: "ether"},
		{Name: "ib0", Kind: "ipoib", Up: true, LinkLayer: "infiniband", Addrs: 1},
	}, nil
}

func (f fakeNet) RDMAPorts(context.Context) ([]health.RDMAPort, error) {
	return []health.RDMAPort{{Device: "mlx5_0", Port: 1, State: "ACTIVE", LinkLayer: "InfiniBand", NetDev: "ib0"}}, nil
}

type fakeView struct {
	v   health.ClusterView
	err error
}

func (f fakeView) View(context.Context) (health.ClusterView, error) { return f.v, f.err }

// healthyView is three nodes reporting, everything at its place count,
// the nightly snapshot job fine.
func healthyView(local []drbd.ObservedResource) health.ClusterView {
	return health.ClusterView{Leader: "pve2", Time: healthNow,
		Nodes: []health.NodeView{
			{Name: "pve1", Online: true, LastReport: healthNow.Add(-2 * time.Second), Resources: local,
				Pools: []health.PoolView{{Name: "thinpool", TotalKiB: 1 << 30, FreeKiB: 1 << 29, DataPercent: 41.5, MetadataPercent: 12}}},
			{Name: "pve2", Online: true, LastReport: healthNow.Add(-1 * time.Second),
				Pools: []health.PoolView{{Name: "thinpool", TotalKiB: 1 << 30, FreeKiB: 1 << 29, DataPercent: 40.1, MetadataPercent: 11}}},
			{Name: "pve3", Online: true, LastReport: healthNow.Add(-3 * time.Second),
				Pools: []health.PoolView{{Name: "thinpool", TotalKiB: 1 << 30, FreeKiB: 1 << 29, DataPercent: 39.9, MetadataPercent: 11}}},
		},
		Definitions: []health.DefinitionView{{Name: "pm-1a2b3c4d", PlaceCount: 2, Diskful: []string{"pve1", "pve2"}, Diskless: []string{"pve3"}}},
		Schedules: []health.ScheduleView{{Name: "nightly", Kind: model.JobSnapshot,
			LastRun: &model.JobRun{ID: "r1", Schedule: "nightly", Kind: model.JobSnapshot, State: model.RunSucceeded}}},
		Verifies: []health.VerifyView{{VerifyResult: model.VerifyResult{Resource: "pm-1a2b3c4d", RunID: "v1", Schedule: "weekly-verify",
			FinishedAt: healthNow.Add(-48 * time.Hour).UnixMilli()}}},
	}
}

// brokenView: pve3 silent, a definition one replica short, the nightly
// job failed and the verify job paused after a verify found 12 KiB out of
// sync, a pool at 91 %, a relocation
// failed and a VM running diskless on pve2 long past its delay.
func brokenView(local []drbd.ObservedResource) health.ClusterView {
	v := healthyView(local)
	v.Nodes[2].Online, v.Nodes[2].LastReport = false, healthNow.Add(-95*time.Second)
	v.Nodes[1].Pools[0].DataPercent = 91.2
	v.Nodes[1].Resources = []drbd.ObservedResource{{Name: "pm-9f8e7d6c", Role: drbd.RolePrimary, Devices: []drbd.ObservedDevice{{Volume: 0, Minor: 1001, Disk: "Diskless", Client: true}}}}
	v.Definitions = append(v.Definitions, health.DefinitionView{Name: "pm-5e6f7a8b", PlaceCount: 2, Diskful: []string{"pve1"}})
	v.Schedules[0].LastRun.State, v.Schedules[0].LastRun.Message = model.RunFailed, "snapshot of pm-1a2b3c4d on pve3: node offline"
	v.Schedules = append(v.Schedules, health.ScheduleView{Name: "weekly-verify", Kind: model.JobVerify, Paused: true})
	v.Verifies[0].OutOfSyncKiB = 12
	v.Relocations = []model.Relocation{{ResourceName: "pm-9f8e7d6c", TargetNode: "pve2", SourceNode: "pve3", State: model.RelocFailed,
		Reason: "pool-full", Message: "thinpool on pve2 has 2 GiB free, the volume needs 32 GiB"}}
	return v
}

func healthyNode() healthNode {
	return healthNode{
		quorum: "quorumtool-quorate.txt", links: "cfgtool-ok.txt", events: "events2-healthy.txt", lvs: "lvs-healthy.json",
		view: healthyView,
		status: ha.ClusterStatus{
			Node: "pve1", Member: true, ClusterName: "prod",
			Raft:       &ha.Status{ID: "pve1", State: "Follower", LeaderID: "pve2", LeaderAddress: "10.99.0.2:7443", LastContact: 80 * time.Millisecond},
			CertExpiry: healthNow.Add(300 * 24 * time.Hour),
			CAExpiry:   healthNow.Add(3650 * 24 * time.Hour),
		},
	}
}

func brokenHealthNode() healthNode {
	n := healthyNode()
	n.quorum, n.quorumExit = "quorumtool-not-quorate.txt", 2
	n.links = "cfgtool-link0-down.txt"
	n.events = "events2-broken.txt"
	n.lvs = "lvs-full.json"
	raft := *n.status.Raft
	raft.LeaderID, raft.LeaderAddress = "", ""
	n.status.Raft = &raft
	n.status.CertExpiry = healthNow.Add(5 * 24 * time.Hour)
	n.view = brokenView
	n.nicDown = true
	return n
}

func (n healthNode) sources(t *testing.T) health.Sources {
	t.Helper()
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(healthTestdata, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	f := run.NewFake(t)
	f.On("corosync-quorumtool", "-s").Return(run.Response{Stdout: read(n.quorum), ExitCode: n.quorumExit})
	f.On("corosync-cfgtool", "-s").Stdout(read(n.links))
	f.On("drbdsetup", "events2", "--now", "--statistics").Stdout(read(n.events))
	f.OnPrefix("lvs").Stdout(read(n.lvs))
	cmds := health.Commands{Runner: f}
	src := health.Sources{Corosync: cmds, DRBD: cmds, LVM: cmds, Network: fakeNet{nicDown: n.nicDown},
		Controller: fakeStatus{n.status, n.statusErr}, Now: func() time.Time { return healthNow }}
	if n.view != nil || n.viewErr != nil {
		fv := fakeView{err: n.viewErr}
		if n.view != nil {
			// This node's resources as its satellite reports them, from
			// the same canned events2 (a second Fake: the checks' own
			// call must stay the only one on f).
			lf := run.NewFake(t)
			lf.On("drbdsetup", "events2", "--now", "--statistics").Stdout(read(n.events))
			local, err := health.Commands{Runner: lf}.Resources(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			fv.v = n.view(local)
		}
		src.Cluster = fv
	}
	return src
}

func TestHealthGolden(t *testing.T) {
	daemonDown := healthyNode()
	daemonDown.statusErr = errors.New("the pvehci daemon is not running on this node (nothing answers on /run/pvehci/pvehci.sock); start it with `systemctl start pvehci`")
	daemonDown.view, daemonDown.viewErr = nil, daemonDown.statusErr
	tests := []struct {
		name     string
		node     healthNode
		json     bool
		wantCode int
	}{
		{"healthy", healthyNode(), false, 0},
		{"healthy", healthyNode(), true, 0},
		{"broken", brokenHealthNode(), false, 2},
		{"broken", brokenHealthNode(), true, 2},
		{"daemon-down", daemonDown, false, 3},
	}
	for _, tt := range tests {
		file := "health-" + tt.name + ".txt"
		if tt.json {
			file = "health-" + tt.name + ".json"
		}
		t.Run(file, func(t *testing.T) {
			var out bytes.Buffer
			code, err := runHealth(context.Background(), env{stdout: &out, stderr: &out}, tt.node.sources(t), healthOptions{json: tt.json})
			if err != nil {
				t.Fatal(err)
			}
			if code != tt.wantCode {
				t.Errorf("exit code = %d, want %d", code, tt.wantCode)
			}
			if bytes.Contains(out.Bytes(), []byte("\x1b[")) {
				t.Error("colour codes without a terminal")
			}
			if tt.json {
				var rep health.Report
				if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
					t.Fatalf("not JSON: %v", err)
				}
				if rep.ExitCode != code {
					t.Errorf("JSON exit_code %d, process exit code %d", rep.ExitCode, code)
				}
			}
			golden.Check(t, filepath.Join(healthTestdata, "golden", file), out.Bytes())
		})
	}
}

func TestHealthColourOnlyWhenAsked(t *testing.T) {
	var out bytes.Buffer
	if _, err := runHealth(context.Background(), env{stdout: &out}, brokenHealthNode().sources(t), healthOptions{colour: true}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "\x1b[1;31mCRITICAL") {
		t.Errorf("no colour on a terminal:\n%s", out.String())
	}
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer devnull.Close()
	if isTerminalWriter(devnull) || isTerminalWriter(&out) {
		t.Error("/dev/null or a buffer taken for a terminal")
	}
}

func TestHealthCheckFlag(t *testing.T) {
	var out bytes.Buffer
	code, err := runHealth(context.Background(), env{stdout: &out}, brokenHealthNode().sources(t), healthOptions{checks: []string{"pool_data_full"}})
	if err != nil || code != 2 {
		t.Fatalf("code %d, err %v", code, err)
	}
	if !strings.Contains(out.String(), "POOL_DATA_FULL") || strings.Contains(out.String(), "DRBD_") {
		t.Errorf("--check POOL_DATA_FULL printed other checks:\n%s", out.String())
	}
	_, err = runHealth(context.Background(), env{stdout: &out}, healthyNode().sources(t), healthOptions{checks: []string{"NOPE"}})
	var ue usageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "COROSYNC_NO_QUORUM") {
		t.Errorf("unknown --check: err = %v, want a usage error listing the codes", err)
	}
}

// TestHealthCommandExitCode runs the real command tree: with no daemon on
// the socket and no tools, the exit code is still a Nagios code.
func TestHealthCommandExitCode(t *testing.T) {
	code, stdout, stderr := runCLI(t, "health", "--check", "CONTROLLER_NO_LEADER", "--socket", filepath.Join(t.TempDir(), "none.sock"))
	if code != 3 {
		t.Errorf("exit code = %d, want 3 (unknown)\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "controller: unavailable, so the checks that need it are unknown") || !strings.Contains(stdout, "systemctl start pvehci") {
		t.Errorf("stdout does not say the daemon is down:\n%s", stdout)
	}
	if stderr != "" {
		t.Errorf("stderr = %q, want nothing", stderr)
	}
}
