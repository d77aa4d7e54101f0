package cli

import (
	"context"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v3"

	"github.com/pvehci/pvehci/ha"
	"github.com/pvehci/pvehci/ha/relocate"
	"github.com/pvehci/pvehci/internal/daemon"
	"github.com/pvehci/pvehci/internal/hostfs"
	"github.com/pvehci/pvehci/internal/hostnet"
	"github.com/pvehci/pvehci/internal/kernelrpc"
	"github.com/pvehci/pvehci/internal/localapi"
	"github.com/pvehci/pvehci/internal/run"
	"github.com/pvehci/pvehci/pve/pveapi"
	"github.com/pvehci/pvehci/storage/drbd"
	"github.com/pvehci/pvehci/storage/satellite"
)

func daemonCommand(e env) *ucli.Command {
	return &ucli.Command{
		Name:  "daemon",
		Usage: "run the pvehci daemon on this node (controller member and satellite)",
		Description: "Runs until SIGTERM. Started by systemd as a Type=notify service; a leader hands\n" +
			"leadership to another member before it exits. A node that is not in a cluster\n" +
			"yet waits for `pvehci cluster init` or `pvehci cluster join`.",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "node", Usage: "this node's name (default: the host name)", Sources: ucli.EnvVars("PVEHCI_NODE")},
			&ucli.StringFlag{Name: "data-dir", Usage: "directory for certificates and cluster state", Value: daemon.DefaultDataDir, Sources: ucli.EnvVars("PVEHCI_DATA_DIR")},
			&ucli.StringFlag{Name: "peer-listen", Usage: "address of the mutual-TLS peer port (raft and internal API)", Value: fmt.Sprintf(":%d", ha.DefaultPeerPort)},
			&ucli.StringFlag{Name: "advertise", Usage: "peer address other nodes dial (default: the node name's address, port 3372)", Sources: ucli.EnvVars("PVEHCI_ADVERTISE")},
			&ucli.BoolFlag{Name: "controller", Usage: "this node may vote and lead (false: replicate only)", Value: true},
			&ucli.StringFlag{Name: "api-listen", Usage: "address of the LINSTOR REST API (HTTP); default: the advertise address, port 3370; \"off\" disables it", Sources: ucli.EnvVars("PVEHCI_API_LISTEN")},
			&ucli.StringFlag{Name: "api-https-listen", Usage: "address of the REST API over HTTPS, e.g. 10.0.0.1:3371 (needs --api-cert and --api-key)"},
			&ucli.StringFlag{Name: "api-cert", Usage: "PEM certificate (chain) of the HTTPS REST API"},
			&ucli.StringFlag{Name: "api-key", Usage: "PEM key of the HTTPS REST API"},
			&ucli.StringFlag{Name: "api-client-ca", Usage: "PEM CAs whose client certificates HTTPS accepts; then a client certificate is required (the plugin's apicrt/apikey/apica)"},
			&ucli.StringFlag{Name: "api-token-file", Usage: "file holding a bearer token every REST request but /health must carry"},
			&ucli.BoolFlag{Name: "satellite", Usage: "run the storage satellite (DRBD and LVM on this node)", Value: true},
			&ucli.StringFlag{Name: "root", Usage: "file system root the satellite writes under (the lab gives each node its own)", Value: "/", Hidden: true},
			&ucli.StringFlag{Name: "kernel-socket", Usage: "run storage commands through the lab's simulated kernel at this socket", Hidden: true},
			&ucli.DurationFlag{Name: "relocate-delay", Usage: "how long a VM runs on a diskless client before its replica follows it, when DrbdOptions/auto-diskful is unset; negative: only where auto-diskful is set", Value: relocate.DefaultDelay},
			&ucli.StringFlag{Name: "relocate-max-rate", Usage: "cap on a relocation's resync, DRBD's c-max-rate (e.g. 100M = 100 MiB/s) on the new disk while it syncs; empty: no cap"},
			&ucli.IntFlag{Name: "relocate-per-node", Usage: "relocations a node may be the target or source of at once (each is a full sync)", Value: relocate.DefaultPerNode},
			&ucli.IntFlag{Name: "relocate-per-cluster", Usage: "relocations in the whole cluster at once", Value: relocate.DefaultPerCluster},
			&ucli.StringFlag{Name: "pve-api", Usage: "the Proxmox API (https://NODE:8006) relocation reads VM places and migrations from; empty: DRBD roles only"},
			&ucli.StringFlag{Name: "pve-token-file", Usage: "file holding the PVE API token USER@REALM!TOKENID=SECRET (PVEAuditor on / suffices)"},
			&ucli.StringFlag{Name: "pve-ca", Usage: "PEM CA of the PVE API's certificate", Value: "/etc/pve/pve-root-ca.pem"},
			&ucli.DurationFlag{Name: "satellite-interval", Usage: "satellite pass interval without changes", Value: satellite.DefaultIdleInterval, Hidden: true},
			socketFlag(),
		},
		Action: func(ctx context.Context, c *ucli.Command) error {
			log, level, err := e.logger(c)
			if err != nil {
				return err
			}
			if os.Getenv("GOGC") == "" {
				// The daemon's live data is small and long-lived; Go's default
				// lets the heap reach twice its size before collecting. Half
				// that headroom keeps a node with 10,000 resources under
				// 100 MiB for a few percent more GC work (docs/benchmarks.md).
				debug.SetGCPercent(daemonGCPercent)
			}
			node := c.String("node")
			if node == "" {
				if node, err = os.Hostname(); err != nil {
					return fmt.Errorf("finding this node's name: %w; give --node", err)
				}
			}
			advertise := c.String("advertise")
			if advertise == "" {
				if advertise, err = daemon.DefaultAdvertise(node, ha.DefaultPeerPort); err != nil {
					return usageError{err}
				}
			}
			apiListen := c.String("api-listen")
			switch apiListen {
			case "":
				host, _, err := net.SplitHostPort(advertise)
				if err != nil {
					return usageError{fmt.Errorf("--advertise %q: %w", advertise, err)}
				}
				apiListen = net.JoinHostPort(host, fmt.Sprint(daemon.DefaultAPIPort))
			case "off":
				apiListen = ""
			}
			if r := c.String("relocate-max-rate"); r != "" {
				if _, ok := drbd.ParseRate(r); !ok {
					return usageError{fmt.Errorf("--relocate-max-rate %q: give a rate as DRBD's c-max-rate takes it, KiB/s or with a K, M or G suffix, e.g. 100M", r)}
				}
			}
			for _, f := range []string{"relocate-per-node", "relocate-per-cluster"} {
				if c.Int(f) < 1 {
					return usageError{fmt.Errorf("--%s %d: give 1 or more (to turn relocation off, use a negative --relocate-delay)", f, c.Int(f))}
				}
			}
			var sat *daemon.SatelliteConfig
			if c.Bool("satellite") {
				if sat, err = satelliteConfig(c.String("root"), c.String("kernel-socket"), node, c.Duration("satellite-interval")); err != nil {
					return err
				}
			}
			pveClient, err := pveConfig(c.String("pve-api"), c.String("pve-token-file"), c.String("pve-ca"))
			if err != nil {
				return err
			}
			return daemon.Run(ctx, daemon.Config{
				PVE:       pveClient,
				Satellite: sat,
				Relocation: relocate.Limits{DefaultDelay: c.Duration("relocate-delay"), MaxRate: c.String("relocate-max-rate"),
					PerNode: int(c.Int("relocate-per-node")), PerCluster: int(c.Int("relocate-per-cluster"))},
				NodeName:   node,
				DataDir:    c.String("data-dir"),
				PeerListen: c.String("peer-listen"),
				Advertise:  advertise,
				Controller: c.Bool("controller"),
				Socket:     c.String("socket"),
				API: daemon.APIConfig{
					HTTPListen:      apiListen,
					HTTPSListen:     c.String("api-https-listen"),
					CertFile:        c.String("api-cert"),
					KeyFile:         c.String("api-key"),
					ClientCAFile:    c.String("api-client-ca"),
					BearerTokenFile: c.String("api-token-file"),
				},
			}, log, level)
		},
	}
}

// daemonGCPercent is the daemon's GOGC unless the environment sets one.
const daemonGCPercent = 50

// socketFlag selects the local daemon's socket.
func socketFlag() ucli.Flag {
	return &ucli.StringFlag{
		Name:    "socket",
		Usage:   "the local daemon's API socket",
		Value:   localapi.DefaultSocket,
		Sources: ucli.EnvVars("PVEHCI_SOCKET"),
	}
}

// satelliteConfig gives the satellite the node's real programs and file
// system, or, with a kernel socket, the lab's simulated kernel.
func satelliteConfig(root, kernelSocket, node string, interval time.Duration) (*daemon.SatelliteConfig, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, usageError{fmt.Errorf("--root %q: %w", root, err)}
	}
	var runner run.Runner = run.Exec{}
	// The host's own links and ports only on the host itself: a daemon
	// with a simulated kernel (the lab) has no network of its own to read.
	var network satellite.NetworkReader = hostnet.Reader{}
	if kernelSocket != "" {
		runner, network = kernelrpc.NewRunner(kernelSocket, node), nil
	}
	return &daemon.SatelliteConfig{
		Runner:       runner,
		FS:           hostfs.Root(abs),
		ResDir:       os.DirFS(filepath.Join(abs, satellite.ResDir)).(fs.ReadDirFS),
		IdleInterval: interval,
		Network:      network,
	}, nil
}

// pveConfig builds the PVE API client from the daemon's flags; nil without
// --pve-api.
func pveConfig(url, tokenFile, caFile string) (*pveapi.Client, error) {
	if url == "" {
		return nil, nil
	}
	if tokenFile == "" {
		return nil, usageError{fmt.Errorf("--pve-api needs --pve-token-file with an API token (pveum user token add root@pam pvehci --privsep 1; grant PVEAuditor on /)")}
	}
	tok, err := os.ReadFile(tokenFile)
	if err != nil {
		return nil, fmt.Errorf("reading the PVE API token: %w", err)
	}
	if !strings.HasPrefix(url, "https://") {
		caFile = ""
	} else if _, err := os.Stat(caFile); err != nil {
		return nil, fmt.Errorf("--pve-ca %s: %w (on a PVE node it is /etc/pve/pve-root-ca.pem)", caFile, err)
	}
	return pveapi.New(url, strings.TrimSpace(string(tok)), caFile)
}
