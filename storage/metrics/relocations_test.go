package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/pvehci/pvehci/storage/model"
)

func TestRelocationResults(t *testing.T) {
	r := NewRelocationResults()
	for _, s := range []model.RelocationState{model.RelocPending, model.RelocSyncing, model.RelocDone, model.RelocCancelled, model.RelocDone} {
		r.Finished(model.Relocation{ResourceName: "vm-100-disk-0", State: s})
	}
	const want = `
# HELP pvehci_relocations_total Replica relocations that ended while this daemon led the cluster, by result (done, failed, cancelled). Counted in the leader's process: it starts at 0 when the daemon starts, and after a leader change /metrics shows the new leader's count.
# TYPE pvehci_relocations_total counter
pvehci_relocations_total{result="cancelled"} 1
pvehci_relocations_total{result="done"} 2
pvehci_relocations_total{result="failed"} 0
`
	if err := testutil.CollectAndCompare(r, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
}
