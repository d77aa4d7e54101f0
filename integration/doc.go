// Package integration holds the multi-node tests: the simulated cluster, the
// real-validator tier, the network-namespace tier and the VM tier, selected
// by build tags.
package integration
