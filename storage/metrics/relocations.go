package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/pvehci/pvehci/storage/model"
)

// RelocationResults is pvehci_relocations_total{result}: relocations that
// ended while this daemon led the cluster. Give it to Options.Extra and its
// Finished to controller.Relocator.Finished.
//
// It is a counter in this process, not a number from the replicated state:
// the state keeps only the latest relocation per resource definition, so
// the ended relocations cannot be counted from it at scrape time. Like any
// counter it starts again at 0 when the daemon restarts, and after a
// leader change /metrics shows the new leader's count; rate() and
// increase() treat both as counter resets.
type RelocationResults struct {
	total *prometheus.CounterVec
}

// NewRelocationResults returns the counter with every result at 0, so that
// increase() sees the first relocation of each result.
func NewRelocationResults() *RelocationResults {
	r := &RelocationResults{total: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "pvehci_relocations_total",
		Help: "Replica relocations that ended while this daemon led the cluster, by result (done, failed, cancelled). " +
			"Counted in the leader's process: it starts at 0 when the daemon starts, and after a leader change /metrics shows the new leader's count.",
	}, []string{"result"})}
	for _, s := range []model.RelocationState{model.RelocDone, model.RelocFailed, model.RelocCancelled} {
		r.total.WithLabelValues(string(s))
	}
	return r
}

// Finished counts rel by its final state; a relocation not in a final state
// is not counted.
func (r *RelocationResults) Finished(rel model.Relocation) {
	if rel.State.Final() {
		r.total.WithLabelValues(string(rel.State)).Inc()
	}
}

// Describe implements prometheus.Collector.
func (r *RelocationResults) Describe(ch chan<- *prometheus.Desc) { r.total.Describe(ch) }

// Collect implements prometheus.Collector.
func (r *RelocationResults) Collect(ch chan<- prometheus.Metric) { r.total.Collect(ch) }
