package cluster

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/pvehci/pvehci/internal/hostfs"
)

// DefaultPath is where bootstrap looks for the cluster file.
const DefaultPath = "/etc/pvehci/cluster.yaml"

// Load reads and parses the cluster file at path.
func Load(fsys hostfs.FS, path string) (*Cluster, error) {
	data, err := fsys.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("reading %s: %w; write the cluster file first (docs/bootstrap-cluster-file.md has a full example)", path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	c, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Parse decodes a cluster file, fills in the cluster-wide defaults and
// validates it.
func Parse(data []byte) (*Cluster, error) {
	c, err := decode(data)
	if err != nil {
		return nil, err
	}
	c.applyDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

func decode(data []byte) (*Cluster, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	// A misspelt key would otherwise be silently ignored and its
	// default used, which is worse than refusing the file.
	dec.KnownFields(true)
	var c Cluster
	if err := dec.Decode(&c); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("the cluster file is empty; docs/bootstrap-cluster-file.md has a full example")
		}
		return nil, yamlError(err)
	}
	// Several documents would mean several clusters, or an accidental
	// "---" that hides the rest of the file from the first decode.
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("the cluster file has more than one YAML document (a second \"---\"); keep one cluster in one document")
	}
	if err := wholeNumbers(data); err != nil {
		return nil, err
	}
	return &c, nil
}

// intKeys are the keys whose values are whole numbers.
var intKeys = map[string]bool{"miimon": true, "mtu": true, "pool_percent": true, "place_count": true, "keep": true, "port": true}

// wholeNumbers refuses a fraction where the file wants a whole number: the
// decoder would silently truncate pool_percent: 0.5 to 0, which then reads
// as "unset" and gets the default.
func wholeNumbers(data []byte) error {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return yamlError(err)
	}
	var bad []string
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				if intKeys[k.Value] && v.Kind == yaml.ScalarNode && v.Tag == "!!float" {
					bad = append(bad, fmt.Sprintf("line %d: %s: %s is not a whole number; write an integer", v.Line, k.Value, v.Value))
				}
			}
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(&root)
	if len(bad) > 0 {
		return fmt.Errorf("parsing the cluster file:\n\t%s", strings.Join(bad, "\n\t"))
	}
	return nil
}

var unknownFieldRE = regexp.MustCompile(`field (\S+) not found in type cluster\.(\w+)`)

// yamlError rewords the decoder's Go type names into the file's terms.
func yamlError(err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	msg = unknownFieldRE.ReplaceAllStringFunc(msg, func(m string) string {
		sub := unknownFieldRE.FindStringSubmatch(m)
		return fmt.Sprintf("unknown key %q in %s (misspelt? docs/bootstrap-cluster-file.md lists the keys)", sub[1], sectionName(sub[2]))
	})
	msg = strings.ReplaceAll(msg, "\n  ", "\n\t")
	return fmt.Errorf("parsing the cluster file: %s", msg)
}

func sectionName(typ string) string {
	switch typ {
	case "Cluster":
		return "the top level"
	case "Networks":
		return "networks"
	case "Bond":
		return "a bond"
	case "Bridge":
		return "bridge"
	case "Storage":
		return "storage"
	case "DRBD":
		return "drbd"
	case "ResourceGroup":
		return "a resource group"
	case "Schedule":
		return "a schedule"
	case "NodeSpec":
		return "a node"
	case "IPoIBSpec":
		return "a node's ipoib"
	}
	return typ
}

// Defaults.
const (
	defaultBondName       = "bond0"
	defaultBondMode       = "802.3ad"
	defaultMiimon         = 100
	defaultXmitHashPolicy = "layer3+4"
	defaultLACPRate       = "fast"
	defaultBridgeName     = "vmbr0"
	defaultVIDs           = "2-4094"
	defaultVolumeGroup    = "pvehci"
	defaultThinPool       = "thinpool"
	defaultPoolPercent    = 95
	defaultProxmoxStorage = "drbdstorage"
	defaultTransport      = "auto"
	defaultResourceGroup  = "drbdgrp"
	defaultPlaceCount     = 2
	defaultKeep           = 7
	defaultIPoIBName      = "ib0"
	defaultIBPort         = 1
)

// applyDefaults fills in the cluster-wide defaults in place. It is
// idempotent, so Validate and Node can run it on a copy of a Cluster that
// was built by hand or already parsed.
func (c *Cluster) applyDefaults() {
	b := &c.Bond
	b.Name = def(b.Name, defaultBondName)
	b.Mode = def(b.Mode, defaultBondMode)
	if b.Miimon == 0 {
		b.Miimon = defaultMiimon
	}
	b.XmitHashPolicy = def(b.XmitHashPolicy, defaultXmitHashPolicy)
	b.LACPRate = def(b.LACPRate, defaultLACPRate)
	c.Bridge.Name = def(c.Bridge.Name, defaultBridgeName)
	if c.Bridge.VLANAware == nil {
		t := true
		c.Bridge.VLANAware = &t
	}
	c.Bridge.VIDs = def(c.Bridge.VIDs, defaultVIDs)
	s := &c.Storage
	s.VolumeGroup = def(s.VolumeGroup, defaultVolumeGroup)
	s.ThinPool = def(s.ThinPool, defaultThinPool)
	if s.PoolPercent == 0 {
		s.PoolPercent = defaultPoolPercent
	}
	s.ProxmoxStorage = def(s.ProxmoxStorage, defaultProxmoxStorage)
	c.DRBD.Transport = def(c.DRBD.Transport, defaultTransport)
	if len(c.ResourceGroups) == 0 {
		// A one-node cluster (a lab) cannot hold two replicas.
		c.ResourceGroups = []ResourceGroup{{Name: defaultResourceGroup, PlaceCount: max(1, min(defaultPlaceCount, len(c.Nodes)))}}
	}
	for i := range c.Schedules {
		if c.Schedules[i].Kind == "snapshot" && c.Schedules[i].Keep == 0 {
			c.Schedules[i].Keep = defaultKeep
		}
	}
}

// withDefaults returns a copy with the defaults filled in, leaving c (which
// may be shared) untouched.
func (c *Cluster) withDefaults() *Cluster {
	d := *c
	if c.Bridge.VLANAware != nil {
		v := *c.Bridge.VLANAware
		d.Bridge.VLANAware = &v
	}
	d.ResourceGroups = append([]ResourceGroup(nil), c.ResourceGroups...)
	d.Schedules = append([]Schedule(nil), c.Schedules...)
	d.applyDefaults()
	return &d
}

func def(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
