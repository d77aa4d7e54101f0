package health

import (
	"context"
	"fmt"
	"math"

	"github.com/pvehci/pvehci/storage/lvm"
)

// Thin pool check codes.
const (
	PoolDataFull     Code = "POOL_DATA_FULL"
	PoolMetadataFull Code = "POOL_METADATA_FULL"
)

// Thin pool usage thresholds, in percent. A full data area makes every
// thin volume in the pool fail writes; a full metadata area can corrupt
// the pool, so both warn early.
const (
	PoolWarnPercent     = 70
	PoolCriticalPercent = 90
)

func lvmChecks() []Check {
	return []Check{
		{
			Code:  PoolDataFull,
			Title: "thin pool data usage",
			Run: poolCheck("data", func(lv lvm.LV) lvm.Percent { return lv.DataPercent },
				func(lv lvm.LV) string {
					// Growing by this much brings usage back below the
					// warning threshold.
					grow := float64(lv.Size)*lv.DataPercent.Value/PoolWarnPercent - float64(lv.Size)
					gib := max(1, int(math.Ceil(grow/(1<<30))))
					return fmt.Sprintf("grow the pool (see the free space with `vgs %s`): lvextend -L +%dG %s/%s; or delete snapshots and VM disks nobody needs", lv.VG, gib, lv.VG, lv.Name)
				}),
		},
		{
			Code:  PoolMetadataFull,
			Title: "thin pool metadata usage",
			Run: poolCheck("metadata", func(lv lvm.LV) lvm.Percent { return lv.MetadataPercent },
				func(lv lvm.LV) string {
					return fmt.Sprintf("grow the pool's metadata (see the free space with `vgs %s`): lvextend --poolmetadatasize +1G %s/%s", lv.VG, lv.VG, lv.Name)
				}),
		},
	}
}

func poolCheck(what string, pct func(lvm.LV) lvm.Percent, hint func(lvm.LV) string) func(context.Context, *Inputs) []Finding {
	return func(ctx context.Context, in *Inputs) []Finding {
		if v, ok := in.haveView(ctx); ok {
			return viewPools(v, what)
		}
		lvs, err := in.LVs(ctx)
		if err != nil {
			return unknown("lvs", "run `lvs` by hand to see what LVM says")
		}
		var out []Finding
		pools := 0
		for _, lv := range lvs {
			if !lv.Attr.ThinPool() {
				continue
			}
			pools++
			p := pct(lv)
			obj := []Object{{"pool", lv.VG + "/" + lv.Name}}
			switch {
			case !p.Valid:
				out = append(out, Finding{Severity: Unknown, Objects: obj,
					Message: fmt.Sprintf("LVM reports no %s usage for thin pool %s/%s; it is probably not active", what, lv.VG, lv.Name),
					Hint:    fmt.Sprintf("activate it: lvchange -ay %s/%s", lv.VG, lv.Name)})
			case p.Value >= PoolCriticalPercent:
				out = append(out, Finding{Severity: Critical, Objects: obj,
					Message: fmt.Sprintf("thin pool %s/%s %s is %.1f %% full; at 100 %% writes to its volumes fail", lv.VG, lv.Name, what, p.Value),
					Hint:    hint(lv)})
			case p.Value >= PoolWarnPercent:
				out = append(out, Finding{Severity: Warning, Objects: obj,
					Message: fmt.Sprintf("thin pool %s/%s %s is %.1f %% full", lv.VG, lv.Name, what, p.Value),
					Hint:    hint(lv)})
			}
		}
		if len(out) == 0 {
			return []Finding{{Severity: OK, Message: fmt.Sprintf("%d thin pool(s) below %d %% %s usage", pools, PoolWarnPercent, what)}}
		}
		return out
	}
}

// viewPools judges every node's storage pools from the satellites'
// reports.
func viewPools(v ClusterView, what string) []Finding {
	var out []Finding
	pools := 0
	for _, n := range v.Nodes {
		if !n.Online {
			continue
		}
		for _, p := range n.Pools {
			pools++
			pct := p.DataPercent
			hint := fmt.Sprintf("on %s: grow the pool behind %s (lvextend -L +SIZE VG/POOL), or delete snapshots and VM disks nobody needs", n.Name, p.Name)
			if what == "metadata" {
				pct = p.MetadataPercent
				hint = fmt.Sprintf("on %s: grow the metadata of the pool behind %s: lvextend --poolmetadatasize +1G VG/POOL", n.Name, p.Name)
			}
			obj := []Object{nodeObj(n.Name), {"pool", p.Name}}
			switch {
			case pct >= PoolCriticalPercent:
				out = append(out, Finding{Severity: Critical, Objects: obj,
					Message: fmt.Sprintf("storage pool %s on %s: %s %.1f %% full; at 100 %% writes to its volumes fail", p.Name, n.Name, what, pct), Hint: hint})
			case pct >= PoolWarnPercent:
				out = append(out, Finding{Severity: Warning, Objects: obj,
					Message: fmt.Sprintf("storage pool %s on %s: %s %.1f %% full", p.Name, n.Name, what, pct), Hint: hint})
			}
		}
	}
	if len(out) == 0 {
		return []Finding{{Severity: OK, Message: fmt.Sprintf("%d storage pool(s) below %d %% %s usage", pools, PoolWarnPercent, what)}}
	}
	return out
}
