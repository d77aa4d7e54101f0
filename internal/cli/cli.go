// Package cli is the pvehci command tree: it parses arguments, wires the
// packages that do the work, and turns their errors into messages and exit
// codes. Each command lives in its own file here; none of them holds domain
// logic, and none is registered before the feature behind it works.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"

	ucli "github.com/urfave/cli/v3"

	"github.com/pvehci/pvehci/internal/logging"
)

// Exit codes shared by every command. Commands with a convention of their own
// (health follows Nagios) document theirs in docs/cli.
const (
	ExitOK    = 0
	ExitError = 1 // the command ran and failed; the message says why and what to do
	ExitUsage = 2 // the command line itself is wrong
)

// usageError marks a mistake in the command line, so Main can answer with
// ExitUsage instead of ExitError.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// env is what every command may touch of the process: its output streams.
// Commands get it explicitly so tests can run the whole tree in-process.
type env struct {
	stdout io.Writer
	stderr io.Writer
}

// logger builds the logger the command line asked for. Logs go to stderr,
// which systemd hands to the journal for the daemon.
func (e env) logger(c *ucli.Command) (*slog.Logger, *slog.LevelVar, error) {
	level, err := logging.ParseLevel(c.String("log-level"))
	if err != nil {
		return nil, nil, usageError{fmt.Errorf("--log-level: %w", err)}
	}
	format, err := logging.ParseFormat(c.String("log-format"))
	if err != nil {
		return nil, nil, usageError{fmt.Errorf("--log-format: %w", err)}
	}
	l, lv := logging.New(e.stderr, logging.Options{Format: format, Level: level})
	return l, lv, nil
}

// New builds the root command. It is exported for the docs generator and
// for tests that walk the tree.
func New(stdout, stderr io.Writer) *ucli.Command {
	e := env{stdout: stdout, stderr: stderr}
	root := &ucli.Command{
		Name:  "pvehci",
		Usage: "hyperconverged Proxmox VE with replicated DRBD storage",
		Description: "pvehci turns freshly installed Proxmox VE nodes into a hyperconverged cluster\n" +
			"with DRBD 9 replicated storage, and keeps it healthy.",
		Writer:                e.stdout,
		ErrWriter:             e.stderr,
		HideVersion:           true, // `pvehci version` says more than a flag could
		EnableShellCompletion: true,
		ConfigureShellCompletionCommand: func(c *ucli.Command) {
			c.Hidden = false
			c.Usage = "print a shell completion script (bash, zsh, fish)"
		},
		Suggest: true,
		Flags: []ucli.Flag{
			&ucli.StringFlag{
				Name:    "log-level",
				Usage:   "log level: debug, info, warn or error",
				Value:   "info",
				Sources: ucli.EnvVars("PVEHCI_LOG_LEVEL"),
			},
			&ucli.StringFlag{
				Name:    "log-format",
				Usage:   "log format: text or json",
				Value:   "text",
				Sources: ucli.EnvVars("PVEHCI_LOG_FORMAT"),
			},
		},
		// Main decides the exit code; the library must not call os.Exit.
		ExitErrHandler: func(context.Context, *ucli.Command, error) {},
		Action: func(ctx context.Context, c *ucli.Command) error {
			if c.Args().Present() {
				return usageError{fmt.Errorf("%q is not a pvehci command", c.Args().First())}
			}
			return ucli.ShowRootCommandHelp(c)
		},
		Commands: []*ucli.Command{
			versionCommand(e),
			clusterCommand(e),
			daemonCommand(e),
			docsCommand(e),
			nodeCommand(e),
			storagePoolCommand(e),
			resourceGroupCommand(e),
			resourceDefinitionCommand(e),
			resourceCommand(e),
			volumeCommand(e),
			snapshotCommand(e),
			scheduleCommand(e),
			eventsCommand(e),
			bootstrapCommand(e),
			healthCommand(e),
			labCommand(e),
		},
	}
	markUsageErrors(root)
	return root
}

// markUsageErrors makes every command report flag and argument mistakes as
// usage errors; the library only consults the handler of the command that
// failed, so each one needs it.
func markUsageErrors(c *ucli.Command) {
	c.OnUsageError = func(_ context.Context, _ *ucli.Command, err error, _ bool) error {
		return usageError{err}
	}
	for _, sub := range c.Commands {
		markUsageErrors(sub)
	}
}

// Main runs pvehci with the given arguments (args[0] is the program name)
// and returns the process exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := New(stdout, stderr)
	err := root.Run(ctx, args)
	if err == nil {
		return ExitOK
	}
	var exitCoder ucli.ExitCoder
	if errors.As(err, &exitCoder) {
		if msg := err.Error(); msg != "" {
			fmt.Fprintf(stderr, "pvehci: %s\n", msg)
		}
		return exitCoder.ExitCode()
	}
	fmt.Fprintf(stderr, "pvehci: %s\n", err)
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintln(stderr, "Run 'pvehci --help' for usage.")
		return ExitUsage
	}
	return ExitError
}

// writeJSON prints v as indented JSON, the --output json of every command.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
