// Package cronspec parses a job's cron spec and answers the two questions
// the scheduler asks: when does the job run next, and how many runs fell due
// while no leader ran it.
//
// The grammar is robfig/cron v3's: five fields "minute hour day-of-month
// month day-of-week", an optional leading seconds field (six fields), the
// descriptors @yearly, @annually, @monthly, @weekly, @daily, @midnight,
// @hourly and "@every <duration>", and an optional "CRON_TZ=<zone> " (or
// legacy "TZ=<zone> ") prefix. Two choices differ from robfig's defaults:
//
//   - A spec without a zone prefix is in UTC, not in the local zone of
//     whichever node happens to lead: nodes of one cluster may be configured
//     differently, and a failover must not move a job by hours. Write
//     "CRON_TZ=Europe/Berlin 0 3 * * *" for local time.
//   - A spec that runs more often than once a minute (several seconds in the
//     seconds field, "@every" below a minute) or never (30 February) is
//     refused: snapshot names have one-second resolution and a snapshot job
//     per second would flood LINSTOR; a job that never runs is a typo.
//
// robfig/cron v3.0.1 panics on some malformed specs ("TZ=UTC" without a
// following field); Parse recovers and refuses the spec with the panic's
// reason, so user input can never bring the daemon down.
//
// storage/model.ValidateCron is the shape check the replicated state applies;
// it accepts only five-field specs and descriptors. Everything it accepts
// that is a real schedule parses here; the seconds field and the zone prefix
// are for specs the state does not store yet.
package cronspec

import (
	"fmt"
	"math/bits"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// MaxCounted bounds MissedRuns: past this many, the exact number does not
// change any decision (the job runs once either way) and counting a minutely
// job across a year-long outage would take long.
const MaxCounted = 1000

// minEvery is the shortest "@every" interval accepted.
const minEvery = time.Minute

// Schedule is a parsed cron spec. The zero Schedule never runs.
type Schedule struct {
	spec  string
	sched cron.Schedule
}

// Parse parses spec, refusing it with the reason when it is malformed, names
// an unknown time zone, runs more than once a minute, or never runs.
func Parse(spec string) (s Schedule, err error) {
	text := strings.TrimSpace(spec)
	if text == "" {
		return Schedule{}, fmt.Errorf("cron spec is empty; use five fields such as \"0 3 * * *\" or a descriptor such as @daily")
	}
	in := text
	if !strings.HasPrefix(in, "CRON_TZ=") && !strings.HasPrefix(in, "TZ=") {
		in = "CRON_TZ=UTC " + in
	}
	defer func() {
		if r := recover(); r != nil {
			s, err = Schedule{}, fmt.Errorf("cron spec %q is malformed (%v); a zone prefix needs a schedule after it, as in \"CRON_TZ=Europe/Berlin 0 3 * * *\"", text, r)
		}
	}()
	p := cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)
	sched, err := p.Parse(in)
	if err != nil {
		return Schedule{}, fmt.Errorf("cron spec %q is invalid: %w", text, err)
	}
	switch c := sched.(type) {
	case cron.ConstantDelaySchedule:
		if c.Delay < minEvery {
			return Schedule{}, fmt.Errorf("cron spec %q runs every %s; use @every %s or longer", text, c.Delay, minEvery)
		}
	case *cron.SpecSchedule:
		// The top bit marks "*"; more than one other bit is several runs
		// within each matching minute.
		const starBit = 1 << 63
		if bits.OnesCount64(c.Second&^starBit) > 1 {
			return Schedule{}, fmt.Errorf("cron spec %q runs several times a minute; give the seconds field a single value or leave it out", text)
		}
	}
	// robfig searches five years ahead, which covers 29 February, so a spec
	// with no run after this fixed point never runs at all.
	if sched.Next(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)).IsZero() {
		return Schedule{}, fmt.Errorf("cron spec %q never runs; check the day of month against the month", text)
	}
	return Schedule{spec: text, sched: sched}, nil
}

// String returns the spec as given, trimmed.
func (s Schedule) String() string { return s.spec }

// Next returns the first run strictly after after, or the zero time if there
// is none (the zero Schedule). Use it for "next run" displays rather than
// the cron runner's Entry.Next, which is zero until the runner starts.
func (s Schedule) Next(after time.Time) time.Time {
	if s.sched == nil {
		return time.Time{}
	}
	return s.sched.Next(after)
}

// MissedRuns counts the runs due in (lastRun, now]: after a failover the new
// leader runs the job once if this is positive and records now as its last
// run, so the job runs once, never once per missed slot, and a second
// leader that reads the record finds nothing due. A zero lastRun counts
// nothing: pass the job's creation time for a job that never ran, so that a
// new job does not owe runs from before it existed. The count stops at
// MaxCounted.
func (s Schedule) MissedRuns(lastRun, now time.Time) int {
	if s.sched == nil || lastRun.IsZero() || !now.After(lastRun) {
		return 0
	}
	n := 0
	for t := s.sched.Next(lastRun); !t.IsZero() && !t.After(now) && n < MaxCounted; t = s.sched.Next(t) {
		n++
	}
	return n
}

// LastDue returns the latest run in (lastRun, now], if any: the slot a
// catch-up run stands for, worth recording with the run.
func (s Schedule) LastDue(lastRun, now time.Time) (time.Time, bool) {
	if s.MissedRuns(lastRun, now) == 0 {
		return time.Time{}, false
	}
	var last time.Time
	for t := s.sched.Next(lastRun); !t.IsZero() && !t.After(now); t = s.sched.Next(t) {
		last = t
	}
	return last, true
}
