package cli

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"

	lc "github.com/LINBIT/golinstor/client"
	ucli "github.com/urfave/cli/v3"
)

// Object commands, named as in the linstor client (with its short
// aliases), so that an operator's habits carry over.

func nodeCommand(e env) *ucli.Command {
	return &ucli.Command{
		Name:    "node",
		Aliases: []string{"n"},
		Usage:   "list and register storage nodes (LINSTOR REST API); clean up this node's orphans",
		Commands: []*ucli.Command{
			nodeListCommand(e),
			nodeCleanupCommand(e),
			{
				Name:      "create",
				Aliases:   []string{"c"},
				Usage:     "register a node with the address its satellite listens on",
				ArgsUsage: "NAME IP",
				Flags: []ucli.Flag{
					&ucli.StringFlag{Name: "node-type", Usage: "satellite or combined", Value: "satellite"},
					outputFlag(), controllersFlag(),
				},
				Action: func(ctx context.Context, c *ucli.Command) error {
					return write(ctx, e, c, []string{"NAME", "IP"}, func(a *apiConn, args []string) (string, error) {
						ip := net.ParseIP(args[1])
						if ip == nil {
							return "", localError{usageError{fmt.Errorf("%q is not an IP address; give the node's storage network address, e.g. 10.0.0.1", args[1])}}
						}
						return fmt.Sprintf("node %s registered", args[0]), a.Nodes.Create(ctx, lc.Node{
							Name: args[0],
							Type: strings.ToLower(c.String("node-type")),
							NetInterfaces: []lc.NetInterface{{
								Name: "default", Address: ip, SatellitePort: 3366, SatelliteEncryptionType: "plain", IsActive: true,
							}},
						})
					})
				},
			},
		},
	}
}

func storagePoolCommand(e env) *ucli.Command {
	return &ucli.Command{
		Name:    "storage-pool",
		Aliases: []string{"sp"},
		Usage:   "list and create storage pools (LINSTOR REST API)",
		Commands: []*ucli.Command{
			storagePoolListCommand(e),
			{
				Name:      "create",
				Aliases:   []string{"c"},
				Usage:     "create a storage pool on a node from an LVM thin pool",
				ArgsUsage: "NODE POOL",
				Flags: []ucli.Flag{
					&ucli.StringFlag{Name: "lvmthin", Usage: "the LVM thin pool backing the pool, as VG/THINPOOL (e.g. pve/data)"},
					outputFlag(), controllersFlag(),
				},
				Action: func(ctx context.Context, c *ucli.Command) error {
					return write(ctx, e, c, []string{"NODE", "POOL"}, func(a *apiConn, args []string) (string, error) {
						thin := c.String("lvmthin")
						vg, tp, ok := strings.Cut(thin, "/")
						if !ok || vg == "" || tp == "" || strings.Contains(tp, "/") {
							return "", localError{usageError{errors.New("--lvmthin VG/THINPOOL is required, e.g. --lvmthin pve/data (see `lvs` for thin pools)")}}
						}
						return fmt.Sprintf("storage pool %s created on %s", args[1], args[0]), a.Nodes.CreateStoragePool(ctx, args[0], lc.StoragePool{
							StoragePoolName: args[1],
							ProviderKind:    lc.LVM_THIN,
							Props:           map[string]string{"StorDriver/StorPoolName": thin},
						})
					})
				},
			},
		},
	}
}

func resourceGroupCommand(e env) *ucli.Command {
	return &ucli.Command{
		Name:    "resource-group",
		Aliases: []string{"rg"},
		Usage:   "list, create and spawn from resource groups (LINSTOR REST API)",
		Commands: []*ucli.Command{
			resourceGroupListCommand(e),
			{
				Name:      "create",
				Aliases:   []string{"c"},
				Usage:     "create a resource group with one volume group",
				ArgsUsage: "NAME",
				Description: "Creates the group and its volume group 0, so that `resource-group spawn`\n" +
					"works at once; the linstor client needs a separate `volume-group create`.",
				Flags: []ucli.Flag{
					&ucli.IntFlag{Name: "place-count", Usage: "how many diskful replicas each resource gets"},
					&ucli.StringFlag{Name: "storage-pool", Usage: "the storage pool replicas are placed in"},
					outputFlag(), controllersFlag(),
				},
				Action: func(ctx context.Context, c *ucli.Command) error {
					return write(ctx, e, c, []string{"NAME"}, func(a *apiConn, args []string) (string, error) {
						n := c.Int("place-count")
						if n < 1 || n > math.MaxInt32 {
							return "", localError{usageError{errors.New("--place-count N is required and must be at least 1; 2 or 3 replicas are usual")}}
						}
						err := a.ResourceGroups.Create(ctx, lc.ResourceGroup{Name: args[0],
							SelectFilter: lc.AutoSelectFilter{PlaceCount: int32(n), StoragePool: c.String("storage-pool")}})
						if err != nil {
							return "", err
						}
						return fmt.Sprintf("resource group %s created", args[0]), a.ResourceGroups.CreateVolumeGroup(ctx, args[0], lc.VolumeGroup{})
					})
				},
			},
			{
				Name:      "spawn",
				Aliases:   []string{"spawn-resources"},
				Usage:     "create a resource definition from a group and place its replicas",
				ArgsUsage: "RG NAME SIZE",
				Description: "SIZE is a number with a unit: B, K/KiB, M/MiB, G/GiB, T/TiB (powers of 1024)\n" +
					"or KB, MB, GB, TB (powers of 1000); without a unit it is GiB, as in the linstor\n" +
					"client. It is rounded up to whole KiB.",
				Flags: []ucli.Flag{outputFlag(), controllersFlag()},
				Action: func(ctx context.Context, c *ucli.Command) error {
					return write(ctx, e, c, []string{"RG", "NAME", "SIZE"}, func(a *apiConn, args []string) (string, error) {
						kib, err := parseSizeKiB(args[2])
						if err != nil {
							return "", localError{usageError{fmt.Errorf("SIZE: %w", err)}}
						}
						return fmt.Sprintf("resource %s spawned from %s", args[1], args[0]), a.ResourceGroups.Spawn(ctx, args[0],
							lc.ResourceGroupSpawn{ResourceDefinitionName: args[1], VolumeSizes: []int64{kib}})
					})
				},
			},
		},
	}
}

func resourceDefinitionCommand(e env) *ucli.Command {
	return &ucli.Command{
		Name:    "resource-definition",
		Aliases: []string{"rd"},
		Usage:   "list and delete resource definitions (LINSTOR REST API)",
		Commands: []*ucli.Command{
			resourceDefinitionListCommand(e),
			{
				Name:        "delete",
				Aliases:     []string{"d"},
				Usage:       "delete a resource definition with all its resources and their data (destructive)",
				ArgsUsage:   "NAME",
				Description: "Asks for confirmation on a terminal; scripts must add --yes.",
				Flags:       []ucli.Flag{yesFlag(), outputFlag(), controllersFlag()},
				Action: func(ctx context.Context, c *ucli.Command) error {
					return write(ctx, e, c, []string{"NAME"}, func(a *apiConn, args []string) (string, error) {
						if err := confirmUnlessYes(e, c, fmt.Sprintf("Delete %s and its data on every node?", args[0])); err != nil {
							return "", err
						}
						return fmt.Sprintf("resource definition %s deleted", args[0]), a.ResourceDefinitions.Delete(ctx, args[0])
					})
				},
			},
		},
	}
}

func resourceCommand(e env) *ucli.Command {
	return &ucli.Command{
		Name:    "resource",
		Aliases: []string{"r"},
		Usage:   "list and delete resources, the replicas of a resource definition (LINSTOR REST API)",
		Commands: []*ucli.Command{
			resourceListCommand(e),
			{
				Name:        "delete",
				Aliases:     []string{"d"},
				Usage:       "delete one node's replica of a resource and its data there (destructive)",
				ArgsUsage:   "RD NODE",
				Description: "Asks for confirmation on a terminal; scripts must add --yes.",
				Flags:       []ucli.Flag{yesFlag(), outputFlag(), controllersFlag()},
				Action: func(ctx context.Context, c *ucli.Command) error {
					return write(ctx, e, c, []string{"RD", "NODE"}, func(a *apiConn, args []string) (string, error) {
						if err := confirmUnlessYes(e, c, fmt.Sprintf("Delete the replica of %s on %s and its data there?", args[0], args[1])); err != nil {
							return "", err
						}
						return fmt.Sprintf("resource %s deleted on %s", args[0], args[1]), a.Resources.Delete(ctx, args[0], args[1])
					})
				},
			},
		},
	}
}

func volumeCommand(e env) *ucli.Command {
	return &ucli.Command{
		Name:     "volume",
		Aliases:  []string{"v"},
		Usage:    "list volumes (LINSTOR REST API)",
		Commands: []*ucli.Command{volumeListCommand(e)},
	}
}

func snapshotCommand(e env) *ucli.Command {
	return &ucli.Command{
		Name:     "snapshot",
		Aliases:  []string{"s"},
		Usage:    "list snapshots (LINSTOR REST API)",
		Commands: []*ucli.Command{snapshotListCommand(e)},
	}
}

// write runs a create or delete: it checks the command line, lets do send
// the request (do's usage errors come back as they are), and prints what
// the server said. do returns what to print when the server says nothing.
func write(ctx context.Context, e env, c *ucli.Command, argNames []string, do func(a *apiConn, args []string) (string, error)) error {
	format, err := checkOutput(c)
	if err != nil {
		return err
	}
	args, err := needArgs(c, argNames...)
	if err != nil {
		return err
	}
	a, err := dialAPI(c)
	if err != nil {
		return err
	}
	done, err := do(a, args)
	var local localError
	switch {
	case errors.As(err, &local):
		return local.err
	case err != nil:
		return a.fail(err)
	}
	return a.reportWrite(e, format, done)
}

// localError marks a refusal made here (a bad argument, no confirmation),
// which write passes on as it is instead of reading it as the server's.
type localError struct{ err error }

func (e localError) Error() string { return e.err.Error() }

// confirmUnlessYes asks before a destructive request unless --yes.
func confirmUnlessYes(e env, c *ucli.Command, question string) error {
	if c.Bool("yes") {
		return nil
	}
	if err := confirmDestructive(e, question); err != nil {
		return localError{err}
	}
	return nil
}

// parseSizeKiB parses "10GiB", "512M", "1.5T" or "10" (GiB) into KiB,
// rounded up.
func parseSizeKiB(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, unit := t, "gib"
	if i >= 0 {
		num, unit = t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	}
	// The linstor client's units, in bytes.
	mult, ok := map[string]float64{
		"b": 1,
		"k": 1 << 10, "kib": 1 << 10, "kb": 1e3,
		"m": 1 << 20, "mib": 1 << 20, "mb": 1e6,
		"g": 1 << 30, "gib": 1 << 30, "gb": 1e9,
		"t": 1 << 40, "tib": 1 << 40, "tb": 1e12,
		"p": 1 << 50, "pib": 1 << 50, "pb": 1e15,
	}[unit]
	if !ok {
		return 0, fmt.Errorf("%q has an unknown unit; write e.g. 10GiB, 512MiB or 1TiB", s)
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || num == "" {
		return 0, fmt.Errorf("%q is not a size; write e.g. 10GiB, 512MiB or 1TiB", s)
	}
	kib := math.Ceil(v * mult / 1024)
	if kib < 1 {
		return 0, fmt.Errorf("%q is empty; a volume needs at least 1 KiB", s)
	}
	if kib > math.MaxInt64/2 {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return int64(kib), nil
}
