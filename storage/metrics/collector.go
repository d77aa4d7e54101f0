package metrics

import (
	"context"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	linstor "github.com/LINBIT/golinstor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/pvehci/pvehci/ha/state"
	"github.com/pvehci/pvehci/internal/clock"
	"github.com/pvehci/pvehci/storage/api"
	"github.com/pvehci/pvehci/storage/model"
)

// LINSTOR's ApiConsts.ConnectionStatus values that pvehci reports for
// linstor_node_state.
const (
	connOffline = 0
	connOnline  = 2
	connUnknown = 6
)

// LINSTOR's linstor_resource_state values.
const (
	rscUnknown   = -1
	rscSecondary = 0
	rscPrimary   = 1
)

// volumeStates are LINSTOR's linstor_volume_state values by disk state
// name (PrometheusBuilder.VolumeStates); any other name is DUnknown (-1),
// as in LINSTOR, which also means Outdated and the transitional DRBD
// states read as -1.
func volumeStateValue(diskState string, diskless bool) float64 {
	if strings.EqualFold(diskState, "Diskless") && !diskless {
		return 90 // Diskless(Detached): a diskful replica that lost its disk
	}
	for _, s := range []struct {
		name  string
		value float64
	}{
		{"UpToDate", 1}, {"Created", 2}, {"Attached", 3}, {"Diskless", 4}, {"Inconsistent", 5},
		{"Failed", 6}, {"To: Creating", 7}, {"To: Attachable", 8}, {"To: Attaching", 9},
	} {
		if strings.EqualFold(diskState, s.name) {
			return s.value
		}
	}
	return -1
}

const (
	volumeStateHelp = `1="UpToDate", 2="Created", 3="Attached", 4="Diskless", 5="Inconsistent", 6="Failed", ` +
		`7="To: Creating", 8="To: Attachable", 9="To: Attaching", 90="Diskless(Detached)", -1="DUnknown", `
	nodeStateHelp = `0="OFFLINE", 1="CONNECTED", 2="ONLINE", 3="VERSION_MISMATCH", 4="FULL_SYNC_FAILED", ` +
		`5="AUTHENTICATION_ERROR", 6="UNKNOWN", 7="HOSTNAME_MISMATCH", 8="OTHER_CONTROLLER", 9="AUTHENTICATED", ` +
		`10="NO_STLT_CONN", 11="MISSING_EXT_TOOLS", 12="DUPLICATE_UNAME", `
)

// collector computes the cluster metrics at scrape time.
type collector struct {
	b       api.Backend
	pool    api.PoolObserver // nil: capacities unknown (NaN)
	node    api.NodeObserver // nil: every node online, as the REST API says
	clk     clock.Clock
	log     *slog.Logger
	info    api.ControllerVersion
	timeout time.Duration
	scrapes atomic.Uint64

	infoDesc, up, nodeState, nodeFlag, rdCount, rdRscCount, vdSize    *prometheus.Desc
	rscState, vlmState, vlmAllocated, poolFree, poolTotal, poolErrors *prometheus.Desc
	errorReports, scrapeCount, scrapeDuration                         *prometheus.Desc
	relocations, jobLastOK, jobPaused                                 *prometheus.Desc
	jobLastSuccess, jobDuration, jobFailures, jobOutOfSync            *prometheus.Desc
}

func newCollector(b api.Backend, opts Options, log *slog.Logger) *collector {
	nodeLabels := []string{"node", "nodetype", "address", "encryption", "port"}
	vlmLabels := []string{"resource", "node", "volume", "device_path", "storage_pool"}
	poolLabels := []string{"storage_pool", "node", "driver", "backing_pool"}
	c := &collector{b: b, clk: opts.Clock, log: log, info: opts.Linstor, timeout: opts.ReadTimeout,
		infoDesc: prometheus.NewDesc("linstor_info", "LINSTOR version pvehci's REST API implements.",
			[]string{"version", "buildtime", "gitid"}, nil),
		up: prometheus.NewDesc("pvehci_state_up",
			"1 if this scrape could read the controller state, 0 if not (the linstor_* cluster metrics are then missing).", nil, nil),
		nodeState:    prometheus.NewDesc("linstor_node_state", nodeStateHelp, nodeLabels, nil),
		nodeFlag:     prometheus.NewDesc("linstor_node_flag", "1 if the node flag is set, 0 otherwise", append(nodeLabels[:len(nodeLabels):len(nodeLabels)], "flag"), nil),
		rdCount:      prometheus.NewDesc("linstor_resource_definition_count", "Number of resource definitions.", nil, nil),
		rdRscCount:   prometheus.NewDesc("linstor_resource_definition_resource_count", "Number of resources of a resource definition.", []string{"name", "resource_group"}, nil),
		vdSize:       prometheus.NewDesc("linstor_volume_definition_size_bytes", "Size of a volume definition.", []string{"name", "volume_number", "resource_group"}, nil),
		rscState:     prometheus.NewDesc("linstor_resource_state", `-1="unknown state", 0="secondary", 1="primary"`, []string{"name", "node"}, nil),
		vlmState:     prometheus.NewDesc("linstor_volume_state", volumeStateHelp, vlmLabels, nil),
		vlmAllocated: prometheus.NewDesc("linstor_volume_allocated_size_bytes", "Storage allocated for a volume; NaN if unknown.", vlmLabels, nil),
		poolFree:     prometheus.NewDesc("linstor_storage_pool_capacity_free_bytes", "Free capacity of a storage pool; NaN if unknown, 0 for diskless pools.", poolLabels, nil),
		poolTotal:    prometheus.NewDesc("linstor_storage_pool_capacity_total_bytes", "Total capacity of a storage pool; NaN if unknown, 0 for diskless pools.", poolLabels, nil),
		poolErrors:   prometheus.NewDesc("linstor_storage_pool_error_count", "Errors reported for a storage pool (pvehci keeps no pool error reports: always 0).", poolLabels, nil),
		errorReports: prometheus.NewDesc("linstor_error_reports_count", "Number of error reports (pvehci logs errors to the journal instead: always 0).", nil, nil),
		scrapeCount:  prometheus.NewDesc("linstor_scrape_requests_count", "Scrapes of this endpoint since the daemon started.", nil, nil),
		relocations: prometheus.NewDesc("pvehci_relocations", "Replica relocations recorded in the state (the latest per resource definition), by state: pending, adding, syncing, removing, done, failed, cancelled.",
			[]string{"state"}, nil),
		jobLastOK: prometheus.NewDesc("pvehci_job_last_run_success", "1 if the schedule's last finished run succeeded (or was skipped), 0 if it failed; absent before the first run.",
			[]string{"schedule", "kind"}, nil),
		jobPaused: prometheus.NewDesc("pvehci_job_paused", "1 if the schedule is paused (by hand or after repeated failures).", []string{"schedule", "kind"}, nil),
		jobLastSuccess: prometheus.NewDesc("pvehci_job_last_success_timestamp_seconds",
			"When the schedule's latest succeeded run ended, in seconds since the epoch; absent if no run in the kept history succeeded.",
			[]string{"schedule", "kind"}, nil),
		jobDuration: prometheus.NewDesc("pvehci_job_last_run_duration_seconds",
			"How long the schedule's latest run that succeeded or failed took (skipped runs do not count); absent before the first.",
			[]string{"schedule", "kind"}, nil),
		jobFailures: prometheus.NewDesc("pvehci_job_consecutive_failures",
			"Failed runs of the schedule since its last run that did not fail, as counted for its max-failures pause; at most the kept history.",
			[]string{"schedule", "kind"}, nil),
		jobOutOfSync: prometheus.NewDesc("pvehci_job_out_of_sync_bytes",
			"Verify schedules: bytes out of sync that the latest run that succeeded or failed found, summed over the resource definitions whose verify finished; absent if none finished.",
			[]string{"schedule", "kind"}, nil),
		scrapeDuration: prometheus.NewDesc("linstor_scrape_duration_seconds",
			"Time to compute the cluster metrics of this scrape.", nil, nil),
	}
	c.pool, _ = b.(api.PoolObserver)
	c.node, _ = b.(api.NodeObserver)
	return c
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.infoDesc, c.up, c.nodeState, c.nodeFlag, c.rdCount, c.rdRscCount, c.vdSize,
		c.rscState, c.vlmState, c.vlmAllocated, c.poolFree, c.poolTotal, c.poolErrors, c.errorReports,
		c.scrapeCount, c.scrapeDuration, c.relocations, c.jobLastOK, c.jobPaused,
		c.jobLastSuccess, c.jobDuration, c.jobFailures, c.jobOutOfSync} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	start := c.clk.Now()
	n := c.scrapes.Add(1)
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	gauge(c.infoDesc, 1, c.info.Version, c.info.BuildTime, c.info.GitHash)
	// Collect has no context of its own; promhttp cancels nothing, so the
	// read gets its own bound.
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	st, err := c.b.Read(ctx)
	cancel()
	if err != nil {
		c.log.Warn("metrics: reading the controller state failed; cluster metrics left out of this scrape", "err", err)
		gauge(c.up, 0)
	} else {
		gauge(c.up, 1)
		c.collectState(st, gauge)
	}
	ch <- prometheus.MustNewConstMetric(c.scrapeCount, prometheus.CounterValue, float64(n))
	gauge(c.scrapeDuration, c.clk.Since(start).Seconds())
}

func (c *collector) collectState(st *state.State, gauge func(*prometheus.Desc, float64, ...string)) {
	for _, n := range st.Nodes() {
		labels := nodeLabels(n)
		gauge(c.nodeState, c.nodeStatus(n.Name), labels...)
		// As LINSTOR: EVICTED includes DELETE there, so DELETE is shown
		// only for nodes that are not evicted; QIGNORE is internal.
		evicted := n.Flags.Has(model.NodeFlagEvicted)
		for _, f := range []string{model.NodeFlagDelete, model.NodeFlagEvicted, model.NodeFlagEvacuate} {
			set := n.Flags.Has(f) && (f != model.NodeFlagDelete || !evicted)
			gauge(c.nodeFlag, b2f(set), append(labels[:len(labels):len(labels)], f)...)
		}
	}

	rds := st.ResourceDefinitions()
	gauge(c.rdCount, float64(len(rds)))
	for _, rd := range rds {
		rscs := st.Resources(rd.Name)
		gauge(c.rdRscCount, float64(len(rscs)), rd.Name, rd.ResourceGroup)
		minors := map[int]int{}
		for _, vd := range rd.VolumeDefinitions {
			minors[vd.VolumeNumber] = vd.Minor
			gauge(c.vdSize, float64(vd.SizeKiB)*1024, rd.Name, strconv.Itoa(vd.VolumeNumber), rd.ResourceGroup)
		}
		for _, r := range rscs {
			obs, ok := c.b.Observed(r.Name, r.Node)
			rscState := float64(rscUnknown)
			if ok {
				rscState = rscSecondary
				if obs.InUse {
					rscState = rscPrimary
				}
			}
			gauge(c.rscState, rscState, r.Name, r.Node)
			for _, v := range r.Volumes {
				ov, vok := observedVolume(obs, v.VolumeNumber)
				vok = vok && ok
				dev := ov.DevicePath
				if dev == "" {
					// The device is known before the satellite reports
					// it: the minor is cluster-wide.
					dev = "/dev/drbd" + strconv.Itoa(minors[v.VolumeNumber])
				}
				pool := v.StoragePool
				if pool == "" {
					pool = "_unknown" // LINSTOR's label for a volume without a pool
				}
				labels := []string{r.Name, r.Node, strconv.Itoa(v.VolumeNumber), dev, pool}
				vstate, alloc := -1.0, math.NaN()
				if vok {
					vstate = volumeStateValue(ov.DiskState, r.Diskless())
					alloc = float64(ov.AllocatedSizeKiB) * 1024
				}
				gauge(c.vlmState, vstate, labels...)
				gauge(c.vlmAllocated, alloc, labels...)
			}
		}
	}

	for _, p := range st.StoragePools() {
		labels := []string{p.Name, p.Node, string(p.ProviderKind), backingPool(p)}
		free, total := math.NaN(), math.NaN()
		switch {
		case p.ProviderKind.Diskless():
			free, total = 0, 0
		case c.pool != nil:
			if o, ok := c.pool.ObservedPool(p.Node, p.Name); ok {
				free, total = float64(o.FreeKiB)*1024, float64(o.TotalKiB)*1024
			}
		}
		gauge(c.poolFree, free, labels...)
		gauge(c.poolTotal, total, labels...)
		gauge(c.poolErrors, 0, labels...)
	}
	gauge(c.errorReports, 0)

	byState := map[model.RelocationState]int{}
	for _, r := range st.Relocations() {
		byState[r.State]++
	}
	for _, s := range []model.RelocationState{model.RelocPending, model.RelocAdding, model.RelocSyncing, model.RelocRemoving,
		model.RelocDone, model.RelocFailed, model.RelocCancelled} {
		gauge(c.relocations, float64(byState[s]), string(s))
	}
	for _, js := range st.JobSchedules() {
		c.collectJob(js, st.JobRuns(js.Name), gauge)
	}
}

// collectJob computes a schedule's metrics from its run history (oldest
// first).
func (c *collector) collectJob(js model.JobSchedule, runs []model.JobRun, gauge func(*prometheus.Desc, float64, ...string)) {
	labels := []string{js.Name, string(js.Kind)}
	gauge(c.jobPaused, b2f(js.Paused), labels...)
	for i := len(runs) - 1; i >= 0; i-- {
		if runs[i].State.Final() {
			gauge(c.jobLastOK, b2f(runs[i].State != model.RunFailed), labels...)
			break
		}
	}
	for i := len(runs) - 1; i >= 0; i-- {
		if runs[i].State == model.RunSucceeded {
			gauge(c.jobLastSuccess, float64(runs[i].FinishedAt)/1000, labels...)
			break
		}
	}
	// A skipped run did no work, so its zero duration and empty details
	// would hide what the last real run took and found.
	for i := len(runs) - 1; i >= 0; i-- {
		r := runs[i]
		if r.State != model.RunSucceeded && r.State != model.RunFailed {
			continue
		}
		gauge(c.jobDuration, float64(r.FinishedAt-r.StartedAt)/1000, labels...)
		if js.Kind == model.JobVerify {
			if kib, ok := outOfSyncKiB(r); ok {
				gauge(c.jobOutOfSync, float64(kib)*1024, labels...)
			}
		}
		break
	}
	// Counted as jobs.Runner counts before pausing a schedule, so that an
	// alert on this gauge fires before the pause: the run under way is not
	// a result yet, and a success or a skip ends the streak.
	failures := 0
	for i := len(runs) - 1; i >= 0; i-- {
		if s := runs[i].State; s == model.RunFailed {
			failures++
		} else if s.Final() {
			break
		}
	}
	gauge(c.jobFailures, float64(failures), labels...)
}

// outOfSyncKiB sums the out-of-sync KiB a verify run recorded; ok is false
// when no verify of the run finished.
func outOfSyncKiB(r model.JobRun) (kib uint64, ok bool) {
	for k, v := range r.Details {
		if !strings.HasPrefix(k, model.JobDetailOutOfSyncKiB+".") {
			continue
		}
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			continue // "unknown": that verify did not finish
		}
		kib, ok = kib+n, true
	}
	return kib, ok
}

// nodeStatus is LINSTOR's connection status value, decided as the REST
// API decides a node's connection_status.
func (c *collector) nodeStatus(node string) float64 {
	if c.node == nil {
		return connOnline
	}
	switch o, ok := c.node.ObservedNode(node); {
	case !ok:
		return connUnknown
	case !o.Online:
		return connOffline
	}
	return connOnline
}

// nodeLabels are LINSTOR's node labels: the satellite connection's
// interface ("default", else the first, as the REST API shows it active).
func nodeLabels(n model.Node) []string {
	var addr, enc, port string
	ni, ok := n.NetInterface(model.DefaultNetInterface)
	if !ok && len(n.NetInterfaces) > 0 {
		ni, ok = n.NetInterfaces[0], true
	}
	if ok {
		addr, enc, port = ni.Address, ni.SatelliteEncryptionType, strconv.Itoa(ni.SatellitePort)
		if enc == "" {
			enc = "PLAIN"
		}
		if ni.SatellitePort == 0 {
			port = strconv.Itoa(linstor.DfltStltPortPlain)
		}
	}
	return []string{n.Name, string(n.Type), addr, enc, port}
}

// backingPool is LINSTOR's backing pool name: the volume group and thin
// pool, or the zpool.
func backingPool(p model.StoragePool) string {
	switch p.ProviderKind {
	case model.ProviderLVMThin:
		return p.Props[model.KeyStorDriverLvmVg] + "/" + p.Props[model.KeyStorDriverThinPool]
	case model.ProviderZFSThin:
		return p.Props[model.KeyStorDriverZPoolThin]
	}
	return ""
}

func observedVolume(o api.ObservedResource, vnr int) (api.ObservedVolume, bool) {
	for _, v := range o.Volumes {
		if v.VolumeNumber == vnr {
			return v, true
		}
	}
	return api.ObservedVolume{}, false
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
