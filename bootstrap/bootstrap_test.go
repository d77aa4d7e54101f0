package bootstrap_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/pvehci/pvehci/bootstrap"
	"github.com/pvehci/pvehci/internal/golden"
	"github.com/pvehci/pvehci/internal/run"
	"github.com/pvehci/pvehci/pve/corosync"
)

// TestFreshClusterToConverged bootstraps three fresh nodes in the order an
// admin would, checks what each left behind, and that a second run plans
// nothing anywhere.
func TestFreshClusterToConverged(t *testing.T) {
	tc := newTestCluster(t)
	ctx := context.Background()

	fresh, err := tc.engine("pve1").Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "testdata/plan-fresh-pve1.txt", []byte(fresh.String()))

	for _, name := range []string{"pve1", "pve2", "pve3"} {
		tc.bootstrapNode(name)
		again, err := tc.engine(name).Plan(ctx)
		if err != nil {
			t.Fatalf("planning %s again: %v", name, err)
		}
		if !again.Empty() {
			t.Errorf("%s is not converged after bootstrap; the second plan:\n%s", name, again)
		}
	}

	// pve1 is converged too now that the others are through, and says so.
	final, err := tc.engine("pve1").Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "testdata/plan-converged.txt", []byte(final.String()))
	if !final.Empty() {
		t.Errorf("pve1 plans changes after every node is through:\n%s", final)
	}

	// corosync: one cluster, every node on both links.
	conf, err := corosync.Parse([]byte(tc.read("pve1", corosync.ConfPath)))
	if err != nil {
		t.Fatal(err)
	}
	if got := len(conf.Nodelist.Nodes); got != 3 {
		t.Fatalf("corosync.conf has %d nodes, want 3", got)
	}
	for i, n := range conf.Nodelist.Nodes {
		want := []string{"10.0.0." + string(rune('1'+i)), "10.20.0." + string(rune('1'+i))}
		if n.Rings[0] != want[0] || n.Rings[1] != want[1] {
			t.Errorf("node %s rings %q %q, want %q", n.Name, n.Rings[0], n.Rings[1], want)
		}
	}
	if tc.read("pve3", corosync.ConfPath) != tc.read("pve1", corosync.ConfPath) {
		t.Error("pve3 and pve1 see different corosync.conf: /etc/pve is not shared")
	}

	// The Proxmox storage entry: added once, by the last node, with every
	// controller.
	cfg := tc.read("pve2", bootstrap.StorageCfgPath)
	if strings.Count(cfg, "drbd: drbdstorage") != 1 {
		t.Errorf("storage.cfg should have exactly one drbd entry:\n%s", cfg)
	}
	for _, want := range []string{"\tcontroller 10.0.0.1,10.0.0.2,10.0.0.3\n", "\tresourcegroup drbdgrp\n", "\tcontent images,rootdir\n"} {
		if !strings.Contains(cfg, want) {
			t.Errorf("storage.cfg lacks %q:\n%s", want, cfg)
		}
	}
	if n := countPrefix(tc.nodes["pve3"].Transcript(), "pvesm add drbd"); n != 1 {
		t.Errorf("pve3 ran pvesm add %d times, want 1", n)
	}
	for _, name := range []string{"pve1", "pve2"} {
		if n := countPrefix(tc.nodes[name].Transcript(), "pvesm add"); n != 0 {
			t.Errorf("%s ran pvesm add before every node had the plugin", name)
		}
	}

	// The network files of one node, byte for byte.
	golden.Check(t, "testdata/pve2-interfaces", []byte(tc.read("pve2", "/etc/network/interfaces")))
	golden.Check(t, "testdata/pve2-interfaces.d-pvehci", []byte(tc.read("pve2", "/etc/network/interfaces.d/pvehci")))
	golden.Check(t, "testdata/pve2-ib0.link", []byte(tc.read("pve2", "/etc/systemd/network/10-pvehci-ib0.link")))

	// pvehci: one cluster of three; registration through the REST API.
	st, err := tc.daemons.backend.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(tc.daemons.members); got != 3 {
		t.Errorf("pvehci cluster has %d members, want 3", got)
	}
	for _, name := range []string{"pve1", "pve2", "pve3"} {
		n, ok := st.Node(name)
		if !ok {
			t.Errorf("node %s not registered", name)
			continue
		}
		if len(n.NetInterfaces) != 2 {
			t.Errorf("node %s has interfaces %+v, want default and storage", name, n.NetInterfaces)
		}
		if _, err := os.Stat(filepath.Join(tc.nodes[name].Root, "sys/module/drbd_transport_rdma")); err != nil {
			t.Errorf("%s: drbd_transport_rdma not loaded", name)
		}
	}
	rg, ok := st.ResourceGroup("drbdgrp")
	if !ok {
		t.Fatal("resource group drbdgrp missing")
	}
	if rg.Props["DrbdOptions/Net/transport"] != "rdma" || rg.Props["PrefNic"] != "storage" {
		t.Errorf("resource group props %v, want the RDMA transport and PrefNic storage", rg.Props)
	}
	if len(st.JobSchedules()) != 1 {
		t.Errorf("schedules %+v, want nightly", st.JobSchedules())
	}
	// The join tokens were taken.
	if left := tc.read("pve1", "/etc/pve/priv/pvehci/join-pve2.json"); left != "" {
		t.Errorf("pve2's join token is still in pmxcfs: %s", left)
	}
	// What bootstrap did is recorded.
	var rec bootstrap.Record
	if data := tc.read("pve3", bootstrap.RecordPath); !strings.Contains(data, `"step": "proxmox-storage"`) {
		t.Errorf("bootstrap.json of pve3 lacks the steps:\n%s", data)
	}
	_ = rec
}

func countPrefix(lines []string, prefix string) int {
	n := 0
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			n++
		}
	}
	return n
}

// TestHalfDoneNodePlansOnlyTheRest stops pve1's bootstrap at the storage
// step, then checks the next plan: the steps that went through are
// converged, the rest is planned.
func TestHalfDoneNodePlansOnlyTheRest(t *testing.T) {
	tc := newTestCluster(t)
	ctx := context.Background()
	n := tc.nodes["pve1"]
	n.Fail["pvcreate"] = "  Cannot use /dev/nvme0n1: device is busy (simulated)"
	e := tc.engine("pve1")
	plan, err := e.Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := e.Apply(ctx, plan, nil)
	var se *bootstrap.StepError
	if !errors.As(err, &se) || se.Step != "storage" {
		t.Fatalf("Apply = %v, want the storage step to fail", err)
	}
	if !strings.Contains(err.Error(), "device is busy") {
		t.Errorf("the error does not carry pvcreate's reason: %v", err)
	}
	results := map[string]bootstrap.Result{}
	for _, s := range rec.Steps {
		results[s.Step] = s.Result
	}
	want := map[string]bootstrap.Result{"preflight": bootstrap.Unchanged, "packages": bootstrap.Applied, "network": bootstrap.Applied,
		"corosync": bootstrap.Applied, "storage": bootstrap.Restored, "drbd": bootstrap.Skipped, "service": bootstrap.Skipped,
		"register": bootstrap.Skipped, "proxmox-storage": bootstrap.Skipped}
	if !reflect.DeepEqual(results, want) {
		t.Errorf("step results %v, want %v", results, want)
	}

	delete(n.Fail, "pvcreate")
	half, err := tc.engine("pve1").Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "testdata/plan-half-done-pve1.txt", []byte(half.String()))
	for _, s := range half {
		done := s.Step == "preflight" || s.Step == "packages" || s.Step == "network" || s.Step == "corosync"
		if done && len(s.Changes) > 0 {
			t.Errorf("step %s went through but plans again: %+v", s.Step, s.Changes)
		}
		if !done && s.Step != "proxmox-storage" && len(s.Changes) == 0 {
			t.Errorf("step %s did not run but plans nothing", s.Step)
		}
	}
	tc.bootstrapNode("pve1")
}

// TestFailingNetworkStepRestoresFilesByteForByte makes ifreload fail: the
// network files, the .link file and everything else must be as before,
// and the running network reloaded from the restored files.
func TestFailingNetworkStepRestoresFilesByteForByte(t *testing.T) {
	tc := newTestCluster(t)
	ctx := context.Background()
	n := tc.nodes["pve1"]
	orig := "auto lo\niface lo inet loopback\n\nauto vmbr0\niface vmbr0 inet static\n\taddress 10.0.0.1/24\n\tgateway 10.0.0.254\n\tbridge-ports enp65s0f0\n\tbridge-stp off\n\tbridge-fd 0\n"
	if err := os.MkdirAll(filepath.Join(n.Root, "etc/network"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(n.Root, "etc/network/interfaces"), []byte(orig), 0o644); err != nil {
		t.Fatal(err)
	}
	// Packages first, so that the failure is the network's alone.
	n.Install("drbd-dkms", "drbd-utils", "linstor-proxmox", "proxmox-headers-6.8.8-2-pve", "rdma-core", "infiniband-diags")
	for f, data := range map[string]string{"etc/apt/sources.list.d/linbit.list": "# Written by pvehci bootstrap: LINBIT's public repository for DRBD 9 and the Proxmox plugin.\n" +
		"deb [signed-by=/etc/apt/trusted.gpg.d/linbit-keyring.gpg] http://packages.linbit.com/public/ proxmox-8 drbd-9\n",
		"etc/apt/trusted.gpg.d/linbit-keyring.gpg": "key\n"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(n.Root, f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(n.Root, f), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	n.Fail["ifreload -a"] = "error: bond0: cannot enslave enp65s0f0: Device or resource busy"
	before := tree(t, n.Root)

	e := tc.engine("pve1")
	plan, err := e.Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.Apply(ctx, plan, nil)
	var se *bootstrap.StepError
	if !errors.As(err, &se) || se.Step != "network" {
		t.Fatalf("Apply = %v, want the network step to fail", err)
	}
	for _, want := range []string{"cannot enslave", "/etc/network/interfaces", "10-pvehci-ib0.link"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error lacks %q: %v", want, err)
		}
	}
	after := tree(t, n.Root)
	delete(after, "var/lib/pvehci/bootstrap.json") // the record is the one intended change
	if !reflect.DeepEqual(before, after) {
		for k, v := range after {
			if before[k] != v {
				t.Errorf("%s changed:\n%s\nwas:\n%s", k, v, before[k])
			}
		}
		for k := range before {
			if _, ok := after[k]; !ok {
				t.Errorf("%s was removed", k)
			}
		}
	}
	if got := countPrefix(n.Transcript(), "ifreload -a"); got != 2 {
		t.Errorf("ifreload ran %d times, want 2 (the failing apply, then the revert)", got)
	}
}

// TestTryRevertsAnUnconfirmedNetworkChange is --try with no answer.
func TestTryRevertsAnUnconfirmedNetworkChange(t *testing.T) {
	tc := newTestCluster(t)
	ctx := context.Background()
	n := tc.nodes["pve1"]
	before := tree(t, n.Root)
	e := tc.engine("pve1")
	e.Try = &bootstrap.Try{Step: bootstrap.NetworkStepName, Confirm: func(context.Context) error { return errors.New("no answer within 2m0s") }}
	plan, err := e.Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.Apply(ctx, plan, nil)
	if err == nil || !strings.Contains(err.Error(), "not confirmed (no answer within 2m0s)") {
		t.Fatalf("Apply = %v, want the network step put back", err)
	}
	for _, f := range []string{"etc/network/interfaces", "etc/network/interfaces.d/pvehci", "etc/systemd/network/10-pvehci-ib0.link"} {
		if before[f] != tree(t, n.Root)[f] {
			t.Errorf("%s not put back", f)
		}
	}
	if got := countPrefix(n.Transcript(), "ifreload -a"); got != 2 {
		t.Errorf("ifreload ran %d times, want 2 (apply, revert)", got)
	}
}

// TestRefusals: hosts bootstrap must not touch.
func TestRefusals(t *testing.T) {
	for _, tt := range []struct {
		name  string
		setup func(t *testing.T, tc *testCluster)
		opts  func(*bootstrap.Options)
		want  []string
	}{
		{"partitioned disk", func(t *testing.T, tc *testCluster) {
			if err := tc.nodes["pve1"].LVM.PartitionDisk("/dev/nvme0n1"); err != nil {
				t.Fatal(err)
			}
		}, nil, []string{"disk /dev/nvme0n1 is not empty", "gpt partition table", "--wipe /dev/nvme0n1"}},
		{"pending interfaces.new", func(t *testing.T, tc *testCluster) {
			p := filepath.Join(tc.nodes["pve1"].Root, "etc/network/interfaces.new")
			if err := os.WriteFile(p, []byte("auto lo\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, nil, []string{"pending Proxmox network changes", "Apply Configuration"}},
		{"missing NIC", func(t *testing.T, tc *testCluster) {}, func(o *bootstrap.Options) {
			o.Node.Bond.Slaves = []string{"enp65s0f0", "eno9"}
		}, []string{"NIC eno9 (bond bond0) does not exist"}},
		{"clock not synchronised", func(t *testing.T, tc *testCluster) { tc.nodes["pve1"].NTP = false }, nil,
			[]string{"the clock is not synchronised", "chrony"}},
		{"LINSTOR controller on the ports", func(t *testing.T, tc *testCluster) {
			tc.nodes["pve1"].Listening = []string{"*:3370", "*:3371"}
		}, nil, []string{"ports pvehci needs are in use (*:3370, *:3371)", "linstor-controller"}},
		{"wipe names a foreign disk", func(t *testing.T, tc *testCluster) {}, func(o *bootstrap.Options) {
			o.Wipe = []string{"/dev/sda"}
		}, []string{"--wipe /dev/sda names a disk that is not in this node's disks"}},
		{"offline without packages", func(t *testing.T, tc *testCluster) {}, func(o *bootstrap.Options) { o.Offline = true },
			[]string{"--offline, but these packages are not installed: proxmox-headers-6.8.8-2-pve, drbd-dkms"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tc := newTestCluster(t)
			tt.setup(t, tc)
			n := tc.nodes["pve1"]
			before := tree(t, n.Root)
			var mods []func(*bootstrap.Options)
			if tt.opts != nil {
				mods = append(mods, tt.opts)
			}
			_, err := tc.engine("pve1", mods...).Plan(context.Background())
			if err == nil {
				t.Fatal("planned without complaint")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			if !reflect.DeepEqual(before, tree(t, n.Root)) {
				t.Error("planning changed files")
			}
			for _, c := range n.Transcript() {
				for _, mutating := range []string{"apt-get install", "pvcreate", "wipefs", "ifreload", "pvecm create", "modprobe"} {
					if strings.HasPrefix(c, mutating) {
						t.Errorf("planning ran %q", c)
					}
				}
			}
		})
	}
}

// TestWipeErasesANamedDisk: with --wipe the partitioned disk is erased and
// used.
func TestWipeErasesANamedDisk(t *testing.T) {
	tc := newTestCluster(t)
	if err := tc.nodes["pve1"].LVM.PartitionDisk("/dev/nvme0n1"); err != nil {
		t.Fatal(err)
	}
	e := tc.engine("pve1", func(o *bootstrap.Options) { o.Wipe = []string{"/dev/nvme0n1"} })
	plan, err := e.Plan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(plan.String(), "wipefs --all /dev/nvme0n1") {
		t.Fatalf("plan does not erase the disk:\n%s", plan)
	}
	if _, err := e.Apply(context.Background(), plan, nil); err != nil {
		t.Fatal(err)
	}
}

// TestLink1AddedToAnExistingCluster: a Proxmox cluster made by hand with
// one link gets link 1 in one edit, and only once every IPoIB address
// answers.
func TestLink1AddedToAnExistingCluster(t *testing.T) {
	tc := newTestCluster(t)
	ctx := context.Background()
	for i, name := range []string{"pve1", "pve2"} {
		n := tc.nodes[name]
		// The admin's network: management on the bridge already.
		setupManagement(t, tc, name)
		var args []string
		if i == 0 {
			args = []string{"pvecm", "create", "hci1", "--link0", "10.0.0.1"}
		} else {
			args = []string{"pvecm", "add", "10.0.0.1", "--link0", "10.0.0.2", "--use_ssh"}
		}
		if _, err := n.Host().Run.Run(ctx, runCmd(args...)); err != nil {
			t.Fatal(err)
		}
	}
	// An HA guest: the edit is wrapped in disarm-ha and arm-ha.
	ha := filepath.Join(tc.world.Dir(), "pmxcfs/ha")
	if err := os.MkdirAll(ha, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ha, "resources.cfg"), []byte("vm: 100\n\tstate started\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"pve1", "pve2"} {
		tc.nodes[name].Versions["pve-ha-manager"] = "5.1.3"
	}
	// pve1 first: pve2's IPoIB address does not answer yet.
	e := tc.engine("pve1")
	plan, err := e.Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(plan.String(), "add corosync link 1 on the IPoIB network for every node (config_version 2 -> 3") {
		t.Fatalf("plan lacks the link 1 edit:\n%s", plan)
	}
	before := tc.read("pve1", corosync.ConfPath)
	_, err = e.Apply(ctx, plan, nil)
	if err == nil || !strings.Contains(err.Error(), "pve2's IPoIB address 10.20.0.2 does not answer") {
		t.Fatalf("Apply = %v, want a refusal naming pve2", err)
	}
	if tc.read("pve1", corosync.ConfPath) != before {
		t.Fatal("corosync.conf changed although the edit was refused")
	}
	if got := haCommands(tc.nodes["pve1"].Transcript()); got != "disarm-ha,arm-ha" {
		t.Errorf("HA commands on pve1 = %s, want disarm-ha then arm-ha although the edit failed", got)
	}
	// pve2 goes further: its network is up, pve1's IPoIB answers, so it
	// adds link 1 for both; it stops at the pvehci join, since pve1 has
	// not left a token yet.
	e2 := tc.engine("pve2")
	plan2, err := e2.Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = e2.Apply(ctx, plan2, nil)
	if err == nil || !strings.Contains(err.Error(), "no join token for pve2 in /etc/pve/priv/pvehci: run pvehci bootstrap on pve1 first") {
		t.Fatalf("pve2's bootstrap = %v, want it to stop at the join", err)
	}
	conf, err := corosync.Parse([]byte(tc.read("pve1", corosync.ConfPath)))
	if err != nil {
		t.Fatal(err)
	}
	if conf.Interface(1) == nil || conf.Node("pve1").Rings[1] != "10.20.0.1" || conf.Node("pve2").Rings[1] != "10.20.0.2" {
		t.Fatalf("link 1 not on every node:\n%s", tc.read("pve1", corosync.ConfPath))
	}
	if conf.Totem.ConfigVersion != 3 {
		t.Errorf("config_version %d, want 3", conf.Totem.ConfigVersion)
	}
	if got := haCommands(tc.nodes["pve2"].Transcript()); got != "disarm-ha,arm-ha" {
		t.Errorf("HA commands on pve2 = %s, want disarm-ha then arm-ha", got)
	}
	tc.bootstrapNode("pve1")
	tc.bootstrapNode("pve2")
}

// setupManagement gives a node the admin's network of a fresh install:
// vmbr0 on the first NIC with the management address.
func setupManagement(t *testing.T, tc *testCluster, name string) {
	t.Helper()
	n := tc.nodes[name]
	node, err := tc.file.Node(name)
	if err != nil {
		t.Fatal(err)
	}
	data := "auto lo\niface lo inet loopback\n\niface enp65s0f0 inet manual\n\nauto vmbr0\niface vmbr0 inet static\n\taddress " +
		node.Management.String() + "\n\tbridge-ports enp65s0f0\n\tbridge-stp off\n\tbridge-fd 0\n\nsource /etc/network/interfaces.d/*\n"
	if err := os.MkdirAll(filepath.Join(n.Root, "etc/network"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(n.Root, "etc/network/interfaces"), []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Host().Run.Run(context.Background(), runCmd("ifreload", "-a")); err != nil {
		t.Fatal(err)
	}
}

func runCmd(argv ...string) run.Cmd { return run.Command(argv[0], argv[1:]...) }

// haCommands lists the ha-manager crm-commands a node ran.
func haCommands(transcript []string) string {
	var out []string
	for _, l := range transcript {
		if f := strings.Fields(l); len(f) >= 3 && f[0] == "ha-manager" {
			out = append(out, f[2])
		}
	}
	return strings.Join(out, ",")
}
