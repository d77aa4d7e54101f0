package daemon

import (
	"context"
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pvehci/pvehci/ha"
	"github.com/pvehci/pvehci/ha/state"
	"github.com/pvehci/pvehci/health"
	"github.com/pvehci/pvehci/internal/localapi"
	"github.com/pvehci/pvehci/storage/controller"
	"github.com/pvehci/pvehci/storage/model"
)

// ClusterViewPath serves `pvehci health`'s cluster view. It is a REST
// path, so that a non-leader proxies it to the leader like every REST
// request: only the leader holds the satellites' reports.
const ClusterViewPath = "/v1/pvehci/cluster-view"

// buildClusterView is the leader's view of the cluster for health: every
// registered node with its satellite's last report, the definitions with
// their replicas and place counts, the schedules with their last run, the
// relocations.
func buildClusterView(c *ha.Cluster, st *state.State, store *controller.Store, now time.Time) health.ClusterView {
	v := health.ClusterView{Leader: c.LeaderID(), Time: now}
	for _, n := range st.Nodes() {
		nv := health.NodeView{Name: n.Name}
		if on, ok := store.ObservedNode(n.Name); ok {
			nv.Online = on.Online
		}
		if rep, at, ok := store.Report(n.Name); ok {
			nv.LastReport, nv.ReportTime = at, rep.Time
			nv.ObserveError = rep.ObserveError
			nv.Resources = rep.Resources
			nv.Network = rep.Network
			for _, p := range rep.Pools {
				nv.Pools = append(nv.Pools, health.PoolView{Name: p.Name, TotalKiB: p.TotalKiB, FreeKiB: p.FreeKiB,
					DataPercent: p.DataPercent, MetadataPercent: p.MetadataPercent})
			}
			for _, f := range rep.Failed {
				nv.Failed = append(nv.Failed, f.Action+": "+f.Error)
			}
		}
		v.Nodes = append(v.Nodes, nv)
	}
	for _, d := range st.ResourceDefinitions() {
		dv := health.DefinitionView{Name: d.Name, Deleting: d.Flags.Has(model.RdFlagDelete)}
		if rg, ok := st.ResourceGroup(d.ResourceGroup); ok {
			dv.PlaceCount = rg.SelectFilter.PlaceCount
		}
		for _, r := range st.Resources(d.Name) {
			switch {
			case r.Flags.Has(model.RscFlagDelete):
			case r.Flags.Has(model.RscFlagDiskless):
				dv.Diskless = append(dv.Diskless, r.Node)
			default:
				dv.Diskful = append(dv.Diskful, r.Node)
			}
		}
		v.Definitions = append(v.Definitions, dv)
	}
	for _, s := range st.JobSchedules() {
		sv := health.ScheduleView{Name: s.Name, Kind: s.Kind, Paused: s.Paused}
		runs := st.JobRuns(s.Name)
		// The newest finished run says how the schedule fares.
		for i := len(runs) - 1; i >= 0; i-- {
			if runs[i].State.Final() {
				r := runs[i]
				sv.LastRun = &r
				break
			}
		}
		v.Schedules = append(v.Schedules, sv)
	}
	v.Relocations = st.Relocations()
	latest := model.LatestVerifies(st.AllJobRuns())
	for _, key := range slices.Sorted(maps.Keys(latest)) {
		d, ok := st.ResourceDefinition(key)
		if !ok {
			continue
		}
		r := latest[key]
		r.Resource = d.Name
		v.Verifies = append(v.Verifies, health.VerifyView{VerifyResult: r, Acknowledged: d.Props[model.PropVerifyAck] == r.RunID})
	}
	slices.SortFunc(v.Nodes, func(a, b health.NodeView) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	return v
}

// clusterViewHandler serves the view on the leader, after a consistent
// read so that a deposed leader does not answer from stale state.
func clusterViewHandler(c *ha.Cluster, store *controller.Store) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := clusterBackend{c: c, store: store}
		st, err := b.Read(r.Context())
		if err != nil {
			localapi.WriteError(w, http.StatusServiceUnavailable, err)
			return
		}
		localapi.WriteJSON(w, http.StatusOK, buildClusterView(c, st, store, time.Now()))
	})
}

// serveClusterView answers the local API's GET /v1/cluster-view: from this
// node while it leads, else from the leader, through the same forwarding
// as the REST API (the peer port's mutual TLS; the local socket is root's).
func serveClusterView(c *ha.Cluster, store *controller.Store, w http.ResponseWriter, r *http.Request) {
	local, proxy, err := c.RouteREST(r)
	if err != nil {
		localapi.WriteError(w, http.StatusServiceUnavailable, err)
		return
	}
	if local {
		clusterViewHandler(c, store).ServeHTTP(w, r)
		return
	}
	fwd := r.Clone(r.Context())
	fwd.URL.Path, fwd.URL.RawPath = ClusterViewPath, ""
	proxy.ServeHTTP(w, fwd)
}

// healthCollector serves the cluster checks of `pvehci health` as gauges on
// /metrics, computed at scrape time from the leader's view (/metrics is
// answered by the leader, like the whole REST API).
type healthCollector struct {
	c      *ha.Cluster
	store  *controller.Store
	status *prometheus.Desc
	count  *prometheus.Desc
}

func newHealthCollector(c *ha.Cluster, store *controller.Store) *healthCollector {
	return &healthCollector{c: c, store: store,
		status: prometheus.NewDesc("pvehci_health_status", "Worst finding of a pvehci health check, by the Nagios convention: 0 ok, 1 warning, 2 critical, 3 unknown.",
			[]string{"code"}, nil),
		count: prometheus.NewDesc("pvehci_health_findings", "Warning, critical and unknown findings of a pvehci health check.",
			[]string{"code", "severity"}, nil),
	}
}

// healthMetricCodes are the checks the leader can judge for the whole
// cluster; corosync and the local daemon are each node's own.
var healthMetricCodes = []health.Code{health.ClusterViewCode, health.SatelliteOffline, health.SatelliteFailing,
	health.ReplicasBelowPlace, health.JobFailed, health.JobPaused, health.RelocationFailed, health.DisklessPrimary, health.ClockSkew,
	health.DRBDSplitBrain, health.DRBDConnecting, health.DRBDDiskNotUpToDate, health.DRBDOutOfSync,
	health.PoolDataFull, health.PoolMetadataFull}

func (h *healthCollector) Describe(ch chan<- *prometheus.Desc) { ch <- h.status; ch <- h.count }

func (h *healthCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rep, err := health.Default().Run(ctx, health.Sources{Cluster: inProcessView{h.c, h.store}}, healthMetricCodes...)
	if err != nil {
		return
	}
	worst := map[health.Code]health.Severity{}
	counts := map[[2]string]int{}
	for _, it := range rep.Items {
		if it.Severity > worst[it.Code] {
			worst[it.Code] = it.Severity
		}
		if it.Severity == health.Warning || it.Severity == health.Critical || it.Severity == health.Unknown {
			counts[[2]string{string(it.Code), it.Severity.String()}]++
		}
	}
	for _, code := range healthMetricCodes {
		s := worst[code]
		if s == health.Skipped {
			s = health.OK
		}
		ch <- prometheus.MustNewConstMetric(h.status, prometheus.GaugeValue, float64(s.ExitCode()), string(code))
	}
	for k, n := range counts {
		ch <- prometheus.MustNewConstMetric(h.count, prometheus.GaugeValue, float64(n), k[0], k[1])
	}
}

// inProcessView is health.Cluster on the leader itself.
type inProcessView struct {
	c     *ha.Cluster
	store *controller.Store
}

func (v inProcessView) View(ctx context.Context) (health.ClusterView, error) {
	st, err := clusterBackend(v).Read(ctx)
	if err != nil {
		return health.ClusterView{}, err
	}
	return buildClusterView(v.c, st, v.store, time.Now()), nil
}
