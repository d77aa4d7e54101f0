package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	ucli "github.com/urfave/cli/v3"

	"github.com/pvehci/pvehci/ha/state"
	"github.com/pvehci/pvehci/jobs"
	"github.com/pvehci/pvehci/snapshots/cronspec"
	"github.com/pvehci/pvehci/snapshots/retention"
	"github.com/pvehci/pvehci/storage/model"
)

// scheduleCommand manages the jobs the leader runs (package jobs) through
// the local daemon's state API.
func scheduleCommand(e env) *ucli.Command {
	return &ucli.Command{
		Name:  "schedule",
		Usage: "manage scheduled snapshot and online-verify jobs",
		Description: "Schedules live in the replicated state; the leader runs them (snapshot jobs with\n" +
			"retention, DRBD online verify) and records every run. Cron specs are in UTC unless\n" +
			"they start with CRON_TZ=<zone>. Snapshot options: keep-last, keep-hourly, keep-daily,\n" +
			"keep-weekly, keep-monthly, max-age (e.g. 30d). Verify options: per-node (verifies reading\n" +
			"one node's disks at once, default 1, 0 for no limit), max-rate (DRBD c-max-rate while a\n" +
			"definition is verified, e.g. 50M), window (spread the starts over e.g. 4h), resync (off, or\n" +
			"from-primary: resync what a verify found from the replica of a diskful Primary).\n" +
			"All jobs: timeout, max-failures\n" +
			"(consecutive failed runs before the schedule pauses itself, default 4), catch-up\n" +
			"(run-once or skip).",
		Commands: []*ucli.Command{
			{
				Name:      "add",
				Usage:     "add a schedule",
				ArgsUsage: "NAME",
				Flags: []ucli.Flag{
					&ucli.StringFlag{Name: "cron", Usage: "when to run, e.g. '0 2 * * *' or @daily", Required: true},
					&ucli.StringFlag{Name: "kind", Usage: "snapshot or verify", Required: true},
					&ucli.StringFlag{Name: "target", Usage: "all, resource-group:NAME, resource-definition:NAME, resource-definitions:A,B,... or selector:KEY=VALUE (a definition property)", Value: "all"},
					&ucli.StringSliceFlag{Name: "option", Usage: "job option KEY=VALUE (repeatable), e.g. keep-daily=7"},
					&ucli.BoolFlag{Name: "paused", Usage: "add it paused"},
					socketFlag(),
				},
				Action: func(ctx context.Context, c *ucli.Command) error {
					name, err := oneArg(c, "the schedule's name")
					if err != nil {
						return err
					}
					if _, err := cronspec.Parse(c.String("cron")); err != nil {
						return usageError{fmt.Errorf("--cron: %w", err)}
					}
					target, err := parseTarget(c.String("target"))
					if err != nil {
						return usageError{err}
					}
					opts, err := parseOptions(c.StringSlice("option"))
					if err != nil {
						return usageError{err}
					}
					if model.JobKind(c.String("kind")) == model.JobSnapshot {
						// Refused now rather than failing every run.
						if err := retention.CheckJob(name); err != nil {
							return usageError{err}
						}
						if _, err := jobs.Policy(opts); err != nil {
							return usageError{fmt.Errorf("--option: %w", err)}
						}
					}
					if model.JobKind(c.String("kind")) == model.JobVerify {
						if _, err := jobs.ParseVerifyOptions(opts); err != nil {
							return usageError{fmt.Errorf("--option: %w", err)}
						}
					}
					cmd := &state.AddJobSchedule{Name: name, Cron: c.String("cron"), Kind: model.JobKind(c.String("kind")),
						Target: target, Options: opts, Paused: c.Bool("paused"), At: time.Now().UnixMilli()}
					if err := applyCmd(ctx, c, cmd); err != nil {
						return err
					}
					fmt.Fprintf(e.stdout, "schedule %s added: %s job on %s at %q\n", name, cmd.Kind, target, cmd.Cron)
					return nil
				},
			},
			{
				Name:  "list",
				Usage: "list the schedules with their last run and next due time",
				Flags: []ucli.Flag{outputFlag(), socketFlag()},
				Action: func(ctx context.Context, c *ucli.Command) error {
					if err := noArgs(c); err != nil {
						return err
					}
					format, err := checkOutput(c)
					if err != nil {
						return err
					}
					st, err := readState(ctx, c)
					if err != nil {
						return err
					}
					return printSchedules(e.stdout, format, st, time.Now())
				},
			},
			{
				Name:      "remove",
				Usage:     "remove a schedule and its run history (its snapshots stay)",
				ArgsUsage: "NAME",
				Flags:     []ucli.Flag{yesFlag(), socketFlag()},
				Action: func(ctx context.Context, c *ucli.Command) error {
					name, err := oneArg(c, "the schedule's name")
					if err != nil {
						return err
					}
					if !c.Bool("yes") {
						if err := confirmDestructive(e, fmt.Sprintf("Remove schedule %s and its run history?", name)); err != nil {
							return err
						}
					}
					if err := applyCmd(ctx, c, &state.RemoveJobSchedule{Name: name}); err != nil {
						return err
					}
					fmt.Fprintf(e.stdout, "schedule %s removed\n", name)
					return nil
				},
			},
			scheduleAckCommand(e),
			pauseResume(e, "pause", "stop a schedule from starting runs", func(n string) state.Command {
				return &state.PauseJobSchedule{Name: n, At: time.Now().UnixMilli()}
			}),
			pauseResume(e, "resume", "let a paused schedule start runs again", func(n string) state.Command {
				return &state.ResumeJobSchedule{Name: n, At: time.Now().UnixMilli()}
			}),
			{
				Name:      "show",
				Usage:     "show one schedule: its spec, options, next run and last runs",
				ArgsUsage: "NAME",
				Flags:     []ucli.Flag{outputFlag(), socketFlag()},
				Action: func(ctx context.Context, c *ucli.Command) error {
					name, err := oneArg(c, "the schedule's name")
					if err != nil {
						return err
					}
					format, err := checkOutput(c)
					if err != nil {
						return err
					}
					st, err := readState(ctx, c)
					if err != nil {
						return err
					}
					return printSchedule(e.stdout, format, st, name, time.Now())
				},
			},
			{
				Name:      "edit",
				Usage:     "change a schedule's cron spec, target or options",
				ArgsUsage: "NAME",
				Flags: []ucli.Flag{
					&ucli.StringFlag{Name: "cron", Usage: "the new cron spec"},
					&ucli.StringFlag{Name: "target", Usage: "the new target: all, resource-group:NAME, resource-definition:NAME, resource-definitions:A,B,... or selector:KEY=VALUE"},
					&ucli.StringSliceFlag{Name: "option", Usage: "set job option KEY=VALUE (repeatable)"},
					&ucli.StringSliceFlag{Name: "delete-option", Usage: "remove job option KEY (repeatable)"},
					socketFlag(),
				},
				Action: func(ctx context.Context, c *ucli.Command) error {
					name, err := oneArg(c, "the schedule's name")
					if err != nil {
						return err
					}
					cmd := &state.EditJobSchedule{Name: name, DeleteOptions: c.StringSlice("delete-option"), At: time.Now().UnixMilli()}
					if c.IsSet("cron") {
						spec := c.String("cron")
						if _, err := cronspec.Parse(spec); err != nil {
							return usageError{fmt.Errorf("--cron: %w", err)}
						}
						cmd.Cron = &spec
					}
					if c.IsSet("target") {
						t, err := parseTarget(c.String("target"))
						if err != nil {
							return usageError{err}
						}
						cmd.Target = &t
					}
					if cmd.SetOptions, err = parseOptions(c.StringSlice("option")); err != nil {
						return usageError{err}
					}
					if cmd.Cron == nil && cmd.Target == nil && len(cmd.SetOptions) == 0 && len(cmd.DeleteOptions) == 0 {
						return usageError{fmt.Errorf("%s changes nothing; give --cron, --target, --option or --delete-option", c.FullName())}
					}
					if _, err := jobs.Policy(cmd.SetOptions); cmd.SetOptions != nil && err != nil {
						return usageError{fmt.Errorf("--option: %w", err)}
					}
					// The kind is not known here; the verify options have
					// names of their own, so checking them does no harm to a
					// snapshot schedule's.
					if _, err := jobs.ParseVerifyOptions(cmd.SetOptions); cmd.SetOptions != nil && err != nil {
						return usageError{fmt.Errorf("--option: %w", err)}
					}
					if err := applyCmd(ctx, c, cmd); err != nil {
						return err
					}
					fmt.Fprintf(e.stdout, "schedule %s changed\n", name)
					return nil
				},
			},
			{
				Name:      "run-now",
				Usage:     "run a schedule's job now, off its cron spec (paused or not)",
				ArgsUsage: "NAME",
				Flags: []ucli.Flag{
					&ucli.DurationFlag{Name: "wait", Usage: "wait this long for the run to finish and show it (0: do not wait)", Value: 0},
					socketFlag(),
				},
				Action: func(ctx context.Context, c *ucli.Command) error {
					name, err := oneArg(c, "the schedule's name")
					if err != nil {
						return err
					}
					at := time.Now()
					if err := applyCmd(ctx, c, &state.RequestJobRun{Name: name, At: at.UnixMilli()}); err != nil {
						return err
					}
					fmt.Fprintf(e.stdout, "schedule %s: run requested; the leader starts it at its next look (within seconds)\n", name)
					if c.Duration("wait") <= 0 {
						return nil
					}
					deadline := time.Now().Add(c.Duration("wait"))
					for time.Now().Before(deadline) {
						st, err := readState(ctx, c)
						if err != nil {
							return err
						}
						for _, r := range st.JobRuns(name) {
							if r.StartedAt >= at.UnixMilli() && r.State.Final() {
								fmt.Fprintf(e.stdout, "run %s: %s %s\n", r.ID, r.State, r.Message)
								if r.State == model.RunFailed {
									return fmt.Errorf("run %s failed: %s", r.ID, r.Message)
								}
								return nil
							}
						}
						select {
						case <-ctx.Done():
							return ctx.Err()
						case <-time.After(500 * time.Millisecond):
						}
					}
					return fmt.Errorf("run of %s not finished within %s; see pvehci schedule history %s", name, c.Duration("wait"), name)
				},
			},
			{
				Name:      "history",
				Usage:     "show the recorded runs of one schedule, or of all",
				ArgsUsage: "[NAME]",
				Flags:     []ucli.Flag{outputFlag(), socketFlag()},
				Action: func(ctx context.Context, c *ucli.Command) error {
					if c.Args().Len() > 1 {
						return usageError{fmt.Errorf("%s takes at most one argument: the schedule's name", c.FullName())}
					}
					format, err := checkOutput(c)
					if err != nil {
						return err
					}
					st, err := readState(ctx, c)
					if err != nil {
						return err
					}
					return printHistory(e.stdout, format, st, c.Args().First())
				},
			},
		},
	}
}

// scheduleAckCommand is `pvehci schedule ack RD`: the operator has dealt
// with what the newest verify of RD found out of sync, so VERIFY_OUT_OF_SYNC
// stops warning about that run (a later verify that finds data out of sync
// again warns again).
func scheduleAckCommand(e env) *ucli.Command {
	return &ucli.Command{
		Name:      "ack",
		Usage:     "acknowledge the out-of-sync data the last verify of a resource definition found",
		ArgsUsage: "RESOURCE-DEFINITION",
		Flags:     []ucli.Flag{socketFlag()},
		Action: func(ctx context.Context, c *ucli.Command) error {
			rd, err := oneArg(c, "the resource definition")
			if err != nil {
				return err
			}
			st, err := readState(ctx, c)
			if err != nil {
				return err
			}
			d, ok := st.ResourceDefinition(rd)
			if !ok {
				return usageError{fmt.Errorf("resource definition %s does not exist; pvehci health names the ones with findings", rd)}
			}
			r, ok := model.LatestVerifies(st.AllJobRuns())[model.Key(d.Name)]
			switch {
			case !ok:
				return fmt.Errorf("no finished verify of %s is recorded; nothing to acknowledge", d.Name)
			case r.OutOfSyncKiB == 0:
				return fmt.Errorf("the last verify of %s (run %s) found nothing out of sync; nothing to acknowledge", d.Name, r.RunID)
			case d.Props[model.PropVerifyAck] == r.RunID:
				fmt.Fprintf(e.stdout, "run %s of %s was already acknowledged\n", r.RunID, d.Name)
				return nil
			}
			if err := applyCmd(ctx, c, &state.ModifyResourceDefinition{Name: d.Name,
				Props: model.PropsChange{Set: model.Props{model.PropVerifyAck: r.RunID}}}); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "acknowledged: %d KiB out of sync in %s, found by verify run %s; health warns again only if a later verify finds some\n",
				r.OutOfSyncKiB, d.Name, r.RunID)
			return nil
		},
	}
}

func pauseResume(e env, name, usage string, mk func(string) state.Command) *ucli.Command {
	return &ucli.Command{
		Name:      name,
		Usage:     usage,
		ArgsUsage: "NAME",
		Flags:     []ucli.Flag{socketFlag()},
		Action: func(ctx context.Context, c *ucli.Command) error {
			n, err := oneArg(c, "the schedule's name")
			if err != nil {
				return err
			}
			if err := applyCmd(ctx, c, mk(n)); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "schedule %s: %sd\n", n, name)
			return nil
		},
	}
}

// parseTarget reads all, resource-group:NAME, resource-definition:NAME,
// resource-definitions:A,B,... or selector:KEY=VALUE.
func parseTarget(s string) (model.JobTarget, error) {
	kind, name, _ := strings.Cut(s, ":")
	t := model.JobTarget{Kind: model.TargetKind(kind), Name: name}
	if err := t.Validate(); err != nil {
		return t, fmt.Errorf("--target: %w", err)
	}
	return t, nil
}

func parseOptions(kvs []string) (map[string]string, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--option %q: use KEY=VALUE, e.g. keep-daily=7", kv)
		}
		out[k] = v
	}
	return out, nil
}

// applyCmd replicates one state command through the local daemon.
func applyCmd(ctx context.Context, c *ucli.Command, cmd state.Command) error {
	entry, err := state.Encode(cmd)
	if err != nil {
		return err
	}
	return client(c).Do(ctx, "POST", "/v1/apply", json.RawMessage(entry), nil)
}

// readState reads the local node's applied state.
func readState(ctx context.Context, c *ucli.Command) (*state.State, error) {
	var data []byte
	if err := client(c).Do(ctx, "GET", "/v1/state", nil, &data); err != nil {
		return nil, err
	}
	st := state.New()
	if err := st.Restore(data); err != nil {
		return nil, fmt.Errorf("reading the daemon's state: %w", err)
	}
	return st, nil
}

// scheduleRow is a schedule as list shows it.
type scheduleRow struct {
	model.JobSchedule
	LastRun *model.JobRun `json:"last_run,omitempty"`
	NextRun *time.Time    `json:"next_run,omitempty"`
}

func printSchedules(w io.Writer, format string, st *state.State, now time.Time) error {
	var rows []scheduleRow
	for _, js := range st.JobSchedules() {
		rows = append(rows, scheduleRowOf(js, st.JobRuns(js.Name), now))
	}
	if format == "json" {
		return writeJSON(w, rows)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tKIND\tCRON\tTARGET\tSTATE\tLAST RUN\tNEXT RUN")
	for _, r := range rows {
		stateWord, lastRun, nextRun := "active", "-", "-"
		if r.Paused {
			stateWord = "paused"
		}
		if r.LastRun != nil {
			lastRun = fmt.Sprintf("%s %s", time.UnixMilli(r.LastRun.StartedAt).UTC().Format(time.RFC3339), r.LastRun.State)
		}
		if r.NextRun != nil {
			nextRun = r.NextRun.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.Kind, r.Cron, r.Target, stateWord, lastRun, nextRun)
	}
	return tw.Flush()
}

// scheduleRowOf is a schedule with its last run and, unless paused, when
// it runs next.
func scheduleRowOf(js model.JobSchedule, runs []model.JobRun, now time.Time) scheduleRow {
	row := scheduleRow{JobSchedule: js}
	last := time.UnixMilli(js.CreatedAt)
	if len(runs) > 0 {
		lr := runs[len(runs)-1]
		row.LastRun = &lr
		last = time.UnixMilli(lr.StartedAt)
	}
	if s, err := cronspec.Parse(js.Cron); err == nil && !js.Paused {
		next := s.Next(last)
		if next.Before(now) {
			next = now // due: runs at the leader's next look
		}
		row.NextRun = &next
	}
	return row
}

// printSchedule shows one schedule in full.
func printSchedule(w io.Writer, format string, st *state.State, name string, now time.Time) error {
	js, ok := st.JobSchedule(name)
	if !ok {
		return fmt.Errorf("schedule %s does not exist; `pvehci schedule list` shows the schedules", name)
	}
	runs := st.JobRuns(name)
	row := scheduleRowOf(js, runs, now)
	if format == "json" {
		return writeJSON(w, struct {
			scheduleRow
			Runs []model.JobRun `json:"runs"`
		}{row, runs})
	}
	stateWord := "active"
	if js.Paused {
		stateWord = "paused"
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "name:\t%s\nkind:\t%s\ncron:\t%s\ntarget:\t%s\nstate:\t%s\n", js.Name, js.Kind, js.Cron, js.Target, stateWord)
	keys := make([]string, 0, len(js.Options))
	for k := range js.Options {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(tw, "option:\t%s=%s\n", k, js.Options[k])
	}
	fmt.Fprintf(tw, "created:\t%s\n", time.UnixMilli(js.CreatedAt).UTC().Format(time.RFC3339))
	if row.NextRun != nil {
		fmt.Fprintf(tw, "next run:\t%s\n", row.NextRun.UTC().Format(time.RFC3339))
	}
	if js.RunRequestedAt > 0 && (row.LastRun == nil || row.LastRun.StartedAt < js.RunRequestedAt) {
		fmt.Fprintf(tw, "run requested:\t%s (waiting for the leader)\n", time.UnixMilli(js.RunRequestedAt).UTC().Format(time.RFC3339))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(runs) > 5 {
		runs = runs[len(runs)-5:]
	}
	if len(runs) > 0 {
		fmt.Fprintln(w, "\nlast runs:")
	}
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, r := range runs {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", time.UnixMilli(r.StartedAt).UTC().Format(time.RFC3339), r.State, r.Message)
	}
	return tw.Flush()
}

func printHistory(w io.Writer, format string, st *state.State, name string) error {
	var runs []model.JobRun
	if name != "" {
		if _, ok := st.JobSchedule(name); !ok {
			return fmt.Errorf("schedule %s does not exist; `pvehci schedule list` shows the schedules", name)
		}
		runs = st.JobRuns(name)
	} else {
		runs = st.AllJobRuns()
	}
	if format == "json" {
		return writeJSON(w, runs)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tSCHEDULE\tKIND\tSTATE\tSTARTED\tDURATION\tMESSAGE")
	for _, r := range runs {
		dur := "-"
		if r.FinishedAt != 0 {
			dur = (time.Duration(r.FinishedAt-r.StartedAt) * time.Millisecond).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Schedule, r.Kind, r.State,
			time.UnixMilli(r.StartedAt).UTC().Format(time.RFC3339), dur, r.Message)
	}
	return tw.Flush()
}
