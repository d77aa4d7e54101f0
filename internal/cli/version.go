package cli

import (
	"context"
	"fmt"

	ucli "github.com/urfave/cli/v3"

	"github.com/pvehci/pvehci/internal/buildinfo"
)

func versionCommand(e env) *ucli.Command {
	return &ucli.Command{
		Name:  "version",
		Usage: "print the version, commit, Go version and build time of this binary",
		Flags: []ucli.Flag{
			outputFlag(),
		},
		Action: func(_ context.Context, c *ucli.Command) error {
			info := buildinfo.Get()
			switch c.String("output") {
			case "json":
				return writeJSON(e.stdout, info)
			case "text":
				_, err := fmt.Fprintf(e.stdout,
					"pvehci %s\ncommit:   %s\nbuilt:    %s\ngo:       %s\nplatform: %s\n",
					info.Version, info.Commit, info.BuildTime, info.GoVersion, info.Platform)
				return err
			default:
				return usageError{fmt.Errorf("--output %q is not a format pvehci writes; use text or json", c.String("output"))}
			}
		},
	}
}

// outputFlag is the --output flag every command that prints data shares.
func outputFlag() ucli.Flag {
	return &ucli.StringFlag{
		Name:    "output",
		Aliases: []string{"o"},
		Usage:   "output format: text or json",
		Value:   "text",
	}
}
