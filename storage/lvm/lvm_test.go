package lvm

import (
	"fmt"
	"os"
	"slices"
	"testing"

	"github.com/pvehci/pvehci/internal/lvmtest"
)

// TestRealLVMReports creates a VG on a loop device and an LV in metadata
// only (--driverloaded n: no device-mapper here), then reads the real
// lvs, vgs and pvs JSON with the parsers.
func TestRealLVMReports(t *testing.T) {
	l := lvmtest.New(t)
	vg := fmt.Sprintf("pvehcitest%d", os.Getpid())
	lv := VolumeLVName("vm-100-disk-1", 0)

	l.MustRun("pvcreate", "-y", l.Loop)
	t.Cleanup(func() { l.Cleanup("pvremove", "-y", l.Loop) })
	l.MustRun("vgcreate", vg, l.Loop)
	t.Cleanup(func() { l.Cleanup("vgremove", "--driverloaded", "n", "-f", vg) })
	l.MustRun("lvcreate", "--driverloaded", "n", "-L", "8M", "-n", lv, "--addtag", Tag, vg)

	lvs, err := ParseLVs([]byte(l.MustRun(LVSArgs(vg)...)))
	if err != nil {
		t.Fatal(err)
	}
	if len(lvs) != 1 {
		t.Fatalf("lvs = %+v, want one LV", lvs)
	}
	got := lvs[0]
	if got.Name != lv || got.VG != vg || got.Size != 8<<20 || !slices.Equal(got.Tags, []string{Tag}) ||
		got.Attr.ThinVolume() || got.Attr.Active() || got.DataPercent.Valid {
		t.Errorf("LV = %+v", got)
	}

	vgs, err := ParseVGs([]byte(l.MustRun(VGSArgs(vg)...)))
	if err != nil {
		t.Fatal(err)
	}
	// 64 MiB less the metadata area, in 4 MiB extents: 15 extents.
	if len(vgs) != 1 || vgs[0].Name != vg || vgs[0].ExtentSize != 4<<20 || vgs[0].Size != 60<<20 || vgs[0].Free != vgs[0].Size-8<<20 {
		t.Errorf("VGs = %+v", vgs)
	}

	pvs, err := ParsePVs([]byte(l.MustRun(PVSArgs(l.Loop)...)))
	if err != nil {
		t.Fatal(err)
	}
	if len(pvs) != 1 || pvs[0].Name != l.Loop || pvs[0].VG != vg || pvs[0].Size != 60<<20 || pvs[0].Free != vgs[0].Free {
		t.Errorf("PVs = %+v", pvs)
	}
}
