package corosync

import (
	"errors"
	"strings"
	"testing"
)

// Files Proxmox wrote must come back byte for byte.
func TestRoundTripProxmoxFiles(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"pve9-create-3node.conf", "pve8-prio-2link.conf", "seed003-before.conf"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			data := readTestdata(t, name)
			if got := Render(mustParse(t, data)); string(got) != string(data) {
				t.Errorf("Render(Parse) changed the file:\n%s", diffText(string(data), string(got)))
			}
			tree, err := ParseTree(data)
			if err != nil {
				t.Fatal(err)
			}
			if got := RenderTree(tree); string(got) != string(data) {
				t.Errorf("RenderTree(ParseTree) changed the file:\n%s", diffText(string(data), string(got)))
			}
			if err := Validate(mustParse(t, data)); err != nil {
				t.Errorf("Validate: %v", err)
			}
		})
	}
}

// A hand-edited file is normalised to Proxmox's layout, keeping every
// option and comment; normalising again changes nothing.
func TestRenderNormalisesHandEdits(t *testing.T) {
	t.Parallel()
	c := mustParse(t, readTestdata(t, "admin-edited.conf"))
	got := Render(c)
	checkGolden(t, "admin-edited.golden", got)
	if again := Render(mustParse(t, got)); string(again) != string(got) {
		t.Errorf("rendering is not stable:\n%s", diffText(string(got), string(again)))
	}
	if err := Validate(c); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

func TestParseFields(t *testing.T) {
	t.Parallel()
	c := mustParse(t, readTestdata(t, "pve8-prio-2link.conf"))
	tt := c.Totem
	if tt.ClusterName != "prod" || tt.ConfigVersion != 7 || tt.Version != 2 || tt.IPVersion != "ipv4-6" || tt.LinkMode != "passive" || tt.Secauth != "on" {
		t.Errorf("totem = %+v", tt)
	}
	if len(tt.Interfaces) != 2 || tt.Interfaces[0].LinkNumber != 0 || tt.Interfaces[0].KnetLinkPriority != 20 || tt.Interfaces[1].KnetLinkPriority != 15 {
		t.Errorf("interfaces = %+v", tt.Interfaces)
	}
	if len(tt.Extra) != 0 {
		t.Errorf("totem extra = %+v, want none", tt.Extra)
	}
	n := c.Node("beta")
	if n == nil || n.NodeID != 2 || n.QuorumVotes != 1 || n.Rings[0] != "10.10.10.2" || n.Rings[1] != "10.20.20.2" {
		t.Fatalf("node beta = %+v", n)
	}
	if got := n.Links(); len(got) != 2 {
		t.Errorf("Links = %v", got)
	}
	if c.Quorum.Provider != "corosync_votequorum" || c.Logging.Debug != "off" || c.Logging.ToSyslog != "yes" {
		t.Errorf("quorum/logging = %+v %+v", c.Quorum, c.Logging)
	}
}

// Values a field cannot hold exactly stay as written.
func TestParseKeepsWhatFieldsCannotHold(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in string
		check    func(t *testing.T, c *Config)
	}{
		{
			name: "leading zero",
			in:   "nodelist {\n  node {\n    nodeid: 01\n  }\n}\n\n",
			check: func(t *testing.T, c *Config) {
				if n := c.Nodelist.Nodes[0]; n.NodeID != 0 || len(n.Extra) != 1 || n.Extra[0].Value != "01" {
					t.Errorf("node = %+v", n)
				}
			},
		},
		{
			name: "zero votes",
			in:   "nodelist {\n  node {\n    quorum_votes: 0\n  }\n}\n\n",
			check: func(t *testing.T, c *Config) {
				if n := c.Nodelist.Nodes[0]; n.QuorumVotes != 0 || len(n.Extra) != 1 {
					t.Errorf("node = %+v", n)
				}
			},
		},
		{
			name: "repeated key",
			in:   "totem {\n  config_version: 3\n  config_version: 4\n}\n\n",
			check: func(t *testing.T, c *Config) {
				if c.Totem.ConfigVersion != 0 || len(c.Totem.Extra) != 2 {
					t.Errorf("totem = %+v", c.Totem)
				}
			},
		},
		{
			name: "interface without linknumber",
			in:   "totem {\n  interface {\n    knet_link_priority: 5\n  }\n}\n\n",
			check: func(t *testing.T, c *Config) {
				if len(c.Totem.Interfaces) != 0 || len(c.Totem.Extra) != 1 {
					t.Errorf("totem = %+v", c.Totem)
				}
			},
		},
		{
			name: "repeated top-level section",
			in:   "quorum {\n  provider: a\n}\n\nquorum {\n  provider: b\n}\n\n",
			check: func(t *testing.T, c *Config) {
				if c.Quorum.Provider != "a" || len(c.Extra) != 1 {
					t.Errorf("quorum = %+v, extra = %+v", c.Quorum, c.Extra)
				}
			},
		},
		{
			name: "empty section",
			in:   "quorum {\n}\n\nsystem {\n}\n\n",
			check: func(t *testing.T, c *Config) {
				if !c.Quorum.present {
					t.Error("empty quorum section not remembered")
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := mustParse(t, []byte(tc.in))
			tc.check(t, c)
			if got := string(Render(c)); got != tc.in {
				t.Errorf("round trip:\n got %q\nwant %q", got, tc.in)
			}
		})
	}
}

// The parser refuses what corosync's parser refuses, with the line.
func TestParseErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in string
		line     int
		want     string
	}{
		{"extra after brace", "totem {\n}\nnodelist {{\n}\n", 3, "extra characters after opening bracket"},
		{"no section name", "{\n}\n", 1, "missing section name"},
		{"garbage line", "totem {\n  version 2\n}\n", 2, "line is not opening or closing section or key value"},
		{"unexpected close", "totem {\n}\n}\n", 3, "unexpected closing brace"},
		{"missing close", "totem {\n  version: 2\n", 1, "missing closing brace"},
		{"text around close", "totem {\n  } x\n", 2, "extra characters before or after closing bracket"},
		{"empty key", "totem {\n  : 2\n}\n", 2, "key name can't be empty"},
		{"long line", "totem {\n  cluster_name: " + strings.Repeat("x", 600) + "\n}\n", 2, "line too long"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse([]byte(tc.in))
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("Parse error = %v, want a *ParseError", err)
			}
			if pe.Line != tc.line || !strings.Contains(pe.Msg, tc.want) {
				t.Errorf("error = %v, want line %d %q", err, tc.line, tc.want)
			}
		})
	}
}

// corosync's grammar details: comments, CRLF, a value with spaces, "key:"
// without a value, trailing blanks.
func TestParseTreeGrammar(t *testing.T) {
	t.Parallel()
	in := "# head\r\ntotem {  \r\n\tcluster_name :  a b  \r\n\t# note\r\n  token:\r\n}\r\n"
	root, err := ParseTree([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	totem := root.Items[0]
	if totem.Key != "totem" || len(totem.Comments) != 1 || totem.Comments[0] != "# head" {
		t.Fatalf("totem item = %+v", totem)
	}
	if v, _ := totem.Section.Get("cluster_name"); v != "a b" {
		t.Errorf("cluster_name = %q, want %q", v, "a b")
	}
	tok := totem.Section.Items[1]
	if tok.Key != "token" || tok.Value != "" || len(tok.Comments) != 1 || tok.Line != 5 {
		t.Errorf("token item = %+v", tok)
	}
	want := "# head\ntotem {\n  cluster_name: a b\n  # note\n  token:\n}\n\n"
	if got := string(RenderTree(root)); got != want {
		t.Errorf("RenderTree = %q, want %q", got, want)
	}
}

// Changing a field keeps everything else, including comments and the
// admin's own keys, and the rendered file still parses to the change.
func TestEditKeepsExtras(t *testing.T) {
	t.Parallel()
	c := mustParse(t, readTestdata(t, "admin-edited.conf"))
	next := c.Clone()
	next.Totem.ConfigVersion++
	next.Node("lab1").Rings[0] = "10.1.0.11"
	out := string(Render(next))
	for _, want := range []string{"config_version: 13", "ring0_addr: 10.1.0.11", "token: 10000", "# longer token for the slow switch", "host: 10.1.0.250", "subsys: QUORUM", "# the first node", "knet_ping_timeout: 800"} {
		if !strings.Contains(out, want) {
			t.Errorf("rendered file lacks %q:\n%s", want, out)
		}
	}
	// The original is untouched by edits of the clone.
	if c.Totem.ConfigVersion != 12 || c.Node("lab1").Rings[0] != "10.1.0.1" {
		t.Error("Clone shares state with the original")
	}
	if got := mustParse(t, []byte(out)); got.Totem.ConfigVersion != 13 {
		t.Errorf("re-parsed config_version = %d", got.Totem.ConfigVersion)
	}
}

// A Config built in code renders like Proxmox's pvecm create would.
func TestRenderBuiltConfig(t *testing.T) {
	t.Parallel()
	c := &Config{
		Totem: Totem{
			Version: 2, ClusterName: "hci", ConfigVersion: 3, IPVersion: "ipv4-6", LinkMode: "passive", Secauth: "on",
			Interfaces: []Interface{{LinkNumber: 0}},
			Extra:      []Item{{Key: "token_coefficient", Value: "125"}},
		},
		Quorum:  Quorum{Provider: "corosync_votequorum"},
		Logging: Logging{Debug: "off", ToSyslog: "yes"},
	}
	// Out of order on purpose: the renderer sorts nodes by name.
	for _, n := range []struct {
		name string
		id   int
	}{{"pve3", 3}, {"pve1", 1}, {"pve2", 2}} {
		c.Nodelist.Nodes = append(c.Nodelist.Nodes, Node{Name: n.name, NodeID: n.id, QuorumVotes: 1, Rings: [MaxLinks]string{0: "192.168.10.1" + string(rune('0'+n.id))}})
	}
	if got, want := string(Render(c)), string(readTestdata(t, "pve9-create-3node.conf")); got != want {
		t.Errorf("Render differs from pvecm create's file:\n%s", diffText(want, got))
	}
}
