// Command pvehci turns Proxmox VE nodes into a hyperconverged cluster with
// replicated DRBD storage and keeps it healthy. Everything it does lives in
// the packages it wires together; main only hands over the process.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/pvehci/pvehci/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
