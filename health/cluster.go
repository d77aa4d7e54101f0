package health

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/pvehci/pvehci/storage/drbd"
	"github.com/pvehci/pvehci/storage/model"
)

// ClusterView is the whole cluster as the controller leader sees it: the
// latest report of every node's satellite and what the replicated state
// says should be. With it, `pvehci health` on any node judges every node;
// without it (no leader answers) the DRBD and pool checks fall back to
// this node's own kernel, and the report says so.
type ClusterView struct {
	Leader string    `json:"leader"`
	Time   time.Time `json:"time"`
	// Nodes are the registered nodes with their satellite's last report.
	Nodes []NodeView `json:"nodes"`
	// Definitions are the resource definitions with their replicas.
	Definitions []DefinitionView   `json:"definitions,omitempty"`
	Schedules   []ScheduleView     `json:"schedules,omitempty"`
	Relocations []model.Relocation `json:"relocations,omitempty"`
	// Verifies are the newest finished verify of each resource definition
	// that still exists (model.LatestVerifies).
	Verifies []VerifyView `json:"verifies,omitempty"`
}

// VerifyView is a definition's newest verify result and whether an
// operator acknowledged it (model.PropVerifyAck).
type VerifyView struct {
	model.VerifyResult
	Acknowledged bool `json:"acknowledged,omitempty"`
}

// NodeView is one node's satellite as the leader last heard from it.
type NodeView struct {
	Name string `json:"name"`
	// Online is true while the node's reports arrive.
	Online     bool      `json:"online"`
	LastReport time.Time `json:"last_report,omitzero"`
	// ReportTime is the node's own clock when it sent that report:
	// against LastReport (the leader's clock) it shows clock skew.
	ReportTime   time.Time               `json:"report_time,omitzero"`
	ObserveError string                  `json:"observe_error,omitempty"`
	Resources    []drbd.ObservedResource `json:"resources,omitempty"`
	Pools        []PoolView              `json:"pools,omitempty"`
	// Failed are the satellite actions that failed in its last pass.
	Failed []string `json:"failed,omitempty"`
	// Network is the node's links and RDMA ports from its last report;
	// nil when its satellite does not read them.
	Network *model.NodeNetwork `json:"network,omitempty"`
}

// PoolView is one storage pool's usage on a node.
type PoolView struct {
	Name            string  `json:"name"`
	TotalKiB        int64   `json:"total_kib"`
	FreeKiB         int64   `json:"free_kib"`
	DataPercent     float64 `json:"data_percent"`
	MetadataPercent float64 `json:"metadata_percent"`
}

// DefinitionView is a resource definition and where its replicas are.
type DefinitionView struct {
	Name       string   `json:"name"`
	PlaceCount int      `json:"place_count"`
	Diskful    []string `json:"diskful,omitempty"`
	Diskless   []string `json:"diskless,omitempty"`
	Deleting   bool     `json:"deleting,omitempty"`
}

// ScheduleView is a job schedule and its last finished run.
type ScheduleView struct {
	Name    string        `json:"name"`
	Kind    model.JobKind `json:"kind"`
	Paused  bool          `json:"paused,omitempty"`
	LastRun *model.JobRun `json:"last_run,omitempty"`
}

// Cluster reads the cluster view (from the local daemon, which asks the
// leader).
type Cluster interface {
	View(ctx context.Context) (ClusterView, error)
}

// Cluster check codes.
const (
	SatelliteOffline   Code = "SATELLITE_OFFLINE"
	SatelliteFailing   Code = "SATELLITE_FAILING"
	ReplicasBelowPlace Code = "REPLICAS_BELOW_PLACE_COUNT"
	JobFailed          Code = "JOB_FAILED"
	JobPaused          Code = "JOB_PAUSED"
	RelocationFailed   Code = "RELOCATION_FAILED"
	DisklessPrimary    Code = "DISKLESS_PRIMARY"
	ClockSkew          Code = "CLOCK_SKEW"
	VerifyOutOfSync    Code = "VERIFY_OUT_OF_SYNC"
)

// ClockSkewWarn is how far a node's clock may be from the leader's before
// health warns: certificates, job times and logs need the clocks to agree,
// and chrony keeps them within milliseconds.
const ClockSkewWarn = 2 * time.Second

// DisklessPrimaryGrace is how long past a relocation's due time a VM may
// still run on a diskless replica before health warns: the relocation
// itself (a full sync) takes a while.
const DisklessPrimaryGrace = 30 * time.Minute

func nodeObj(name string) Object { return Object{"node", name} }

// clusterCheck runs judge on the cluster view. Without a cluster source
// (a test of local checks) it judges nothing; with an unreadable view it is
// unknown, which CLUSTER_VIEW's warning turns into skipped.
func clusterCheck(judge func(v ClusterView, now time.Time) []Finding) func(context.Context, *Inputs) []Finding {
	return func(ctx context.Context, in *Inputs) []Finding {
		if in.src.Cluster == nil {
			return nil
		}
		v, err := in.ClusterView(ctx)
		if err != nil {
			return unknown("the cluster view", "pvehci cluster status")
		}
		return judge(v, in.Now())
	}
}

// ClusterViewCode is the check that the leader's view could be read.
const ClusterViewCode Code = "CLUSTER_VIEW"

func clusterChecks() []Check {
	dep := []Code{ClusterViewCode}
	return []Check{
		{
			Code:  ClusterViewCode,
			Title: "cluster-wide view",
			Run: func(ctx context.Context, in *Inputs) []Finding {
				if in.src.Cluster == nil {
					return nil
				}
				v, err := in.ClusterView(ctx)
				if err != nil {
					return []Finding{{Severity: Warning,
						Message: fmt.Sprintf("only this node was judged: the leader's view of the cluster could not be read (%v)", err),
						Hint:    "check that pvehci runs here and a leader is elected: pvehci cluster status"}}
				}
				return []Finding{{Severity: OK, Message: fmt.Sprintf("every node judged from leader %s's view (%d node(s))", v.Leader, len(v.Nodes))}}
			},
		},
		{
			Code:      SatelliteOffline,
			Title:     "satellites reporting",
			DependsOn: dep,
			Run: clusterCheck(func(v ClusterView, now time.Time) []Finding {
				var out []Finding
				for _, n := range v.Nodes {
					if n.Online {
						continue
					}
					since := "never reported"
					if !n.LastReport.IsZero() {
						since = fmt.Sprintf("last report %s ago", now.Sub(n.LastReport).Round(time.Second))
					}
					out = append(out, Finding{Severity: Critical, Objects: []Object{nodeObj(n.Name)},
						Message: fmt.Sprintf("the satellite of %s does not report (%s): its replicas are not managed", n.Name, since),
						Hint:    fmt.Sprintf("on %s: systemctl status pvehci; journalctl -u pvehci -n 50", n.Name)})
				}
				if len(out) == 0 {
					return []Finding{{Severity: OK, Message: fmt.Sprintf("%d satellite(s) reporting", len(v.Nodes))}}
				}
				return out
			}),
		},
		{
			Code:      SatelliteFailing,
			Title:     "satellite actions",
			DependsOn: []Code{ClusterViewCode, SatelliteOffline},
			Run: clusterCheck(func(v ClusterView, _ time.Time) []Finding {
				var out []Finding
				for _, n := range v.Nodes {
					if !n.Online {
						continue
					}
					if n.ObserveError != "" {
						out = append(out, Finding{Severity: Critical, Objects: []Object{nodeObj(n.Name)},
							Message: fmt.Sprintf("the satellite of %s cannot read DRBD or LVM: %s", n.Name, n.ObserveError),
							Hint:    fmt.Sprintf("on %s: drbdsetup status; lvs; journalctl -u pvehci -n 50", n.Name)})
					}
					for _, f := range n.Failed {
						out = append(out, Finding{Severity: Warning, Objects: []Object{nodeObj(n.Name)},
							Message: fmt.Sprintf("on %s an action failed and is retried: %s", n.Name, f),
							Hint:    fmt.Sprintf("on %s: journalctl -u pvehci -n 50", n.Name)})
					}
				}
				if len(out) == 0 {
					return []Finding{{Severity: OK, Message: "every satellite's last pass went through"}}
				}
				return out
			}),
		},
		{
			Code:      ReplicasBelowPlace,
			Title:     "replica count",
			DependsOn: []Code{ClusterViewCode, SatelliteOffline},
			Run: clusterCheck(func(v ClusterView, _ time.Time) []Finding {
				var out []Finding
				for _, d := range v.Definitions {
					if d.Deleting || d.PlaceCount == 0 || len(d.Diskful) >= d.PlaceCount {
						continue
					}
					out = append(out, Finding{Severity: Warning, Objects: []Object{resObj(d.Name)},
						Message: fmt.Sprintf("%s has %d diskful replica(s) (%s); its resource group asks for %d", d.Name, len(d.Diskful), strings.Join(d.Diskful, ", "), d.PlaceCount),
						Hint:    fmt.Sprintf("add one where there is room: pvehci resource list -r %s; linstor resource-definition auto-place %s", d.Name, d.Name)})
				}
				if len(out) == 0 {
					return []Finding{{Severity: OK, Message: fmt.Sprintf("%d resource definition(s) at their place count", len(v.Definitions))}}
				}
				return out
			}),
		},
		{
			Code:      JobFailed,
			Title:     "scheduled jobs",
			DependsOn: dep,
			Run: clusterCheck(func(v ClusterView, _ time.Time) []Finding {
				var out []Finding
				for _, s := range v.Schedules {
					if s.LastRun == nil || s.LastRun.State != model.RunFailed {
						continue
					}
					out = append(out, Finding{Severity: Warning, Objects: []Object{{"schedule", s.Name}},
						Message: fmt.Sprintf("the last %s run of schedule %s failed: %s", s.Kind, s.Name, s.LastRun.Message),
						Hint:    fmt.Sprintf("pvehci schedule history %s", s.Name)})
				}
				if len(out) == 0 {
					return []Finding{{Severity: OK, Message: fmt.Sprintf("no failed last run in %d schedule(s)", len(v.Schedules))}}
				}
				return out
			}),
		},
		{
			Code:      JobPaused,
			Title:     "paused schedules",
			DependsOn: []Code{ClusterViewCode, JobFailed},
			Run: clusterCheck(func(v ClusterView, _ time.Time) []Finding {
				var out []Finding
				for _, s := range v.Schedules {
					if s.Paused {
						out = append(out, Finding{Severity: Warning, Objects: []Object{{"schedule", s.Name}},
							Message: fmt.Sprintf("schedule %s is paused: its %s jobs do not run", s.Name, s.Kind),
							Hint:    fmt.Sprintf("see why: pvehci schedule history %s; then pvehci schedule resume %s", s.Name, s.Name)})
					}
				}
				if len(out) == 0 {
					return []Finding{{Severity: OK, Message: "no schedule paused"}}
				}
				return out
			}),
		},
		{
			Code:      VerifyOutOfSync,
			Title:     "online verify results",
			DependsOn: dep,
			Run: clusterCheck(func(v ClusterView, _ time.Time) []Finding {
				var out []Finding
				acked, repaired := 0, 0
				for _, r := range v.Verifies {
					if r.OutOfSyncKiB == 0 {
						continue
					}
					if r.Repaired() {
						repaired++
						continue
					}
					if r.Acknowledged {
						acked++
						continue
					}
					at := time.UnixMilli(r.FinishedAt).UTC().Format(time.RFC3339)
					msg := fmt.Sprintf("the last verify of %s (run %s, %s) found %d KiB that differ between its replicas", r.Resource, r.RunID, at, r.OutOfSyncKiB)
					if diff := differingPeers(r.Peers); r.VerifiedFrom != "" && diff != "" {
						msg += fmt.Sprintf(" (against %s's replica: %s)", r.VerifiedFrom, diff)
					}
					if r.Resync != "" {
						msg += "; " + r.Resync
					}
					out = append(out, Finding{Severity: Warning, Objects: []Object{resObj(r.Resource)},
						Message: msg,
						Hint: fmt.Sprintf("find the replica with the bad copy (I/O errors in its kernel log, a failing disk) and run `drbdadm invalidate %s` on its node, which resyncs it from its peers; "+
							"then verify again (pvehci schedule run-now %s); or, once dealt with: pvehci schedule ack %s", r.Resource, orDash(r.Schedule), r.Resource)})
				}
				if len(out) == 0 {
					msg := fmt.Sprintf("no out-of-sync data in the last verify of %d resource definition(s)", len(v.Verifies))
					if acked > 0 {
						msg += fmt.Sprintf(" (%d acknowledged)", acked)
					}
					if repaired > 0 {
						msg += fmt.Sprintf(" (%d repaired from the Primary after the verify)", repaired)
					}
					return []Finding{{Severity: OK, Message: msg}}
				}
				return out
			}),
		},
		{
			Code:      RelocationFailed,
			Title:     "replica relocations",
			DependsOn: dep,
			Run: clusterCheck(func(v ClusterView, _ time.Time) []Finding {
				var out []Finding
				for _, r := range v.Relocations {
					if r.State != model.RelocFailed {
						continue
					}
					out = append(out, Finding{Severity: Warning, Objects: []Object{resObj(r.ResourceName), nodeObj(r.TargetNode)},
						Message: fmt.Sprintf("moving %s's replica to %s failed: %s", r.ResourceName, r.TargetNode, strings.Join(nonEmpty(r.Reason, r.Message), ": ")),
						Hint:    fmt.Sprintf("pvehci resource list -r %s; fix the cause, and the next VM start or migration retries", r.ResourceName)})
				}
				if len(out) == 0 {
					return []Finding{{Severity: OK, Message: "no failed relocation"}}
				}
				return out
			}),
		},
		{
			Code:      ClockSkew,
			Title:     "clocks agree",
			DependsOn: []Code{ClusterViewCode, SatelliteOffline},
			Run: clusterCheck(func(v ClusterView, _ time.Time) []Finding {
				var out []Finding
				for _, n := range v.Nodes {
					if !n.Online || n.ReportTime.IsZero() || n.LastReport.IsZero() {
						continue
					}
					// The report's transit adds a few milliseconds; the
					// threshold is far above that.
					skew := n.ReportTime.Sub(n.LastReport)
					if skew.Abs() < ClockSkewWarn {
						continue
					}
					word := "ahead of"
					if skew < 0 {
						word = "behind"
					}
					out = append(out, Finding{Severity: Warning, Objects: []Object{nodeObj(n.Name)},
						Message: fmt.Sprintf("the clock of %s is %s %s the leader's", n.Name, skew.Abs().Round(100*time.Millisecond), word),
						Hint:    fmt.Sprintf("on %s and on leader %s: chronyc tracking; systemctl enable --now chrony", n.Name, v.Leader)})
				}
				if len(out) == 0 {
					return []Finding{{Severity: OK, Message: fmt.Sprintf("every reporting node's clock within %s of the leader's", ClockSkewWarn)}}
				}
				return out
			}),
		},
		{
			Code:      DisklessPrimary,
			Title:     "VMs running on diskless replicas",
			DependsOn: []Code{ClusterViewCode, SatelliteOffline, RelocationFailed},
			Run: clusterCheck(func(v ClusterView, now time.Time) []Finding {
				relocs := map[string]model.Relocation{}
				for _, r := range v.Relocations {
					relocs[r.ResourceName] = r
				}
				var out []Finding
				for _, n := range v.Nodes {
					for _, r := range n.Resources {
						if r.Role != drbd.RolePrimary || !diskless(r) {
							continue
						}
						rel, ok := relocs[r.Name]
						due := time.UnixMilli(rel.DueAt)
						switch {
						case ok && rel.TargetNode == n.Name && (rel.State == model.RelocAdding || rel.State == model.RelocSyncing || rel.State == model.RelocRemoving):
							continue // being made local
						case ok && rel.TargetNode == n.Name && rel.State == model.RelocPending && now.Before(due.Add(DisklessPrimaryGrace)):
							continue // waiting for its delay
						}
						out = append(out, Finding{Severity: Warning, Objects: []Object{resObj(r.Name), nodeObj(n.Name)},
							Message: fmt.Sprintf("%s is Primary on %s without a local disk: every read and write crosses the network", r.Name, n.Name),
							Hint:    fmt.Sprintf("give %s a local replica: linstor resource toggle-disk %s %s --storage-pool POOL (or check DrbdOptions/auto-diskful)", n.Name, n.Name, r.Name)})
					}
				}
				if len(out) == 0 {
					return []Finding{{Severity: OK, Message: "no VM runs on a diskless replica beyond its relocation delay"}}
				}
				return out
			}),
		},
	}
}

// diskless reports whether every volume of a resource is without a disk.
func diskless(r drbd.ObservedResource) bool {
	if len(r.Devices) == 0 {
		return false
	}
	for _, d := range r.Devices {
		if !d.Client {
			return false
		}
	}
	return true
}

// viewResources lists every online node's reported resources, each with
// the node's object in front, for the DRBD checks.
func viewResources(v ClusterView) (nodes []string, res [][]drbd.ObservedResource) {
	for _, n := range v.Nodes {
		if n.Online && n.ObserveError == "" {
			nodes = append(nodes, n.Name)
			res = append(res, n.Resources)
		}
	}
	return nodes, res
}

// withNode puts a node object in front of every finding's objects.
func withNode(node string, fs []Finding) []Finding {
	for i := range fs {
		fs[i].Objects = append([]Object{nodeObj(node)}, fs[i].Objects...)
		if fs[i].Hint != "" && !strings.HasPrefix(fs[i].Hint, "on ") {
			fs[i].Hint = "on " + node + ": " + fs[i].Hint
		}
	}
	return fs
}

func nonEmpty(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// differingPeers lists the peers a verify found different, with their KiB,
// in name order.
func differingPeers(peers map[string]uint64) string {
	var out []string
	for _, n := range slices.Sorted(maps.Keys(peers)) {
		if peers[n] > 0 {
			out = append(out, fmt.Sprintf("%s %d KiB", n, peers[n]))
		}
	}
	return strings.Join(out, ", ")
}
