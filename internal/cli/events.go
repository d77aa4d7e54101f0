package cli

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/pvehci/pvehci/storage/model"
	ucli "github.com/urfave/cli/v3"
)

// eventsCommand is `pvehci events`: the automation's decisions with their
// reasons (today: every step of every replica relocation, and why one
// waits), from the replicated state through the local daemon.
func eventsCommand(e env) *ucli.Command {
	return &ucli.Command{
		Name:  "events",
		Usage: "what pvehci's automation decided and why (replica relocations), newest last",
		Description: "Events live in the replicated state (the newest 1000), so every node shows the same\n" +
			"history and it survives leader changes. A relocation records its timer, each step, every\n" +
			"new reason it waits for, and its end.",
		Flags: []ucli.Flag{
			&ucli.DurationFlag{Name: "since", Usage: "only events of the last DURATION (e.g. 1h); 0 for all", Value: 24 * time.Hour},
			&ucli.StringFlag{Name: "resource", Aliases: []string{"r"}, Usage: "only this resource definition's events"},
			&ucli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "keep printing new events until interrupted"},
			outputFlag(), socketFlag(),
		},
		Action: func(ctx context.Context, c *ucli.Command) error {
			if c.Args().Len() > 0 {
				return usageError{fmt.Errorf("events takes no arguments; filter with --resource %s", c.Args().First())}
			}
			var since int64
			if d := c.Duration("since"); d > 0 {
				since = time.Now().Add(-d).UnixMilli()
			}
			rd, asJSON, follow := c.String("resource"), c.String("output") == "json", c.Bool("follow")
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			header := false
			// Polls ask for events at or after the newest time printed;
			// those of that very millisecond already printed are skipped.
			printed := map[model.Event]bool{}
			for {
				var events []model.Event
				if err := client(c).Do(ctx, "GET", "/v1/events?since="+strconv.FormatInt(since, 10), nil, &events); err != nil {
					return err
				}
				var shown []model.Event
				for _, ev := range events {
					if !printed[ev] && (rd == "" || model.SameName(ev.Resource, rd)) {
						shown = append(shown, ev)
					}
				}
				if asJSON && !follow {
					if shown == nil {
						shown = []model.Event{}
					}
					return writeJSON(e.stdout, shown)
				}
				for _, ev := range shown {
					if asJSON {
						if err := writeJSON(e.stdout, ev); err != nil {
							return err
						}
						continue
					}
					if !header {
						fmt.Fprintln(tw, "TIME\tKIND\tRESOURCE\tNODE\tSTATE\tMESSAGE")
						header = true
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", time.UnixMilli(ev.At).UTC().Format(time.RFC3339),
						ev.Kind, orDash(ev.Resource), orDash(ev.Node), orDash(ev.State), strings.ReplaceAll(ev.Message, "\n", " "))
				}
				tw.Flush()
				if !follow {
					if !header && !asJSON {
						fmt.Fprintln(e.stdout, "no events")
					}
					return nil
				}
				for _, ev := range events {
					if ev.At > since {
						since = ev.At
						clear(printed)
					}
					if ev.At == since {
						printed[ev] = true
					}
				}
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(time.Second):
				}
			}
		},
	}
}
