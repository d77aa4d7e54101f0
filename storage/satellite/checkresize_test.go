package satellite

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pvehci/pvehci/internal/run"
	"github.com/pvehci/pvehci/storage/drbd"
	"github.com/pvehci/pvehci/storage/lvm"
)

// TestObserveLastKnownSize: a volume whose LV has no metadata at its end
// and whose minor's last-known-size file names a smaller size is marked,
// and planned for check-resize, never create-md. The file's contents are
// drbd-utils' as written on this machine ("67108864\t/dev/loop0\n", with a
// "uuid:" line when drbdadm create-md wrote it).
func TestObserveLastKnownSize(t *testing.T) {
	t.Parallel()
	const (
		lvKiB  = 2101248 // the LV after the grow
		oldKiB = 1052672 // before
	)
	tests := []struct {
		name    string
		md      bool   // metadata at the LV's end
		file    string // the .lkbd; "" for none
		want    uint64 // LastKnownSize, 0 for none
		problem string
		kinds   []Kind
	}{
		{name: "grown while down: check-resize, then attach", file: "1077936128\t/dev/pve/" + rsc + "_00000\n",
			want: oldKiB * 1024, kinds: []Kind{CheckResize, Adjust}},
		{name: "the file drbdadm create-md writes, with a uuid line", file: "1077936128\t/dev/pve/" + rsc + "_00000\nuuid:\t8C3237AAB5AF5DE8\n",
			want: oldKiB * 1024, kinds: []Kind{CheckResize, Adjust}},
		{name: "another device name counts too, as for drbdmeta", file: "1077936128\t/dev/dm-7\n",
			want: oldKiB * 1024, kinds: []Kind{CheckResize, Adjust}},
		{name: "no file: no metadata anywhere, create-md", kinds: []Kind{CreateMD, Adjust}},
		{name: "the file names the LV's size: create-md", file: "2151677952\t/dev/pve/" + rsc + "_00000\n",
			kinds: []Kind{CreateMD, Adjust}},
		{name: "the file names a bigger size: create-md", file: "4294967296\t/dev/pve/" + rsc + "_00000\n",
			kinds: []Kind{CreateMD, Adjust}},
		{name: "metadata at the end: the file is not looked at", md: true, file: "1077936128\t/dev/pve/" + rsc + "_00000\n",
			kinds: []Kind{Adjust}},
		{name: "an unreadable file leaves the resource alone", file: "garbage\n", problem: "cannot be read"},
		{name: "an empty file leaves the resource alone", file: "\n", problem: "cannot be read"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := cluster(t, rsc)
			want, err := Desired(s, "pve1")
			if err != nil {
				t.Fatal(err)
			}
			d, _ := want.Resource(rsc)
			v := d.Volumes[0]
			h := newHost(twoNodeLayout)
			h.lvs[v.LV] = &fakeLV{sizeKiB: lvKiB, tags: lvm.Tag, active: true}
			h.md[v.Device()] = tc.md
			root := t.TempDir()
			if err := os.MkdirAll(root+ResDir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(root+ResPath(rsc), d.Res, 0o644); err != nil {
				t.Fatal(err)
			}
			if tc.file != "" {
				p := filepath.Join(root, LastKnownPath(v.Minor))
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(tc.file), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, err := newReconciler(root, h.fake(t, nil)).Observe(context.Background(), want)
			if err != nil {
				t.Fatal(err)
			}
			if size, ok := got.LastKnownSize[v.Key()]; size != tc.want || ok != (tc.want != 0) {
				t.Errorf("LastKnownSize = %d (%t), want %d", size, ok, tc.want)
			}
			p := Plan(want, got)
			var kinds []Kind
			for _, a := range p.Actions {
				kinds = append(kinds, a.Kind)
				if a.Kind == CheckResize && (a.Minor != v.Minor || a.SizeKiB != oldKiB || a.VG != "pve" || a.LV != v.LV) {
					t.Errorf("CheckResize %+v", a)
				}
			}
			if !slices.Equal(kinds, tc.kinds) {
				t.Errorf("actions = %v, want %v", kinds, tc.kinds)
			}
			switch {
			case tc.problem == "" && len(p.Problems) > 0:
				t.Errorf("problems = %v", p.Problems)
			case tc.problem != "" && (len(p.Problems) != 1 || !strings.Contains(p.Problems[0].Err.Error(), tc.problem) ||
				!strings.Contains(p.Problems[0].Err.Error(), LastKnownPath(v.Minor))):
				t.Errorf("problems = %v, want one with %q naming the file", p.Problems, tc.problem)
			}
		})
	}
}

// TestPlanCheckResizeOnlyWhileDetached: check-resize on a volume DRBD holds
// would be an online resize (drbdadm runs drbdsetup resize), so a last-known
// size is acted on only for a volume that is not attached; an attached one
// that is smaller than its definition is grown as usual.
func TestPlanCheckResizeOnlyWhileDetached(t *testing.T) {
	t.Parallel()
	const key = "pve/" + rsc + "_00000"
	s := cluster(t, rsc)
	want, err := Desired(s, "pve1")
	if err != nil {
		t.Fatal(err)
	}
	d, _ := want.Resource(rsc)
	for _, tc := range []struct {
		name string
		disk drbd.DiskState
		want []Kind
	}{
		{name: "attached", disk: drbd.DiskUpToDate},
		{name: "up but diskless: check-resize, then the adjust attaches", disk: drbd.DiskDiskless, want: []Kind{CheckResize, Adjust}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Observed{
				LVs:       map[string]lvm.LV{key: {Name: rsc + "_00000", VG: "pve", Attr: "Vwi-aotz--", Size: 2101248 * 1024, PoolLV: "data", Tags: []string{lvm.Tag}}},
				ExtentKiB: map[string]int64{"pve": 4096},
				Res:       map[string][]byte{rsc: d.Res},
				HasMD:     map[string]bool{key: false},
				// What Observe would record for a detached volume.
				LastKnownSize: map[string]uint64{key: 1052672 * 1024},
				DRBD: map[string]drbd.ObservedResource{rsc: {Name: rsc, Role: drbd.RoleSecondary,
					Devices: []drbd.ObservedDevice{{Volume: 0, Minor: 1000, Disk: tc.disk}},
					Connections: []drbd.ObservedConnection{{PeerNodeID: 1, Name: "pve2", Connection: drbd.ConnConnected,
						PeerDevices: []drbd.ObservedPeerDevice{{Volume: 0, Replication: drbd.ReplEstablished, PeerDisk: drbd.DiskUpToDate}}}}}},
			}
			var kinds []Kind
			for _, a := range Plan(want, got).Actions {
				kinds = append(kinds, a.Kind)
			}
			if !slices.Equal(kinds, tc.want) {
				t.Errorf("actions = %v, want %v", kinds, tc.want)
			}
		})
	}
}

// TestCheckResizeCommand: the argv, and the failure drbdmeta reports when
// the metadata is not where the last-known size says (real drbdadm
// check-resize on this machine: "no suitable meta data found :(", exit 1),
// which must say what to do and must not be retried as anything else.
func TestCheckResizeCommand(t *testing.T) {
	t.Parallel()
	a := Action{Kind: CheckResize, Resource: rsc, Volume: 0, Minor: 1000, VG: "pve", LV: rsc + "_00000", SizeKiB: 1052672}
	argv := []string{"drbdadm", "-vvv", "check-resize", rsc + "/0"}
	if got := a.String(); got != "CheckResize "+rsc+"/0 from 1052672KiB" {
		t.Errorf("String() = %q", got)
	}

	f := run.NewFake(t)
	f.On(argv...).Times(1).Return(run.Response{Stderr: "Moving the internal meta data to its proper location\n", Stdout: "Internal drbd meta data successfully moved.\n"})
	f.On(argv...).Times(1).Fail(1, "no suitable meta data found :(\n")
	f.On(argv...).Times(1).Fail(20, "open(/dev/pve/x) failed: No such file or directory\n")
	r := newReconciler(t.TempDir(), f)
	if out := r.Apply(context.Background(), []Action{a}); out[0].Err != nil {
		t.Fatalf("check-resize that moved the metadata: %v", out[0].Err)
	}
	out := r.Apply(context.Background(), []Action{a, {Kind: Adjust, Resource: rsc}})
	msg := out[0].Err.Error()
	for _, want := range []string{LastKnownPath(1000), "1052672 KiB", "/etc/lvm/archive", "delete the file", "no suitable meta data found"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	if !out[1].Skipped {
		t.Errorf("the adjust after a failed check-resize ran: %+v", out[1])
	}
	out = r.Apply(context.Background(), []Action{a})
	if msg := out[0].Err.Error(); !strings.Contains(msg, "the next pass retries") || strings.Contains(msg, "delete the file") {
		t.Errorf("other failure: %q", msg)
	}
	if unmet := f.Unmet(); len(unmet) > 0 {
		t.Errorf("commands not run: %v", unmet)
	}
}
