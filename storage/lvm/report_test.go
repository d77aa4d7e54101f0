package lvm

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestParseLVs(t *testing.T) {
	t.Parallel()
	lvs, err := ParseLVs(readTestdata(t, "lvs-pve.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := []LV{
		{Name: "data", VG: "pve", Attr: "twi-aotz--", Size: 141037969408,
			DataPercent: Percent{12.41, true}, MetadataPercent: Percent{1.25, true}},
		{Name: "root", VG: "pve", Attr: "-wi-ao----", Size: 103079215104},
		{Name: "swap", VG: "pve", Attr: "-wi-ao----", Size: 8589934592},
		{Name: "vm-100-disk-1_00000", VG: "pve", Attr: "Vwi-aotz--", Size: 34368126976, PoolLV: "data",
			DataPercent: Percent{37.52, true}, Tags: []string{"pvehci"}},
		{Name: "vm-100-disk-1_00000_snap-daily-1", VG: "pve", Attr: "Vri---tz-k", Size: 34368126976, PoolLV: "data",
			Origin: "vm-100-disk-1_00000", Tags: []string{"pvehci", "pvehci-snapshot"}},
		{Name: "vm-101-disk-0", VG: "pve", Attr: "Vwi-a-tz--", Size: 8589934592, PoolLV: "data",
			DataPercent: Percent{0, true}, Tags: []string{"pve-vm-101"}},
	}
	if !reflect.DeepEqual(lvs, want) {
		t.Errorf("ParseLVs =\n%+v\nwant\n%+v", lvs, want)
	}
	// Attribute helpers on the same rows.
	for _, c := range []struct {
		lv                 int
		pool, thin, active bool
	}{{0, true, false, true}, {1, false, false, true}, {3, false, true, true}, {4, false, true, false}} {
		a := lvs[c.lv].Attr
		if a.ThinPool() != c.pool || a.ThinVolume() != c.thin || a.Active() != c.active {
			t.Errorf("%s: ThinPool %v ThinVolume %v Active %v, want %v %v %v", a, a.ThinPool(), a.ThinVolume(), a.Active(), c.pool, c.thin, c.active)
		}
	}
}

func TestParseVGsAndPVs(t *testing.T) {
	t.Parallel()
	vgs, err := ParseVGs(readTestdata(t, "vgs-pve.json"))
	if err != nil {
		t.Fatal(err)
	}
	wantVGs := []VG{
		{Name: "pve", Size: 255550554112, Free: 16903045120, ExtentSize: 4194304},
		{Name: "nvme", Size: 1920378863616, Free: 0, ExtentSize: 4194304, Tags: []string{"pvehci", "fast"}},
	}
	if !reflect.DeepEqual(vgs, wantVGs) {
		t.Errorf("ParseVGs = %+v, want %+v", vgs, wantVGs)
	}
	pvs, err := ParsePVs(readTestdata(t, "pvs-pve.json"))
	if err != nil {
		t.Fatal(err)
	}
	wantPVs := []PV{
		{Name: "/dev/nvme0n1", VG: "nvme", Attr: "a--", Size: 1920378863616},
		{Name: "/dev/sda3", VG: "pve", Attr: "a--", Size: 255550554112, Free: 16903045120},
		{Name: "/dev/sdb", Attr: "---", Size: 4000787030016, Free: 4000787030016},
	}
	if !reflect.DeepEqual(pvs, wantPVs) {
		t.Errorf("ParsePVs = %+v, want %+v", pvs, wantPVs)
	}
}

func TestParseReportShapes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in string
		n        int
		err      string
	}{
		{name: "no LVs", in: `{"report": [{"lv": []}]}`},
		{name: "two reports", in: `{"report": [{"lv": [{"lv_name":"a","vg_name":"v","lv_attr":"-wi-a-----","lv_size":"1"}]},
			{"lv": [{"lv_name":"b","vg_name":"v","lv_attr":"-wi-a-----","lv_size":"2B"}]}]}`, n: 2},
		{name: "unknown columns are ignored", in: `{"report": [{"lv": [{"lv_name":"a","vg_name":"v","lv_attr":"-wi-a-----","lv_size":"1","lv_uuid":"x"}]}]}`, n: 1},
		{name: "log section next to the report", in: `{"report": [{"lv": []}], "log": [{"log_seq_num":"1"}]}`},
		{name: "not JSON", in: "  LV   VG  Attr\n", err: "reading lvs report"},
		{name: "no report", in: `{}`, err: "--reportformat json"},
		{name: "unit suffix", in: `{"report": [{"lv": [{"lv_name":"a","vg_name":"v","lv_attr":"-wi-a-----","lv_size":"1.00g"}]}]}`, err: "run the command with --units b --nosuffix"},
		{name: "missing size", in: `{"report": [{"lv": [{"lv_name":"a","vg_name":"v","lv_attr":"-wi-a-----"}]}]}`, err: "lv_size is missing"},
		{name: "missing name", in: `{"report": [{"lv": [{"vg_name":"v","lv_attr":"-wi-a-----","lv_size":"1"}]}]}`, err: "lv_name is missing"},
		{name: "number instead of string", in: `{"report": [{"lv": [{"lv_name":"a","vg_name":"v","lv_attr":"-wi-a-----","lv_size":1}]}]}`, err: "reading lvs report"},
		{name: "bad percentage", in: `{"report": [{"lv": [{"lv_name":"a","vg_name":"v","lv_attr":"twi-a-tz--","lv_size":"1","data_percent":"101.5"}]}]}`, err: "data_percent \"101.5\" is not a percentage"},
		{name: "one bad row fails all", in: `{"report": [{"lv": [{"lv_name":"a","vg_name":"v","lv_attr":"-wi-a-----","lv_size":"1"},
			{"lv_name":"b","vg_name":"v","lv_attr":"-wi-a-----","lv_size":"x"}]}]}`, err: "lvs report row 2"},
	}
	for _, tt := range tests {
		lvs, err := ParseLVs([]byte(tt.in))
		switch {
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.err)
		case tt.err != "" && lvs != nil:
			t.Errorf("%s: rows returned with the error: %+v", tt.name, lvs)
		case tt.err == "" && (err != nil || len(lvs) != tt.n):
			t.Errorf("%s: %d LVs, %v; want %d", tt.name, len(lvs), err, tt.n)
		}
	}
	if _, err := ParseVGs([]byte(`{"report": [{"vg": [{"vg_name":"v","vg_size":"1","vg_free":"2","vg_extent_size":"1"}]}]}`)); err == nil ||
		!strings.Contains(err.Error(), "exceeds vg_size") {
		t.Errorf("free > size: %v", err)
	}
}

func TestArgs(t *testing.T) {
	t.Parallel()
	got := strings.Join(LVSArgs("pve"), " ")
	want := "lvs --reportformat json --units b --nosuffix -o lv_name,vg_name,lv_attr,lv_size,pool_lv,origin,data_percent,metadata_percent,lv_tags pve"
	if got != want {
		t.Errorf("LVSArgs = %q, want %q", got, want)
	}
	if VolumeLVName("vm-100-disk-1", 3) != "vm-100-disk-1_00003" || DevicePath("pve", "x") != "/dev/pve/x" {
		t.Error("LINSTOR naming changed")
	}
}

// lvRow is an LV as lvs would print it, for the round trip.
func lvRow(lv LV) map[string]string {
	pct := func(p Percent) string {
		if !p.Valid {
			return ""
		}
		return strconv.FormatFloat(p.Value, 'g', -1, 64)
	}
	return map[string]string{
		"lv_name": lv.Name, "vg_name": lv.VG, "lv_attr": string(lv.Attr), "lv_size": strconv.FormatUint(lv.Size, 10),
		"pool_lv": lv.PoolLV, "origin": lv.Origin, "data_percent": pct(lv.DataPercent),
		"metadata_percent": pct(lv.MetadataPercent), "lv_tags": strings.Join(lv.Tags, ","),
	}
}

// FuzzParseLVs: the parser never panics, and what it accepts prints back
// to a report that parses to the same LVs.
func FuzzParseLVs(f *testing.F) {
	f.Add(readTestdata(f, "lvs-pve.json"))
	f.Add([]byte(`{"report": [{"lv": []}]}`))
	f.Add([]byte(`{"report": [{"lv": [{"lv_name":"a","vg_name":"v","lv_attr":"t","lv_size":"1B","data_percent":"1e1"}]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		lvs, err := ParseLVs(data)
		_, _ = ParseVGs(data)
		_, _ = ParsePVs(data)
		if err != nil {
			return
		}
		rows := make([]map[string]string, len(lvs))
		for i, lv := range lvs {
			rows[i] = lvRow(lv)
		}
		again, err := json.Marshal(map[string]any{"report": []map[string]any{{"lv": rows}}})
		if err != nil {
			t.Fatal(err)
		}
		lvs2, err := ParseLVs(again)
		if err != nil {
			t.Fatalf("re-parsing %s: %v", again, err)
		}
		if len(lvs) == 0 && len(lvs2) == 0 {
			return
		}
		if !reflect.DeepEqual(lvs, lvs2) {
			t.Fatalf("round trip:\n%+v\n%+v", lvs, lvs2)
		}
	})
}
