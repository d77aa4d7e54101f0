package lvm

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Report columns the parsers read. Passing exactly these with -o keeps the
// reports small and makes a missing column an error instead of a zero.
var (
	lvFields = []string{"lv_name", "vg_name", "lv_attr", "lv_size", "pool_lv", "origin", "data_percent", "metadata_percent", "lv_tags"}
	vgFields = []string{"vg_name", "vg_size", "vg_free", "vg_extent_size", "vg_tags"}
	pvFields = []string{"pv_name", "vg_name", "pv_attr", "pv_size", "pv_free"}
)

// reportFlags make LVM print JSON with sizes in plain bytes.
var reportFlags = []string{"--reportformat", "json", "--units", "b", "--nosuffix"}

// LVSArgs is the lvs command line whose output ParseLVs reads; selectors
// are VG or VG/LV names (none: all).
func LVSArgs(selectors ...string) []string { return reportArgs("lvs", lvFields, selectors) }

// VGSArgs is the vgs command line whose output ParseVGs reads.
func VGSArgs(selectors ...string) []string { return reportArgs("vgs", vgFields, selectors) }

// PVSArgs is the pvs command line whose output ParsePVs reads.
func PVSArgs(selectors ...string) []string { return reportArgs("pvs", pvFields, selectors) }

func reportArgs(cmd string, fields, selectors []string) []string {
	args := append([]string{cmd}, reportFlags...)
	args = append(args, "-o", strings.Join(fields, ","))
	return append(args, selectors...)
}

// LV is one row of lvs.
type LV struct {
	Name   string
	VG     string
	Attr   LVAttr
	Size   uint64 // bytes
	PoolLV string // the thin pool of a thin volume
	Origin string // the origin of a snapshot
	// DataPercent is reported for thin pools, thin volumes and
	// snapshots; MetadataPercent for thin pools.
	DataPercent     Percent
	MetadataPercent Percent
	Tags            []string
}

// Percent is a usage figure that LVM may leave out.
type Percent struct {
	Value float64
	Valid bool
}

// LVAttr is lv_attr, ten characters (lvs(8) "lv_attr bits").
type LVAttr string

// ThinPool reports whether the LV is a thin pool (type 't').
func (a LVAttr) ThinPool() bool { return len(a) > 0 && a[0] == 't' }

// ThinVolume reports whether the LV is a thin volume (type 'V').
func (a LVAttr) ThinVolume() bool { return len(a) > 0 && a[0] == 'V' }

// ReadOnly reports whether the LV's permission is read-only ('r', or 'R'
// for a writable LV activated read-only).
func (a LVAttr) ReadOnly() bool { return len(a) > 1 && (a[1] == 'r' || a[1] == 'R') }

// Open reports whether the LV's device is open (device 'o').
func (a LVAttr) Open() bool { return len(a) > 5 && a[5] == 'o' }

// Active reports whether the LV is active (state 'a'). Without
// device-mapper LVM reports 'X' (unknown), which is not active.
func (a LVAttr) Active() bool { return len(a) > 4 && a[4] == 'a' }

// VG is one row of vgs.
type VG struct {
	Name       string
	Size       uint64 // bytes
	Free       uint64 // bytes
	ExtentSize uint64 // bytes; LVs are sized in multiples of it
	Tags       []string
}

// PV is one row of pvs.
type PV struct {
	Name string
	VG   string // empty for a PV in no VG
	Attr string
	Size uint64 // bytes
	Free uint64 // bytes
}

// report is LVM's JSON: {"report":[{"lv":[{...}]}, ...]}. Rows are
// string maps because LVM quotes every value; a number where a string
// belongs is an error, not silently accepted.
type report struct {
	Report []map[string][]map[string]string `json:"report"`
}

// rows returns the rows of one kind ("lv", "vg", "pv") from every report.
func rows(data []byte, kind string) ([]map[string]string, error) {
	var r report
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("reading %ss report: %w", kind, err)
	}
	if r.Report == nil {
		return nil, fmt.Errorf("reading %ss report: no \"report\" array; run the command with --reportformat json", kind)
	}
	var out []map[string]string
	for _, section := range r.Report {
		out = append(out, section[kind]...)
	}
	return out, nil
}

// row reads typed values from one report row, remembering the first
// problem so the parsers stay flat.
type row struct {
	kind string
	n    int
	m    map[string]string
	err  error
}

func (r *row) fail(field, problem string) {
	if r.err == nil {
		r.err = fmt.Errorf("%ss report row %d: %s %s", r.kind, r.n+1, field, problem)
	}
}

func (r *row) str(field string, required bool) string {
	v, ok := r.m[field]
	if required && (!ok || v == "") {
		r.fail(field, "is missing; run the command with -o "+field)
	}
	return v
}

func (r *row) size(field string) uint64 {
	v, ok := r.m[field]
	if !ok {
		r.fail(field, "is missing; run the command with -o "+field)
		return 0
	}
	// --nosuffix drops the "B"; accept it anyway, a unit suffix is the
	// one thing that may end a byte count.
	n, err := strconv.ParseUint(strings.TrimSuffix(v, "B"), 10, 64)
	if err != nil {
		r.fail(field, fmt.Sprintf("%q is not a byte count; run the command with --units b --nosuffix", v))
	}
	return n
}

func (r *row) percent(field string) Percent {
	v := strings.TrimSpace(r.m[field])
	if v == "" {
		return Percent{}
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || !(f >= 0 && f <= 100) { // also refuses NaN
		r.fail(field, fmt.Sprintf("%q is not a percentage", v))
		return Percent{}
	}
	return Percent{Value: f, Valid: true}
}

func (r *row) tags(field string) []string {
	v := r.m[field]
	if v == "" {
		return nil
	}
	return strings.Split(v, ",")
}

// parse reads every row of one kind with read; any bad row fails the
// whole report, since LVM writes these reports itself and a bad row means
// the command or the format is not what the parser expects.
func parse[T any](data []byte, kind string, read func(r *row) T) ([]T, error) {
	rs, err := rows(data, kind)
	if err != nil {
		return nil, err
	}
	out := make([]T, 0, len(rs))
	var errs []error
	for i, m := range rs {
		r := row{kind: kind, n: i, m: m}
		v := read(&r)
		if r.err != nil {
			errs = append(errs, r.err)
			continue
		}
		out = append(out, v)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// ParseLVs reads the output of LVSArgs.
func ParseLVs(data []byte) ([]LV, error) {
	return parse(data, "lv", func(r *row) LV {
		return LV{
			Name:            r.str("lv_name", true),
			VG:              r.str("vg_name", true),
			Attr:            LVAttr(r.str("lv_attr", true)),
			Size:            r.size("lv_size"),
			PoolLV:          r.str("pool_lv", false),
			Origin:          r.str("origin", false),
			DataPercent:     r.percent("data_percent"),
			MetadataPercent: r.percent("metadata_percent"),
			Tags:            r.tags("lv_tags"),
		}
	})
}

// ParseVGs reads the output of VGSArgs.
func ParseVGs(data []byte) ([]VG, error) {
	return parse(data, "vg", func(r *row) VG {
		vg := VG{
			Name:       r.str("vg_name", true),
			Size:       r.size("vg_size"),
			Free:       r.size("vg_free"),
			ExtentSize: r.size("vg_extent_size"),
			Tags:       r.tags("vg_tags"),
		}
		if vg.Free > vg.Size {
			r.fail("vg_free", fmt.Sprintf("%d exceeds vg_size %d", vg.Free, vg.Size))
		}
		return vg
	})
}

// ParsePVs reads the output of PVSArgs.
func ParsePVs(data []byte) ([]PV, error) {
	return parse(data, "pv", func(r *row) PV {
		return PV{
			Name: r.str("pv_name", true),
			VG:   r.str("vg_name", false),
			Attr: r.str("pv_attr", false),
			Size: r.size("pv_size"),
			Free: r.size("pv_free"),
		}
	})
}
