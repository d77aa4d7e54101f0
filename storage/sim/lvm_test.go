package sim

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/pvehci/pvehci/internal/run"
	"github.com/pvehci/pvehci/storage/lvm"
)

// newLVMHost is a host with VG "pve" on a 1 GiB /dev/sdb and a 64 MiB
// thin pool "data" (1024 chunks of 64 KiB).
func newLVMHost(t *testing.T) *Host {
	t.Helper()
	h := NewHost("pve1")
	if err := h.AddVG("pve", "/dev/sdb", 1<<30); err != nil {
		t.Fatal(err)
	}
	if err := h.AddThinPool("pve", "data", 64<<20); err != nil {
		t.Fatal(err)
	}
	return h
}

// sh runs one command line (words split at spaces) on r.
func sh(t *testing.T, r run.Runner, line string) (run.Result, error) {
	t.Helper()
	w := strings.Fields(line)
	return r.Run(context.Background(), run.Command(w[0], w[1:]...))
}

func mustSh(t *testing.T, r run.Runner, line string) string {
	t.Helper()
	res, err := sh(t, r, line)
	if err != nil {
		t.Fatalf("%s: %v", line, err)
	}
	return string(res.Stdout)
}

func lvsOf(t *testing.T, r run.Runner, sel ...string) map[string]lvm.LV {
	t.Helper()
	res, err := r.Run(context.Background(), run.Command(lvm.LVSArgs(sel...)[0], lvm.LVSArgs(sel...)[1:]...))
	if err != nil {
		t.Fatal(err)
	}
	lvs, err := lvm.ParseLVs(res.Stdout)
	if err != nil {
		t.Fatalf("%v\n%s", err, res.Stdout)
	}
	m := map[string]lvm.LV{}
	for _, lv := range lvs {
		m[lv.Name] = lv
	}
	return m
}

func TestLVMCommandLines(t *testing.T) {
	t.Parallel()
	// Steps run in order on one host; each names the exit code and a
	// line its output must contain (messages as lvm2 2.03 prints them).
	steps := []struct {
		line   string
		code   int
		stdout string
		stderr string
	}{
		{line: "lvcreate -V 5M -T pve/data -n vm-100-disk-1_00000 --addtag pvehci", stdout: "Rounding up size to full physical extent 8.00 MiB"},
		{line: "lvcreate -V 8M -T pve/data -n vm-100-disk-1_00000", code: 5, stderr: `Logical Volume "vm-100-disk-1_00000" already exists in volume group "pve"`},
		{line: "lvcreate --virtualsize 16384k pve --thinpool data --name r2_00000 -y", stdout: `Logical volume "r2_00000" created.`},
		{line: "lvcreate -V 8M -T pve/nopool -n x", code: 5, stderr: "Pool nopool not found in Volume group pve."},
		{line: "lvcreate -V 8M -T nosuch/data -n x", code: 5, stderr: `Volume group "nosuch" not found`},
		{line: "lvcreate -V 8x -T pve/data -n x", code: 3, stderr: "Invalid argument for --virtualsize: 8x"},
		{line: "lvcreate -V 8M -T pve/data -n bad/name", code: 3, stderr: `Logical volume name "bad/name" is invalid.`},
		{line: "lvcreate --bogus pve", code: 3, stderr: "lvcreate: unrecognized option '--bogus'"},
		{line: "lvcreate -L 8M -n thick pve", code: 3, stderr: "not modelled"},
		{line: "lvcreate -V 1G -T pve/data -n big", stdout: `Logical volume "big" created.`, stderr: "WARNING: Sum of all thin volume sizes (1.02 GiB) exceeds the size of thin pool pve/data (64.00 MiB)."},
		{line: "lvcreate -s -n vm-100-disk-1_00000_snap1 pve/vm-100-disk-1_00000", stdout: `Logical volume "vm-100-disk-1_00000_snap1" created.`},
		{line: "lvcreate --snapshot --setactivationskip y --ignoreactivationskip --activate y --name snap2 -pr pve/r2_00000", stdout: `Logical volume "snap2" created.`},
		{line: "lvcreate -s -L 8M -n old pve/r2_00000", code: 3, stderr: "not modelled"},
		{line: "lvextend -L 12M pve/vm-100-disk-1_00000", stdout: "Size of logical volume pve/vm-100-disk-1_00000 changed from 8.00 MiB (2 extents) to 12.00 MiB (3 extents)."},
		{line: "lvextend -L 12M pve/vm-100-disk-1_00000", code: 5, stderr: "New size (3 extents) matches existing size (3 extents)."},
		{line: "lvextend -L 4M pve/vm-100-disk-1_00000", code: 5, stderr: "New size given (1 extents) not larger than existing size (3 extents)"},
		{line: "lvextend -L +1M pve/r2_00000", stdout: "Rounding size to boundary between physical extents: 20.00 MiB."},
		{line: "lvextend -L +64M pve/data", stdout: "Logical volume pve/data successfully resized."},
		{line: "lvchange --addtag keep --deltag pvehci pve/vm-100-disk-1_00000", stdout: "Logical volume pve/vm-100-disk-1_00000 changed."},
		{line: "lvchange --addtag foo pve/nope", code: 5, stderr: `Failed to find logical volume "pve/nope"`},
		{line: "lvchange pve/big", code: 3, stderr: "No command with matching syntax recognised."},
		{line: "lvchange -ay -K pve/vm-100-disk-1_00000_snap1"},
		{line: "lvremove -f pve/nope", code: 5, stderr: `Failed to find logical volume "pve/nope"`},
		{line: "lvremove pve/big", code: 5, stdout: "Do you really want to remove active logical volume pve/big? [y/n]: ", stderr: "Logical volume big not removed."},
		{line: "lvremove -f pve/big", stdout: `Logical volume "big" successfully removed.`},
		{line: "lvremove -f pve/data", code: 3, stderr: "not modelled"},
		{line: "lvs --reportformat json --units b --nosuffix -o lv_name,bogus pve", code: 5, stderr: "Unrecognised field: bogus"},
		{line: "lvs --reportformat json --units b --nosuffix -o lv_name nosuch", code: 5, stderr: "Cannot process volume group nosuch"},
		{line: "lvs -o lv_name", code: 3, stderr: "not modelled"},
		{line: "pvs --reportformat json --units b --nosuffix -o pv_name /dev/sdx", code: 5, stderr: `Failed to find physical volume "/dev/sdx".`},
	}
	r := newLVMHost(t).Runner()
	for _, s := range steps {
		res, err := sh(t, r, s.line)
		if res.ExitCode != s.code || run.ExitCode(err) != max(s.code, 0) && s.code != 0 || (err == nil) != (s.code == 0) {
			t.Errorf("%s: exit %d, err %v; want %d\n%s", s.line, res.ExitCode, err, s.code, res.Stderr)
		}
		if !strings.Contains(string(res.Stdout), s.stdout) {
			t.Errorf("%s: stdout %q, want it to contain %q", s.line, res.Stdout, s.stdout)
		}
		if !strings.Contains(string(res.Stderr), s.stderr) {
			t.Errorf("%s: stderr %q, want it to contain %q", s.line, res.Stderr, s.stderr)
		}
	}

	lvs := lvsOf(t, r, "pve")
	want := map[string]struct {
		attr   lvm.LVAttr
		size   uint64
		pool   string
		origin string
		tags   []string
	}{
		"data":                      {"twi-aotz--", 128 << 20, "", "", nil},
		"vm-100-disk-1_00000":       {"Vwi-a-tz--", 12 << 20, "data", "", []string{"keep"}},
		"vm-100-disk-1_00000_snap1": {"Vwi-a-tz-k", 8 << 20, "data", "vm-100-disk-1_00000", nil},
		"r2_00000":                  {"Vwi-a-tz--", 20 << 20, "data", "", nil},
		"snap2":                     {"Vri-a-tz-k", 16 << 20, "data", "r2_00000", nil},
	}
	if len(lvs) != len(want) {
		t.Errorf("lvs = %v", lvs)
	}
	for name, w := range want {
		got := lvs[name]
		if got.Attr != w.attr || got.Size != w.size || got.PoolLV != w.pool || got.Origin != w.origin || !slices.Equal(got.Tags, w.tags) {
			t.Errorf("%s = %+v, want %+v", name, got, w)
		}
	}
	if _, err := sh(t, r, "frobnicate --now"); !errors.Is(err, exec.ErrNotFound) {
		t.Errorf("unknown program: %v, want exec.ErrNotFound", err)
	}
}

func TestVGAndPVReports(t *testing.T) {
	t.Parallel()
	h := newLVMHost(t)
	r := h.Runner()
	mustSh(t, r, "lvcreate -V 100G -T pve/data -n huge") // thin: takes no VG space
	out := mustSh(t, r, strings.Join(lvm.VGSArgs(), " "))
	vgs, err := lvm.ParseVGs([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	// 1 GiB PV less 1 MiB pe_start: 255 extents; the pool takes 16 data
	// + 2 × 1 metadata extents (2 MiB minimum, rounded up).
	if len(vgs) != 1 || vgs[0].Size != 255*4<<20 || vgs[0].Free != (255-18)*4<<20 || vgs[0].ExtentSize != 4<<20 {
		t.Errorf("vgs = %+v", vgs)
	}
	pvs, err := lvm.ParsePVs([]byte(mustSh(t, r, strings.Join(lvm.PVSArgs(), " "))))
	if err != nil {
		t.Fatal(err)
	}
	if len(pvs) != 1 || pvs[0].Name != "/dev/sdb" || pvs[0].VG != "pve" || pvs[0].Free != vgs[0].Free || pvs[0].Attr != "a--" {
		t.Errorf("pvs = %+v", pvs)
	}
	if err := h.AddThinPool("pve", "big", 2<<30); err == nil {
		t.Error("a pool larger than the VG was created")
	}
}

func TestThinDataAndSnapshots(t *testing.T) {
	t.Parallel()
	h := newLVMHost(t)
	r := h.Runner()
	mustSh(t, r, "lvcreate -V 8M -T pve/data -n vol")
	dev, err := h.Device(lvm.DevicePath("pve", "vol"))
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	buf := make([]byte, 4096)
	if n, err := dev.ReadAt(buf, 0); n != 4096 || err != nil || !bytes.Equal(buf, make([]byte, 4096)) {
		t.Fatalf("fresh thin LV: %d, %v, not zeros", n, err)
	}
	old := bytes.Repeat([]byte("A"), 4096)
	if _, err := dev.WriteAt(old, 64<<10-2048); err != nil { // spans two chunks
		t.Fatal(err)
	}
	lvs := lvsOf(t, r, "pve")
	if v := lvs["vol"].DataPercent; !v.Valid || v.Value != 1.56 { // 2 of 128 chunks
		t.Errorf("vol data%% = %+v", v)
	}
	if v := lvs["data"].DataPercent; v.Value != 0.20 { // 2 of 1024 chunks
		t.Errorf("pool data%% = %+v", v)
	}
	if a := lvs["vol"].Attr; a != "Vwi-aotz--" {
		t.Errorf("open LV attr %s, want device open", a)
	}

	mustSh(t, r, "lvcreate -s -n snap pve/vol")
	if _, err := h.Device("/dev/pve/snap"); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("skipped snapshot has a device: %v", err)
	}
	if got := lvsOf(t, r, "pve/data")["data"].DataPercent.Value; got != 0.20 {
		t.Errorf("snapshot allocated chunks: pool %v%%", got)
	}
	// Writing the origin after the snapshot copies the chunk; the
	// snapshot keeps the old data.
	if _, err := dev.WriteAt(bytes.Repeat([]byte("B"), 4096), 64<<10-2048); err != nil {
		t.Fatal(err)
	}
	if got := lvsOf(t, r, "pve/data")["data"].DataPercent.Value; got != 0.39 {
		t.Errorf("after copy-on-write: pool %v%%, want 4 chunks", got)
	}
	mustSh(t, r, "lvchange -ay -K pve/snap")
	snap, err := h.Device("/dev/pve/snap")
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Close()
	if _, err := snap.ReadAt(buf, 64<<10-2048); err != nil || !bytes.Equal(buf, old) {
		t.Errorf("snapshot changed with its origin: %q…", buf[:8])
	}
	if _, err := dev.ReadAt(buf, 64<<10-2048); err != nil || buf[0] != 'B' {
		t.Errorf("origin lost its write: %q…", buf[:8])
	}
	if _, err := sh(t, r, "lvremove -f pve/snap"); err == nil || !strings.Contains(err.Error(), "Logical volume pve/snap in use.") {
		t.Errorf("removing an open LV: %v", err)
	}
	snap.Close()
	mustSh(t, r, "lvremove -f pve/snap")
	if got := lvsOf(t, r, "pve/data")["data"].DataPercent.Value; got != 0.20 {
		t.Errorf("after removing the snapshot: pool %v%%", got)
	}

	// End of the device.
	if n, err := dev.ReadAt(buf, 8<<20-100); n != 100 || err == nil {
		t.Errorf("read across the end: %d, %v", n, err)
	}
	if _, err := dev.WriteAt(buf, 8<<20-100); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("write across the end: %v", err)
	}
}

func TestThinPoolFull(t *testing.T) {
	t.Parallel()
	h := newLVMHost(t)
	r := h.Runner()
	mustSh(t, r, "lvcreate -V 128M -T pve/data -n vol")
	dev, err := h.Device("/dev/pve/vol")
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	chunk := make([]byte, DefaultChunkSize)
	for i := range 1024 { // the whole pool
		if _, err := dev.WriteAt(chunk, int64(i)*DefaultChunkSize); err != nil {
			t.Fatalf("chunk %d: %v", i, err)
		}
	}
	if _, err := dev.WriteAt(chunk[:512], 1024*DefaultChunkSize); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("write to a full pool: %v, want ENOSPC", err)
	}
	// Overwriting a mapped chunk needs no space and still works.
	if _, err := dev.WriteAt([]byte("x"), 0); err != nil {
		t.Errorf("overwrite in a full pool: %v", err)
	}
	pool := lvsOf(t, r, "pve/data")["data"]
	if pool.Attr != "twi-aotzD-" || pool.DataPercent.Value != 100 {
		t.Errorf("full pool = %+v", pool)
	}
	// A snapshot needs no space, but then every write to either side
	// needs a copy and fails.
	mustSh(t, r, "lvcreate -s -n snap pve/vol")
	if _, err := dev.WriteAt([]byte("y"), 0); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("copy-on-write in a full pool: %v", err)
	}
	mustSh(t, r, "lvextend -L +4M pve/data")
	if _, err := dev.WriteAt([]byte("y"), 0); err != nil {
		t.Errorf("after extending the pool: %v", err)
	}
	if a := lvsOf(t, r, "pve/data")["data"].Attr; a != "twi-aotz--" {
		t.Errorf("extended pool attr %s", a)
	}
}
