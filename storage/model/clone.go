package model

import (
	"maps"
	"slices"
)

// Clone methods return deep copies, so that readers of the replicated state
// can never change it behind the state machine's back.

// Clone returns a deep copy of n.
func (n Node) Clone() Node {
	n.NetInterfaces = slices.Clone(n.NetInterfaces)
	n.Props = n.Props.Clone()
	n.Flags = slices.Clone(n.Flags)
	return n
}

// Clone returns a deep copy of d.
func (d StoragePoolDefinition) Clone() StoragePoolDefinition {
	d.Props = d.Props.Clone()
	return d
}

// Clone returns a deep copy of p.
func (p StoragePool) Clone() StoragePool {
	p.Props = p.Props.Clone()
	return p
}

// Clone returns a deep copy of g.
func (g ResourceGroup) Clone() ResourceGroup {
	g.Props = g.Props.Clone()
	g.SelectFilter = g.SelectFilter.Clone()
	g.VolumeGroups = slices.Clone(g.VolumeGroups)
	for i := range g.VolumeGroups {
		g.VolumeGroups[i].Props = g.VolumeGroups[i].Props.Clone()
		g.VolumeGroups[i].Flags = slices.Clone(g.VolumeGroups[i].Flags)
	}
	return g
}

// Clone returns a deep copy of d.
func (d ResourceDefinition) Clone() ResourceDefinition {
	d.Props = d.Props.Clone()
	d.Flags = slices.Clone(d.Flags)
	d.LayerStack = slices.Clone(d.LayerStack)
	d.VolumeDefinitions = slices.Clone(d.VolumeDefinitions)
	for i := range d.VolumeDefinitions {
		d.VolumeDefinitions[i].Props = d.VolumeDefinitions[i].Props.Clone()
		d.VolumeDefinitions[i].Flags = slices.Clone(d.VolumeDefinitions[i].Flags)
	}
	return d
}

// Clone returns a deep copy of r.
func (r Resource) Clone() Resource {
	r.TCPPorts = slices.Clone(r.TCPPorts)
	r.Props = r.Props.Clone()
	r.Flags = slices.Clone(r.Flags)
	r.Volumes = slices.Clone(r.Volumes)
	for i := range r.Volumes {
		r.Volumes[i].Props = r.Volumes[i].Props.Clone()
		r.Volumes[i].Flags = slices.Clone(r.Volumes[i].Flags)
	}
	return r
}

// Clone returns a deep copy of d.
func (d SnapshotDefinition) Clone() SnapshotDefinition {
	d.Props = d.Props.Clone()
	d.Flags = slices.Clone(d.Flags)
	d.ResourceDefinitionProps = d.ResourceDefinitionProps.Clone()
	d.VolumeDefinitions = slices.Clone(d.VolumeDefinitions)
	for i := range d.VolumeDefinitions {
		vd := &d.VolumeDefinitions[i]
		vd.Props = vd.Props.Clone()
		vd.VolumeDefinitionProps = vd.VolumeDefinitionProps.Clone()
	}
	d.Snapshots = slices.Clone(d.Snapshots)
	for i := range d.Snapshots {
		s := &d.Snapshots[i]
		s.Flags = slices.Clone(s.Flags)
		s.Props = s.Props.Clone()
		s.ResourceProps = s.ResourceProps.Clone()
		s.Volumes = slices.Clone(s.Volumes)
		for j := range s.Volumes {
			s.Volumes[j].Props = s.Volumes[j].Props.Clone()
			s.Volumes[j].VolumeProps = s.Volumes[j].VolumeProps.Clone()
		}
	}
	return d
}

// Clone returns a deep copy of j.
func (j JobSchedule) Clone() JobSchedule {
	j.Options = cloneStrings(j.Options)
	return j
}

// Clone returns a deep copy of r.
func (r JobRun) Clone() JobRun {
	r.Details = cloneStrings(r.Details)
	return r
}

func cloneStrings(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return maps.Clone(m)
}
