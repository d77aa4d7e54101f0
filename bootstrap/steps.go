package bootstrap

import (
	"context"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"time"

	"github.com/pvehci/pvehci/bootstrap/cluster"
	"github.com/pvehci/pvehci/ha"
	"github.com/pvehci/pvehci/ha/state"
	"github.com/pvehci/pvehci/storage/model"
)

// Options is what `pvehci bootstrap` brings a node to.
type Options struct {
	Cluster *cluster.Cluster
	Node    cluster.Node
	// Wipe names the disks whose old partition tables and signatures the
	// storage step may erase; any other disk must be empty.
	Wipe []string
	// Offline skips the package step's downloads; it then only checks
	// that the packages are installed.
	Offline bool
	// Binary is where pvehci is installed on the node.
	Binary string
	// Token joins the pvehci cluster when the first node has not left
	// one for this node in /etc/pve/priv/pvehci.
	Token string
	// Daemon is pvehci's daemon on this node, through its local API.
	Daemon Daemon
	// APIURL is this node's REST API, for registration; default
	// http://MANAGEMENT:3370.
	APIURL string
}

// Daemon is the pvehci daemon on this node, reached through its local
// API socket.
type Daemon interface {
	// Status fails while the daemon is not running.
	Status(ctx context.Context) (ha.ClusterStatus, error)
	Init(ctx context.Context, name string) error
	Join(ctx context.Context, token string) error
	IssueToken(ctx context.Context, node string, ttl time.Duration) (string, error)
	Schedules(ctx context.Context) ([]model.JobSchedule, error)
	AddSchedule(ctx context.Context, cmd *state.AddJobSchedule) error
}

// DefaultBinary is where the Debian package installs pvehci.
const DefaultBinary = "/usr/bin/pvehci"

// Steps returns the steps that bring the node up, in the order they run.
func Steps(o Options) []Step {
	if o.Binary == "" {
		o.Binary = DefaultBinary
	}
	if o.APIURL == "" {
		o.APIURL = "http://" + hostPort(o.Node.Management.Addr().String(), RESTPort)
	}
	return []Step{
		preflightStep(o),
		packagesStep(o),
		networkStep(o),
		corosyncStep(o),
		storageStep(o),
		drbdStep(o),
		serviceStep(o),
		registerStep(o),
		pveStorageStep(o),
	}
}

// Ports pvehci listens on.
const (
	RESTPort  = 3370
	HTTPSPort = 3371
	PeerPort  = 3372
)

func hostPort(addr string, port int) string { return net.JoinHostPort(addr, strconv.Itoa(port)) }

// pveVersion is what pveversion says about the node.
type pveVersion struct {
	Major  int
	Full   string // e.g. 8.2.4
	Kernel string // the running kernel, e.g. 6.8.8-2-pve
}

var pveVersionRE = regexp.MustCompile(`^pve-manager/((\d+)\.[0-9.]+)/\S+ \(running kernel: (\S+)\)`)

// readPVEVersion runs pveversion: "pve-manager/8.2.4/faa83925c9641325
// (running kernel: 6.8.8-2-pve)".
func readPVEVersion(ctx context.Context, h *Host) (pveVersion, error) {
	out, err := output(ctx, h, "pveversion")
	if err != nil {
		return pveVersion{}, fmt.Errorf("running pveversion (is this a Proxmox VE node? install Proxmox VE 8 or 9 first): %w", err)
	}
	m := pveVersionRE.FindSubmatch(out)
	if m == nil {
		return pveVersion{}, fmt.Errorf("pveversion said %q, not pve-manager/VERSION/HASH (running kernel: KERNEL)", string(out))
	}
	major, _ := strconv.Atoi(string(m[2]))
	return pveVersion{Major: major, Full: string(m[1]), Kernel: string(m[3])}, nil
}
