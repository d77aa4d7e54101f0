package model

import (
	"slices"
	"strings"
)

// Level is a kind of object that can hold properties in an inheritance chain.
type Level string

// Levels, named with LINSTOR's abbreviations (as its PriorityProps
// descriptions and `resource show` explanations use them).
const (
	LevelVolume             Level = "V"
	LevelResource           Level = "R"
	LevelVolumeDefinition   Level = "VD"
	LevelVolumeGroup        Level = "VG"
	LevelResourceDefinition Level = "RD"
	LevelResourceGroup      Level = "RG"
	LevelStoragePool        Level = "SP"
	LevelNode               Level = "N"
	LevelController         Level = "C"
)

// LookupOrder returns the levels consulted for key, highest priority first.
// The table and its sources are in the package documentation.
func LookupOrder(key string) []Level {
	const (
		V, R, VD, VG, RD, RG, SP, N, C = LevelVolume, LevelResource, LevelVolumeDefinition, LevelVolumeGroup,
			LevelResourceDefinition, LevelResourceGroup, LevelStoragePool, LevelNode, LevelController
	)
	switch key {
	case KeyPrefNic:
		return []Level{SP, R, RD, RG, N, C}
	case KeyAutoDiskful, KeyAutoDiskfulAllowCleanup:
		return []Level{R, N, RD, RG, C}
	case KeyForceInitialSync, KeyPeerSlotsNewResource:
		return []Level{RD, RG, C}
	case KeyTcpPortAutoRange:
		return []Level{N, C}
	case KeyMinorNrAutoRange:
		return []Level{C}
	}
	if inNamespace(key, NamespaceStorDriver) {
		return []Level{SP}
	}
	if inNamespace(key, namespaceDrbdDisk) {
		return []Level{V, R, VD, VG, RD, RG, N, C}
	}
	for _, ns := range []string{namespaceDrbdResource, NamespaceDrbdOptions + "/Net", NamespaceDrbdOptions + "/PeerDevice",
		NamespaceDrbdOptions + "/Handlers", NamespaceDrbdOptions + "/Proxy", NamespaceDrbdOptions + "/ProxyCompression"} {
		if inNamespace(key, ns) {
			return []Level{R, RD, RG, N, C}
		}
	}
	return []Level{V, R, VD, VG, RD, RG, N, C}
}

func inNamespace(key, ns string) bool { return strings.HasPrefix(key, ns+"/") }

// Layer is one object's properties in a scope.
type Layer struct {
	Level Level
	// Object names the object for explanations, e.g. "vm-100-disk-1 on pve1".
	Object string
	Props  Props
}

// Scope is the set of objects a key can be inherited from, seen from one
// resource or volume. Levels the caller did not add are skipped, so a scope
// built for a resource (no V, VD, VG) resolves volume keys the way LINSTOR
// resolves them for the resource-level disk section.
type Scope struct {
	layers []Layer
}

// NewScope builds a scope; a later layer of the same level replaces an
// earlier one.
func NewScope(layers ...Layer) Scope {
	s := Scope{layers: make([]Layer, 0, len(layers))}
	for _, l := range layers {
		if i := slices.IndexFunc(s.layers, func(o Layer) bool { return o.Level == l.Level }); i >= 0 {
			s.layers[i] = l
		} else {
			s.layers = append(s.layers, l)
		}
	}
	return s
}

// With returns the scope with l added (or replacing the layer of its level).
func (s Scope) With(l Layer) Scope {
	out := Scope{layers: slices.Clone(s.layers)}
	for i := range out.layers {
		if out.layers[i].Level == l.Level {
			out.layers[i] = l
			return out
		}
	}
	out.layers = append(out.layers, l)
	return out
}

// Clone returns a scope whose property maps share nothing with s.
func (s Scope) Clone() Scope {
	out := Scope{layers: slices.Clone(s.layers)}
	for i := range out.layers {
		out.layers[i].Props = out.layers[i].Props.Clone()
	}
	return out
}

// Layers returns the scope's layers in lookup-independent order, for
// listing where a resource's settings come from.
func (s Scope) Layers() []Layer { return s.Clone().layers }

func (s Scope) layer(level Level) (Layer, bool) {
	for _, l := range s.layers {
		if l.Level == level {
			return l, true
		}
	}
	return Layer{}, false
}

// Resolution is the effective value of a key and where it came from.
type Resolution struct {
	Key    string
	Value  string
	Level  Level
	Object string
	// Shadowed lists lower-priority values the winner overrides, highest
	// first, so that `resource show` can say "set on RG pve, overrides C".
	Shadowed []Shadow
}

// Shadow is a value that lost to a higher-priority one.
type Shadow struct {
	Value  string
	Level  Level
	Object string
}

// Resolve returns the effective value of key in this scope, by key's
// LookupOrder; ok is false when no level sets it.
func (s Scope) Resolve(key string) (res Resolution, ok bool) {
	for _, lvl := range LookupOrder(key) {
		l, present := s.layer(lvl)
		if !present {
			continue
		}
		v, set := l.Props[key]
		if !set {
			continue
		}
		if !ok {
			res = Resolution{Key: key, Value: v, Level: lvl, Object: l.Object}
			ok = true
			continue
		}
		res.Shadowed = append(res.Shadowed, Shadow{Value: v, Level: lvl, Object: l.Object})
	}
	return res, ok
}

// Get returns just the effective value of key, or "" when unset.
func (s Scope) Get(key string) string {
	r, _ := s.Resolve(key)
	return r.Value
}

// Effective resolves every key set at any level of the scope that lies in
// namespace (all keys when namespace is empty), sorted by key. Keys are
// resolved by their own order, so a key present only on a level its order
// skips (a Net option on a volume definition) does not appear.
func (s Scope) Effective(namespace string) []Resolution {
	seen := map[string]bool{}
	var keys []string
	for _, l := range s.layers {
		for k := range l.Props {
			if !seen[k] && (namespace == "" || inNamespace(k, namespace)) {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	}
	slices.Sort(keys)
	out := make([]Resolution, 0, len(keys))
	for _, k := range keys {
		if r, ok := s.Resolve(k); ok {
			out = append(out, r)
		}
	}
	return out
}
