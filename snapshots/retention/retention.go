// Package retention names a snapshot job's snapshots and decides which of
// them to keep. It is pure: no clock, no LINSTOR, no state; the job runner
// lists the snapshots, calls Prune and deletes what it returns.
//
// # Names
//
// A job's snapshot is named "<job>-<UTC time>", for example
// "nightly-20260301T020000Z" (Name). The time format sorts as text, names a
// second in UTC and uses only letters, digits and '-', so the name passes
// LINSTOR's snapshot name rule (2 to 48 characters) as long as the job name
// has at most MaxJobLen characters (CheckJob). Parse recognises only exactly
// that shape, with the job's name in any letter case (LINSTOR names are
// case-insensitive); a snapshot made by hand or by another job never parses
// as this job's, so it is never pruned by it (cv4pve-autosnap#92: delete only
// what the tool created). A job "a" does not claim "a-b-20260301T020000Z":
// what follows "a-" is not a timestamp.
//
// # Retention semantics
//
// Prune only ever considers the job's own snapshots (those Parse accepts).
// Each rule selects a set of them independently of the others, and a
// snapshot is kept if any rule selects it (restic's "forget" semantics; borg
// and proxmox-backup instead let a period already kept by an earlier rule
// not count towards a later one, which keeps more but is harder to predict):
//
//   - KeepLast n: the n newest snapshots.
//   - KeepHourly, KeepDaily, KeepWeekly, KeepMonthly n: group the snapshots
//     by period (calendar hour, day, ISO 8601 week, month, all in
//     Policy.Location, UTC when nil); of the n newest periods that contain a
//     snapshot, keep the newest snapshot of each. Periods without a snapshot
//     do not count: a job that did not run for a week still keeps n days.
//   - MaxAge d (optional): a snapshot taken more than d before now is removed
//     even if an hourly to monthly rule selects it, unless KeepLast selects
//     it. KeepLast is exempt so that a job that has been failing for longer
//     than d does not lose its last good snapshots to age alone.
//   - A policy with no count rule (all Keep* zero) keeps every snapshot,
//     subject to MaxAge. A policy that is not set must never delete
//     everything.
//
// Prune is stateless: a lowered policy applies to the snapshots that exist
// (Longhorn#2751, where lowering retain did not remove old snapshots), and
// pruning a pruned set with the same policy and time removes nothing.
// Snapshots are ordered by their time and then by name, so the result does
// not depend on the order of the input.
//
// The runner prunes BEFORE it creates (PruneBeforeCreate): the snapshot about
// to be taken is counted as if it existed, so room is made for it and a
// failing create does not leave the set growing unpruned (Longhorn#4898:
// recurring jobs kept creating snapshots while cleanup could not run).
package retention

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/pvehci/pvehci/storage/model"
)

// stampLayout is the time part of a snapshot name: sortable as text, one
// second resolution, only characters LINSTOR allows inside a name.
const stampLayout = "20060102T150405Z"

// MaxJobLen is the longest job name whose snapshot names still fit LINSTOR's
// 48 character limit: the name adds '-' and a 16 character timestamp.
const MaxJobLen = 48 - 1 - len(stampLayout)

// Name returns the name of job's snapshot taken at t, in UTC and truncated
// to the second. Two snapshots of one job in the same second share a name;
// the scheduler never runs a job twice in a second.
func Name(job string, t time.Time) string {
	return job + "-" + t.UTC().Format(stampLayout)
}

// Parse reports whether name is one of job's snapshots and when it was
// taken. The job part matches in any letter case, the time part only in the
// exact form Name writes, so a hand-made "nightly-before-upgrade" or
// "nightly-2026-03-01" is not the job's.
func Parse(job, name string) (time.Time, bool) {
	if len(name) != len(job)+1+len(stampLayout) || job == "" {
		return time.Time{}, false
	}
	if !strings.EqualFold(name[:len(job)], job) || name[len(job)] != '-' {
		return time.Time{}, false
	}
	stamp := name[len(job)+1:]
	t, err := time.Parse(stampLayout, stamp)
	if err != nil || t.Format(stampLayout) != stamp {
		// The re-format check refuses anything time.Parse tolerates but
		// Name would never write.
		return time.Time{}, false
	}
	return t, true
}

// CheckJob reports whether job's snapshot names are valid LINSTOR snapshot
// names. A job name can be a valid job schedule name and still too long to
// prefix a timestamp.
func CheckJob(job string) error {
	if len(job) > MaxJobLen {
		return fmt.Errorf("job name %q is %d characters long; snapshot names add %d, so use at most %d",
			job, len(job), 1+len(stampLayout), MaxJobLen)
	}
	if err := model.ValidateName(model.NameSnapshot, Name(job, time.Unix(0, 0))); err != nil {
		return fmt.Errorf("job name %q does not make valid snapshot names: %w", job, err)
	}
	return nil
}

// Policy says which of a job's snapshots to keep; see the package doc for
// the exact semantics. The zero Policy keeps everything.
type Policy struct {
	KeepLast    int
	KeepHourly  int
	KeepDaily   int
	KeepWeekly  int
	KeepMonthly int
	// MaxAge, when positive, removes snapshots older than now-MaxAge that
	// KeepLast does not keep.
	MaxAge time.Duration
	// Location is the time zone of calendar periods (a "day" begins at
	// local midnight); nil means UTC.
	Location *time.Location
}

// Validate refuses negative counts and a negative MaxAge: a typo must not
// turn into "keep nothing".
func (p Policy) Validate() error {
	var errs []error
	for _, r := range []struct {
		name string
		n    int
	}{{"keep-last", p.KeepLast}, {"keep-hourly", p.KeepHourly}, {"keep-daily", p.KeepDaily},
		{"keep-weekly", p.KeepWeekly}, {"keep-monthly", p.KeepMonthly}} {
		if r.n < 0 {
			errs = append(errs, fmt.Errorf("%s is %d; use 0 (rule off) or a positive count", r.name, r.n))
		}
	}
	if p.MaxAge < 0 {
		errs = append(errs, fmt.Errorf("max-age is %s; use 0 (no limit) or a positive duration", p.MaxAge))
	}
	return errors.Join(errs...)
}

func (p Policy) hasCountRule() bool {
	return p.KeepLast > 0 || p.KeepHourly > 0 || p.KeepDaily > 0 || p.KeepWeekly > 0 || p.KeepMonthly > 0
}

// period identifies one calendar period; two snapshots are in the same
// period when their keys are equal.
type period struct{ a, b, c, d int }

type snap struct {
	name string
	t    time.Time
}

// Prune splits names into the ones to keep and the ones to delete under
// policy at time now. Only job's own snapshots (Parse) can be in remove;
// keep holds every other name, so keep and remove together are exactly
// names. keep lists job's snapshots oldest first, then the other names
// sorted; remove lists the snapshots to delete oldest first. An invalid
// policy (Validate) removes nothing.
func Prune(job string, policy Policy, names []string, now time.Time) (keep, remove []string) {
	var own []snap
	var other []string
	for _, n := range names {
		if t, ok := Parse(job, n); ok {
			own = append(own, snap{n, t})
		} else {
			other = append(other, n)
		}
	}
	// Newest first, ties by name, so that "newest" is well defined.
	slices.SortFunc(own, func(x, y snap) int {
		return cmp.Or(y.t.Compare(x.t), strings.Compare(x.name, y.name))
	})
	slices.Sort(other)

	kept := make([]bool, len(own))
	valid := policy.Validate() == nil
	switch {
	case !valid, !policy.hasCountRule():
		for i := range kept {
			kept[i] = true
		}
	default:
		loc := policy.Location
		if loc == nil {
			loc = time.UTC
		}
		rules := []struct {
			n   int
			key func(time.Time) period
		}{
			{policy.KeepHourly, func(t time.Time) period { return period{t.Year(), t.YearDay(), t.Hour(), 0} }},
			{policy.KeepDaily, func(t time.Time) period { return period{t.Year(), t.YearDay(), 0, 0} }},
			{policy.KeepWeekly, func(t time.Time) period { y, w := t.ISOWeek(); return period{y, w, 0, 0} }},
			{policy.KeepMonthly, func(t time.Time) period { return period{t.Year(), int(t.Month()), 0, 0} }},
		}
		for _, r := range rules {
			if r.n <= 0 {
				continue
			}
			// Newest first: the first snapshot seen in a period is its newest.
			seen := map[period]bool{}
			for i, s := range own {
				k := r.key(s.t.In(loc))
				if seen[k] {
					continue
				}
				if len(seen) == r.n {
					break
				}
				seen[k] = true
				kept[i] = true
			}
		}
	}
	if valid && policy.MaxAge > 0 {
		cutoff := now.Add(-policy.MaxAge)
		for i, s := range own {
			if s.t.Before(cutoff) {
				kept[i] = false
			}
		}
	}
	if valid {
		for i := 0; i < len(own) && i < policy.KeepLast; i++ {
			kept[i] = true
		}
	}

	for i := len(own) - 1; i >= 0; i-- {
		if kept[i] {
			keep = append(keep, own[i].name)
		} else {
			remove = append(remove, own[i].name)
		}
	}
	keep = append(keep, other...)
	return keep, remove
}

// PruneBeforeCreate is Prune for a run that is about to take the snapshot
// Name(job, now): it counts that snapshot as if it existed, so the set left
// after the create is exactly what Prune would keep. The planned name is in
// neither result. Pruning first means a create that fails leaves fewer
// snapshots, never more.
func PruneBeforeCreate(job string, policy Policy, names []string, now time.Time) (keep, remove []string) {
	planned := Name(job, now)
	if slices.Contains(names, planned) {
		// The snapshot exists already (a rerun in the same second): it is
		// an ordinary member of the set.
		return Prune(job, policy, names, now)
	}
	all := append(slices.Clip(names), planned)
	keep, remove = Prune(job, policy, all, now)
	drop := func(s string) bool { return s == planned }
	return slices.DeleteFunc(keep, drop), slices.DeleteFunc(remove, drop)
}
