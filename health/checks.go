package health

// Checks returns every check pvehci knows, dependencies first.
func Checks() []Check {
	var all []Check
	all = append(all, corosyncChecks()...)
	all = append(all, controllerChecks()...)
	all = append(all, drbdChecks()...)
	all = append(all, lvmChecks()...)
	all = append(all, networkChecks()...)
	all = append(all, clusterChecks()...)
	return all
}

// Default returns the registry of every check.
func Default() *Registry {
	r, err := NewRegistry(Checks()...)
	if err != nil {
		// The list above is fixed at build time; a test runs it.
		panic(err)
	}
	return r
}
