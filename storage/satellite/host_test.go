package satellite

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/pvehci/pvehci/ha/state"
	"github.com/pvehci/pvehci/internal/hostfs"
	"github.com/pvehci/pvehci/internal/run"
	"github.com/pvehci/pvehci/storage/lvm"
	"github.com/pvehci/pvehci/storage/model"
)

const testSecret = "Zm9vYmFyYmF6cXV4MTIzNDU2"

// fakeLV is an LV of the fake host.
type fakeLV struct {
	sizeKiB int64
	tags    string
	active  bool
}

// fakeDRBD is a resource up in the fake kernel.
type fakeDRBD struct {
	role      string
	disk      string // local disk state of every volume
	open      bool
	peerDisk  string
	peerConn  string
	peerRepl  string // replication toward every peer; "" is Established (Off when not connected)
	minors    []int  // by volume number
	peerIDs   []int
	peerNames []string
}

// fakeHost answers the satellite's commands the way a node with VG pve,
// thin pool pve/data and DRBD 9 would, keeping just enough state (LVs,
// metadata, kernel resources) for a second pass to see what the first did.
// The DRBD layout a successful adjust brings up comes from layout.
type fakeHost struct {
	mu     sync.Mutex
	lvs    map[string]*fakeLV // by LV name in VG pve
	md     map[string]bool    // by device
	kernel map[string]*fakeDRBD
	layout func(rsc string) fakeDRBD
}

func newHost(layout func(string) fakeDRBD) *fakeHost {
	return &fakeHost{lvs: map[string]*fakeLV{}, md: map[string]bool{}, kernel: map[string]*fakeDRBD{}, layout: layout}
}

// twoNodeLayout is pve1 (node id 0) connected to an UpToDate pve2 (1).
func twoNodeLayout(string) fakeDRBD {
	return fakeDRBD{role: "Secondary", disk: "UpToDate", peerDisk: "UpToDate", peerConn: "Connected", minors: []int{1000}, peerIDs: []int{1}, peerNames: []string{"pve2"}}
}

const vgsJSON = `  {
      "report": [
          {
              "vg": [
                  {"vg_name":"pve", "vg_size":"255550554112", "vg_free":"16903045120", "vg_extent_size":"4194304", "vg_tags":""}
              ]
          }
      ]
  }
`

func (h *fakeHost) lvsJSON() string {
	rows := []string{
		`{"lv_name":"data", "vg_name":"pve", "lv_attr":"twi-aotz--", "lv_size":"141037969408", "pool_lv":"", "origin":"", "data_percent":"12.41", "metadata_percent":"1.25", "lv_tags":""}`,
		`{"lv_name":"root", "vg_name":"pve", "lv_attr":"-wi-ao----", "lv_size":"103079215104", "pool_lv":"", "origin":"", "data_percent":"", "metadata_percent":"", "lv_tags":""}`,
		`{"lv_name":"vm-900-disk-0", "vg_name":"pve", "lv_attr":"Vwi-a-tz--", "lv_size":"8589934592", "pool_lv":"data", "origin":"", "data_percent":"0.00", "metadata_percent":"", "lv_tags":"pve-vm-900"}`,
	}
	names := make([]string, 0, len(h.lvs))
	for n := range h.lvs {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		lv := h.lvs[n]
		attr := "Vwi-aotz--"
		if !lv.active {
			attr = "Vwi---tz--"
		}
		rows = append(rows, fmt.Sprintf(`{"lv_name":%q, "vg_name":"pve", "lv_attr":%q, "lv_size":"%d", "pool_lv":"data", "origin":"", "data_percent":"0.00", "metadata_percent":"", "lv_tags":%q}`, n, attr, lv.sizeKiB*1024, lv.tags))
	}
	return "  {\n      \"report\": [\n          {\n              \"lv\": [\n                  " + strings.Join(rows, ",\n                  ") + "\n              ]\n          }\n      ]\n  }\n"
}

func (h *fakeHost) events() string {
	var b strings.Builder
	names := make([]string, 0, len(h.kernel))
	for n := range h.kernel {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		k := h.kernel[n]
		fmt.Fprintf(&b, "exists resource name:%s role:%s suspended:no force-io-failures:no may_promote:no promotion_score:10101 write-ordering:flush\n", n, k.role)
		for i, id := range k.peerIDs {
			fmt.Fprintf(&b, "exists connection name:%s peer-node-id:%d conn-name:%s connection:%s role:Secondary congested:no\n", n, id, k.peerNames[i], k.peerConn)
		}
		for vnr, minor := range k.minors {
			fmt.Fprintf(&b, "exists device name:%s volume:%d minor:%d backing_dev:/dev/pve/%s disk:%s client:no open:%s quorum:yes size:1048576 read:0 written:0 al-writes:0 bm-writes:0 upper-pending:0 lower-pending:0 al-suspended:no\n",
				n, vnr, minor, lvm.VolumeLVName(n, vnr), k.disk, yesNo(k.open))
		}
		for i, id := range k.peerIDs {
			for vnr := range k.minors {
				repl := "Established"
				if k.peerRepl != "" {
					repl = k.peerRepl
				}
				if k.peerConn != "Connected" {
					repl = "Off"
				}
				fmt.Fprintf(&b, "exists peer-device name:%s peer-node-id:%d conn-name:%s volume:%d replication:%s peer-disk:%s peer-client:no resync-suspended:no received:0 sent:0 out-of-sync:0\n",
					n, id, k.peerNames[i], vnr, repl, k.peerDisk)
			}
		}
	}
	b.WriteString("exists -\n")
	return b.String()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// freshLayout is pve1 (node id 0) and pve2 (1) connected, both with
// just-created metadata: the state of a new resource after adjust on both.
func freshLayout(string) fakeDRBD {
	return fakeDRBD{role: "Secondary", disk: "Inconsistent", peerDisk: "Inconsistent", peerConn: "Connected", minors: []int{1000}, peerIDs: []int{1}, peerNames: []string{"pve2"}}
}

// run answers one command from the host's state.
func (h *fakeHost) run(_ context.Context, c run.Cmd) (run.Result, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ok := func(out string) (run.Result, error) { return run.Result{Stdout: []byte(out)}, nil }
	fail := func(code int, stderr string) (run.Result, error) {
		return run.Result{Stderr: []byte(stderr), ExitCode: code}, &run.Error{Argv: c.Argv(), ExitCode: code, Stderr: []byte(stderr)}
	}
	a := c.Args
	switch {
	case c.Name == "vgs":
		return ok(vgsJSON)
	case c.Name == "lvs":
		return ok(h.lvsJSON())
	case c.Name == "drbdsetup" && a[0] == "events2":
		return ok(h.events())
	case c.Name == "lvcreate": // -V SIZEk -T pve/data -n NAME --addtag pvehci
		size, _ := strconv.ParseInt(strings.TrimSuffix(a[1], "k"), 10, 64)
		h.lvs[a[5]] = &fakeLV{sizeKiB: size, tags: a[7], active: true}
		return ok(fmt.Sprintf("  Logical volume %q created.\n", a[5]))
	case c.Name == "lvremove": // -f pve/NAME
		name := strings.TrimPrefix(a[1], "pve/")
		delete(h.lvs, name)
		return ok(fmt.Sprintf("  Logical volume %q successfully removed.\n", name))
	case c.Name == "lvchange": // -ay -K pve/NAME
		h.lvs[strings.TrimPrefix(a[2], "pve/")].active = true
		return ok("")
	case c.Name == "drbdmeta" && a[len(a)-1] == "wipe-md":
		delete(h.md, a[3])
		return ok("Wiping meta data...\nDRBD meta data block successfully wiped out.\n")
	case c.Name == "drbdmeta" && slices.Contains(a, "get-gi"):
		if h.md[a[3]] {
			return ok("0000000000000004:0000000000000000:0000000000000000:0000000000000000:1:1:0:1:0:0:0:0:0:0:0:0\n")
		}
		return fail(255, "No valid meta data found\n")
	case c.Name == "drbdadm" && slices.Contains(a, "create-md"):
		rv := strings.SplitN(a[len(a)-1], "/", 2)
		vnr, _ := strconv.Atoi(rv[1])
		h.md["/dev/pve/"+lvm.VolumeLVName(rv[0], vnr)] = true
		return ok("initializing activity log\ninitializing bitmap (32 KB) to all zero\nWriting meta data...\nNew drbd meta data block successfully created.\n")
	case c.Name == "drbdadm" && slices.Contains(a, "adjust"):
		k := h.layout(a[len(a)-1])
		h.kernel[a[len(a)-1]] = &k
		return ok("")
	case c.Name == "drbdadm" && len(a) == 3 && a[0] == "new-current-uuid" && a[1] == "--clear-bitmap":
		// A fake resource has one disk state for all volumes, so
		// this acts as if on all of them.
		k := h.kernel[strings.SplitN(a[2], "/", 2)[0]]
		if k == nil {
			return fail(10, "fakeHost: resource not up\n")
		}
		k.disk = "UpToDate"
		if k.peerConn == "Connected" {
			k.peerDisk = "UpToDate"
		}
		return ok("")
	case c.Name == "drbdadm" && len(a) == 3 && a[0] == "primary" && a[1] == "--force":
		k := h.kernel[a[2]]
		if k == nil {
			return fail(10, "fakeHost: resource not up\n")
		}
		k.role, k.disk = "Primary", "UpToDate"
		if k.peerConn == "Connected" {
			k.peerRepl = "SyncSource" // the peers become full sync targets
		}
		return ok("")
	case c.Name == "drbdadm" && len(a) == 2 && a[0] == "secondary":
		k := h.kernel[a[1]]
		if k == nil {
			return fail(10, "fakeHost: resource not up\n")
		}
		k.role = "Secondary"
		return ok("")
	case c.Name == "drbdsetup" && a[0] == "down":
		delete(h.kernel, a[1])
		return ok("")
	}
	return fail(127, "fakeHost: unexpected command\n")
}

// fake returns a Fake whose every command goes to the host; failures
// registered on it first take precedence.
func (h *fakeHost) fake(t testing.TB, failures func(f *run.Fake)) *run.Fake {
	f := run.NewFake(t)
	if failures != nil {
		failures(f)
	}
	f.OnFunc("fake host", func(run.Cmd) bool { return true }).Do(h.run)
	return f
}

// cluster is pve1 and pve2 with LVM-thin pools on VG pve and the
// resource definitions names, each with one 1 GiB volume, diskful on both.
func cluster(t testing.TB, names ...string) *state.State {
	t.Helper()
	s := state.New()
	must := func(cmd state.Command) {
		t.Helper()
		if res := s.Apply(cmd); res.Err != nil {
			t.Fatalf("%s: %v", cmd.Type(), res.Err)
		}
	}
	for i, n := range []string{"pve1", "pve2"} {
		must(&state.CreateNode{Name: n, NodeType: model.NodeTypeSatellite,
			NetInterfaces: []model.NetInterface{{Name: "default", Address: fmt.Sprintf("10.99.0.%d", i+1)}}})
		must(&state.CreateStoragePool{Node: n, Name: model.DefaultStoragePool, ProviderKind: model.ProviderLVMThin,
			Props: model.Props{model.KeyStorDriverLvmVg: "pve", model.KeyStorDriverThinPool: "data"}})
	}
	for _, name := range names {
		must(&state.CreateResourceDefinition{Name: name, DrbdSecret: testSecret,
			VolumeDefinitions: []state.NewVolumeDefinition{{SizeKiB: 1 << 20}}})
		for _, n := range []string{"pve1", "pve2"} {
			must(&state.CreateResource{ResourceDefinition: name, Node: n, Kind: state.Diskful})
		}
	}
	return s
}

func setResourceFlag(t testing.TB, s *state.State, rd, node, flag string) {
	t.Helper()
	if res := s.Apply(&state.SetFlags{Target: state.Target{Kind: model.ObjResource, ResourceDefinition: rd, Node: node}, Set: []string{flag}}); res.Err != nil {
		t.Fatal(res.Err)
	}
}

func newReconciler(root string, r run.Runner) *Reconciler {
	return &Reconciler{Node: "pve1", Runner: r, FS: hostfs.Root(root), ResDir: os.DirFS(root + ResDir).(fs.ReadDirFS)}
}
