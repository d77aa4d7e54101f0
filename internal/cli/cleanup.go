package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/pvehci/pvehci/internal/daemon"
	"github.com/pvehci/pvehci/storage/satellite"
	ucli "github.com/urfave/cli/v3"
)

// nodeCleanupCommand is `pvehci node cleanup --orphans`: what the
// satellite reports as orphans on this node (LVs tagged pvehci, .res files
// and DRBD resources that no resource owns), listed with the command that
// removes each, then removed after a confirmation.
func nodeCleanupCommand(e env) *ucli.Command {
	return &ucli.Command{
		Name:  "cleanup",
		Usage: "list and remove what pvehci left behind on this node (--orphans), after asking",
		Description: "Orphans are LVs tagged pvehci, .res files and DRBD resources that no resource of this node owns " +
			"(left by a crash, a hand-made change, or a LINSTOR migration). A reconcile pass only reports them. " +
			"This lists each with the command that removes it, asks, and removes those that are still orphans then. " +
			"LVs without the pvehci tag, snapshot LVs and anything in use are listed and never removed.",
		Flags: []ucli.Flag{
			&ucli.BoolFlag{Name: "orphans", Usage: "clean up orphans (the only kind of cleanup)"},
			&ucli.BoolFlag{Name: "dry-run", Usage: "list only"},
			yesFlag(), outputFlag(), socketFlag(),
		},
		Action: func(ctx context.Context, c *ucli.Command) error {
			if !c.Bool("orphans") {
				return usageError{errors.New("say what to clean up: --orphans")}
			}
			if c.Args().Len() > 0 {
				return usageError{fmt.Errorf("cleanup acts on this node and takes no arguments (got %q); run it on the node to clean", c.Args().First())}
			}
			cl := client(c)
			var items []satellite.CleanupItem
			if err := cl.Do(ctx, "GET", "/v1/node/orphans", nil, &items); err != nil {
				return err
			}
			var keys []string
			for _, it := range items {
				if it.Command != "" {
					keys = append(keys, it.Key)
				}
			}
			if c.Bool("dry-run") || len(keys) == 0 {
				if c.String("output") == "json" {
					return writeJSON(e.stdout, items)
				}
				printOrphans(e.stdout, items, false)
				if len(items) == 0 {
					fmt.Fprintln(e.stdout, "no orphans on this node")
				}
				return nil
			}
			if c.String("output") != "json" || !c.Bool("yes") {
				printOrphans(e.stderr, items, false)
			}
			if err := confirmUnlessYes(e, c, fmt.Sprintf("Remove the %d orphan(s) marked with a command above?", len(keys))); err != nil {
				return err
			}
			var done []satellite.CleanupItem
			if err := cl.Do(ctx, "POST", "/v1/node/orphans/remove", daemon.OrphanRemoveRequest{Keys: keys}, &done); err != nil {
				return err
			}
			if c.String("output") == "json" {
				if err := writeJSON(e.stdout, done); err != nil {
					return err
				}
			} else {
				printOrphans(e.stdout, done, true)
			}
			var failed []string
			for _, it := range done {
				if it.Error != "" && slices.Contains(keys, it.Key) {
					failed = append(failed, it.Key+": "+it.Error)
				}
			}
			if len(failed) > 0 {
				return fmt.Errorf("%d orphan(s) not removed:\n  %s", len(failed), strings.Join(failed, "\n  "))
			}
			return nil
		},
	}
}

// printOrphans writes the table; outcome adds what became of each.
func printOrphans(w io.Writer, items []satellite.CleanupItem, outcome bool) {
	if len(items) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if outcome {
		fmt.Fprintln(tw, "KIND\tNAME\tRESULT")
	} else {
		fmt.Fprintln(tw, "KIND\tNAME\tREMOVE WITH\tWHY IT IS AN ORPHAN")
	}
	for _, it := range items {
		if outcome {
			result := "kept: " + it.Kept
			switch {
			case it.Removed:
				result = "removed (" + it.Command + ")"
			case it.Error != "":
				result = "FAILED: " + it.Error
			case it.Command != "":
				result = "left (not confirmed)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", it.Kind, it.Name, result)
			continue
		}
		how := it.Command
		if how == "" {
			how = "kept: " + it.Kept
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", it.Kind, it.Name, how, it.Reason)
	}
	tw.Flush()
}
