package retention

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

func TestNameParse(t *testing.T) {
	at := time.Date(2026, 3, 1, 3, 0, 0, 999, time.FixedZone("CET", 3600))
	if got, want := Name("nightly", at), "nightly-20260301T020000Z"; got != want {
		t.Fatalf("Name = %q, want %q", got, want)
	}
	tests := []struct {
		job, name string
		ok        bool
		want      string // RFC 3339, when ok
	}{
		{"nightly", "nightly-20260301T020000Z", true, "2026-03-01T02:00:00Z"},
		{"nightly", "NIGHTLY-20260301T020000Z", true, "2026-03-01T02:00:00Z"}, // LINSTOR names ignore case
		{"Nightly", "nightly-20260301T020000Z", true, "2026-03-01T02:00:00Z"},
		{"nightly", "nightly-20260301t020000z", false, ""}, // Name never writes lower-case t/z
		{"nightly", "nightly-before-upgrade", false, ""},
		{"nightly", "nightly-2026-03-01", false, ""},
		{"nightly", "nightly-20260301T020000", false, ""},
		{"nightly", "nightly-20260301T020000Zx", false, ""},
		{"nightly", "nightly_20260301T020000Z", false, ""},
		{"nightly", "nightlyx-20260301T020000Z", false, ""},
		{"nightly", "weekly-20260301T020000Z", false, ""},
		{"nightly", "nightly-20261301T020000Z", false, ""}, // month 13
		{"nightly", "nightly-20260230T020000Z", false, ""}, // 30 February
		{"nightly", "nightly-20260301T250000Z", false, ""},
		{"a", "a-b-20260301T020000Z", false, ""}, // job a-b's, not a's
		{"a-b", "a-b-20260301T020000Z", true, "2026-03-01T02:00:00Z"},
		{"a-b", "a-20260301T020000Z", false, ""},
		{"", "-20260301T020000Z", false, ""},
		{"nightly", "", false, ""},
	}
	for _, tt := range tests {
		got, ok := Parse(tt.job, tt.name)
		if ok != tt.ok {
			t.Errorf("Parse(%q, %q) ok = %v, want %v", tt.job, tt.name, ok, tt.ok)
			continue
		}
		if ok && !got.Equal(mustTime(t, tt.want)) {
			t.Errorf("Parse(%q, %q) = %v, want %s", tt.job, tt.name, got, tt.want)
		}
	}
	// Round trip over a spread of times.
	r := rand.New(rand.NewPCG(1, 2))
	for range 1000 {
		tm := time.Unix(r.Int64N(4102444800), 0).UTC() // 1970 to 2100
		got, ok := Parse("job", Name("job", tm))
		if !ok || !got.Equal(tm) {
			t.Fatalf("Parse(Name(%v)) = %v, %v", tm, got, ok)
		}
	}
}

func TestCheckJob(t *testing.T) {
	tests := []struct {
		job string
		ok  bool
	}{
		{"nightly", true},
		{"a", true},
		{strings.Repeat("x", MaxJobLen), true},
		{strings.Repeat("x", MaxJobLen+1), false},
		{"bad.name", false},
		{"1st", false},
		{"_hidden", true},
	}
	for _, tt := range tests {
		if err := CheckJob(tt.job); (err == nil) != tt.ok {
			t.Errorf("CheckJob(%q) = %v, want ok %v", tt.job, err, tt.ok)
		}
	}
}

func TestPolicyValidate(t *testing.T) {
	if err := (Policy{}).Validate(); err != nil {
		t.Errorf("zero policy: %v", err)
	}
	for _, p := range []Policy{{KeepLast: -1}, {KeepHourly: -1}, {KeepDaily: -2}, {KeepWeekly: -1}, {KeepMonthly: -1}, {MaxAge: -time.Hour}} {
		if err := p.Validate(); err == nil {
			t.Errorf("%+v: Validate accepted it", p)
		}
	}
}

func TestPruneRules(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		policy Policy
		now    string
		snaps  []string // RFC 3339 times of the job's snapshots
		other  []string // names that are not the job's
		remove []string // RFC 3339 times expected to be removed
	}{{
		name:   "keep-last",
		policy: Policy{KeepLast: 3},
		snaps:  []string{"2026-01-01T01:00:00Z", "2026-01-01T02:00:00Z", "2026-01-01T03:00:00Z", "2026-01-01T04:00:00Z", "2026-01-01T05:00:00Z"},
		remove: []string{"2026-01-01T01:00:00Z", "2026-01-01T02:00:00Z"},
	}, {
		name:   "keep-last larger than the set",
		policy: Policy{KeepLast: 10},
		snaps:  []string{"2026-01-01T01:00:00Z", "2026-01-01T02:00:00Z"},
	}, {
		name:   "keep-hourly keeps the newest of each hour",
		policy: Policy{KeepHourly: 2},
		snaps:  []string{"2026-01-01T01:10:00Z", "2026-01-01T01:50:00Z", "2026-01-01T02:00:00Z", "2026-01-01T02:59:59Z", "2026-01-01T03:00:00Z", "2026-01-01T03:30:00Z"},
		remove: []string{"2026-01-01T01:10:00Z", "2026-01-01T01:50:00Z", "2026-01-01T02:00:00Z", "2026-01-01T03:00:00Z"},
	}, {
		name:   "keep-daily counts only days that have a snapshot",
		policy: Policy{KeepDaily: 3},
		snaps:  []string{"2026-01-01T10:00:00Z", "2026-01-01T12:00:00Z", "2026-01-03T12:00:00Z", "2026-01-10T01:00:00Z", "2026-01-10T02:00:00Z"},
		remove: []string{"2026-01-01T10:00:00Z", "2026-01-10T01:00:00Z"},
	}, {
		// 2025-12-29 (Monday) and 2026-01-04 (Sunday) are both in ISO week
		// 2026-W01; 2026-01-05 begins W02.
		name:   "keep-weekly uses ISO weeks across the year boundary",
		policy: Policy{KeepWeekly: 2},
		snaps:  []string{"2025-12-28T12:00:00Z", "2025-12-29T12:00:00Z", "2026-01-04T12:00:00Z", "2026-01-05T12:00:00Z"},
		remove: []string{"2025-12-28T12:00:00Z", "2025-12-29T12:00:00Z"},
	}, {
		name:   "keep-monthly",
		policy: Policy{KeepMonthly: 2},
		snaps:  []string{"2026-01-31T23:00:00Z", "2026-02-01T00:00:00Z", "2026-02-28T00:00:00Z", "2026-03-01T00:00:00Z"},
		remove: []string{"2026-01-31T23:00:00Z", "2026-02-01T00:00:00Z"},
	}, {
		name:   "rules are a union",
		policy: Policy{KeepLast: 1, KeepDaily: 2},
		snaps:  []string{"2026-01-01T10:00:00Z", "2026-01-02T10:00:00Z", "2026-01-02T11:00:00Z", "2026-01-03T09:00:00Z", "2026-01-03T10:00:00Z"},
		remove: []string{"2026-01-01T10:00:00Z", "2026-01-02T10:00:00Z", "2026-01-03T09:00:00Z"},
	}, {
		name:  "zero policy keeps everything",
		snaps: []string{"2020-01-01T00:00:00Z", "2026-01-01T00:00:00Z"},
	}, {
		name:   "max-age alone keeps everything younger",
		policy: Policy{MaxAge: 48 * time.Hour},
		now:    "2026-01-10T00:00:00Z",
		snaps:  []string{"2026-01-07T23:59:59Z", "2026-01-08T00:00:00Z", "2026-01-09T00:00:00Z"},
		remove: []string{"2026-01-07T23:59:59Z"},
	}, {
		name:   "max-age caps the calendar rules",
		policy: Policy{KeepDaily: 10, MaxAge: 72 * time.Hour},
		now:    "2026-01-10T00:00:00Z",
		snaps:  []string{"2026-01-01T00:00:00Z", "2026-01-05T00:00:00Z", "2026-01-08T00:00:00Z", "2026-01-09T00:00:00Z"},
		remove: []string{"2026-01-01T00:00:00Z", "2026-01-05T00:00:00Z"},
	}, {
		name:   "keep-last is exempt from max-age",
		policy: Policy{KeepLast: 2, KeepDaily: 10, MaxAge: 24 * time.Hour},
		now:    "2026-02-01T00:00:00Z",
		snaps:  []string{"2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z"},
		remove: []string{"2026-01-01T00:00:00Z"},
	}, {
		name:   "an invalid policy removes nothing",
		policy: Policy{KeepLast: -1},
		snaps:  []string{"2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"},
	}, {
		name:   "calendar periods in the policy's zone",
		policy: Policy{KeepDaily: 2, Location: berlin},
		// In Berlin 22:30Z is 23:30 on the 1st, the others are on the 2nd.
		snaps:  []string{"2026-01-01T22:30:00Z", "2026-01-01T23:30:00Z", "2026-01-02T00:30:00Z"},
		remove: []string{"2026-01-01T23:30:00Z"},
	}, {
		name:   "the same in UTC",
		policy: Policy{KeepDaily: 2},
		snaps:  []string{"2026-01-01T22:30:00Z", "2026-01-01T23:30:00Z", "2026-01-02T00:30:00Z"},
		remove: []string{"2026-01-01T22:30:00Z"},
	}, {
		name:   "other names are never removed",
		policy: Policy{KeepLast: 1},
		snaps:  []string{"2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"},
		other:  []string{"nightly-before-upgrade", "weekly-20260101T000000Z", "a-nightly-20260101T000000Z", "nightly-20260101T000000", "nightly-2026"},
		remove: []string{"2026-01-01T00:00:00Z"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := mustTime(t, "2026-06-01T00:00:00Z")
			if tt.now != "" {
				now = mustTime(t, tt.now)
			}
			var names, wantRemove []string
			for _, s := range tt.snaps {
				names = append(names, Name("nightly", mustTime(t, s)))
			}
			for _, s := range tt.remove {
				wantRemove = append(wantRemove, Name("nightly", mustTime(t, s)))
			}
			names = append(names, tt.other...)
			keep, remove := Prune("nightly", tt.policy, names, now)
			if !slices.Equal(remove, wantRemove) {
				t.Errorf("remove = %q, want %q", remove, wantRemove)
			}
			checkPartition(t, names, keep, remove)
			// The input order does not matter.
			r := rand.New(rand.NewPCG(3, 4))
			for range 5 {
				shuffled := slices.Clone(names)
				r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
				k2, r2 := Prune("nightly", tt.policy, shuffled, now)
				if !slices.Equal(k2, keep) || !slices.Equal(r2, remove) {
					t.Fatalf("shuffled input gave keep %q remove %q, want %q %q", k2, r2, keep, remove)
				}
			}
		})
	}
}

// A lowered policy applies to the snapshots that exist (Longhorn#2751).
func TestPruneLoweredPolicy(t *testing.T) {
	base := mustTime(t, "2026-01-01T00:00:00Z")
	var names []string
	for i := range 10 {
		names = append(names, Name("job", base.Add(time.Duration(i)*time.Hour)))
	}
	keep, remove := Prune("job", Policy{KeepLast: 10}, names, base.Add(10*time.Hour))
	if len(remove) != 0 || len(keep) != 10 {
		t.Fatalf("keep-last 10: keep %d remove %d", len(keep), len(remove))
	}
	keep, remove = Prune("job", Policy{KeepLast: 3}, keep, base.Add(10*time.Hour))
	if !slices.Equal(keep, names[7:]) || !slices.Equal(remove, names[:7]) {
		t.Fatalf("keep-last 3: keep %q remove %q", keep, remove)
	}
}

func TestPruneBeforeCreate(t *testing.T) {
	base := mustTime(t, "2026-01-01T00:00:00Z")
	names := []string{"job-manual"}
	for i := range 3 {
		names = append(names, Name("job", base.Add(time.Duration(i)*time.Hour)))
	}
	now := base.Add(3 * time.Hour)
	keep, remove := PruneBeforeCreate("job", Policy{KeepLast: 3}, names, now)
	// Room for the new one: three remain after the create.
	if want := []string{names[2], names[3], "job-manual"}; !slices.Equal(keep, want) {
		t.Errorf("keep = %q, want %q", keep, want)
	}
	if want := []string{names[1]}; !slices.Equal(remove, want) {
		t.Errorf("remove = %q, want %q", remove, want)
	}
	// A rerun in the same second: the snapshot exists and is kept.
	names = append(names, Name("job", now))
	keep, remove = PruneBeforeCreate("job", Policy{KeepLast: 3}, names, now)
	if !slices.Contains(keep, Name("job", now)) || len(remove) != 1 {
		t.Errorf("rerun: keep %q remove %q", keep, remove)
	}
	checkPartition(t, names, keep, remove)
}

// checkPartition asserts keep and remove are exactly names, that remove
// holds only the job's snapshots is checked by the callers' expectations.
func checkPartition(t *testing.T, names, keep, remove []string) {
	t.Helper()
	got := slices.Concat(keep, remove)
	slices.Sort(got)
	want := slices.Clone(names)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("keep+remove = %q, want the input %q", got, want)
	}
}

// reference is a deliberately naive second implementation of the package
// doc's semantics: string period keys, sorted, no streaming.
func reference(job string, p Policy, names []string, now time.Time) map[string]bool {
	type s struct {
		name string
		t    time.Time
	}
	var own []s
	for _, n := range names {
		if t, ok := Parse(job, n); ok {
			own = append(own, s{n, t})
		}
	}
	loc := p.Location
	if loc == nil {
		loc = time.UTC
	}
	keep := map[string]bool{}
	// newer reports whether a is "newer" in the package's order: later, or
	// as old and sorted first by name.
	newer := func(a, b s) bool { return a.t.After(b.t) || a.t.Equal(b.t) && a.name < b.name }
	if p.KeepLast+p.KeepHourly+p.KeepDaily+p.KeepWeekly+p.KeepMonthly == 0 {
		for _, x := range own {
			keep[x.name] = true
		}
	}
	rules := []struct {
		n   int
		key func(time.Time) string
	}{
		{p.KeepHourly, func(t time.Time) string { return t.Format("2006-01-02 15") }},
		{p.KeepDaily, func(t time.Time) string { return t.Format("2006-01-02") }},
		{p.KeepWeekly, func(t time.Time) string { y, w := t.ISOWeek(); return fmt.Sprintf("%04d-W%02d", y, w) }},
		{p.KeepMonthly, func(t time.Time) string { return t.Format("2006-01") }},
	}
	for _, r := range rules {
		best := map[string]s{}
		for _, x := range own {
			k := r.key(x.t.In(loc))
			if b, ok := best[k]; !ok || newer(x, b) {
				best[k] = x
			}
		}
		var keys []string
		for k := range best {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		slices.Reverse(keys)
		for i, k := range keys {
			if i < r.n {
				keep[best[k].name] = true
			}
		}
	}
	if p.MaxAge > 0 {
		for _, x := range own {
			if now.Sub(x.t) > p.MaxAge {
				delete(keep, x.name)
			}
		}
	}
	for _, x := range own {
		n := 0
		for _, y := range own {
			if newer(y, x) {
				n++
			}
		}
		if n < p.KeepLast {
			keep[x.name] = true
		}
	}
	return keep
}

// simulate runs job on a schedule, pruning before each create, and checks
// after each run that the job's snapshots on "disk" are what reference keeps
// of the previous set plus the new one, that hand-made snapshots are never
// touched, and that pruning again removes nothing.
func simulate(t *testing.T, p Policy, start time.Time, runs int, step func() time.Duration, fail func() bool, manual func(i int) string) (final []string) {
	t.Helper()
	const job = "nightly"
	disk := map[string]bool{}
	var hand []string
	now := start
	for i := range runs {
		if m := manual(i); m != "" && !disk[m] {
			disk[m] = true
			hand = append(hand, m)
		}
		var names []string
		for n := range disk {
			names = append(names, n)
		}
		planned := Name(job, now)
		want := reference(job, p, append(slices.Clone(names), planned), now)
		keep, remove := PruneBeforeCreate(job, p, names, now)
		checkPartition(t, names, keep, remove)
		for _, n := range remove {
			if _, ok := Parse(job, n); !ok {
				t.Fatalf("run %d: removes %q, which is not the job's", i, n)
			}
			delete(disk, n)
		}
		created := !fail()
		if created {
			disk[planned] = true
		}
		for n := range disk {
			if _, ok := Parse(job, n); ok && !want[n] {
				t.Fatalf("run %d at %v: %q kept, reference removes it", i, now, n)
			}
		}
		for n := range want {
			if !disk[n] && (n != planned || created) {
				t.Fatalf("run %d at %v: %q removed, reference keeps it", i, now, n)
			}
		}
		for _, h := range hand {
			if !disk[h] {
				t.Fatalf("run %d: hand-made %q is gone", i, h)
			}
		}
		// Idempotence: the pruned set is stable under the same policy.
		if created {
			var after []string
			for n := range disk {
				after = append(after, n)
			}
			if _, again := Prune(job, p, after, now); len(again) != 0 {
				t.Fatalf("run %d: pruning the pruned set removes %q", i, again)
			}
		}
		now = now.Add(step())
	}
	for n := range disk {
		if _, ok := Parse(job, n); ok {
			final = append(final, n)
		}
	}
	slices.Sort(final)
	return final
}

func TestPruneSixtyDaysHourly(t *testing.T) {
	p := Policy{KeepHourly: 24, KeepDaily: 7, KeepWeekly: 4, KeepMonthly: 3}
	start := mustTime(t, "2025-12-15T00:00:00Z") // crosses a year and ISO week 2026-W01
	manual := func(i int) string {
		switch {
		case i%97 == 5:
			return fmt.Sprintf("nightly-manual-%d", i)
		case i%131 == 7:
			return fmt.Sprintf("weekly-%s", start.Add(time.Duration(i)*time.Hour).UTC().Format("20060102T150405Z"))
		case i%151 == 11:
			return fmt.Sprintf("nightly-%s", start.Add(time.Duration(i)*time.Hour).UTC().Format("2006-01-02"))
		}
		return ""
	}
	final := simulate(t, p, start, 60*24, func() time.Duration { return time.Hour }, func() bool { return false }, manual)
	// The last run is 2026-02-12T23:00Z, a Thursday in ISO week 2026-W07.
	// Kept: 24 hourly (the 12th); daily adds the 23:00 of the 6th to 11th;
	// weekly adds the ends of W05 (1 Feb) and W04 (25 Jan), W06's (8 Feb)
	// being daily's already; monthly adds 31 Jan and 31 Dec.
	if len(final) != 24+6+2+2 {
		t.Fatalf("kept %d snapshots, want 34: %q", len(final), final)
	}
	for _, s := range []string{"2025-12-31T23:00:00Z", "2026-01-25T23:00:00Z", "2026-01-31T23:00:00Z", "2026-02-01T23:00:00Z", "2026-02-06T23:00:00Z", "2026-02-12T00:00:00Z"} {
		if !slices.Contains(final, Name("nightly", mustTime(t, s))) {
			t.Errorf("%s is not kept", s)
		}
	}
	last := start.Add((60*24 - 1) * time.Hour)
	if final[len(final)-1] != Name("nightly", last) {
		t.Errorf("newest kept is %q, want the last run's", final[len(final)-1])
	}
	t.Logf("after 60 days: %d snapshots kept, oldest %s", len(final), final[0])
}

func TestPruneRandomPoliciesAndSchedules(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	locs := []*time.Location{nil, time.UTC, berlin, time.FixedZone("X", -(9*3600 + 1800))}
	for seed := range uint64(30) {
		r := rand.New(rand.NewPCG(seed, 0xC0FFEE))
		p := Policy{
			KeepLast:    r.IntN(4) * r.IntN(6),
			KeepHourly:  r.IntN(3) * r.IntN(30),
			KeepDaily:   r.IntN(3) * r.IntN(10),
			KeepWeekly:  r.IntN(3) * r.IntN(6),
			KeepMonthly: r.IntN(3) * r.IntN(5),
			Location:    locs[r.IntN(len(locs))],
		}
		if r.IntN(3) == 0 {
			p.MaxAge = time.Duration(1+r.IntN(30*24)) * time.Hour
		}
		maxStep := []time.Duration{time.Minute * 7, time.Hour, 6 * time.Hour, 36 * time.Hour}[r.IntN(4)]
		start := time.Date(2025, time.Month(1+r.IntN(12)), 1+r.IntN(28), r.IntN(24), r.IntN(60), r.IntN(60), 0, time.UTC)
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) {
			simulate(t, p, start, 500,
				func() time.Duration { return time.Second + time.Duration(r.Int64N(int64(maxStep))) },
				func() bool { return r.IntN(10) == 0 },
				func(i int) string {
					if r.IntN(50) == 0 {
						return fmt.Sprintf("hand-%d", i)
					}
					return ""
				})
		})
	}
}
