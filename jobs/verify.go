package jobs

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pvehci/pvehci/ha/state"
	"github.com/pvehci/pvehci/storage/model"
	"github.com/pvehci/pvehci/storage/satellite"
)

// hasVerifyAlg reports whether rd has a verify-alg, set on it, its
// resource group or the controller.
func hasVerifyAlg(st *state.State, rd string) bool {
	def, ok := st.ResourceDefinition(rd)
	if !ok {
		return false
	}
	if def.Props[KeyVerifyAlg] != "" || st.ControllerProps()[KeyVerifyAlg] != "" {
		return true
	}
	rg, ok := st.ResourceGroup(def.ResourceGroup)
	return ok && rg.Props[KeyVerifyAlg] != ""
}

// detailKey is a run detail's key: lower case (model.JobRun details take
// only lower-case keys) and prefixed by what it says.
func detailKey(what, rd string) string { return what + "." + strings.ToLower(rd) }

func (r *Runner) verifyJob(ctx context.Context, js model.JobSchedule, runID string) outcome {
	if r.Store == nil {
		return outcome{err: errors.New("this runner has no satellite reports to read verify results from")}
	}
	rds := Targets(r.State(), js.Target)
	if len(rds) == 0 {
		return outcome{message: "no resource definition matches " + js.Target.String()}
	}
	var errs []error
	requested := map[string]bool{}
	st := r.State()
	var queue []string
	for _, rd := range rds {
		if !hasVerifyAlg(st, rd) {
			if err := r.apply(ctx, &state.SetProps{Target: state.Target{Kind: model.ObjResourceDefinition, ResourceDefinition: rd},
				Change: model.PropsChange{Set: model.Props{KeyVerifyAlg: DefaultVerifyAlg}}}); err != nil {
				errs = append(errs, fmt.Errorf("setting %s on %s: %w", KeyVerifyAlg, rd, err))
				continue
			}
		}
		queue = append(queue, rd)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		for _, rd := range slices.Sorted(maps.Keys(requested)) {
			if def, ok := r.State().ResourceDefinition(rd); !ok || def.Props[PropVerifyRequest] != runID {
				continue
			}
			if err := r.apply(cctx, &state.SetProps{Target: state.Target{Kind: model.ObjResourceDefinition, ResourceDefinition: rd},
				Change: model.PropsChange{Delete: []string{PropVerifyRequest}}}); err != nil {
				r.log().Warn("removing a verify request", "resource", rd, "err", err)
			}
		}
	}()
	// A verify reads every block of every diskful replica: at most
	// per-node verifies involve one node's disks at a time (default 1,
	// "one verify per disk at a time"), the others wait in the queue.
	perNode := intOption(js.Options, "per-node", DefaultVerifyPerNode)
	busy := map[string]int{} // node key → verifies running on its disks
	nodesOf := func(rd string) []string {
		var out []string
		for _, res := range r.State().Resources(rd) {
			if !res.Diskless() && !res.Flags.Has(model.RscFlagDelete) {
				out = append(out, model.Key(res.Node))
			}
		}
		return out
	}
	running := map[string][]string{} // rd → its nodes, while its verify runs
	results := map[string]satellite.VerifyReport{}
	werr := r.waitFor(ctx, timeout(js.Options, DefaultVerifyTimeout), func() bool {
		for _, rep := range r.Store.Reports() {
			for _, v := range rep.Verifies {
				if _, done := results[v.Resource]; requested[v.Resource] && v.RunID == runID && !v.Running && !done {
					results[v.Resource] = v
					for _, n := range running[v.Resource] {
						busy[n]--
					}
					delete(running, v.Resource)
				}
			}
		}
		var waiting []string
		for _, rd := range queue {
			nodes := nodesOf(rd)
			if perNode > 0 && slices.ContainsFunc(nodes, func(n string) bool { return busy[n] >= perNode }) {
				waiting = append(waiting, rd)
				continue
			}
			if err := r.apply(ctx, &state.SetProps{Target: state.Target{Kind: model.ObjResourceDefinition, ResourceDefinition: rd},
				Change: model.PropsChange{Set: model.Props{PropVerifyRequest: runID}}}); err != nil {
				errs = append(errs, fmt.Errorf("requesting the verify of %s: %w", rd, err))
				continue
			}
			requested[rd] = true
			running[rd] = nodes
			for _, n := range nodes {
				busy[n]++
			}
		}
		queue = waiting
		return len(queue) == 0 && len(results) == len(requested)
	})
	for _, rd := range queue {
		requested[rd] = true // reported below as not finished
	}
	details := map[string]string{}
	var total uint64
	var dirty []string
	for _, rd := range slices.Sorted(maps.Keys(requested)) {
		v, ok := results[rd]
		if !ok {
			details[detailKey(model.JobDetailOutOfSyncKiB, rd)] = "unknown"
			errs = append(errs, fmt.Errorf("the verify of %s did not finish: %v", rd, werr))
			continue
		}
		details[detailKey(model.JobDetailOutOfSyncKiB, rd)] = strconv.FormatUint(v.OutOfSyncKiB, 10)
		total += v.OutOfSyncKiB
		if v.OutOfSyncKiB > 0 {
			dirty = append(dirty, fmt.Sprintf("%s (%d KiB)", rd, v.OutOfSyncKiB))
		}
	}
	msg := fmt.Sprintf("verified %d of %d resource definitions", len(results), len(rds))
	if len(dirty) > 0 {
		msg += fmt.Sprintf("; %d KiB out of sync in %s", total, strings.Join(dirty, ", "))
	} else if len(results) > 0 {
		msg += "; no block out of sync"
	}
	return outcome{err: errors.Join(errs...), message: msg, details: details}
}
