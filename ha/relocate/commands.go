package relocate

import (
	"time"

	"github.com/pvehci/pvehci/ha/state"
	"github.com/pvehci/pvehci/storage/model"
)

// Commands returns the state commands that apply d, in order. The
// Relocation is updated before the resource is changed, so that after a
// failover between the two the next Decide sees a Relocation one step
// ahead of the resources and repeats only the missing change (see the
// package documentation).
func (d Decision) Commands(now time.Time) []state.Command {
	at := now.UnixMilli()
	update := func() *state.UpdateRelocation {
		return &state.UpdateRelocation{ResourceDefinition: d.Resource, State: d.State, Message: d.Reason, At: at}
	}
	rsc := func(node string) state.Target {
		return state.Target{Kind: model.ObjResource, ResourceDefinition: d.Resource, Node: node}
	}
	var clear []state.Command
	if d.ClearRate {
		clear = []state.Command{&state.SetProps{Target: rsc(d.Target),
			Change: model.PropsChange{Delete: []string{KeyCMaxRate, KeyRelocationRate}}}}
	}
	switch d.Kind {
	case StartTimer:
		// At is when the resource became diskless Primary, so that the
		// Relocation's CreatedAt stays the timer's base across re-timing.
		return []state.Command{&state.SetRelocationTimer{ResourceDefinition: d.Resource, TargetNode: d.Node,
			SourceNode: d.Source, Reason: d.Reason, DueAt: d.DueAt.UnixMilli(), At: d.Since.UnixMilli()}}
	case MakeDiskful:
		cmds := []state.Command{update()}
		if d.Rate != "" {
			// Before the disk: the .res that attaches it already
			// carries the cap, so the resync starts capped.
			cmds = append(cmds, &state.SetProps{Target: rsc(d.Node),
				Change: model.PropsChange{Set: model.Props{KeyCMaxRate: d.Rate, KeyRelocationRate: d.Rate}}})
		}
		return append(cmds, &state.ToggleDisk{ResourceDefinition: d.Resource, Node: d.Node, Diskful: true,
			StoragePool: d.Pool, DiskfulBy: model.DiskfulByAutoDiskful})
	case RemoveSurplus:
		if d.KeepTieBreaker {
			return append([]state.Command{update(), &state.ToggleDisk{ResourceDefinition: d.Resource, Node: d.Node},
				&state.SetFlags{Target: rsc(d.Node), Set: []string{model.RscFlagTieBreaker}}}, clear...)
		}
		return append([]state.Command{update(), &state.SetFlags{Target: rsc(d.Node), Set: []string{model.RscFlagDelete}}}, clear...)
	case CancelTimer, Done:
		return append([]state.Command{update()}, clear...)
	case Progress, Skip:
		return []state.Command{update()}
	}
	return nil
}
