// Package cluster reads the cluster file, /etc/pvehci/cluster.yaml, that
// `pvehci bootstrap` brings a node up from. The file is the same on every
// node so that a cluster is described once: a node finds its own entry by
// host name (or --node) and everything it shares with the others (networks,
// bond and bridge defaults, storage names, resource groups, schedules) comes
// from the same place, so nodes cannot drift apart by being bootstrapped from
// differently edited copies.
//
// Parse checks the whole file before anything is changed on a host and
// reports every problem at once, each with the node and key it is about and
// what to write instead: a bootstrap that stops half-way over a typo on the
// third node is far more expensive than a long error list up front. Network
// settings are checked by the same code in package ifupdown that renders
// them, so the file cannot pass here and then fail to render.
//
// Cluster is the file as written (with the cluster-wide defaults filled in
// by Parse); Node is one node with every default and inherited setting
// resolved, ready for the bootstrap steps.
//
// docs/bootstrap-cluster-file.md documents every key.
package cluster
